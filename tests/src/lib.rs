//! End-to-end harness: a cluster to test against and the real clients to drive it.
//!
//! [`TestCluster::start`] starts an in-process devcluster on a free port, or — when
//! `TEND_E2E_KUBECONFIG` is set — uses that cluster instead (kind, a real cluster), so the same
//! tests run anywhere. [`TestCluster::kubectl`] runs the real `kubectl` binary and
//! [`TestCluster::client`] gives a `kube::Client`. Tools that are missing fail the test with a
//! message saying what to install; nothing is skipped silently.
//!
//! What is not about Kubernetes (ports, polling, child processes, PostgreSQL, the S3 server, the
//! movable clock) comes from `tend-testkit`, which the other crates' tests share.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod farm;
pub mod fieldbook;
pub mod inprocess;
mod tend;

pub use tend::{Tend, http_get, tend_binary, workspace_binary};
pub use tend_testkit::{eventually, free_port};

/// The Events section of `kubectl describe` output.
pub fn events_of(describe: &str) -> String {
    describe
        .split("\nEvents:")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Every file under `dir`, recursively (none if it does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

use anyhow::{Context, bail};
use devcluster::{DevCluster, Options};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Generous, because CI shares two cores between several builds.
pub const WAIT: Duration = Duration::from_secs(60);

/// The repository root (the workspace), for `manifests/` and `examples/`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The `kubectl` binary; panics with install instructions when there is none.
pub fn kubectl_binary() -> PathBuf {
    if let Ok(p) = std::env::var("KUBECTL") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("kubectl"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "kubectl is not installed: the end-to-end tests drive the real kubectl binary. \
             Install it with `apt-get install -y kubernetes-client` (Debian) or `apt-get install -y kubectl`, \
             or point KUBECTL at a kubectl binary."
        )
    })
}

pub struct TestCluster {
    devcluster: Option<DevCluster>,
    kubeconfig: PathBuf,
    /// Holds the data dir, kubectl's cache and the kubeconfig; removed on drop.
    pub dir: tempfile::TempDir,
    data_dir: PathBuf,
}

impl TestCluster {
    /// A cluster for one test: `TEND_E2E_KUBECONFIG` if set, else a fresh devcluster.
    pub async fn start() -> anyhow::Result<TestCluster> {
        Self::start_with(Options::default()).await
    }

    /// Like [`TestCluster::start`], with devcluster options (the data dir is always set).
    pub async fn start_with(mut opts: Options) -> anyhow::Result<TestCluster> {
        let dir = tempfile::Builder::new().prefix("tend-e2e-").tempdir()?;
        let data_dir = dir.path().join("data");
        if let Ok(k) = std::env::var("TEND_E2E_KUBECONFIG") {
            return Ok(TestCluster {
                devcluster: None,
                kubeconfig: PathBuf::from(k),
                dir,
                data_dir,
            });
        }
        opts.data_dir = Some(data_dir.clone());
        opts.kubeconfig = Some(dir.path().join("kubeconfig"));
        let dc = DevCluster::start(opts).await?;
        let kubeconfig = dc.kubeconfig_path().to_path_buf();
        Ok(TestCluster {
            devcluster: Some(dc),
            kubeconfig,
            dir,
            data_dir,
        })
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The in-process devcluster, or `None` when testing an external cluster.
    pub fn devcluster(&self) -> Option<&DevCluster> {
        self.devcluster.as_ref()
    }

    pub fn is_devcluster(&self) -> bool {
        self.devcluster.is_some()
    }

    /// Stops devcluster and starts it again on the same port and data dir.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let Some(dc) = self.devcluster.take() else {
            bail!("restart needs devcluster")
        };
        let port = dc.port();
        dc.shutdown().await?;
        let mut last_err = None;
        for _ in 0..50 {
            let opts = Options {
                port,
                data_dir: Some(self.data_dir.clone()),
                kubeconfig: Some(self.kubeconfig.clone()),
                ..Options::default()
            };
            match DevCluster::start(opts).await {
                Ok(dc) => {
                    self.devcluster = Some(dc);
                    return Ok(());
                }
                Err(e) => last_err = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last_err.expect("an error")).context("restarting devcluster on the same port")
    }

    /// A `kubectl` command with this cluster's kubeconfig and a private discovery cache.
    pub fn kubectl_cmd(&self) -> Command {
        let mut c = Command::new(kubectl_binary());
        c.arg("--kubeconfig").arg(&self.kubeconfig);
        c.arg("--cache-dir").arg(self.dir.path().join("kube-cache"));
        c.arg("--request-timeout=30s");
        c.stdin(Stdio::null());
        c
    }

    /// Runs kubectl (off the async runtime) and returns its output, whatever the exit status.
    pub async fn kubectl_output(&self, args: &[&str]) -> Output {
        let mut c = self.kubectl_cmd();
        c.args(args);
        tokio::task::spawn_blocking(move || c.output().expect("running kubectl"))
            .await
            .expect("kubectl task")
    }

    /// Runs kubectl and returns stdout; fails with stderr when kubectl fails.
    pub async fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.kubectl_output(args).await;
        if !out.status.success() {
            bail!(
                "kubectl {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs kubectl, expecting it to fail; returns stderr.
    pub async fn kubectl_fails(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.kubectl_output(args).await;
        if out.status.success() {
            bail!(
                "kubectl {} succeeded but should have failed:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// kubectl with a manifest on stdin (`kubectl apply -f -`).
    pub async fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut c = self.kubectl_cmd();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let input = input.to_string();
        tokio::task::spawn_blocking(move || {
            let mut child = c.spawn().expect("running kubectl");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("writing stdin");
            child.wait_with_output().expect("kubectl output")
        })
        .await
        .expect("kubectl task")
    }

    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A `kube::Client` that does not retry 429/503/504 by itself (kube's default client does,
    /// up to 15 times), so a test sees every answer the server gives.
    pub async fn client_without_retries(&self) -> anyhow::Result<kube::Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        config.default_retry = false;
        Ok(kube::Client::try_from(config)?)
    }
}

/// The harness's own small CRD (`widgets.e2e.tend.dev`), independent of the tend CRDs.
pub mod widgets {
    use kube::api::{Api, ApiResource, DynamicObject};
    use kube::core::GroupVersionKind;

    pub const CRD_FILE: &str = "widgets-crd.yaml";

    pub fn resource() -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("e2e.tend.dev", "v1", "Widget"),
            "widgets",
        )
    }

    pub fn api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), ns, &resource())
    }

    /// A namespace and a widget, as YAML for `kubectl apply -f -`.
    pub fn manifest(ns: &str, name: &str, size: i64, color: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: e2e.tend.dev/v1\nkind: Widget\n\
             metadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    tier: front\nspec:\n  size: {size}\n  color: {color}\n"
        )
    }
}

impl TestCluster {
    /// Applies the widgets CRD and waits until it is served.
    pub async fn install_widgets(&self) -> anyhow::Result<()> {
        let crd = fixture(widgets::CRD_FILE);
        self.kubectl(&["apply", "-f", crd.to_str().expect("utf-8 path")])
            .await?;
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.e2e.tend.dev",
            "--timeout=60s",
        ])
        .await?;
        Ok(())
    }

    /// `kubectl apply -f -` with `yaml`; fails with kubectl's stderr.
    pub async fn apply_yaml(&self, extra: &[&str], yaml: &str) -> anyhow::Result<String> {
        let mut args = vec!["apply", "-f", "-"];
        args.extend_from_slice(extra);
        let out = self.kubectl_stdin(&args, yaml).await;
        if !out.status.success() {
            bail!(
                "kubectl apply failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}
