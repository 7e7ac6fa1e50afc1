//! State shared by every reconciler.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::backup::{BackupRuns, BackupSettings};
use crate::metrics::Metrics;
use crate::restore::RestoreRuns;

/// Where "now" comes from. Production reads the system clock; tests inject one they move, so
/// schedules and retention over many days run without sleeping.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Timestamp::now))
    }

    /// A clock that asks `now`.
    pub fn from_fn(now: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// Shared by all controllers: the client, the event recorder, the metrics, the clock and the
/// backup runs in progress.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub backups: BackupRuns,
    pub backup_settings: BackupSettings,
    pub restores: RestoreRuns,
}

impl Context {
    pub fn new(client: Client, identity: &str, metrics: Arc<Metrics>) -> Self {
        Self::with(
            client,
            identity,
            metrics,
            Clock::system(),
            BackupSettings::default(),
        )
    }

    pub fn with(
        client: Client,
        identity: &str,
        metrics: Arc<Metrics>,
        clock: Clock,
        backup_settings: BackupSettings,
    ) -> Self {
        let reporter = Reporter {
            controller: "tend".into(),
            instance: Some(identity.into()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            recorder,
            metrics,
            clock,
            backups: BackupRuns::default(),
            backup_settings,
            restores: RestoreRuns::default(),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
