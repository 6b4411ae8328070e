//! AWS Signature Version 4 for requests Chimatic sends itself (KMS JSON calls), through the
//! `aws-sigv4` crate alone rather than the whole AWS SDK.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_lc_rs::digest;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use secrecy::{ExposeSecret, SecretString};

/// Signs requests with one set of credentials for one region.
#[derive(Clone)]
pub struct SigV4Signer {
    identity: Identity,
    access_key_id: String,
    region: String,
}

impl std::fmt::Debug for SigV4Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The access key id names the credentials; the secret and session token stay out.
        f.debug_struct("SigV4Signer").field("access_key_id", &self.access_key_id).field("region", &self.region).finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the request: {0}")]
pub struct SignError(String);

impl SigV4Signer {
    pub fn new(
        access_key_id: &str,
        secret_access_key: &SecretString,
        session_token: Option<&SecretString>,
        region: &str,
    ) -> Self {
        // aws-credential-types keeps the secret and token in zeroizing strings.
        let credentials = Credentials::new(
            access_key_id,
            secret_access_key.expose_secret(),
            session_token.map(|t| t.expose_secret().to_owned()),
            None,
            "chimatic",
        );
        Self { identity: credentials.into(), access_key_id: access_key_id.into(), region: region.into() }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The headers to add to the request (`authorization`, `x-amz-date`, and
    /// `x-amz-security-token` with a session token). `headers` are the ones to sign besides
    /// `host`, which is taken from `url`.
    pub fn sign(
        &self,
        service: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        let err = |e: &dyn std::fmt::Display| SignError(e.to_string());
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| err(&e))?
            .into();
        // The body's digest rather than the body: aws-sigv4 traces the request it signs, and a
        // KMS body can hold a plaintext key.
        let body_sha256 = hex(digest::digest(&digest::SHA256, body).as_ref());
        let request =
            SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Precomputed(body_sha256))
                .map_err(|e| err(&e))?;
        let (instructions, _signature) = sign(request, &params).map_err(|e| err(&e))?.into_parts();
        let (signed, _params) = instructions.into_parts();
        Ok(signed.into_iter().map(|h| (h.name(), h.value().to_owned())).collect())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_secret_nor_token() {
        let signer = SigV4Signer::new(
            "AKIDEXAMPLE",
            &SecretString::from("secret-canary"),
            Some(&SecretString::from("token-canary")),
            "eu-west-1",
        );
        let text = format!("{signer:?}");
        assert!(text.contains("AKIDEXAMPLE"));
        assert!(!text.contains("canary"), "{text}");
    }

    #[test]
    fn matches_the_aws_test_suite_signature() {
        // "get-vanilla" from the AWS SigV4 test suite.
        let signer = SigV4Signer::new(
            "AKIDEXAMPLE",
            &SecretString::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            None,
            "us-east-1",
        );
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160); // 20150830T123600Z
        let headers = signer.sign("service", "GET", "https://example.amazonaws.com/", &[], b"", time).unwrap();
        let auth = headers.iter().find(|(name, _)| *name == "authorization").map(|(_, v)| v.as_str()).unwrap();
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
