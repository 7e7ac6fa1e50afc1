//! Validation kube-apiserver applies to every object before any kind-specific rule: object
//! names, labels, annotations, finalizers and owner references (apimachinery's
//! `ValidateObjectMetaAccessor`), and the events.k8s.io/v1 Event rules (`ValidateEventCreate` /
//! `ValidateEventUpdate`). Messages and field paths are worded as the API server words them, so
//! a client that works here is refused for the same reason there.

use crate::registry::{Flavor, ResourceType};
use crate::status::ApiError;
use serde_json::Value;

/// One `field.Error`: (reason, field path, message after the path).
pub type Cause = (String, String, String);

const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Go's `%q` for the strings we print: a JSON string is close enough (same escapes for ASCII).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn invalid(path: &str, value: &str, msg: &str) -> Cause {
    (
        "FieldValueInvalid".into(),
        path.into(),
        format!("Invalid value: {}: {msg}", q(value)),
    )
}

fn required(path: &str, detail: &str) -> Cause {
    let msg = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    ("FieldValueRequired".into(), path.into(), msg)
}

fn too_long(path: &str, max: usize) -> Cause {
    (
        "FieldValueTooLong".into(),
        path.into(),
        format!("Too long: must have at most {max} bytes"),
    )
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = format!("{msg} (");
    if !examples.is_empty() {
        s.push_str("e.g. ");
        let quoted: Vec<String> = examples.iter().map(|e| format!("'{e}'")).collect();
        s.push_str(&quoted.join(",  or "));
        s.push_str(", ");
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn is_dns_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `IsDNS1123Label`: the messages for a value that is not one.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = vec![];
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !is_dns_label_shape(s) {
        errs.push(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// `IsDNS1123Subdomain`: the messages for a value that is not one.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = vec![];
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if s.is_empty() || !s.split('.').all(is_dns_label_shape) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter()
            .all(|c| is_alnum(*c) || matches!(c, b'-' | b'_' | b'.'))
}

/// `IsQualifiedName`: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 of `[A-Za-z0-9_.-]`
/// starting and ending alphanumeric.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = vec![];
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(regex_error(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            ) + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"],
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
pub fn label_value(v: &str) -> Vec<String> {
    let mut errs = vec![];
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !v.is_empty() && !is_qualified_name_part(v) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// How names of a kind are checked.
fn name_errors(rt: &ResourceType, name: &str) -> Vec<String> {
    match rt.flavor {
        Flavor::Namespace => dns1123_label(name),
        // core/v1 Events are only checked as path segments (events.k8s.io/v1 as subdomains).
        Flavor::CoreEvent => path_segment(name),
        _ => dns1123_subdomain(name),
    }
}

/// `ValidatePathSegmentName`.
fn path_segment(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    let mut errs = vec![];
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

fn labels_errors(labels: &serde_json::Map<String, Value>, path: &str, out: &mut Vec<Cause>) {
    for (k, v) in labels {
        for m in qualified_name(k) {
            out.push(invalid(path, k, &m));
        }
        let v = v.as_str().unwrap_or_default();
        for m in label_value(v) {
            out.push(invalid(path, v, &m));
        }
    }
}

fn annotations_errors(ann: &serde_json::Map<String, Value>, path: &str, out: &mut Vec<Cause>) {
    let mut total = 0usize;
    for (k, v) in ann {
        for m in qualified_name(&k.to_lowercase()) {
            out.push(invalid(path, k, &m));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or_default();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn finalizer_errors(fins: &[Value], path: &str, out: &mut Vec<Cause>, warnings: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    for f in fins {
        let f = f.as_str().unwrap_or_default();
        for m in qualified_name(f) {
            out.push(invalid(path, f, &m));
        }
        if !f.contains('/') && !is_standard_finalizer(f) {
            warnings.push(format!(
                "{path}: {}: prefer a domain-qualified finalizer name including a path (/) to avoid accidental conflicts with other finalizer writers",
                q(f)
            ));
        }
        if !seen.insert(f) {
            // The API server de-duplicates nothing and refuses nothing here; a repeat is legal.
        }
    }
}

/// The finalizers Kubernetes itself uses without a domain.
pub fn is_standard_finalizer(f: &str) -> bool {
    matches!(f, "kubernetes" | "orphan" | "foregroundDeletion")
}

fn owner_reference_errors(refs: &[Value], path: &str, out: &mut Vec<Cause>) {
    let mut first_controller: Option<String> = None;
    for r in refs {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let api_version = s("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            out.push(invalid(
                &format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for (field, v) in [("kind", s("kind")), ("name", s("name")), ("uid", s("uid"))] {
            if v.is_empty() {
                out.push(invalid(&format!("{path}.{field}"), v, "must not be empty"));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let this = format!("{}/{}", s("kind"), s("name"));
            match &first_controller {
                Some(first) => out.push((
                    "FieldValueInvalid".into(),
                    path.into(),
                    format!(
                        "Invalid value: {}: Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}",
                        Value::Array(refs.to_vec())
                    ),
                )),
                None => first_controller = Some(this),
            }
        }
    }
}

/// The metadata rules every object meets on create and update. Returns the causes of a 422 and
/// the warnings the API server would send.
pub fn object_meta(rt: &ResourceType, obj: &Value) -> (Vec<Cause>, Vec<String>) {
    let mut out = vec![];
    let mut warnings = vec![];
    let md = obj.get("metadata").and_then(Value::as_object);
    let Some(md) = md else {
        return (out, warnings);
    };
    let name = md.get("name").and_then(Value::as_str).unwrap_or_default();
    if !name.is_empty() {
        for m in name_errors(rt, name) {
            out.push(invalid("metadata.name", name, &m));
        }
    }
    if let Some(labels) = md.get("labels").and_then(Value::as_object) {
        labels_errors(labels, "metadata.labels", &mut out);
    }
    if let Some(ann) = md.get("annotations").and_then(Value::as_object) {
        annotations_errors(ann, "metadata.annotations", &mut out);
    }
    if let Some(fins) = md.get("finalizers").and_then(Value::as_array) {
        finalizer_errors(fins, "metadata.finalizers", &mut out, &mut warnings);
    }
    if let Some(refs) = md.get("ownerReferences").and_then(Value::as_array) {
        owner_reference_errors(refs, "metadata.ownerReferences", &mut out);
    }
    (out, warnings)
}

/// `object_meta` as an API error, plus the warnings.
pub fn check_object_meta(rt: &ResourceType, obj: &Value) -> Result<Vec<String>, ApiError> {
    let (causes, warnings) = object_meta(rt, obj);
    if causes.is_empty() {
        return Ok(warnings);
    }
    Err(ApiError::invalid(
        &rt.kind,
        &rt.group,
        crate::meta::name(obj),
        causes,
    ))
}

const NOTE_LENGTH_LIMIT: usize = 1024;
const REASON_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;

fn text<'a>(ev: &'a Value, key: &str) -> &'a str {
    ev.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn is_set(ev: &Value, key: &str) -> bool {
    ev.get(key).is_some_and(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Object(m) => !m.is_empty(),
        Value::Number(n) => n.as_i64() != Some(0),
        _ => true,
    })
}

/// `legacyValidateEvent` for an event in the events.k8s.io/v1 shape (the field paths name the
/// internal fields as the API server's messages do: `involvedObject`, `message`).
fn legacy_event(ev: &Value, out: &mut Vec<Cause>) {
    let ns = crate::meta::namespace(ev);
    let regarding_ns = ev
        .pointer("/regarding/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !is_set(ev, "eventTime") {
        let ok = if regarding_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == regarding_ns
        };
        if !ok {
            out.push(invalid(
                "involvedObject.namespace",
                regarding_ns,
                "does not match event.namespace",
            ));
        }
    } else {
        if regarding_ns.is_empty() && ns != "default" && ns != "kube-system" {
            out.push(invalid(
                "involvedObject.namespace",
                regarding_ns,
                "does not match event.namespace",
            ));
        }
        let controller = text(ev, "reportingController");
        if controller.is_empty() {
            out.push(required("reportingController", ""));
        }
        for m in qualified_name(controller) {
            out.push(invalid("reportingController", controller, &m));
        }
        let instance = text(ev, "reportingInstance");
        if instance.is_empty() {
            out.push(required("reportingInstance", ""));
        }
        if instance.len() > REPORTING_INSTANCE_LENGTH_LIMIT {
            out.push(invalid(
                "reportingInstance",
                "",
                &format!("can have at most {REPORTING_INSTANCE_LENGTH_LIMIT} characters"),
            ));
        }
        let action = text(ev, "action");
        if action.is_empty() {
            out.push(required("action", ""));
        }
        if action.len() > ACTION_LENGTH_LIMIT {
            out.push(invalid(
                "action",
                "",
                &format!("can have at most {ACTION_LENGTH_LIMIT} characters"),
            ));
        }
        let reason = text(ev, "reason");
        if reason.is_empty() {
            out.push(required("reason", ""));
        }
        if reason.len() > REASON_LENGTH_LIMIT {
            out.push(invalid(
                "reason",
                "",
                &format!("can have at most {REASON_LENGTH_LIMIT} characters"),
            ));
        }
        if text(ev, "note").len() > NOTE_LENGTH_LIMIT {
            out.push(invalid(
                "message",
                "",
                &format!("can have at most {NOTE_LENGTH_LIMIT} characters"),
            ));
        }
    }
    for m in dns1123_subdomain(ns) {
        out.push(invalid("namespace", ns, &m));
    }
}

fn event_series(ev: &Value, out: &mut Vec<Cause>) {
    let Some(series) = ev.get("series").filter(|s| !s.is_null()) else {
        return;
    };
    if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
        out.push(invalid("series.count", "", "should be at least 2"));
    }
    if !is_set(series, "lastObservedTime") {
        out.push(required("series.lastObservedTime", ""));
    }
}

/// `ValidateEventCreate` for a request to events.k8s.io/v1 (the event as the client sent it).
pub fn events_v1_create(ev: &Value) -> Vec<Cause> {
    let mut out = vec![];
    legacy_event(ev, &mut out);
    event_series(ev, &mut out);
    if !is_set(ev, "eventTime") {
        out.push(required("eventTime", ""));
    }
    let ty = text(ev, "type");
    if ty != "Normal" && ty != "Warning" {
        out.push(invalid("type", "", &format!("has invalid value: {ty}")));
    }
    for (field, name) in [
        ("deprecatedFirstTimestamp", "deprecatedFirstTimestamp"),
        ("deprecatedLastTimestamp", "deprecatedLastTimestamp"),
        ("deprecatedCount", "deprecatedCount"),
    ] {
        if is_set(ev, field) {
            out.push(invalid(name, "", "needs to be unset"));
        }
    }
    let src = ev.get("deprecatedSource");
    if src.is_some_and(|s| is_set(s, "component") || is_set(s, "host")) {
        out.push(invalid("deprecatedSource", "", "needs to be unset"));
    }
    out
}

/// `ValidateEventUpdate` for a request to events.k8s.io/v1: legacy rules, the series when it
/// changed, and the fields that may not change.
pub fn events_v1_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut out = vec![];
    legacy_event(new, &mut out);
    if new.get("series") != old.get("series") {
        event_series(new, &mut out);
    }
    for (field, path) in [
        ("regarding", "involvedObject"),
        ("reason", "reason"),
        ("type", "type"),
        ("action", "action"),
        ("reportingController", "reportingController"),
        ("reportingInstance", "reportingInstance"),
        ("eventTime", "eventTime"),
        ("related", "related"),
    ] {
        let (a, b) = (new.get(field), old.get(field));
        let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
        let same = if field == "eventTime" {
            same_time(a, b)
        } else {
            norm(a) == norm(b)
        };
        if !same {
            let shown = a.cloned().unwrap_or(Value::Null).to_string();
            out.push((
                "FieldValueInvalid".into(),
                path.into(),
                format!("Invalid value: {shown}: field is immutable"),
            ));
        }
    }
    out
}

fn same_time(a: Option<&Value>, b: Option<&Value>) -> bool {
    let parse = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.timestamp_micros())
    };
    parse(a) == parse(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn configmaps() -> std::sync::Arc<ResourceType> {
        Registry::with_builtins()
            .get("", "v1", "configmaps")
            .unwrap()
    }

    fn messages(obj: Value) -> Vec<String> {
        object_meta(&configmaps(), &obj)
            .0
            .into_iter()
            .map(|(_, f, m)| format!("{f}: {m}"))
            .collect()
    }

    #[test]
    fn label_keys_and_values() {
        assert!(
            messages(json!({"metadata": {"name": "a", "labels": {
            "app": "x", "example.com/tier": "", "a.b_c-d": "v_1.2-3"}}}))
            .is_empty()
        );
        let bad = messages(json!({"metadata": {"name": "a", "labels": {"-app": "ok"}}}));
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(
            bad[0].starts_with("metadata.labels: Invalid value: \"-app\": name part must consist of alphanumeric characters"),
            "{bad:?}"
        );
        let long = "x".repeat(64);
        let bad = messages(json!({"metadata": {"name": "a", "labels": {"k": long}}}));
        assert!(
            bad[0].ends_with("must be no more than 63 characters"),
            "{bad:?}"
        );
        let bad = messages(json!({"metadata": {"name": "a", "labels": {"Example.com/x": "a b"}}}));
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].contains("prefix part a lowercase RFC 1123 subdomain"),
            "{bad:?}"
        );
        assert!(
            bad[1].contains("a valid label must be an empty string"),
            "{bad:?}"
        );
        let bad = messages(json!({"metadata": {"name": "a", "labels": {"a/b/c": "x", "/x": "y"}}}));
        assert!(
            bad.iter()
                .any(|m| m.contains("prefix part must be non-empty")),
            "{bad:?}"
        );
        assert!(
            bad.iter()
                .any(|m| m.contains("with an optional DNS subdomain prefix")),
            "{bad:?}"
        );
    }

    #[test]
    fn annotations_size_and_keys() {
        let big = "x".repeat(256 * 1024);
        let bad = messages(json!({"metadata": {"name": "a", "annotations": {"k": big}}}));
        assert_eq!(
            bad,
            ["metadata.annotations: Too long: must have at most 262144 bytes"]
        );
        let bad = messages(json!({"metadata": {"name": "a", "annotations": {"bad key": "v"}}}));
        assert_eq!(bad.len(), 1, "{bad:?}");
        // Upper case is fine in annotation keys (they are lower-cased before the check).
        assert!(
            messages(json!({"metadata": {"name": "a", "annotations": {"Example.COM/Key": "v"}}}))
                .is_empty()
        );
    }

    #[test]
    fn names_finalizers_and_owner_references() {
        let bad = messages(json!({"metadata": {"name": "Upper"}}));
        assert!(
            bad[0].starts_with(
                "metadata.name: Invalid value: \"Upper\": a lowercase RFC 1123 subdomain"
            ),
            "{bad:?}"
        );
        let (bad, warnings) = object_meta(
            &configmaps(),
            &json!({"metadata": {"name": "a", "finalizers": ["tend.dev/cleanup", "plain", "bad finalizer", "kubernetes"]}}),
        );
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].1, "metadata.finalizers");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let bad = messages(json!({"metadata": {"name": "a", "ownerReferences": [
            {"apiVersion": "", "kind": "", "name": "", "uid": ""},
        ]}}));
        assert_eq!(
            bad,
            [
                "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            ]
        );
        let two = messages(json!({"metadata": {"name": "a", "ownerReferences": [
            {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true},
        ]}}));
        assert_eq!(two.len(), 1);
        assert!(two[0].contains("Only one reference can have Controller set to true. Found \"true\" in references for A/a and B/b"), "{two:?}");
    }

    fn event() -> Value {
        json!({
            "metadata": {"name": "e1", "namespace": "shop"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "tend.dev/controller",
            "reportingInstance": "tend-0",
            "action": "Reconcile",
            "reason": "Ready",
            "note": "ok",
            "type": "Normal",
            "regarding": {"kind": "Widget", "namespace": "shop", "name": "w"}
        })
    }

    #[test]
    fn event_create_rules() {
        assert!(events_v1_create(&event()).is_empty());
        let mut e = event();
        e["note"] = json!("n".repeat(1025));
        e["reason"] = json!("r".repeat(129));
        e["type"] = json!("Info");
        e.as_object_mut().unwrap().remove("eventTime");
        let causes: Vec<String> = events_v1_create(&e)
            .into_iter()
            .map(|(_, f, m)| format!("{f}: {m}"))
            .collect();
        assert!(
            causes.contains(&"eventTime: Required value".to_string()),
            "{causes:?}"
        );
        assert!(
            causes.contains(&"type: Invalid value: \"\": has invalid value: Info".to_string()),
            "{causes:?}"
        );
        // Without an eventTime the event is held to the legacy rules only.
        let mut e = event();
        e["note"] = json!("n".repeat(1025));
        e["reason"] = json!("r".repeat(129));
        e["action"] = json!("");
        let causes: Vec<String> = events_v1_create(&e)
            .into_iter()
            .map(|(_, f, m)| format!("{f}: {m}"))
            .collect();
        assert_eq!(
            causes,
            [
                "action: Required value",
                "reason: Invalid value: \"\": can have at most 128 characters",
                "message: Invalid value: \"\": can have at most 1024 characters",
            ]
        );
        let mut e = event();
        e["regarding"] = json!({"kind": "Widget", "name": "w"});
        assert_eq!(events_v1_create(&e)[0].1, "involvedObject.namespace");
        let mut e = event();
        e["reportingController"] = json!("");
        e["reportingInstance"] = json!("");
        let causes: Vec<String> = events_v1_create(&e)
            .into_iter()
            .map(|(_, f, m)| format!("{f}: {m}"))
            .collect();
        // As the API server: required, and also not a qualified name.
        assert_eq!(causes.len(), 4, "{causes:?}");
        assert_eq!(causes[0], "reportingController: Required value");
        assert_eq!(
            causes[1],
            "reportingController: Invalid value: \"\": name part must be non-empty"
        );
        assert_eq!(causes[3], "reportingInstance: Required value");
    }

    #[test]
    fn event_update_rules() {
        let old = event();
        let mut new = old.clone();
        new["series"] = json!({"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"});
        assert!(events_v1_update(&new, &old).is_empty());
        new["series"] = json!({"count": 1});
        assert_eq!(events_v1_update(&new, &old).len(), 2);
        let mut new = old.clone();
        new["reason"] = json!("Other");
        let c = events_v1_update(&new, &old);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].2, "Invalid value: \"Other\": field is immutable");
    }
}
