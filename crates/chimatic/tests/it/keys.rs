//! The deployment's key-encryption key: `chimatic doctor` reports what protects the data and
//! `--production` refuses a development key; with `CHIMATIC_KEK_PROVIDER=pkcs11` the KEK is
//! generated inside a PKCS#11 token (SoftHSM2 here) and the server works without any key file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::json;

use crate::harness::{BIN, Receiver, ServerOptions, TestServer, cli};
use crate::store_probe::Db;

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "7391-test-pin";

/// A fresh SoftHSM2 token in its own directory, and the environment that points a process at it.
pub(crate) struct SoftHsm {
    _dir: tempfile::TempDir,
    conf: PathBuf,
}

impl SoftHsm {
    pub(crate) fn new() -> Self {
        assert!(Path::new(MODULE).exists(), "SoftHSM2 is required (Debian: apt-get install softhsm2)");
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\n", tokens.display()))
            .unwrap();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", "chimatic", "--pin", PIN, "--so-pin", "0000-so"])
            .output()
            .expect("softhsm2-util is required (Debian: apt-get install softhsm2)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Self { _dir: dir, conf }
    }

    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SOFTHSM2_CONF", self.conf.display().to_string()),
            ("CHIMATIC_KEK_PROVIDER", "pkcs11".into()),
            ("CHIMATIC_PKCS11_MODULE", MODULE.into()),
            ("CHIMATIC_PKCS11_TOKEN_LABEL", "chimatic".into()),
            ("CHIMATIC_PKCS11_PIN", PIN.into()),
        ]
    }

    /// `chimatic keys init-pkcs11`: the KEK is generated in the token.
    pub(crate) fn init_key(&self) {
        let out = Command::new(BIN).args(["keys", "init-pkcs11"]).envs(self.env()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("pkcs11:chimatic/chimatic-kek"));
    }
}

fn doctor(dir: &Path, env: &[(&str, String)], production: bool) -> (bool, String) {
    let mut cmd = cli(dir);
    cmd.arg("doctor").arg("--data-dir").arg(dir).env_remove("CHIMATIC_KEK").env_remove("CHIMATIC_KEK_FILE");
    cmd.env("CHIMATIC_KEK_PROVIDER", "local");
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    if production {
        cmd.arg("--production");
    }
    let out = cmd.output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_the_kek_and_production_refuses_a_development_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Fresh: a development key will be generated; fine for development, refused for production.
    let (ok, out) = doctor(&dir, &[], false);
    assert!(ok, "{out}");
    assert!(out.contains("kek provider: local") && out.contains("development key"), "{out}");
    let (ok, out) = doctor(&dir, &[], true);
    assert!(!ok && out.contains("not fit for production"), "{out}");

    // A server started with --production and a development key does not start.
    let out = Command::new(BIN)
        .args(["serve", "--production", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .envs(crate::store_probe::store_env(&dir))
        .env("CHIMATIC_KEK_PROVIDER", "local")
        .env_remove("CHIMATIC_KEK")
        .env_remove("CHIMATIC_KEK_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("development key-encryption key"));

    // An injected key file: fine at 0600, a finding at 0644.
    let file = tmp.path().join("kek.b64");
    std::fs::write(&file, base64::engine::general_purpose::STANDARD.encode([3u8; 32])).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = [("CHIMATIC_KEK_FILE", file.display().to_string())];
    let (ok, out) = doctor(&dir, &env, true);
    assert!(ok && out.contains("kek file mode: 600 (ok)") && out.contains("production: ready"), "{out}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, out) = doctor(&dir, &env, true);
    assert!(!ok && out.contains("chmod 600"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_kek_in_an_hsm_the_server_delivers_and_no_key_file_exists() {
    let hsm = SoftHsm::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Before the key exists: a clear error, and the PIN is never printed.
    let (ok, out) = doctor(&dir, &hsm.env(), true);
    assert!(!ok && out.contains("cannot open the KEK"), "{out}");
    assert!(!out.contains(PIN));
    hsm.init_key();
    let (ok, out) = doctor(&dir, &hsm.env(), true);
    assert!(ok, "{out}");
    assert!(out.contains("kek provider: pkcs11") && out.contains("extractable=false"), "{out}");

    let receiver = Receiver::start().await;
    let options = hsm
        .env()
        .into_iter()
        .fold(ServerOptions::default(), |o, (k, v)| o.env(k, &v))
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "1")
        .env("CHIMATIC_KEK_REFRESH_SECS", "1");
    let mut server = TestServer::spawn_in(&dir, options.clone().env("CHIMATIC_PRODUCTION", "1")).await;
    let ws = crate::harness::create_workspace_with(&dir, "hsm", &hsm.env());
    let (channel, secret) = server.channel(&ws.key, &receiver.url).await;
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"n": 1}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    server.wait_notification(&ws.key, &id, |n| n["status"] == "delivered").await;
    assert!(receiver.received()[0].verify(&secret));
    assert!(server.log().contains("pkcs11:chimatic/chimatic-kek"));
    assert!(!server.log().contains(PIN));
    assert!(!dir.join("kek.key").exists(), "no key file when the KEK is in the HSM");

    // A rotation generates the next KEK in the token; the running node finds it at its next
    // refresh (re-opening every key version in the token), wraps with it and re-wraps the
    // existing DEKs, which unwrap in the token throughout; a restarted node reads everything.
    let rotated = keys_cli(&dir, &["rotate-kek"], &hsm.env());
    assert!(rotated.contains("pkcs11:chimatic/chimatic-kek-v2"), "{rotated}");
    let status = rotation_completes(&dir, &hsm.env()).await;
    assert!(status.contains("current KEK pkcs11:chimatic/chimatic-kek-v2"), "{status}");
    let n = server.get(&format!("/v1/notifications/{id}"), &ws.key).await;
    assert_eq!(n.json["status"], "delivered", "{}", n.text);
    server.terminate();
    let server = TestServer::spawn_in(&dir, options.clone()).await;
    let n = server.get(&format!("/v1/notifications/{id}"), &ws.key).await;
    assert_eq!(n.json["status"], "delivered", "{}", n.text);
    drop(server);
    let mut env = hsm.env();
    env.retain(|(k, _)| *k != "CHIMATIC_PKCS11_PIN");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .envs(crate::store_probe::store_env(&dir))
        .envs(env)
        .env("CHIMATIC_PKCS11_PIN", "0000-wrong")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("PIN") && !stderr.contains("0000-wrong"), "{stderr}");
}

fn keys_cli(dir: &Path, args: &[&str], env: &[(&str, String)]) -> String {
    let out = cli(dir)
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("CHIMATIC_KEK")
        .env_remove("CHIMATIC_KEK_FILE")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "keys {args:?}: {text}");
    text
}

/// Polls `chimatic keys status` until every DEK is on the current KEK.
async fn rotation_completes(dir: &Path, env: &[(&str, String)]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = keys_cli(dir, &["status"], env);
        if status.contains("rotation: complete") {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "rotation did not complete: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kek_rotates_under_load_without_a_failed_request_or_a_lost_notification() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let local = vec![("CHIMATIC_KEK_PROVIDER", "local".to_string())];
    let options = ServerOptions::default()
        .env("CHIMATIC_KEK_PROVIDER", "local")
        .env("CHIMATIC_KEK_REFRESH_SECS", "1")
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "1");
    let server = std::sync::Arc::new(TestServer::spawn_in(&dir, options.clone()).await);
    let receiver = Receiver::start().await;
    let mut tenants = Vec::new();
    for name in ["a", "b", "c"] {
        let ws = crate::harness::create_workspace_with(&dir, name, &local);
        let (channel, _) = server.channel(&ws.key, &receiver.url).await;
        tenants.push((ws.key, channel));
    }
    let before = keys_cli(&dir, &["status"], &local);
    assert!(before.contains("rotation: complete"), "{before}");
    // Written before the rotations: a subscriber (found by a keyed digest of its external id)
    // and a notification with an idempotency key.
    let (a_key, a_channel) = tenants[0].clone();
    let ann = server.post("/v1/subscribers", &a_key, json!({"external_id": "ann@example.com"})).await;
    assert_eq!(ann.status, 201, "{}", ann.text);
    let keyed = json!({"channel_id": a_channel, "payload": {"order": 1}, "idempotency_key": "order-1"});
    let first = server.post("/v1/notifications", &a_key, keyed.clone()).await;
    assert_eq!(first.status, 202, "{}", first.text);

    // Load: notifications keep coming from every tenant while the KEK rotates.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for (key, channel) in tenants.clone() {
        let (server, stop) = (server.clone(), stop.clone());
        load.spawn(async move {
            let mut sent = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) || n < 20 {
                let r =
                    server.post("/v1/notifications", &key, json!({"channel_id": channel, "payload": {"n": n}})).await;
                assert_eq!(r.status, 202, "a request failed during rotation: {}", r.text);
                sent.push(r.json["id"].as_str().unwrap().to_string());
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            (key, sent)
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rotated = keys_cli(&dir, &["rotate-kek"], &local);
    assert!(rotated.contains("current KEK: local:"), "{rotated}");
    assert!(dir.join("kek-v2.key").exists());
    // The workspace's DEK rotates too, mid-load.
    let r = server.post("/v1/workspace/rotate-dek", &a_key, json!({})).await;
    assert_eq!((r.status, &r.json), (200, &json!({"data_version": 2, "vault_version": 2})), "{}", r.text);
    let status = rotation_completes(&dir, &local).await;
    let current = |text: &str| text.lines().find(|l| l.contains("current KEK")).unwrap_or_default().to_string();
    assert_ne!(current(&status), current(&before), "a new KEK is current: {status}");
    // A workspace created after the rotation starts on the new KEK.
    let (new_key, new_channel) = {
        let ws = crate::harness::create_workspace_with(&dir, "after", &local);
        let (channel, _) = server.channel(&ws.key, &receiver.url).await;
        (ws.key, channel)
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut all = Vec::new();
    while let Some(done) = load.join_next().await {
        let (key, sent) = done.unwrap();
        all.extend(sent.into_iter().map(|id| (key.clone(), id)));
    }
    assert!(all.len() >= 60, "{}", all.len());
    for (key, id) in &all {
        server.wait_notification(key, id, |n| n["status"] == "delivered").await;
    }
    assert!(server.log().contains("a new KEK version is current"), "{}", server.log());
    // Every DEK (four workspaces, one of them with two versions, in both stores, and the
    // system workspace's data DEK that the audit head-signing key derives from) is wrapped by
    // one KEK: the new one.
    let status_after = rotation_completes(&dir, &local).await;
    let wrapped_by: Vec<&str> = status_after.lines().filter(|l| l.contains("DEKs wrapped by")).collect();
    assert_eq!(wrapped_by.len(), 2, "{status_after}");
    assert!(wrapped_by[0].starts_with("  data") && wrapped_by[0].ends_with(": 6 (current)"), "{status_after}");
    assert!(wrapped_by[1].starts_with("  vault") && wrapped_by[1].ends_with(": 5 (current)"), "{status_after}");
    // After the DEK rotation: new data is under version 2, old lookups still match.
    let again = server.post("/v1/subscribers", &a_key, json!({"external_id": "ann@example.com"})).await;
    assert_eq!((again.status, &again.json["id"]), (200, &ann.json["id"]), "{}", again.text);
    let replayed = server.post("/v1/notifications", &a_key, keyed).await;
    assert_eq!(replayed.json["id"], first.json["id"], "{}", replayed.text);
    let fresh = server.post("/v1/notifications", &a_key, json!({"channel_id": a_channel, "payload": {}})).await;
    let fresh_id = fresh.json["id"].as_str().unwrap();
    let sealed = server.probe().blob(Db::Data, "notifications", "payload", "id", fresh_id);
    assert_eq!(u32::from_be_bytes(sealed[1..5].try_into().unwrap()), 2, "written under DEK version 2");
    let old = server.probe().blob(Db::Data, "notifications", "payload", "id", first.json["id"].as_str().unwrap());
    assert_eq!(u32::from_be_bytes(old[1..5].try_into().unwrap()), 1, "older data keeps its version");

    // The old KEK is gone for good: a restarted node reads everything through the new one.
    let Ok(mut server) = std::sync::Arc::try_unwrap(server) else { panic!("the load tasks are done") };
    server.terminate();
    std::fs::remove_file(dir.join("kek.key")).unwrap();
    let server = TestServer::spawn_in(&dir, options).await;
    let n = server.get(&format!("/v1/notifications/{}", first.json["id"].as_str().unwrap()), &a_key).await;
    assert_eq!(n.json["payload_masked"], json!({"order": "…"}), "{}", n.text);
    for (key, id) in all.iter().step_by(7) {
        let n = server.get(&format!("/v1/notifications/{id}"), key).await;
        assert_eq!((n.status, n.json["status"].as_str()), (200, Some("delivered")), "{}", n.text);
    }
    let r = server.post("/v1/notifications", &new_key, json!({"channel_id": new_channel, "payload": {}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kek_rotates_by_itself_once_it_reaches_its_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let local = vec![("CHIMATIC_KEK_PROVIDER", "local".to_string())];
    let options = ServerOptions::default()
        .env("CHIMATIC_KEK_PROVIDER", "local")
        .env("CHIMATIC_KEK_ROTATION_INTERVAL", "2s")
        .env("CHIMATIC_KEK_REFRESH_SECS", "1")
        .env("CHIMATIC_HEALTH_CHECK_INTERVAL_SECS", "1");
    let server = TestServer::spawn_in(&dir, options).await;
    let ws = crate::harness::create_workspace_with(&dir, "auto", &local);
    let receiver = Receiver::start().await;
    let (channel, _) = server.channel(&ws.key, &receiver.url).await;
    let first = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"n": 1}})).await;
    let before = keys_cli(&dir, &["status"], &local);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.join("kek-v2.key").exists() {
        assert!(std::time::Instant::now() < deadline, "no automatic rotation: {}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let after = rotation_completes(&dir, &local).await;
    let current = |text: &str| text.lines().find(|l| l.contains("current KEK")).unwrap_or_default().to_string();
    assert_ne!(current(&before), current(&after), "{after}");
    assert!(server.log().contains("reached its rotation interval"), "{}", server.log());
    let id = first.json["id"].as_str().unwrap();
    server.wait_notification(&ws.key, id, |n| n["status"] == "delivered").await;
    let r = server.post("/v1/notifications", &ws.key, json!({"channel_id": channel, "payload": {"n": 2}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
}
