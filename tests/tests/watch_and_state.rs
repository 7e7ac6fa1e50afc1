//! kube-runtime's watcher against the cluster (initial list, live events, re-list after 410 Gone,
//! resuming across a devcluster restart), pagination, selectors, optimistic concurrency,
//! generation and the status subresource, and `--data-dir` persistence.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tend_e2e::{TestCluster, WAIT, eventually, widgets};

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": name}}),
    )
    .expect("configmap")
}

async fn new_ns(c: &TestCluster, ns: &str) -> anyhow::Result<()> {
    c.apply_yaml(
        &[],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
    )
    .await?;
    Ok(())
}

/// Names seen by a kube-runtime watcher, with a count of how many times it (re)listed.
struct Seen {
    names: BTreeSet<String>,
    inits: usize,
    errors: usize,
}

fn spawn_watcher(
    api: Api<ConfigMap>,
    cfg: watcher::Config,
) -> tokio::sync::watch::Receiver<(BTreeSet<String>, usize, usize)> {
    let (tx, rx) = tokio::sync::watch::channel((BTreeSet::new(), 0, 0));
    tokio::spawn(async move {
        let mut seen = Seen {
            names: BTreeSet::new(),
            inits: 0,
            errors: 0,
        };
        let mut stream = watcher(api, cfg).boxed();
        let mut pending = BTreeSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init) => {
                    seen.inits += 1;
                    pending.clear();
                }
                Ok(watcher::Event::InitApply(o)) => {
                    pending.insert(o.metadata.name.unwrap_or_default());
                }
                Ok(watcher::Event::InitDone) => seen.names = std::mem::take(&mut pending),
                Ok(watcher::Event::Apply(o)) => {
                    seen.names.insert(o.metadata.name.unwrap_or_default());
                }
                Ok(watcher::Event::Delete(o)) => {
                    seen.names.remove(&o.metadata.name.unwrap_or_default());
                }
                Err(_) => {
                    seen.errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            if tx
                .send((seen.names.clone(), seen.inits, seen.errors))
                .is_err()
            {
                return;
            }
        }
    });
    rx
}

async fn wait_seen(
    rx: &mut tokio::sync::watch::Receiver<(BTreeSet<String>, usize, usize)>,
    what: &str,
    pred: impl Fn(&(BTreeSet<String>, usize, usize)) -> bool,
) -> anyhow::Result<()> {
    let res = tokio::time::timeout(WAIT, rx.wait_for(|s| pred(s)))
        .await
        .map(|r| r.is_ok());
    if res != Ok(true) {
        anyhow::bail!("timed out waiting for {what}: last {:?}", *rx.borrow());
    }
    Ok(())
}

#[tokio::test]
async fn kube_runtime_watcher_relists_after_410_gone() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = c.devcluster() else {
        return Ok(());
    }; // needs control over the watch history
    new_ns(&c, "w").await?;
    let client = c.client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client, "w");
    api.create(&PostParams::default(), &cm("a", json!({})))
        .await?;
    // A short server-side timeout makes the watcher reconnect with its last resourceVersion.
    let mut rx = spawn_watcher(
        api.clone(),
        watcher::Config::default().timeout(1).disable_bookmarks(),
    );
    wait_seen(&mut rx, "initial list", |s| s.0.contains("a") && s.1 == 1).await?;
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await?;
    wait_seen(&mut rx, "live event", |s| s.0.contains("b")).await?;
    // Forget history (as a compaction would); the reconnect gets 410 Gone and must re-list.
    dc.compact_history();
    wait_seen(&mut rx, "re-list after 410", |s| s.1 >= 2 && s.2 >= 1).await?;
    api.create(&PostParams::default(), &cm("c", json!({})))
        .await?;
    wait_seen(&mut rx, "events after the re-list", |s| {
        s.0.iter().eq(["a", "b", "c"].iter())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn watch_from_an_expired_resource_version_answers_410_in_the_stream() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = c.devcluster() else {
        return Ok(());
    };
    let old_rv = dc.resource_version();
    dc.compact_history();
    let url = format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old_rv}&timeoutSeconds=5"
    );
    let out = c.kubectl(&["get", "--raw", &url]).await?;
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or("{}"))?;
    assert_eq!(first["type"], "ERROR", "{out}");
    assert_eq!(first["object"]["code"], 410, "{out}");
    Ok(())
}

#[tokio::test]
async fn watcher_resumes_across_a_devcluster_restart() -> anyhow::Result<()> {
    let mut c = TestCluster::start().await?;
    if !c.is_devcluster() {
        return Ok(());
    }
    new_ns(&c, "r").await?;
    let client = c.client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "r");
    api.create(&PostParams::default(), &cm("before", json!({})))
        .await?;
    let mut rx = spawn_watcher(api.clone(), watcher::Config::default());
    wait_seen(&mut rx, "initial list", |s| s.0.contains("before")).await?;
    c.restart().await?;
    api.create(&PostParams::default(), &cm("after", json!({})))
        .await?;
    wait_seen(&mut rx, "event after restart", |s| {
        s.0.contains("after") && s.0.contains("before")
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn state_survives_restart_with_data_dir() -> anyhow::Result<()> {
    let mut c = TestCluster::start().await?;
    if !c.is_devcluster() {
        return Ok(());
    }
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("keep", "w1", 3, "blue"))
        .await?;
    let before = c
        .kubectl(&["get", "wd", "w1", "-n", "keep", "-o", "json"])
        .await?;
    let before: serde_json::Value = serde_json::from_str(&before)?;
    c.restart().await?;
    let after = c
        .kubectl(&["get", "wd", "w1", "-n", "keep", "-o", "json"])
        .await?;
    let after: serde_json::Value = serde_json::from_str(&after)?;
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(before["spec"], after["spec"]);
    // resourceVersions keep increasing across the restart.
    c.apply_yaml(&[], &widgets::manifest("keep", "w1", 4, "blue"))
        .await?;
    let rv = |v: &serde_json::Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .parse::<u64>()
            .unwrap_or(0)
    };
    let newer: serde_json::Value = serde_json::from_str(
        &c.kubectl(&["get", "wd", "w1", "-n", "keep", "-o", "json"])
            .await?,
    )?;
    assert!(rv(&newer) > rv(&after));
    Ok(())
}

#[tokio::test]
async fn list_pages_with_limit_and_continue_and_filters_by_selectors() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    new_ns(&c, "p").await?;
    let client = c.client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client, "p");
    for i in 0..25 {
        let tier = if i % 5 == 0 { "gold" } else { "plain" };
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i:02}"), json!({"tier": tier})),
        )
        .await?;
    }
    let mut names = vec![];
    let mut lp = ListParams::default().limit(10);
    let mut pages = 0;
    loop {
        let page = api.list(&lp).await?;
        pages += 1;
        names.extend(
            page.items
                .into_iter()
                .map(|o| o.metadata.name.unwrap_or_default()),
        );
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    let gold = api.list(&ListParams::default().labels("tier=gold")).await?;
    assert_eq!(gold.items.len(), 5);
    let notgold = api
        .list(&ListParams::default().labels("tier notin (gold)"))
        .await?;
    assert_eq!(notgold.items.len(), 20);
    let one = api
        .list(&ListParams::default().fields("metadata.name=cm-07"))
        .await?;
    assert_eq!(one.items.len(), 1);
    let by_kubectl = c
        .kubectl(&[
            "get",
            "cm",
            "-n",
            "p",
            "-l",
            "tier=gold",
            "-o",
            "name",
            "--chunk-size=2",
        ])
        .await?;
    assert_eq!(by_kubectl.lines().count(), 5, "{by_kubectl}");
    Ok(())
}

#[tokio::test]
async fn stale_updates_conflict_and_generation_tracks_spec_only() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("g", "w1", 3, "blue"))
        .await?;
    let client = c.client().await?;
    let api = widgets::api(&client, "g");
    let mut w = api.get("w1").await?;
    assert_eq!(w.metadata.generation, Some(1));
    w.data["spec"]["size"] = json!(4);
    let updated = api.replace("w1", &PostParams::default(), &w).await?;
    assert_eq!(updated.metadata.generation, Some(2));
    // Replaying the old resourceVersion is a conflict.
    let err = api
        .replace("w1", &PostParams::default(), &w)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err:?}"
    );
    // Status writes do not bump generation; the main resource ignores status.
    let st = json!({"status": {"observedGeneration": 2}});
    let s = api
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&st))
        .await?;
    assert_eq!(s.metadata.generation, Some(2));
    assert_eq!(s.data["status"]["observedGeneration"], 2);
    let sneaky = json!({"status": {"observedGeneration": 9}, "metadata": {"labels": {"x": "y"}}});
    let m = api
        .patch("w1", &PatchParams::default(), &Patch::Merge(&sneaky))
        .await?;
    assert_eq!(m.data["status"]["observedGeneration"], 2);
    assert_eq!(
        m.metadata.generation,
        Some(2),
        "metadata changes do not bump generation"
    );
    // A JSON patch works too.
    let ops = r#"[{"op": "replace", "path": "/spec/size", "value": 5}]"#;
    c.kubectl(&["patch", "wd", "w1", "-n", "g", "--type=json", "-p", ops])
        .await?;
    let size = eventually(WAIT, "json patch visible", || async {
        let w = api.get("w1").await.ok()?;
        (w.data["spec"]["size"] == 5).then_some(w.metadata.generation)
    })
    .await?;
    assert_eq!(size, Some(3));
    Ok(())
}
