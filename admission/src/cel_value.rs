//! Turning JSON into the CEL values a rule sees, typed by the schema as the apiserver types them:
//! `number` as double, `date-time`/`date` as timestamps, `duration` as durations, `byte` as
//! bytes; only declared fields are visible, under Kubernetes' escaped names; map keys are data
//! and stay as they are; of `metadata`, only `name` and `generateName` are visible.

use crate::formats;
use crate::node::{Additional, Node};
use base64::Engine;
use kube_cel::cel::Value as CelValue;
use kube_cel::cel::objects::{Key, Map as CelMap};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Converts a JSON value to the CEL value the apiserver would bind for this schema node.
pub(crate) fn to_cel(value: &Value, node: &Node, is_root: bool) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            if node.type_name.as_deref() == Some("number") || n.is_f64() {
                CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
            } else if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else {
                CelValue::UInt(n.as_u64().unwrap_or(u64::MAX))
            }
        }
        Value::String(s) => string_to_cel(s, node),
        Value::Array(list) => {
            let items = list
                .iter()
                .map(|item| match &node.items {
                    Some(items) => to_cel(item, items, false),
                    None => untyped_to_cel(item),
                })
                .collect();
            CelValue::List(Arc::new(items))
        }
        Value::Object(obj) => {
            let mut map: HashMap<Key, CelValue> = HashMap::with_capacity(obj.len());
            let is_map = node.is_map();
            for (key, child) in obj {
                if (is_root || node.embedded) && key == "metadata" {
                    map.insert(key_of("metadata"), visible_metadata(child));
                    continue;
                }
                let converted = if let Some(schema) = node.properties.get(key) {
                    to_cel(child, schema, false)
                } else if let Additional::Schema(schema) = &node.additional {
                    to_cel(child, schema, false)
                } else if is_map
                    || node.preserve_unknown
                    || ((is_root || node.embedded) && matches!(key.as_str(), "apiVersion" | "kind"))
                {
                    untyped_to_cel(child)
                } else {
                    continue;
                };
                let name = if is_map && !node.properties.contains_key(key) {
                    Some(key.clone())
                } else {
                    escape(key)
                };
                if let Some(name) = name {
                    map.insert(key_of(&name), converted);
                }
            }
            CelValue::Map(CelMap { map: Arc::new(map) })
        }
    }
}

fn string_to_cel(s: &str, node: &Node) -> CelValue {
    let as_string = || CelValue::String(Arc::new(s.to_string()));
    match node.format.as_deref() {
        _ if node.int_or_string => as_string(),
        Some("date-time") => formats::parse_date_time(s)
            .map(CelValue::Timestamp)
            .unwrap_or_else(as_string),
        Some("date") => formats::parse_date(s)
            .map(CelValue::Timestamp)
            .unwrap_or_else(as_string),
        Some("duration") => formats::parse_duration(s)
            .map(CelValue::Duration)
            .unwrap_or_else(as_string),
        Some("byte") => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(|bytes| CelValue::Bytes(Arc::new(bytes)))
            .unwrap_or_else(|_| as_string()),
        _ => as_string(),
    }
}

/// Values without a schema (under `x-kubernetes-preserve-unknown-fields`) keep their JSON shape.
fn untyped_to_cel(value: &Value) -> CelValue {
    match value {
        Value::Object(obj) => {
            let map = obj
                .iter()
                .filter_map(|(k, v)| Some((key_of(&escape(k)?), untyped_to_cel(v))))
                .collect();
            CelValue::Map(CelMap { map: Arc::new(map) })
        }
        Value::Array(list) => CelValue::List(Arc::new(list.iter().map(untyped_to_cel).collect())),
        Value::Number(n) if !n.is_f64() => n
            .as_i64()
            .map(CelValue::Int)
            .unwrap_or(CelValue::UInt(n.as_u64().unwrap_or(0))),
        Value::Number(n) => CelValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Null => CelValue::Null,
    }
}

/// Rules see only `metadata.name` and `metadata.generateName` of a resource.
fn visible_metadata(metadata: &Value) -> CelValue {
    let mut map = HashMap::new();
    for field in ["name", "generateName"] {
        if let Some(Value::String(s)) = metadata.get(field) {
            map.insert(key_of(field), CelValue::String(Arc::new(s.clone())));
        }
    }
    CelValue::Map(CelMap { map: Arc::new(map) })
}

fn key_of(name: &str) -> Key {
    Key::String(Arc::new(name.to_string()))
}

const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Kubernetes' escaping of property names into CEL identifiers: reserved words become
/// `__word__`; `__`, `.`, `-`, `/` become `__underscores__`, `__dot__`, `__dash__`, `__slash__`.
/// Names that cannot be escaped are not visible to rules.
pub(crate) fn escape(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let first_ok =
        name.starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '_' | '.' | '-' | '/'));
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}
