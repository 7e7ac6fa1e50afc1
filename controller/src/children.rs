//! RestoreRequests that tend creates on behalf of another object — a policy's drills, an alert
//! rule's remediations, later incidents — made one way: a name that is a valid DNS label
//! however long the parent's name, a label pointing back at the parent, an owner reference,
//! and `create` (never apply), where `AlreadyExists` for a request the parent owns counts as
//! done, so a reconcile whose status write was lost never makes a second one.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::PostParams;
use kube::{Api, Resource, ResourceExt};
use tend_crds::labels::label_value;
use tend_crds::restore_request::{RestoreRequest, RestoreRequestSpec};

use crate::error::StepError;

const DNS_LABEL_MAX: usize = 63;

/// `<parent>-<purpose>-<YYYYMMDDhhmmss>` (UTC), the parent part lower-cased, with characters a
/// DNS label cannot hold turned into dashes and shortened so the whole name has at most 63
/// characters.
pub fn child_name(parent: &str, purpose: &str, at: Timestamp) -> String {
    let suffix = format!("-{purpose}-{}", at.strftime("%Y%m%d%H%M%S"));
    let room = DNS_LABEL_MAX.saturating_sub(suffix.len());
    let mut prefix: String = parent
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .take(room)
        .collect();
    while prefix.ends_with('-') {
        prefix.pop();
    }
    let prefix = prefix.trim_start_matches('-');
    let prefix = if prefix.is_empty() { purpose } else { prefix };
    format!("{prefix}{suffix}")
}

/// A child RestoreRequest of `parent`.
pub struct Child<'a, P> {
    pub parent: &'a P,
    pub name: String,
    /// The label naming the parent (its value is the parent's name, hashed if too long).
    pub label: &'static str,
    pub annotations: BTreeMap<String, String>,
    /// A controller reference (the parent's controller is woken when the child changes) or a
    /// plain owner reference.
    pub controller: bool,
    pub spec: RestoreRequestSpec,
}

impl<P: Resource<DynamicType = ()>> Child<'_, P> {
    /// The request to create.
    pub fn build(&self) -> RestoreRequest {
        let owner = OwnerReference {
            api_version: P::api_version(&()).into_owned(),
            kind: P::kind(&()).into_owned(),
            name: self.parent.name_any(),
            uid: self.parent.uid().unwrap_or_default(),
            controller: Some(self.controller),
            block_owner_deletion: self.controller.then_some(true),
        };
        RestoreRequest {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: self.parent.namespace(),
                labels: Some(BTreeMap::from([(
                    self.label.to_string(),
                    label_value(&self.parent.name_any()),
                )])),
                annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
                owner_references: Some(vec![owner]),
                ..ObjectMeta::default()
            },
            spec: self.spec.clone(),
            status: None,
        }
    }

    /// Creates the request. One of the same name that the parent owns already is taken as
    /// this one (an earlier attempt created it); one it does not own is an error.
    pub async fn create(&self, api: &Api<RestoreRequest>) -> Result<(), StepError> {
        let request = self.build();
        match api.create(&PostParams::default(), &request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let found = api.get(&self.name).await.map_err(|e| {
                    StepError::kube(
                        format!("RestoreRequest {} exists but cannot be read", self.name),
                        &e,
                    )
                })?;
                if is_owned_by(&found, self.parent) {
                    Ok(())
                } else {
                    Err(StepError::Setup(format!(
                        "a RestoreRequest named {} already exists and does not belong to {} {}",
                        self.name,
                        P::kind(&()),
                        self.parent.name_any()
                    )))
                }
            }
            Err(e) => Err(StepError::kube(
                format!("creating RestoreRequest {}", self.name),
                &e,
            )),
        }
    }
}

/// `child` has an owner reference to `parent` (same kind and uid).
pub fn is_owned_by<P: Resource<DynamicType = ()>>(child: &RestoreRequest, parent: &P) -> bool {
    let uid = parent.uid();
    child
        .owner_references()
        .iter()
        .any(|o| o.kind == P::kind(&()) && Some(&o.uid) == uid.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_dns_label(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    #[test]
    fn names_are_dns_labels_with_the_time() {
        let t: Timestamp = "2026-05-01T10:00:30Z".parse().unwrap();
        assert_eq!(
            child_name("missing-photos", "remediation", t),
            "missing-photos-remediation-20260501100030"
        );
        assert_eq!(
            child_name("nightly", "drill", t),
            "nightly-drill-20260501100030"
        );
        let long = "a".repeat(40) + "-" + &"b".repeat(200);
        for purpose in ["remediation", "drill"] {
            let name = child_name(&long, purpose, t);
            assert_eq!(name.len(), 63, "{name}");
            assert!(valid_dns_label(&name), "{name}");
        }
        // A cut that lands on a dash does not leave a double dash; dots and capitals are made
        // DNS-safe.
        let name = child_name(&("x".repeat(35) + "-yyy"), "remediation", t);
        assert!(valid_dns_label(&name), "{name}");
        assert!(
            name.starts_with(&"x".repeat(35)) && !name.contains("--"),
            "{name}"
        );
        assert_eq!(
            child_name("DB.checks", "remediation", t),
            "db-checks-remediation-20260501100030"
        );
        assert_eq!(child_name("...", "drill", t), "drill-drill-20260501100030");
    }
}
