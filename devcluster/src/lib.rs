//! devcluster: an embedded Kubernetes API server for one machine and for end-to-end tests.
//!
//! It serves the subset of the API that tend and kubectl use — discovery, a few built-in kinds,
//! CRDs with schema/CEL admission, CRUD with Kubernetes object semantics, list/watch, patches and
//! Table output — over plain HTTP on loopback. It is a development substrate, never the
//! production path.
//!
//! # Strict like kube-apiserver
//!
//! It refuses what kube-apiserver refuses, with the same code, Status reason and wording:
//! ObjectMeta on every kind (names, label keys and values, annotation keys and total size,
//! finalizer names, owner references), events.k8s.io/v1 Events (note ≤ 1024 bytes, reason and
//! action ≤ 128, the required fields), bad label selectors (400). Paged lists are read at the
//! revision of their first page (410 Gone once it is compacted); deletion follows the
//! `Foreground` / `Background` / `Orphan` propagation policies with a garbage collector that runs
//! a little after the owner goes; server-side apply tracks field ownership with conflicts.
//!
//! # Failing like kube-apiserver, on purpose
//!
//! Tests make it fail through [`DevCluster::inject`] ([`Fault`]: 500 / 429 / 504, before or
//! after the write commits), [`DevCluster::set_watch_delay`], [`DevCluster::set_stale_reads`]
//! and [`DevCluster::close_watches`]. The `devcluster` binary serves the same controls over
//! HTTP under `/devcluster/v1/` on the API port (loopback, no authentication):
//!
//! ```text
//! POST   /devcluster/v1/faults         {"response":"InternalError"|"TooManyRequests"|"Timeout",
//!                                        "retryAfterSeconds":1, "verb":"update",
//!                                        "resource":"backuppolicies", "subresource":"status",
//!                                        "namespace":"shop", "name":"nightly",
//!                                        "stage":"BeforeCommit"|"AfterCommit", "times":1}
//! GET    /devcluster/v1/faults         the injected faults with their fired/remaining counts
//! DELETE /devcluster/v1/faults         clear every fault
//! PUT    /devcluster/v1/watch-delay    {"baseMillis":200,"jitterMillis":100}   (DELETE: off)
//! PUT    /devcluster/v1/stale-reads    {"lagMillis":2000}                      (DELETE: off)
//! POST   /devcluster/v1/close-watches  end every open watch; clients re-list
//! ```
//!
//! e.g. `curl -X POST http://127.0.0.1:PORT/devcluster/v1/faults -d '{"response":"Timeout","verb":"create","stage":"AfterCommit"}'`.

#![forbid(unsafe_code)]

mod admit;
pub mod apply_files;
mod crd;
mod delete;
mod discovery;
mod events;
mod faults;
mod handlers;
mod jsonpath;
mod kubeconfig;
mod meta;
mod openapi;
mod ops;
mod patch;
mod persist;
mod protobuf;
mod registry;
mod selectors;
mod server;
mod ssa;
mod status;
mod store;
mod table;
mod validate;
mod watch;

pub use faults::{Fault, FaultHandle, FaultResponse, FaultStage, StaleReads};
use server::Shared;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// How to start a devcluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where state survives restarts; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Where to write the kubeconfig; default `<data_dir>/kubeconfig`, else a file in the temp dir.
    pub kubeconfig: Option<PathBuf>,
    /// How many changes watches can resume across; older resourceVersions get 410 Gone.
    pub history_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            data_dir: None,
            kubeconfig: None,
            history_limit: 20_000,
        }
    }
}

/// A running devcluster. Dropping it without [`DevCluster::shutdown`] stops serving but skips
/// the final snapshot.
pub struct DevCluster {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    shared: Arc<Shared>,
    data_dir: Option<PathBuf>,
    stop: signal::Sender<bool>,
    server: Option<JoinHandle<()>>,
    saver: Option<JoinHandle<()>>,
    gc: Option<JoinHandle<()>>,
}

const STANDARD_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

impl DevCluster {
    pub async fn start(opts: Options) -> anyhow::Result<DevCluster> {
        let mut store = Store::new(opts.history_limit);
        if let Some(dir) = &opts.data_dir {
            std::fs::create_dir_all(dir)?;
            persist::load(dir, &mut store)?;
            delete::enqueue_dangling(&mut store);
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(store, addr.to_string()));
        for ns in STANDARD_NAMESPACES {
            ensure_namespace(&shared, ns);
        }
        let url = format!("http://{addr}");
        let kubeconfig = match (&opts.kubeconfig, &opts.data_dir) {
            (Some(k), _) => k.clone(),
            (None, Some(d)) => d.join("kubeconfig"),
            (None, None) => std::env::temp_dir().join(format!(
                "devcluster-{}-{}.kubeconfig",
                std::process::id(),
                addr.port()
            )),
        };
        kubeconfig::write(&kubeconfig, &url)?;
        let (stop, mut stopped) = signal::channel(false);
        let app = server::router(shared.clone());
        let mut stop_rx = stopped.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "devcluster server failed");
            }
        });
        let saver = opts.data_dir.clone().map(|dir| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut saved = u64::MAX;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                    save_if_changed(&shared, &dir, &mut saved);
                }
            })
        });
        let gc = {
            let shared = shared.clone();
            let mut stopped = stop.subscribe();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(delete::GC_TICK) => {}
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                    let mut store = shared.store.lock().expect("store lock");
                    delete::collect_garbage(&mut store, std::time::Instant::now());
                }
            })
        };
        tracing::info!(%url, kubeconfig = %kubeconfig.display(), "devcluster listening");
        Ok(DevCluster {
            addr,
            kubeconfig,
            shared,
            data_dir: opts.data_dir,
            stop,
            server: Some(server),
            saver,
            gc: Some(gc),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Forgets the watch history and ends every open watch, as an API server restart with
    /// intervening writes would: watches that resume from an older resourceVersion get 410 Gone.
    pub fn compact_history(&self) {
        self.shared.store.lock().expect("store lock").compact();
    }

    /// Makes matching requests fail (see [`Fault`]); the handle counts how often it struck.
    pub fn inject(&self, fault: Fault) -> FaultHandle {
        self.shared.faults.inject(fault).1
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Every watch event is delivered after base + uniform(0..jitter), order per watch kept.
    /// Zero and zero turns the delay off. Applies to open watches too.
    pub fn set_watch_delay(&self, base: Duration, jitter: Duration) {
        self.shared.lag.set_watch_delay(base, jitter);
    }

    /// Lists and gets with resourceVersion=0 (what kube-runtime's watcher sends on (re)list) are
    /// served from the state as it was `lag` ago, as a lagging watch cache serves them; `None`
    /// turns it off. Reads without a resourceVersion stay consistent.
    pub fn set_stale_reads(&self, stale: Option<StaleReads>) {
        self.shared.lag.set_stale_reads(stale);
    }

    /// Ends every open watch so clients relist, as an API server restart does: resuming from a
    /// resourceVersion older than now gets 410 Gone. Paged lists keep working.
    pub fn close_watches(&self) {
        self.shared
            .store
            .lock()
            .expect("store lock")
            .restart_watches();
    }

    /// The current cluster-wide resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().expect("store lock").current_rv()
    }

    /// Stops serving (open watches end), then writes the final snapshot.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shared
            .store
            .lock()
            .expect("store lock")
            .close_watches();
        let _ = self.stop.send(true);
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
        if let Some(s) = self.saver.take() {
            let _ = s.await;
        }
        if let Some(g) = self.gc.take() {
            let _ = g.await;
        }
        if let Some(dir) = &self.data_dir {
            let mut saved = u64::MAX;
            save_if_changed(&self.shared, dir, &mut saved);
        }
        Ok(())
    }

    /// Serves until Ctrl-C / SIGTERM, then shuts down cleanly.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await;
        self.shutdown().await
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        if let Ok(s) = self.shared.store.lock() {
            s.close_watches();
        }
        let _ = self.stop.send(true);
    }
}

fn ensure_namespace(shared: &Shared, name: &str) {
    let mut store = shared.store.lock().expect("store lock");
    let rt = store
        .registry
        .get("", "v1", "namespaces")
        .expect("namespaces are built in");
    if store
        .get(&rt.storage, &(String::new(), name.to_string()))
        .is_none()
    {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let _ = ops::create(&mut store, &rt, "", ns, &ops::WriteOpts::default());
    }
}

fn save_if_changed(shared: &Shared, dir: &Path, saved: &mut u64) {
    let snap = {
        let store = shared.store.lock().expect("store lock");
        if store.write_count == *saved {
            return;
        }
        *saved = store.write_count;
        persist::snapshot(&store)
    };
    if let Err(e) = persist::write(dir, &snap) {
        tracing::error!(error = %e, dir = %dir.display(), "could not save devcluster state");
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
