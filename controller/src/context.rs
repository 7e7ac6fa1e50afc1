//! State shared by every reconciler.

use std::fmt;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};

use crate::backup::{BackupRuns, BackupSettings};
use crate::metrics::Metrics;
use crate::restore::RestoreRuns;
use crate::secrets::SecretCache;

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

/// Shared by all controllers: the client, the event recorder, the Secrets read lately, the
/// metrics, the clock and the backup runs in progress.
pub struct Context {
    pub client: Client,
    pub recorder: EventRecorder,
    pub secrets: SecretCache,
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
        let recorder = EventRecorder::new(client.clone(), reporter);
        Self {
            secrets: SecretCache::new(client.clone()),
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

/// kube's [`Recorder`] with a bounded memory. The Recorder keeps every Event it published in the
/// last six minutes (to turn a repeat into a series count instead of a new Event) and scans all
/// of them on every publish; with thousands of objects that is unbounded memory and quadratic
/// work. This one starts a fresh Recorder after [`EventRecorder::MAX_REMEMBERED`] Events: a repeat
/// of an Event published before that becomes a new Event rather than a series.
pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    current: Mutex<(Recorder, usize)>,
}

impl EventRecorder {
    /// Events one Recorder remembers before it is replaced.
    pub const MAX_REMEMBERED: usize = 1000;

    pub fn new(client: Client, reporter: Reporter) -> Self {
        let recorder = Recorder::new(client.clone(), reporter.clone());
        Self {
            client,
            reporter,
            current: Mutex::new((recorder, 0)),
        }
    }

    /// Publishes `event` about `regarding` (see [`Recorder::publish`]).
    pub async fn publish(&self, event: &Event, regarding: &ObjectReference) -> kube::Result<()> {
        let recorder = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            if current.1 >= Self::MAX_REMEMBERED {
                *current = (Recorder::new(self.client.clone(), self.reporter.clone()), 0);
            }
            current.1 += 1;
            current.0.clone()
        };
        recorder.publish(event, regarding).await
    }
}
