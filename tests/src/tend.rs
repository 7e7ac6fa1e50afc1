//! The `tend` controller as a child process of the tests: building it, starting it against a
//! test cluster, scraping its metrics, and applying the tend CRDs and examples it works on.

use crate::{TestCluster, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tend_testkit::{ChildGuard, free_port};

/// The `tend` binary next to this test binary, built first (see [`workspace_binary`]) so it is
/// never stale (`TEND_BIN` overrides).
pub fn tend_binary() -> PathBuf {
    workspace_binary("tend", "TEND_BIN")
}

/// The path of the workspace binary `bin`, in the target dir of this test binary (same
/// profile); the environment variable `override_var` names a prebuilt one instead.
///
/// The first call runs `cargo build --workspace --bins` — the exact command `scripts/test.sh`
/// runs before the tests, so here it only checks that nothing is stale. Building every binary
/// with one command keeps cargo's feature resolution the same for all of them (building one
/// package alone would resolve its dependencies' features differently and rebuild them).
///
/// With `TEND_PREBUILT_BINARIES=1` the binaries already in the target dir are used as they are:
/// `scripts/test.sh` sets it for the run under faketime, where cargo itself would run with the
/// shifted clock (and rustc hangs there).
pub fn workspace_binary(bin: &str, override_var: &str) -> PathBuf {
    if let Ok(p) = std::env::var(override_var) {
        return PathBuf::from(p);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let dir = profile_dir();
        if std::env::var_os("TEND_PREBUILT_BINARIES").is_none() {
            build_workspace_binaries(&dir);
        }
        dir
    });
    let path = dir.join(bin);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// `<target>/<profile>` of this binary: a test is `<target>/<profile>/deps/<test>`, a program
/// of this crate (the benchmarks) `<target>/<profile>/<bin>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().expect("the binary's directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

fn build_workspace_binaries(profile_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo_root())
        .args(["build", "--workspace", "--bins"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo build --workspace --bins: {e}"));
    assert!(status.success(), "cargo build --workspace --bins failed");
}

/// The sum of the values of the lines of a metrics `page` that start with `prefix`.
pub fn metric_sum(page: &str, prefix: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A running `tend run` process.
pub struct Tend {
    pub proc: ChildGuard,
    pub metrics_port: u16,
    pub identity: String,
}

impl Tend {
    /// `GET /metrics` from this replica (empty on error).
    pub async fn metrics(&self) -> String {
        let url = format!("127.0.0.1:{}", self.metrics_port);
        tokio::task::spawn_blocking(move || http_get(&url, "/metrics").unwrap_or_default())
            .await
            .unwrap_or_default()
    }

    /// The value of a metric line that starts with `prefix` (summed over matching lines).
    pub async fn metric(&self, prefix: &str) -> f64 {
        metric_sum(&self.metrics().await, prefix)
    }
}

/// A tiny HTTP/1.0 GET, to avoid an HTTP client dependency for metrics scraping.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

impl TestCluster {
    /// Starts `tend run` against this cluster with leader election in `tend-system`.
    pub async fn start_tend(&self, identity: &str) -> anyhow::Result<Tend> {
        self.apply_yaml(
            &[],
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tend-system\n",
        )
        .await?;
        let metrics_port = free_port();
        let mut cmd = Command::new(tend_binary());
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .args([
                "run",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
            ])
            .args([
                "--lease-namespace",
                "tend-system",
                "--identity",
                identity,
                "--log-format",
                "text",
            ]);
        let log = self.dir.path().join(format!("tend-{identity}.log"));
        let proc = ChildGuard::spawn_logged(cmd, &log)?;
        Ok(Tend {
            proc,
            metrics_port,
            identity: identity.to_string(),
        })
    }

    /// Applies the tend CRDs, the dev secrets and the examples with kubectl.
    pub async fn apply_tend_examples(&self, extra: &[&str]) -> anyhow::Result<()> {
        let root = repo_root();
        let p = |s: &str| root.join(s).to_string_lossy().into_owned();
        self.install_tend_crds(extra).await?;
        for dir in ["examples", "examples/dev-secrets"] {
            let mut args = vec!["apply".to_string(), "-f".into(), p(dir)];
            args.extend(extra.iter().map(|s| s.to_string()));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            self.kubectl(&a).await?;
        }
        Ok(())
    }

    /// Applies the tend CRDs and waits until they are established.
    pub async fn install_tend_crds(&self, extra: &[&str]) -> anyhow::Result<()> {
        let root = repo_root();
        let p = |s: &str| root.join(s).to_string_lossy().into_owned();
        let mut args = vec!["apply".to_string(), "-f".into(), p("manifests/crds")];
        args.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.kubectl(&a).await?;
        for crd in [
            "backuppolicies",
            "restorerequests",
            "alertrules",
            "escalationpolicies",
            "incidentrecords",
            "supportchannels",
            "logpolicies",
        ] {
            self.kubectl(&[
                "wait",
                "--for=condition=Established",
                &format!("crd/{crd}.tend.dev"),
                "--timeout=60s",
            ])
            .await?;
        }
        Ok(())
    }
}
