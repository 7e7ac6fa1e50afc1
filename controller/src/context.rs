//! What every reconciler shares: the API client, the Event recorder, the metrics and the clock.
//! Nothing here knows a kind; each kind keeps its own runtime state (see
//! [`crate::reconcile::TendKind::State`]).

use std::sync::Arc;

use jiff::Timestamp;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

pub use crate::clock::Clock;
use crate::metrics::Metrics;

/// Shared by all controllers.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
}

impl Context {
    pub fn new(client: Client, identity: &str, metrics: Arc<Metrics>, clock: Clock) -> Self {
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
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
