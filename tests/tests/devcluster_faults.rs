//! devcluster failing like a real API server, on purpose: injected 500/429/504 answers before
//! and after a write commits, lagging and ending watches, stale `resourceVersion=0` reads — and
//! refusing what kube-apiserver refuses: bad metadata, bad events.k8s.io Events, bad label
//! selectors; paged lists read at one revision; foreground, background and orphan deletion.
//!
//! Two kinds of tests live here:
//! - fault-injection tests drive devcluster's own controls. They are devcluster-only: with
//!   `TEND_E2E_KUBECONFIG` set they print that they do not apply and return.
//! - contract tests state the documented kube-apiserver result and run against any cluster.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent};
use kube::runtime::watcher;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tend_e2e::{TestCluster, WAIT, eventually, widgets};

use devcluster::{DevCluster, Fault, FaultResponse, StaleReads};

/// The devcluster under test, or `None` (after saying so) when the tests target another
/// cluster: fault injection needs devcluster's controls.
fn devcluster_only<'a>(c: &'a TestCluster, test: &str) -> Option<&'a DevCluster> {
    let dc = c.devcluster();
    if dc.is_none() {
        assert!(
            std::env::var_os("TEND_E2E_KUBECONFIG").is_some(),
            "no devcluster although TEND_E2E_KUBECONFIG is unset"
        );
        eprintln!("{test}: devcluster-only (fault injection); not run against TEND_E2E_KUBECONFIG");
    }
    dc
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}}))
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

/// The API status of a failed kube call.
fn status_of<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn rv_of(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

/// A bare HTTP/1.1 request to devcluster (to see headers kube-rs hides, and for the control
/// API). Returns (status code, head, body).
async fn raw_http(
    dc: &DevCluster,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", dc.port())).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = vec![];
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, head.to_string(), body.to_string()))
}

#[tokio::test]
async fn each_fault_response_reaches_kubectl_and_kube_rs_as_the_apiserver_sends_it()
-> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "each_fault_response") else {
        return Ok(());
    };
    new_ns(&c, "f").await?;
    let client = c.client_without_retries().await?;
    let api: Api<ConfigMap> = Api::namespaced(client, "f");
    api.create(&PostParams::default(), &cm("x", "1")).await?;
    for (resp, code, reason, kubectl_says) in [
        (
            FaultResponse::InternalError,
            500,
            "InternalError",
            "Error from server (InternalError)",
        ),
        (
            FaultResponse::TooManyRequests {
                retry_after_seconds: 0,
            },
            429,
            "TooManyRequests",
            "Too many requests",
        ),
        (
            FaultResponse::Timeout,
            504,
            "Timeout",
            "Error from server (Timeout)",
        ),
    ] {
        let h = dc.inject(
            Fault::new(resp.clone())
                .verb("get")
                .resource("configmaps")
                .name("x"),
        );
        let s = status_of(api.get("x").await);
        assert_eq!(
            (s.code, s.reason.as_str()),
            (code, reason),
            "{resp:?}: {s:?}"
        );
        assert_eq!((h.fired(), h.remaining()), (1, 0));
        // kubectl retries 429 and 504 on its own; enough answers make it give up with the error.
        let h = dc.inject(
            Fault::new(resp.clone())
                .verb("get")
                .resource("configmaps")
                .name("x")
                .times(20),
        );
        let err = c.kubectl_fails(&["get", "cm", "x", "-n", "f"]).await?;
        assert!(err.contains(kubectl_says), "{resp:?}: {err}");
        assert!(h.fired() >= 1);
        dc.clear_faults();
        api.get("x").await?;
    }
    // 429 comes with Retry-After, as the API server's priority-and-fairness sends it.
    dc.inject(Fault::new(FaultResponse::TooManyRequests {
        retry_after_seconds: 7,
    }));
    let (code, head, body) = raw_http(dc, "GET", "/api/v1/namespaces/f/configmaps/x", "").await?;
    assert_eq!(code, 429, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 7"),
        "{head}"
    );
    let status: Value = serde_json::from_str(&body)?;
    assert_eq!(status["details"]["retryAfterSeconds"], 7, "{body}");
    Ok(())
}

#[tokio::test]
async fn a_fault_before_commit_writes_nothing() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "a_fault_before_commit_writes_nothing") else {
        return Ok(());
    };
    new_ns(&c, "b").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client_without_retries().await?, "b");
    let before = dc.resource_version();
    let h = dc.inject(
        Fault::new(FaultResponse::InternalError)
            .verb("create")
            .resource("configmaps")
            .namespace("b"),
    );
    let s = status_of(api.create(&PostParams::default(), &cm("x", "1")).await);
    assert_eq!(s.code, 500);
    assert!(api.get_opt("x").await?.is_none(), "nothing was written");
    assert_eq!(dc.resource_version(), before, "no resourceVersion was used");
    assert_eq!((h.fired(), h.remaining()), (1, 0));
    // Once used up the fault stops matching.
    api.create(&PostParams::default(), &cm("x", "1")).await?;
    // A fault for one subresource leaves the main resource alone, and the other way round.
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("b", "w", 1, "red"))
        .await?;
    let w = widgets::api(&c.client_without_retries().await?, "b");
    let h = dc.inject(
        Fault::new(FaultResponse::Timeout)
            .verb("patch")
            .resource("widgets")
            .subresource("status"),
    );
    let spec = json!({"spec": {"size": 2}});
    w.patch("w", &PatchParams::default(), &Patch::Merge(&spec))
        .await?;
    assert_eq!(h.fired(), 0);
    let status = json!({"status": {"observedGeneration": 2}});
    let s = status_of(
        w.patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
            .await,
    );
    assert_eq!(s.code, 504);
    assert!(
        w.get("w")
            .await?
            .data
            .get("status")
            .is_none_or(|s| s.get("observedGeneration").is_none())
    );
    Ok(())
}

#[tokio::test]
async fn a_fault_after_commit_changes_the_object_though_the_client_sees_an_error()
-> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "a_fault_after_commit") else {
        return Ok(());
    };
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("a", "w", 1, "red"))
        .await?;
    let plain = c.client_without_retries().await?;
    let w = widgets::api(&plain, "a");
    let before = w.get("w").await?;
    // Someone watching sees the change even though the writer was told it failed.
    let watch_from = before.metadata.resource_version.clone().unwrap_or_default();
    let mut events = w
        .watch(&kube::api::WatchParams::default().timeout(10), &watch_from)
        .await?
        .boxed();
    let h = dc.inject(
        Fault::new(FaultResponse::InternalError)
            .verb("patch")
            .resource("widgets")
            .subresource("status")
            .after_commit(),
    );
    let status = json!({"status": {"observedGeneration": 1}});
    let s = status_of(
        w.patch_status("w", &PatchParams::default(), &Patch::Merge(&status))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert_eq!(h.fired(), 1);
    let after = w.get("w").await?;
    assert_eq!(
        after.data["status"]["observedGeneration"], 1,
        "the write was committed"
    );
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
    let ev = tokio::time::timeout(WAIT, events.try_next()).await??;
    match ev {
        Some(WatchEvent::Modified(o)) => {
            assert_eq!(o.data["status"]["observedGeneration"], 1);
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    // A lost create: kube's default client retries the 504 and then finds the object it
    // created itself already there.
    new_ns(&c, "a2").await?;
    let retrying: Api<ConfigMap> = Api::namespaced(c.client().await?, "a2");
    let h = dc.inject(
        Fault::new(FaultResponse::Timeout)
            .verb("create")
            .resource("configmaps")
            .after_commit(),
    );
    let s = status_of(
        retrying
            .create(&PostParams::default(), &cm("once", "1"))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"), "{s:?}");
    assert_eq!(h.fired(), 1);
    assert_eq!(
        retrying.get("once").await?.data.unwrap_or_default()["v"],
        "1"
    );

    // A lost delete: the object is gone although the client was told otherwise.
    let h = dc.inject(
        Fault::new(FaultResponse::InternalError)
            .verb("delete")
            .resource("configmaps")
            .name("once")
            .after_commit(),
    );
    let s = status_of(retrying.delete("once", &DeleteParams::default()).await);
    assert_eq!(s.code, 500);
    assert_eq!(h.fired(), 1);
    assert!(retrying.get_opt("once").await?.is_none());

    // A write that fails on its own is not turned into a success-that-was-lost: the real error
    // wins and the fault stays armed.
    retrying
        .create(&PostParams::default(), &cm("dup", "1"))
        .await?;
    let h = dc.inject(
        Fault::new(FaultResponse::InternalError)
            .verb("create")
            .resource("configmaps")
            .after_commit(),
    );
    let s = status_of(
        retrying
            .create(&PostParams::default(), &cm("dup", "1"))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!((h.fired(), h.remaining()), (0, 1));
    Ok(())
}

#[tokio::test]
async fn times_answers_that_many_requests_then_stops() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "times_answers_that_many_requests") else {
        return Ok(());
    };
    new_ns(&c, "t").await?;
    let plain: Api<ConfigMap> = Api::namespaced(c.client_without_retries().await?, "t");
    plain.create(&PostParams::default(), &cm("x", "1")).await?;
    let h = dc.inject(
        Fault::new(FaultResponse::TooManyRequests {
            retry_after_seconds: 0,
        })
        .verb("list")
        .resource("configmaps")
        .times(3),
    );
    for i in 0..3 {
        let s = status_of(plain.list(&ListParams::default()).await);
        assert_eq!(s.code, 429, "answer {i}");
    }
    assert_eq!((h.fired(), h.remaining()), (3, 0));
    assert_eq!(plain.list(&ListParams::default()).await?.items.len(), 1);
    assert_eq!(h.fired(), 3);
    // kube's default client retries 429 on its own: two refusals are invisible to the caller.
    let retrying: Api<ConfigMap> = Api::namespaced(c.client().await?, "t");
    let h = dc.inject(
        Fault::new(FaultResponse::TooManyRequests {
            retry_after_seconds: 0,
        })
        .verb("list")
        .times(2),
    );
    assert_eq!(retrying.list(&ListParams::default()).await?.items.len(), 1);
    assert_eq!((h.fired(), h.remaining()), (2, 0));
    Ok(())
}

#[tokio::test]
async fn a_fault_on_a_watch_refuses_it_or_ends_it_with_the_status() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "a_fault_on_a_watch") else {
        return Ok(());
    };
    new_ns(&c, "wf").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client_without_retries().await?, "wf");
    api.create(&PostParams::default(), &cm("x", "1")).await?;
    dc.inject(Fault::new(FaultResponse::InternalError).verb("watch"));
    let refused = api.watch(&kube::api::WatchParams::default(), "0").await;
    assert_eq!(status_of(refused.map(|_| ())).code, 500);
    // After commit: the initial events arrive, then an ERROR event with the status ends it.
    dc.inject(
        Fault::new(FaultResponse::Timeout)
            .verb("watch")
            .resource("configmaps")
            .after_commit(),
    );
    let out = c
        .kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/wf/configmaps?watch=true&timeoutSeconds=20",
        ])
        .await?;
    let lines: Vec<Value> = out
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0]["type"], "ADDED");
    assert_eq!(lines[1]["type"], "ERROR");
    assert_eq!(lines[1]["object"]["code"], 504);
    assert_eq!(lines[1]["object"]["reason"], "Timeout");
    Ok(())
}

#[tokio::test]
async fn watch_delay_holds_every_event_back_and_keeps_their_order() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "watch_delay_holds_every_event_back") else {
        return Ok(());
    };
    new_ns(&c, "wd").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "wd");
    let base = Duration::from_millis(400);
    dc.set_watch_delay(base, Duration::from_millis(300));
    let start_rv = dc.resource_version().to_string();
    let mut stream = api
        .watch(&kube::api::WatchParams::default().timeout(30), &start_rv)
        .await?
        .boxed();
    let mut written = vec![];
    for i in 0..8 {
        let name = format!("c{i}");
        api.create(&PostParams::default(), &cm(&name, "1")).await?;
        written.push((name, Instant::now()));
    }
    let mut seen = vec![];
    while seen.len() < written.len() {
        match tokio::time::timeout(WAIT, stream.try_next()).await?? {
            Some(WatchEvent::Added(o)) => {
                seen.push((o.metadata.name.unwrap_or_default(), Instant::now()))
            }
            Some(WatchEvent::Bookmark(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let order: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, want, "order per watch is kept");
    for ((name, wrote), (_, got)) in written.iter().zip(&seen) {
        assert!(
            got.duration_since(*wrote) >= base - Duration::from_millis(20),
            "{name} arrived {:?} after it was written",
            got.duration_since(*wrote)
        );
    }
    // Turned off, events flow at once again.
    dc.set_watch_delay(Duration::ZERO, Duration::ZERO);
    let t = Instant::now();
    api.create(&PostParams::default(), &cm("fast", "1")).await?;
    loop {
        if let Some(WatchEvent::Added(o)) = tokio::time::timeout(WAIT, stream.try_next()).await?? {
            assert_eq!(o.metadata.name.as_deref(), Some("fast"));
            break;
        }
    }
    assert!(t.elapsed() < base, "{:?}", t.elapsed());
    Ok(())
}

#[tokio::test]
async fn stale_reads_serve_resource_version_0_from_the_past() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "stale_reads_serve_resource_version_0") else {
        return Ok(());
    };
    new_ns(&c, "s").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "s");
    api.create(&PostParams::default(), &cm("old", "1")).await?;
    dc.set_stale_reads(Some(StaleReads {
        lag: Duration::from_secs(5),
    }));
    // Generous: everything below, kubectl included, must happen within the lag on a busy CI.
    tokio::time::sleep(Duration::from_millis(5200)).await;
    let old_rv = dc.resource_version();
    api.create(&PostParams::default(), &cm("new", "1")).await?;
    let p = json!({"data": {"v": "2"}});
    api.patch("old", &PatchParams::default(), &Patch::Merge(&p))
        .await?;
    // From "cache": the state before the two writes, at its own older resourceVersion.
    let stale = api.list(&ListParams::default().match_any()).await?;
    let names: Vec<String> = stale
        .items
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["old"]);
    assert_eq!(stale.items[0].data.as_ref().unwrap()["v"], "1");
    assert_eq!(
        stale.metadata.resource_version.as_deref(),
        Some(old_rv.to_string().as_str())
    );
    let (code, _, _) = raw_http(
        dc,
        "GET",
        "/api/v1/namespaces/s/configmaps/new?resourceVersion=0",
        "",
    )
    .await?;
    assert_eq!(code, 404, "a get from cache does not see it yet");
    // A consistent read (no resourceVersion) sees the present, as kubectl does.
    let fresh = api.list(&ListParams::default()).await?;
    assert_eq!(fresh.items.len(), 2);
    let out = c.kubectl(&["get", "cm", "-n", "s", "-o", "name"]).await?;
    assert!(out.contains("configmap/new"), "{out}");
    // kube-runtime's watcher lists from cache, then catches up through its watch.
    let names = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let seen = names.clone();
    let task = tokio::spawn(async move {
        let mut s = watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(ev)) = s.next().await {
            if let watcher::Event::Apply(o) | watcher::Event::InitApply(o) = ev {
                seen.lock()
                    .unwrap()
                    .insert(o.metadata.name.unwrap_or_default());
            }
        }
    });
    eventually(WAIT, "the watcher to catch up", || async {
        names.lock().unwrap().contains("new").then_some(())
    })
    .await?;
    task.abort();
    // A watch from rv=0 starts from the lagging cache too, then replays what happened since.
    let out = c
        .kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/s/configmaps?watch=true&resourceVersion=0&timeoutSeconds=1",
        ])
        .await?;
    let events: Vec<(String, String, String)> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["object"]["data"]["v"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let ev = |t: &str, n: &str, v: &str| (t.to_string(), n.to_string(), v.to_string());
    assert_eq!(
        events,
        [
            ev("ADDED", "old", "1"),
            ev("ADDED", "new", "1"),
            ev("MODIFIED", "old", "2")
        ],
        "{out}"
    );
    dc.set_stale_reads(None);
    let (code, _, _) = raw_http(
        dc,
        "GET",
        "/api/v1/namespaces/s/configmaps/new?resourceVersion=0",
        "",
    )
    .await?;
    assert_eq!(code, 200);
    Ok(())
}

#[tokio::test]
async fn close_watches_makes_kube_runtime_watchers_relist() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "close_watches_makes_watchers_relist") else {
        return Ok(());
    };
    new_ns(&c, "cw").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "cw");
    api.create(&PostParams::default(), &cm("a", "1")).await?;
    let (tx, mut rx) = tokio::sync::watch::channel((0usize, BTreeSet::<String>::new()));
    let w = api.clone();
    let task = tokio::spawn(async move {
        let mut inits = 0;
        let mut names = BTreeSet::new();
        let mut s = watcher(w, watcher::Config::default()).boxed();
        while let Some(ev) = s.next().await {
            match ev {
                Ok(watcher::Event::Init) => inits += 1,
                Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => {
                    names.insert(o.metadata.name.unwrap_or_default());
                }
                _ => {}
            }
            let _ = tx.send((inits, names.clone()));
        }
    });
    tokio::time::timeout(WAIT, rx.wait_for(|s| s.0 == 1 && s.1.contains("a"))).await??;
    // Something else changes, so the watcher's last resourceVersion is older than "now".
    new_ns(&c, "cw-other").await?;
    dc.close_watches();
    tokio::time::timeout(WAIT, rx.wait_for(|s| s.0 >= 2)).await??;
    api.create(&PostParams::default(), &cm("b", "1")).await?;
    tokio::time::timeout(WAIT, rx.wait_for(|s| s.1.contains("b"))).await??;
    task.abort();
    Ok(())
}

#[tokio::test]
async fn the_http_control_api_injects_and_clears_faults() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let Some(dc) = devcluster_only(&c, "the_http_control_api") else {
        return Ok(());
    };
    new_ns(&c, "h").await?;
    let (code, _, body) = raw_http(
        dc,
        "POST",
        "/devcluster/v1/faults",
        r#"{"response":"InternalError","verb":"list","resource":"configmaps","times":50}"#,
    )
    .await?;
    assert_eq!(code, 201, "{body}");
    let err = c.kubectl_fails(&["get", "cm", "-n", "h"]).await?;
    assert!(
        err.contains("InternalError") || err.contains("Internal error"),
        "{err}"
    );
    let (_, _, listed) = raw_http(dc, "GET", "/devcluster/v1/faults", "").await?;
    let listed: Value = serde_json::from_str(&listed)?;
    assert!(listed["faults"][0]["fired"].as_u64() >= Some(1), "{listed}");
    let (code, _, _) = raw_http(dc, "DELETE", "/devcluster/v1/faults", "").await?;
    assert_eq!(code, 200);
    c.kubectl(&["get", "cm", "-n", "h"]).await?;
    let (code, _, body) = raw_http(
        dc,
        "POST",
        "/devcluster/v1/faults",
        r#"{"response":"Teapot"}"#,
    )
    .await?;
    assert_eq!(code, 400, "{body}");
    let (code, _, _) = raw_http(
        dc,
        "PUT",
        "/devcluster/v1/stale-reads",
        r#"{"lagMillis":1000}"#,
    )
    .await?;
    assert_eq!(code, 200);
    let (code, _, _) = raw_http(dc, "DELETE", "/devcluster/v1/stale-reads", "").await?;
    assert_eq!(code, 200);
    let (code, _, _) = raw_http(
        dc,
        "PUT",
        "/devcluster/v1/watch-delay",
        r#"{"baseMillis":10,"jitterMillis":5}"#,
    )
    .await?;
    assert_eq!(code, 200);
    let (code, _, _) = raw_http(dc, "POST", "/devcluster/v1/close-watches", "").await?;
    assert_eq!(code, 200);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Contract tests: the documented kube-apiserver result; these run against any cluster.
// ---------------------------------------------------------------------------------------------

async fn refused(api: &Api<ConfigMap>, obj: Value) -> kube::core::Status {
    let cm: ConfigMap = serde_json::from_value(obj).expect("configmap");
    status_of(api.create(&PostParams::default(), &cm).await)
}

#[tokio::test]
async fn object_metadata_is_validated_as_the_apiserver_does() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    new_ns(&c, "meta").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "meta");
    let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
    for (obj, wants) in [
        (
            json!({"metadata": {"name": "l1", "labels": {"-app": "x"}}}),
            vec![
                "ConfigMap \"l1\" is invalid: metadata.labels: Invalid value: \"-app\": ".to_string(),
                name_part.to_string(),
            ],
        ),
        (
            json!({"metadata": {"name": "l2", "labels": {"app": "a b"}}}),
            vec!["metadata.labels: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters".to_string()],
        ),
        (
            json!({"metadata": {"name": "l3", "labels": {"app": "x".repeat(64)}}}),
            vec!["must be no more than 63 characters".to_string()],
        ),
        (
            json!({"metadata": {"name": "l4", "labels": {"Bad_Prefix/app": "x"}}}),
            vec!["metadata.labels: Invalid value: \"Bad_Prefix/app\": prefix part a lowercase RFC 1123 subdomain".to_string()],
        ),
        (
            json!({"metadata": {"name": "a1", "annotations": {"bad key": "x"}}}),
            vec!["metadata.annotations: Invalid value: \"bad key\": ".to_string(), name_part.to_string()],
        ),
        (
            json!({"metadata": {"name": "a2", "annotations": {"big": "x".repeat(256 * 1024)}}}),
            vec!["metadata.annotations: Too long".to_string()],
        ),
        (
            json!({"metadata": {"name": "Upper"}}),
            vec!["metadata.name: Invalid value: \"Upper\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_string()],
        ),
        (
            json!({"metadata": {"name": "f1", "finalizers": ["bad finalizer"]}}),
            vec!["metadata.finalizers: Invalid value: \"bad finalizer\"".to_string()],
        ),
        (
            json!({"metadata": {"name": "o1", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": ""}]}}),
            vec!["metadata.ownerReferences.uid: Invalid value: \"\": must not be empty".to_string()],
        ),
        (
            json!({"metadata": {"name": "o2", "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": "00000000-0000-4000-8000-000000000001", "controller": true},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "00000000-0000-4000-8000-000000000002", "controller": true}]}}),
            vec!["Only one reference can have Controller set to true. Found \"true\" in references for ConfigMap/a and ConfigMap/b".to_string()],
        ),
    ] {
        let s = refused(&api, obj.clone()).await;
        assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"), "{obj}: {s:?}");
        for want in &wants {
            assert!(s.message.contains(want.as_str()), "{obj}:\n{}\nlacks {want}", s.message);
        }
    }
    assert!(
        api.list(&ListParams::default()).await?.items.is_empty(),
        "nothing was stored"
    );
    // What is valid passes: empty label values, prefixed keys, upper case in annotation keys,
    // a standard finalizer without a domain.
    let ok: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "ok",
        "labels": {"example.com/tier": "", "app.kubernetes.io/name": "My_App-1.0"},
        "annotations": {"Example.com/Note": "x"},
        "finalizers": ["kubernetes", "e2e.tend.dev/hold"]}}))?;
    api.create(&PostParams::default(), &ok).await?;
    // Updates are held to the same rules.
    let bad = json!({"metadata": {"labels": {"-x": "y"}}});
    let s = status_of(
        api.patch("ok", &PatchParams::default(), &Patch::Merge(&bad))
            .await,
    );
    assert_eq!(s.code, 422, "{s:?}");
    let clear = json!({"metadata": {"finalizers": null}});
    api.patch("ok", &PatchParams::default(), &Patch::Merge(&clear))
        .await?;
    // kubectl shows the same refusal.
    let err = c
        .apply_yaml(
            &[],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k1\n  namespace: meta\n  labels:\n    app: \"a b\"\n",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metadata.labels: Invalid value: \"a b\""),
        "{err}"
    );
    Ok(())
}

fn event(name: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "e2e.tend.dev/test",
        "reportingInstance": "e2e-0",
        "action": "Check",
        "reason": "Checked",
        "note": "fine",
        "type": "Normal",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "namespace": ns}
    })
}

#[tokio::test]
async fn events_k8s_io_events_are_validated_as_the_apiserver_does() -> anyhow::Result<()> {
    use k8s_openapi::api::events::v1::Event;
    let c = TestCluster::start().await?;
    new_ns(&c, "ev").await?;
    let api: Api<Event> = Api::namespaced(c.client().await?, "ev");
    let create = |v: Value| {
        let api = api.clone();
        async move {
            let e: Event = serde_json::from_value(v).expect("event");
            api.create(&PostParams::default(), &e).await
        }
    };
    create(event("ok", "ev")).await?;
    let edge = {
        let mut e = event("edge", "ev");
        e["note"] = json!("n".repeat(1024));
        e["reason"] = json!("r".repeat(128));
        e["action"] = json!("a".repeat(128));
        e
    };
    create(edge).await?;
    for (change, want) in [
        (
            json!({"note": "n".repeat(1025)}),
            "message: Invalid value: \"\": can have at most 1024 characters",
        ),
        (
            json!({"reason": "r".repeat(129)}),
            "reason: Invalid value: \"\": can have at most 128 characters",
        ),
        (
            json!({"action": "a".repeat(129)}),
            "action: Invalid value: \"\": can have at most 128 characters",
        ),
        (json!({"action": null}), "action: Required value"),
        (json!({"reason": null}), "reason: Required value"),
        (
            json!({"reportingController": null}),
            "reportingController: Required value",
        ),
        (
            json!({"reportingInstance": null}),
            "reportingInstance: Required value",
        ),
        (json!({"eventTime": null}), "eventTime: Required value"),
        (
            json!({"type": "Info"}),
            "type: Invalid value: \"\": has invalid value: Info",
        ),
        (
            json!({"regarding": {"kind": "ConfigMap", "name": "x"}}),
            "involvedObject.namespace: Invalid value: \"\": does not match event.namespace",
        ),
    ] {
        let mut e = event("bad", "ev");
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                e.as_object_mut().unwrap().remove(k);
            } else {
                e[k] = v.clone();
            }
        }
        let s = status_of(create(e).await);
        assert_eq!(
            (s.code, s.reason.as_str()),
            (422, "Invalid"),
            "{change}: {s:?}"
        );
        assert!(
            s.message.contains("Event.events.k8s.io \"bad\" is invalid"),
            "{}",
            s.message
        );
        assert!(s.message.contains(want), "{change}: {}", s.message);
    }
    // The fields that identify an event cannot change afterwards.
    let p = json!({"reason": "Other"});
    let s = status_of(
        api.patch("ok", &PatchParams::default(), &Patch::Merge(&p))
            .await,
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .contains("reason: Invalid value: \"Other\": field is immutable"),
        "{}",
        s.message
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_label_selector_is_a_400_with_the_apiserver_message() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    new_ns(&c, "sel").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "sel");
    for (sel, want) in [
        (
            "a in b",
            "unable to parse requirement: found 'b' expected: '('",
        ),
        ("a,", "found '', expected: identifier after ','"),
        ("-a", "unable to parse requirement: "),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ] {
        let s = status_of(api.list(&ListParams::default().labels(sel)).await);
        assert_eq!(
            (s.code, s.reason.as_str()),
            (400, "BadRequest"),
            "{sel}: {s:?}"
        );
        assert!(s.message.contains(want), "{sel}: {}", s.message);
        let w = api
            .watch(&kube::api::WatchParams::default().labels(sel), "0")
            .await
            .map(|_| ());
        assert_eq!(status_of(w).code, 400, "{sel}");
    }
    let err = c
        .kubectl_fails(&["get", "cm", "-n", "sel", "-l", "a in b"])
        .await?;
    assert!(err.contains("unable to parse requirement"), "{err}");
    // Valid forms work.
    api.create(&PostParams::default(), &{
        let mut m = cm("x", "1");
        m.metadata.labels = Some([("tier".to_string(), "5".to_string())].into());
        m
    })
    .await?;
    for sel in [
        "tier in (5,6)",
        "tier notin ()",
        "!absent",
        "tier>4",
        "tier",
        "tier=5,tier!=6",
    ] {
        let n = api
            .list(&ListParams::default().labels(sel))
            .await?
            .items
            .len();
        assert_eq!(n, 1, "{sel}");
    }
    Ok(())
}

#[tokio::test]
async fn pages_of_one_list_share_one_resource_version_despite_concurrent_writes()
-> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    new_ns(&c, "pg").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.client().await?, "pg");
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), "1"))
            .await?;
    }
    let first = api.list(&ListParams::default().limit(2)).await?;
    let rv = first.metadata.resource_version.clone();
    let token = first.metadata.continue_.clone().expect("a continue token");
    // Writes between pages: a new object, a change and a deletion after the first page.
    api.create(&PostParams::default(), &cm("c9", "1")).await?;
    let p = json!({"data": {"v": "2"}});
    api.patch("c3", &PatchParams::default(), &Patch::Merge(&p))
        .await?;
    api.delete("c4", &DeleteParams::default()).await?;
    let mut names: Vec<String> = first
        .items
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .collect();
    let mut token = Some(token);
    while let Some(t) = token.take() {
        let page = api
            .list(&ListParams::default().limit(2).continue_token(&t))
            .await?;
        assert_eq!(
            page.metadata.resource_version, rv,
            "every page has the first page's resourceVersion"
        );
        for o in &page.items {
            if o.metadata.name.as_deref() == Some("c3") {
                assert_eq!(
                    o.data.as_ref().unwrap()["v"],
                    "1",
                    "the page shows the state at the list's revision"
                );
            }
            names.push(o.metadata.name.clone().unwrap_or_default());
        }
        token = page.metadata.continue_.filter(|c| !c.is_empty());
    }
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    // A new list sees the present.
    let now = api.list(&ListParams::default()).await?;
    assert!(rv_of(&now.items[0]) > 0);
    let names: Vec<String> = now
        .items
        .iter()
        .map(|o| o.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c9"]);
    // An expired continue token is 410 Gone (devcluster can expire one at will).
    if let Some(dc) = c.devcluster() {
        let first = api.list(&ListParams::default().limit(2)).await?;
        let t = first.metadata.continue_.expect("token");
        api.create(&PostParams::default(), &cm("c10", "1")).await?;
        dc.compact_history();
        let s = status_of(
            api.list(&ListParams::default().limit(2).continue_token(&t))
                .await,
        );
        assert_eq!((s.code, s.reason.as_str()), (410, "Expired"), "{s:?}");
        assert!(
            s.message
                .contains("The provided continue parameter is too old"),
            "{}",
            s.message
        );
    }
    Ok(())
}

fn owned_cm(
    name: &str,
    owner: &kube::api::DynamicObject,
    block: bool,
    finalizer: bool,
) -> ConfigMap {
    let mut v = json!({"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "e2e.tend.dev/v1", "kind": "Widget",
        "name": owner.metadata.name, "uid": owner.metadata.uid,
        "blockOwnerDeletion": block}]}, "data": {"v": "1"}});
    if finalizer {
        v["metadata"]["finalizers"] = json!(["e2e.tend.dev/hold"]);
    }
    serde_json::from_value(v).expect("configmap")
}

#[tokio::test]
async fn foreground_deletion_removes_blocking_dependents_before_the_owner() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("fg", "w1", 1, "red"))
        .await?;
    let client = c.client().await?;
    let w = widgets::api(&client, "fg");
    let owner = w.get("w1").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "fg");
    cms.create(
        &PostParams::default(),
        &owned_cm("held", &owner, true, true),
    )
    .await?;
    cms.create(
        &PostParams::default(),
        &owned_cm("loose", &owner, false, false),
    )
    .await?;
    w.delete("w1", &DeleteParams::foreground()).await?;
    // The owner waits, marked, with the foregroundDeletion finalizer.
    let marked = w.get("w1").await?;
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(
        marked
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == "foregroundDeletion")
    );
    // Its dependents are deleted; the held one waits for its own finalizer.
    eventually(WAIT, "dependents deleted", || async {
        let held = cms.get_opt("held").await.ok().flatten()?;
        let loose_gone = cms.get_opt("loose").await.ok()?.is_none();
        (held.metadata.deletion_timestamp.is_some() && loose_gone).then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        w.get_opt("w1").await?.is_some(),
        "a blocking dependent holds the owner"
    );
    let clear = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&clear))
        .await?;
    eventually(
        WAIT,
        "owner removed after its blocking dependent",
        || async { w.get_opt("w1").await.ok()?.is_none().then_some(()) },
    )
    .await?;
    assert!(cms.get_opt("held").await?.is_none());

    // kubectl delete --cascade=foreground waits until owner and dependents are gone.
    c.apply_yaml(&[], &widgets::manifest("fg", "w2", 1, "red"))
        .await?;
    let owner = w.get("w2").await?;
    cms.create(
        &PostParams::default(),
        &owned_cm("dep2", &owner, true, false),
    )
    .await?;
    c.kubectl(&[
        "delete",
        "widget",
        "w2",
        "-n",
        "fg",
        "--cascade=foreground",
        "--timeout=60s",
    ])
    .await?;
    assert!(w.get_opt("w2").await?.is_none());
    assert!(cms.get_opt("dep2").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn background_deletion_removes_the_owner_first_and_collects_dependents_later()
-> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("bg", "w1", 1, "red"))
        .await?;
    c.apply_yaml(&[], &widgets::manifest("bg", "w2", 1, "red"))
        .await?;
    let client = c.client().await?;
    let w = widgets::api(&client, "bg");
    let owner = w.get("w1").await?;
    let other = w.get("w2").await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "bg");
    cms.create(
        &PostParams::default(),
        &owned_cm("dep", &owner, true, false),
    )
    .await?;
    // A dependent with a second, live owner survives and only loses the dangling reference.
    let mut shared = owned_cm("shared", &owner, false, false);
    let mut refs = shared.metadata.owner_references.clone().unwrap_or_default();
    refs.extend(
        owned_cm("x", &other, false, false)
            .metadata
            .owner_references
            .unwrap_or_default(),
    );
    shared.metadata.owner_references = Some(refs);
    cms.create(&PostParams::default(), &shared).await?;
    w.delete("w1", &DeleteParams::background()).await?;
    assert!(w.get_opt("w1").await?.is_none(), "the owner goes at once");
    if c.is_devcluster() {
        // The garbage collector runs a little later: for a moment the dependent outlives its
        // owner, as in a real cluster. (Timing on a real cluster varies, so only here.)
        assert!(
            cms.get_opt("dep").await?.is_some(),
            "the dependent is collected later"
        );
    }
    eventually(WAIT, "dependent collected", || async {
        cms.get_opt("dep").await.ok()?.is_none().then_some(())
    })
    .await?;
    eventually(WAIT, "dangling reference removed", || async {
        let s = cms.get_opt("shared").await.ok()??;
        let refs = s.metadata.owner_references.unwrap_or_default();
        (refs.len() == 1 && refs[0].name == "w2").then_some(())
    })
    .await?;
    // Orphan: the owner goes, the dependent stays without the reference.
    cms.create(
        &PostParams::default(),
        &owned_cm("kept", &other, true, false),
    )
    .await?;
    w.delete("w2", &DeleteParams::orphan()).await?;
    eventually(WAIT, "owner gone, dependent orphaned", || async {
        let gone = w.get_opt("w2").await.ok()?.is_none();
        let kept = cms.get_opt("kept").await.ok()??;
        let has_ref = kept
            .metadata
            .owner_references
            .unwrap_or_default()
            .iter()
            .any(|r| r.name == "w2");
        (gone && !has_ref).then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        cms.get_opt("kept").await?.is_some(),
        "an orphan is never collected"
    );
    Ok(())
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "e2e.tend.dev/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test]
async fn server_side_apply_tracks_field_ownership_like_the_apiserver() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    new_ns(&c, "ssa").await?;
    let client = c.client().await?;
    let w = widgets::api(&client, "ssa");
    let as_mgr = |m: &str| PatchParams::apply(m);
    // kubectl applies; another manager changing the same field is refused with 409.
    c.apply_yaml(
        &["--server-side"],
        "apiVersion: e2e.tend.dev/v1\nkind: Widget\nmetadata: {name: w, namespace: ssa}\nspec: {size: 1, color: red}\n",
    )
    .await?;
    let s = status_of(
        w.patch(
            "w",
            &as_mgr("other"),
            &Patch::Apply(&widget("w", json!({"size": 2}))),
        )
        .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}");
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"kubectl\" using e2e.tend.dev/v1: .spec.size"
    );
    // The same value is shared ownership, not a conflict.
    w.patch(
        "w",
        &as_mgr("other"),
        &Patch::Apply(&widget("w", json!({"size": 1, "color": "red"}))),
    )
    .await?;
    // Forced, the field moves to the applier; kubectl is refused next time.
    w.patch(
        "w",
        &as_mgr("other").force(),
        &Patch::Apply(&widget("w", json!({"size": 3, "color": "red"}))),
    )
    .await?;
    let err = c
        .apply_yaml(
            &["--server-side"],
            "apiVersion: e2e.tend.dev/v1\nkind: Widget\nmetadata: {name: w, namespace: ssa}\nspec: {size: 1, color: red}\n",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("conflict with \"other\""), "{err}");
    // "other" stops applying color: kubectl still owns it, so it stays.
    w.patch(
        "w",
        &as_mgr("other"),
        &Patch::Apply(&widget("w", json!({"size": 3}))),
    )
    .await?;
    assert_eq!(w.get("w").await?.data["spec"]["color"], "red");
    // A no-op apply writes nothing: same resourceVersion.
    let before = w.get("w").await?.metadata.resource_version;
    w.patch(
        "w",
        &as_mgr("other"),
        &Patch::Apply(&widget("w", json!({"size": 3}))),
    )
    .await?;
    assert_eq!(w.get("w").await?.metadata.resource_version, before);
    // A merge patch takes ownership of what it changes.
    let p = json!({"spec": {"size": 4}});
    w.patch(
        "w",
        &PatchParams {
            field_manager: Some("editor".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(&p),
    )
    .await?;
    let s = status_of(
        w.patch(
            "w",
            &as_mgr("other"),
            &Patch::Apply(&widget("w", json!({"size": 3}))),
        )
        .await,
    );
    assert!(
        s.message.contains("conflict with \"editor\""),
        "{}",
        s.message
    );
    // Conditions are a map list keyed by type: each manager's items merge, and a manager
    // dropping its condition removes only that one.
    let cond = |t: &str| {
        json!({"type": t, "status": "True", "reason": "R", "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    };
    let status = |conds: Vec<Value>| {
        json!({"apiVersion": "e2e.tend.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
               "status": {"conditions": conds}})
    };
    w.patch_status(
        "w",
        &as_mgr("a"),
        &Patch::Apply(&status(vec![cond("Ready")])),
    )
    .await?;
    w.patch_status(
        "w",
        &as_mgr("b"),
        &Patch::Apply(&status(vec![cond("Synced")])),
    )
    .await?;
    let types = |o: &kube::api::DynamicObject| -> Vec<String> {
        o.data["status"]["conditions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["type"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(types(&w.get("w").await?), ["Ready", "Synced"]);
    let only_gen = json!({"apiVersion": "e2e.tend.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
                          "status": {"observedGeneration": 1}});
    w.patch_status("w", &as_mgr("a"), &Patch::Apply(&only_gen))
        .await?;
    assert_eq!(types(&w.get("w").await?), ["Synced"]);
    Ok(())
}

#[tokio::test]
async fn switching_from_client_side_to_server_side_apply_does_not_conflict() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    let manifest = widgets::manifest("csa", "w", 2, "blue");
    c.apply_yaml(&[], &manifest).await?;
    // kubectl hands the client-side apply fields over to its server-side manager.
    let out = c.apply_yaml(&["--server-side"], &manifest).await?;
    assert!(out.contains("serverside-applied"), "{out}");
    let changed = widgets::manifest("csa", "w", 3, "blue");
    c.apply_yaml(&["--server-side"], &changed).await?;
    let w = widgets::api(&c.client().await?, "csa").get("w").await?;
    assert_eq!(w.data["spec"]["size"], 3);
    Ok(())
}
