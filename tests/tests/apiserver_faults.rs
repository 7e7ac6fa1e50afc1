//! tend against an API server that fails the way a real one does: status writes refused before
//! or after they commit, watches that lag, lists served from an older cache, objects deleted in
//! the foreground. devcluster injects the faults (see `devcluster::Fault`); the checks are what
//! must hold on any cluster: a committed backup is never deleted, a finished run is recorded
//! once, a drill passes, a deleted request blocks nothing, a policy being deleted starts
//! nothing new.

use std::path::Path;
use std::time::Duration;

use devcluster::{DevCluster, Fault, FaultResponse, StaleReads};
use jiff::ToSpan;
use jiff::civil::Time;
use serde_json::Value;
use tend::run::{RunConfig, run_with_client};
use tend_backup::{LocalRepository, PolicyLocation, restore_points};
use tend_e2e::farm::{
    NS, finished_restore, object_json, request_backup, restore_yaml, setup, write_photos,
};
use tend_e2e::{TestCluster, WAIT, events_of, eventually, files_under, free_port};
use tend_testkit::Keys;
use tend_testkit::clock::{TestClock, next_day_at};

/// The in-process devcluster, or `None` (with a note) when the tests target another cluster,
/// where faults cannot be injected.
fn faults(c: &TestCluster) -> Option<&DevCluster> {
    let dc = c.devcluster();
    if dc.is_none() {
        eprintln!("fault injection needs devcluster; TEND_E2E_KUBECONFIG points elsewhere");
    }
    dc
}

fn policy_yaml(name: &str, photos: &Path, repo: &Path, extra: &str) -> String {
    format!(
        r#"apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: {name}, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  targets:
    objects: {{filesystem: {{path: {photos}}}}}
    config:
      configMapSelector: {{matchLabels: {{app: farm}}}}
  repository: {{filesystem: {{path: {repo}}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
    identitySecretRef: {{name: backup-age, key: identity}}
  retention: {{keepLast: 20}}
{extra}"#,
        photos = photos.display(),
        repo = repo.display()
    )
}

async fn point_ids(repo: &Path, policy: &str) -> anyhow::Result<Vec<String>> {
    let repo = LocalRepository::new(repo)?;
    Ok(restore_points(&repo, &PolicyLocation::new(NS, policy))
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect())
}

async fn events(c: &TestCluster, kind: &str, name: &str) -> anyhow::Result<String> {
    Ok(events_of(
        &c.kubectl(&["describe", kind, name, "-n", NS]).await?,
    ))
}

/// A finished backup whose status writes fail — refused outright, or committed with the
/// response lost — is still recorded `Succeeded`, runs once, and stays a restore point. The
/// record set back to `Running` by hand (what a lost write or a stale cache shows) is recovered
/// from the manifest, not deleted. With lagging watches and stale relists, two policies that
/// finish together lose nothing. A failure with a long message still gets its Event.
#[tokio::test]
async fn lost_status_writes_never_lose_a_backup() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = faults(&c) else {
        return Ok(());
    };
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 20, 4096);
    let repo = c.dir.path().join("repository");
    c.apply_yaml(&[], &policy_yaml("daily", &photos, &repo, ""))
        .await?;
    let tend = c.start_tend("faults-1").await?;
    let log = || tend.proc.log_text();

    let mut expected = Vec::new();
    for (round, after_commit) in [(1, false), (2, true)] {
        let mut fault = Fault::new(FaultResponse::InternalError)
            .verb("patch")
            .resource("backuppolicies")
            .subresource("status")
            .name("daily")
            .times(2);
        if after_commit {
            fault = fault.after_commit();
        }
        let fired = dc.inject(fault);
        let status = request_backup(&c, "daily", &round.to_string(), log).await?;
        assert!(
            fired.fired() >= 1,
            "round {round}: no status write was failed"
        );
        assert_eq!(
            status["lastBackup"]["result"],
            "Succeeded",
            "round {round}: {status:#}\n{}",
            log()
        );
        expected.insert(0, status["lastBackup"]["id"].as_str().unwrap().to_string());
        // Exactly one run per request, and every one is a restore point.
        assert_eq!(point_ids(&repo, "daily").await?, expected, "round {round}");
    }
    dc.clear_faults();

    // What a lost write or a stale cache shows the next reconcile: the last run `Running`.
    let id = expected[0].clone();
    c.kubectl(&[
        "patch",
        "backuppolicy",
        "daily",
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"lastBackup":{{"id":"{id}","result":"Running","startTime":"{}"}}}}}}"#,
            jiff::Timestamp::now()
        ),
    ])
    .await?;
    c.kubectl(&[
        "annotate",
        "--overwrite",
        "backuppolicy",
        "daily",
        "-n",
        NS,
        "test.tend.dev/poke=1",
    ])
    .await?;
    let status = eventually(WAIT, "the run to be recorded again", || async {
        let s = object_json(&c, "backuppolicy", "daily").await.ok()?["status"].clone();
        (s["lastBackup"]["result"] != "Running").then_some(s)
    })
    .await?;
    assert_eq!(
        status["lastBackup"]["result"],
        "Succeeded",
        "{status:#}\n{}",
        log()
    );
    assert_eq!(status["lastBackup"]["id"], id.as_str());
    assert_eq!(point_ids(&repo, "daily").await?, expected);

    // Lagging watches and relists from an older cache, two policies finishing together.
    c.apply_yaml(&[], &policy_yaml("hourly", &photos, &repo, ""))
        .await?;
    dc.set_watch_delay(Duration::from_millis(100), Duration::from_millis(400));
    dc.set_stale_reads(Some(StaleReads {
        lag: Duration::from_secs(2),
    }));
    let (a, b) = tokio::join!(
        request_backup(&c, "daily", "3", log),
        request_backup(&c, "hourly", "1", log)
    );
    let (a, b) = (a?, b?);
    assert_eq!(a["lastBackup"]["result"], "Succeeded", "{a:#}");
    assert_eq!(b["lastBackup"]["result"], "Succeeded", "{b:#}");
    expected.insert(0, a["lastBackup"]["id"].as_str().unwrap().to_string());
    dc.close_watches();
    tokio::time::sleep(Duration::from_secs(4)).await;
    dc.close_watches();
    tokio::time::sleep(Duration::from_secs(3)).await;
    dc.set_stale_reads(None);
    dc.set_watch_delay(Duration::ZERO, Duration::ZERO);
    assert_eq!(point_ids(&repo, "daily").await?, expected);
    assert_eq!(point_ids(&repo, "hourly").await?.len(), 1);
    for policy in ["daily", "hourly"] {
        let s = object_json(&c, "backuppolicy", policy).await?["status"].clone();
        assert_eq!(s["lastBackup"]["result"], "Succeeded", "{policy}: {s:#}");
        let events = events(&c, "backuppolicy", policy).await?;
        assert!(!events.contains("interrupted"), "{policy}: {events}");
        assert!(!events.contains("BackupFailed"), "{policy}: {events}");
    }

    // A failure whose message is longer than an Event note may be: the Event still appears.
    let long_path = c.dir.path().join(["missing-photo-directory"; 60].join("/"));
    c.apply_yaml(&[], &policy_yaml("broken", &long_path, &repo, ""))
        .await?;
    let status = request_backup(&c, "broken", "1", log).await?;
    assert_eq!(status["lastBackup"]["result"], "Failed", "{status:#}");
    assert!(
        status["lastBackup"]["message"].as_str().unwrap().len() > 1024,
        "the test needs a message longer than an Event note: {status:#}"
    );
    let events = eventually(WAIT, "the BackupFailed event", || async {
        let e = events(&c, "backuppolicy", "broken").await.ok()?;
        e.contains("BackupFailed").then_some(e)
    })
    .await?;
    assert!(events.contains('…'), "{events}");
    Ok(())
}

/// A drill of a policy whose name is longer than a label value may be, with the drill request's
/// status writes failing after they commit: the drill passes, its request carries a valid label,
/// and the scratch copy is removed only at the end.
#[tokio::test]
async fn drills_pass_despite_lost_writes_and_long_policy_names() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = faults(&c) else {
        return Ok(());
    };
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 20, 4096);
    let repo = c.dir.path().join("repository");
    let scratch = c.dir.path().join("scratch");
    let name = format!("fieldbook-production-{}", "nightly-".repeat(6)) + "x";
    assert!(name.len() > 63 && name.len() < 90, "{}", name.len());
    c.apply_yaml(
        &[],
        &policy_yaml(
            &name,
            &photos,
            &repo,
            &format!(
                "  drill:\n    schedule: \"0 3 * * *\"\n    scratch: {{filesystem: {{path: {}}}}}\n",
                scratch.display()
            ),
        ),
    )
    .await?;
    let first_backup = next_day_at(Time::constant(2, 0, 30, 0));
    let (test_clock, now) = TestClock::new(first_backup);
    let mut config = RunConfig::new(format!("127.0.0.1:{}", free_port()).parse()?);
    config.clock = tend::context::Clock::from_fn(now);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(run_with_client(c.client().await?, config, async move {
        let _ = stop_rx.await;
    }));
    let poke = |n: &'static str| {
        let (c, name) = (&c, name.clone());
        async move {
            c.kubectl(&[
                "annotate",
                "--overwrite",
                "backuppolicy",
                &name,
                "-n",
                NS,
                &format!("test.tend.dev/poke={n}"),
            ])
            .await
        }
    };
    poke("1").await?;
    eventually(WAIT * 3, "the first backup", || async {
        let s = object_json(&c, "backuppolicy", &name).await.ok()?["status"].clone();
        (s["lastBackup"]["result"] == "Succeeded").then_some(())
    })
    .await?;
    // Every status write of the drill's request fails after committing, twice in a row.
    let fired = dc.inject(
        Fault::new(FaultResponse::InternalError)
            .verb("patch")
            .resource("restorerequests")
            .subresource("status")
            .after_commit()
            .times(2),
    );
    test_clock.set(first_backup + 1.hour());
    poke("2").await?;
    let status = eventually(WAIT * 3, "the drill", || async {
        let s = object_json(&c, "backuppolicy", &name).await.ok()?["status"].clone();
        matches!(
            s["lastDrill"]["result"].as_str(),
            Some("Succeeded" | "Failed")
        )
        .then_some(s)
    })
    .await?;
    assert_eq!(fired.fired(), 2);
    assert_eq!(status["lastDrill"]["result"], "Succeeded", "{status:#}");
    let request = status["lastDrill"]["requestName"].as_str().unwrap();
    let rr = object_json(&c, "rr", request).await?;
    assert_eq!(rr["status"]["phase"], "Succeeded", "{rr:#}");
    let label = rr["metadata"]["labels"]["tend.dev/drill-of"]
        .as_str()
        .unwrap();
    assert!(label.len() <= 63, "{label}");
    assert_eq!(label, tend_crds::labels::label_value(&name));
    let listed = c
        .kubectl(&[
            "get",
            "rr",
            "-n",
            NS,
            "-l",
            &format!("tend.dev/drill-of={label}"),
            "-o",
            "name",
        ])
        .await?;
    assert_eq!(listed.trim(), format!("restorerequest.tend.dev/{request}"));
    assert!(
        files_under(&scratch).is_empty(),
        "{:?}",
        files_under(&scratch)
    );
    let _ = stop_tx.send(());
    controller.await??;
    Ok(())
}

/// `kubectl delete rr` while it restores: a new request of the same policy runs anyway, and the
/// deleted one's scratch copy goes. Then the policy is deleted in the foreground while its drill
/// runs: nothing new starts, and the policy goes once its drill request is gone.
#[tokio::test]
async fn deleted_objects_block_nothing_and_start_nothing() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 120, 1024 * 1024);
    let repo = c.dir.path().join("repository");
    let scratch = c.dir.path().join("scratch");
    c.apply_yaml(
        &[],
        &policy_yaml(
            "big",
            &photos,
            &repo,
            &format!(
                "  drill:\n    schedule: \"0 3 * * *\"\n    scratch: {{filesystem: {{path: {}}}}}\n",
                scratch.display()
            ),
        ),
    )
    .await?;
    let first_backup = next_day_at(Time::constant(2, 0, 30, 0));
    let (test_clock, now) = TestClock::new(first_backup);
    let mut config = RunConfig::new(format!("127.0.0.1:{}", free_port()).parse()?);
    config.clock = tend::context::Clock::from_fn(now);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(run_with_client(c.client().await?, config, async move {
        let _ = stop_rx.await;
    }));
    let no_log = String::new;
    let status = request_backup(&c, "big", "1", no_log).await?;
    assert_eq!(status["lastBackup"]["result"], "Succeeded", "{status:#}");

    let target = format!(
        "{{mode: scratch, scratch: {{filesystem: {{path: {}}}}}}}",
        scratch.display()
    );
    c.apply_yaml(&[], &restore_yaml("first", "big", &target, ""))
        .await?;
    let objects = scratch.join("farm-first").join("objects");
    eventually(WAIT * 2, "the first restore to write", || async {
        (!files_under(&objects).is_empty()).then_some(())
    })
    .await?;
    c.kubectl(&["delete", "rr", "first", "-n", NS]).await?;
    c.apply_yaml(&[], &restore_yaml("second", "big", &target, ""))
        .await?;
    let status = finished_restore(&c, "second", no_log).await?;
    assert_eq!(status["phase"], "Succeeded", "{status:#}");
    eventually(WAIT, "the deleted request's scratch copy to go", || async {
        (!scratch.join("farm-first").exists()).then_some(())
    })
    .await?;

    // The 03:00 drill starts; the policy is deleted in the foreground while it runs.
    test_clock.set(first_backup + 1.hour());
    c.kubectl(&[
        "annotate",
        "--overwrite",
        "backuppolicy",
        "big",
        "-n",
        NS,
        "test.tend.dev/poke=1",
    ])
    .await?;
    // The 02:00 schedule ran once when the controller started (its clock reads 02:00:30), and
    // the on-demand request once more.
    let points_before = point_ids(&repo, "big").await?;
    let drill = eventually(WAIT, "the drill to start", || async {
        let s = object_json(&c, "backuppolicy", "big").await.ok()?["status"].clone();
        s["lastDrill"]["requestName"].as_str().map(String::from)
    })
    .await?;
    c.kubectl(&[
        "delete",
        "backuppolicy",
        "big",
        "-n",
        NS,
        "--cascade=foreground",
        "--wait=false",
    ])
    .await?;
    // The next night comes while it is being deleted: no backup, no drill.
    test_clock.set(first_backup + 25.hours());
    let _ = c
        .kubectl(&[
            "annotate",
            "--overwrite",
            "backuppolicy",
            "big",
            "-n",
            NS,
            "test.tend.dev/poke=2",
        ])
        .await;
    eventually(WAIT * 2, "the policy to be gone", || async {
        let out = c
            .kubectl_output(&["get", "backuppolicy", "big", "-n", NS])
            .await;
        (!out.status.success()).then_some(())
    })
    .await?;
    let left: Vec<Value> = serde_json::from_str::<Value>(
        &c.kubectl(&["get", "rr", "-n", NS, "-o", "json"]).await?,
    )?["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = left
        .iter()
        .filter_map(|r| r["metadata"]["name"].as_str())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("drill") && *n != drill),
        "a new drill started while the policy was being deleted: {names:?}"
    );
    assert_eq!(
        point_ids(&repo, "big").await?,
        points_before,
        "a backup ran while the policy was being deleted"
    );
    let _ = stop_tx.send(());
    controller.await??;
    Ok(())
}
