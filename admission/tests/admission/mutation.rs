//! Pruning of unknown fields and application of defaults, in place.

use crate::admit;
use serde_json::json;

#[test]
fn unknown_fields_are_pruned_and_reported_by_path() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "schedule": {"type": "string"},
        "levels": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
    }}}});
    let mut object = json!({
        "apiVersion": "tend.dev/v1alpha1", "kind": "BackupPolicy", "metadata": {"name": "n", "labels": {"a": "b"}},
        "spec": {"schedule": "@daily", "foo": 1, "levels": [{"name": "l1", "bar": true}]},
        "extra": {}
    });
    let outcome = admit(&schema, &mut object, None);
    assert!(outcome.causes.is_empty());
    assert_eq!(
        outcome.unknown_fields,
        ["extra", "spec.foo", "spec.levels[0].bar"]
    );
    assert_eq!(
        object,
        json!({
            "apiVersion": "tend.dev/v1alpha1", "kind": "BackupPolicy", "metadata": {"name": "n", "labels": {"a": "b"}},
            "spec": {"schedule": "@daily", "levels": [{"name": "l1"}]}
        })
    );
}

#[test]
fn preserve_unknown_fields_keeps_the_subtree() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "settings": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "anything": {"x-kubernetes-preserve-unknown-fields": true}
    }}}});
    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {
        "settings": {"free": {"deep": [1, 2]}, "known": {"a": "x", "b": "pruned"}},
        "anything": [{"x": 1}]
    }});
    let outcome = admit(&schema, &mut object, None);
    assert_eq!(outcome.unknown_fields, ["spec.settings.known.b"]);
    assert_eq!(object["spec"]["settings"]["free"], json!({"deep": [1, 2]}));
    assert_eq!(object["spec"]["anything"], json!([{"x": 1}]));
}

#[test]
fn embedded_resource_keeps_type_meta_and_metadata() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
            "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}}}
    }}}});
    let template = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {"template": template.clone()}});
    let outcome = admit(&schema, &mut object, None);
    assert!(
        outcome.causes.is_empty() && outcome.unknown_fields.is_empty(),
        "{outcome:?}"
    );
    assert_eq!(object["spec"]["template"], template);
}

#[test]
fn absent_fields_get_defaults_including_defaults_nested_in_defaults() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "retention": {"type": "object", "default": {}, "properties": {
            "keepDaily": {"type": "integer", "default": 7},
            "keepWeekly": {"type": "integer", "default": 4}
        }},
        "suspend": {"type": "boolean", "default": false},
        "levels": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "timeout": {"type": "string", "default": "15m"}
        }}}
    }}}});
    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {
        "retention": {"keepWeekly": 8},
        "levels": [{"name": "l1"}, {"name": "l2", "timeout": "1h"}]
    }});
    assert!(admit(&schema, &mut object, None).causes.is_empty());
    assert_eq!(
        object["spec"],
        json!({
            "retention": {"keepDaily": 7, "keepWeekly": 8},
            "suspend": false,
            "levels": [{"name": "l1", "timeout": "15m"}, {"name": "l2", "timeout": "1h"}]
        })
    );

    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {}});
    admit(&schema, &mut object, None);
    assert_eq!(
        object["spec"]["retention"],
        json!({"keepDaily": 7, "keepWeekly": 4})
    );
}

#[test]
fn nulls_are_defaulted_kept_or_dropped_by_nullability() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["c"], "properties": {
        "a": {"type": "string", "default": "dflt"},
        "b": {"type": "string", "nullable": true, "default": "dflt"},
        "c": {"type": "string"}
    }}}});
    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {"a": null, "b": null, "c": null}});
    let outcome = admit(&schema, &mut object, None);
    assert_eq!(object["spec"], json!({"a": "dflt", "b": null}));
    // A null for a non-nullable field without default means "not set".
    assert_eq!(crate::lines(&outcome.causes), ["spec.c: Required value"]);
}

#[test]
fn defaults_are_applied_before_validation() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["mode"], "properties": {
        "mode": {"type": "string", "enum": ["scratch", "inPlace"], "default": "scratch"}
    }}}});
    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {}});
    assert!(admit(&schema, &mut object, None).causes.is_empty());
    assert_eq!(object["spec"]["mode"], "scratch");
}

#[test]
fn additional_properties_true_keeps_entries_and_false_prunes_them() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": true},
        "closed": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}}
    }}}});
    let mut object = json!({"apiVersion": "v", "kind": "K", "metadata": {}, "spec": {
        "labels": {"team": "ops", "tier": {"nested": 1}},
        "closed": {"a": "kept", "b": "dropped"}
    }});
    let outcome = admit(&schema, &mut object, None);
    assert!(outcome.causes.is_empty(), "{outcome:?}");
    assert_eq!(outcome.unknown_fields, ["spec.closed.b"]);
    assert_eq!(
        object["spec"]["labels"],
        json!({"team": "ops", "tier": {"nested": 1}})
    );
    assert_eq!(object["spec"]["closed"], json!({"a": "kept"}));
}
