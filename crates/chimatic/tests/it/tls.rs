//! Inbound TLS: 1.3 only, HTTP/2 by ALPN, HSTS, and certificate reload on SIGHUP.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{ServerOptions, TestServer};

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn self_signed(common_name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client(trusting: &str, max_tls12: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(trusting.as_bytes()).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(10));
    if max_tls12 {
        b = b.tls_version_max(reqwest::tls::Version::TLS_1_2);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_tls_1_3_only_with_http2_and_hsts_and_the_certificate_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (cert_a, key_a) = self_signed("chimatic-a");
    std::fs::write(&cert_path, &cert_a).unwrap();
    std::fs::write(&key_path, &key_a).unwrap();
    let opts = ServerOptions::default()
        .env("CHIMATIC_TLS_CERT", cert_path.to_str().unwrap())
        .env("CHIMATIC_TLS_KEY", key_path.to_str().unwrap());
    let server = TestServer::spawn_with(opts).await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let health = format!("{}/healthz", server.base);

    let r = client(&cert_a, false).get(&health).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    assert!(r.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));

    let old = client(&cert_a, true).get(&health).send().await;
    assert!(old.is_err(), "a TLS 1.2 client must be refused");
    let plain = reqwest::get(health.replace("https://", "http://")).await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true), "no plaintext HTTP on the TLS port");

    // A new certificate on disk and a SIGHUP: new handshakes present it, without a restart.
    let (cert_b, key_b) = self_signed("chimatic-b");
    std::fs::write(&cert_path, &cert_b).unwrap();
    std::fs::write(&key_path, &key_b).unwrap();
    let pid = server.pid().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("TLS certificate reloaded") {
        assert!(Instant::now() < deadline, "no reload logged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = client(&cert_b, false).get(&health).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(client(&cert_a, false).get(&health).send().await.is_err(), "the old certificate is gone");

    // A broken file on reload keeps the current certificate.
    std::fs::write(&key_path, "not a key").unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("TLS certificate reload failed") {
        assert!(Instant::now() < deadline, "no failed reload logged:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!server.log().contains("not a key"), "file contents are never logged");
    assert_eq!(client(&cert_b, false).get(&health).send().await.unwrap().status(), 200);
}
