//! Structural (OpenAPI v3) checks: one test per keyword family, messages asserted exactly.

use crate::{admit, lines, spec_errors};
use serde_json::json;

fn prop(schema: serde_json::Value) -> serde_json::Value {
    json!({"type": "object", "properties": {"x": schema}})
}

#[test]
fn required_field_missing_names_the_path() {
    let errors = spec_errors(
        json!({"type": "object", "required": ["schedule"], "properties": {"schedule": {"type": "string"}}}),
        json!({}),
    );
    assert_eq!(errors, ["spec.schedule: Required value"]);
}

#[test]
fn required_fields_are_reported_in_declared_order() {
    let errors = spec_errors(
        json!({"type": "object", "required": ["targets", "schedule"], "properties": {
            "schedule": {"type": "string"}, "targets": {"type": "array", "items": {"type": "string"}}
        }}),
        json!({}),
    );
    assert_eq!(
        errors,
        [
            "spec.targets: Required value",
            "spec.schedule: Required value"
        ]
    );
}

#[test]
fn missing_required_spec_at_root_is_reported_without_prefix() {
    let schema =
        json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}});
    let mut object =
        json!({"apiVersion": "tend.dev/v1alpha1", "kind": "X", "metadata": {"name": "a"}});
    assert_eq!(
        lines(&admit(&schema, &mut object, None).causes),
        ["spec: Required value"]
    );
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
fn numeric_bounds_honour_exclusive_flags() {
    let schema = prop(
        json!({"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true}),
    );
    assert_eq!(
        spec_errors(schema.clone(), json!({"x": 0.5})),
        Vec::<String>::new()
    );
    assert_eq!(
        spec_errors(schema.clone(), json!({"x": 0})),
        ["spec.x: Invalid value: 0: spec.x in body should be greater than 0"]
    );
    assert_eq!(
        spec_errors(schema, json!({"x": 1.5})),
        ["spec.x: Invalid value: 1.5: spec.x in body should be less than 1.5"]
    );
    assert_eq!(
        spec_errors(
            prop(json!({"type": "integer", "maximum": 7})),
            json!({"x": 8})
        ),
        ["spec.x: Invalid value: 8: spec.x in body should be less than or equal to 7"]
    );
}

#[test]
fn multiple_of_violation_names_the_factor() {
    assert_eq!(
        spec_errors(
            prop(json!({"type": "integer", "multipleOf": 5})),
            json!({"x": 12})
        ),
        ["spec.x: Invalid value: 12: spec.x in body should be a multiple of 5"]
    );
    assert!(
        spec_errors(
            prop(json!({"type": "integer", "multipleOf": 5})),
            json!({"x": 15})
        )
        .is_empty()
    );
}

#[test]
fn wrong_type_reports_expected_and_actual_type() {
    let errors = spec_errors(prop(json!({"type": "integer"})), json!({"x": "string"}));
    assert_eq!(
        errors,
        [r#"spec.x: Invalid value: "string": spec.x in body must be of type integer: "string""#]
    );
    let errors = spec_errors(prop(json!({"type": "object"})), json!({"x": [1]}));
    assert_eq!(
        errors,
        [r#"spec.x: Invalid value: "array": spec.x in body must be of type object: "array""#]
    );
}

#[test]
fn integral_float_is_an_integer_but_fraction_is_not() {
    assert!(spec_errors(prop(json!({"type": "integer"})), json!({"x": 3.0})).is_empty());
    assert_eq!(
        spec_errors(prop(json!({"type": "integer"})), json!({"x": 3.5})),
        [r#"spec.x: Invalid value: "number": spec.x in body must be of type integer: "number""#]
    );
    assert!(spec_errors(prop(json!({"type": "number"})), json!({"x": 3})).is_empty());
}

#[test]
fn nullable_allows_null_and_non_nullable_list_item_null_is_a_type_error() {
    assert!(
        spec_errors(
            prop(json!({"type": "string", "nullable": true})),
            json!({"x": null})
        )
        .is_empty()
    );
    assert_eq!(
        spec_errors(
            prop(json!({"type": "array", "items": {"type": "string"}})),
            json!({"x": ["a", null]})
        ),
        [r#"spec.x[1]: Invalid value: "null": spec.x[1] in body must be of type string: "null""#]
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
    assert_eq!(
        spec_errors(
            prop(json!({"type": "integer", "enum": [1, 2]})),
            json!({"x": 3})
        ),
        [r#"spec.x: Unsupported value: 3: supported values: "1", "2""#]
    );
}

#[test]
fn string_length_bounds_use_kube_wording() {
    assert_eq!(
        spec_errors(
            prop(json!({"type": "string", "maxLength": 3})),
            json!({"x": "abcd"})
        ),
        ["spec.x: Too long: may not be more than 3 bytes"]
    );
    assert_eq!(
        spec_errors(
            prop(json!({"type": "string", "minLength": 2})),
            json!({"x": "a"})
        ),
        [r#"spec.x: Invalid value: "a": spec.x in body should be at least 2 chars long"#]
    );
}

#[test]
fn pattern_mismatch_quotes_the_pattern() {
    let schema = prop(json!({"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}));
    assert!(spec_errors(schema.clone(), json!({"x": "db-1"})).is_empty());
    assert_eq!(
        spec_errors(schema, json!({"x": "Bad_Name"})),
        [
            r#"spec.x: Invalid value: "Bad_Name": spec.x in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"#
        ]
    );
}

#[test]
fn item_count_bounds_use_kube_wording() {
    let schema =
        prop(json!({"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}}));
    assert_eq!(
        spec_errors(schema.clone(), json!({"x": []})),
        ["spec.x: Invalid value: 0: spec.x in body should have at least 1 items"]
    );
    assert_eq!(
        spec_errors(schema, json!({"x": [1, 2, 3]})),
        ["spec.x: Too many: 3: must have at most 2 items"]
    );
}

#[test]
fn property_count_bounds_use_kube_wording() {
    let schema = prop(
        json!({"type": "object", "minProperties": 1, "maxProperties": 1,
        "additionalProperties": {"type": "string"}}),
    );
    assert_eq!(
        spec_errors(schema.clone(), json!({"x": {}})),
        ["spec.x: Invalid value: 0: spec.x in body should have at least 1 properties"]
    );
    assert_eq!(
        spec_errors(schema, json!({"x": {"a": "1", "b": "2"}})),
        ["spec.x: Too many: 2: must have at most 1 item"]
    );
}

#[test]
fn unique_items_rejects_repeated_values() {
    assert_eq!(
        spec_errors(
            prop(json!({"type": "array", "uniqueItems": true, "items": {"type": "string"}})),
            json!({"x": ["a", "a"]})
        ),
        [r#"spec.x: Invalid value: "": spec.x in body shouldn't contain duplicates"#]
    );
}

#[test]
fn map_values_are_validated_with_key_in_brackets() {
    let schema =
        prop(json!({"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}));
    assert_eq!(
        spec_errors(schema, json!({"x": {"db": 0}})),
        ["spec.x[db]: Invalid value: 0: spec.x[db] in body should be greater than or equal to 1"]
    );
}

#[test]
fn int_or_string_accepts_both_and_rejects_others() {
    let schema = prop(json!({"x-kubernetes-int-or-string": true}));
    assert!(spec_errors(schema.clone(), json!({"x": 8080})).is_empty());
    assert!(spec_errors(schema.clone(), json!({"x": "http"})).is_empty());
    assert_eq!(
        spec_errors(schema, json!({"x": true})),
        [
            r#"spec.x: Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean""#
        ]
    );
}

#[test]
fn string_formats_are_checked_as_kube_defines_them() {
    let format = |f: &str| prop(json!({"type": "string", "format": f}));
    let ok = [
        ("date-time", "2026-11-28T12:00:00Z"),
        ("date-time", "2026-11-28T12:00:00.123+02:00"),
        ("date", "2026-02-28"),
        ("duration", "1h30m"),
        ("duration", "3 days"),
        ("duration", "-1.5s"),
        ("byte", "aGVsbG8="),
        ("uri", "https://example.test/a?b=c"),
        ("hostname", "db.internal"),
        ("email", "ops@example.test"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000"),
        ("some-unknown-format", "anything"),
    ];
    for (f, value) in ok {
        assert!(
            spec_errors(format(f), json!({"x": value})).is_empty(),
            "{f} should accept {value:?}"
        );
    }
    let bad = [
        ("date-time", "yesterday"),
        ("date", "2026-02-30"),
        ("duration", "soon"),
        ("byte", "not base64!"),
        ("uri", "has space"),
        ("hostname", "-bad-.test"),
        ("email", "nobody"),
    ];
    for (f, value) in bad {
        assert_eq!(
            spec_errors(format(f), json!({"x": value})),
            [format!(
                r#"spec.x: Invalid value: "{value}": spec.x in body must be of type {f}: "{value}""#
            )],
        );
    }
}

#[test]
fn integer_formats_bound_the_value_and_the_schema_bounds() {
    let int32 = |extra: serde_json::Value| {
        let mut schema = json!({"type": "integer", "format": "int32"});
        schema
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        prop(schema)
    };
    assert!(spec_errors(int32(json!({})), json!({"x": 2147483647})).is_empty());
    // go-openapi's range errors are plain errors: the apiserver files them under the nil path.
    assert_eq!(
        spec_errors(int32(json!({})), json!({"x": 2147483648_i64})),
        [
            r#"<nil>: Invalid value: "": Checked value must be of type integer with format int32 in spec.x"#
        ]
    );
    assert_eq!(
        spec_errors(int32(json!({"maximum": 4294967295_i64})), json!({"x": 5})),
        [
            r#"<nil>: Invalid value: "": Maximum boundary value must be of type integer with format int32 in spec.x"#
        ]
    );
    assert!(
        spec_errors(
            prop(json!({"type": "integer", "format": "int64"})),
            json!({"x": 2147483648_i64})
        )
        .is_empty()
    );
    assert_eq!(
        spec_errors(prop(json!({"type": "integer"})), json!({"x": u64::MAX})),
        [r#"<nil>: Invalid value: "": Checked value must be of type integer in spec.x"#]
    );
}

#[test]
fn large_and_float_bounds_print_as_go_prints_floats() {
    assert_eq!(
        spec_errors(
            prop(json!({"type": "integer", "maximum": 1000000})),
            json!({"x": 1000001})
        ),
        ["spec.x: Invalid value: 1000001: spec.x in body should be less than or equal to 1e+06"]
    );
    assert_eq!(
        spec_errors(
            prop(json!({"type": "number", "minimum": 0.5})),
            json!({"x": 1e-5})
        ),
        ["spec.x: Invalid value: 1e-05: spec.x in body should be greater than or equal to 0.5"]
    );
}

#[test]
fn embedded_resource_needs_api_version_and_kind() {
    let schema = prop(
        json!({"type": "object", "x-kubernetes-embedded-resource": true,
        "x-kubernetes-preserve-unknown-fields": true}),
    );
    assert!(
        spec_errors(
            schema.clone(),
            json!({"x": {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}})
        )
        .is_empty()
    );
    assert_eq!(
        spec_errors(schema, json!({"x": {"data": {}}})),
        [
            "spec.x.apiVersion: Required value: must not be empty",
            "spec.x.kind: Required value: must not be empty"
        ]
    );
}

#[test]
fn metadata_at_root_must_be_an_object_but_is_not_validated_by_the_schema() {
    let schema = json!({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 2}}}
    }});
    let mut object =
        json!({"apiVersion": "tend.dev/v1alpha1", "kind": "X", "metadata": {"name": "long-name"}});
    let outcome = admit(&schema, &mut object, None);
    assert!(outcome.causes.is_empty(), "{:?}", outcome.causes);
    assert_eq!(object["metadata"]["name"], "long-name");

    let mut object = json!({"apiVersion": "tend.dev/v1alpha1", "kind": "X", "metadata": "oops"});
    assert_eq!(
        lines(&admit(&schema, &mut object, None).causes),
        [r#"metadata: Invalid value: "string": metadata in body must be of type object: "string""#]
    );
}

#[test]
fn nullable_enum_still_refuses_null_unless_listed() {
    let schema = prop(json!({"type": "string", "nullable": true, "enum": ["a", "b"]}));
    assert_eq!(
        spec_errors(schema, json!({"x": null})),
        [r#"spec.x: Unsupported value: "null": supported values: "a", "b""#]
    );
    let schema = prop(json!({"type": "string", "nullable": true, "enum": ["a", null]}));
    assert!(spec_errors(schema, json!({"x": null})).is_empty());
}
