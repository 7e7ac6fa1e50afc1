//! The one way tend builds an HTTP(S) client for outside peers (the app's ops API, alert
//! probes, notification webhooks): HTTP/1.1, TLS with the system's roots, plain HTTP allowed for
//! in-cluster endpoints, and a bounded connect time. The builder lives in the notify engine
//! (`tend_notify::http_client`), which has no Kubernetes in it; the controller re-exports it so
//! every client in the process is built the same way.

pub use tend_notify::{Https, http_client as client};
