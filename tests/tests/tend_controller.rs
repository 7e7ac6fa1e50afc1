//! The tend CRDs and examples through kubectl, and the real `tend run` controller against the
//! cluster: reconciling every example, `kubectl wait`, surviving an API server restart, and
//! leader election between two replicas.

use serde_json::Value;
use tend_e2e::{Tend, TestCluster, WAIT, eventually};

const KINDS: [&str; 7] = [
    "backuppolicies",
    "restorerequests",
    "alertrules",
    "escalationpolicies",
    "incidentrecords",
    "supportchannels",
    "logpolicies",
];

async fn tend_objects(c: &TestCluster) -> anyhow::Result<Vec<Value>> {
    let out = c
        .kubectl(&["get", "tend", "-n", "fieldbook", "-o", "json"])
        .await?;
    let list: Value = serde_json::from_str(&out)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

fn observed(o: &Value) -> bool {
    let generation = &o["metadata"]["generation"];
    let has_ready = o["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready"));
    o["status"]["observedGeneration"] == *generation && has_ready
}

/// Waits until every tend object in `fieldbook` carries status for its current generation.
async fn all_reconciled(c: &TestCluster, tend: &Tend) -> anyhow::Result<Vec<Value>> {
    let res = eventually(WAIT * 2, "tend to reconcile every example", || async {
        let items = tend_objects(c).await.ok()?;
        (items.len() >= KINDS.len() && items.iter().all(observed)).then_some(items)
    })
    .await;
    res.map_err(|e| anyhow::anyhow!("{e}\n--- tend log ---\n{}", tend.proc.log_text()))
}

#[tokio::test]
async fn tend_crds_and_examples_apply_client_side_and_server_side() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.apply_tend_examples(&[]).await?;
    c.apply_tend_examples(&["--server-side"]).await?;
    let all = c
        .kubectl(&["get", "tend", "-n", "fieldbook", "-o", "name"])
        .await?;
    for kind in KINDS {
        assert!(
            all.lines()
                .any(|l| l.starts_with(&format!("{}.tend.dev/", singular(kind)))),
            "{kind} missing from:\n{all}"
        );
    }
    let bp = c
        .kubectl(&["get", "backuppolicies", "-n", "fieldbook"])
        .await?;
    let header = bp.lines().next().unwrap_or_default();
    for col in [
        "NAME",
        "SCHEDULE",
        "LAST BACKUP",
        "LAST RESULT",
        "RPO",
        "READY",
        "AGE",
    ] {
        assert!(header.contains(col), "column {col} missing: {bp}");
    }
    let short = c
        .kubectl(&[
            "get",
            "bp,rr,arule,escpol,inc,supch,lp",
            "-n",
            "fieldbook",
            "-o",
            "name",
        ])
        .await?;
    assert_eq!(short.lines().count(), all.lines().count(), "{short}");
    Ok(())
}

fn singular(plural: &str) -> String {
    match plural {
        "backuppolicies" | "escalationpolicies" | "logpolicies" => {
            plural.replace("policies", "policy")
        }
        p => p.trim_end_matches('s').to_string(),
    }
}

#[tokio::test]
async fn a_restore_request_spec_cannot_change() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.apply_tend_examples(&[]).await?;
    let patch = r#"{"spec":{"policyRef":{"name":"another-policy"}}}"#;
    let err = c
        .kubectl_fails(&[
            "patch",
            "rr",
            "fieldbook-check-latest",
            "-n",
            "fieldbook",
            "--type=merge",
            "-p",
            patch,
        ])
        .await?;
    assert!(err.contains("is invalid") && err.contains("spec"), "{err}");
    Ok(())
}

#[tokio::test]
async fn tend_reconciles_every_example_and_records_events() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.apply_tend_examples(&[]).await?;
    let tend = c.start_tend("e2e-a").await?;
    let items = all_reconciled(&c, &tend).await?;
    let ready: Vec<String> = items
        .iter()
        .filter(|o| {
            o["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or_default().to_lowercase(),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(!ready.is_empty(), "no example became Ready: {items:#?}");
    let wait = c
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            &ready[0],
            "-n",
            "fieldbook",
            "--timeout=60s",
        ])
        .await?;
    assert!(wait.contains("condition met"), "{wait}");
    // Events are recorded on transitions (not on the first observation of a healthy object):
    // pointing the policy at a Secret that does not exist makes it Stalled, with a Warning.
    let patch = r#"{"spec":{"encryption":{"recipientsSecretRef":{"name":"no-such-secret"}}}}"#;
    c.kubectl(&[
        "patch",
        "bp",
        "fieldbook-nightly",
        "-n",
        "fieldbook",
        "--type=merge",
        "-p",
        patch,
    ])
    .await?;
    let describe = eventually(WAIT, "a SecretNotFound Event from tend", || async {
        let describe = c
            .kubectl(&[
                "describe",
                "backuppolicy",
                "fieldbook-nightly",
                "-n",
                "fieldbook",
            ])
            .await
            .ok()?;
        let events = describe.split("\nEvents:").nth(1).unwrap_or_default();
        (events.contains("tend") && events.contains("SecretNotFound")).then_some(describe)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n--- tend log ---\n{}", tend.proc.log_text()))?;
    assert!(describe.contains("Conditions:"), "{describe}");
    Ok(())
}

#[tokio::test]
async fn kubectl_wait_returns_once_tend_marks_ready() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.apply_tend_examples(&[]).await?;
    tokio::task::spawn_blocking(tend_e2e::tend_binary).await?; // build before the clock starts
    let mut waiter = c.kubectl_cmd();
    waiter.args([
        "wait",
        "--for=condition=Ready",
        "backuppolicy/fieldbook-nightly",
        "-n",
        "fieldbook",
        "--timeout=120s",
    ]);
    let waiter = tokio::task::spawn_blocking(move || waiter.output().expect("kubectl wait"));
    let tend = c.start_tend("e2e-w").await?;
    let out = waiter.await?;
    assert!(
        out.status.success(),
        "{}\n--- tend log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        tend.proc.log_text()
    );
    Ok(())
}

#[tokio::test]
async fn tend_survives_a_devcluster_restart() -> anyhow::Result<()> {
    let mut c = TestCluster::start().await?;
    if !c.is_devcluster() {
        return Ok(());
    }
    c.apply_tend_examples(&[]).await?;
    let mut tend = c.start_tend("e2e-r").await?;
    all_reconciled(&c, &tend).await?;
    c.restart().await?;
    // A spec change made after the restart must still be reconciled.
    let patch = r#"{"spec":{"schedule":"30 3 * * *"}}"#;
    c.kubectl(&[
        "patch",
        "bp",
        "fieldbook-nightly",
        "-n",
        "fieldbook",
        "--type=merge",
        "-p",
        patch,
    ])
    .await?;
    let res = eventually(
        WAIT * 2,
        "reconcile of generation 2 after restart",
        || async {
            let out = c
                .kubectl(&[
                    "get",
                    "bp",
                    "fieldbook-nightly",
                    "-n",
                    "fieldbook",
                    "-o",
                    "json",
                ])
                .await
                .ok()?;
            let o: Value = serde_json::from_str(&out).ok()?;
            (o["metadata"]["generation"] == 2 && observed(&o)).then_some(())
        },
    )
    .await;
    res.map_err(|e| anyhow::anyhow!("{e}\n--- tend log ---\n{}", tend.proc.log_text()))?;
    assert!(
        tend.proc.is_running(),
        "tend exited:\n{}",
        tend.proc.log_text()
    );
    Ok(())
}

#[tokio::test]
async fn only_the_lease_holder_acts_and_a_standby_takes_over() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.apply_tend_examples(&[]).await?;
    let a = c.start_tend("replica-a").await?;
    let holder = eventually(WAIT, "a lease holder", || async {
        let h = c
            .kubectl(&[
                "get",
                "lease",
                "tend-controller",
                "-n",
                "tend-system",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])
            .await
            .ok()?;
        (!h.is_empty()).then_some(h)
    })
    .await?;
    assert_eq!(holder, "replica-a");
    all_reconciled(&c, &a).await?;
    let mut b = c.start_tend("replica-b").await?;
    // The standby serves probes but does not lead or reconcile.
    eventually(WAIT, "standby metrics", || async {
        b.metrics().await.contains("tend_leader").then_some(())
    })
    .await?;
    c.kubectl(&[
        "patch",
        "bp",
        "fieldbook-nightly",
        "-n",
        "fieldbook",
        "--type=merge",
        "-p",
        r#"{"spec":{"schedule":"15 1 * * *"}}"#,
    ])
    .await?;
    all_reconciled(&c, &a).await?;
    assert_eq!(
        b.metric("tend_leader").await,
        0.0,
        "standby must not lead:\n{}",
        b.metrics().await
    );
    assert_eq!(
        b.metric("tend_reconciles_total").await,
        0.0,
        "standby reconciled:\n{}",
        b.proc.log_text()
    );
    assert!(a.metric("tend_reconciles_total").await > 0.0);
    // When the leader goes away, the standby takes the lease and reconciles.
    drop(a);
    let took = eventually(WAIT * 2, "standby to take the lease", || async {
        let h = c
            .kubectl(&[
                "get",
                "lease",
                "tend-controller",
                "-n",
                "tend-system",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ])
            .await
            .ok()?;
        (h == "replica-b").then_some(())
    })
    .await;
    took.map_err(|e| anyhow::anyhow!("{e}\n--- replica-b log ---\n{}", b.proc.log_text()))?;
    c.kubectl(&[
        "patch",
        "bp",
        "fieldbook-nightly",
        "-n",
        "fieldbook",
        "--type=merge",
        "-p",
        r#"{"spec":{"schedule":"45 1 * * *"}}"#,
    ])
    .await?;
    all_reconciled(&c, &b).await?;
    assert!(b.proc.is_running());
    Ok(())
}
