//! Patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch
//! (applied as a merge patch after dropping its `$` directives, since devcluster knows no
//! per-field strategies of built-in kinds), and server-side apply (see [`crate::ssa`] for field
//! ownership, conflicts and list merging).

use crate::status::{ApiError, ApiResult};
use serde_json::{Map, Value};

pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Removes strategic-merge-patch directives (`$patch`, `$retainKeys`, `$setElementOrder/…`,
/// `$deleteFromPrimitiveList/…`) so the rest can be applied as a merge patch.
pub fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> ApiResult<(String, String)> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer {path:?}")))?;
    Ok((path[..idx].to_string(), unescape(&path[idx + 1..])))
}

fn add_at(doc: &mut Value, path: &str, value: Value) -> ApiResult<()> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let p = doc.pointer_mut(&parent).ok_or_else(|| {
        ApiError::new(
            422,
            "Invalid",
            format!("add operation does not apply: doc is missing path: {path:?}"),
        )
    })?;
    match p {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid index in {path:?}")))?;
                if i > a.len() {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!("index out of range in {path:?}"),
                    ));
                }
                a.insert(i, value);
            }
        }
        _ => {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("cannot add at {path:?}"),
            ));
        }
    }
    Ok(())
}

fn remove_at(doc: &mut Value, path: &str) -> ApiResult<Value> {
    let (parent, last) = split_pointer(path)?;
    let missing = || {
        ApiError::new(
            422,
            "Invalid",
            format!("remove operation does not apply: doc is missing path: {path:?}"),
        )
    };
    match doc.pointer_mut(&parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing())
            }
        }
        _ => Err(missing()),
    }
}

pub fn json_patch(doc: &mut Value, ops: &Value) -> ApiResult<()> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        let from = op.get("from").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "add" => add_at(doc, path, value)?,
            "remove" => {
                remove_at(doc, path)?;
            }
            "replace" => {
                remove_at(doc, path)?;
                add_at(doc, path, value)?;
            }
            "move" => {
                let v = remove_at(doc, from)?;
                add_at(doc, path, v)?;
            }
            "copy" => {
                let v = doc.pointer(from).cloned().ok_or_else(|| {
                    ApiError::new(422, "Invalid", format!("copy from missing path {from:?}"))
                })?;
                add_at(doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value) {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!("testing value {path:?} failed"),
                    ));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown JSON patch operation {other:?}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_ops() {
        let mut d = json!({"a": [1, 2], "b": {"c": 1}});
        let ops = json!([
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "replace", "path": "/b/c", "value": 2},
            {"op": "remove", "path": "/a/0"},
            {"op": "test", "path": "/b/c", "value": 2},
            {"op": "copy", "from": "/b", "path": "/d"}
        ]);
        json_patch(&mut d, &ops).unwrap();
        assert_eq!(d, json!({"a": [2, 3], "b": {"c": 2}, "d": {"c": 2}}));
    }
}
