//! Provider health checks against real servers on 127.0.0.1: an SMTP server (aiosmtpd, from
//! Debian's python3-aiosmtpd) with STARTTLS or implicit TLS and AUTH, and HTTP stand-ins for a
//! Twilio-compatible SMS API and Slack's Web API that check authentication. No check sends a
//! message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{Value, json};

use crate::harness::{ServerOptions, TestServer};

/// The system Python, where Debian's `python3-aiosmtpd` is installed.
const PYTHON: &str = "/usr/bin/python3";

pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A test CA and a `localhost` server certificate signed by it, as PEM files.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "chimatic provider test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Self { dir }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// aiosmtpd in a child process; killed on drop.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    out: PathBuf,
    child: Child,
}

impl SmtpServer {
    pub(crate) fn start(pki: &Pki, mode: &str, tls12_only: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = pki.dir.path().join(format!("smtp-{port}.jsonl"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_server.py");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script).arg(port.to_string()).arg(mode).arg(pki.path("server.pem")).arg(pki.path("server.key"));
        cmd.args(["mailer", "right-password"]).arg(&out);
        if tls12_only {
            cmd.arg("tls12");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd is required (Debian: apt-get install python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Self { port, out, child }
    }

    /// The events written so far; a line the server is still writing (no newline yet) waits
    /// for the next read.
    pub(crate) fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stand-ins for the SMS and Slack APIs, checking credentials the way the real ones do.
async fn http_providers() -> String {
    let sms_auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("AC0123456789:sms-token"));
    let router = axum::Router::new()
        .route(
            "/sms/2010-04-01/Accounts/{file}",
            get(move |UrlPath(file): UrlPath<String>, headers: HeaderMap| async move {
                let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(sms_auth.as_str());
                if file == "AC0123456789.json" && authorized {
                    (StatusCode::OK, axum::Json(json!({"sid": "AC0123456789", "status": "active"})))
                } else {
                    (StatusCode::UNAUTHORIZED, axum::Json(json!({"code": 20003})))
                }
            }),
        )
        .route(
            "/slack/auth.test",
            post(|headers: HeaderMap| async move {
                let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer xoxb-right");
                axum::Json(if ok {
                    json!({"ok": true, "team": "T1"})
                } else {
                    json!({"ok": false, "error": "invalid_auth"})
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn integration(server: &TestServer, key: &str, body: Value) -> String {
    let r = server.post("/v1/integrations", key, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().unwrap().to_string()
}

async fn check(server: &TestServer, key: &str, id: &str) -> Value {
    let r = server.call("POST", &format!("/v1/integrations/{id}/check"), Some(key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

fn smtp(port: u16, security: &str, password: &str) -> Value {
    json!({"kind": "smtp", "name": "mail",
           "settings": {"host": "localhost", "port": port, "security": security, "from": "noreply@example.com"},
           "credentials": {"username": "mailer", "password": password}})
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_health_checks_prove_tls_and_credentials_without_sending_anything() {
    let pki = Pki::new();
    let options = ServerOptions::default()
        .env("CHIMATIC_OUTBOUND_CA_FILE", pki.path("ca.pem").to_str().unwrap())
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "3600");
    let server = TestServer::spawn_with(options).await;
    let ws = server.workspace("providers");
    let (starttls, implicit, tls12) = (
        SmtpServer::start(&pki, "starttls", false),
        SmtpServer::start(&pki, "implicit", false),
        SmtpServer::start(&pki, "starttls", true),
    );

    // STARTTLS and implicit TLS with the right password: healthy; AUTH happened over TLS; no mail.
    for (smtp_server, security) in [(&starttls, "starttls"), (&implicit, "implicit")] {
        let id = integration(&server, &ws.key, smtp(smtp_server.port, security, "right-password")).await;
        let result = check(&server, &ws.key, &id).await;
        assert_eq!(
            (result["healthy"].as_bool(), &result["error_class"]),
            (Some(true), &Value::Null),
            "{security}: {result}"
        );
        let events = smtp_server.events();
        assert!(events.iter().any(|e| e["event"] == "auth" && e["ok"] == true && e["tls"] == true), "{events:?}");
        assert!(events.iter().all(|e| e["event"] != "message"), "a check sent a message: {events:?}");
        let shown = server.get(&format!("/v1/integrations/{id}"), &ws.key).await;
        assert_eq!(shown.json["last_check"]["healthy"], true, "{}", shown.text);
    }

    // Wrong password: refused by the server, reported as such.
    let id = integration(&server, &ws.key, smtp(starttls.port, "starttls", "wrong-password")).await;
    let result = check(&server, &ws.key, &id).await;
    assert_eq!(
        (result["healthy"].as_bool(), result["error_class"].as_str()),
        (Some(false), Some("auth_rejected")),
        "{result}"
    );
    let shown = server.get(&format!("/v1/integrations/{id}"), &ws.key).await;
    assert_eq!(shown.json["last_check"]["error_class"], "auth_rejected", "{}", shown.text);

    // A server that offers only TLS 1.2 is refused before any credential is sent.
    let id = integration(&server, &ws.key, smtp(tls12.port, "starttls", "right-password")).await;
    let result = check(&server, &ws.key, &id).await;
    assert_eq!((result["healthy"].as_bool(), result["error_class"].as_str()), (Some(false), Some("tls")), "{result}");
    assert!(tls12.events().is_empty(), "credentials reached a TLS 1.2 server: {:?}", tls12.events());

    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let id = integration(&server, &ws.key, smtp(closed, "starttls", "right-password")).await;
    assert_eq!(check(&server, &ws.key, &id).await["error_class"], "connect");

    // SMS and Slack: authenticated no-op calls.
    let base = http_providers().await;
    let sms = |token: &str| {
        json!({"kind": "sms", "name": "sms",
               "settings": {"base_url": format!("{base}/sms"), "account_id": "AC0123456789", "from": "+14155550100"},
               "credentials": {"auth_token": token}})
    };
    let slack = |token: &str| {
        json!({"kind": "slack", "name": "slack", "settings": {"api_base": format!("{base}/slack")},
               "credentials": {"bot_token": token}})
    };
    for (body, healthy, class) in [
        (sms("sms-token"), true, Value::Null),
        (sms("wrong"), false, json!("auth_rejected")),
        (slack("xoxb-right"), true, Value::Null),
        (slack("xoxb-wrong"), false, json!("auth_rejected")),
    ] {
        let id = integration(&server, &ws.key, body.clone()).await;
        let result = check(&server, &ws.key, &id).await;
        assert_eq!((result["healthy"].as_bool(), &result["error_class"]), (Some(healthy), &class), "{body}: {result}");
    }

    // A webhook integration has nothing to check.
    let id = integration(&server, &ws.key, json!({"kind": "webhook", "name": "hooks"})).await;
    server
        .call("POST", &format!("/v1/integrations/{id}/check"), Some(&ws.key), None)
        .await
        .assert_problem(422, "not_checkable");
}

#[tokio::test(flavor = "multi_thread")]
async fn integrations_are_checked_periodically() {
    let pki = Pki::new();
    let smtp_server = SmtpServer::start(&pki, "starttls", false);
    let options = ServerOptions::default()
        .env("CHIMATIC_OUTBOUND_CA_FILE", pki.path("ca.pem").to_str().unwrap())
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "1");
    let server = TestServer::spawn_with(options).await;
    let ws = server.workspace("periodic");
    let good = integration(&server, &ws.key, smtp(smtp_server.port, "starttls", "right-password")).await;
    let bad = integration(&server, &ws.key, smtp(smtp_server.port, "starttls", "wrong-password")).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    loop {
        let g = server.get(&format!("/v1/integrations/{good}"), &ws.key).await.json;
        let b = server.get(&format!("/v1/integrations/{bad}"), &ws.key).await.json;
        seen.lock().unwrap().push((g["last_check"].clone(), b["last_check"].clone()));
        if g["last_check"]["healthy"] == true && b["last_check"]["error_class"] == "auth_rejected" {
            break;
        }
        assert!(Instant::now() < deadline, "no periodic check recorded: {:?}", seen.lock().unwrap().last());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Checked again later: the check time moves on.
    let first = server.get(&format!("/v1/integrations/{good}"), &ws.key).await.json["last_check"]["at"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = server.get(&format!("/v1/integrations/{good}"), &ws.key).await.json["last_check"]["at"].clone();
        if now != first {
            break;
        }
        assert!(Instant::now() < deadline, "the integration was checked only once");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(smtp_server.events().iter().all(|e| e["event"] != "message"));
}
