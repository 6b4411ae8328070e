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
use std::time::{Duration, Instant};

use chimatic_crypto::kek::{KekProvider, WrapContext};
use chimatic_crypto::{CryptoError, DEK_LEN};
use chimatic_keys::test_support::{Credentials, Moto, REGION, xml_text};
use chimatic_keys::{AwsKmsConfig, AwsKmsKek};
use secrecy::SecretString;
use serde_json::json;
use url::Url;

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
