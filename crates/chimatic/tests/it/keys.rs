//! The deployment's key-encryption key: `chimatic doctor` reports what protects the data and
//! `--production` refuses a development key; with `CHIMATIC_KEK_PROVIDER=pkcs11` the KEK is
//! generated inside a PKCS#11 token (SoftHSM2 here) and the server works without any key file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::json;

use crate::harness::{BIN, Receiver, ServerOptions, TestServer, cli};

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
    let options = hsm.env().into_iter().fold(ServerOptions::default(), |o, (k, v)| o.env(k, &v));
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

    // After a restart the DEKs unwrap in the token again; a wrong PIN refuses to start, clearly.
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
