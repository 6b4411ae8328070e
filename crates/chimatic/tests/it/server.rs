//! The process as an operator sees it: key injection, file permissions, health, metrics, CLI.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use base64::Engine;
use serde_json::json;

use crate::harness::{BIN, Receiver, ServerOptions, TestServer, cli, create_workspace};
use crate::store_probe::{Backend, Db, backend};

/// These tests are about the local KEK provider, whichever provider the suite runs with.
fn local() -> ServerOptions {
    ServerOptions::default().env("CHIMATIC_KEK_PROVIDER", "local")
}

fn kek_b64(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_is_owner_only_and_holds_a_generated_0600_development_key() {
    let server = TestServer::spawn_with(local()).await;
    crate::harness::create_workspace_with(&server.data_dir, "acme", &[("CHIMATIC_KEK_PROVIDER", "local".into())]);
    assert!(server.log().contains("generated a development key-encryption key"), "{}", server.log());
    let dir_mode = std::fs::metadata(&server.data_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?} has mode {mode:o}", entry.file_name());
        names.push(entry.file_name().into_string().unwrap());
    }
    let expected: &[&str] = match backend() {
        Backend::Sqlite => &["kek.key", "control.db", "data.db", "vault.db"],
        Backend::Postgres { .. } => &["kek.key"],
    };
    for expected in expected {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_injected_kek_is_used_and_a_different_kek_cannot_read_the_data() {
    let opts = local().env("CHIMATIC_KEK", &kek_b64(1));
    let mut server = TestServer::spawn_with(opts).await;
    let dir = server.keep_dir().unwrap();
    assert!(!server.data_dir.join("kek.key").exists(), "no development key when a KEK is injected");

    // The CLI must use the same injected key: workspace create with the env set.
    let out = cli(&server.data_dir)
        .args(["workspace", "create", "--name", "acme", "--data-dir"])
        .arg(&server.data_dir)
        .env("CHIMATIC_KEK", kek_b64(1))
        .env("CHIMATIC_KEK_PROVIDER", "local")
        .output()
        .unwrap();
    assert!(out.status.success());
    let ws: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = ws["api_key"].as_str().unwrap().to_string();
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&key, &receiver.url).await;
    server.terminate();

    // Same data, another KEK: authentication still works (digests are not encrypted) but no
    // encrypted value can be read.
    let other = local().env("CHIMATIC_KEK", &kek_b64(2));
    let server = TestServer::spawn_in(&dir.path().join("data"), other).await;
    let r = server.get(&format!("/v1/channels/{channel}"), &key).await;
    r.assert_problem(503, "key_unavailable");
    let r = server.post("/v1/notifications", &key, json!({"channel_id": channel, "payload": {}})).await;
    r.assert_problem(503, "key_unavailable");
}

#[test]
fn a_kek_file_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let kek = tmp.path().join("kek.b64");
    std::fs::write(&kek, kek_b64(3)).unwrap();
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli(&tmp.path().join("data"))
        .args(["workspace", "create", "--name", "x", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("CHIMATIC_KEK_FILE", &kek)
        .env("CHIMATIC_KEK_PROVIDER", "local")
        .env_remove("CHIMATIC_KEK")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("readable by group or others"), "{err}");
    assert!(!err.contains(&kek_b64(3)), "the key never appears in an error");

    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = cli(&tmp.path().join("data"))
        .args(["workspace", "create", "--name", "x", "--data-dir"])
        .arg(tmp.path().join("data"))
        .env("CHIMATIC_KEK_FILE", &kek)
        .env("CHIMATIC_KEK_PROVIDER", "local")
        .env_remove("CHIMATIC_KEK")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics_answer_without_a_key() {
    let server = TestServer::spawn().await;
    let ws = create_workspace(&server.data_dir, "acme");
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"a": 1}})).await;
    let id = r.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;

    let health = server.call("GET", "/healthz", None, None).await;
    assert_eq!((health.status, health.json["status"].as_str()), (200, Some("ok")));
    let ready = server.call("GET", "/readyz", None, None).await;
    assert_eq!((ready.status, ready.json["status"].as_str()), (200, Some("ready")));
    let metrics = server.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.text.contains("chimatic_notifications_accepted_total 1"), "{}", metrics.text);
    assert!(metrics.text.contains(r#"chimatic_delivery_attempts_total{outcome="success"} 1"#), "{}", metrics.text);
    assert!(metrics.text.contains(r#"route="/v1/notifications/{id}""#), "routes are labelled by template");
    assert!(!metrics.text.contains(&id) && !metrics.text.contains(&ws.id), "no ids in metric labels");
}

#[test]
fn help_documents_every_command() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "workspace", "CHIMATIC_KEK"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    let out = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for var in ["CHIMATIC_LISTEN", "CHIMATIC_DATA_DIR", "CHIMATIC_KEK_FILE", "CHIMATIC_RETRY_SCHEDULE"] {
        assert!(text.contains(var), "serve --help lacks {var}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_server_promptly() {
    let mut server = TestServer::spawn().await;
    let took = server.terminate();
    assert!(server.log().contains("stopped"), "{}", server.log());
    assert!(took < std::time::Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_deliveries_and_hands_back_the_rest() {
    // Default lease (2 × 15 s + 15 s): anything left leased would wait 45 s after a restart.
    let opts = ServerOptions::default().env("CHIMATIC_DELIVERY_CONCURRENCY", "4");
    let mut server = TestServer::spawn_with(opts.clone()).await;
    let dir = server.keep_dir().unwrap();
    let ws = server.workspace("acme");
    let receiver = Receiver::start().await;
    receiver.set_delay(std::time::Duration::from_millis(1500));
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"i": i}})).await;
        ids.push(r.json["id"].as_str().unwrap().to_string());
    }
    receiver.wait_for(4, std::time::Duration::from_secs(10)).await;

    let took = server.terminate();
    assert!(took < std::time::Duration::from_secs(12), "shutdown took {took:?}");
    let log = server.log();
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains("grace period ended"), "in-flight deliveries finished within the grace period: {log}");

    // The four in flight finished and were recorded; the rest were handed back, not left leased.
    receiver.set_delay(std::time::Duration::ZERO);
    let server = TestServer::spawn_in(&dir.path().join("data"), opts).await;
    let started = std::time::Instant::now();
    for id in &ids {
        server.wait_notification(&ws.key, id, |n| n["status"] == "delivered").await;
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the unstarted jobs waited for a lease to expire ({:?})",
        started.elapsed()
    );
    let attempts: u64 = {
        let mut total = 0;
        for id in &ids {
            let n = server.get(&format!("/v1/notifications/{id}"), &ws.key).await;
            total += n.json["attempt_count"].as_u64().unwrap();
        }
        total
    };
    assert_eq!(attempts, 20, "each notification was attempted exactly once across the restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent_and_a_schema_from_a_newer_build_is_refused() {
    let mut server = TestServer::spawn().await;
    let dir = server.keep_dir().unwrap();
    let data = dir.path().join("data");
    server.terminate();
    let migrate = || cli(&data).args(["migrate", "--data-dir"]).arg(&data).env_remove("CHIMATIC_KEK").output().unwrap();
    for _ in 0..2 {
        let out = migrate();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let probe = crate::store_probe::StoreProbe::new(&data);
    probe.execute(Db::Data, "INSERT INTO chimatic_migrations (version, applied_at) VALUES (999, 0)");
    let out = migrate();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer than this build knows"), "{err}");
    let mut serve = cli(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("CHIMATIC_KEK")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = serve.kill();
            panic!("serve started on a schema newer than it knows");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("newer than this build knows"), "{err}");
    crate::store_probe::drop_store(&data);
}
