//! Starts `chimatic serve` nodes on a fresh store (a temporary SQLite directory, or fresh
//! PostgreSQL databases) for the run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::Args;

/// The server nodes of one run, sharing one store.
pub struct Cluster {
    pub api_key: String,
    nodes: Vec<Node>,
    databases: Option<(String, Vec<String>)>,
    pub statements: Option<StatementCounter>,
    _dir: tempfile::TempDir,
}

struct Node {
    base: String,
    child: Child,
}

fn psql(admin: &str, sql: &str) -> anyhow::Result<String> {
    let out =
        Command::new("psql").args([&format!("{admin}/postgres"), "-v", "ON_ERROR_STOP=1", "-qAtc", sql]).output()?;
    anyhow::ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Statements the run's databases executed, from `pg_stat_statements` (cluster-wide counters,
/// filtered to this run's databases so the bench's own `psql` calls are left out).
pub struct StatementCounter {
    admin: String,
    databases: Vec<String>,
}

/// What `pg_stat_statements` counted: every call (BEGIN and COMMIT included) and the busiest
/// statements.
pub struct StatementCount {
    pub calls: u64,
    pub top: Vec<(u64, String)>,
}

impl StatementCounter {
    /// `None` (with the reason on stderr) when the cluster was not started with the module.
    fn new(admin: &str, databases: &[String]) -> Option<Self> {
        let loaded =
            psql(admin, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT 1 FROM pg_stat_statements LIMIT 0");
        if let Err(e) = loaded {
            eprintln!(
                "statements per notification: n/a; start PostgreSQL with \
                 `-c shared_preload_libraries=pg_stat_statements` to count them ({})",
                e.to_string().lines().next().unwrap_or_default()
            );
            return None;
        }
        Some(Self { admin: admin.to_string(), databases: databases.to_vec() })
    }

    pub fn reset(&self) -> anyhow::Result<()> {
        psql(&self.admin, "SELECT pg_stat_statements_reset()").map(drop)
    }

    pub fn read(&self) -> anyhow::Result<StatementCount> {
        let names = self.databases.iter().map(|d| format!("'{d}'")).collect::<Vec<_>>().join(", ");
        let from =
            format!("FROM pg_stat_statements WHERE dbid IN (SELECT oid FROM pg_database WHERE datname IN ({names}))");
        let calls = psql(&self.admin, &format!("SELECT COALESCE(SUM(calls), 0) {from}"))?.trim().parse()?;
        let top = psql(
            &self.admin,
            &format!(
                "SELECT calls, regexp_replace(left(query, 110), '\\s+', ' ', 'g') {from} ORDER BY calls DESC LIMIT 12"
            ),
        )?
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter_map(|(n, q)| Some((n.parse().ok()?, q.to_string())))
        .collect();
        Ok(StatementCount { calls, top })
    }
}

impl Cluster {
    pub async fn start(args: &Args) -> anyhow::Result<Self> {
        let bin = match &args.server_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?.with_file_name("chimatic"),
        };
        if !bin.exists() {
            bail!("{} not found: build it with `cargo build --release` or pass --server-bin", bin.display());
        }
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let mut env: Vec<(String, String)> = args.server_env.clone();
        let mut databases = None;
        if let Some(admin) = &args.postgres {
            let admin = admin.trim_end_matches('/').to_string();
            let stem = format!("chimatic_bench_{}", std::process::id());
            let names = vec![format!("{stem}_data"), format!("{stem}_vault")];
            for db in &names {
                psql(&admin, &format!("DROP DATABASE IF EXISTS {db}"))?;
                psql(&admin, &format!("CREATE DATABASE {db}"))?;
            }
            env.push(("CHIMATIC_DATABASE_URL".into(), format!("{admin}/{}", names[0])));
            env.push(("CHIMATIC_VAULT_DATABASE_URL".into(), format!("{admin}/{}", names[1])));
            databases = Some((admin, names));
        }
        let out = Command::new(&bin)
            .args(["workspace", "create", "--name", "bench", "--data-dir"])
            .arg(&data)
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .envs(env.iter().cloned())
            .output()?;
        if !out.status.success() {
            bail!("workspace create failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let ws: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let api_key = ws["api_key"].as_str().context("api_key")?.to_string();
        let statements = databases.as_ref().and_then(|(admin, names)| StatementCounter::new(admin, names));
        let mut cluster = Self { api_key, nodes: Vec::new(), databases, statements, _dir: dir };
        for _ in 0..args.nodes.max(1) {
            cluster.nodes.push(Node::start(&bin, &data, &env)?);
        }
        Ok(cluster)
    }

    pub fn bases(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.base.clone()).collect()
    }

    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.child.id()).collect()
    }
}

impl Node {
    fn start(bin: &std::path::Path, data: &std::path::Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .env("CHIMATIC_ALLOW_PRIVATE_DESTINATIONS", "1")
            .env("RUST_LOG", "warn,chimatic=info")
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.split_whitespace().next().unwrap_or_default().to_string());
                }
                if line.contains("ERROR") {
                    eprintln!("server: {line}");
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(30)).context("server did not start")?;
        Ok(Self { base, child })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        if let Some((admin, names)) = &self.databases {
            for db in names {
                let _ = psql(admin, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            }
        }
    }
}

/// Peak resident set size (VmHWM) of a process, in MB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmHWM:")
}

/// Resident set size (VmRSS) of a process now, in MB.
pub fn rss_mb(pid: u32) -> Option<f64> {
    status_mb(pid, "VmRSS:")
}

fn status_mb(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// User + system CPU seconds of a process (Linux reports /proc times in USER_HZ = 100 ticks/s).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
