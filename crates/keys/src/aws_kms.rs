//! A KEK held by AWS KMS or a KMS-compatible service. Wrapping is KMS `Encrypt` of the DEK,
//! unwrapping is `Decrypt`, both bound to an encryption context naming the store, workspace
//! and DEK version (KMS checks it; CloudTrail records it). Calls use the JSON protocol, signed
//! with SigV4, each under a timeout.
//!
//! The wrapped form is KMS's ciphertext blob as returned.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chimatic_crypto::kek::{KekProvider, WrapContext};
use chimatic_crypto::{CryptoError, DEK_LEN};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use crate::sigv4::SigV4Signer;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// KMS answers are a few hundred bytes; anything much larger is not KMS.
const MAX_RESPONSE: usize = 64 * 1024;
/// The largest ciphertext blob KMS accepts.
const MAX_CIPHERTEXT: usize = 6144;

#[derive(Clone)]
pub struct AwsKmsConfig {
    /// `https://kms.<region>.amazonaws.com`, or a compatible service's URL.
    pub endpoint: Url,
    pub region: String,
    /// Key id, key ARN, alias name or alias ARN.
    pub key_id: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
    /// Limit for each call, connection included.
    pub timeout: Duration,
}

impl AwsKmsConfig {
    /// A configuration with long-term credentials and [`DEFAULT_TIMEOUT`].
    pub fn new(
        endpoint: Url,
        region: impl Into<String>,
        key_id: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
    ) -> Self {
        Self {
            endpoint,
            region: region.into(),
            key_id: key_id.into(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for AwsKmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsConfig")
            .field("endpoint", &self.endpoint.as_str())
            .field("region", &self.region)
            .field("key_id", &self.key_id)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &self.session_token.as_ref().map(|_| "[redacted]"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AwsKmsConfigError {
    #[error("the KMS endpoint must be an http or https URL with a host: {0}")]
    Endpoint(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

pub struct AwsKmsKek {
    http: reqwest::Client,
    endpoint: Url,
    key_id: String,
    signer: SigV4Signer,
    id: String,
}

impl std::fmt::Debug for AwsKmsKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsKmsKek({} at {})", self.id, self.endpoint)
    }
}

/// Why a KMS call failed, before it is reduced to a `CryptoError`.
#[derive(Debug)]
enum CallError {
    /// KMS answered with an error; `code` is the exception name, e.g. `DisabledException`.
    Service { status: u16, code: String },
    /// No usable answer: connection refused, timeout, TLS, an oversized or malformed body.
    Transport(String),
}

impl CallError {
    fn into_crypto(self, operation: &'static str) -> CryptoError {
        let error = classify(&self);
        match &self {
            CallError::Service { status, code } => {
                tracing::warn!(operation, status, code = code.as_str(), "KMS refused the request");
            }
            CallError::Transport(cause) => {
                tracing::warn!(operation, cause = cause.as_str(), "KMS unreachable");
            }
        }
        error
    }
}

/// Only a ciphertext KMS itself calls invalid, or one made under another key, is permanent.
/// Everything else (disabled, pending deletion, not found, access denied, bad credentials,
/// throttling, 5xx, network) may pass or be fixed by the customer: pause, do not fail.
fn classify(error: &CallError) -> CryptoError {
    match error {
        CallError::Service { code, .. }
            if matches!(code.as_str(), "InvalidCiphertextException" | "IncorrectKeyException") =>
        {
            CryptoError::Unwrap
        }
        _ => CryptoError::KeyUnavailable,
    }
}

/// The exception name from an error answer: the body's `__type` (or `code`), else the
/// `x-amzn-errortype` header, else an XML `<Code>` (signature and IAM errors of some
/// compatible services). AWS may prefix a namespace (`...#Name`) or add `:detail`.
fn error_code(header: Option<&str>, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type", alias = "code", alias = "Code")]
        kind: Option<String>,
    }
    let xml_code = || {
        let text = std::str::from_utf8(body).ok()?;
        let start = text.find("<Code>")? + "<Code>".len();
        let len = text[start..].find("</Code>")?;
        Some(text[start..start + len].to_owned())
    };
    let raw = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.kind)
        .or_else(|| header.map(str::to_owned))
        .or_else(xml_code)
        .unwrap_or_default();
    let name = raw.rsplit('#').next().unwrap_or_default();
    name.split(':').next().unwrap_or_default().trim().to_owned()
}

#[derive(Serialize)]
struct EncryptionContext<'a> {
    #[serde(rename = "chimatic:store")]
    store: &'a str,
    #[serde(rename = "chimatic:workspace")]
    workspace: &'a str,
    #[serde(rename = "chimatic:dek_version")]
    dek_version: String,
}

impl<'a> EncryptionContext<'a> {
    fn of(ctx: &WrapContext<'a>) -> Self {
        Self { store: ctx.store, workspace: ctx.workspace, dek_version: ctx.dek_version.to_string() }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptRequest<'a> {
    key_id: &'a str,
    plaintext: &'a str,
    encryption_context: EncryptionContext<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest<'a> {
    key_id: &'a str,
    ciphertext_blob: &'a str,
    encryption_context: EncryptionContext<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyRequest<'a> {
    key_id: &'a str,
    key_spec: &'static str,
    encryption_context: EncryptionContext<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CiphertextResponse {
    ciphertext_blob: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlaintextResponse {
    plaintext: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyResponse {
    ciphertext_blob: String,
    plaintext: String,
}

impl AwsKmsKek {
    pub fn new(config: AwsKmsConfig) -> Result<Self, AwsKmsConfigError> {
        let endpoint = config.endpoint;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(AwsKmsConfigError::Endpoint(endpoint.to_string()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A signed KMS call is never redirected; following one would send it elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(AwsKmsConfigError::Client)?;
        let signer = SigV4Signer::new(
            &config.access_key_id,
            &config.secret_access_key,
            config.session_token.as_ref(),
            &config.region,
        );
        let id = format!("aws-kms:{}", config.key_id);
        Ok(Self { http, endpoint, key_id: config.key_id, signer, id })
    }

    /// A fresh AES-256 DEK from KMS (`GenerateDataKey`): the plaintext, and the same key wrapped
    /// under the KEK for `ctx`, which [`KekProvider::unwrap`] accepts.
    pub async fn generate_data_key(
        &self,
        ctx: &WrapContext<'_>,
    ) -> Result<(Zeroizing<[u8; DEK_LEN]>, Vec<u8>), CryptoError> {
        let request = GenerateDataKeyRequest {
            key_id: &self.key_id,
            key_spec: "AES_256",
            encryption_context: EncryptionContext::of(ctx),
        };
        let response: DataKeyResponse = self
            .call("TrentService.GenerateDataKey", &request)
            .await
            .map_err(|e| e.into_crypto("generate_data_key"))?;
        let plaintext = Zeroizing::new(response.plaintext);
        let dek = decode_dek(&plaintext).ok_or_else(|| malformed("generate_data_key"))?;
        let wrapped = STANDARD.decode(response.ciphertext_blob).map_err(|_| malformed("generate_data_key"))?;
        Ok((dek, wrapped))
    }

    /// One signed KMS JSON call; the response body is read up to [`MAX_RESPONSE`] bytes.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: &str,
        request: &Req,
    ) -> Result<Resp, CallError> {
        // Zeroizing: the Encrypt body holds the DEK (base64).
        let body = Zeroizing::new(serde_json::to_vec(request).map_err(|e| CallError::Transport(e.to_string()))?);
        let content_type = "application/x-amz-json-1.1";
        let headers = [("content-type", content_type), ("x-amz-target", target)];
        let signed = self
            .signer
            .sign("kms", "POST", self.endpoint.as_str(), &headers, &body, SystemTime::now())
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let mut builder =
            self.http.post(self.endpoint.clone()).header("content-type", content_type).header("x-amz-target", target);
        for (name, value) in signed {
            builder = builder.header(name, value);
        }
        let mut response =
            builder.body(body.to_vec()).send().await.map_err(|e| CallError::Transport(transport_cause(&e)))?;
        let status = response.status();
        let error_header = response.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut bytes = Zeroizing::new(Vec::new());
        while let Some(chunk) = response.chunk().await.map_err(|e| CallError::Transport(transport_cause(&e)))? {
            if bytes.len() + chunk.len() > MAX_RESPONSE {
                return Err(CallError::Transport(format!("response larger than {MAX_RESPONSE} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(CallError::Service {
                status: status.as_u16(),
                code: error_code(error_header.as_deref(), &bytes),
            });
        }
        // No serde_json error text: it can quote the body, and a Decrypt body is a key.
        serde_json::from_slice(&bytes).map_err(|_| CallError::Transport(format!("unreadable {target} response")))
    }
}

#[async_trait::async_trait]
impl KekProvider for AwsKmsKek {
    fn kek_id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, dek: &[u8; DEK_LEN], ctx: &WrapContext<'_>) -> Result<Vec<u8>, CryptoError> {
        let plaintext = Zeroizing::new(STANDARD.encode(dek));
        let request = EncryptRequest {
            key_id: &self.key_id,
            plaintext: &plaintext,
            encryption_context: EncryptionContext::of(ctx),
        };
        let response: CiphertextResponse =
            self.call("TrentService.Encrypt", &request).await.map_err(|e| e.into_crypto("wrap"))?;
        STANDARD.decode(response.ciphertext_blob).map_err(|_| malformed("wrap"))
    }

    async fn unwrap(&self, wrapped: &[u8], ctx: &WrapContext<'_>) -> Result<Zeroizing<[u8; DEK_LEN]>, CryptoError> {
        if wrapped.is_empty() || wrapped.len() > MAX_CIPHERTEXT {
            return Err(CryptoError::Unwrap);
        }
        let blob = STANDARD.encode(wrapped);
        // KeyId makes KMS refuse a blob made under another key instead of using that key.
        let request = DecryptRequest {
            key_id: &self.key_id,
            ciphertext_blob: &blob,
            encryption_context: EncryptionContext::of(ctx),
        };
        let response: PlaintextResponse =
            self.call("TrentService.Decrypt", &request).await.map_err(|e| e.into_crypto("unwrap"))?;
        let plaintext = Zeroizing::new(response.plaintext);
        // KMS decrypted something that is not a DEK: not ours.
        decode_dek(&plaintext).ok_or(CryptoError::Unwrap)
    }
}

fn decode_dek(b64: &str) -> Option<Zeroizing<[u8; DEK_LEN]>> {
    let bytes = Zeroizing::new(STANDARD.decode(b64).ok()?);
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    if bytes.len() != DEK_LEN {
        return None;
    }
    dek.copy_from_slice(&bytes);
    Some(dek)
}

fn malformed(operation: &'static str) -> CryptoError {
    tracing::warn!(operation, "KMS answered with a malformed key");
    CryptoError::KeyUnavailable
}

fn transport_cause(e: &reqwest::Error) -> String {
    // reqwest's Display names the URL, which holds no credentials; the source says why.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str) -> CallError {
        CallError::Service { status: 400, code: code.into() }
    }

    #[test]
    fn reads_the_exception_name_from_kms_error_answers() {
        assert_eq!(
            error_code(None, br#"{"__type":"DisabledException","message":"k is disabled"}"#),
            "DisabledException"
        );
        assert_eq!(
            error_code(None, br#"{"__type":"com.amazonaws.kms#KMSInvalidStateException","Message":"x"}"#),
            "KMSInvalidStateException"
        );
        assert_eq!(
            error_code(Some("AccessDeniedException:http://internal.amazon.com/coral/"), b"<html>"),
            "AccessDeniedException"
        );
        assert_eq!(
            error_code(
                None,
                b"<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code></Error></Errors></ErrorResponse>"
            ),
            "SignatureDoesNotMatch"
        );
        assert_eq!(error_code(None, b""), "");
    }

    #[test]
    fn only_bad_ciphertexts_are_permanent() {
        for code in ["InvalidCiphertextException", "IncorrectKeyException"] {
            assert_eq!(classify(&service(code)), CryptoError::Unwrap, "{code}");
        }
        for code in [
            "DisabledException",
            "KeyUnavailableException",
            "NotFoundException",
            "AccessDeniedException",
            "KMSInvalidStateException",
            "ThrottlingException",
            "KMSInternalException",
            "UnrecognizedClientException",
            "",
        ] {
            assert_eq!(classify(&service(code)), CryptoError::KeyUnavailable, "{code}");
        }
        assert_eq!(classify(&CallError::Service { status: 503, code: String::new() }), CryptoError::KeyUnavailable);
        assert_eq!(classify(&CallError::Transport("timed out".into())), CryptoError::KeyUnavailable);
    }

    #[test]
    fn config_debug_hides_secrets() {
        let mut config = AwsKmsConfig::new(
            Url::parse("https://kms.eu-west-1.amazonaws.com").unwrap(),
            "eu-west-1",
            "alias/chimatic",
            "AKIDEXAMPLE",
            SecretString::from("secret-canary"),
        );
        config.session_token = Some(SecretString::from("token-canary"));
        let text = format!("{config:?}");
        assert!(text.contains("AKIDEXAMPLE") && text.contains("alias/chimatic"));
        assert!(!text.contains("canary"), "{text}");
        let kek = AwsKmsKek::new(config).unwrap();
        assert_eq!(kek.kek_id(), "aws-kms:alias/chimatic");
        assert!(!format!("{kek:?}").contains("canary"));
    }

    #[test]
    fn refuses_non_http_endpoints() {
        let config = AwsKmsConfig::new(Url::parse("file:///tmp/kms").unwrap(), "r", "k", "a", SecretString::from("s"));
        assert!(matches!(AwsKmsKek::new(config), Err(AwsKmsConfigError::Endpoint(_))));
    }
}
