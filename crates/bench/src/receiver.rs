//! The bench's webhook receiver: verifies every Standard Webhooks signature with the reference
//! library and records when each `webhook-id` first arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use indicatif::ProgressBar;

#[derive(Default)]
struct Seen {
    first_seen: HashMap<String, Instant>,
    last_arrival: Option<Instant>,
    duplicates: u64,
    signature_failures: u64,
}

#[derive(Clone, Default)]
struct Shared {
    seen: Arc<Mutex<Seen>>,
    verifier: Arc<Mutex<Option<Arc<standardwebhooks::Webhook>>>>,
}

pub struct Receiver {
    url: String,
    shared: Shared,
}

pub struct Arrivals {
    pub first_seen: HashMap<String, Instant>,
    pub last_arrival: Option<Instant>,
    pub duplicates: u64,
    pub signature_failures: u64,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let shared = Shared::default();
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, shared })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set_secret(&self, secret: &str) -> anyhow::Result<()> {
        let wh = standardwebhooks::Webhook::new(secret).map_err(|e| anyhow::anyhow!("bad secret: {e:?}"))?;
        *lock(&self.shared.verifier) = Some(Arc::new(wh));
        Ok(())
    }

    pub fn reset(&self) {
        *lock(&self.shared.seen) = Seen::default();
    }

    /// Distinct notifications received so far.
    pub fn received(&self) -> u64 {
        lock(&self.shared.seen).first_seen.len() as u64
    }

    /// Waits until `n` distinct notifications have arrived (or the timeout passes).
    pub async fn wait_for(&self, n: u64, timeout: Duration, bar: Option<&ProgressBar>) -> Arrivals {
        let deadline = Instant::now() + timeout;
        loop {
            let have = lock(&self.shared.seen).first_seen.len() as u64;
            if let Some(b) = bar {
                b.set_position(have);
            }
            if have >= n || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = std::mem::take(&mut *lock(&self.shared.seen));
        Arrivals {
            first_seen: seen.first_seen,
            last_arrival: seen.last_arrival,
            duplicates: seen.duplicates,
            signature_failures: seen.signature_failures,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = Instant::now();
    let verifier = lock(&shared.verifier).clone();
    let valid = verifier.is_some_and(|wh| wh.verify(&body, &headers).is_ok());
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut seen = lock(&shared.seen);
    seen.last_arrival = Some(now);
    if !valid {
        seen.signature_failures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if seen.first_seen.insert(id, now).is_some() {
        seen.duplicates += 1;
    }
    StatusCode::OK
}
