//! Prometheus metrics (`/metrics`): HTTP requests by route and status, their
//! latency, requests in flight, DB query latency, photo store latency, the
//! outcome of the last self-check (`selfcheck`), and process CPU and memory
//! read from /proc at scrape time.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub request_seconds: HistogramFamily<RouteLabels>,
    pub in_flight: Gauge,
    pub db_seconds: HistogramFamily<OpLabels>,
    pub photo_seconds: HistogramFamily<OpLabels>,
    cpu_seconds: Gauge<f64, AtomicU64>,
    resident_bytes: Gauge,
    verify_missing_objects: Gauge,
    verify_ok: Gauge,
    verify_last_run_seconds: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fieldbook");
        let requests = Family::<RouteLabels, Counter>::default();
        let request_seconds: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let db_seconds: HistogramFamily<OpLabels> = Family::new_with_constructor(latency_histogram);
        let photo_seconds: HistogramFamily<OpLabels> =
            Family::new_with_constructor(latency_histogram);
        let cpu_seconds = Gauge::<f64, AtomicU64>::default();
        let resident_bytes = Gauge::default();
        let verify_missing_objects = Gauge::default();
        let verify_ok = Gauge::default();
        let verify_last_run_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template and status",
            request_seconds.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            in_flight.clone(),
        );
        registry.register(
            "db_query_duration_seconds",
            "Database query latency",
            db_seconds.clone(),
        );
        registry.register(
            "photo_store_duration_seconds",
            "Photo store operation latency",
            photo_seconds.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "CPU time used by the process (user + system)",
            cpu_seconds.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            resident_bytes.clone(),
        );
        registry.register(
            "verify_missing_objects",
            "Referenced photo/screenshot objects missing from the store at the last self-check",
            verify_missing_objects.clone(),
        );
        registry.register(
            "verify_ok",
            "1 when the last self-check passed (objects present, log chains intact), else 0",
            verify_ok.clone(),
        );
        registry.register(
            "verify_last_run_timestamp_seconds",
            "Unix time the last self-check finished; 0 before the first",
            verify_last_run_seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            in_flight,
            db_seconds,
            photo_seconds,
            cpu_seconds,
            resident_bytes,
            verify_missing_objects,
            verify_ok,
            verify_last_run_seconds,
        }
    }

    pub fn observe_db(&self, op: &str, elapsed: Duration) {
        self.db_seconds
            .get_or_create(&OpLabels { op: op.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_photo(&self, op: &str, elapsed: Duration) {
        self.photo_seconds
            .get_or_create(&OpLabels { op: op.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_request(&self, labels: RouteLabels, elapsed: Duration) {
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Outcome of one self-check. `missing` is None when the check could not
    /// finish; the last known count then stays, and `ok` is false.
    pub fn record_verify(&self, missing: Option<i64>, ok: bool, finished_unix_seconds: f64) {
        if let Some(n) = missing {
            self.verify_missing_objects.set(n);
        }
        self.verify_ok.set(i64::from(ok));
        self.verify_last_run_seconds.set(finished_unix_seconds);
    }

    /// Text exposition, with the process gauges refreshed first.
    pub fn render(&self) -> String {
        if let Some((cpu, rss)) = process_usage() {
            self.cpu_seconds.set(cpu);
            self.resident_bytes.set(rss);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// (CPU seconds, resident bytes) of this process from /proc; None off Linux.
fn process_usage() -> Option<(f64, i64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks_per_second = 100.0; // USER_HZ on every Linux platform we run on
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let rss_pages: i64 = fields.get(21)?.parse().ok()?;
    Some(((utime + stime) / ticks_per_second, rss_pages * 4096))
}
