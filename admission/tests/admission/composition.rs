//! `allOf`/`anyOf`/`oneOf`/`not` value validations and list-type invariants.

use crate::spec_errors;
use serde_json::json;

#[test]
fn nested_any_of_reports_the_composite_and_the_closest_branch() {
    // A target names exactly one source; a database source needs either a DSN or a secret.
    let schema = json!({"type": "object", "properties": {"target": {
        "type": "object",
        "properties": {
            "database": {
                "type": "object",
                "properties": {"dsn": {"type": "string"}, "secretRef": {"type": "string", "minLength": 1}},
                "anyOf": [{"required": ["dsn"]}, {"required": ["secretRef"]}]
            },
            "images": {"type": "object"}
        },
        "anyOf": [{"required": ["database"]}, {"required": ["images"]}]
    }}});
    assert!(
        spec_errors(
            schema.clone(),
            json!({"target": {"database": {"dsn": "postgres://"}}})
        )
        .is_empty()
    );
    assert!(spec_errors(schema.clone(), json!({"target": {"images": {}}})).is_empty());
    assert_eq!(
        spec_errors(schema.clone(), json!({"target": {"database": {}}})),
        [
            r#"spec.target.database: Invalid value: "": "spec.target.database" must validate at least one schema (anyOf)"#,
            "spec.target.database.dsn: Required value",
        ]
    );
    assert_eq!(
        spec_errors(schema, json!({"target": {}})),
        [
            r#"spec.target: Invalid value: "": "spec.target" must validate at least one schema (anyOf)"#,
            "spec.target.database: Required value",
        ]
    );
}

#[test]
fn one_of_rejects_none_and_more_than_one_match() {
    let schema = json!({"type": "object", "properties": {"x": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}]
    }}});
    assert!(spec_errors(schema.clone(), json!({"x": {"a": "1"}})).is_empty());
    assert_eq!(
        spec_errors(schema.clone(), json!({"x": {"a": "1", "b": "2"}})),
        [
            r#"spec.x: Invalid value: "": "spec.x" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        ]
    );
    assert_eq!(
        spec_errors(schema, json!({"x": {}})),
        [
            r#"spec.x: Invalid value: "": "spec.x" must validate one and only one schema (oneOf). Found none valid"#,
            "spec.x.a: Required value",
        ]
    );
}

#[test]
fn all_of_reports_every_failing_branch() {
    let schema = json!({"type": "object", "properties": {"x": {
        "type": "integer",
        "allOf": [{"minimum": 1}, {"maximum": 10}]
    }}});
    assert!(spec_errors(schema.clone(), json!({"x": 5})).is_empty());
    assert_eq!(
        spec_errors(schema, json!({"x": 0})),
        [
            "spec.x: Invalid value: 0: spec.x in body should be greater than or equal to 1",
            r#"spec.x: Invalid value: "": "spec.x" must validate all the schemas (allOf)"#,
        ]
    );
}

#[test]
fn not_rejects_a_value_matching_the_schema() {
    let schema = json!({"type": "object", "properties": {"x": {"type": "string", "not": {"enum": ["latest"]}}}});
    assert!(spec_errors(schema.clone(), json!({"x": "v1.2.3"})).is_empty());
    assert_eq!(
        spec_errors(schema, json!({"x": "latest"})),
        [r#"spec.x: Invalid value: "": "spec.x" must not validate the schema (not)"#]
    );
}

#[test]
fn list_map_duplicate_keys_are_reported_at_the_later_entry() {
    let schema = json!({"type": "object", "properties": {"levels": {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"}, "timeout": {"type": "string"}
        }}
    }}});
    assert!(
        spec_errors(
            schema.clone(),
            json!({"levels": [{"name": "l1"}, {"name": "l2"}]})
        )
        .is_empty()
    );
    assert_eq!(
        spec_errors(
            schema,
            json!({"levels": [{"name": "l1"}, {"name": "l2"}, {"name": "l1", "timeout": "5m"}]})
        ),
        [r#"spec.levels[2]: Duplicate value: map[string]interface {}{"name":"l1"}"#]
    );
}

#[test]
fn list_map_with_composite_keys_compares_all_keys() {
    let schema = json!({"type": "object", "properties": {"ports": {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["port", "protocol"],
        "items": {"type": "object", "properties": {
            "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}
        }}
    }}});
    assert!(
        spec_errors(
            schema.clone(),
            json!({"ports": [{"port": 53}, {"port": 53, "protocol": "UDP"}]})
        )
        .is_empty()
    );
    assert_eq!(
        spec_errors(
            schema,
            json!({"ports": [{"port": 53}, {"port": 53, "protocol": "TCP"}]})
        ),
        [r#"spec.ports[1]: Duplicate value: map[string]interface {}{"port":53, "protocol":"TCP"}"#]
    );
}

#[test]
fn list_set_duplicates_are_reported_with_the_value() {
    let schema = json!({"type": "object", "properties": {"targets": {
        "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}
    }}});
    assert_eq!(
        spec_errors(
            schema,
            json!({"targets": ["database", "images", "database"]})
        ),
        [r#"spec.targets[2]: Duplicate value: "database""#]
    );
}
