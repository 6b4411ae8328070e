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

    /// Checks a `webhook-signature` header (space-separated `v1,<base64>` entries; any one may
    /// match, so senders can rotate secrets) in constant time.
    pub fn verify(&self, msg_id: &str, timestamp_secs: i64, body: &[u8], header: &str) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut signed = Vec::with_capacity(msg_id.len() + body.len() + 24);
        signed.extend_from_slice(msg_id.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(timestamp_secs.to_string().as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(body);
        header
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .any(|b64| STANDARD.decode(b64).is_ok_and(|tag| hmac::verify(&key, &signed, &tag).is_ok()))
    }
}

/// Checks Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the account's auth token,
/// over the URL Twilio called followed by every POST parameter as name and value, sorted by
/// name. SHA-1 is Twilio's choice, not ours; HMAC-SHA1 is still sound as a MAC.
pub fn twilio_signature_valid(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let Ok(tag) = STANDARD.decode(header.trim()) else { return false };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut signed = url.as_bytes().to_vec();
    for (name, value) in sorted {
        signed.extend_from_slice(name.as_bytes());
        signed.extend_from_slice(value.as_bytes());
    }
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    hmac::verify(&key, &signed, &tag).is_ok()
}

/// The `webhook-signature` header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSignature(pub String);

impl WebhookSignature {
    /// Both signatures in one header, space-separated: a receiver accepts the message if any
    /// one verifies, which is how a secret is rotated without a gap.
    pub fn and(self, other: WebhookSignature) -> WebhookSignature {
        WebhookSignature(format!("{} {}", self.0, other.0))
    }
}

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
    fn verifies_its_own_and_rotated_signatures_and_nothing_else() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, good));
        assert!(secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &format!("v1,b2xk {good}")));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, good), "timestamp is signed");
        assert!(!secret.verify("msg_other", 1614265330, body, good), "id is signed");
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b"{}", good), "body is signed");
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, "v2,g0hM9SsE"));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, ""));
    }

    #[test]
    fn twilio_signatures_match_an_independent_computation() {
        // Expected value computed with Python's hmac/hashlib, independently of this code.
        let url = "https://example.com/v1/inbound/int_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f";
        let params: Vec<(String, String)> =
            [("To", "+14155550123"), ("MessageStatus", "undelivered"), ("MessageSid", "SM123"), ("ErrorCode", "30005")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert!(twilio_signature_valid("12345", url, &params, "+cLPhSCAqJiaf8ixSOAgUU75W64="));
        assert!(!twilio_signature_valid("12346", url, &params, "+cLPhSCAqJiaf8ixSOAgUU75W64="));
        assert!(!twilio_signature_valid("12345", &format!("{url}?x=1"), &params, "+cLPhSCAqJiaf8ixSOAgUU75W64="));
        let mut changed = params.clone();
        changed[1].1 = "delivered".into();
        assert!(!twilio_signature_valid("12345", url, &changed, "+cLPhSCAqJiaf8ixSOAgUU75W64="));
        assert!(!twilio_signature_valid("12345", url, &params, "not base64"));
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
