use crate::spec_errors;
use serde_json::json;

#[test]
fn required_field_missing_names_the_path() {
    let errors = spec_errors(
        json!({"type": "object", "required": ["schedule"], "properties": {"schedule": {"type": "string"}}}),
        json!({}),
    );
    assert_eq!(errors, ["spec.schedule: Required value"]);
}

#[test]
fn minimum_violation_shows_value_and_bound() {
    let errors = spec_errors(
        json!({"type": "object", "properties": {"retention": {"type": "object", "properties": {
            "keepDaily": {"type": "integer", "minimum": 0}
        }}}}),
        json!({"retention": {"keepDaily": -1}}),
    );
    assert_eq!(
        errors,
        [
            "spec.retention.keepDaily: Invalid value: -1: spec.retention.keepDaily in body should be greater than or equal to 0"
        ]
    );
}

#[test]
fn wrong_type_reports_expected_and_actual_type() {
    let errors = spec_errors(
        json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
        json!({"x": "string"}),
    );
    assert_eq!(
        errors,
        [r#"spec.x: Invalid value: "string": spec.x in body must be of type integer: "string""#]
    );
}

#[test]
fn enum_violation_lists_supported_values() {
    let errors = spec_errors(
        json!({"type": "object", "properties": {"target": {"type": "object", "properties": {
            "mode": {"type": "string", "enum": ["scratch", "inPlace"]}
        }}}}),
        json!({"target": {"mode": "foo"}}),
    );
    assert_eq!(
        errors,
        [r#"spec.target.mode: Unsupported value: "foo": supported values: "scratch", "inPlace""#]
    );
}

#[test]
fn list_index_appears_in_nested_field_path() {
    let errors = spec_errors(
        json!({"type": "object", "properties": {"levels": {"type": "array", "items": {
            "type": "object", "properties": {"timeout": {"type": "string", "format": "duration"}}
        }}}}),
        json!({"levels": [{"timeout": "5m"}, {"timeout": "soon"}]}),
    );
    assert_eq!(
        errors,
        [
            r#"spec.levels[1].timeout: Invalid value: "soon": spec.levels[1].timeout in body must be of type duration: "soon""#
        ]
    );
}
