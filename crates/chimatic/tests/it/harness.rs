//! Test kit: spawn the real server, drive the CLI, run webhook receivers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_chimatic");

pub struct TestServer {
    pub base: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Child,
    log: Arc<Mutex<String>>,
    log_reader: Option<std::thread::JoinHandle<()>>,
    pub http: reqwest::Client,
}

pub struct Workspace {
    pub id: String,
    pub key: String,
}

#[derive(Default, Clone)]
pub struct ServerOptions {
    pub env: Vec<(String, String)>,
    pub rust_log: Option<String>,
    /// Default `127.0.0.1:0` (any free port).
    pub listen: Option<String>,
}

impl ServerOptions {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn log(mut self, filter: &str) -> Self {
        self.rust_log = Some(filter.into());
        self
    }
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = Some(addr.into());
        self
    }
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::spawn_with(ServerOptions::default()).await
    }

    pub async fn spawn_with(opts: ServerOptions) -> Self {
        Self::try_spawn_with(opts).await.unwrap_or_else(|log| panic!("server did not start; log:\n{log}"))
    }

    /// Like [`Self::spawn_with`]; the log when the server exits (or stalls) before listening,
    /// e.g. on a port another test took meanwhile.
    pub async fn try_spawn_with(opts: ServerOptions) -> Result<Self, String> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Self::try_spawn_in(&dir, opts).await?;
        s._tmp = Some(tmp);
        Ok(s)
    }

    /// Starts a server on an existing data directory (e.g. after a crash).
    pub async fn spawn_in(dir: &Path, opts: ServerOptions) -> Self {
        Self::try_spawn_in(dir, opts).await.unwrap_or_else(|log| panic!("server did not start; log:\n{log}"))
    }

    async fn try_spawn_in(dir: &Path, opts: ServerOptions) -> Result<Self, String> {
        let mut cmd = Command::new(BIN);
        let listen = opts.listen.as_deref().unwrap_or("127.0.0.1:0");
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(dir)
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .env("CHIMATIC_ALLOW_PRIVATE_DESTINATIONS", "1")
            .env("CHIMATIC_RETRY_SCHEDULE", "200ms,400ms,800ms")
            .env("RUST_LOG", opts.rust_log.as_deref().unwrap_or("info"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.envs(crate::store_probe::store_env(dir));
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn chimatic serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log2 = log.clone();
        let log_reader = std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                    sent = true;
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base: String = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = log_reader.join();
                return Err(log.lock().unwrap().clone());
            }
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Ok(Self { base, data_dir: dir.to_path_buf(), _tmp: None, child, log, log_reader: Some(log_reader), http })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain_log();
    }

    /// After exit: waits until everything the process wrote has been read into the log.
    fn drain_log(&mut self) {
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
    }

    /// SIGTERM, then wait for exit; returns how long it took.
    pub fn terminate(&mut self) -> Duration {
        let start = Instant::now();
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        let took = start.elapsed();
        self.drain_log();
        took
    }

    /// Takes the temporary directory out so it outlives this server (for restarts).
    pub fn keep_dir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }

    /// Direct access to this server's store.
    pub fn probe(&self) -> crate::store_probe::StoreProbe {
        crate::store_probe::StoreProbe::new(&self.data_dir)
    }

    pub fn workspace(&self, name: &str) -> Workspace {
        create_workspace(&self.data_dir, name)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::from(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call("GET", path, Some(key), None).await
    }
    pub async fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        self.call("POST", path, Some(key), Some(body)).await
    }
    pub async fn delete(&self, path: &str, key: &str) -> Resp {
        self.call("DELETE", path, Some(key), None).await
    }

    /// Creates a webhook channel to `url`; returns (channel id, signing secret).
    pub async fn channel(&self, key: &str, url: &str) -> (String, String) {
        let r = self.post("/v1/channels", key, serde_json::json!({"type": "webhook", "url": url})).await;
        assert_eq!(r.status, 201, "create channel: {}", r.text);
        (r.json["id"].as_str().unwrap().to_string(), r.json["signing_secret"].as_str().unwrap().to_string())
    }

    /// Polls a notification until `pred` holds or the deadline passes.
    pub async fn wait_notification(&self, key: &str, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.get(&format!("/v1/notifications/{id}"), key).await;
            assert_eq!(r.status, 200, "{}", r.text);
            if pred(&r.json) {
                return r.json;
            }
            assert!(Instant::now() < deadline, "timed out waiting on {id}: {}", r.text);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self._tmp.is_some() {
            crate::store_probe::drop_store(&self.data_dir);
        }
    }
}

/// The CLI, pointed at the store of the data directory `dir`.
pub fn cli(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.envs(crate::store_probe::store_env(dir));
    cmd
}

pub fn create_workspace(dir: &Path, name: &str) -> Workspace {
    create_workspace_with(dir, name, &[])
}

/// `workspace create` with extra environment (e.g. a KEK in an HSM).
pub fn create_workspace_with(dir: &Path, name: &str, env: &[(&str, String)]) -> Workspace {
    let out = cli(dir)
        .args(["workspace", "create", "--name", name, "--data-dir"])
        .arg(dir)
        .env_remove("CHIMATIC_KEK")
        .env_remove("CHIMATIC_KEK_FILE")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run workspace create");
    assert!(out.status.success(), "workspace create failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("workspace create prints JSON");
    let ws = Workspace { id: v["workspace_id"].as_str().unwrap().into(), key: v["api_key"].as_str().unwrap().into() };
    // With CHIMATIC_TEST_KEK=aws-kms, every workspace of the suite (those created without a
    // test-specific environment) brings its own key, in the KMS-compatible server scripts/test
    // starts.
    if env.is_empty() && std::env::var("CHIMATIC_TEST_KEK").as_deref() == Ok("aws-kms") {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| panic!("{name} is required with CHIMATIC_TEST_KEK=aws-kms"))
        };
        let out = cli(dir)
            .args(["workspace", "use-kms", "--data-dir"])
            .arg(dir)
            .args(["--workspace", &ws.id, "--endpoint", &var("CHIMATIC_TEST_KMS_ENDPOINT"), "--region", "eu-west-1"])
            .args(["--key-id", &var("CHIMATIC_TEST_KMS_KEY_ID"), "--access-key-id", "test"])
            .env("CHIMATIC_KMS_SECRET_ACCESS_KEY", "test")
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .output()
            .expect("run workspace use-kms");
        assert!(out.status.success(), "workspace use-kms failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    ws
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, text, json }
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts an RFC 9457 problem response with the given status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "expected {status} {code}, got: {}", self.text);
        assert_eq!(self.content_type(), "application/problem+json", "{}", self.text);
        assert_eq!(self.json["code"], code, "{}", self.text);
        assert_eq!(self.json["status"], status);
        assert!(self.json["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", self.text);
    }
}

/// One request as a receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn webhook_id(&self) -> String {
        self.headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    /// Verifies with the Standard Webhooks reference library, not with our own code.
    pub fn verify(&self, secret: &str) -> bool {
        let wh = standardwebhooks::Webhook::new(secret).expect("secret");
        let mut h = http::HeaderMap::new();
        for (k, v) in &self.headers {
            h.insert(
                http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        wh.verify(&self.body, &h).is_ok()
    }
}

#[derive(Clone)]
struct ReceiverState {
    status: Arc<AtomicU16>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    seen: Arc<Mutex<Vec<Received>>>,
}

/// A real HTTP webhook receiver on 127.0.0.1 whose response status the test controls.
pub struct Receiver {
    pub url: String,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> Self {
        let state =
            ReceiverState { status: Arc::new(AtomicU16::new(200)), delay_ms: Arc::default(), seen: Arc::default() };
        let app = axum::Router::new().route("/{*path}", axum::routing::post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Makes every answer wait this long: a slow endpoint.
    pub fn set_delay(&self, delay: Duration) {
        self.state.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.seen.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let seen = self.received();
            if seen.len() >= n || Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn receive(State(s): State<ReceiverState>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    s.seen.lock().unwrap().push(Received { path: uri.path().to_string(), headers, body, at: Instant::now() });
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    StatusCode::from_u16(s.status.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
}
