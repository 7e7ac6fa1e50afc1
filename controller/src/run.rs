//! `tend run`: the controller process — probes and metrics, leader election, one Controller per
//! kind, and a clean shutdown on SIGTERM/SIGINT (controllers drain, the lease is released).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::api::ObjectMeta;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, Resource};
use tend_crds::*;
use tokio::sync::watch;

use crate::backup_policy::{BackupSettings, BackupState};
use crate::context::{Clock, Context};
use crate::leader::{LeaderElector, LeaseConfig};
use crate::metrics::Metrics;
use crate::reconcile::{KindContext, TendKind, error_policy, reconcile_guarded};
use crate::restore_request::RestoreState;
use crate::server::{self, Probes};
use kube::core::DeserializeGuard;

/// Settings of `tend run`.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub metrics_addr: SocketAddr,
    /// Watch only this namespace (all namespaces when `None`).
    pub watch_namespace: Option<String>,
    /// `None` disables leader election (single replica, development).
    pub lease: Option<LeaseConfig>,
    /// Where "now" comes from (tests move time without sleeping).
    pub clock: Clock,
    /// Backup engine settings.
    pub backup: BackupSettings,
}

impl RunConfig {
    /// Defaults for everything but the address: all namespaces, no leader election, the
    /// system clock.
    pub fn new(metrics_addr: SocketAddr) -> Self {
        Self {
            metrics_addr,
            watch_namespace: None,
            lease: None,
            clock: Clock::system(),
            backup: BackupSettings::default(),
        }
    }
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot reach the Kubernetes API: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot serve probes on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("lost the leader lease {0}: stopping so that only the new leader acts")]
    LostLease(String),
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c().map(|_| ());
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler only fails outside a Tokio runtime");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

pub async fn run(config: RunConfig) -> Result<(), RunError> {
    let client = Client::try_default().await.map_err(RunError::Client)?;
    run_with_client(client, config, shutdown_signal()).await
}

/// Runs until `shutdown` resolves (tests pass their own trigger).
pub async fn run_with_client(
    client: Client,
    config: RunConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    let stopped = {
        let rx = stop_rx.clone();
        move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        }
    };

    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .map_err(|source| RunError::Serve {
            addr: config.metrics_addr,
            source,
        })?;
    let probes = Probes {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let server = tokio::spawn(
        axum::serve(listener, server::router(probes))
            .with_graceful_shutdown(stopped())
            .into_future(),
    );
    tracing::info!(addr = %config.metrics_addr, "serving /metrics, /healthz and /readyz");

    client.apiserver_version().await.map_err(RunError::Client)?;
    ready.store(true, Ordering::Relaxed);

    let identity = config
        .lease
        .as_ref()
        .map_or_else(|| "tend".to_string(), |l| l.identity.clone());
    let mut elector = config
        .lease
        .clone()
        .map(|lease| LeaderElector::new(client.clone(), lease));
    if let Some(elector) = elector.as_mut() {
        let acquired = acquire(elector, &metrics, stopped()).await;
        if !acquired {
            server.abort();
            return Ok(());
        }
    }

    tend_backup::install_crypto_provider();
    let ctx = Arc::new(Context::new(
        client.clone(),
        &identity,
        metrics.clone(),
        config.clock.clone(),
    ));
    // The kinds: each with its own state; the only place that lists them.
    let backups = Arc::new(BackupState::new(config.backup.clone()));
    let restores = Arc::new(RestoreState::new(config.backup.clone()));
    let watch = Watch {
        client: &client,
        namespace: config.watch_namespace.as_deref(),
    };
    let controllers = futures::future::join_all(vec![
        // A policy is woken when a run ends, and when a drill's RestoreRequest (a controller
        // reference to the policy) changes.
        watch
            .controller::<BackupPolicy>(stopped())
            .owns(
                watch.api::<RestoreRequest>(),
                watcher::Config::default().any_semantic(),
            )
            .reconcile_all_on(backups.finished_runs())
            .run(&ctx, &backups),
        watch
            .controller::<RestoreRequest>(stopped())
            .reconcile_all_on(restores.finished_runs())
            .run(&ctx, &restores),
        watch.simple::<AlertRule>(&ctx, stopped()),
        watch.simple::<EscalationPolicy>(&ctx, stopped()),
        watch.simple::<IncidentRecord>(&ctx, stopped()),
        watch.simple::<SupportChannel>(&ctx, stopped()),
        watch.simple::<LogPolicy>(&ctx, stopped()),
    ]);

    let result = match elector.as_mut() {
        Some(elector) => {
            let renew = hold(elector, &metrics, stopped());
            tokio::select! {
                _ = controllers => Ok(()),
                lost = renew => match lost {
                    Some(name) => Err(RunError::LostLease(name)),
                    None => Ok(()),
                },
            }
        }
        None => {
            controllers.await;
            Ok(())
        }
    };
    // Runs still going stay `Running` in status; whoever leads next reports them failed and
    // removes their partial data.
    backups.abort_all();
    restores.abort_all();
    if let Some(elector) = elector.as_mut() {
        metrics.leader.set(0);
        if let Err(error) = elector.release().await {
            tracing::warn!(%error, "could not release the leader lease; it expires on its own");
        }
    }
    let _ = server.await;
    tracing::info!("stopped");
    result
}

/// Reconciles of one kind running at once. Unbounded (kube's default), a start with 10,000
/// objects ran 10,000 reconciles at once: as many HTTP connections to the API server, each with
/// its buffers, and slower overall than a bounded queue. A reconcile only reads and writes the
/// API (long work runs in tasks), so a few dozen keep the API server busy.
const RECONCILE_CONCURRENCY: u16 = 32;

/// Drops what tend never reads from an object before the watch cache keeps it: `managedFields`
/// (often larger than the spec) and the last-applied annotation (`kubectl apply`'s copy of the
/// whole object). The cache holds every object of every kind, so this is saved once per object.
fn trim_for_cache(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// Where the controllers watch: one namespace or all.
struct Watch<'a> {
    client: &'a Client,
    namespace: Option<&'a str>,
}

impl Watch<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        match self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// The Controller of kind `K`, to be given more triggers before [`KindController::run`].
    fn controller<K: TendKind>(
        &self,
        stopped: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) -> KindController<K> {
        // As `Controller::new`, but every object is trimmed before the cache keeps it.
        let (reader, writer) = reflector::store();
        let objects = watcher(
            self.api::<DeserializeGuard<K>>(),
            watcher::Config::default().any_semantic(),
        )
        .modify(|obj: &mut DeserializeGuard<K>| trim_for_cache(obj.meta_mut()))
        .reflect(writer)
        .applied_objects();
        KindController(
            Controller::for_stream(objects, reader)
                .with_config(
                    kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY),
                )
                .graceful_shutdown_on(stopped),
        )
    }

    /// The Controller of a kind that needs no triggers but its own objects, with a fresh
    /// (default) state.
    fn simple<K: TendKind>(
        &self,
        ctx: &Arc<Context>,
        stopped: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) -> BoxFuture<'static, ()> {
        let state = Arc::new(K::State::default());
        self.controller::<K>(stopped).run(ctx, &state)
    }
}

/// A kind's Controller while it is being wired.
struct KindController<K: TendKind>(Controller<DeserializeGuard<K>>);

impl<K: TendKind> KindController<K> {
    /// Also reconciles the owner (by controller reference) of a `C` that changes.
    fn owns<C>(self, api: Api<C>, config: watcher::Config) -> Self
    where
        C: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        Self(self.0.owns(api, config))
    }

    /// Also reconciles every object of the kind when `trigger` yields (a task ended).
    fn reconcile_all_on(
        self,
        trigger: impl futures::Stream<Item = ()> + Send + Sync + 'static,
    ) -> Self {
        Self(self.0.reconcile_all_on(trigger))
    }

    fn run(self, ctx: &Arc<Context>, state: &Arc<K::State>) -> BoxFuture<'static, ()> {
        self.0
            .run(
                reconcile_guarded::<K>,
                error_policy::<K>,
                KindContext::new(ctx.clone(), state.clone()),
            )
            .for_each(|result| async move {
                match result {
                    Ok((object, _)) => tracing::debug!(kind = K::KIND, %object, "reconciled"),
                    Err(error) => tracing::warn!(kind = K::KIND, %error, "controller error"),
                }
            })
            .boxed()
    }
}

/// Waits until this replica holds the lease; `false` if shutdown came first.
async fn acquire(
    elector: &mut LeaderElector,
    metrics: &Metrics,
    stopped: impl std::future::Future<Output = ()>,
) -> bool {
    tokio::pin!(stopped);
    let mut logged_standby = false;
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => {
                tracing::info!(identity = elector.identity(), lease = %elector.config().name, "acquired the leader lease");
                metrics.leader.set(1);
                return true;
            }
            Ok(false) if !logged_standby => {
                tracing::info!(
                    identity = elector.identity(),
                    "another replica leads; standing by"
                );
                logged_standby = true;
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "leader election request failed"),
        }
        tokio::select! {
            _ = &mut stopped => return false,
            _ = tokio::time::sleep(elector.config().retry_period) => {}
        }
    }
}

/// Renews the lease until shutdown (`None`) or until it cannot be renewed within the lease
/// duration (`Some(lease name)`): then another replica may already lead, so this one stops.
async fn hold(
    elector: &mut LeaderElector,
    metrics: &Metrics,
    stopped: impl std::future::Future<Output = ()>,
) -> Option<String> {
    tokio::pin!(stopped);
    let mut last_renewal = Instant::now();
    // Stop acting well before the lease can be taken over.
    let deadline = elector.config().lease_duration.mul_f32(2.0 / 3.0);
    loop {
        tokio::select! {
            _ = &mut stopped => return None,
            _ = tokio::time::sleep(elector.config().retry_period) => {}
        }
        match elector.try_acquire_or_renew().await {
            Ok(true) => {
                last_renewal = Instant::now();
                metrics.lease_renewals.inc();
            }
            Ok(false) => return Some(elector.config().name.clone()),
            Err(error) => tracing::warn!(%error, "could not renew the leader lease"),
        }
        if last_renewal.elapsed() > deadline {
            return Some(elector.config().name.clone());
        }
    }
}

/// Default identity: host name and process id.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tend".into());
    format!("{host}-{}", std::process::id())
}
