//! Every example in `examples/` is admitted by the generated CRDs (schema + CEL, as the
//! apiserver does) and passes the reconciler's validation; every object in
//! `tests/invalid/` is refused with a message that names the offending field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tend_admission::Schema;
use tend_crds::validation::Validate;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Compiled schema of every kind, by kind name.
fn schemas() -> BTreeMap<String, Schema> {
    tend_crds::crds()
        .into_iter()
        .map(|crd| {
            let version = &crd.spec.versions[0];
            let schema = serde_json::to_value(
                version
                    .schema
                    .as_ref()
                    .unwrap()
                    .open_api_v3_schema
                    .as_ref()
                    .unwrap(),
            )
            .unwrap();
            let compiled = Schema::compile(&schema).unwrap_or_else(|problems| {
                panic!(
                    "{} schema does not compile: {problems:?}",
                    crd.spec.names.kind
                )
            });
            (crd.spec.names.kind.clone(), compiled)
        })
        .collect()
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            serde_yaml::from_value::<Value>(serde_yaml::Value::deserialize(doc).unwrap()).unwrap()
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

use serde::Deserialize;

/// Problems the reconciler's own validation finds, after admission defaults were applied.
fn semantic_errors(kind: &str, object: &Value) -> Result<Vec<String>, String> {
    fn check<T: serde::de::DeserializeOwned + kube::Resource>(
        object: &Value,
        spec: impl Fn(&T) -> Vec<String>,
    ) -> Result<Vec<String>, String> {
        let typed: T = serde_json::from_value(object.clone())
            .map_err(|e| format!("does not deserialize: {e}"))?;
        Ok(spec(&typed))
    }
    fn msgs(errors: Vec<tend_crds::validation::FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }
    use tend_crds::*;
    match kind {
        "BackupPolicy" => check::<BackupPolicy>(object, |o| msgs(o.spec.validate())),
        "RestoreRequest" => check::<RestoreRequest>(object, |o| msgs(o.spec.validate())),
        "AlertRule" => check::<AlertRule>(object, |o| msgs(o.spec.validate())),
        "EscalationPolicy" => check::<EscalationPolicy>(object, |o| msgs(o.spec.validate())),
        "IncidentRecord" => check::<IncidentRecord>(object, |o| msgs(o.spec.validate())),
        "SupportChannel" => check::<SupportChannel>(object, |o| msgs(o.spec.validate())),
        "LogPolicy" => check::<LogPolicy>(object, |o| msgs(o.spec.validate())),
        other => Err(format!("unknown kind {other}")),
    }
}

#[test]
fn every_example_is_admitted_and_valid() {
    let schemas = schemas();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        for mut doc in documents(&path) {
            let kind = doc["kind"].as_str().unwrap().to_string();
            let Some(schema) = schemas.get(&kind) else {
                continue;
            };
            let outcome = schema.admit(&mut doc, None);
            assert!(
                outcome.causes.is_empty(),
                "{}: {kind} refused: {:?}",
                path.display(),
                outcome.causes
            );
            assert!(
                outcome.unknown_fields.is_empty(),
                "{}: unknown fields {:?}",
                path.display(),
                outcome.unknown_fields
            );
            let errors = semantic_errors(&kind, &doc).unwrap();
            assert!(errors.is_empty(), "{}: {errors:?}", path.display());
            seen.push(kind);
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        7,
        "examples/ must hold one object of every kind, found {seen:?}"
    );
}

/// Each file in `tests/invalid/` starts with `# expect: <text>`: the refusal (from admission or,
/// when admission lets it through, from the reconciler's validation) must contain that text,
/// which names the field. A `# validation: <text>` line adds that the reconciler's own
/// validation refuses it too, with that text: admission and the controller agree.
#[test]
fn invalid_corpus_is_refused_naming_the_field() {
    let schemas = schemas();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()))
            .to_string();
        let validation_expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# validation: "))
            .map(str::to_string);
        let mut doc = documents(&path).remove(0);
        let kind = doc["kind"].as_str().unwrap().to_string();
        let outcome = schemas[&kind].admit(&mut doc, None);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(validation_expect) = validation_expect {
            match semantic_errors(&kind, &doc) {
                Ok(errors) if errors.iter().any(|m| m.contains(&validation_expect)) => {}
                other => failures.push(format!(
                    "{name}: the reconciler's validation gave {other:?}, none contains {validation_expect:?}"
                )),
            }
        }
        let mut messages: Vec<String> = outcome
            .causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        if messages.is_empty() {
            match semantic_errors(&kind, &doc) {
                Ok(errors) => messages = errors,
                Err(e) => messages.push(e),
            }
        }
        if messages.is_empty() {
            failures.push(format!(
                "{name}: accepted, expected a refusal containing {expect:?}"
            ));
        } else if !messages.iter().any(|m| m.contains(&expect)) {
            failures.push(format!(
                "{name}: refused with {messages:?}, none contains {expect:?}"
            ));
        }
        checked += 1;
    }
    assert!(checked >= 15, "the corpus shrank to {checked} files");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn example(name: &str) -> Value {
    documents(&repo().join("examples").join(name)).remove(0)
}

#[test]
fn restore_request_spec_is_immutable() {
    let schemas = schemas();
    let schema = &schemas["RestoreRequest"];
    let mut old = example("restorerequest.yaml");
    assert!(schema.admit(&mut old, None).causes.is_empty());

    let mut changed = old.clone();
    changed["spec"]["restorePoint"] = serde_json::json!({"id": "20261101T020000Z-abcd"});
    let causes = schema.admit(&mut changed, Some(&old)).causes;
    assert!(
        causes
            .iter()
            .any(|c| c.message.contains("spec is immutable")),
        "spec change was not refused: {causes:?}"
    );

    // Status and metadata may change.
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = serde_json::json!({"team": "ops"});
    relabelled["status"] = serde_json::json!({"phase": "Running"});
    let causes = schema.admit(&mut relabelled, Some(&old)).causes;
    assert!(causes.is_empty(), "{causes:?}");
}

#[test]
fn defaults_are_applied_at_admission() {
    let schemas = schemas();
    let mut doc = serde_json::json!({
        "apiVersion": "tend.dev/v1alpha1", "kind": "BackupPolicy",
        "metadata": {"name": "minimal", "namespace": "fieldbook"},
        "spec": {
            "schedule": "@daily",
            "targets": {"objects": {"filesystem": {"path": "/srv/photos"}}},
            "repository": {"filesystem": {"path": "/srv/backups"}},
            "encryption": {"recipientsSecretRef": {"name": "age", "key": "recipients"}}
        }
    });
    let outcome = schemas["BackupPolicy"].admit(&mut doc, None);
    assert!(outcome.causes.is_empty(), "{:?}", outcome.causes);
    assert_eq!(doc["spec"]["retention"]["keepDaily"], 7);
    assert_eq!(doc["spec"]["timeZone"], "UTC");
    assert_eq!(doc["spec"]["startingDeadline"], "1h");
    let policy: tend_crds::BackupPolicy = serde_json::from_value(doc).unwrap();
    assert!(policy.spec.validate().is_empty());
}
