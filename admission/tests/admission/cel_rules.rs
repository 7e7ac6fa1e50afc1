//! `x-kubernetes-validations`: messages, field paths, reasons, transition rules, and when CEL
//! does not run.

use crate::{admit, lines};
use serde_json::{Value, json};
use tend_admission::{CauseReason, Schema};

fn object(spec: Value) -> Value {
    json!({"apiVersion": "tend.dev/v1alpha1", "kind": "BackupPolicy", "metadata": {"name": "nightly"}, "spec": spec})
}

fn with_spec(spec_schema: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec_schema}})
}

#[test]
fn failed_rule_reports_its_message_at_the_node() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.keepDaily >= self.keepWeekly", "message": "keepDaily must be at least keepWeekly"}],
        "properties": {"keepDaily": {"type": "integer"}, "keepWeekly": {"type": "integer"}}}));
    assert!(
        admit(
            &schema,
            &mut object(json!({"keepDaily": 7, "keepWeekly": 4})),
            None
        )
        .causes
        .is_empty()
    );
    let outcome = admit(
        &schema,
        &mut object(json!({"keepDaily": 1, "keepWeekly": 4})),
        None,
    );
    assert_eq!(
        lines(&outcome.causes),
        [r#"spec: Invalid value: "object": keepDaily must be at least keepWeekly"#]
    );
    assert_eq!(outcome.causes[0].reason, CauseReason::FieldValueInvalid);
}

#[test]
fn rule_without_message_reports_the_rule() {
    let schema = with_spec(
        json!({"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('s3://')"}]}),
    );
    assert_eq!(
        lines(&admit(&schema, &mut object(json!("gs://bucket")), None).causes),
        [r#"spec: Invalid value: "string": failed rule: self.startsWith('s3://')"#]
    );
}

#[test]
fn message_expression_builds_the_message_from_the_value() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.replicas <= 3", "message": "static",
            "messageExpression": "'replicas is ' + string(self.replicas) + ', at most 3 allowed'"}],
        "properties": {"replicas": {"type": "integer"}}}));
    assert_eq!(
        lines(&admit(&schema, &mut object(json!({"replicas": 5})), None).causes),
        [r#"spec: Invalid value: "object": replicas is 5, at most 3 allowed"#]
    );
}

#[test]
fn field_path_and_reason_shape_the_cause() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [
            {"rule": "!has(self.drill) || has(self.rtoObjective)", "message": "drills need an RTO objective",
             "fieldPath": ".rtoObjective", "reason": "FieldValueRequired"},
            {"rule": "self.mode != 'inPlace'", "message": "in-place restores are disabled",
             "fieldPath": ".mode", "reason": "FieldValueForbidden"},
            {"rule": "self.mode != 'copy'", "fieldPath": ".mode", "reason": "FieldValueDuplicate"}
        ],
        "properties": {"drill": {"type": "boolean"}, "rtoObjective": {"type": "string"}, "mode": {"type": "string"}}}));
    let outcome = admit(
        &schema,
        &mut object(json!({"drill": true, "mode": "inPlace"})),
        None,
    );
    assert_eq!(
        lines(&outcome.causes),
        [
            "spec.rtoObjective: Required value: drills need an RTO objective",
            "spec.mode: Forbidden: in-place restores are disabled",
        ]
    );
    assert_eq!(outcome.causes[0].reason, CauseReason::FieldValueRequired);
    assert_eq!(outcome.causes[1].reason, CauseReason::FieldValueForbidden);
    let outcome = admit(&schema, &mut object(json!({"mode": "copy"})), None);
    assert_eq!(
        lines(&outcome.causes),
        [r#"spec.mode: Duplicate value: "object""#]
    );
}

#[test]
fn rules_on_list_items_name_the_index() {
    let schema = with_spec(
        json!({"type": "object", "properties": {"levels": {"type": "array", "items": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": "self.ackTimeout > duration('0s')", "message": "must be positive"}],
            "properties": {"ackTimeout": {"type": "string", "format": "duration"}}
        }}}}),
    );
    assert_eq!(
        lines(
            &admit(
                &schema,
                &mut object(json!({"levels": [{"ackTimeout": "5m"}, {"ackTimeout": "0s"}]})),
                None
            )
            .causes
        ),
        [r#"spec.levels[1]: Invalid value: "object": must be positive"#]
    );
}

#[test]
fn immutable_spec_refuses_change_on_update_but_allows_create() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "spec is immutable"}],
        "properties": {"backup": {"type": "string"}}}));
    let old = object(json!({"backup": "a"}));
    assert!(
        admit(&schema, &mut old.clone(), None).causes.is_empty(),
        "create is allowed"
    );
    assert!(
        admit(&schema, &mut old.clone(), Some(&old))
            .causes
            .is_empty(),
        "unchanged update is allowed"
    );
    let outcome = admit(&schema, &mut object(json!({"backup": "b"})), Some(&old));
    assert_eq!(
        lines(&outcome.causes),
        [r#"spec: Invalid value: "object": spec is immutable"#]
    );
}

#[test]
fn transition_rule_is_skipped_when_the_old_value_is_absent() {
    let schema = with_spec(
        json!({"type": "object", "properties": {"target": {"type": "string",
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "target is immutable"}]}}}),
    );
    let old = object(json!({}));
    assert!(
        admit(&schema, &mut object(json!({"target": "db"})), Some(&old))
            .causes
            .is_empty()
    );
}

#[test]
fn transition_rules_correlate_list_map_entries_by_key_not_index() {
    let schema = with_spec(json!({"type": "object", "properties": {"levels": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {
            "name": {"type": "string"},
            "contact": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "contact is immutable"}]}
        }}
    }}}));
    let old =
        object(json!({"levels": [{"name": "l1", "contact": "a"}, {"name": "l2", "contact": "b"}]}));
    let reordered =
        object(json!({"levels": [{"name": "l2", "contact": "b"}, {"name": "l1", "contact": "a"}]}));
    assert!(
        admit(&schema, &mut reordered.clone(), Some(&old))
            .causes
            .is_empty()
    );
    let changed =
        object(json!({"levels": [{"name": "l2", "contact": "b"}, {"name": "l1", "contact": "z"}]}));
    assert_eq!(
        lines(&admit(&schema, &mut changed.clone(), Some(&old)).causes),
        [r#"spec.levels[1].contact: Invalid value: "string": contact is immutable"#]
    );
}

#[test]
fn optional_old_self_runs_on_create_with_an_empty_optional() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || self.size == oldSelf.value().size",
            "optionalOldSelf": true, "message": "size cannot change"},
            {"rule": "oldSelf.hasValue() || self.size <= 10", "optionalOldSelf": true, "message": "new volumes are at most 10"}],
        "properties": {"size": {"type": "integer"}}}));
    assert!(
        admit(&schema, &mut object(json!({"size": 5})), None)
            .causes
            .is_empty()
    );
    assert_eq!(
        lines(&admit(&schema, &mut object(json!({"size": 50})), None).causes),
        [r#"spec: Invalid value: "object": new volumes are at most 10"#]
    );
    let old = object(json!({"size": 5}));
    assert_eq!(
        lines(&admit(&schema, &mut object(json!({"size": 6})), Some(&old)).causes),
        [r#"spec: Invalid value: "object": size cannot change"#]
    );
}

#[test]
fn cel_is_skipped_when_the_structure_is_invalid() {
    let schema = with_spec(json!({"type": "object", "required": ["keep"],
        "x-kubernetes-validations": [{"rule": "self.keep > 0", "message": "keep must be positive"}],
        "properties": {"keep": {"type": "integer"}}}));
    let outcome = admit(&schema, &mut object(json!({"keep": "seven"})), None);
    assert_eq!(
        lines(&outcome.causes),
        [
            r#"spec.keep: Invalid value: "string": spec.keep in body must be of type integer: "string""#,
            r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
        ]
    );
}

#[test]
fn cel_still_runs_after_a_non_blocking_error() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.keep > 0", "message": "keep must be positive"}],
        "properties": {"keep": {"type": "integer", "multipleOf": 2}}}));
    assert_eq!(
        lines(&admit(&schema, &mut object(json!({"keep": -1})), None).causes),
        [
            "spec.keep: Invalid value: -1: spec.keep in body should be a multiple of 2",
            r#"spec: Invalid value: "object": keep must be positive"#,
        ]
    );
}

#[test]
fn typed_values_reach_cel_as_timestamps_quantities_and_escaped_names() {
    let schema = with_spec(json!({"type": "object",
    "x-kubernetes-validations": [
        {"rule": "self.notAfter > self.notBefore", "message": "window is empty"},
        {"rule": "quantity(self.size).compareTo(quantity('1Gi')) >= 0", "message": "at least 1Gi"},
        {"rule": "self.max__dash__age != ''", "message": "escaped name readable"}
    ],
    "properties": {
        "notBefore": {"type": "string", "format": "date-time"},
        "notAfter": {"type": "string", "format": "date-time"},
        "size": {"type": "string"},
        "max-age": {"type": "string"}
    }}));
    let good = json!({"notBefore": "2026-01-01T00:00:00Z", "notAfter": "2026-01-02T00:00:00Z", "size": "2Gi", "max-age": "1d"});
    assert!(admit(&schema, &mut object(good), None).causes.is_empty());
    let bad = json!({"notBefore": "2026-01-02T00:00:00Z", "notAfter": "2026-01-01T00:00:00Z", "size": "10Mi", "max-age": "1d"});
    assert_eq!(
        lines(&admit(&schema, &mut object(bad), None).causes),
        [
            r#"spec: Invalid value: "object": window is empty"#,
            r#"spec: Invalid value: "object": at least 1Gi"#
        ]
    );
}

#[test]
fn root_rules_see_only_name_and_generate_name_of_metadata() {
    let schema = json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.size() <= 10", "message": "name too long for a cron job"},
            {"rule": "!has(self.metadata.labels)", "message": "labels are invisible to rules"}],
        "properties": {"spec": {"type": "object"}}});
    let mut long = json!({"apiVersion": "v", "kind": "K", "metadata": {"name": "a-very-long-name", "labels": {"a": "b"}}, "spec": {}});
    assert_eq!(
        lines(&admit(&schema, &mut long, None).causes),
        [r#"<nil>: Invalid value: "object": name too long for a cron job"#]
    );
}

#[test]
fn runtime_error_fails_closed_naming_the_error_and_the_rule() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.missing == 'x'"},
            {"rule": "self.diet.feedEvery > duration('1h')", "message": "dragons eat at most once an hour"}
        ],
        "properties": {"missing": {"type": "string"}, "diet": {"type": "object"}}}));
    let outcome = admit(&schema, &mut object(json!({})), None);
    assert_eq!(
        lines(&outcome.causes),
        [
            r#"spec: Invalid value: "object": no such key: missing evaluating rule: self.missing == 'x'"#,
            r#"spec: Invalid value: "object": no such key: diet evaluating rule: dragons eat at most once an hour"#,
        ]
    );
}

#[test]
fn rule_this_build_cannot_evaluate_fails_closed() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "cel.bind(n, self.name, n != '')"}],
        "properties": {"name": {"type": "string"}}}));
    let outcome = admit(&schema, &mut object(json!({"name": "x"})), None);
    assert_eq!(outcome.causes.len(), 1, "{outcome:?}");
    assert!(
        outcome.causes[0].message.contains("cannot be evaluated"),
        "{:?}",
        outcome.causes[0]
    );
}

#[test]
fn schema_with_bad_cel_or_bad_pattern_does_not_compile() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.a ==="}],
        "properties": {"a": {"type": "string", "pattern": "(unclosed"}}}));
    let problems = Schema::compile(&schema).expect_err("schema must be refused");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("openAPIV3Schema.properties[spec].properties[a].pattern: "),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("openAPIV3Schema.properties[spec].x-kubernetes-validations[0]: "),
        "{problems:?}"
    );
}

#[test]
fn schema_with_a_default_its_schema_refuses_does_not_compile() {
    let schema = with_spec(json!({"type": "object", "properties": {
        "mode": {"type": "string", "enum": ["scratch", "inPlace"], "default": "copy"},
        "retention": {"type": "object", "default": {"keepDaily": -1, "bogus": 1},
            "properties": {"keepDaily": {"type": "integer", "minimum": 0}}}
    }}));
    let problems = Schema::compile(&schema).expect_err("schema must be refused");
    assert_eq!(
        problems,
        [
            r#"openAPIV3Schema.properties[spec].properties[mode].default: Unsupported value: "copy": supported values: "scratch", "inPlace""#,
            "openAPIV3Schema.properties[spec].properties[retention].default: bogus: must not have fields the schema does not declare",
            "openAPIV3Schema.properties[spec].properties[retention].default: keepDaily: Invalid value: -1: keepDaily in body should be greater than or equal to 0",
        ]
    );
}

#[test]
fn blocking_metadata_error_from_the_caller_also_skips_cel() {
    let schema = with_spec(json!({"type": "object",
        "x-kubernetes-validations": [{"rule": "self.keep > 0", "message": "keep must be positive"}],
        "properties": {"keep": {"type": "integer"}}}));
    let compiled = Schema::compile(&schema).unwrap();
    let metadata_error = tend_admission::Cause {
        reason: CauseReason::FieldValueRequired,
        field: "metadata.name".into(),
        message: "Required value: name or generateName is required".into(),
    };
    let outcome =
        compiled.admit_after_metadata(&mut object(json!({"keep": 0})), None, vec![metadata_error]);
    assert_eq!(
        lines(&outcome.causes),
        [
            "metadata.name: Required value: name or generateName is required",
            r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#,
        ]
    );
}
