//! Events are stored once, in core/v1 form, and served through two views: core/v1 (what
//! `kubectl describe` lists) and events.k8s.io/v1 (what kube-runtime's `Recorder` writes).

use serde_json::{Map, Value, json};

/// Field renames between the events.k8s.io/v1 view (left) and core/v1 storage (right).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// events.k8s.io/v1 → core/v1.
pub fn to_core(mut ev: Value) -> Value {
    let Some(m) = ev.as_object_mut() else {
        return ev;
    };
    for (from, to) in RENAMES {
        if let Some(v) = m.remove(*from) {
            m.insert((*to).to_string(), v);
        }
    }
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("kind".into(), json!("Event"));
    fill_core_compat(m);
    ev
}

/// Fills the legacy fields `kubectl describe` prints from the newer ones, as the API server does.
fn fill_core_compat(m: &mut Map<String, Value>) {
    let series_count = m
        .get("series")
        .and_then(|s| s.get("count"))
        .and_then(Value::as_i64);
    let series_last = m
        .get("series")
        .and_then(|s| s.get("lastObservedTime"))
        .cloned();
    let event_time = m.get("eventTime").filter(|v| !v.is_null()).cloned();
    if let Some(c) = series_count {
        m.insert("count".into(), json!(c));
    } else if m.get("count").is_none_or(Value::is_null) {
        m.insert("count".into(), json!(1));
    }
    if m.get("firstTimestamp").is_none_or(Value::is_null)
        && let Some(t) = &event_time
    {
        m.insert("firstTimestamp".into(), json!(to_seconds(t)));
    }
    if let Some(t) = series_last.or(event_time.clone()) {
        let stale = m.get("lastTimestamp").is_none_or(Value::is_null) || series_count.is_some();
        if stale {
            m.insert("lastTimestamp".into(), json!(to_seconds(&t)));
        }
    }
    if m.get("source").is_none_or(|s| s.get("component").is_none())
        && let Some(c) = m.get("reportingComponent").cloned()
    {
        let host = m.get("reportingInstance").cloned().unwrap_or(Value::Null);
        let mut src = json!({"component": c});
        if !host.is_null() {
            src["host"] = host;
        }
        m.insert("source".into(), src);
    }
}

fn to_seconds(t: &Value) -> String {
    let s = t.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_else(|_| s.to_string())
}

/// core/v1 → events.k8s.io/v1.
pub fn to_events_v1(core: &Value) -> Value {
    let mut ev = core.clone();
    let Some(m) = ev.as_object_mut() else {
        return ev;
    };
    for (to, from) in RENAMES {
        if let Some(v) = m.remove(*from) {
            m.insert((*to).to_string(), v);
        }
    }
    m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    m.insert("kind".into(), json!("Event"));
    if m.get("eventTime").is_none_or(Value::is_null)
        && let Some(t) = m.get("deprecatedFirstTimestamp").cloned()
    {
        m.insert("eventTime".into(), t);
    }
    if m.get("eventTime").is_none_or(Value::is_null) {
        m.insert("eventTime".into(), json!(crate::meta::now_micro()));
    }
    ev
}

/// Makes a core/v1 event complete on write, whatever view it came through.
pub fn normalize_core(mut ev: Value) -> Value {
    if let Some(m) = ev.as_object_mut() {
        fill_core_compat(m);
    }
    ev
}
