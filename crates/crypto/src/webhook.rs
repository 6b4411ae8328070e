//! Standard Webhooks signatures: `v1,<base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))>`
//! with a `whsec_`-prefixed base64 secret, so any Standard Webhooks library verifies them.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chimatic_domain::Sensitive;
use zeroize::Zeroizing;

use crate::CryptoError;

pub const SECRET_PREFIX: &str = "whsec_";
const SECRET_LEN: usize = 32;

/// The raw secret bytes; the text form is only ever shown once, at channel creation.
pub struct SigningSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

impl SigningSecret {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(Zeroizing::new(crate::random::bytes::<SECRET_LEN>()?.to_vec())))
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let b64 = text.strip_prefix(SECRET_PREFIX).ok_or(CryptoError::InvalidKey)?;
        let bytes = STANDARD.decode(b64).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_text(&self) -> Sensitive<String> {
        Sensitive::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(self.0.as_slice())))
    }

    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> WebhookSignature {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(msg_id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp_secs.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        WebhookSignature(format!("v1,{}", STANDARD.encode(ctx.sign().as_ref())))
    }
}

/// The `webhook-signature` header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSignature(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // Test vector from the Standard Webhooks specification's reference libraries.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig.0, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_round_trip_through_text_and_never_debug_print() {
        let s = SigningSecret::generate().unwrap();
        let text = s.to_text();
        assert!(text.expose().starts_with(SECRET_PREFIX));
        let back = SigningSecret::parse(text.expose()).unwrap();
        assert_eq!(back.as_bytes(), s.as_bytes());
        assert!(!format!("{s:?}").contains(&text.expose()[6..12]));
        assert!(SigningSecret::parse("nope").is_err());
    }
}
