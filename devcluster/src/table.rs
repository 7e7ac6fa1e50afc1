//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for: built-in columns for the
//! built-in kinds, `additionalPrinterColumns` for custom resources.

use crate::jsonpath;
use crate::registry::{Flavor, PrinterColumn, ResourceType};
use serde_json::{Value, json};

fn col(name: &str, type_: &str, format: &str, path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: format.into(),
        description: String::new(),
        json_path: path.into(),
        priority: 0,
    }
}

fn columns(rt: &ResourceType) -> Vec<PrinterColumn> {
    let age = col("Age", "date", "", ".metadata.creationTimestamp");
    match rt.flavor {
        Flavor::Namespace => vec![col("Status", "string", "", ".status.phase"), age],
        Flavor::Secret => vec![
            col("Type", "string", "", ".type"),
            col("Data", "integer", "", "#data"),
            age,
        ],
        Flavor::ConfigMap => vec![col("Data", "integer", "", "#data"), age],
        Flavor::Lease => vec![col("Holder", "string", "", ".spec.holderIdentity"), age],
        Flavor::Crd => vec![col(
            "Created At",
            "date",
            "date-time",
            ".metadata.creationTimestamp",
        )],
        Flavor::CoreEvent | Flavor::EventsV1 => vec![
            col("Last Seen", "string", "", "#lastSeen"),
            col("Type", "string", "", ".type"),
            col("Reason", "string", "", ".reason"),
            col("Object", "string", "", "#object"),
            col("Message", "string", "", ".message"),
        ],
        Flavor::Custom if rt.printer_columns.is_empty() => vec![age],
        Flavor::Custom => rt.printer_columns.clone(),
    }
}

/// Kubernetes' short human form of a duration: `45s`, `3m12s`, `5h`, `2d3h`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s % 60 == 0 => format!("{m}m"),
        _ if m < 10 => format!("{m}m{}s", s % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 == 0 => format!("{h}h"),
        _ if h < 8 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 == 0 => format!("{d}d"),
        _ if h < 192 => format!("{d}d{}h", h % 24),
        _ if d < 730 => format!("{d}d"),
        _ => format!("{}y", d / 365),
    }
}

fn age_of(ts: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some(human_duration(
        (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds(),
    ))
}

fn cell(obj: &Value, c: &PrinterColumn) -> Value {
    match c.json_path.as_str() {
        "#data" => {
            let n = ["data", "binaryData", "stringData"]
                .iter()
                .filter_map(|k| obj.get(*k).and_then(Value::as_object))
                .map(|m| m.len())
                .sum::<usize>();
            return json!(n);
        }
        "#object" => {
            let kind = obj
                .pointer("/involvedObject/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = obj
                .pointer("/involvedObject/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return json!(format!("{}/{name}", kind.to_lowercase()));
        }
        "#lastSeen" => {
            let ts = [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| obj.pointer(p).and_then(Value::as_str));
            return ts
                .and_then(age_of)
                .map(Value::String)
                .unwrap_or(Value::Null);
        }
        _ => {}
    }
    let found = jsonpath::select(obj, &c.json_path);
    if found.is_empty() {
        return Value::Null;
    }
    if c.type_ == "date" && c.format != "date-time" {
        return found[0]
            .as_str()
            .and_then(age_of)
            .map(Value::String)
            .unwrap_or(Value::Null);
    }
    if found.len() == 1 {
        return found[0].clone();
    }
    let texts: Vec<String> = found
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    json!(texts.join(","))
}

/// A Table of `objects`. `include` is `includeObject`: "None", "Metadata" or "Object".
pub fn table(rt: &ResourceType, objects: &[Value], include: &str, list_meta: Value) -> Value {
    let cols = columns(rt);
    // Events list by time and object; their name is an internal detail (`-o wide` shows it).
    let name_priority = if matches!(rt.flavor, Flavor::CoreEvent | Flavor::EventsV1) {
        1
    } else {
        0
    };
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": name_priority,
        "description": "Name must be unique within a namespace."
    })];
    for c in &cols {
        defs.push(json!({
            "name": c.name, "type": c.type_, "format": c.format,
            "description": c.description, "priority": c.priority
        }));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            cells.extend(cols.iter().map(|c| cell(o, c)));
            let mut row = json!({"cells": cells});
            match include {
                "None" => {}
                "Metadata" => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or_default(),
                    })
                }
                _ => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}
