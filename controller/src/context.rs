//! State shared by every reconciler.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;

/// Shared by all controllers: the client, the event recorder and the metrics.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
}

impl Context {
    pub fn new(client: Client, identity: &str, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: "tend".into(),
            instance: Some(identity.into()),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            recorder,
            metrics,
        }
    }
}
