//! `chimatic-bench`: starts (or targets) a Chimatic server, runs its own signature-verifying
//! webhook receiver, sends N notifications and reports throughput, latency and resource use.
//!
//! Everything stays on 127.0.0.1. Run with `cargo run --release -p chimatic-bench -- --help`.

mod events;
mod receiver;
mod report;
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use receiver::Receiver;
use report::{Report, percentile};

#[derive(Parser, Clone)]
#[command(name = "chimatic-bench", about = "End-to-end load test of Chimatic's delivery path on 127.0.0.1")]
pub struct Args {
    /// `notifications`: N single-channel notifications through the API. `events`: one event to
    /// a topic of --subscribers members, fanned out by the server.
    #[arg(long, value_enum, default_value_t = Mode::Notifications)]
    pub mode: Mode,
    /// Events mode: members of the topic (created, with one channel each, before the measured part).
    #[arg(long, default_value_t = 100_000)]
    pub subscribers: u64,
    /// Events mode: the workflow's one step.
    #[arg(long, value_enum, default_value_t = events::Step::Inapp)]
    pub step: events::Step,
    /// Notifications to send.
    #[arg(short = 'n', long, default_value_t = 20_000)]
    pub count: u64,
    /// Requests in flight at once.
    #[arg(short = 'c', long, default_value_t = 64)]
    pub concurrency: usize,
    /// Approximate JSON payload size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub payload_bytes: usize,
    /// Items per request, through `POST /v1/notifications/batch` (1 = single-item requests).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Offered rate in notifications per second (default: as fast as the concurrency allows).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Target a running server instead of starting one; needs --api-key, and the server must
    /// allow private destinations so it can reach this tool's receiver.
    #[arg(long, requires = "api_key")]
    pub url: Option<String>,
    /// API key for --url.
    #[arg(long, env = "CHIMATIC_BENCH_API_KEY")]
    pub api_key: Option<String>,
    /// PID of the --url server, to report its peak RSS and CPU time.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The `chimatic` binary to start (default: next to this one).
    #[arg(long)]
    pub server_bin: Option<std::path::PathBuf>,
    /// Notifications to store (and deliver) before the measured run, to show that stored volume
    /// does not slow the hot path.
    #[arg(long, default_value_t = 0)]
    pub prefill: u64,
    /// Start this many server nodes on one store and spread the requests across them. With
    /// --postgres the nodes share fresh PostgreSQL databases; otherwise one SQLite directory.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// PostgreSQL admin URL without a database name (e.g. postgres://postgres@127.0.0.1:5432):
    /// the bench creates two fresh databases for the run and points the nodes at them.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Extra environment for the started server, e.g. `--server-env CHIMATIC_DELIVERY_CONCURRENCY=128`.
    #[arg(long = "server-env", value_parser = parse_env)]
    pub server_env: Vec<(String, String)>,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Notifications,
    Events,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| "expected KEY=VALUE".into())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.batch == 0 || args.batch > 1000 {
        bail!("--batch must be between 1 and 1000");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let receiver = Receiver::start().await?;
    let mut started = None;
    let (bases, key, pids) = match &args.url {
        Some(url) => (
            vec![url.trim_end_matches('/').to_string()],
            args.api_key.clone().unwrap_or_default(),
            args.server_pid.into_iter().collect::<Vec<_>>(),
        ),
        None => {
            let c = server::Cluster::start(&args).await?;
            let out = (c.bases(), c.api_key.clone(), c.pids());
            started = Some(c);
            out
        }
    };
    let base = bases[0].clone();
    if args.mode == Mode::Events {
        return events::run(&args, &base, &key, pids.first().copied(), &receiver).await;
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let channel: Value = http
        .post(format!("{base}/v1/channels"))
        .bearer_auth(&key)
        .json(&json!({"type": "webhook", "url": receiver.url()}))
        .send()
        .await?
        .error_for_status()
        .context("creating the channel")?
        .json()
        .await?;
    let channel_id = channel["id"].as_str().context("channel id")?.to_string();
    receiver.set_secret(channel["signing_secret"].as_str().context("signing secret")?)?;

    let payload = make_payload(args.payload_bytes);
    if args.prefill > 0 {
        eprintln!("prefilling {} notifications…", args.prefill);
        let pre = Load {
            http: http.clone(),
            bases: bases.clone(),
            key: key.clone(),
            channel_id: channel_id.clone(),
            payload: payload.clone(),
        };
        let prefill_args = Args { count: args.prefill, batch: args.batch.max(100), rate: None, ..args.clone() };
        let _ = pre.send_all(&prefill_args, "prefill").await?;
        receiver.wait_for(args.prefill, Duration::from_secs(args.timeout_secs), None).await;
        receiver.reset();
    }
    let statements = started.as_ref().and_then(|c| c.statements.as_ref());
    if let Some(counter) = statements {
        counter.reset()?;
    }
    let cpu_of = |pids: &[u32]| pids.iter().map(|p| server::cpu_seconds(*p)).sum::<Option<f64>>();
    let cpu_before = cpu_of(&pids);
    let own_cpu_before = server::cpu_seconds(std::process::id());

    let load = Load { http, bases, key, channel_id, payload };
    let t0 = Instant::now();
    let sent = load.send_all(&args, "send").await?;
    let accept_elapsed = t0.elapsed();
    let bar = progress(args.count, "deliver");
    let arrivals = receiver.wait_for(args.count, Duration::from_secs(args.timeout_secs), Some(&bar)).await;
    bar.finish_and_clear();
    let deliver_elapsed = arrivals.last_arrival.map(|t| t.duration_since(t0)).unwrap_or(t0.elapsed());

    let mut api_lat: Vec<f64> = sent.latencies_ms.clone();
    api_lat.sort_by(f64::total_cmp);
    let mut e2e: Vec<f64> = sent
        .ids
        .iter()
        .filter_map(|(id, at)| arrivals.first_seen.get(id).map(|arr| arr.duration_since(*at).as_secs_f64() * 1000.0))
        .collect();
    e2e.sort_by(f64::total_cmp);
    let counted = statements.map(server::StatementCounter::read).transpose()?;
    let accepted = sent.ids.len() as u64;
    let delivered = sent.ids.iter().filter(|(id, _)| arrivals.first_seen.contains_key(id)).count() as u64;

    let report = Report {
        notifications: args.count,
        accepted,
        rejected: sent.rejected,
        concurrency: args.concurrency,
        batch: args.batch,
        payload_bytes: load.payload.to_string().len(),
        offered_rate: args.rate,
        prefilled: args.prefill,
        accept_seconds: accept_elapsed.as_secs_f64(),
        accepted_per_sec: accepted as f64 / accept_elapsed.as_secs_f64(),
        delivered_per_sec: delivered as f64 / deliver_elapsed.as_secs_f64(),
        api_latency_ms: [50.0, 90.0, 99.0, 100.0].map(|p| percentile(&api_lat, p)),
        e2e_latency_ms: [50.0, 99.0].map(|p| percentile(&e2e, p)),
        signature_failures: arrivals.signature_failures,
        duplicates: arrivals.duplicates,
        missing: accepted - delivered,
        nodes: pids.len().max(1),
        server_peak_rss_mb: pids.iter().filter_map(|p| server::peak_rss_mb(*p)).reduce(f64::max),
        server_cpu_seconds: cpu_of(&pids).map(|c| c - cpu_before.unwrap_or(0.0)),
        postgres_statements: counted.as_ref().map(|c| c.calls),
        server_cpu_us_per_notification: None,
        statements_per_notification: None,
        bench_cpu_seconds: server::cpu_seconds(std::process::id()).map(|c| c - own_cpu_before.unwrap_or(0.0)),
        machine: report::machine(),
    }
    .with_ratios();
    println!("{}", report.table());
    if let Some(c) = &counted {
        println!("busiest statements (calls, text):");
        for (calls, text) in &c.top {
            println!("  {calls:>9}  {text}");
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    drop(started);
    if report.signature_failures > 0 || report.missing > 0 {
        bail!("{} signature failures, {} missing", report.signature_failures, report.missing);
    }
    Ok(())
}

pub(crate) fn progress(len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(what);
    bar
}

/// A JSON object of roughly `size` bytes.
fn make_payload(size: usize) -> Value {
    let filler = "x".repeat(size.saturating_sub(60));
    json!({"event": "order.shipped", "order": "o-000001", "amount": 4200, "filler": filler})
}

#[derive(Clone)]
struct Load {
    http: reqwest::Client,
    /// Requests go round-robin over the nodes.
    bases: Vec<String>,
    key: String,
    channel_id: String,
    payload: Value,
}

struct Sent {
    ids: Vec<(String, Instant)>,
    latencies_ms: Vec<f64>,
    rejected: u64,
}

impl Load {
    async fn send_all(&self, args: &Args, label: &'static str) -> anyhow::Result<Sent> {
        let requests = args.count.div_ceil(args.batch as u64);
        let permits = Arc::new(Semaphore::new(args.concurrency));
        let bar = progress(args.count, label);
        let rejected = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<String>, Instant, f64)>();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for r in 0..requests {
            if let Some(rate) = args.rate {
                let due = start + Duration::from_secs_f64((r * args.batch as u64) as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let permit = permits.clone().acquire_owned().await?;
            let items = (args.count - r * args.batch as u64).min(args.batch as u64) as usize;
            let (this, tx, bar, rejected) = (self.clone(), tx.clone(), bar.clone(), rejected.clone());
            let args_batch = args.batch;
            tasks.spawn(async move {
                let at = Instant::now();
                let base = &this.bases[(r as usize) % this.bases.len()];
                match this.send_one(base, items, args_batch > 1).await {
                    Ok(ids) => {
                        let ms = at.elapsed().as_secs_f64() * 1000.0;
                        bar.inc(ids.len() as u64);
                        let _ = tx.send((ids, at, ms));
                    }
                    Err(_) => {
                        rejected.fetch_add(items as u64, Ordering::Relaxed);
                    }
                }
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        drop(tx);
        while tasks.join_next().await.is_some() {}
        bar.finish_and_clear();
        let mut sent = Sent { ids: Vec::with_capacity(args.count as usize), latencies_ms: Vec::new(), rejected: 0 };
        while let Some((ids, at, ms)) = rx.recv().await {
            sent.latencies_ms.push(ms);
            sent.ids.extend(ids.into_iter().map(|id| (id, at)));
        }
        sent.rejected = rejected.load(Ordering::Relaxed);
        Ok(sent)
    }

    async fn send_one(&self, base: &str, items: usize, use_batch: bool) -> anyhow::Result<Vec<String>> {
        let one = || json!({"channel_id": self.channel_id, "payload": self.payload});
        if !use_batch {
            let v: Value = self
                .http
                .post(format!("{base}/v1/notifications"))
                .bearer_auth(&self.key)
                .json(&one())
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            return Ok(vec![v["id"].as_str().context("id")?.to_string()]);
        }
        let body = json!({"items": (0..items).map(|_| one()).collect::<Vec<_>>()});
        let v: Value = self
            .http
            .post(format!("{base}/v1/notifications/batch"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        v["data"]
            .as_array()
            .context("data")?
            .iter()
            .map(|item| item["id"].as_str().map(str::to_string).context("item id"))
            .collect()
    }
}
