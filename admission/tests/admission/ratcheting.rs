//! Validation ratcheting on update: errors in values the update did not change are tolerated,
//! as kube-apiserver (1.30+) tolerates them, so a tightened schema does not freeze old objects.

use crate::{admit, lines};
use serde_json::{Value, json};

fn policy(spec: Value) -> Value {
    json!({"apiVersion": "tend.dev/v1alpha1", "kind": "BackupPolicy", "metadata": {"name": "nightly"}, "spec": spec})
}

fn schema() -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["schedule"], "properties": {
        "schedule": {"type": "string"},
        "suspend": {"type": "boolean"},
        "retention": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.keepDaily <= 30", "message": "keep at most 30 dailies"}],
            "properties": {"keepDaily": {"type": "integer", "minimum": 0}}},
        "targets": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    }}}})
}

#[test]
fn unchanged_invalid_value_is_tolerated_but_a_changed_one_is_not() {
    let old = policy(json!({"schedule": "@daily", "retention": {"keepDaily": -1}}));
    let mut touched_elsewhere =
        policy(json!({"schedule": "@hourly", "retention": {"keepDaily": -1}}));
    assert!(
        admit(&schema(), &mut touched_elsewhere, Some(&old))
            .causes
            .is_empty()
    );

    let mut changed = policy(json!({"schedule": "@daily", "retention": {"keepDaily": -2}}));
    assert_eq!(
        lines(&admit(&schema(), &mut changed, Some(&old)).causes),
        [
            "spec.retention.keepDaily: Invalid value: -2: spec.retention.keepDaily in body should be greater than or equal to 0"
        ]
    );
    assert_eq!(
        admit(&schema(), &mut old.clone(), None).causes.len(),
        1,
        "create is not ratcheted"
    );
}

#[test]
fn missing_required_field_is_tolerated_only_while_its_object_is_unchanged() {
    let old = policy(json!({"suspend": false}));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"team": "ops"});
    assert!(
        admit(&schema(), &mut relabelled, Some(&old))
            .causes
            .is_empty()
    );

    let mut suspended = policy(json!({"suspend": true}));
    assert_eq!(
        lines(&admit(&schema(), &mut suspended, Some(&old)).causes),
        [
            "spec.schedule: Required value",
            r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
        ]
    );
}

#[test]
fn cel_rule_failing_on_an_unchanged_value_is_tolerated() {
    let old = policy(json!({"schedule": "@daily", "retention": {"keepDaily": 40}}));
    let mut other_change = policy(json!({"schedule": "@hourly", "retention": {"keepDaily": 40}}));
    assert!(
        admit(&schema(), &mut other_change, Some(&old))
            .causes
            .is_empty()
    );
    let mut worse = policy(json!({"schedule": "@daily", "retention": {"keepDaily": 41}}));
    assert_eq!(
        lines(&admit(&schema(), &mut worse, Some(&old)).causes),
        [r#"spec.retention: Invalid value: "object": keep at most 30 dailies"#]
    );
}

#[test]
fn list_type_duplicates_are_never_tolerated() {
    let old = policy(json!({"schedule": "@daily", "targets": ["database", "database"]}));
    let mut unchanged_list =
        policy(json!({"schedule": "@hourly", "targets": ["database", "database"]}));
    assert_eq!(
        lines(&admit(&schema(), &mut unchanged_list, Some(&old)).causes),
        [r#"spec.targets[1]: Duplicate value: "database""#]
    );
}
