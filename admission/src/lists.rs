//! `x-kubernetes-list-type` invariants: a `set` holds no element twice, a `map` holds no two
//! entries with the same `x-kubernetes-list-map-keys` values. Reported after all schema errors,
//! as the apiserver's separate list-type pass does.

use crate::cause::{Cause, CauseReason, path};
use crate::node::{ListType, Node};
use serde_json::{Map, Value};

pub(crate) fn check(list: &[Value], node: &Node, at: &str, out: &mut Vec<Cause>) {
    match &node.list_type {
        Some(ListType::Set) => {
            for (i, item) in list.iter().enumerate() {
                if list[..i].contains(item) {
                    out.push(Cause::new(
                        CauseReason::FieldValueDuplicate,
                        &path::index(at, i),
                        Some(item),
                        "",
                    ));
                }
            }
        }
        Some(ListType::Map(keys)) => {
            let mut seen: Vec<Map<String, Value>> = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                let Some(entry) = item.as_object() else {
                    let detail = "must be an object for an array of list-type map";
                    out.push(Cause::new(
                        CauseReason::FieldValueInvalid,
                        &path::index(at, i),
                        Some(item),
                        detail,
                    ));
                    continue;
                };
                let identity = map_key(entry, keys, node);
                if seen.contains(&identity) {
                    let shown = Value::Object(identity);
                    out.push(Cause::new(
                        CauseReason::FieldValueDuplicate,
                        &path::index(at, i),
                        Some(&shown),
                        "",
                    ));
                } else {
                    seen.push(identity);
                }
            }
        }
        Some(ListType::Atomic) | None => {}
    }
}

/// The entry's identity: its key fields, with a key's schema default standing in for an absent
/// key (defaults have been applied already, so this only matters for nested lists in defaults).
fn map_key(entry: &Map<String, Value>, keys: &[String], node: &Node) -> Map<String, Value> {
    let item_schema = node.items.as_deref();
    keys.iter()
        .filter_map(|k| {
            let value = entry.get(k).cloned().or_else(|| {
                item_schema
                    .and_then(|s| s.properties.get(k))
                    .and_then(|s| s.default.clone())
            })?;
            Some((k.clone(), value))
        })
        .collect()
}

/// The old entry a new list-map entry corresponds to, for transition rules: the one with the same
/// key values. Entries of sets and atomic lists have no counterpart.
pub(crate) fn counterpart<'a>(
    item: &Value,
    old_list: &'a [Value],
    node: &Node,
) -> Option<&'a Value> {
    let Some(ListType::Map(keys)) = &node.list_type else {
        return None;
    };
    let identity = map_key(item.as_object()?, keys, node);
    old_list.iter().find(|old| {
        old.as_object()
            .is_some_and(|o| map_key(o, keys, node) == identity)
    })
}
