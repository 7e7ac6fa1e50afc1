//! Structural validation: the OpenAPI v3 checks kube-apiserver runs on a custom resource before
//! any CEL rule, worded as its go-openapi validator words them and mapped to field errors the way
//! the apiextensions validation maps them.

use crate::cause::{Cause, CauseReason, go_float, go_quote, path};
use crate::formats;
use crate::node::{Additional, Node};
use serde_json::{Map, Number, Value};

/// Where the structural pass puts what it finds. The apiserver runs three passes (schema,
/// embedded-resource metadata, list-type invariants) and concatenates their errors in that
/// order; keeping three buckets reproduces the order from one walk.
#[derive(Default)]
pub(crate) struct Findings {
    pub schema: Vec<Cause>,
    pub embedded: Vec<Cause>,
    pub lists: Vec<Cause>,
}

impl Findings {
    pub(crate) fn into_causes(self) -> Vec<Cause> {
        let mut all = self.schema;
        all.extend(self.embedded);
        all.extend(self.lists);
        all
    }
}

/// Validates the whole object (against `old` on update, for ratcheting). At the root, `metadata`
/// is only required to be an object: the apiserver validates object metadata itself, not through
/// the CRD schema.
pub(crate) fn validate_root(value: &Value, old: Option<&Value>, node: &Node, found: &mut Findings) {
    if let Some(obj) = value.as_object()
        && let Some(metadata) = obj.get("metadata")
        && !metadata.is_object()
    {
        found
            .schema
            .push(type_error("metadata", metadata, "object"));
    }
    validate(value, old, node, "", true, found);
}

/// Validates `value` and everything under it. On update, `old` is the value the stored object
/// has at the same place (by field name, map key, or list-map key). Validation ratcheting, as in
/// the apiserver: schema errors inside a value equal to its old value were already there, so
/// they are dropped; embedded-resource and list-type errors are never ratcheted.
pub(crate) fn validate(
    value: &Value,
    old: Option<&Value>,
    node: &Node,
    at: &str,
    is_root: bool,
    found: &mut Findings,
) {
    if old == Some(value) {
        let mut unchanged = Findings::default();
        validate_value(value, None, node, at, is_root, &mut unchanged);
        found.embedded.extend(unchanged.embedded);
        found.lists.extend(unchanged.lists);
    } else {
        validate_value(value, old, node, at, is_root, found);
    }
}

fn validate_value(
    value: &Value,
    old: Option<&Value>,
    node: &Node,
    at: &str,
    is_root: bool,
    found: &mut Findings,
) {
    if value.is_null() && (node.nullable || (node.type_name.is_none() && !node.int_or_string)) {
        // A null passes the type check but, as in the apiserver, not an enum that lacks it.
        check_enum(value, node, at, found);
        return;
    }
    if !type_matches(value, node) {
        let expected = if node.int_or_string {
            "integer,string"
        } else {
            node.type_label()
        };
        found.schema.push(type_error(at, value, expected));
        return;
    }
    crate::composition::validate(value, node, at, found);
    match value {
        Value::String(s) => validate_string(s, value, node, at, found),
        Value::Number(n) => validate_number(n, value, node, at, found),
        Value::Array(list) => validate_array(list, old.and_then(Value::as_array), node, at, found),
        Value::Object(obj) => validate_object(
            obj,
            old.and_then(Value::as_object),
            node,
            at,
            is_root,
            found,
        ),
        Value::Bool(_) | Value::Null => {}
    }
    check_enum(value, node, at, found);
}

fn check_enum(value: &Value, node: &Node, at: &str, found: &mut Findings) {
    if let Some(allowed) = &node.enum_values
        && !allowed.iter().any(|a| same_value(a, value))
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|v| {
                go_quote(
                    &v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect();
        let detail = format!("supported values: {}", supported.join(", "));
        found.schema.push(Cause::new(
            CauseReason::FieldValueNotSupported,
            at,
            Some(value),
            &detail,
        ));
    }
}

/// Equality for `enum`: numbers compare by value (`1` equals `1.0`), as go-openapi converts the
/// enum entry to the value's type before comparing.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integral(value: &Value) -> bool {
    match value {
        Value::Number(n) => !n.is_f64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn type_matches(value: &Value, node: &Node) -> bool {
    if node.int_or_string {
        return value.is_string() || is_integral(value);
    }
    match node.type_name.as_deref() {
        None => true,
        Some("integer") => is_integral(value),
        Some("number") => value.is_number(),
        Some(expected) => json_type(value) == expected,
    }
}

/// `spec.x in body must be of type integer: "string"`, reported against the value's JSON type.
fn type_error(at: &str, value: &Value, expected: &str) -> Cause {
    let actual = json_type(value);
    let detail = format!(
        "{at} in body must be of type {expected}: {}",
        go_quote(actual)
    );
    Cause::new(
        CauseReason::FieldValueTypeInvalid,
        at,
        Some(&Value::String(actual.to_string())),
        &detail,
    )
}

fn invalid(at: &str, value: &Value, detail: String) -> Cause {
    Cause::new(CauseReason::FieldValueInvalid, at, Some(value), &detail)
}

fn validate_string(s: &str, value: &Value, node: &Node, at: &str, found: &mut Findings) {
    let chars = s.chars().count() as u64;
    if let Some(max) = node.max_length
        && chars > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max} {unit}");
        found.schema.push(Cause::new(
            CauseReason::FieldValueTooLong,
            at,
            Some(value),
            &detail,
        ));
    }
    if let Some(min) = node.min_length
        && chars < min
    {
        found.schema.push(invalid(
            at,
            value,
            format!("{at} in body should be at least {min} chars long"),
        ));
    }
    if let Some((source, re)) = &node.pattern
        && !re.is_match(s)
    {
        found.schema.push(invalid(
            at,
            value,
            format!("{at} in body should match '{source}'"),
        ));
    }
    if let Some(format) = &node.format
        && formats::string_is_valid(format, s) == Some(false)
    {
        let detail = format!("{at} in body must be of type {format}: {}", go_quote(s));
        found.schema.push(Cause::new(
            CauseReason::FieldValueTypeInvalid,
            at,
            Some(value),
            &detail,
        ));
    }
}

/// Checks in go-openapi's order: the value against the numeric format's range, then
/// `multipleOf`, `maximum`, `minimum`, each after checking that the bound itself fits the format.
fn validate_number(n: &Number, value: &Value, node: &Node, at: &str, found: &mut Findings) {
    let Some(x) = n.as_f64() else { return };
    let type_name = node.type_label();
    let format = node.format.as_deref().unwrap_or("");
    // go-openapi reports these range errors as plain errors, which the apiserver files under the
    // nil root path with an empty value.
    let out_of_range = |what: &str| {
        let with_format = if format.is_empty() {
            String::new()
        } else {
            format!(" with format {format}")
        };
        let detail = format!("{what} value must be of type {type_name}{with_format} in {at}");
        Cause::new(
            CauseReason::FieldValueInvalid,
            "",
            Some(&Value::from("")),
            &detail,
        )
    };
    let bound_fits = |bound: f64| {
        Number::from_f64(bound).is_some_and(|b| formats::number_fits(type_name, format, &b))
    };
    if !formats::number_fits(type_name, format, n) {
        found.schema.push(out_of_range("Checked"));
    }
    if let Some(factor) = node.multiple_of {
        if !bound_fits(factor) {
            found.schema.push(out_of_range("MultipleOf"));
        }
        if factor > 0.0 && (x / factor).fract().abs() > f64::EPSILON * 16.0 {
            let detail = format!("{at} in body should be a multiple of {}", go_float(factor));
            found.schema.push(invalid(at, value, detail));
        }
    }
    if let Some(max) = node.maximum {
        if !bound_fits(max) {
            found.schema.push(out_of_range("Maximum boundary"));
        }
        let (fails, words) = if node.exclusive_maximum {
            (x >= max, "less than")
        } else {
            (x > max, "less than or equal to")
        };
        if fails {
            found.schema.push(invalid(
                at,
                value,
                format!("{at} in body should be {words} {}", go_float(max)),
            ));
        }
    }
    if let Some(min) = node.minimum {
        if !bound_fits(min) {
            found.schema.push(out_of_range("Minimum boundary"));
        }
        let (fails, words) = if node.exclusive_minimum {
            (x <= min, "greater than")
        } else {
            (x < min, "greater than or equal to")
        };
        if fails {
            found.schema.push(invalid(
                at,
                value,
                format!("{at} in body should be {words} {}", go_float(min)),
            ));
        }
    }
}

fn validate_array(
    list: &[Value],
    old: Option<&Vec<Value>>,
    node: &Node,
    at: &str,
    found: &mut Findings,
) {
    let len = list.len() as u64;
    if let Some(min) = node.min_items
        && len < min
    {
        found.schema.push(invalid(
            at,
            &Value::from(len),
            format!("{at} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = node.max_items
        && len > max
    {
        found.schema.push(too_many(at, len, max));
    }
    if node.unique_items && has_duplicates(list) {
        found.schema.push(invalid(
            at,
            &Value::from(""),
            format!("{at} in body shouldn't contain duplicates"),
        ));
    }
    if let Some(items) = &node.items {
        for (i, item) in list.iter().enumerate() {
            let old_item = old.and_then(|o| crate::lists::counterpart(item, o, node));
            validate(item, old_item, items, &path::index(at, i), false, found);
        }
    }
    crate::lists::check(list, node, at, &mut found.lists);
}

fn too_many(at: &str, actual: u64, max: u64) -> Cause {
    let unit = if max == 1 { "item" } else { "items" };
    let detail = format!("must have at most {max} {unit}");
    Cause::new(
        CauseReason::FieldValueTooMany,
        at,
        Some(&Value::from(actual)),
        &detail,
    )
}

fn has_duplicates(list: &[Value]) -> bool {
    list.iter().enumerate().any(|(i, a)| list[..i].contains(a))
}

fn validate_object(
    obj: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
    node: &Node,
    at: &str,
    is_root: bool,
    found: &mut Findings,
) {
    let len = obj.len() as u64;
    if let Some(max) = node.max_properties
        && len > max
    {
        found.schema.push(too_many(at, len, max));
    }
    if let Some(min) = node.min_properties
        && len < min
    {
        found.schema.push(invalid(
            at,
            &Value::from(len),
            format!("{at} in body should have at least {min} properties"),
        ));
    }
    for name in &node.required {
        if !obj.contains_key(name) {
            found.schema.push(Cause::bare(
                CauseReason::FieldValueRequired,
                &path::child(at, name),
                "",
            ));
        }
    }
    for (key, child) in crate::cause::sorted(obj) {
        if is_root && key == "metadata" {
            continue;
        }
        let old_child = old.and_then(|o| o.get(key));
        if let Some(schema) = node.properties.get(key) {
            validate(
                child,
                old_child,
                schema,
                &path::child(at, key),
                false,
                found,
            );
        } else if let Additional::Schema(schema) = &node.additional {
            validate(child, old_child, schema, &path::key(at, key), false, found);
        }
    }
    if node.embedded {
        crate::embedded::check(obj, at, &mut found.embedded);
    }
}
