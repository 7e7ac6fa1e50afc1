//! A real Prometheus and a real node_exporter (Debian's `prometheus` and
//! `prometheus-node-exporter`) on free loopback ports, for the AlertRule `prometheus` source.
//! Prometheus scrapes the targets a test names every second, with its TSDB in a temp dir.
//! Both are stopped when their guard drops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::net::free_port;
use crate::process::ChildGuard;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

fn require_binary(path: &str, package: &str) -> PathBuf {
    let found = Path::new(path);
    assert!(
        found.is_file(),
        "{path} is needed by this test and is not installed: apt-get install -y --no-install-recommends {package}"
    );
    found.to_path_buf()
}

/// A running node_exporter.
pub struct NodeExporter {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: Option<ChildGuard>,
}

impl NodeExporter {
    /// Starts node_exporter on a free port and waits until it serves `/metrics`.
    pub async fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tend-node-exporter")
            .tempdir()
            .expect("a temp dir for node_exporter");
        let mut this = Self {
            port: free_port(),
            dir,
            proc: None,
        };
        this.restart().await;
        this
    }

    /// `host:port`, as a Prometheus target.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL), as a crash would; its port stops answering.
    pub fn stop(&mut self) {
        self.proc = None;
    }

    /// Starts it again on the same port (after [`NodeExporter::stop`]).
    pub async fn restart(&mut self) {
        self.proc = None;
        let mut cmd = Command::new(require_binary(NODE_EXPORTER, "prometheus-node-exporter"));
        cmd.arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            // Collectors that read hardware or need privileges only slow a scrape down here.
            .args([
                "--no-collector.hwmon",
                "--no-collector.thermal_zone",
                "--no-collector.nvme",
                "--no-collector.powersupplyclass",
                "--no-collector.textfile",
            ]);
        let mut proc = ChildGuard::spawn_logged(cmd, &self.dir.path().join("node-exporter.log"))
            .expect("start node_exporter");
        proc.wait_for_port(self.port, "node_exporter", Duration::from_secs(60))
            .await;
        self.proc = Some(proc);
    }
}

/// A running Prometheus scraping the given targets every second.
pub struct Prometheus {
    pub port: u16,
    dir: tempfile::TempDir,
    proc: ChildGuard,
}

impl Prometheus {
    /// Starts Prometheus with one scrape job per `(job, host:port)` (scrape and evaluation
    /// interval 1 s) and waits until it is ready.
    pub async fn start(jobs: &[(&str, String)]) -> Self {
        let binary = require_binary(PROMETHEUS, "prometheus");
        let dir = tempfile::Builder::new()
            .prefix("tend-prometheus")
            .tempdir()
            .expect("a temp dir for Prometheus");
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, target) in jobs {
            config.push_str(&format!(
                "  - job_name: {job:?}\n    static_configs:\n      - targets: [{target:?}]\n"
            ));
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let port = free_port();
        let mut cmd = Command::new(binary);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--rules.alert.resend-delay=1s");
        let mut proc = ChildGuard::spawn_logged(cmd, &dir.path().join("prometheus.log"))
            .expect("start Prometheus");
        proc.wait_for_port(port, "prometheus", Duration::from_secs(60))
            .await;
        let this = Self { port, dir, proc };
        this.wait_ready(Duration::from_secs(60)).await;
        this
    }

    /// The base URL, as an AlertRule's `spec.source.prometheus.url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Prometheus's own log (for failure messages).
    pub fn log(&self) -> String {
        self.proc.log_text()
    }

    /// The TSDB and config directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    async fn wait_ready(&self, timeout: Duration) {
        let started = Instant::now();
        let addr = format!("127.0.0.1:{}", self.port);
        loop {
            let addr = addr.clone();
            let ready = tokio::task::spawn_blocking(move || status_of(&addr, "/-/ready"))
                .await
                .ok()
                .flatten();
            if ready == Some(200) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "Prometheus was not ready within {timeout:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The HTTP status of a GET, or None when there was no answer.
fn status_of(addr: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
