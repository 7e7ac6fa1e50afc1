//! A minimal `/openapi/v3`: one document per group-version listing each resource's patch
//! operation with its `fieldValidation`/`dryRun` parameters. kubectl reads it to learn that the
//! server validates fields itself (`--validate=strict` then sends `fieldValidation=Strict`
//! instead of validating client-side).
//!
//! Custom resources also get their schema as a component tagged with
//! `x-kubernetes-group-version-kind`, as kube-apiserver publishes it: `kubectl explain` (which
//! reads OpenAPI v3 since kubectl 1.27) finds a kind's schema by that tag, then walks its
//! `properties` to print field descriptions.

use crate::registry::Registry;
use serde_json::{Map, Value, json};

fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

pub fn group_version_doc(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}
    ]);
    let mut found = false;
    let mut schemas = Map::new();
    for t in reg
        .all()
        .filter(|t| t.group == group && t.version == version)
    {
        found = true;
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        if let Some(compiled) = &t.schema {
            schemas.insert(
                component_name(&t.group, &t.version, &t.kind),
                published_schema(compiled.source(), &gvk),
            );
        }
        let base = format!("/{}", gv_path(group, version));
        let item = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{base}/{}/{{name}}", t.plural)
        };
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", t.kind),
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"200": {"description": "OK"}}
            })
        };
        let collection = item.trim_end_matches("/{name}").to_string();
        paths.insert(item, json!({"patch": op("patch"), "put": op("put")}));
        paths.insert(collection, json!({"post": op("post")}));
    }
    if !found {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-devcluster"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

/// `tend.dev`, `v1alpha1`, `BackupPolicy` → `dev.tend.v1alpha1.BackupPolicy` (the apiserver's
/// reversed-group naming of definitions).
fn component_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// A CRD version's schema as the apiserver publishes it: tagged with its GVK, with the type
/// meta fields documented even when the CRD leaves them bare.
fn published_schema(source: &Value, gvk: &Value) -> Value {
    let mut schema = source.clone();
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    object.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
    let properties = object
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(properties) = properties {
        for (field, description) in [
            (
                "apiVersion",
                "APIVersion defines the versioned schema of this representation of an object.",
            ),
            (
                "kind",
                "Kind is a string value representing the REST resource this object represents.",
            ),
            ("metadata", "Standard object's metadata."),
        ] {
            let entry = properties.entry(field).or_insert_with(
                || json!({"type": if field == "metadata" { "object" } else { "string" }}),
            );
            if let Some(entry) = entry.as_object_mut() {
                entry
                    .entry("description")
                    .or_insert_with(|| json!(description));
            }
        }
    }
    schema
}

pub fn root(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let doc = group_version_doc(reg, &group, &v)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let p = gv_path(&group, &v);
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", fnv(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}
