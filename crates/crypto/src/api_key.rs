//! API keys: `chm_` + 256 random bits (base64url). Only the SHA-256 digest is stored.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chimatic_domain::Sensitive;
use subtle::ConstantTimeEq;

use crate::CryptoError;

pub const API_KEY_PREFIX: &str = "chm_";

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyDigest(pub [u8; 32]);

impl std::fmt::Debug for ApiKeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyDigest(..)")
    }
}

impl ApiKeyDigest {
    pub fn of(key: &str) -> Self {
        let d = digest::digest(&digest::SHA256, key.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// Constant-time comparison, so timing reveals nothing about how much of a digest matched.
    pub fn matches(&self, other: &ApiKeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

pub struct GeneratedApiKey {
    pub key: Sensitive<String>,
    pub digest: ApiKeyDigest,
    pub last4: String,
}

impl GeneratedApiKey {
    pub fn generate() -> Result<Self, CryptoError> {
        let raw = crate::random::bytes::<32>()?;
        let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let last4 = key[key.len() - 4..].to_string();
        Ok(Self { digest: ApiKeyDigest::of(&key), last4, key: Sensitive::new(key) })
    }
}

/// Cheap shape check before any lookup: prefix plus 43 base64url characters.
pub fn looks_like_api_key(text: &str) -> bool {
    text.strip_prefix(API_KEY_PREFIX)
        .is_some_and(|r| r.len() == 43 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let a = GeneratedApiKey::generate().unwrap();
        let b = GeneratedApiKey::generate().unwrap();
        assert!(looks_like_api_key(a.key.expose()));
        assert_ne!(a.key.expose(), b.key.expose());
        assert_eq!(a.last4, &a.key.expose()[a.key.expose().len() - 4..]);
        assert!(ApiKeyDigest::of(a.key.expose()).matches(&a.digest));
        assert!(!a.digest.matches(&b.digest));
        assert!(!looks_like_api_key("chm_short"));
        assert!(!looks_like_api_key(&a.key.expose().replace("chm_", "xxx_")));
    }
}
