//! Test support: a real KMS-compatible server (moto 5.2's `moto_server`, from PyPI
//! `moto[server]`) on a free loopback port, with IAM authentication on, killed on drop. Used by
//! this crate's tests and by the server's integration tests (feature `test-support`).
//!
//! After the first three calls moto checks every SigV4 signature against known access keys and
//! applies IAM policies, so a Deny policy stands in for a customer revoking access to their key
//! (moto 5.2.1 ignores a key's enabled state on Encrypt and Decrypt).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support: a failure is a failed test

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

use crate::{AwsKmsConfig, AwsKmsKek, SigV4Signer};

pub const REGION: &str = "eu-west-1";

pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    pub fn signer(&self, region: &str) -> SigV4Signer {
        let token = self.session_token.as_deref().map(SecretString::from);
        SigV4Signer::new(
            &self.access_key_id,
            &SecretString::from(self.secret_access_key.as_str()),
            token.as_ref(),
            region,
        )
    }
}

pub struct Moto {
    child: Child,
    pub url: Url,
    log: PathBuf,
    http: reqwest::Client,
    /// An IAM user allowed kms:*, iam:* and sts:*.
    pub admin: Credentials,
    /// A key created by `admin`.
    pub key_id: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

pub fn moto_server_binary() -> PathBuf {
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
    pub async fn start() -> Self {
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
    pub async fn signed(
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
    pub async fn query(&self, creds: &Credentials, service: &str, version: &str, params: &[(&str, &str)]) -> String {
        let version = [("Version", version)];
        let pairs: Vec<String> =
            params.iter().chain(&version).map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
        let body = pairs.join("&").into_bytes();
        let headers = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
        let (status, text) = self.signed(creds, service, "us-east-1", &headers, body).await;
        assert_eq!(status, 200, "{service} {params:?}: {text}");
        text
    }

    pub async fn iam(&self, params: &[(&str, &str)]) -> String {
        self.query(&self.admin, "iam", "2010-05-08", params).await
    }

    /// A KMS JSON call that must succeed.
    pub async fn kms(&self, creds: &Credentials, operation: &str, body: Value) -> Value {
        let target = format!("TrentService.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let (status, text) = self.signed(creds, "kms", REGION, &headers, body.to_string().into_bytes()).await;
        assert_eq!(status, 200, "{operation}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// A new IAM user with an inline policy allowing kms:*, and its access key.
    pub async fn user(&self, name: &str) -> Credentials {
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

    pub fn config(&self, creds: &Credentials) -> AwsKmsConfig {
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

    pub fn kek(&self) -> AwsKmsKek {
        AwsKmsKek::new(self.config(&self.admin)).unwrap()
    }
}

/// Python's `urlencode`: moto re-encodes the form it parsed this way to check the signature,
/// so the body must already be in that form (`url`'s encoder leaves `*` bare, Python does not).
pub fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {xml}")) + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    xml[start..end].to_owned()
}
