//! Automated remediation: one RestoreRequest per firing, created from the rule's template.
//!
//! Exactly once per firing, even when the status write that records it fails:
//! - the request is created with `create` (never apply), so an existing one is never changed;
//! - before creating, requests this rule owns that were made after the last evaluation the
//!   rule's status recorded are adopted (they belong to this firing: an earlier attempt created
//!   them but its status write did not land);
//! - `AlreadyExists` for a request this rule owns counts as done.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use tend_crds::alert_rule::AlertRule;
use tend_crds::restore_request::{RestoreRequest, RestoreRequestSpec};

pub use tend_crds::labels::{
    FIRING_SINCE as FIRING_SINCE_ANNOTATION, REMEDIATION_OF as REMEDIATION_OF_LABEL, label_value,
};

const NAME_SUFFIX: &str = "-remediation-";
const DNS_LABEL_MAX: usize = 63;

/// `<rule>-remediation-<YYYYMMDDhhmmss>` (UTC), with the rule part shortened so the whole name
/// is a valid DNS label of at most 63 characters.
pub fn remediation_name(rule: &str, firing: Timestamp) -> String {
    let stamp = firing.strftime("%Y%m%d%H%M%S").to_string();
    let room = DNS_LABEL_MAX - NAME_SUFFIX.len() - stamp.len();
    let mut prefix: String = rule
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
    let prefix = if prefix.is_empty() { "alert" } else { prefix };
    format!("{prefix}{NAME_SUFFIX}{stamp}")
}

/// The RestoreRequest for a firing that began at `firing`: the template verbatim as its spec,
/// the label, the annotation, and a non-controller owner reference to the rule.
pub fn build(rule: &AlertRule, template: &RestoreRequestSpec, firing: Timestamp) -> RestoreRequest {
    let owner = OwnerReference {
        api_version: AlertRule::api_version(&()).into_owned(),
        kind: AlertRule::kind(&()).into_owned(),
        name: rule.name_any(),
        uid: rule.uid().unwrap_or_default(),
        controller: Some(false),
        block_owner_deletion: None,
    };
    RestoreRequest {
        metadata: ObjectMeta {
            name: Some(remediation_name(&rule.name_any(), firing)),
            namespace: rule.namespace(),
            labels: Some(
                [(
                    REMEDIATION_OF_LABEL.to_string(),
                    label_value(&rule.name_any()),
                )]
                .into(),
            ),
            annotations: Some([(FIRING_SINCE_ANNOTATION.to_string(), firing.to_string())].into()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.clone(),
        status: None,
    }
}

fn owned_by(request: &RestoreRequest, rule: &AlertRule) -> bool {
    let uid = rule.uid();
    request
        .owner_references()
        .iter()
        .any(|o| o.kind == "AlertRule" && Some(&o.uid) == uid.as_ref())
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
) -> Result<String, String> {
    let namespace = rule.namespace().unwrap_or_default();
    let api: Api<RestoreRequest> = Api::namespaced(client.clone(), &namespace);
    let selector = format!("{REMEDIATION_OF_LABEL}={}", label_value(&rule.name_any()));
    let existing = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("listing this rule's RestoreRequests: {e}"))?;
    let unrecorded = existing
        .items
        .iter()
        .filter(|r| owned_by(r, rule))
        .filter_map(|r| firing_since(r).map(|t| (t, r)))
        .filter(|(t, _)| recorded_until.is_none_or(|recorded| *t > recorded))
        .max_by_key(|(t, _)| *t);
    if let Some((_, request)) = unrecorded {
        return Ok(request.name_any());
    }
    let request = build(rule, template, firing);
    let name = request.name_any();
    match api.create(&PostParams::default(), &request).await {
        Ok(_) => Ok(name),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let found = api
                .get(&name)
                .await
                .map_err(|e| format!("RestoreRequest {name} exists but cannot be read: {e}"))?;
            if owned_by(&found, rule) {
                Ok(name)
            } else {
                Err(format!(
                    "a RestoreRequest named {name} already exists and was not created by this rule"
                ))
            }
        }
        Err(e) => Err(format!("creating RestoreRequest {name}: {e}")),
    }
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
    fn names_are_dns_labels_with_the_firing_time() {
        let t: Timestamp = "2026-05-01T10:00:30Z".parse().unwrap();
        assert_eq!(
            remediation_name("missing-photos", t),
            "missing-photos-remediation-20260501100030"
        );
        let long = "a".repeat(40) + "-" + &"b".repeat(200);
        let name = remediation_name(&long, t);
        assert_eq!(name.len(), 63, "{name}");
        assert!(valid_dns_label(&name), "{name}");
        // A cut that lands on a dash does not leave a double dash; dots become dashes.
        let name = remediation_name(&("x".repeat(35) + "-yyy"), t);
        assert!(valid_dns_label(&name), "{name}");
        assert!(
            name.starts_with(&"x".repeat(35)) && !name.contains("--"),
            "{name}"
        );
        let name = remediation_name("db.checks", t);
        assert_eq!(name, "db-checks-remediation-20260501100030");
    }

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
        let request = build(&rule, &template, t);
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
        assert!(owned_by(&request, &rule));
        assert_eq!(firing_since(&request), Some(t));
    }
}
