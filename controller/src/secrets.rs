//! The one way tend reads Secrets: `get` by name (tend never lists or watches Secrets), each
//! read once per step. Values go only into the engine's configuration; errors and logs name the
//! field, the Secret and the key, never a value.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tend_crds::types::SecretKeyRef;

use crate::error::StepError;

/// Reads Secrets of one namespace, each once.
pub struct Secrets {
    api: Api<Secret>,
    cache: HashMap<String, Secret>,
}

impl Secrets {
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            cache: HashMap::new(),
        }
    }

    async fn secret(&mut self, field: &str, name: &str) -> Result<&Secret, StepError> {
        if !self.cache.contains_key(name) {
            let secret = self
                .api
                .get_opt(name)
                .await
                .map_err(|e| StepError::Setup(format!("{field}: reading Secret {name:?}: {e}")))?
                .ok_or_else(|| StepError::Setup(format!("{field}: Secret {name:?} not found")))?;
            self.cache.insert(name.to_owned(), secret);
        }
        Ok(&self.cache[name])
    }

    /// One key of a Secret as UTF-8 text.
    pub async fn value(
        &mut self,
        field: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, StepError> {
        let secret = self.secret(field, name).await?;
        secret_key(secret, key)
            .map(|b| {
                String::from_utf8(b.to_vec()).map_err(|_| {
                    StepError::Setup(format!(
                        "{field}: key {key:?} of Secret {name:?} is not UTF-8 text"
                    ))
                })
            })
            .transpose()
    }

    pub async fn required(
        &mut self,
        field: &str,
        name: &str,
        key: &str,
    ) -> Result<String, StepError> {
        self.value(field, name, key)
            .await?
            .ok_or_else(|| StepError::Setup(format!("{field}: Secret {name:?} has no key {key:?}")))
    }

    pub async fn key_ref(&mut self, field: &str, r: &SecretKeyRef) -> Result<String, StepError> {
        self.required(field, &r.name, &r.key).await
    }
}

/// The bytes of one key of a Secret, from `data` or (as written, before the API server merges
/// it) `stringData`.
pub fn secret_key<'s>(secret: &'s Secret, key: &str) -> Option<&'s [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(String::as_bytes)
        })
}
