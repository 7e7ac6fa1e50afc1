//! Applying YAML files straight into the store (server-side apply, in process), so the dev
//! stack comes up without kubectl. Namespaces and CRDs go first, like `kubectl apply` users
//! expect from a directory.

use crate::DevCluster;
use crate::handlers::view;
use crate::{meta, ops};
use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

const MANAGER: &str = "devcluster-apply";

/// What [`DevCluster::apply_paths`] did: `kind/name created|configured` lines, and failures.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: Vec<String>,
    pub failed: Vec<String>,
}

/// Documents from a file or a directory of `*.yaml`/`*.yml`/`*.json` (not recursive).
pub fn read_documents(path: &Path) -> anyhow::Result<Vec<Value>> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
            })
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    let mut docs = vec![];
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        for d in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(d).with_context(|| format!("parsing {}", f.display()))?;
            match v.get("kind").and_then(Value::as_str) {
                None if v.is_null() => {}
                Some("List") => docs.extend(
                    v.get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                ),
                _ => docs.push(v),
            }
        }
    }
    Ok(docs)
}

fn rank(doc: &Value) -> u8 {
    match doc.get("kind").and_then(Value::as_str) {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    }
}

impl DevCluster {
    /// Applies every document under `paths`, namespaces and CRDs first.
    pub fn apply_paths(&self, paths: &[PathBuf]) -> ApplyReport {
        let mut report = ApplyReport::default();
        let mut docs = vec![];
        for p in paths {
            match read_documents(p) {
                Ok(d) => docs.extend(d),
                Err(e) => report.failed.push(format!("{}: {e:#}", p.display())),
            }
        }
        docs.sort_by_key(rank);
        for doc in docs {
            match self.apply_one(&doc) {
                Ok(line) => report.applied.push(line),
                Err(e) => report
                    .failed
                    .push(format!("{}/{}: {e}", kind(&doc), meta::name(&doc))),
            }
        }
        report
    }

    /// Creates a namespace if it does not exist yet.
    pub fn ensure_namespace(&self, name: &str) {
        crate::ensure_namespace(&self.shared, name);
    }

    fn apply_one(&self, doc: &Value) -> anyhow::Result<String> {
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = kind(doc);
        let mut store = self.shared.store.lock().expect("store lock");
        let rt = store
            .registry
            .by_kind(api_version, kind)
            .with_context(|| format!("no resource type serves {api_version} {kind}"))?;
        let ns = if rt.namespaced {
            let n = meta::namespace(doc);
            if n.is_empty() {
                "default".to_string()
            } else {
                n.to_string()
            }
        } else {
            String::new()
        };
        let key = (ns.clone(), meta::name(doc).to_string());
        let opts = ops::WriteOpts::default();
        let label = format!("{}/{}", rt.singular, key.1);
        match store.get(&rt.storage, &key) {
            None => {
                let schema = crate::ssa::schema_for(&store, &rt);
                let obj = crate::ssa::apply(None, doc, &apply_request(&rt, schema.as_ref()))
                    .map_err(|e| anyhow::anyhow!(e.message))?;
                ops::create(&mut store, &rt, &ns, obj, &opts)
                    .map_err(|e| anyhow::anyhow!(e.message))?;
                Ok(format!("{label} created"))
            }
            Some(live) => {
                let mut live = view(&rt, &live);
                if let Some(md) = live.get_mut("metadata").and_then(Value::as_object_mut) {
                    md.remove("resourceVersion");
                }
                let schema = crate::ssa::schema_for(&store, &rt);
                let merged =
                    crate::ssa::apply(Some(&live), doc, &apply_request(&rt, schema.as_ref()))
                        .map_err(|e| anyhow::anyhow!(e.message))?;
                ops::update(&mut store, &rt, &key, merged, "", &opts)
                    .map_err(|e| anyhow::anyhow!(e.message))?;
                Ok(format!("{label} configured"))
            }
        }
    }
}

/// Files applied at start-up win every conflict, as `kubectl apply --server-side --force-conflicts`.
fn apply_request<'a>(
    rt: &crate::registry::ResourceType,
    schema: Option<&'a Value>,
) -> crate::ssa::ApplyRequest<'a> {
    crate::ssa::ApplyRequest {
        manager: MANAGER,
        force: true,
        scope: crate::ssa::Scope {
            subresource: "",
            status_separate: rt.status_subresource
                && rt.flavor != crate::registry::Flavor::Namespace,
        },
        schema,
    }
}

fn kind(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or_default()
}
