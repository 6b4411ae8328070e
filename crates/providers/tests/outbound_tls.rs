//! Outbound TLS against real receivers on 127.0.0.1: protocol versions, extra trusted roots and
//! SPKI pins. Every test checks what the receiver saw, not only what the sender reported.

#![allow(clippy::unwrap_used)] // a failed unwrap in a test is a failed test

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use chimatic_crypto::WebhookSignature;
use chimatic_domain::{OutboundTls, SpkiPin};
use chimatic_providers::{DestinationPolicy, SendOutcome, SenderBuildError, TrustError, WebhookSender};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData};
use rustls::ProtocolVersion;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const OPEN: DestinationPolicy = DestinationPolicy { allow_private: true };

/// A certificate authority that exists only for one test.
struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).unwrap();
        Self { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A server certificate for localhost and 127.0.0.1, signed by this CA.
    fn leaf(&self) -> Leaf {
        self.leaf_for(&["localhost", "127.0.0.1"])
    }

    fn leaf_for(&self, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "receiver");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert: cert.der().clone(), spki: key.subject_public_key_info(), key }
    }

    /// The CA certificate in a PEM file, as an operator would provide it.
    fn write_pem(&self, dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("extra-roots.pem");
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

struct Leaf {
    cert: CertificateDer<'static>,
    key: KeyPair,
    /// DER SubjectPublicKeyInfo, what a pin is the SHA-256 of.
    spki: Vec<u8>,
}

impl Leaf {
    fn pin(&self) -> SpkiPin {
        pin_of(&self.spki)
    }
}

/// The pin of a DER SubjectPublicKeyInfo, computed independently of the sender's own code.
fn pin_of(spki: &[u8]) -> SpkiPin {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki);
    SpkiPin::from_sha256(digest.as_ref().try_into().unwrap())
}

/// A webhook receiver over TLS that counts the requests that reach it and records the protocol
/// version of each completed handshake.
struct Receiver {
    port: u16,
    hits: Arc<AtomicUsize>,
    handshakes: Arc<Mutex<Vec<ProtocolVersion>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(leaf: &Leaf, version: &'static rustls::SupportedProtocolVersion) -> Self {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der()));
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.cert.clone()], key)
                .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let router = axum::Router::new()
            .route(
                "/hook",
                post(move || async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::NO_CONTENT
                }),
            )
            .route("/moved", post(|| async { (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", "/hook")]) }));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handshakes = Arc::new(Mutex::new(Vec::new()));
        let seen = handshakes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, service, seen) =
                    (acceptor.clone(), TowerToHyperService::new(router.clone()), seen.clone());
                tokio::spawn(async move {
                    // Refused handshakes are the point of several tests; they simply end here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    if let Some(v) = tls.get_ref().1.protocol_version() {
                        seen.lock().unwrap().push(v);
                    }
                    let _ = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Self { port, hits, handshakes, task }
    }

    fn url(&self, host: &str, path: &str) -> url::Url {
        url::Url::parse(&format!("https://{host}:{}{path}", self.port)).unwrap()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn handshakes(&self) -> Vec<ProtocolVersion> {
        self.handshakes.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn sender(policy: DestinationPolicy, extra_roots: Option<&std::path::Path>) -> WebhookSender {
    WebhookSender::new(policy, Duration::from_secs(10), extra_roots).unwrap()
}

async fn post_to(sender: &WebhookSender, url: &url::Url, tls: &OutboundTls) -> SendOutcome {
    let signature = WebhookSignature("v1,dGVzdA==".to_string());
    sender.send(url, tls, "msg_test", 1_700_000_000, &signature, br#"{"hello":"world"}"#.to_vec()).await
}

fn pinned(pins: Vec<SpkiPin>) -> OutboundTls {
    OutboundTls::new(false, pins).unwrap()
}

#[tokio::test]
async fn a_tls13_receiver_signed_by_a_trusted_extra_root_gets_the_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let receiver = Receiver::start(&ca.leaf(), &rustls::version::TLS13).await;
    let sender = sender(OPEN, Some(&ca.write_pem(&dir)));

    // By name (through the guarded resolver, with SNI) and by address.
    for host in ["localhost", "127.0.0.1"] {
        let outcome = post_to(&sender, &receiver.url(host, "/hook"), &OutboundTls::default()).await;
        assert_eq!((outcome.status_code, outcome.error_class), (Some(204), None), "{host}");
    }
    // A non-default policy builds its own client, which trusts the same extra roots.
    let outcome = post_to(&sender, &receiver.url("127.0.0.1", "/hook"), &OutboundTls::new(true, vec![]).unwrap()).await;
    assert_eq!((outcome.status_code, outcome.error_class), (Some(204), None));
    assert_eq!(receiver.hits(), 3);
    assert!(receiver.handshakes().iter().all(|v| *v == ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn a_tls12_only_receiver_is_refused_by_default_and_accepted_when_the_policy_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let leaf = ca.leaf();
    let receiver = Receiver::start(&leaf, &rustls::version::TLS12).await;
    let sender = sender(OPEN, Some(&ca.write_pem(&dir)));
    let url = receiver.url("127.0.0.1", "/hook");

    let refused = post_to(&sender, &url, &OutboundTls::default()).await;
    assert_eq!((refused.status_code, refused.error_class), (None, Some("tls")));
    assert_eq!(receiver.hits(), 0);
    assert!(receiver.handshakes().is_empty());

    let allowed = post_to(&sender, &url, &OutboundTls::new(true, vec![]).unwrap()).await;
    assert_eq!((allowed.status_code, allowed.error_class), (Some(204), None));
    assert_eq!(receiver.hits(), 1);
    assert_eq!(receiver.handshakes(), [ProtocolVersion::TLSv1_2]);

    // Pins apply over TLS 1.2 as well.
    let pinned12 = OutboundTls::new(true, vec![leaf.pin()]).unwrap();
    let outcome = post_to(&sender, &url, &pinned12).await;
    assert_eq!((outcome.status_code, outcome.error_class), (Some(204), None));
    let other = pin_of(&KeyPair::generate().unwrap().subject_public_key_info());
    let outcome = post_to(&sender, &url, &OutboundTls::new(true, vec![other]).unwrap()).await;
    assert_eq!((outcome.status_code, outcome.error_class), (None, Some("tls")));
    assert_eq!(receiver.hits(), 2);
}

#[tokio::test]
async fn a_pin_must_match_the_receivers_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let leaf = ca.leaf();
    let receiver = Receiver::start(&leaf, &rustls::version::TLS13).await;
    let sender = sender(OPEN, Some(&ca.write_pem(&dir)));
    let url = receiver.url("localhost", "/hook");
    let other_key = KeyPair::generate().unwrap();
    let other = pin_of(&other_key.subject_public_key_info());

    let outcome = post_to(&sender, &url, &pinned(vec![other])).await;
    assert_eq!((outcome.status_code, outcome.error_class), (None, Some("tls")));
    assert_eq!(receiver.hits(), 0);
    assert!(receiver.handshakes().is_empty(), "the client aborts before finishing the handshake");

    // One matching pin among several is enough (key rotation: current and next key).
    for pins in [vec![leaf.pin()], vec![other, leaf.pin()]] {
        let outcome = post_to(&sender, &url, &pinned(pins)).await;
        assert_eq!((outcome.status_code, outcome.error_class), (Some(204), None));
    }
    assert_eq!(receiver.hits(), 2);
}

#[tokio::test]
async fn a_matching_pin_never_replaces_chain_validation() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = TestCa::new("trusted ca");
    let untrusted = TestCa::new("untrusted ca");
    let leaf = untrusted.leaf();
    let receiver = Receiver::start(&leaf, &rustls::version::TLS13).await;
    let sender = sender(OPEN, Some(&trusted.write_pem(&dir)));

    let outcome = post_to(&sender, &receiver.url("127.0.0.1", "/hook"), &pinned(vec![leaf.pin()])).await;
    assert_eq!((outcome.status_code, outcome.error_class), (None, Some("tls")));
    assert_eq!(receiver.hits(), 0);

    // Nor does it excuse a certificate for another name, even from a trusted CA.
    let elsewhere = trusted.leaf_for(&["hooks.example"]);
    let receiver = Receiver::start(&elsewhere, &rustls::version::TLS13).await;
    let outcome = post_to(&sender, &receiver.url("127.0.0.1", "/hook"), &pinned(vec![elsewhere.pin()])).await;
    assert_eq!((outcome.status_code, outcome.error_class), (None, Some("tls")));
    assert_eq!(receiver.hits(), 0);
}

#[tokio::test]
async fn without_extra_roots_a_private_ca_is_not_trusted() {
    let ca = TestCa::new("test ca");
    let leaf = ca.leaf();
    let receiver = Receiver::start(&leaf, &rustls::version::TLS13).await;
    let sender = sender(OPEN, None);
    let url = receiver.url("127.0.0.1", "/hook");

    for tls in [OutboundTls::default(), OutboundTls::new(true, vec![]).unwrap(), pinned(vec![leaf.pin()])] {
        let outcome = post_to(&sender, &url, &tls).await;
        assert_eq!((outcome.status_code, outcome.error_class), (None, Some("tls")), "{tls:?}");
    }
    assert_eq!(receiver.hits(), 0);
}

#[tokio::test]
async fn every_client_keeps_the_guarded_resolver_and_refuses_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test ca");
    let leaf = ca.leaf();
    let receiver = Receiver::start(&leaf, &rustls::version::TLS13).await;
    let roots = ca.write_pem(&dir);
    let policies = [OutboundTls::default(), OutboundTls::new(true, vec![]).unwrap(), pinned(vec![leaf.pin()])];

    let strict = sender(DestinationPolicy { allow_private: false }, Some(&roots));
    for tls in &policies {
        let outcome = post_to(&strict, &receiver.url("localhost", "/hook"), tls).await;
        assert_eq!(outcome.error_class, Some("forbidden_destination"), "{tls:?}");
    }

    let open = sender(OPEN, Some(&roots));
    for tls in &policies {
        let outcome = post_to(&open, &receiver.url("127.0.0.1", "/moved"), tls).await;
        assert_eq!((outcome.status_code, outcome.error_class), (Some(307), Some("http_status")), "{tls:?}");
    }
    assert_eq!(receiver.hits(), 0, "redirects are not followed");
}

#[test]
fn unusable_extra_root_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let build = |path: &std::path::Path| WebhookSender::new(OPEN, Duration::from_secs(1), Some(path)).err();

    let missing = dir.path().join("missing.pem");
    assert!(matches!(build(&missing), Some(SenderBuildError::Trust(TrustError::Read { .. }))));

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    assert!(matches!(build(&empty), Some(SenderBuildError::Trust(TrustError::Empty { .. }))));

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
    let err = build(&garbage);
    assert!(matches!(err, Some(SenderBuildError::Trust(TrustError::Unusable { index: 1, .. }))), "{err:?}");
    assert!(err.unwrap().to_string().contains("garbage.pem"));
}
