//! `--data-dir` persistence: the whole store as one JSON snapshot (`state.json`), written
//! atomically (temp file + rename) shortly after changes and on shutdown.

use crate::crd;
use crate::store::Store;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const CRD_STORAGE: &str = "customresourcedefinitions.apiextensions.k8s.io";

pub fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Serializes the store. Called with the lock held; the heavy part (writing) happens outside.
pub fn snapshot(store: &Store) -> Value {
    let objects: Vec<Value> = store
        .all_objects()
        .into_iter()
        .map(|(storage, obj)| json!({"storage": storage, "object": *obj}))
        .collect();
    json!({"resourceVersion": store.current_rv(), "objects": objects})
}

pub fn write(dir: &Path, snapshot: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(snapshot)?)?;
    std::fs::rename(tmp, state_file(dir))
}

/// Loads a snapshot into an empty store, re-registering the CRDs it contains.
pub fn load(dir: &Path, store: &mut Store) -> anyhow::Result<()> {
    let path = state_file(dir);
    if !path.exists() {
        return Ok(());
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let objects = doc
        .get("objects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for entry in &objects {
        let storage = entry
            .get("storage")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let obj = entry.get("object").cloned().unwrap_or_default();
        if storage == CRD_STORAGE {
            match crd::resource_types(&obj) {
                Ok(types) => types.into_iter().for_each(|t| store.registry.insert(t)),
                Err(e) => {
                    tracing::warn!(error = %e.message, "stored CRD no longer valid; not serving it")
                }
            }
        }
        store.load(storage, obj);
    }
    store.set_rv(
        doc.get("resourceVersion")
            .and_then(Value::as_u64)
            .unwrap_or(1),
    );
    Ok(())
}
