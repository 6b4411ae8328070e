use serde::Serialize;

#[derive(Serialize)]
pub struct Report {
    pub notifications: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub concurrency: usize,
    pub batch: usize,
    pub payload_bytes: usize,
    pub offered_rate: Option<f64>,
    pub prefilled: u64,
    /// Server nodes sharing the store.
    pub nodes: usize,
    pub accept_seconds: f64,
    pub accepted_per_sec: f64,
    pub delivered_per_sec: f64,
    /// p50, p90, p99, max of request latency.
    pub api_latency_ms: [f64; 4],
    /// p50, p99 from sending the request to the receiver's first arrival.
    pub e2e_latency_ms: [f64; 2],
    pub signature_failures: u64,
    pub duplicates: u64,
    pub missing: u64,
    pub server_peak_rss_mb: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    /// Statements the PostgreSQL store executed during the measured part (pg_stat_statements).
    pub postgres_statements: Option<u64>,
    /// Server CPU per accepted notification (accept and deliver), in microseconds.
    pub server_cpu_us_per_notification: Option<f64>,
    pub statements_per_notification: Option<f64>,
    /// CPU used by this load tool itself (sender and receiver), which shares the machine.
    pub bench_cpu_seconds: Option<f64>,
    pub machine: String,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// Fills in the per-notification figures from the totals.
    pub fn with_ratios(mut self) -> Self {
        let per = |total: f64| (self.accepted > 0).then(|| total / self.accepted as f64);
        self.server_cpu_us_per_notification = self.server_cpu_seconds.and_then(|s| per(s * 1e6));
        self.statements_per_notification = self.postgres_statements.and_then(|n| per(n as f64));
        self
    }

    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map(|x| format!("{x:.1} {unit}")).unwrap_or_else(|| "n/a".into());
        let rows = [
            ("machine", self.machine.clone()),
            (
                "notifications",
                format!(
                    "{} ({} B payload, batch {}, concurrency {})",
                    self.notifications, self.payload_bytes, self.batch, self.concurrency
                ),
            ),
            ("offered rate", self.offered_rate.map(|r| format!("{r:.0}/s")).unwrap_or_else(|| "unbounded".into())),
            ("already stored", self.prefilled.to_string()),
            ("server nodes", self.nodes.to_string()),
            ("accepted", format!("{} ({} rejected)", self.accepted, self.rejected)),
            ("accepted/s", format!("{:.0}", self.accepted_per_sec)),
            ("delivered/s (end to end)", format!("{:.0}", self.delivered_per_sec)),
            (
                "API latency p50/p90/p99/max",
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2} ms",
                    self.api_latency_ms[0], self.api_latency_ms[1], self.api_latency_ms[2], self.api_latency_ms[3]
                ),
            ),
            ("end-to-end latency p50/p99", format!("{:.1} / {:.1} ms", self.e2e_latency_ms[0], self.e2e_latency_ms[1])),
            ("signature failures", self.signature_failures.to_string()),
            ("duplicates", self.duplicates.to_string()),
            ("missing", self.missing.to_string()),
            ("server peak RSS (largest node)", opt(self.server_peak_rss_mb, "MB")),
            ("server CPU time (all nodes)", opt(self.server_cpu_seconds, "s")),
            ("server CPU per notification", opt(self.server_cpu_us_per_notification, "µs")),
            (
                "PostgreSQL statements",
                match (self.postgres_statements, self.statements_per_notification) {
                    (Some(n), Some(per)) => format!("{n} ({per:.2} per notification)"),
                    _ => "n/a".into(),
                },
            ),
            ("load tool CPU time", opt(self.bench_cpu_seconds, "s")),
        ];
        rows.iter().map(|(k, v)| format!("{k:<30} {v}")).collect::<Vec<_>>().join("\n")
    }
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    format!("{cores} cores, {mem_gb:.0} GiB, {cpu}")
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }
}
