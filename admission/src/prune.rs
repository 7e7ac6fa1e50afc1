//! The mutating half of admission: pruning unknown fields and applying `default`s, in the order
//! the apiserver applies them when it decodes a custom resource (prune, then default, then drop
//! nulls the schema does not allow and has no default for).

use crate::cause::path;
use crate::node::{Additional, Node};
use serde_json::{Map, Value};

/// Removes fields the schema does not declare, recording each removed path in `pruned`.
/// `apiVersion`, `kind` and `metadata` survive at the root and in embedded resources.
pub(crate) fn prune(
    value: &mut Value,
    node: &Node,
    at: &str,
    is_root: bool,
    pruned: &mut Vec<String>,
) {
    match value {
        Value::Object(obj) => prune_object(obj, node, at, is_root, pruned),
        Value::Array(list) => {
            if let Some(items) = &node.items {
                for (i, item) in list.iter_mut().enumerate() {
                    prune(item, items, &path::index(at, i), false, pruned);
                }
            }
        }
        _ => {}
    }
}

fn prune_object(
    obj: &mut Map<String, Value>,
    node: &Node,
    at: &str,
    is_root: bool,
    pruned: &mut Vec<String>,
) {
    let keeps_type_meta = is_root || node.embedded;
    let mut unknown = Vec::new();
    for (key, child) in obj.iter_mut() {
        if let Some(schema) = node.properties.get(key) {
            if !(is_root && key == "metadata") {
                prune(child, schema, &path::child(at, key), false, pruned);
            }
            continue;
        }
        match &node.additional {
            Additional::Schema(schema) => prune(child, schema, &path::key(at, key), false, pruned),
            Additional::Any => {}
            Additional::None => {
                let kept_type_meta =
                    keeps_type_meta && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
                if !(node.preserve_unknown || kept_type_meta) {
                    unknown.push(key.clone());
                }
            }
        }
    }
    for key in unknown {
        obj.remove(&key);
        pruned.push(path::child(at, &key));
    }
}

/// Applies `default`s top-down: a default fills an absent field (or a null one the schema does not
/// allow to be null), and the walk then continues into the filled value, so defaults nested inside
/// defaults and inside existing objects are applied too.
pub(crate) fn apply_defaults(value: &mut Value, node: &Node) {
    match value {
        Value::Object(obj) => {
            for (key, schema) in &node.properties {
                let Some(default) = &schema.default else {
                    continue;
                };
                match obj.get(key) {
                    None => {
                        obj.insert(key.clone(), default.clone());
                    }
                    Some(Value::Null) if !schema.nullable => {
                        obj.insert(key.clone(), default.clone());
                    }
                    Some(_) => {}
                }
            }
            for (key, child) in obj.iter_mut() {
                if let Some(schema) = node.properties.get(key) {
                    apply_defaults(child, schema);
                } else if let Additional::Schema(schema) = &node.additional {
                    fill_null(child, schema);
                    apply_defaults(child, schema);
                }
            }
        }
        Value::Array(list) => {
            if let Some(items) = &node.items {
                for item in list.iter_mut() {
                    fill_null(item, items);
                    apply_defaults(item, items);
                }
            }
        }
        _ => {}
    }
}

fn fill_null(value: &mut Value, node: &Node) {
    if value.is_null()
        && !node.nullable
        && let Some(default) = &node.default
    {
        *value = default.clone();
    }
}

/// Drops object fields that are null although their schema is not nullable and has no default:
/// the apiserver treats such a null as "not set" rather than as a type error.
pub(crate) fn drop_disallowed_nulls(value: &mut Value, node: &Node) {
    match value {
        Value::Object(obj) => {
            obj.retain(|key, child| match node.child(key) {
                Some(schema) => !(child.is_null() && !schema.nullable && schema.default.is_none()),
                None => true,
            });
            for (key, child) in obj.iter_mut() {
                if let Some(schema) = node.child(key) {
                    drop_disallowed_nulls(child, schema);
                }
            }
        }
        Value::Array(list) => {
            if let Some(items) = &node.items {
                for item in list.iter_mut() {
                    drop_disallowed_nulls(item, items);
                }
            }
        }
        _ => {}
    }
}
