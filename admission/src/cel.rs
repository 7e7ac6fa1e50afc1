//! `x-kubernetes-validations`: evaluating the CEL rules compiled by kube-cel against an object,
//! and, on update, against the old object for transition rules (`oldSelf`).
//!
//! The walk is ours rather than kube-cel's because the apiserver's notion of "the old value of
//! this node" matters: object fields correlate by name, list-map entries by their keys, and
//! entries of sets and atomic lists have no old value at all (so transition rules under them do
//! not run). Values are handed to CEL typed by the schema, as the apiserver does: `number` as
//! double, `date-time`/`date` as timestamps, `duration` as durations, `byte` as bytes, and only
//! declared fields visible under their escaped names.

use crate::cause::{Cause, CauseReason, path};
use crate::formats;
use crate::lists;
use crate::node::{Additional, Node, Rule};
use base64::Engine;
use kube_cel::KubeCelExt;
use kube_cel::cel::objects::{Key, Map as CelMap, OptionalValue};
use kube_cel::cel::{Context, ExecutionError, Value as CelValue};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

thread_local! {
    /// Registering every Kubernetes CEL library takes a while; do it once per thread.
    static BASE_CONTEXT: Context<'static> = Context::default().with_all();
}

/// Evaluates every rule in the tree under `node` against `value` (and `old` on update).
pub(crate) fn evaluate(value: &Value, old: Option<&Value>, node: &Node, out: &mut Vec<Cause>) {
    BASE_CONTEXT.with(|base| walk(value, old, node, "", true, base, out));
}

fn walk(
    value: &Value,
    old: Option<&Value>,
    node: &Node,
    at: &str,
    is_root: bool,
    base: &Context,
    out: &mut Vec<Cause>,
) {
    if value.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !node.rules.is_empty() {
        let this = to_cel(value, node, is_root);
        let that = old.map(|o| to_cel(o, node, is_root));
        for rule in &node.rules {
            run_rule(rule, &this, that.as_ref(), node, at, base, out);
        }
    }
    match value {
        Value::Object(obj) => {
            let old_obj = old.and_then(Value::as_object);
            for (key, child) in obj {
                let (schema, child_at) = if let Some(schema) = node.properties.get(key) {
                    (schema, path::child(at, key))
                } else if let Additional::Schema(schema) = &node.additional {
                    (schema.as_ref(), path::key(at, key))
                } else {
                    continue;
                };
                if is_root && key == "metadata" {
                    continue;
                }
                let old_child = old_obj.and_then(|o| o.get(key));
                walk(child, old_child, schema, &child_at, false, base, out);
            }
        }
        Value::Array(list) => {
            if let Some(items) = &node.items {
                let old_list = old.and_then(Value::as_array);
                for (i, item) in list.iter().enumerate() {
                    let old_item = old_list.and_then(|l| lists::counterpart(item, l, node));
                    walk(item, old_item, items, &path::index(at, i), false, base, out);
                }
            }
        }
        _ => {}
    }
}

fn run_rule(
    rule: &Rule,
    this: &CelValue,
    old: Option<&CelValue>,
    node: &Node,
    at: &str,
    base: &Context,
    out: &mut Vec<Cause>,
) {
    let compiled = &rule.compiled;
    let optional_old_self = compiled.rule.optional_old_self == Some(true);
    if compiled.is_transition_rule && old.is_none() && !optional_old_self {
        return;
    }
    let mut scope = base.new_inner_scope();
    scope.add_variable_from_value("self", this.clone());
    if optional_old_self {
        let wrapped = match old {
            Some(o) => OptionalValue::of(o.clone()),
            None => OptionalValue::none(),
        };
        scope.add_variable_from_value("oldSelf", CelValue::Opaque(Arc::new(wrapped)));
    } else if let Some(o) = old {
        scope.add_variable_from_value("oldSelf", o.clone());
    }

    let source = compiled.rule.rule.trim();
    let type_label = Value::String(node.type_label().to_string());
    let invalid_here = |detail: String| {
        Cause::new(
            CauseReason::FieldValueInvalid,
            at,
            Some(&type_label),
            &detail,
        )
    };
    match compiled.program.execute(&scope) {
        Ok(CelValue::Bool(true)) => {}
        Ok(CelValue::Bool(false)) => {
            let message = failure_message(rule, &scope);
            let field = match compiled.rule.field_path.as_deref() {
                Some(relative) if !relative.is_empty() => join_field_path(at, relative),
                _ => at.to_string(),
            };
            out.push(cause_for_reason(compiled.rule.reason.as_deref(), &field, &type_label, &message));
        }
        Ok(other) => out.push(invalid_here(format!(
            "rule evaluated to {:?} instead of a boolean: {source}",
            other.type_of()
        ))),
        // Fail closed: a rule this build cannot evaluate rejects the object rather than
        // letting it through unchecked.
        Err(ExecutionError::UndeclaredReference(name)) => out.push(invalid_here(format!(
            "rule cannot be evaluated by this validator (it references '{name}', an unsupported CEL \
             function, macro or variable), so the object is refused: {source}"
        ))),
        Err(e) => out.push(invalid_here(format!("{} evaluating rule: {source}", lower_first(&e.to_string())))),
    }
}

/// CEL errors read as part of a sentence in kube (`no such key: x evaluating rule: ...`).
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The message for a failed rule: `messageExpression` when it yields a usable string, else
/// `message`, else `failed rule: <rule>`.
fn failure_message(rule: &Rule, scope: &Context) -> String {
    let compiled = &rule.compiled;
    if let Some(program) = &compiled.message_program
        && let Ok(CelValue::String(s)) = program.execute(scope)
        && !s.trim().is_empty()
        && !s.contains(['\n', '\r'])
    {
        return s.to_string();
    }
    match compiled.rule.message.as_deref() {
        Some(m) if !m.trim().is_empty() => m.to_string(),
        _ => format!("failed rule: {}", compiled.rule.rule.trim()),
    }
}

/// Maps a rule's `reason` to the field error the apiserver builds for it.
fn cause_for_reason(reason: Option<&str>, field: &str, type_label: &Value, message: &str) -> Cause {
    match reason {
        Some("FieldValueForbidden") => {
            Cause::bare(CauseReason::FieldValueForbidden, field, message)
        }
        Some("FieldValueRequired") => Cause::bare(CauseReason::FieldValueRequired, field, message),
        Some("FieldValueDuplicate") => Cause::new(
            CauseReason::FieldValueDuplicate,
            field,
            Some(type_label),
            "",
        ),
        _ => Cause::new(
            CauseReason::FieldValueInvalid,
            field,
            Some(type_label),
            message,
        ),
    }
}

/// Appends a rule's `fieldPath` (`.spec.replicas`, `.labels['app']`, `['a.b']`) to the node path.
fn join_field_path(at: &str, relative: &str) -> String {
    let mut out = at.to_string();
    let mut rest = relative.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            out = path::child(&out, &after[..end]);
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let Some(end) = after.find("']") else { break };
            out = path::child(&out, &after[..end]);
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else { break };
            out = format!("{out}[{}]", &after[..end]);
            rest = &after[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out = path::child(&out, &rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

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
