//! Status as Argo CD, Flux and `kubectl wait` read it (kstatus): `Ready=True` only when the
//! object's purpose is achieved, `Reconciling=True` while work is in progress, `Stalled=True`
//! when only a change can help. Real kubectl against devcluster (or `TEND_E2E_KUBECONFIG`).

use serde_json::Value;
use tend_e2e::farm::{
    NS, finished_restore, object_json, request_backup, restore_yaml, setup, write_photos,
};
use tend_e2e::{TestCluster, WAIT, eventually};
use tend_testkit::Keys;

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `kubectl wait --for=condition=Ready` on a RestoreRequest returns when it has succeeded —
/// not while it runs — and never for one that failed, which is `Stalled` instead. A suspended
/// BackupPolicy is Ready with reason Suspended; an EscalationPolicy, whose engine is not built,
/// is not Ready and says why.
#[tokio::test]
async fn ready_means_done_and_failed_restores_are_stalled() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 10, 4096);
    let repo = c.dir.path().join("repository");
    let scratch = c.dir.path().join("scratch");
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: daily, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  targets:
    objects: {{filesystem: {{path: {photos}}}}}
  repository: {{filesystem: {{path: {repo}}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
    identitySecretRef: {{name: backup-age, key: identity}}
---
apiVersion: tend.dev/v1alpha1
kind: EscalationPolicy
metadata: {{name: oncall, namespace: {NS}}}
spec:
  levels:
  - name: L1
    ackTimeout: 10m
    targets:
    - name: ops-mail
      email: {{to: [ops@example.com], smtpSecretRef: {{name: smtp}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: smtp, namespace: {NS}}}
stringData: {{host: 127.0.0.1, port: "25", from: tend@example.com}}
"#,
            photos = photos.display(),
            repo = repo.display()
        ),
    )
    .await?;
    let tend = c.start_tend("status-1").await?;
    let log = || tend.proc.log_text();
    let status = request_backup(&c, "daily", "1", log).await?;
    assert_eq!(status["lastBackup"]["result"], "Succeeded", "{status:#}");

    // The waiter starts before the request exists and returns only once it has succeeded.
    let target = format!(
        "{{mode: scratch, scratch: {{filesystem: {{path: {}}}}}}}",
        scratch.display()
    );
    c.apply_yaml(&[], &restore_yaml("good", "daily", &target, ""))
        .await?;
    let mut waiter = c.kubectl_cmd();
    waiter.args([
        "wait",
        "--for=condition=Ready",
        "restorerequest/good",
        "-n",
        NS,
        "--timeout=120s",
    ]);
    let out = tokio::task::spawn_blocking(move || waiter.output()).await??;
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log()
    );
    let good = object_json(&c, "rr", "good").await?;
    assert_eq!(good["status"]["phase"], "Succeeded", "{good:#}");
    assert!(condition(&good, "Reconciling").is_none(), "{good:#}");
    assert!(condition(&good, "Stalled").is_none(), "{good:#}");

    // A request that fails: Ready=False, Stalled=True with the reason; `kubectl wait` for
    // Ready times out on it.
    c.apply_yaml(
        &[],
        &restore_yaml("bad", "daily", &target, "").replace(
            "restorePoint: {latest: true}",
            "restorePoint: {id: no-such-point}",
        ),
    )
    .await?;
    let status = finished_restore(&c, "bad", log).await?;
    assert_eq!(status["phase"], "Failed", "{status:#}");
    let bad = object_json(&c, "rr", "bad").await?;
    let ready = condition(&bad, "Ready").expect("Ready");
    assert_eq!(ready["status"], "False", "{bad:#}");
    assert_eq!(ready["reason"], "RestoreFailed");
    let stalled = condition(&bad, "Stalled").expect("Stalled");
    assert_eq!(stalled["status"], "True", "{bad:#}");
    assert_eq!(stalled["reason"], "RestoreFailed");
    assert!(condition(&bad, "Reconciling").is_none(), "{bad:#}");
    let out = c
        .kubectl_output(&[
            "wait",
            "--for=condition=Ready",
            "restorerequest/bad",
            "-n",
            NS,
            "--timeout=3s",
        ])
        .await;
    assert!(
        !out.status.success(),
        "kubectl wait returned for a failed restore"
    );

    // Suspended is a settled state: Ready=True, reason Suspended.
    c.kubectl(&[
        "patch",
        "backuppolicy",
        "daily",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ])
    .await?;
    let ready = eventually(WAIT, "the policy to report Suspended", || async {
        let bp = object_json(&c, "backuppolicy", "daily").await.ok()?;
        let ready = condition(&bp, "Ready")?.clone();
        (ready["reason"] == "Suspended").then_some(ready)
    })
    .await?;
    assert_eq!(ready["status"], "True", "{ready}");

    // No engine escalates yet: the policy is not Ready, and not Stalled either.
    let ep = eventually(WAIT, "the EscalationPolicy to be reconciled", || async {
        let ep = object_json(&c, "escalationpolicy", "oncall").await.ok()?;
        condition(&ep, "Ready").is_some().then_some(ep)
    })
    .await?;
    let ready = condition(&ep, "Ready").unwrap();
    assert_eq!(ready["status"], "False", "{ep:#}");
    assert_eq!(ready["reason"], "EngineNotImplemented");
    assert!(condition(&ep, "Stalled").is_none(), "{ep:#}");
    Ok(())
}
