//! Behaviour of admission as its callers see it: one module per rule family, schemas inline.

mod cel_rules;
mod composition;
mod mutation;
mod ratcheting;
mod status;
mod structural;

use serde_json::Value;
use tend_admission::{Cause, Outcome, Schema};

/// Compiles `schema`, admits `object` (as a create when `old` is `None`), returns the outcome.
pub fn admit(schema: &Value, object: &mut Value, old: Option<&Value>) -> Outcome {
    let schema = Schema::compile(schema).expect("schema compiles");
    schema.admit(object, old)
}

/// The causes as `field: message` lines, the form kubectl prints.
pub fn lines(causes: &[Cause]) -> Vec<String> {
    causes.iter().map(ToString::to_string).collect()
}

/// Admits `object` under `spec_schema` as the `spec` of a resource and returns the cause lines.
pub fn spec_errors(spec_schema: Value, spec: Value) -> Vec<String> {
    let schema = serde_json::json!({
        "type": "object",
        "properties": { "spec": spec_schema }
    });
    let mut object = serde_json::json!({
        "apiVersion": "tend.dev/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": "nightly"},
        "spec": spec
    });
    lines(&admit(&schema, &mut object, None).causes)
}
