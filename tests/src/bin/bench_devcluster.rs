//! Benchmark: N (default 10,000) custom objects in devcluster, then the tend controller on them.
//!
//! Reports devcluster's memory (RSS before and after, bytes per object), create throughput,
//! list latency (one full list and a paginated list, each against a 1-object list as the
//! baseline in the same run), watch latency (patch → event), tend's peak memory (VmHWM, also per
//! 1k objects) and its reconcile rate (from starting tend until every object has
//! `status.observedGeneration == metadata.generation`), devcluster's raw status-patch rate (the
//! write tend makes per object, from 16 concurrent clients, measured after tend stopped) and the
//! ratio of the two rates. The goal for 10k objects: ratio ≥ 0.5, tend's peak RSS ≤ 100 MiB.
//!
//!     cargo run --release -p tend-e2e --bin bench-devcluster -- [--objects N] [--skip-tend]
//!
//! devcluster and tend run as child processes (built by this program in the same profile) so
//! their memory is measured alone. Not part of the test suite.

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tend_e2e::{free_port, repo_root};
use tend_testkit::ChildGuard;

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Builds devcluster and tend in this binary's profile; returns the profile directory.
fn build_binaries() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().context("profile dir")?.to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(repo_root()).args([
        "build",
        "-p",
        "tend-e2e",
        "-p",
        "devcluster",
        "-p",
        "tend",
        "--bin",
        "tend",
        "--bin",
        "devcluster",
    ]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    if !cmd.status()?.success() {
        bail!("building devcluster and tend failed");
    }
    Ok(profile_dir)
}

async fn client_for(kubeconfig: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(kube::Client::try_from(cfg)?)
}

fn policy(name: &str) -> DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "tend.dev/v1alpha1", "kind": "EscalationPolicy",
        "metadata": {"name": name, "namespace": "fieldbook", "labels": {"bench": "yes"}},
        "spec": {"repeat": 1, "levels": [{"name": "L1", "ackTimeout": "15m", "targets": [
            {"name": "ops-slack", "slack": {"urlSecretRef": {"name": "chat-webhooks", "key": "slack"}}}]}]}
    }))
    .expect("policy")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let objects: usize = args
        .iter()
        .position(|a| a == "--objects")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let skip_tend = args.iter().any(|a| a == "--skip-tend");
    let profile_dir = build_binaries()?;
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let root = repo_root();
    let mut dc_cmd = Command::new(profile_dir.join("devcluster"));
    dc_cmd.args([
        "serve",
        "--port",
        &free_port().to_string(),
        "--create-namespace",
        "tend-system",
    ]);
    dc_cmd.arg("--kubeconfig").arg(&kubeconfig);
    for p in [
        "manifests/crds",
        "examples/00-namespace.yaml",
        "examples/dev-secrets",
    ] {
        dc_cmd.arg("--apply").arg(root.join(p));
    }
    let dc_log = dir.path().join("devcluster.log");
    let dc = ChildGuard::spawn_logged(dc_cmd, &dc_log)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&dc_log)
        .unwrap_or_default()
        .contains("devcluster serving http")
    {
        if Instant::now() > deadline {
            bail!("devcluster did not start:\n{}", dc.log_text());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = client_for(&kubeconfig).await?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tend.dev", "v1alpha1", "EscalationPolicy"),
        "escalationpolicies",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "fieldbook", &ar);
    let rss_empty = rss_kib(dc.id(), "VmRSS:");

    // Baseline: a one-object list, before the bulk load.
    api.create(&PostParams::default(), &policy("baseline"))
        .await?;
    let mut base = vec![];
    for _ in 0..20 {
        let t = Instant::now();
        api.list(&ListParams::default()).await?;
        base.push(t.elapsed());
    }
    base.sort();

    let started = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &policy(&format!("bench-{i:05}")))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let create_time = started.elapsed();
    let rss_full = rss_kib(dc.id(), "VmRSS:");

    let mut full = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let l = api.list(&ListParams::default()).await?;
        full.push(t.elapsed());
        assert_eq!(l.items.len(), objects + 1);
    }
    full.sort();
    let mut paged = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        let mut lp = ListParams::default().limit(500);
        let mut n = 0;
        loop {
            let page = api.list(&lp).await?;
            n += page.items.len();
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        assert_eq!(n, objects + 1);
        paged.push(t.elapsed());
    }
    paged.sort();

    // Watch latency: time from a patch's response to the event arriving on an open watch.
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = api
        .watch(&kube::api::WatchParams::default().timeout(290), &rv)
        .await?
        .boxed();
    let mut watch_lat = vec![];
    for i in 0..100 {
        let name = format!("bench-{:05}", i % objects.max(1));
        let p = serde_json::json!({"metadata": {"annotations": {"bench/round": i.to_string()}}});
        let t = Instant::now();
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&p))
            .await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
                Ok(Some(Ok(kube::api::WatchEvent::Modified(o))))
                    if o.metadata.name.as_deref() == Some(&name) =>
                {
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                other => bail!(
                    "watch ended or failed: {:?}",
                    other.map(|o| o.map(|r| r.map(|_| ())))
                ),
            }
        }
        watch_lat.push(t.elapsed());
    }
    watch_lat.sort();
    drop(stream);

    println!("devcluster benchmark ({objects} EscalationPolicy objects, {profile} build)");
    println!(
        "  devcluster RSS: empty {} → with objects {} ({:.0} bytes/object)",
        mib(rss_empty),
        mib(rss_full),
        (rss_full.saturating_sub(rss_empty) * 1024) as f64 / objects as f64
    );
    println!(
        "  create: {} total, {:.0} objects/s (16 concurrent clients)",
        ms(create_time),
        objects as f64 / create_time.as_secs_f64()
    );
    println!(
        "  list of 1 object (baseline): p50 {}",
        ms(percentile(&base, 0.5))
    );
    println!(
        "  list of all {} objects: p50 {} ({:.0}x baseline)",
        objects + 1,
        ms(percentile(&full, 0.5)),
        percentile(&full, 0.5).as_secs_f64() / percentile(&base, 0.5).as_secs_f64().max(1e-9)
    );
    println!(
        "  paginated list (limit 500): p50 {}",
        ms(percentile(&paged, 0.5))
    );
    println!(
        "  watch latency (patch → event): p50 {}, p99 {}",
        ms(percentile(&watch_lat, 0.5)),
        ms(percentile(&watch_lat, 0.99))
    );

    let tend = if skip_tend {
        None
    } else {
        Some(run_tend(&profile_dir, &kubeconfig, dir.path(), &api, objects + 1).await?)
    };
    // After tend stopped, so nothing else writes: the same objects, the same kind of request.
    let raw = raw_status_patch_rate(&api, 16).await?;
    println!(
        "  raw status-patch rate: {:.0} objects/s (server-side apply of status, 16 concurrent clients, {} objects)",
        raw.rate, raw.objects
    );
    if let Some(tend) = tend {
        let total = objects + 1;
        let rate = total as f64 / tend.done.as_secs_f64();
        println!(
            "  tend: reconciled all {total} objects in {:.1} s ({rate:.0} objects/s), peak RSS {} ({:.1} MiB per 1k objects), RSS when done {}",
            tend.done.as_secs_f64(),
            mib(tend.peak_kib),
            tend.peak_kib as f64 / 1024.0 / (total as f64 / 1000.0),
            mib(tend.rss_done_kib),
        );
        println!(
            "  ratio (tend rate / raw status-patch rate): {:.2}",
            rate / raw.rate
        );
        println!(
            "  devcluster RSS after tend: {} (peak {})",
            mib(rss_kib(dc.id(), "VmRSS:")),
            mib(rss_kib(dc.id(), "VmHWM:"))
        );
    }
    Ok(())
}

/// What tend did with the objects.
struct TendRun {
    /// From starting the process until every object had `observedGeneration == generation`.
    done: Duration,
    /// Peak resident memory (VmHWM).
    peak_kib: u64,
    /// Resident memory once every object was reconciled.
    rss_done_kib: u64,
}

/// Starts tend as a new user would (all namespaces, no flags but the addresses) and waits until
/// it has reconciled `total` objects; stops it afterwards.
async fn run_tend(
    profile_dir: &Path,
    kubeconfig: &Path,
    dir: &Path,
    api: &Api<DynamicObject>,
    total: usize,
) -> anyhow::Result<TendRun> {
    let metrics_port = free_port();
    let mut tend_cmd = Command::new(profile_dir.join("tend"));
    tend_cmd
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .args([
            "run",
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
            "--lease-namespace",
            "tend-system",
            "--log-format",
            "text",
        ]);
    // Progress comes from a watch (cheap and incremental), not from repeated full lists.
    let mut progress =
        kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default()).boxed();
    let mut done_names = std::collections::HashSet::new();
    let started = Instant::now();
    let mut tend = ChildGuard::spawn_logged(tend_cmd, &dir.join("tend.log"))?;
    let mut sampled = Instant::now();
    let done = loop {
        if sampled.elapsed() > Duration::from_millis(500) {
            sampled = Instant::now();
            if !tend.is_running() {
                bail!("tend exited:\n{}", tend.log_text());
            }
        }
        let ev = tokio::time::timeout(Duration::from_secs(1), progress.next()).await;
        let objs = match ev {
            Ok(Some(Ok(
                kube::runtime::watcher::Event::Apply(o)
                | kube::runtime::watcher::Event::InitApply(o),
            ))) => vec![o],
            Ok(Some(Ok(_))) | Err(_) => vec![],
            Ok(Some(Err(e))) => {
                eprintln!("watch error (retrying): {e}");
                vec![]
            }
            Ok(None) => bail!("progress watch ended"),
        };
        for o in objs {
            let observed = o.data["status"]["observedGeneration"].as_i64();
            if observed.is_some() && observed == o.metadata.generation {
                done_names.insert(o.metadata.name.clone().unwrap_or_default());
            }
        }
        if done_names.len() >= total {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!(
                "tend reconciled only {} of {total} in 30 min",
                done_names.len()
            );
        }
    };
    // VmHWM is the high-water mark: reading it once at the end sees the peak.
    let run = TendRun {
        done,
        peak_kib: rss_kib(tend.id(), "VmHWM:"),
        rss_done_kib: rss_kib(tend.id(), "VmRSS:"),
    };
    tend.kill();
    Ok(run)
}

struct RawRate {
    objects: usize,
    rate: f64,
}

/// devcluster's own limit for the write tend makes once per object: a server-side apply of the
/// status subresource under tend's field manager, with the `resourceVersion` precondition and a
/// status of the same shape (see controller/src/status.rs), from `clients` concurrent clients.
async fn raw_status_patch_rate(
    api: &Api<DynamicObject>,
    clients: usize,
) -> anyhow::Result<RawRate> {
    let objects = api.list(&ListParams::default()).await?.items;
    let count = objects.len();
    let now = jiff::Timestamp::now().to_string();
    let started = Instant::now();
    futures::stream::iter(objects)
        .map(|o| {
            let api = api.clone();
            let now = now.clone();
            async move {
                let name = o.metadata.name.clone().unwrap_or_default();
                let generation = o.metadata.generation;
                let body = serde_json::json!({
                    "apiVersion": "tend.dev/v1alpha1",
                    "kind": "EscalationPolicy",
                    "metadata": {"resourceVersion": o.metadata.resource_version},
                    "status": {
                        "observedGeneration": generation,
                        "levels": 1,
                        "totalEscalationTime": "30m",
                        "conditions": [{
                            "type": "Ready", "status": "False", "reason": "BenchRawWrite",
                            "message": "written by bench-devcluster to measure devcluster's status-patch rate",
                            "lastTransitionTime": now, "observedGeneration": generation,
                        }],
                    },
                });
                api.patch_status(
                    &name,
                    &PatchParams::apply("tend.dev").force(),
                    &Patch::Apply(&body),
                )
                .await
                .map(|_| ())
            }
        })
        .buffer_unordered(clients)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(RawRate {
        objects: count,
        rate: count as f64 / started.elapsed().as_secs_f64(),
    })
}
