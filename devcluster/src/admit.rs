//! Admission of custom resources: the CRD's openAPIV3Schema and CEL rules, evaluated by
//! `tend-admission`. This module only adapts its outcome to API errors, and keeps the schema as
//! written for `/openapi/v3` (what `kubectl explain` reads).

use crate::status::ApiError;
use serde_json::Value;

/// A compiled version schema of a CRD.
pub struct Compiled {
    inner: tend_admission::Schema,
    source: Value,
}

impl Compiled {
    pub fn compile(schema: &Value) -> Result<Compiled, Vec<String>> {
        tend_admission::Schema::compile(schema).map(|inner| Compiled {
            inner,
            source: schema.clone(),
        })
    }

    /// The `openAPIV3Schema` this was compiled from.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// Defaults, prunes and validates `obj`; returns the unknown fields that were pruned, or the
    /// 422 the API server would answer.
    pub fn admit(
        &self,
        kind: &str,
        group: &str,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let outcome = self.inner.admit(obj, old);
        if !outcome.is_valid() {
            let name = crate::meta::name(obj).to_string();
            let body = tend_admission::invalid_status(kind, group, &name, &outcome.causes);
            return Err(ApiError::from_status(body));
        }
        Ok(outcome.unknown_fields)
    }
}
