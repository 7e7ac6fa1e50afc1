//! What every reconciler shares: the API client, the Event recorder, the metrics and the clock.
//! Nothing here knows a kind; each kind keeps its own runtime state (`TendKind::State`, in
//! the reconcile pipeline).

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};

pub use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::secrets::SecretCache;

/// Shared by all controllers.
pub struct Context {
    pub client: Client,
    pub recorder: EventRecorder,
    /// Secrets read lately, shared by every reconcile's reference checks.
    pub secrets: SecretCache,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl Context {
    pub fn new(client: Client, identity: &str, metrics: Arc<Metrics>, clock: Clock) -> Self {
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
