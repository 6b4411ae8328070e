//! Outbound TLS end to end: a channel's TLS policy (TLS 1.2 opt-in, SPKI pins) reaches the
//! delivery, against real TLS receivers on 127.0.0.1 signed by a test CA that the server trusts
//! through CHIMATIC_OUTBOUND_CA_FILE.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::post;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

use crate::harness::{ServerOptions, TestServer};

/// A TLS receiver offering exactly one protocol version, with a certificate from `issuer`.
struct TlsReceiver {
    url: String,
    /// `sha256/<base64>` of its public key.
    pin: String,
    hits: Arc<AtomicUsize>,
}

impl TlsReceiver {
    async fn start(issuer: &Issuer<'static, KeyPair>, version: &'static rustls::SupportedProtocolVersion) -> Self {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key.subject_public_key_info());
        let pin = format!("sha256/{}", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()));
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                )
                .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let router = axum::Router::new().route(
            "/hook",
            post(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::NO_CONTENT
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://localhost:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, service) = (acceptor.clone(), TowerToHyperService::new(router.clone()));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Self { url, pin, hits }
    }
}

fn test_ca() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "chimatic outbound test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// Creates a channel with `tls`, sends one notification, and returns its first attempt.
async fn first_attempt(server: &TestServer, key: &str, url: &str, tls: Value) -> Value {
    let r = server.post("/v1/channels", key, json!({"type": "webhook", "url": url, "tls": tls})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["tls"], tls, "the policy is shown back");
    let sent = server.post("/v1/notifications", key, json!({"channel_id": r.json["id"], "payload": {"n": 1}})).await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let id = sent.json["id"].as_str().unwrap();
    let n = server.wait_notification(key, id, |n| !n["attempts"].as_array().unwrap().is_empty()).await;
    n["attempts"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_channels_tls_policy_governs_its_deliveries() {
    let (ca_pem, issuer) = test_ca();
    let tmp = tempfile::tempdir().unwrap();
    let ca_file = tmp.path().join("outbound-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let server = TestServer::spawn_with(
        ServerOptions::default().env("CHIMATIC_OUTBOUND_CA_FILE", ca_file.to_str().unwrap()).log("info"),
    )
    .await;
    let ws = server.workspace("tls");
    let default_policy = json!({"allow_tls12": false, "pins": []});

    // TLS 1.3 receiver, default policy: delivered.
    let modern = TlsReceiver::start(&issuer, &rustls::version::TLS13).await;
    let a = first_attempt(&server, &ws.key, &modern.url, default_policy.clone()).await;
    assert_eq!(a["succeeded"], true, "{a}");
    assert_eq!(modern.hits.load(Ordering::SeqCst), 1);

    // A receiver offering only TLS 1.2 is refused by default, before any request is sent ...
    let legacy = TlsReceiver::start(&issuer, &rustls::version::TLS12).await;
    let a = first_attempt(&server, &ws.key, &legacy.url, default_policy.clone()).await;
    assert_eq!((a["succeeded"].as_bool(), a["error_class"].as_str()), (Some(false), Some("tls")), "{a}");
    assert_eq!(legacy.hits.load(Ordering::SeqCst), 0);
    // ... and reached only by a channel that opts in, which is logged.
    let a = first_attempt(&server, &ws.key, &legacy.url, json!({"allow_tls12": true, "pins": []})).await;
    assert_eq!(a["succeeded"], true, "{a}");
    assert_eq!(legacy.hits.load(Ordering::SeqCst), 1);
    assert!(server.log().contains("channel allows TLS 1.2"), "{}", server.log());

    // Pinned: another key's pin is refused without a request; the receiver's own pin delivers.
    let other = TlsReceiver::start(&issuer, &rustls::version::TLS13).await;
    let a = first_attempt(&server, &ws.key, &modern.url, json!({"allow_tls12": false, "pins": [other.pin]})).await;
    assert_eq!((a["succeeded"].as_bool(), a["error_class"].as_str()), (Some(false), Some("tls")), "{a}");
    assert_eq!(modern.hits.load(Ordering::SeqCst), 1, "a pin mismatch must not reach the receiver");
    let a = first_attempt(&server, &ws.key, &modern.url, json!({"allow_tls12": false, "pins": [modern.pin]})).await;
    assert_eq!(a["succeeded"], true, "{a}");
    assert_eq!(modern.hits.load(Ordering::SeqCst), 2);

    // Bad policies are refused with a clear error and create nothing.
    let before = server.get("/v1/channels", &ws.key).await.json["data"].as_array().unwrap().len();
    for (tls, url) in [
        (json!({"pins": ["sha256/not-base64"]}), modern.url.clone()),
        (json!({"pins": ["md5/AAAA"]}), modern.url.clone()),
        (json!({"pins": [modern.pin, modern.pin]}), modern.url.clone()),
        (json!({"allow_tls12": true}), "http://127.0.0.1:9/hook".to_string()),
    ] {
        let r = server.post("/v1/channels", &ws.key, json!({"type": "webhook", "url": url, "tls": tls})).await;
        r.assert_problem(422, "invalid_tls_policy");
    }
    let r = server
        .post("/v1/channels", &ws.key, json!({"type": "webhook", "url": modern.url, "tls": {"min": "1.2"}}))
        .await;
    r.assert_problem(422, "invalid_body");
    let after = server.get("/v1/channels", &ws.key).await.json["data"].as_array().unwrap().len();
    assert_eq!(before, after);
}
