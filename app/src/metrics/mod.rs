//! Prometheus metrics (`/metrics`): HTTP requests by method, route template
//! and status (with a `status_class` for error ratios), their latency,
//! requests in flight, DB query latency, photo store latency, the outcome of
//! the last self-check (`selfcheck`), and the standard `process_*` metrics
//! ([`process`]).
//!
//! Label values are bounded: the method is one of the known methods or
//! `other`, the route is the matched route template or `unmatched`, never the
//! raw path. A client sending random methods or paths cannot grow the
//! exposition.

pub mod process;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The route label of a request no route matched (404s from the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// One of [`method_label`]'s values.
    pub method: &'static str,
    /// The matched route template (`/records/{id}/delete`) or [`UNMATCHED_ROUTE`].
    pub route: String,
    pub status: u16,
    /// `1xx` … `5xx`, what an error ratio selects on (`status_class="5xx"`).
    pub status_class: &'static str,
}

impl RouteLabels {
    pub fn new(method: &Method, route: Option<&str>, status: u16) -> RouteLabels {
        RouteLabels {
            method: method_label(method),
            route: route.unwrap_or(UNMATCHED_ROUTE).to_string(),
            status,
            status_class: status_class(status),
        }
    }
}

/// The method as a label value: the methods fieldbook's routes answer to,
/// else `other`, so arbitrary extension methods cannot add series.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `1xx` … `5xx`; anything outside 100..=599 (which hyper never sends) counts as `5xx`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
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

/// Request latency buckets, 1 ms .. 10 s at the usual 1-2.5-5 steps, so a
/// latency objective such as "p95 under 500 ms" falls on a bucket bound
/// and `histogram_quantile` over `_bucket{le=…}` is exact there.
pub const REQUEST_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RouteLabels, Counter>,
    pub request_seconds: HistogramFamily<RouteLabels>,
    pub in_flight: Gauge,
    pub db_seconds: HistogramFamily<OpLabels>,
    pub photo_seconds: HistogramFamily<OpLabels>,
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
        let mut root = Registry::default();
        // The standard names carry no application prefix.
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("fieldbook");
        let requests = Family::<RouteLabels, Counter>::default();
        let request_seconds: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(request_histogram);
        let in_flight = Gauge::default();
        let db_seconds: HistogramFamily<OpLabels> = Family::new_with_constructor(latency_histogram);
        let photo_seconds: HistogramFamily<OpLabels> =
            Family::new_with_constructor(latency_histogram);
        let verify_missing_objects = Gauge::default();
        let verify_ok = Gauge::default();
        let verify_last_run_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template, status and status class",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route template, status and status class",
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
            registry: root,
            requests,
            request_seconds,
            in_flight,
            db_seconds,
            photo_seconds,
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

    /// Text exposition (OpenMetrics); the process metrics are read now.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_and_unmatched_routes_share_one_label_value() {
        let odd = Method::from_bytes(b"XYZZY").unwrap();
        let labels = RouteLabels::new(&odd, None, 405);
        assert_eq!(
            (labels.method, labels.route.as_str(), labels.status_class),
            ("other", UNMATCHED_ROUTE, "4xx")
        );
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::TRACE), "other");
        assert_eq!(method_label(&Method::CONNECT), "other");
    }

    #[test]
    fn status_classes() {
        for (status, class) in [
            (101, "1xx"),
            (200, "2xx"),
            (304, "3xx"),
            (404, "4xx"),
            (503, "5xx"),
        ] {
            assert_eq!(status_class(status), class);
        }
    }

    #[test]
    fn exposition_has_status_class_buckets_and_unprefixed_process_metrics() {
        let metrics = Metrics::new();
        metrics.observe_request(
            RouteLabels::new(&Method::GET, Some("/records"), 503),
            Duration::from_millis(30),
        );
        let text = metrics.render();
        assert!(
            text.contains(r#"fieldbook_http_requests_total{method="GET",route="/records",status="503",status_class="5xx"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"fieldbook_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/records",status="503",status_class="5xx"} 1"#)
                || text.contains(r#"fieldbook_http_request_duration_seconds_bucket{method="GET",route="/records",status="503",status_class="5xx",le="0.05"} 1"#),
            "{text}"
        );
        if cfg!(target_os = "linux") {
            for name in [
                "\nprocess_cpu_seconds_total ",
                "\nprocess_resident_memory_bytes ",
                "\nprocess_start_time_seconds ",
                "\nprocess_open_fds ",
                "# TYPE process_cpu_seconds counter",
            ] {
                assert!(text.contains(name), "{name:?} missing in\n{text}");
            }
        }
        assert!(!text.contains("fieldbook_process_"), "{text}");
    }
}
