//! Field errors in the shape kube-apiserver reports them: a `metav1.StatusCause` per error, and
//! the 422 `metav1.Status` that carries them.
//!
//! The wording mirrors apimachinery's `field.Error.ErrorBody()` so that `kubectl` users read the
//! messages they already know (`Required value`, `Invalid value: -1: ...`, `Unsupported value`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

/// The `reason` of a `metav1.StatusCause`, serialised as kube-apiserver spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CauseReason {
    /// A required field is missing (`Required value`).
    FieldValueRequired,
    /// A value fails a constraint (`Invalid value: ...`).
    FieldValueInvalid,
    /// A value is not one of an enumeration (`Unsupported value: ...`).
    FieldValueNotSupported,
    /// A value has the wrong JSON type or string format (shown as `Invalid value: ...`).
    FieldValueTypeInvalid,
    /// A value is not allowed here (`Forbidden: ...`).
    FieldValueForbidden,
    /// A string is longer than `maxLength` (`Too long: ...`).
    FieldValueTooLong,
    /// A list or map has more entries than allowed (`Too many: ...`).
    FieldValueTooMany,
    /// A list entry repeats a set element or a list-map key (`Duplicate value: ...`).
    FieldValueDuplicate,
    /// A field the schema does not declare; only reported under strict field validation.
    FieldValueUnknown,
}

impl CauseReason {
    /// The label apimachinery prints before the value (`field.ErrorType.String()`).
    fn label(self) -> &'static str {
        match self {
            CauseReason::FieldValueRequired => "Required value",
            CauseReason::FieldValueInvalid | CauseReason::FieldValueTypeInvalid => "Invalid value",
            CauseReason::FieldValueNotSupported => "Unsupported value",
            CauseReason::FieldValueForbidden => "Forbidden",
            CauseReason::FieldValueTooLong => "Too long",
            CauseReason::FieldValueTooMany => "Too many",
            CauseReason::FieldValueDuplicate => "Duplicate value",
            CauseReason::FieldValueUnknown => "Unknown field",
        }
    }

    /// Kinds of error whose message never shows the offending value.
    fn omits_value(self) -> bool {
        matches!(
            self,
            CauseReason::FieldValueRequired
                | CauseReason::FieldValueForbidden
                | CauseReason::FieldValueTooLong
                | CauseReason::FieldValueUnknown
        )
    }
}

/// One validation error, as a `metav1.StatusCause`: `message` is the error body without the
/// field path (`Invalid value: -1: spec.x in body should be ...`), `field` the path (`spec.x`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// Machine-readable kind of error.
    pub reason: CauseReason,
    /// Path of the offending field: dots for fields, `[i]` for list indices, `[key]` for map keys;
    /// `<nil>` for the object as a whole, as kube-apiserver prints its nil root path.
    pub field: String,
    /// Human-readable error body, worded as kube-apiserver words it.
    pub message: String,
}

impl Cause {
    /// Builds a cause whose message shows `value` the way apimachinery does (strings quoted,
    /// numbers and booleans bare, `"null"`, objects and lists in Go syntax).
    pub(crate) fn new(
        reason: CauseReason,
        field: &str,
        value: Option<&Value>,
        detail: &str,
    ) -> Cause {
        let mut message = reason.label().to_string();
        if !reason.omits_value()
            && let Some(value) = value
        {
            message.push_str(": ");
            message.push_str(&render_value(value));
        }
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        // The apiserver's root field path is nil, which prints as `<nil>`.
        let field = if field.is_empty() { "<nil>" } else { field };
        Cause {
            reason,
            field: field.to_string(),
            message,
        }
    }

    /// A cause that shows no value (used for `Too many` with an unknown count and similar).
    pub(crate) fn bare(reason: CauseReason, field: &str, detail: &str) -> Cause {
        Cause::new(reason, field, None, detail)
    }
}

impl fmt::Display for Cause {
    /// `field: message`, the form kube-apiserver joins into the Status message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Renders a bad value as apimachinery's `ErrorBody` does for JSON-decoded data.
pub(crate) fn render_value(value: &Value) -> String {
    match value {
        Value::Null => "\"null\"".to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => go_syntax(value),
    }
}

/// Renders a decoded JSON value as Go's `%#v` prints it, the way apimachinery shows a list or an
/// object it reports: `map[string]interface {}{"containerPort":8000, "protocol":"TCP"}` (keys
/// sorted), `[]interface {}{"a", "b"}`.
pub(crate) fn go_syntax(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(f64::NAN)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_syntax).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            let entries: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", go_quote(k), go_syntax(&fields[k])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", entries.join(", "))
        }
    }
}

/// Formats a float64 as Go's `%v` does: the shortest digits that round-trip, in exponent form
/// (`1e+06`, `2.147483648e+09`, `1e-05`) when the decimal exponent is below -4 or at least 6.
pub(crate) fn go_float(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        format!("{x}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// Quotes a string like Go's `%q`: double quotes, backslash escapes, printable Unicode kept.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let code = c as u32;
                if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `metav1.Status` (422, reason `Invalid`) kube-apiserver returns for an invalid object.
///
/// `message` is `<Kind>.<group> "<name>" is invalid: <causes>`, with the causes joined as
/// apimachinery's error aggregate joins them: one cause bare, several in `[a, b]`, duplicates
/// dropped.
pub fn invalid_status(kind: &str, group: &str, name: &str, causes: &[Cause]) -> Value {
    let qualified_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut rendered: Vec<String> = Vec::with_capacity(causes.len());
    for cause in causes {
        let line = cause.to_string();
        if !rendered.contains(&line) {
            rendered.push(line);
        }
    }
    let quoted_name = go_quote(name);
    let message = match rendered.len() {
        0 => format!("{qualified_kind} {quoted_name} is invalid"),
        1 => format!("{qualified_kind} {quoted_name} is invalid: {}", rendered[0]),
        _ => format!(
            "{qualified_kind} {quoted_name} is invalid: [{}]",
            rendered.join(", ")
        ),
    };
    let causes: Vec<Value> = causes
        .iter()
        .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
        .collect();
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": {"name": name, "group": group, "kind": kind, "causes": causes},
        "code": 422
    })
}

/// The `metav1.Status` (400, reason `BadRequest`) kube-apiserver returns when a request asked for
/// strict field validation (`fieldValidation=Strict`, kubectl's default) and carried fields the
/// schema does not declare, e.g. `Pet in version "v1alpha1" cannot be handled as a Pet: strict
/// decoding error: unknown field "spec.colour"`.
pub fn strict_decoding_status(kind: &str, version: &str, unknown_fields: &[String]) -> Value {
    let unknown: Vec<String> = unknown_fields
        .iter()
        .map(|f| format!("unknown field {}", go_quote(f)))
        .collect();
    let message = format!(
        "{kind} in version {} cannot be handled as a {kind}: strict decoding error: {}",
        go_quote(version),
        unknown.join(", ")
    );
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400
    })
}

/// An object's entries in key order, so that errors come out in the same order whatever map
/// type `serde_json` was built with.
pub(crate) fn sorted(obj: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = obj.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Field-path building, kube style: `spec.levels[1].timeout`, `spec.labels[app]`.
pub(crate) mod path {
    pub(crate) fn child(base: &str, name: &str) -> String {
        if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}.{name}")
        }
    }

    pub(crate) fn index(base: &str, i: usize) -> String {
        format!("{base}[{i}]")
    }

    pub(crate) fn key(base: &str, key: &str) -> String {
        format!("{base}[{key}]")
    }
}

#[cfg(test)]
mod tests {
    use super::{go_float, go_syntax};
    use serde_json::json;

    #[test]
    fn lists_and_objects_print_like_go_percent_sharp_v() {
        assert_eq!(
            go_syntax(&json!({"protocol": "TCP", "containerPort": 8000})),
            r#"map[string]interface {}{"containerPort":8000, "protocol":"TCP"}"#
        );
        assert_eq!(
            go_syntax(&json!(["a", 1.5, null])),
            r#"[]interface {}{"a", 1.5, interface {}(nil)}"#
        );
    }

    #[test]
    fn floats_print_like_go_percent_v() {
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(2147483648.0), "2.147483648e+09");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5e-7), "-2.5e-07");
    }
}
