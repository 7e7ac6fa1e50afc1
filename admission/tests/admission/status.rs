//! The 422 `metav1.Status` body kube-apiserver returns for an invalid object.

use crate::admit;
use serde_json::json;
use tend_admission::{Cause, CauseReason, invalid_status, strict_decoding_status};

#[test]
fn invalid_status_carries_every_cause_and_joins_them_in_the_message() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["schedule"], "properties": {
        "schedule": {"type": "string"},
        "retention": {"type": "object", "properties": {"keepDaily": {"type": "integer", "minimum": 0}}}
    }}}});
    let mut object = json!({"apiVersion": "tend.dev/v1alpha1", "kind": "BackupPolicy", "metadata": {"name": "nightly"},
        "spec": {"retention": {"keepDaily": -1}}});
    let outcome = admit(&schema, &mut object, None);
    let status = invalid_status("BackupPolicy", "tend.dev", "nightly", &outcome.causes);
    assert_eq!(
        status,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "BackupPolicy.tend.dev \"nightly\" is invalid: [spec.schedule: Required value, spec.retention.keepDaily: Invalid value: -1: spec.retention.keepDaily in body should be greater than or equal to 0]",
            "reason": "Invalid",
            "details": {
                "name": "nightly",
                "group": "tend.dev",
                "kind": "BackupPolicy",
                "causes": [
                    {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.schedule"},
                    {"reason": "FieldValueInvalid",
                     "message": "Invalid value: -1: spec.retention.keepDaily in body should be greater than or equal to 0",
                     "field": "spec.retention.keepDaily"}
                ]
            },
            "code": 422
        })
    );
}

#[test]
fn single_cause_is_not_bracketed_and_core_group_has_no_suffix() {
    let cause = Cause {
        reason: CauseReason::FieldValueForbidden,
        field: "data".into(),
        message: "Forbidden: no".into(),
    };
    let status = invalid_status("ConfigMap", "", "c", &[cause]);
    assert_eq!(
        status["message"],
        "ConfigMap \"c\" is invalid: data: Forbidden: no"
    );
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueForbidden"
    );
}

#[test]
fn type_errors_serialise_as_field_value_type_invalid() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"x": {"type": "integer"}}}}});
    let mut object =
        json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "spec": {"x": "string"}});
    let outcome = admit(&schema, &mut object, None);
    let status = invalid_status("K", "tend.dev", "n", &outcome.causes);
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueTypeInvalid"
    );
}

#[test]
fn unknown_fields_become_strict_validation_causes() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object"}}});
    let mut object =
        json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}, "spec": {}, "sepc": {}});
    let outcome = admit(&schema, &mut object, None);
    let strict = outcome.unknown_field_causes();
    assert_eq!(strict.len(), 1);
    assert_eq!(strict[0].field, "sepc");
    assert_eq!(strict[0].message, r#"unknown field "sepc""#);
    assert_eq!(
        serde_json::to_value(strict[0].reason).unwrap(),
        json!("FieldValueUnknown")
    );
}

#[test]
fn strict_decoding_status_lists_every_unknown_field() {
    let status = strict_decoding_status(
        "Pet",
        "v1alpha1",
        &["spec.colour".to_string(), "spec.size".to_string()],
    );
    assert_eq!(
        status,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Pet in version \"v1alpha1\" cannot be handled as a Pet: strict decoding error: unknown field \"spec.colour\", unknown field \"spec.size\"",
            "reason": "BadRequest", "code": 400
        })
    );
}

#[test]
fn errors_on_the_whole_object_use_the_nil_root_path() {
    let schema = json!({"type": "object", "minProperties": 5});
    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "n"}});
    let outcome = admit(&schema, &mut object, None);
    assert_eq!(outcome.causes[0].field, "<nil>");
}
