//! CustomResourceDefinitions: checking a CRD, turning it into served resource types, and the
//! status (`Established`, `NamesAccepted`) a real API server reports.

use crate::admit::Compiled;
use crate::registry::{Flavor, PrinterColumn, ResourceType};
use crate::status::ApiError;
use serde_json::{Value, json};
use std::sync::Arc;

fn s(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn cause(field: &str, message: impl Into<String>) -> (String, String, String) {
    (
        "FieldValueInvalid".to_string(),
        field.to_string(),
        message.into(),
    )
}

/// The resource types a CRD serves (one per served version), or the 422 it deserves.
pub fn resource_types(crd: &Value) -> Result<Vec<ResourceType>, ApiError> {
    let name = s(crd, "/metadata/name");
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let kind = s(crd, "/spec/names/kind");
    let scope = s(crd, "/spec/scope");
    let mut causes = vec![];
    if group.is_empty() {
        causes.push(cause("spec.group", "Required value"));
    }
    if plural.is_empty() {
        causes.push(cause("spec.names.plural", "Required value"));
    }
    if kind.is_empty() {
        causes.push(cause("spec.names.kind", "Required value"));
    }
    if name != format!("{plural}.{group}") {
        causes.push(cause(
            "metadata.name",
            format!("must be spec.names.plural+\".\"+spec.group: {plural}.{group}"),
        ));
    }
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(cause(
            "spec.scope",
            "Unsupported value: must be \"Namespaced\" or \"Cluster\"",
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "spec.versions",
            "Required value: must have exactly one version marked as storage version",
        ));
    }
    if versions
        .iter()
        .filter(|v| v.get("storage") == Some(&json!(true)))
        .count()
        != 1
    {
        causes.push(cause(
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    let mut out = vec![];
    for (i, v) in versions.iter().enumerate() {
        if v.get("served") != Some(&json!(true)) {
            continue;
        }
        let schema = match v.pointer("/schema/openAPIV3Schema") {
            Some(sch) => match Compiled::compile(sch) {
                Ok(c) => Some(Arc::new(c)),
                Err(errs) => {
                    for e in errs {
                        causes.push(cause(
                            &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                            e,
                        ));
                    }
                    None
                }
            },
            None => None,
        };
        let printer_columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: s(c, "/name"),
                        type_: s(c, "/type"),
                        format: s(c, "/format"),
                        description: s(c, "/description"),
                        json_path: s(c, "/jsonPath"),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let singular = s(crd, "/spec/names/singular");
        out.push(ResourceType {
            group: group.clone(),
            version: s(v, "/name"),
            kind: kind.clone(),
            plural: plural.clone(),
            singular: if singular.is_empty() {
                kind.to_lowercase()
            } else {
                singular
            },
            namespaced: scope == "Namespaced",
            short_names: strings(crd, "/spec/names/shortNames"),
            categories: strings(crd, "/spec/names/categories"),
            status_subresource: v.pointer("/subresources/status").is_some(),
            flavor: Flavor::Custom,
            storage: name.clone(),
            printer_columns,
            schema,
            has_generation: true,
        });
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "CustomResourceDefinition",
            "apiextensions.k8s.io",
            &name,
            causes,
        ));
    }
    Ok(out)
}

/// Sets the status a CRD has once its names are accepted and it is being served.
pub fn set_established(crd: &mut Value) {
    let now = crate::meta::now_rfc3339();
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage") == Some(&json!(true)))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let names = crd.pointer("/spec/names").cloned().unwrap_or_default();
    crd["status"] = json!({
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    });
}
