//! Watches: a newline-delimited JSON stream of `{"type", "object"}` events, resumable from a
//! resourceVersion while the history still holds it, and answered with an in-stream
//! `ERROR` 410 (as kube-apiserver does) once it does not — kube-runtime then re-lists.

use crate::server::Shared;
use crate::store::Notice;
use bytes::Bytes;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Which objects a watch sends and how each is rendered.
pub struct WatchSpec {
    pub storage: String,
    pub namespace: Option<String>,
    /// True when the (rendered) object should be sent.
    pub filter: Box<dyn Fn(&Value) -> bool + Send + Sync>,
    /// Storage form → what the client asked for (a view, or a one-row Table).
    pub render: Box<dyn Fn(&Value) -> Value + Send + Sync>,
    pub bookmark: Value,
    pub resource_version: Option<u64>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Duration,
    /// An injected fault: end the watch with this Status after its initial events.
    pub end_with: Option<Value>,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn gone(rv: u64, oldest: u64) -> Bytes {
    line(
        "ERROR",
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {rv} ({oldest})"),
            "reason": "Expired", "code": 410
        }),
    )
}

/// Starts a watch; returns the stream of body chunks.
pub fn start(
    shared: &Arc<Shared>,
    spec: WatchSpec,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + use<> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    // Events go through a delay line (see `DevCluster::set_watch_delay`): each is due at
    // now + delay, but never before the one ahead of it, so order is kept.
    let (delay_tx, mut delay_rx) = mpsc::unbounded_channel::<(tokio::time::Instant, Bytes)>();
    let out = tx.clone();
    tokio::spawn(async move {
        while let Some((due, chunk)) = delay_rx.recv().await {
            tokio::time::sleep_until(due).await;
            if out.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let shared_lag = shared.clone();
    let mut last_due = tokio::time::Instant::now();
    let mut deliver = move |chunk: Bytes| -> bool {
        let due = (tokio::time::Instant::now() + shared_lag.lag.next_watch_delay()).max(last_due);
        last_due = due;
        delay_tx.send((due, chunk)).is_ok()
    };
    let mut initial: Vec<Bytes> = vec![];
    let mut expired = false;
    let (mut rx_notice, start_rv) = {
        let store = shared.store.lock().expect("store lock");
        let rx_notice = store.subscribe();
        let current = store.current_rv();
        let in_scope = |ns: &str| spec.namespace.as_deref().is_none_or(|n| n == ns);
        match spec
            .resource_version
            .filter(|rv| *rv != 0 && !spec.send_initial_events)
        {
            // "Start at any" (rv=0) with stale reads on: the lagging cache's state, then what
            // happened since, as a watch cache that is behind serves it.
            None if spec.resource_version == Some(0)
                && !spec.send_initial_events
                && shared.lag.stale_reads().is_some() =>
            {
                let lag = shared.lag.stale_reads().map(|s| s.lag).unwrap_or_default();
                let when = std::time::Instant::now()
                    .checked_sub(lag)
                    .unwrap_or_else(std::time::Instant::now);
                let at = store.rv_at(when).max(store.oldest_watchable());
                let ns = spec.namespace.as_deref();
                for obj in store
                    .list_at(&spec.storage, ns, None, at)
                    .unwrap_or_default()
                {
                    let view = (spec.render)(&obj);
                    if (spec.filter)(&view) {
                        initial.push(line("ADDED", &view));
                    }
                }
                for r in store.history_after(at).unwrap_or_default() {
                    if r.storage != spec.storage || !in_scope(crate::meta::namespace(&r.object)) {
                        continue;
                    }
                    let view = (spec.render)(&r.object);
                    if (spec.filter)(&view) {
                        initial.push(line(r.change.as_str(), &view));
                    }
                }
            }
            None => {
                for obj in store.list(&spec.storage, spec.namespace.as_deref(), None) {
                    let view = (spec.render)(&obj);
                    if (spec.filter)(&view) {
                        initial.push(line("ADDED", &view));
                    }
                }
                if spec.send_initial_events {
                    let mut bm = spec.bookmark.clone();
                    bm["metadata"] = json!({
                        "resourceVersion": current.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}
                    });
                    initial.push(line("BOOKMARK", &bm));
                }
            }
            Some(rv) => match store.history_after(rv) {
                None => {
                    initial.push(gone(rv, store.oldest_watchable()));
                    expired = true;
                }
                Some(records) => {
                    for r in records {
                        if r.storage != spec.storage || !in_scope(crate::meta::namespace(&r.object))
                        {
                            continue;
                        }
                        let view = (spec.render)(&r.object);
                        if (spec.filter)(&view) {
                            initial.push(line(r.change.as_str(), &view));
                        }
                    }
                }
            },
        }
        (rx_notice, current)
    };
    tokio::spawn(async move {
        for chunk in initial {
            if !deliver(chunk) {
                return;
            }
        }
        if expired {
            return;
        }
        if let Some(status) = &spec.end_with {
            deliver(line("ERROR", status));
            return;
        }
        let deadline = tokio::time::Instant::now() + spec.timeout;
        let mut last_rv = start_rv;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.tick().await;
        loop {
            let chunk = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    if spec.bookmarks {
                        deliver(bookmark(&spec.bookmark, last_rv));
                    }
                    return;
                }
                _ = tick.tick(), if spec.bookmarks => bookmark(&spec.bookmark, last_rv),
                _ = tx.closed() => return,
                n = rx_notice.recv() => match n {
                    Ok(Notice::Change(r)) => {
                        if r.rv <= last_rv {
                            continue;
                        }
                        last_rv = r.rv;
                        let ns = crate::meta::namespace(&r.object);
                        if r.storage != spec.storage || spec.namespace.as_deref().is_some_and(|n| n != ns) {
                            continue;
                        }
                        let view = (spec.render)(&r.object);
                        if !(spec.filter)(&view) {
                            continue;
                        }
                        line(r.change.as_str(), &view)
                    }
                    Ok(Notice::CloseAll) | Err(broadcast::error::RecvError::Closed) => return,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // This watch fell too far behind to be served in order: make it re-list.
                        deliver(gone(last_rv, last_rv));
                        return;
                    }
                },
            };
            if !deliver(chunk) {
                return;
            }
        }
    });
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) },
    )
}

fn bookmark(template: &Value, rv: u64) -> Bytes {
    let mut bm = template.clone();
    bm["metadata"] = json!({"resourceVersion": rv.to_string()});
    line("BOOKMARK", &bm)
}
