//! `AwsKmsKek` against a real KMS-compatible server: moto 5.2 (`moto_server`, from PyPI
//! `moto[server]`), one server per test on a free loopback port, killed on drop.
//!
//! Each server runs with moto's IAM authentication on (the `reset-auth` switch after the first
//! three calls): every later request must carry a valid SigV4 signature of a known access key,
//! and IAM policies apply. So these tests also prove the signing, and the "access revoked" case.
//!
//! moto 5.2.1 does not enforce a key's state on Encrypt, Decrypt or GenerateDataKey (checked:
//! all three succeed on a disabled key), so there is no DisableKey test here: mapping
//! `DisabledException` and the other KMS exceptions is covered by the unit tests in
//! `src/aws_kms.rs`, and a revoked IAM permission stands in for a refused key.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use chimatic_crypto::kek::{KekProvider, WrapContext};
use chimatic_crypto::{CryptoError, DEK_LEN};
use chimatic_keys::{AwsKmsConfig, AwsKmsKek, SigV4Signer};
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

const REGION: &str = "eu-west-1";

struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    fn signer(&self, region: &str) -> SigV4Signer {
        let token = self.session_token.as_deref().map(SecretString::from);
        SigV4Signer::new(
            &self.access_key_id,
            &SecretString::from(self.secret_access_key.as_str()),
            token.as_ref(),
            region,
        )
    }
}

struct Moto {
    child: Child,
    url: Url,
    log: PathBuf,
    http: reqwest::Client,
    /// An IAM user allowed kms:*, iam:* and sts:*.
    admin: Credentials,
    /// A key created by `admin`.
    key_id: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn moto_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CHIMATIC_TEST_MOTO_SERVER") {
        return path.into();
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "moto_server not found: install moto (pip install 'moto[server]==5.2.1', in a venv on Debian) \
             and put moto_server on PATH or set CHIMATIC_TEST_MOTO_SERVER to its path"
        )
    })
}

impl Moto {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("chimatic-moto-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).unwrap();
        let binary = moto_server_binary();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| {
                let _ = std::fs::remove_file(&log);
                panic!("cannot start {} ({e}): install moto[server] 5.2.1", binary.display())
            });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let mut moto = Moto {
            child,
            url,
            log,
            http,
            admin: Credentials {
                access_key_id: "bootstrap".into(),
                secret_access_key: "bootstrap".into(),
                session_token: None,
            },
            key_id: String::new(),
        };
        moto.wait_until_ready().await;

        // The next three calls go unauthenticated; from then on moto checks every signature.
        let reset = moto.http.post(moto.url.join("moto-api/reset-auth").unwrap()).body("3").send().await.unwrap();
        assert!(reset.status().is_success(), "moto reset-auth: {}", reset.status());
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["kms:*", "iam:*", "sts:*"], "Resource": "*"}]
        });
        moto.iam(&[("Action", "CreateUser"), ("UserName", "admin")]).await;
        moto.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "admin"),
            ("PolicyName", "admin"),
            ("PolicyDocument", &policy.to_string()),
        ])
        .await;
        let xml = moto.iam(&[("Action", "CreateAccessKey"), ("UserName", "admin")]).await;
        moto.admin = Credentials {
            access_key_id: xml_text(&xml, "AccessKeyId"),
            secret_access_key: xml_text(&xml, "SecretAccessKey"),
            session_token: None,
        };
        let created = moto.kms(&moto.admin, "CreateKey", json!({"Description": "chimatic test KEK"})).await;
        moto.key_id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
        moto
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("moto_server exited ({status}): {}", std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            if self.http.get(self.url.join("moto-api/").unwrap()).send().await.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "moto_server did not answer within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A signed request; returns the status and body.
    async fn signed(
        &self,
        creds: &Credentials,
        service: &str,
        region: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String) {
        let signed =
            creds.signer(region).sign(service, "POST", self.url.as_str(), headers, &body, SystemTime::now()).unwrap();
        let mut request = self.http.post(self.url.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// An IAM (or STS) query-protocol call that must succeed; returns the XML answer.
    async fn query(&self, creds: &Credentials, service: &str, version: &str, params: &[(&str, &str)]) -> String {
        let version = [("Version", version)];
        let pairs: Vec<String> =
            params.iter().chain(&version).map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
        let body = pairs.join("&").into_bytes();
        let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let (status, text) = self.signed(creds, service, "us-east-1", &headers, body).await;
        assert_eq!(status, 200, "{service} {params:?}: {text}");
        text
    }

    async fn iam(&self, params: &[(&str, &str)]) -> String {
        self.query(&self.admin, "iam", "2010-05-08", params).await
    }

    /// A KMS JSON call that must succeed.
    async fn kms(&self, creds: &Credentials, operation: &str, body: Value) -> Value {
        let target = format!("TrentService.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let (status, text) = self.signed(creds, "kms", REGION, &headers, body.to_string().into_bytes()).await;
        assert_eq!(status, 200, "{operation}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A new IAM user with an inline policy allowing kms:*, and its access key.
    async fn user(&self, name: &str) -> Credentials {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]).await;
        let policy =
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]});
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "kms"),
            ("PolicyDocument", &policy.to_string()),
        ])
        .await;
        let xml = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]).await;
        Credentials {
            access_key_id: xml_text(&xml, "AccessKeyId"),
            secret_access_key: xml_text(&xml, "SecretAccessKey"),
            session_token: None,
        }
    }

    fn config(&self, creds: &Credentials) -> AwsKmsConfig {
        let mut config = AwsKmsConfig::new(
            self.url.clone(),
            REGION,
            &self.key_id,
            &creds.access_key_id,
            SecretString::from(creds.secret_access_key.as_str()),
        );
        config.session_token = creds.session_token.as_deref().map(SecretString::from);
        config
    }

    fn kek(&self) -> AwsKmsKek {
        AwsKmsKek::new(self.config(&self.admin)).unwrap()
    }
}

/// Python's `urlencode`: moto re-encodes the form it parsed this way to check the signature,
/// so the body must already be in that form (`url`'s encoder leaves `*` bare, Python does not).
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    xml[start..end].to_owned()
}

fn ctx(workspace: &str) -> WrapContext<'_> {
    WrapContext { store: "data", workspace, dek_version: 1 }
}

fn dek() -> [u8; DEK_LEN] {
    chimatic_crypto::random::bytes::<DEK_LEN>().unwrap()
}

#[tokio::test]
async fn round_trip() {
    let moto = Moto::start().await;
    let kek = moto.kek();
    assert_eq!(kek.kek_id(), format!("aws-kms:{}", moto.key_id));
    let dek = dek();
    let wrapped = kek.wrap(&dek, &ctx("ws_a")).await.unwrap();
    assert!(!wrapped.windows(DEK_LEN).any(|w| w == dek), "the DEK appears in clear");
    assert_eq!(*kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap(), dek);
    assert_ne!(kek.wrap(&dek, &ctx("ws_a")).await.unwrap(), wrapped, "every wrap is fresh");
}

#[tokio::test]
async fn context_binding() {
    let moto = Moto::start().await;
    let kek = moto.kek();
    let wrapped = kek.wrap(&dek(), &ctx("ws_a")).await.unwrap();
    let others = [
        WrapContext { store: "data", workspace: "ws_b", dek_version: 1 },
        WrapContext { store: "vault", workspace: "ws_a", dek_version: 1 },
        WrapContext { store: "data", workspace: "ws_a", dek_version: 2 },
    ];
    for other in &others {
        assert_eq!(kek.unwrap(&wrapped, other).await.unwrap_err(), CryptoError::Unwrap);
    }
    assert!(kek.unwrap(&wrapped, &ctx("ws_a")).await.is_ok());
}

#[tokio::test]
async fn tampered_ciphertext_fails_with_unwrap() {
    let moto = Moto::start().await;
    let kek = moto.kek();
    let wrapped = kek.wrap(&dek(), &ctx("ws_a")).await.unwrap();
    // moto's blob opens with the 36-byte key id (AWS's with its own key reference): a flip
    // there names a key that does not exist, which both answer as a refusal, not a bad
    // ciphertext. Every byte after it is IV, ciphertext or tag.
    for i in 36..wrapped.len() {
        let mut bad = wrapped.clone();
        bad[i] ^= 0x01;
        assert_eq!(kek.unwrap(&bad, &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap, "flip at byte {i}");
    }
    assert_eq!(kek.unwrap(&wrapped[..wrapped.len() - 1], &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap);
    assert_eq!(kek.unwrap(&[], &ctx("ws_a")).await.unwrap_err(), CryptoError::Unwrap);
}

#[tokio::test]
async fn generate_data_key_round_trip() {
    let moto = Moto::start().await;
    let kek = moto.kek();
    let (dek, wrapped) = kek.generate_data_key(&ctx("ws_a")).await.unwrap();
    assert_ne!(*dek, [0u8; DEK_LEN]);
    assert_eq!(*kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap(), *dek);
    assert_eq!(kek.unwrap(&wrapped, &ctx("ws_b")).await.unwrap_err(), CryptoError::Unwrap);
    let (other, _) = kek.generate_data_key(&ctx("ws_a")).await.unwrap();
    assert_ne!(*other, *dek);
}

#[tokio::test]
async fn revoked_access_gives_key_unavailable_then_recovers() {
    let moto = Moto::start().await;
    let app = moto.user("chimatic-app").await;
    let kek = AwsKmsKek::new(moto.config(&app)).unwrap();
    let dek = dek();
    let wrapped = kek.wrap(&dek, &ctx("ws_a")).await.unwrap();

    // The customer revokes Chimatic's access to the key.
    let deny = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]});
    moto.iam(&[
        ("Action", "PutUserPolicy"),
        ("UserName", "chimatic-app"),
        ("PolicyName", "deny"),
        ("PolicyDocument", &deny.to_string()),
    ])
    .await;
    assert_eq!(kek.wrap(&dek, &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
    assert_eq!(kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
    assert_eq!(kek.generate_data_key(&ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);

    // And restores it: the same wrapped DEK opens again.
    moto.iam(&[("Action", "DeleteUserPolicy"), ("UserName", "chimatic-app"), ("PolicyName", "deny")]).await;
    assert_eq!(*kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap(), dek);
    assert!(kek.wrap(&dek, &ctx("ws_a")).await.is_ok());
}

#[tokio::test]
async fn wrong_credentials_give_key_unavailable() {
    let moto = Moto::start().await;
    let wrapped = moto.kek().wrap(&dek(), &ctx("ws_a")).await.unwrap();
    let wrong_secret = Credentials {
        access_key_id: moto.admin.access_key_id.clone(),
        secret_access_key: "not-the-secret".into(),
        session_token: None,
    };
    let kek = AwsKmsKek::new(moto.config(&wrong_secret)).unwrap();
    assert_eq!(kek.wrap(&dek(), &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
    assert_eq!(kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
    let unknown_id = Credentials {
        access_key_id: "AKIAUNKNOWNUNKNOWN00".into(),
        secret_access_key: moto.admin.secret_access_key.clone(),
        session_token: None,
    };
    let kek = AwsKmsKek::new(moto.config(&unknown_id)).unwrap();
    assert_eq!(kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
}

#[tokio::test]
async fn session_credentials_are_signed_with_their_token() {
    let moto = Moto::start().await;
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]
    });
    let policy =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]});
    let role = moto
        .iam(&[("Action", "CreateRole"), ("RoleName", "kms-user"), ("AssumeRolePolicyDocument", &trust.to_string())])
        .await;
    moto.iam(&[
        ("Action", "PutRolePolicy"),
        ("RoleName", "kms-user"),
        ("PolicyName", "kms"),
        ("PolicyDocument", &policy.to_string()),
    ])
    .await;
    let role_arn = xml_text(&role, "Arn");
    let assumed = moto
        .query(
            &moto.admin,
            "sts",
            "2011-06-15",
            &[("Action", "AssumeRole"), ("RoleArn", &role_arn), ("RoleSessionName", "chimatic")],
        )
        .await;
    let session = Credentials {
        access_key_id: xml_text(&assumed, "AccessKeyId"),
        secret_access_key: xml_text(&assumed, "SecretAccessKey"),
        session_token: Some(xml_text(&assumed, "SessionToken")),
    };
    let kek = AwsKmsKek::new(moto.config(&session)).unwrap();
    let dek = dek();
    let wrapped = kek.wrap(&dek, &ctx("ws_a")).await.unwrap();
    assert_eq!(*kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap(), dek);
    // The same key pair without its token is refused.
    let without_token = Credentials { session_token: None, ..session };
    let kek = AwsKmsKek::new(moto.config(&without_token)).unwrap();
    assert_eq!(kek.unwrap(&wrapped, &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
}

#[tokio::test]
async fn unknown_key_gives_key_unavailable() {
    let moto = Moto::start().await;
    let mut config = moto.config(&moto.admin);
    config.key_id = "00000000-0000-0000-0000-000000000000".into();
    let kek = AwsKmsKek::new(config).unwrap();
    assert_eq!(kek.wrap(&dek(), &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
    assert_eq!(kek.generate_data_key(&ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
}

#[tokio::test]
async fn unreachable_or_silent_endpoints_give_key_unavailable_within_the_timeout() {
    // Nothing listens on a port just released.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // This one accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    for port in [closed, silent_port] {
        let mut config = AwsKmsConfig::new(
            Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
            REGION,
            "00000000-0000-0000-0000-000000000000",
            "AKIDEXAMPLE",
            SecretString::from("secret"),
        );
        config.timeout = Duration::from_millis(500);
        let kek = AwsKmsKek::new(config).unwrap();
        let started = Instant::now();
        assert_eq!(kek.wrap(&dek(), &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
        assert_eq!(kek.unwrap(&[1u8; 100], &ctx("ws_a")).await.unwrap_err(), CryptoError::KeyUnavailable);
        assert!(started.elapsed() < Duration::from_secs(3), "port {port}: took {:?}", started.elapsed());
    }
    holder.abort();
}
