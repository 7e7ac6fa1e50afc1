//! The tend controller in the test's own process (`tend::run::run_with_client`), with a clock
//! the test moves: for tests that need to jump time forward (repeat intervals, `for`, silences)
//! or read the controller's metrics without a child process.

use tend::run::{RunConfig, run_with_client};
use tend_testkit::clock::TestClock;

use crate::{TestCluster, WAIT, free_port, http_get};

/// A running in-process controller; its clock is the system clock plus an offset the test
/// moves with [`Controller::advance`].
pub struct Controller {
    pub clock: TestClock,
    metrics_addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), tend::run::RunError>>,
}

impl Controller {
    /// Starts every kind's controller against `c`.
    pub async fn start(c: &TestCluster) -> anyhow::Result<Self> {
        let (clock, now) = TestClock::new(jiff::Timestamp::now());
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let mut config = RunConfig::new(metrics_addr.parse()?);
        config.clock = tend::context::Clock::from_fn(now);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_with_client(c.client().await?, config, async move {
            let _ = stop_rx.await;
        }));
        Ok(Self {
            clock,
            metrics_addr,
            stop: Some(stop_tx),
            task,
        })
    }

    /// Moves the controller's clock `seconds` ahead.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(seconds);
    }

    /// The controller's `/metrics` page (empty on error).
    pub async fn metrics(&self) -> String {
        let addr = self.metrics_addr.clone();
        tokio::task::spawn_blocking(move || http_get(&addr, "/metrics").unwrap_or_default())
            .await
            .unwrap_or_default()
    }

    /// The sum of the metric lines that start with `prefix`.
    pub async fn metric(&self, prefix: &str) -> f64 {
        crate::tend::metric_sum(&self.metrics().await, prefix)
    }

    /// Stops the controller and waits for it to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task).await???;
        Ok(())
    }
}
