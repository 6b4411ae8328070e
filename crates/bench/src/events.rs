//! The events mode: one `POST /v1/events` to a topic of N subscribers, measured until the last
//! message is stored (in-app) or received (webhook). The subscribers, their channels and the
//! topic are created before the measured part; progress is read from the server's `/metrics`
//! counters, which move when a fan-out batch has committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::receiver::Receiver;
use crate::{Args, progress, server};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// The in-app inbox: a message is done when it is stored (and readable in the inbox).
    Inapp,
    /// A signed webhook per subscriber endpoint: done when this tool's receiver verified it.
    Webhook,
}

#[derive(Serialize)]
pub struct FanoutReport {
    pub subscribers: u64,
    pub step: Step,
    pub setup_seconds: f64,
    pub first_message_seconds: Option<f64>,
    pub last_message_seconds: Option<f64>,
    /// One message per subscriber, over the time from the request to the last one done: stored
    /// (in-app) or received with a valid signature (webhook).
    pub messages_per_sec: Option<f64>,
    /// From the request until the dispatcher has recorded a delivery attempt for every message.
    pub all_attempted_seconds: Option<f64>,
    /// Largest resident set size of the server sampled during the measured part.
    pub server_peak_rss_mb: Option<f64>,
    pub server_rss_before_mb: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    pub server_cpu_us_per_message: Option<f64>,
    pub signature_failures: u64,
    pub duplicates: u64,
    pub machine: String,
}

impl FanoutReport {
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map(|x| format!("{x:.2} {unit}")).unwrap_or_else(|| "n/a".into());
        let rows = [
            ("machine", self.machine.clone()),
            ("topic subscribers", self.subscribers.to_string()),
            ("workflow step", format!("{:?}", self.step).to_lowercase()),
            ("setup (not measured)", format!("{:.1} s", self.setup_seconds)),
            ("messages/s", self.messages_per_sec.map(|r| format!("{r:.0}")).unwrap_or_else(|| "n/a".into())),
            ("first message after", opt(self.first_message_seconds, "s")),
            ("last message after", opt(self.last_message_seconds, "s")),
            ("every message attempted after", opt(self.all_attempted_seconds, "s")),
            ("server RSS before", opt(self.server_rss_before_mb, "MB")),
            ("server peak RSS (measured part)", opt(self.server_peak_rss_mb, "MB")),
            ("server CPU time", opt(self.server_cpu_seconds, "s")),
            ("server CPU per message", opt(self.server_cpu_us_per_message, "µs")),
            ("signature failures", self.signature_failures.to_string()),
            ("duplicates", self.duplicates.to_string()),
        ];
        rows.iter().map(|(k, v)| format!("{k:<32} {v}")).collect::<Vec<_>>().join("\n")
    }
}

/// Sum of a counter's samples (over all its labels) in a Prometheus text exposition.
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

struct Counts {
    stored: u64,
    attempted: u64,
}

async fn counts(http: &reqwest::Client, base: &str) -> anyhow::Result<Counts> {
    let text = http.get(format!("{base}/metrics")).send().await?.error_for_status()?.text().await?;
    Ok(Counts {
        stored: counter(&text, "chimatic_notifications_accepted_total"),
        attempted: counter(&text, "chimatic_delivery_attempts_total"),
    })
}

async fn created(http: &reqwest::Client, url: String, key: &str, body: Value) -> anyhow::Result<Value> {
    let response = http.post(&url).bearer_auth(key).json(&body).send().await?;
    let status = response.status();
    if !status.is_success() {
        bail!("POST {url}: {status} {}", response.text().await.unwrap_or_default());
    }
    Ok(response.json().await?)
}

fn id(v: &Value) -> anyhow::Result<String> {
    v["id"].as_str().map(str::to_string).context("id in response")
}

/// Creates the workflow `bench.fanout` and the topic `bench.all` of `--subscribers`
/// subscribers, each with one channel of the step's kind, added to the topic 1000 at a time.
async fn set_up(args: &Args, http: &reqwest::Client, base: &str, key: &str, receiver: &Receiver) -> anyhow::Result<()> {
    let mut step = json!({"channel": "inapp", "title": "Shipped", "text": "Hello {{ subscriber.name }}, order {{ data.order }} shipped"});
    if args.step == Step::Webhook {
        let hook =
            created(http, format!("{base}/v1/integrations"), key, json!({"kind": "webhook", "name": "bench"})).await?;
        receiver.set_secret(hook["signing_secret"].as_str().context("integration signing secret")?)?;
        step = json!({"channel": "webhook", "integration_id": id(&hook)?, "text": "Hello {{ subscriber.name }}, order {{ data.order }} shipped"});
    }
    created(http, format!("{base}/v1/workflows"), key, json!({"key": "bench.fanout", "steps": [step]})).await?;
    let topic = id(&created(http, format!("{base}/v1/topics"), key, json!({"key": "bench.all"})).await?)?;

    let channel = match args.step {
        Step::Inapp => json!({"type": "inapp"}),
        Step::Webhook => json!({"type": "webhook", "url": receiver.url()}),
    };
    let bar = progress(args.subscribers, "setup");
    let permits = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let mut members = Vec::with_capacity(1000);
    let mut chunk_start = 0;
    while chunk_start < args.subscribers {
        let chunk_end = (chunk_start + 1000).min(args.subscribers);
        for i in chunk_start..chunk_end {
            let permit = permits.clone().acquire_owned().await?;
            let (http, base, key, channel) = (http.clone(), base.to_string(), key.to_string(), channel.clone());
            tasks.spawn(async move {
                let body = json!({"external_id": format!("bench-{i}"), "attributes": {"name": format!("member {i}")}});
                let sub = id(&created(&http, format!("{base}/v1/subscribers"), &key, body).await?)?;
                created(&http, format!("{base}/v1/subscribers/{sub}/channels"), &key, channel).await?;
                drop(permit);
                anyhow::Ok(sub)
            });
        }
        while let Some(done) = tasks.join_next().await {
            members.push(done??);
            bar.inc(1);
        }
        let added = created(
            http,
            format!("{base}/v1/topics/{topic}/subscribers"),
            key,
            json!({"subscriber_ids": std::mem::take(&mut members)}),
        )
        .await?;
        anyhow::ensure!(added["changed"] == chunk_end - chunk_start, "topic members: {added}");
        chunk_start = chunk_end;
    }
    bar.finish_and_clear();
    Ok(())
}

pub async fn run(args: &Args, base: &str, key: &str, pid: Option<u32>, receiver: &Receiver) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let setup_started = Instant::now();
    set_up(args, &http, base, key, receiver).await?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let n = args.subscribers;

    // The setup queues no message; the counters' values now are the measured part's zero.
    let before = counts(&http, base).await?;
    let rss_before = pid.and_then(server::rss_mb);
    let cpu_before = pid.and_then(server::cpu_seconds);
    receiver.reset();

    let t0 = Instant::now();
    let sent = created(
        &http,
        format!("{base}/v1/events"),
        key,
        json!({"name": "bench.fanout", "to": [{"topic": "bench.all"}], "data": {"order": "o-000001"}}),
    )
    .await?;
    anyhow::ensure!(sent["fanouts"] == json!(["bench.all"]), "the event started no fan-out: {sent}");

    let bar = progress(n, "fan-out");
    let deadline = t0 + Duration::from_secs(args.timeout_secs);
    let (mut first, mut last, mut all_attempted) = (None, None, None);
    let mut peak_rss = rss_before;
    loop {
        let now = counts(&http, base).await?;
        let done = match args.step {
            Step::Inapp => now.stored - before.stored,
            Step::Webhook => receiver.received(),
        };
        let at = t0.elapsed().as_secs_f64();
        if done > 0 && first.is_none() {
            first = Some(at);
        }
        if done >= n && last.is_none() {
            last = Some(at);
        }
        if now.attempted - before.attempted >= n && all_attempted.is_none() {
            all_attempted = Some(at);
        }
        if let Some(now) = pid.and_then(server::rss_mb) {
            peak_rss = Some(peak_rss.map_or(now, |peak| peak.max(now)));
        }
        bar.set_position(done);
        if last.is_some() && all_attempted.is_some() {
            break;
        }
        if Instant::now() > deadline {
            bar.finish_and_clear();
            bail!("after {} s: {done} of {n} messages done", args.timeout_secs);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bar.finish_and_clear();
    let arrivals = receiver.wait_for(0, Duration::ZERO, None).await;
    let server_cpu = pid.and_then(server::cpu_seconds).zip(cpu_before).map(|(a, b)| a - b);
    let report = FanoutReport {
        subscribers: n,
        step: args.step,
        setup_seconds,
        first_message_seconds: first,
        last_message_seconds: last,
        messages_per_sec: last.map(|s| n as f64 / s),
        all_attempted_seconds: all_attempted,
        server_peak_rss_mb: peak_rss,
        server_rss_before_mb: rss_before,
        server_cpu_seconds: server_cpu,
        server_cpu_us_per_message: server_cpu.map(|s| s * 1e6 / n as f64),
        signature_failures: arrivals.signature_failures,
        duplicates: arrivals.duplicates,
        machine: crate::report::machine(),
    };
    println!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if report.signature_failures > 0 || report.duplicates > 0 {
        bail!("{} signature failures, {} duplicates", report.signature_failures, report.duplicates);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::counter;

    #[test]
    fn counters_are_summed_over_labels_and_not_confused_with_longer_names() {
        let text = "# TYPE chimatic_delivery_attempts_total counter\n\
                    chimatic_delivery_attempts_total{outcome=\"success\"} 7\n\
                    chimatic_delivery_attempts_total{outcome=\"failure\"} 2\n\
                    chimatic_delivery_attempts_total_extra 100\n\
                    chimatic_notifications_accepted_total 12\n";
        assert_eq!(counter(text, "chimatic_delivery_attempts_total"), 9);
        assert_eq!(counter(text, "chimatic_notifications_accepted_total"), 12);
        assert_eq!(counter(text, "chimatic_missing_total"), 0);
    }
}
