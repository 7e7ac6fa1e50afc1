//! Resolving what a spec references: Secrets (and the keys it needs) and other tend objects.
//! Secrets are read one by one with `get` through the shared [`SecretCache`] — tend never lists
//! or watches Secrets — and their values are never logged, copied into status, or put in
//! messages: only names and key names.

use std::fmt;

use kube::api::{ApiResource, DynamicObject};
use kube::{Api, Client};
use tend_crds::conditions::reasons;
use tend_crds::references::{Reference, Target};

use crate::error::Result;
use crate::secrets::{SecretCache, secret_key};

/// The first reference that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceProblem {
    SecretNotFound {
        field: String,
        name: String,
    },
    SecretKeyMissing {
        field: String,
        name: String,
        key: String,
    },
    ObjectNotFound {
        field: String,
        kind: &'static str,
        name: String,
    },
}

impl ReferenceProblem {
    /// Condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::SecretNotFound { .. } => reasons::SECRET_NOT_FOUND,
            Self::SecretKeyMissing { .. } => reasons::SECRET_KEY_MISSING,
            Self::ObjectNotFound { .. } => reasons::REFERENCE_NOT_FOUND,
        }
    }
}

impl fmt::Display for ReferenceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretNotFound { field, name } => write!(f, "{field}: Secret {name:?} not found"),
            Self::SecretKeyMissing { field, name, key } => {
                write!(f, "{field}: Secret {name:?} has no key {key:?}")
            }
            Self::ObjectNotFound { field, kind, name } => {
                write!(f, "{field}: {kind} {name:?} not found")
            }
        }
    }
}

/// Checks every reference in order and returns the first problem. Secrets come from `secrets`,
/// so a Secret named by several fields (one SMTP Secret for many routes) or by many objects is
/// read once per the cache's time to live.
pub async fn resolve(
    client: &Client,
    secrets: &SecretCache,
    namespace: &str,
    references: &[Reference],
) -> Result<Option<ReferenceProblem>> {
    for reference in references {
        let field = reference.field.clone();
        match &reference.target {
            Target::Secret { name, keys } => {
                let Some(secret) = secrets.get(namespace, name).await? else {
                    return Ok(Some(ReferenceProblem::SecretNotFound {
                        field,
                        name: name.clone(),
                    }));
                };
                for key in keys {
                    if secret_key(&secret, key).is_none() {
                        return Ok(Some(ReferenceProblem::SecretKeyMissing {
                            field,
                            name: name.clone(),
                            key: key.clone(),
                        }));
                    }
                }
            }
            Target::Object { kind, name } => {
                if !object_exists(client, namespace, kind, name).await? {
                    return Ok(Some(ReferenceProblem::ObjectNotFound {
                        field,
                        kind,
                        name: name.clone(),
                    }));
                }
            }
        }
    }
    Ok(None)
}

/// Whether the tend object `kind`/`name` exists (metadata only; any tend kind).
async fn object_exists(client: &Client, namespace: &str, kind: &str, name: &str) -> Result<bool> {
    let Some(plural) = tend_crds::plural_of(kind) else {
        tracing::warn!(kind, "reference to a kind tend does not know");
        return Ok(false);
    };
    let resource = ApiResource {
        group: tend_crds::GROUP.into(),
        version: tend_crds::VERSION.into(),
        api_version: format!("{}/{}", tend_crds::GROUP, tend_crds::VERSION),
        kind: kind.into(),
        plural: plural.into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    Ok(api.get_metadata_opt(name).await?.is_some())
}
