//! Benchmark: AlertRules with the real `tend` binary against devcluster.
//!
//! 1. **Breach → first notification.** One rule probes a port this program opens and closes
//!    (`up`, `== 0`, `for: 0s`) with a webhook route to a local sink. Each round closes the port
//!    (the breach) and times until the sink receives the firing notice, then reopens it and waits
//!    for the resolution. Reported in units of the rule's evaluation interval (goal ≤ 2; with
//!    Alertmanager's defaults — `group_wait` 30 s behind Prometheus' evaluation — a first
//!    notification takes about 30 s to minutes).
//! 2. **Many rules.** N rules (default 1,000) scrape one fieldbook's `/metrics` every 30 s. Over
//!    three intervals it reports tend's CPU time per evaluation and its peak RSS, against the
//!    baseline of the same run: this program fetching and reading the same page (CPU per fetch).
//!
//!     cargo run --release -p tend-e2e --bin bench-alerts -- [--rules N] [--rounds R]
//!
//! Not part of the test suite.

use std::time::{Duration, Instant};

use anyhow::bail;
use tend_e2e::alerts::ProbeTarget;
use tend_e2e::fieldbook::{Fieldbook, PhotoStore};
use tend_e2e::{TestCluster, http_get};
use tend_testkit::webhook::WebhookSink;

const NS: &str = "bench";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) of a process, from /proc (clock ticks of 100 Hz).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id())
}

fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn wait_for(what: &str, limit: Duration, check: impl Fn() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rules = arg("--rules", 1000);
    let rounds = arg("--rounds", 5);
    let c = TestCluster::start().await?;
    c.install_tend_crds(&[]).await?;
    let hooks = WebhookSink::start().await;
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: hooks, namespace: {NS}}}\n\
             stringData: {{webhook: \"{}\"}}\n",
            hooks.url("/hook")
        ),
    )
    .await?;
    let tend = c.start_tend("bench").await?;
    let pid = tend.proc.id();

    // 1. Breach → first notification.
    let interval = 2.0;
    let mut service = ProbeTarget::closed();
    service.open().await?;
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: tend.dev/v1alpha1\nkind: AlertRule\nmetadata: {{name: up, namespace: {NS}}}\n\
             spec:\n  summary: service down\n  interval: {interval}s\n\
             \x20 source: {{http: {{url: \"http://127.0.0.1:{}/\", timeout: 1s}}}}\n\
             \x20 condition: {{operator: \"==\", threshold: 0}}\n\
             \x20 routes: [{{name: hook, webhook: {{urlSecretRef: {{name: hooks, key: webhook}}}}}}]\n",
            service.port
        ),
    )
    .await?;
    // Let the rule settle Inactive before the first breach.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut delays = Vec::new();
    for round in 0..rounds {
        let before = hooks.requests().len();
        service.close();
        let breach = Instant::now();
        wait_for("the firing notice", Duration::from_secs(60), || {
            hooks.requests().len() > before
        })
        .await?;
        let delay = hooks.requests()[before].at.duration_since(breach);
        delays.push(delay.as_secs_f64());
        println!(
            "round {}: breach → firing notice {:.2} s = {:.2} intervals",
            round + 1,
            delay.as_secs_f64(),
            delay.as_secs_f64() / interval
        );
        service.open().await?;
        wait_for("the resolution", Duration::from_secs(60), || {
            hooks.requests().len() > before + 1
        })
        .await?;
        // Start the next breach at a random phase of the evaluation cycle.
        tokio::time::sleep(Duration::from_millis(700 + 300 * round as u64)).await;
    }
    delays.sort_by(f64::total_cmp);
    let mean = delays.iter().sum::<f64>() / delays.len() as f64;
    println!(
        "breach → first notification over {rounds} rounds: mean {:.2} s, max {:.2} s; \
         in evaluation intervals ({interval} s): mean {:.2}, max {:.2} (goal ≤ 2)",
        mean,
        delays.last().copied().unwrap_or_default(),
        mean / interval,
        delays.last().copied().unwrap_or_default() / interval
    );
    c.kubectl(&["delete", "alertrule", "up", "-n", NS]).await?;

    // 2. Many rules against one fieldbook.
    let dir = tempfile::tempdir()?;
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos)?;
    let db = dir.path().join("fb.db").display().to_string();
    let fieldbook = Fieldbook::start(&dir.path().join("fb"), &db, PhotoStore::Dir(photos)).await?;
    let page_addr = format!("127.0.0.1:{}", fieldbook.port);

    // Baseline: this process fetching and reading the same page.
    let fetches = 200;
    let cpu0 = self_cpu_seconds();
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..fetches {
        let addr = page_addr.clone();
        let page = tokio::task::spawn_blocking(move || http_get(&addr, "/metrics")).await??;
        bytes = page.len();
        let series = page.lines().filter(|l| !l.starts_with('#')).count();
        std::hint::black_box(series);
    }
    let base_cpu = (self_cpu_seconds() - cpu0) / fetches as f64;
    println!(
        "baseline: a plain fetch of fieldbook's /metrics ({bytes} bytes): {:.2} ms CPU, {:.2} ms wall",
        base_cpu * 1000.0,
        started.elapsed().as_secs_f64() * 1000.0 / fetches as f64
    );

    let mut yaml = String::new();
    for i in 0..rules {
        yaml.push_str(&format!(
            "---\napiVersion: tend.dev/v1alpha1\nkind: AlertRule\nmetadata: {{name: r{i}, namespace: {NS}}}\n\
             spec:\n  summary: requests\n  interval: 30s\n\
             \x20 source: {{metrics: {{url: \"http://{page_addr}/metrics\", metric: fieldbook_http_requests_total, aggregation: sum}}}}\n\
             \x20 condition: {{operator: \">\", threshold: 1e12}}\n"
        ));
    }
    let applied = Instant::now();
    c.apply_yaml(&["--server-side"], &yaml).await?;
    println!(
        "applied {rules} rules in {:.1} s",
        applied.elapsed().as_secs_f64()
    );
    // Wait for the first round of evaluations, then measure three intervals.
    let evaluations = || async { tend.metric("tend_alert_evaluations_total{").await };
    let first = Instant::now();
    while evaluations().await < rules as f64 {
        if first.elapsed() > Duration::from_secs(300) {
            bail!("the first evaluation of every rule did not happen in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "first evaluation of all {rules} rules within {:.1} s of applying",
        applied.elapsed().as_secs_f64()
    );
    let (e0, cpu0) = (evaluations().await, cpu_seconds(pid));
    tokio::time::sleep(Duration::from_secs(90)).await;
    let (e1, cpu1) = (evaluations().await, cpu_seconds(pid));
    let per_eval = (cpu1 - cpu0) / (e1 - e0).max(1.0);
    println!(
        "{rules} rules at 30 s: {} evaluations in 90 s, tend CPU {:.2} s = {:.1}% of one core, \
         {:.2} ms CPU per evaluation = {:.2}× the baseline fetch; tend RSS now {:.1} MiB, peak {:.1} MiB",
        e1 - e0,
        cpu1 - cpu0,
        (cpu1 - cpu0) / 90.0 * 100.0,
        per_eval * 1000.0,
        per_eval / base_cpu.max(1e-9),
        rss_mib(pid, "VmRSS:"),
        rss_mib(pid, "VmHWM:")
    );
    drop(fieldbook);
    Ok(())
}
