//! The test authorization server (tests/oidc/server.js: npm `oidc-provider`, with stand-ins of
//! the Slack Web API and the Gmail API) in a child process on 127.0.0.1, and a browser's walk
//! through its sign-in page.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::console::Browser;

/// Killed on drop.
pub struct Provider {
    pub issuer: String,
    child: Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Provider {
    /// `config` as tests/oidc/server.js documents it, without the port. `None` when the port
    /// was taken meanwhile (the provider then exits at once).
    pub fn start(port: u16, config: Value) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config;
        config["port"] = json!(port);
        let path = dir.path().join("provider.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc/server.js");
        let mut child = Command::new("node")
            .arg(script)
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is required, with `npm ci` run in tests/oidc (scripts/test does both)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let Some(issuer) = line.trim().strip_prefix("ready ").map(str::to_string) else {
            let _ = child.wait();
            return None;
        };
        Some(Self { issuer, child, http: reqwest::Client::new(), _dir: dir })
    }

    pub async fn tamper(&self, mode: Option<&str>) {
        self.control("tamper", json!({"id_token": mode})).await;
    }

    /// POSTs to a test control (`/__test/{name}`); its answer.
    pub async fn control(&self, name: &str, body: Value) -> Value {
        let r = self.http.post(format!("{}/__test/{name}", self.issuer)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{name}");
        r.json().await.unwrap()
    }

    pub async fn read(&self, path: &str) -> Value {
        self.http.get(format!("{}/__test/{path}", self.issuer)).send().await.unwrap().json().await.unwrap()
    }

    /// The token, revocation and stand-in API calls, in arrival order.
    pub async fn log(&self) -> Vec<Value> {
        self.read("log").await.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs in at the provider as `email` from the authorization URL; where it sends the browser
/// back (the full redirect URI with `code` and `state`).
pub async fn consent(provider: &Provider, authorize: &str, email: &str) -> String {
    let mut idp = Browser::at(&provider.issuer);
    let path = |url: &str| url.strip_prefix(&provider.issuer).unwrap_or(url).to_string();
    let to_login = idp.get(&path(authorize)).await;
    assert_eq!(to_login.status, 303, "{}", to_login.body);
    let interaction = to_login.location().to_string();
    assert_eq!(idp.get(&interaction).await.status, 200);
    let signed = idp.post(&format!("{interaction}/login"), &[("email", email)]).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let back = idp.get(&path(signed.location())).await;
    assert_eq!(back.status, 303, "{}", back.body);
    back.location().to_string()
}

/// The path and query of a URL.
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/').map_or("/".into(), |at| rest[at..].to_string())
}

/// A query parameter of a URL, as it is there (not decoded).
pub fn query(url: &str, key: &str) -> String {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    q.split('&').find_map(|kv| kv.strip_prefix(&format!("{key}="))).unwrap_or_default().to_string()
}
