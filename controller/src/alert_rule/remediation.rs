//! Automated remediation: one RestoreRequest per firing, created from the rule's template.
//!
//! Exactly once per firing, even when the status write that records it fails:
//! - the request is created with `create` (never apply), so an existing one is never changed;
//! - before creating, requests this rule owns that were made after the last evaluation the
//!   rule's status recorded are adopted (they belong to this firing: an earlier attempt created
//!   them but its status write did not land);
//! - `AlreadyExists` for a request this rule owns counts as done.

use jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tend_crds::alert_rule::AlertRule;
use tend_crds::restore_request::{RestoreRequest, RestoreRequestSpec};

use crate::children::{Child, child_name, is_owned_by};
use crate::error::StepError;

pub use tend_crds::labels::{
    FIRING_SINCE as FIRING_SINCE_ANNOTATION, REMEDIATION_OF as REMEDIATION_OF_LABEL, label_value,
};

/// The RestoreRequest for a firing that began at `firing`: the template verbatim as its spec,
/// the label, the annotation, and a non-controller owner reference to the rule.
pub fn child<'a>(
    rule: &'a AlertRule,
    template: &RestoreRequestSpec,
    firing: Timestamp,
) -> Child<'a, AlertRule> {
    Child {
        parent: rule,
        name: child_name(&rule.name_any(), "remediation", firing),
        label: REMEDIATION_OF_LABEL,
        annotations: [(FIRING_SINCE_ANNOTATION.to_string(), firing.to_string())].into(),
        controller: false,
        spec: template.clone(),
    }
}

fn firing_since(request: &RestoreRequest) -> Option<Timestamp> {
    request
        .annotations()
        .get(FIRING_SINCE_ANNOTATION)
        .and_then(|t| t.parse().ok())
}

/// Makes sure the firing that began at `firing` has its RestoreRequest, and returns its name.
/// `recorded_until` is the last evaluation time the rule's stored status holds.
pub async fn ensure(
    client: &Client,
    rule: &AlertRule,
    template: &RestoreRequestSpec,
    firing: Timestamp,
    recorded_until: Option<Timestamp>,
) -> Result<String, StepError> {
    let namespace = rule.namespace().unwrap_or_default();
    let api: Api<RestoreRequest> = Api::namespaced(client.clone(), &namespace);
    let selector = format!("{REMEDIATION_OF_LABEL}={}", label_value(&rule.name_any()));
    let existing = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| StepError::kube("listing this rule's RestoreRequests", &e))?;
    let unrecorded = existing
        .items
        .iter()
        .filter(|r| is_owned_by(r, rule))
        .filter_map(|r| firing_since(r).map(|t| (t, r)))
        .filter(|(t, _)| recorded_until.is_none_or(|recorded| *t > recorded))
        .max_by_key(|(t, _)| *t);
    if let Some((_, request)) = unrecorded {
        return Ok(request.name_any());
    }
    let child = child(rule, template, firing);
    child.create(&api).await?;
    Ok(child.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_copies_the_template_and_points_at_the_rule() {
        let rule: AlertRule = serde_json::from_value(serde_json::json!({
            "apiVersion": "tend.dev/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": "missing-photos", "namespace": "farm", "uid": "u-1",
                         "labels": {"app.kubernetes.io/instance": "argo-app"}},
            "spec": {
                "source": {"metrics": {"url": "http://x/metrics", "metric": "m"}},
                "condition": {"operator": ">", "threshold": 0},
                "summary": "photos missing",
                "remediation": {"restore": {
                    "policyRef": {"name": "daily"},
                    "restorePoint": {"latest": true},
                    "components": ["objects"],
                    "target": {"mode": "inPlace", "confirm": true}
                }}
            }
        }))
        .unwrap();
        let template = rule
            .spec
            .remediation
            .as_ref()
            .unwrap()
            .restore
            .clone()
            .unwrap();
        let t: Timestamp = "2026-05-01T10:00:30Z".parse().unwrap();
        let request = child(&rule, &template, t).build();
        assert_eq!(request.spec, template);
        assert_eq!(request.namespace().as_deref(), Some("farm"));
        assert_eq!(
            request
                .labels()
                .get(REMEDIATION_OF_LABEL)
                .map(String::as_str),
            Some("missing-photos")
        );
        // Argo/Flux tracking labels of the rule are not copied.
        assert_eq!(request.labels().len(), 1);
        let owner = &request.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("AlertRule", "missing-photos", "u-1")
        );
        assert_eq!(owner.controller, Some(false));
        assert!(is_owned_by(&request, &rule));
        assert_eq!(firing_since(&request), Some(t));
    }
}
