//! What the API server knows about tend objects without tend running: `kubectl explain` prints
//! the field documentation of the CRDs, and `kubectl apply` refuses every spec error that can be
//! found without the cluster (cron fields, time zones, durations, e-mail addresses), naming the
//! field. Each refusal is checked with the real kubectl against the cluster under test.

use tend_e2e::{TestCluster, repo_root};

/// A cluster with the tend CRDs and the `fieldbook` namespace.
async fn cluster() -> anyhow::Result<TestCluster> {
    let c = TestCluster::start().await?;
    c.install_tend_crds(&[]).await?;
    let ns = repo_root().join("examples/00-namespace.yaml");
    c.kubectl(&["apply", "-f", ns.to_str().expect("utf-8 path")])
        .await?;
    Ok(c)
}

#[tokio::test]
async fn kubectl_explain_prints_the_field_docs_of_the_crds() -> anyhow::Result<()> {
    let c = cluster().await?;
    let retention = c
        .kubectl(&["explain", "backuppolicy.spec.retention"])
        .await?;
    for expected in [
        "GROUP:      tend.dev",
        "KIND:       BackupPolicy",
        "VERSION:    v1alpha1",
        "FIELD: retention <Object>",
        "How many backups to keep",
        "keepDaily",
        "<integer>",
        "Keep the newest backup of each of the last N days",
    ] {
        assert!(
            retention.contains(expected),
            "missing {expected:?}:\n{retention}"
        );
    }
    let spec = c.kubectl(&["explain", "rr.spec"]).await?;
    for expected in ["KIND:       RestoreRequest", "restorePoint", "target"] {
        assert!(spec.contains(expected), "missing {expected:?}:\n{spec}");
    }
    // Short names of the other kinds resolve too, recursively.
    let support = c
        .kubectl(&["explain", "supch.spec.inquiryForm", "--recursive"])
        .await?;
    assert!(support.contains("firstResponseSla"), "{support}");
    Ok(())
}
