//! What an object points at: Secrets (with the keys it needs) and other tend objects. The
//! reconcilers check these exist before reporting `Ready`, and report the first missing one
//! by field path.

use crate::types::{NotificationRoute, SecretKeyRef, SecretRef, StorageLocation};

/// One reference from a spec to another object in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Field path in the spec, e.g. `spec.encryption.recipientsSecretRef`.
    pub field: String,
    /// What is referenced.
    pub target: Target,
}

/// The referenced object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A Secret that must exist and hold these keys.
    Secret { name: String, keys: Vec<String> },
    /// A tend object of the given kind.
    Object { kind: &'static str, name: String },
}

impl Reference {
    pub fn secret_key(field: &str, r: &SecretKeyRef) -> Self {
        Self {
            field: field.into(),
            target: Target::Secret {
                name: r.name.clone(),
                keys: vec![r.key.clone()],
            },
        }
    }

    pub fn secret(field: &str, r: &SecretRef, keys: &[&str]) -> Self {
        Self {
            field: field.into(),
            target: Target::Secret {
                name: r.name.clone(),
                keys: keys.iter().map(|k| k.to_string()).collect(),
            },
        }
    }

    pub fn object(field: &str, kind: &'static str, name: &str) -> Self {
        Self {
            field: field.into(),
            target: Target::Object {
                kind,
                name: name.into(),
            },
        }
    }
}

/// Implemented by every spec: the references the reconciler must resolve.
pub trait References {
    fn references(&self) -> Vec<Reference>;
}

const S3_KEYS: &[&str] = &["accessKeyId", "secretAccessKey"];

impl StorageLocation {
    /// References of a storage location found at `field`.
    pub fn references(&self, field: &str) -> Vec<Reference> {
        self.s3
            .iter()
            .filter_map(|s3| s3.credentials_secret_ref.as_ref())
            .map(|creds| {
                Reference::secret(&format!("{field}.s3.credentialsSecretRef"), creds, S3_KEYS)
            })
            .collect()
    }
}

impl NotificationRoute {
    /// References of a notification route found at `field`.
    pub fn references(&self, field: &str) -> Vec<Reference> {
        let mut refs = Vec::new();
        if let Some(email) = &self.email {
            refs.push(Reference::secret(
                &format!("{field}.email.smtpSecretRef"),
                &email.smtp_secret_ref,
                &["host", "port", "from"],
            ));
        }
        for (kind, hook) in [
            ("slack", &self.slack),
            ("teams", &self.teams),
            ("webhook", &self.webhook),
        ] {
            if let Some(hook) = hook {
                refs.push(Reference::secret_key(
                    &format!("{field}.{kind}.urlSecretRef"),
                    &hook.url_secret_ref,
                ));
            }
        }
        refs
    }
}

/// References of a list of routes at `field` (`field[i]...`).
pub fn route_references(field: &str, routes: &[NotificationRoute]) -> Vec<Reference> {
    routes
        .iter()
        .enumerate()
        .flat_map(|(i, route)| route.references(&format!("{field}[{i}]")))
        .collect()
}
