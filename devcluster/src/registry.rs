//! The resource types devcluster serves: the built-in kinds tend and kubectl need, plus one entry
//! per served version of every CustomResourceDefinition that has been created.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How objects of a type are stored and presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Namespace,
    Secret,
    ConfigMap,
    /// core/v1 Event: the storage form of every event.
    CoreEvent,
    /// events.k8s.io/v1 Event: a second view of the core/v1 store.
    EventsV1,
    Lease,
    Crd,
    Custom,
}

#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub json_path: String,
    pub priority: i64,
}

/// One group/version/resource that the server answers for.
#[derive(Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    pub flavor: Flavor,
    /// Objects of all versions of one kind share a store under this key.
    pub storage: String,
    pub printer_columns: Vec<PrinterColumn>,
    pub schema: Option<Arc<crate::admit::Compiled>>,
    /// Tracks generation (spec changes) — custom resources and CRDs.
    pub has_generation: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The group-qualified resource name used in error messages, e.g. `backuppolicies.tend.dev`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    pub fn discovery_entries(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

#[allow(clippy::too_many_arguments)] // a table of built-ins reads best one call per row
fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    flavor: Flavor,
    storage: &str,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        status_subresource: matches!(flavor, Flavor::Namespace | Flavor::Crd),
        flavor,
        storage: storage.into(),
        printer_columns: vec![],
        schema: None,
        has_generation: flavor == Flavor::Crd,
    }
}

/// All resource types, keyed by `(group, version, plural)`.
#[derive(Clone, Default)]
pub struct Registry {
    types: BTreeMap<(String, String, String), Arc<ResourceType>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        let mut ev = builtin(
            "",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            Flavor::CoreEvent,
            "events",
        );
        ev.categories = vec![];
        for t in [
            builtin(
                "",
                "v1",
                "Namespace",
                "namespaces",
                false,
                &["ns"],
                Flavor::Namespace,
                "namespaces",
            ),
            builtin(
                "",
                "v1",
                "Secret",
                "secrets",
                true,
                &[],
                Flavor::Secret,
                "secrets",
            ),
            builtin(
                "",
                "v1",
                "ConfigMap",
                "configmaps",
                true,
                &["cm"],
                Flavor::ConfigMap,
                "configmaps",
            ),
            ev,
            builtin(
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                true,
                &["ev"],
                Flavor::EventsV1,
                "events",
            ),
            builtin(
                "coordination.k8s.io",
                "v1",
                "Lease",
                "leases",
                true,
                &[],
                Flavor::Lease,
                "leases",
            ),
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
                &["crd", "crds"],
                Flavor::Crd,
                "customresourcedefinitions.apiextensions.k8s.io",
            ),
        ] {
            r.insert(t);
        }
        r
    }

    pub fn insert(&mut self, t: ResourceType) {
        let key = (t.group.clone(), t.version.clone(), t.plural.clone());
        self.types.insert(key, Arc::new(t));
    }

    /// Removes every version served under a storage key (a deleted CRD).
    pub fn remove_storage(&mut self, storage: &str) {
        self.types.retain(|_, t| t.storage != storage);
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// The type whose kind and apiVersion match an object (used for apply and owner lookups).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .values()
            .find(|t| t.kind == kind && t.api_version() == api_version)
            .cloned()
    }

    /// Groups in discovery order: core first, then by name, each with its versions.
    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values() {
            let versions = out.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        out
    }
}
