use crate::{admit, lines};
use serde_json::json;

#[test]
fn immutable_spec_refuses_change_on_update_but_allows_create() {
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "spec is immutable"}],
        "properties": {"backup": {"type": "string"}}
    }}});
    let old = json!({"apiVersion": "tend.dev/v1alpha1", "kind": "RestoreRequest", "metadata": {"name": "r"}, "spec": {"backup": "a"}});
    let mut created = old.clone();
    assert!(admit(&schema, &mut created, None).causes.is_empty());
    let mut changed = json!({"apiVersion": "tend.dev/v1alpha1", "kind": "RestoreRequest", "metadata": {"name": "r"}, "spec": {"backup": "b"}});
    let outcome = admit(&schema, &mut changed, Some(&old));
    assert_eq!(
        lines(&outcome.causes),
        [r#"spec: Invalid value: "object": spec is immutable"#]
    );
}
