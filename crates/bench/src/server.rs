//! Starts a `chimatic serve` on a fresh temporary data directory for the run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::Args;

pub struct Server {
    pub base: String,
    pub api_key: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Server {
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
        let out = Command::new(&bin)
            .args(["workspace", "create", "--name", "bench", "--data-dir"])
            .arg(&data)
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .output()?;
        if !out.status.success() {
            bail!("workspace create failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let ws: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let api_key = ws["api_key"].as_str().context("api_key")?.to_string();

        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env_remove("CHIMATIC_KEK")
            .env_remove("CHIMATIC_KEK_FILE")
            .env("CHIMATIC_ALLOW_PRIVATE_DESTINATIONS", "1")
            .env("RUST_LOG", "warn,chimatic=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &args.server_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.trim().to_string());
                }
                if line.contains("ERROR") || line.contains("WARN") {
                    eprintln!("server: {line}");
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).context("server did not start")?;
        Ok(Self { base: format!("http://{addr}"), api_key, child, _dir: dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak resident set size (VmHWM) of a process, in MB.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
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
