//! Resource names must not shadow anything a real cluster already serves. kubectl resolves a
//! short name to the first resource that claims it, so a tend kind whose short name is also a
//! built-in's (`sc` is StorageClass, `ep` is Endpoints) is unreachable by that name — or,
//! worse, hides the built-in from people who type it out of habit. The same goes for the short
//! names of CRDs that are installed in most clusters next to tend (GitOps, certificates,
//! monitoring, mesh, backup).

use std::collections::BTreeMap;

/// Short names of the built-in Kubernetes resources (`kubectl api-resources` on a current
/// cluster, plus the ones kubectl itself hard-codes for older servers).
const BUILTIN_SHORT_NAMES: &[(&str, &str)] = &[
    ("po", "pods"),
    ("svc", "services"),
    ("ep", "endpoints"),
    ("cm", "configmaps"),
    ("ns", "namespaces"),
    ("no", "nodes"),
    ("pv", "persistentvolumes"),
    ("pvc", "persistentvolumeclaims"),
    ("sa", "serviceaccounts"),
    ("rc", "replicationcontrollers"),
    ("cs", "componentstatuses"),
    ("ev", "events"),
    ("limits", "limitranges"),
    ("quota", "resourcequotas"),
    ("deploy", "deployments.apps"),
    ("ds", "daemonsets.apps"),
    ("rs", "replicasets.apps"),
    ("sts", "statefulsets.apps"),
    ("cj", "cronjobs.batch"),
    ("hpa", "horizontalpodautoscalers.autoscaling"),
    ("pdb", "poddisruptionbudgets.policy"),
    ("psp", "podsecuritypolicies.policy"),
    ("ing", "ingresses.networking.k8s.io"),
    ("netpol", "networkpolicies.networking.k8s.io"),
    ("ip", "ipaddresses.networking.k8s.io"),
    ("csr", "certificatesigningrequests.certificates.k8s.io"),
    ("crd", "customresourcedefinitions.apiextensions.k8s.io"),
    ("crds", "customresourcedefinitions.apiextensions.k8s.io"),
    ("pc", "priorityclasses.scheduling.k8s.io"),
    ("sc", "storageclasses.storage.k8s.io"),
    ("vac", "volumeattributesclasses.storage.k8s.io"),
];

/// Plural names of built-in resources (a tend plural equal to one of these would be ambiguous
/// without its group).
const BUILTIN_PLURALS: &[&str] = &[
    "bindings",
    "componentstatuses",
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "podtemplates",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "serviceaccounts",
    "services",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "customresourcedefinitions",
    "apiservices",
    "controllerrevisions",
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
    "selfsubjectreviews",
    "tokenreviews",
    "localsubjectaccessreviews",
    "selfsubjectaccessreviews",
    "selfsubjectrulesreviews",
    "subjectaccessreviews",
    "horizontalpodautoscalers",
    "cronjobs",
    "jobs",
    "certificatesigningrequests",
    "leases",
    "endpointslices",
    "flowschemas",
    "prioritylevelconfigurations",
    "ingressclasses",
    "ingresses",
    "ipaddresses",
    "networkpolicies",
    "servicecidrs",
    "runtimeclasses",
    "poddisruptionbudgets",
    "clusterrolebindings",
    "clusterroles",
    "rolebindings",
    "roles",
    "priorityclasses",
    "csidrivers",
    "csinodes",
    "csistoragecapacities",
    "storageclasses",
    "volumeattachments",
    "volumeattributesclasses",
    "deviceclasses",
    "resourceclaims",
    "resourceclaimtemplates",
    "resourceslices",
];

/// Short names of CRDs that commonly share a cluster with tend.
const COMMON_CRD_SHORT_NAMES: &[(&str, &str)] = &[
    // Argo CD
    ("app", "applications.argoproj.io"),
    ("apps", "applications.argoproj.io"),
    ("appset", "applicationsets.argoproj.io"),
    ("appsets", "applicationsets.argoproj.io"),
    ("appproj", "appprojects.argoproj.io"),
    ("appprojs", "appprojects.argoproj.io"),
    // Argo Rollouts
    ("ro", "rollouts.argoproj.io"),
    ("ar", "analysisruns.argoproj.io"),
    ("at", "analysistemplates.argoproj.io"),
    ("cat", "clusteranalysistemplates.argoproj.io"),
    ("exp", "experiments.argoproj.io"),
    // Argo Workflows and Events
    ("wf", "workflows.argoproj.io"),
    ("wftmpl", "workflowtemplates.argoproj.io"),
    ("cwf", "cronworkflows.argoproj.io"),
    ("cronwf", "cronworkflows.argoproj.io"),
    ("cwft", "clusterworkflowtemplates.argoproj.io"),
    ("es", "eventsources.argoproj.io"),
    ("sn", "sensors.argoproj.io"),
    ("eb", "eventbus.argoproj.io"),
    // Flux
    ("gitrepo", "gitrepositories.source.toolkit.fluxcd.io"),
    ("helmrepo", "helmrepositories.source.toolkit.fluxcd.io"),
    ("hc", "helmcharts.source.toolkit.fluxcd.io"),
    ("ocirepo", "ocirepositories.source.toolkit.fluxcd.io"),
    ("ks", "kustomizations.kustomize.toolkit.fluxcd.io"),
    ("hr", "helmreleases.helm.toolkit.fluxcd.io"),
    // cert-manager
    ("cert", "certificates.cert-manager.io"),
    ("certs", "certificates.cert-manager.io"),
    ("cr", "certificaterequests.cert-manager.io"),
    ("crs", "certificaterequests.cert-manager.io"),
    // Prometheus operator
    ("prom", "prometheuses.monitoring.coreos.com"),
    ("am", "alertmanagers.monitoring.coreos.com"),
    ("amcfg", "alertmanagerconfigs.monitoring.coreos.com"),
    ("smon", "servicemonitors.monitoring.coreos.com"),
    ("pmon", "podmonitors.monitoring.coreos.com"),
    ("prb", "probes.monitoring.coreos.com"),
    ("promrule", "prometheusrules.monitoring.coreos.com"),
    ("ruler", "thanosrulers.monitoring.coreos.com"),
    ("scfg", "scrapeconfigs.monitoring.coreos.com"),
    // Istio
    ("vs", "virtualservices.networking.istio.io"),
    ("dr", "destinationrules.networking.istio.io"),
    ("gw", "gateways.networking.istio.io"),
    ("se", "serviceentries.networking.istio.io"),
    ("we", "workloadentries.networking.istio.io"),
    ("wg", "workloadgroups.networking.istio.io"),
    ("pa", "peerauthentications.security.istio.io"),
    ("ra", "requestauthentications.security.istio.io"),
    ("ap", "authorizationpolicies.security.istio.io"),
    // Velero
    ("bsl", "backupstoragelocations.velero.io"),
    ("vsl", "volumesnapshotlocations.velero.io"),
    // CSI snapshots, Gateway API
    ("vsc", "volumesnapshotcontents.snapshot.storage.k8s.io"),
    ("vsclass", "volumesnapshotclasses.snapshot.storage.k8s.io"),
    ("gtw", "gateways.gateway.networking.k8s.io"),
    ("gc", "gatewayclasses.gateway.networking.k8s.io"),
    // KEDA, Kyverno, External Secrets
    ("so", "scaledobjects.keda.sh"),
    ("sj", "scaledjobs.keda.sh"),
    ("ta", "triggerauthentications.keda.sh"),
    ("cpol", "clusterpolicies.kyverno.io"),
    ("pol", "policies.kyverno.io"),
    ("polr", "policyreports.wgpolicyk8s.io"),
    ("ss", "secretstores.external-secrets.io"),
    ("css", "clustersecretstores.external-secrets.io"),
    // Tekton, Knative, Linkerd
    ("pr", "pipelineruns.tekton.dev"),
    ("tr", "taskruns.tekton.dev"),
    ("ksvc", "services.serving.knative.dev"),
    ("rev", "revisions.serving.knative.dev"),
    ("sp", "serviceprofiles.linkerd.io"),
];

#[test]
fn tend_names_shadow_no_builtin_or_common_crd() {
    let builtin: BTreeMap<&str, &str> = BUILTIN_SHORT_NAMES.iter().copied().collect();
    let common: BTreeMap<&str, &str> = COMMON_CRD_SHORT_NAMES.iter().copied().collect();
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut collisions = Vec::new();
    for crd in tend_crds::crds() {
        let names = &crd.spec.names;
        let kind = &names.kind;
        let mut all = names.short_names.clone().unwrap_or_default();
        all.push(names.plural.clone());
        all.extend(names.singular.clone());
        all.push(kind.to_lowercase());
        for name in all {
            if let Some(resource) = builtin.get(name.as_str()) {
                collisions.push(format!(
                    "{kind}: {name:?} is the short name of the built-in {resource}"
                ));
            }
            if BUILTIN_PLURALS.contains(&name.as_str()) {
                collisions.push(format!("{kind}: {name:?} is a built-in resource"));
            }
            if let Some(resource) = common.get(name.as_str()) {
                collisions.push(format!("{kind}: {name:?} is the short name of {resource}"));
            }
            if let Some(other) = claimed.insert(name.clone(), kind.clone())
                && other != *kind
            {
                collisions.push(format!("{kind}: {name:?} is also a name of {other}"));
            }
        }
    }
    assert!(collisions.is_empty(), "\n{}", collisions.join("\n"));
}

#[test]
fn every_kind_has_one_short_name_in_the_tend_category() {
    for crd in tend_crds::crds() {
        let names = &crd.spec.names;
        let short = names.short_names.clone().unwrap_or_default();
        assert_eq!(short.len(), 1, "{}: {short:?}", names.kind);
        assert_eq!(
            names.categories.as_deref(),
            Some(&["tend".to_string()][..]),
            "{}",
            names.kind
        );
    }
}
