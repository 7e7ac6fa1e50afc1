//! kubectl against the cluster: apply (client-side and server-side), printer columns,
//! categories, admission errors, describe with events, wait, finalizers, garbage collection.

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use tend_e2e::{TestCluster, WAIT, eventually, widgets};

#[tokio::test]
async fn apply_client_side_and_server_side_then_get_prints_columns() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    let out = c
        .apply_yaml(&[], &widgets::manifest("shop", "w1", 3, "blue"))
        .await?;
    assert!(out.contains("widget.e2e.tend.dev/w1 created"), "{out}");
    // Re-applying with a change goes through kubectl's three-way merge patch.
    let out = c
        .apply_yaml(&[], &widgets::manifest("shop", "w1", 4, "blue"))
        .await?;
    assert!(out.contains("widget.e2e.tend.dev/w1 configured"), "{out}");
    let out = c
        .apply_yaml(
            &["--server-side"],
            &widgets::manifest("shop", "w2", 5, "red"),
        )
        .await?;
    assert!(
        out.contains("widget.e2e.tend.dev/w2 serverside-applied"),
        "{out}"
    );
    let out = c
        .apply_yaml(
            &["--server-side", "--force-conflicts"],
            &widgets::manifest("shop", "w1", 6, "red"),
        )
        .await?;
    assert!(
        out.contains("widget.e2e.tend.dev/w1 serverside-applied"),
        "{out}"
    );

    let table = c.kubectl(&["get", "widgets", "-n", "shop"]).await?;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SIZE", "COLOR", "READY", "AGE"], "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(3).eq(["w1", "6", "red"])),
        "{table}"
    );
    // Short name and category resolve through discovery.
    let by_short = c
        .kubectl(&["get", "wd", "-n", "shop", "-o", "name"])
        .await?;
    assert_eq!(
        by_short.lines().collect::<Vec<_>>(),
        ["widget.e2e.tend.dev/w1", "widget.e2e.tend.dev/w2"]
    );
    let by_category = c.kubectl(&["get", "e2e", "-A"]).await?;
    assert!(by_category.contains("w2"), "{by_category}");
    // Defaults from the schema are applied at admission.
    let color = c.apply_yaml(&[], "apiVersion: e2e.tend.dev/v1\nkind: Widget\nmetadata: {name: w3, namespace: shop}\nspec: {size: 1}\n").await;
    color?;
    let color = c
        .kubectl(&[
            "get",
            "wd",
            "w3",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.color}",
        ])
        .await?;
    assert_eq!(color, "green");
    Ok(())
}

#[tokio::test]
async fn schema_and_cel_violations_are_rejected_with_the_field_named() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("shop", "ok", 1, "red"))
        .await?;
    for extra in [&[][..], &["--server-side"][..]] {
        let bad_enum = c
            .apply_yaml(extra, &widgets::manifest("shop", "bad1", 3, "purple"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            bad_enum.contains("spec.color: Unsupported value: \"purple\""),
            "{bad_enum}"
        );
        let bad_min = c
            .apply_yaml(extra, &widgets::manifest("shop", "bad2", 0, "red"))
            .await
            .unwrap_err()
            .to_string();
        assert!(bad_min.contains("spec.size"), "{bad_min}");
        let bad_cel = c
            .apply_yaml(extra, &widgets::manifest("shop", "bad3", 30, "blue"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            bad_cel.contains("only red widgets may be larger than 10"),
            "{bad_cel}"
        );
        assert!(bad_cel.contains("is invalid: spec"), "{bad_cel}");
    }
    let listed = c
        .kubectl(&["get", "wd", "-n", "shop", "-o", "name"])
        .await?;
    assert_eq!(
        listed.trim(),
        "widget.e2e.tend.dev/ok",
        "nothing invalid was stored"
    );
    // Unknown fields fail under kubectl's default strict validation.
    let unknown = "apiVersion: e2e.tend.dev/v1\nkind: Widget\nmetadata: {name: u, namespace: shop}\nspec: {size: 1, bogus: 2}\n";
    let err = c.apply_yaml(&[], unknown).await.unwrap_err().to_string();
    assert!(err.contains("unknown field \"spec.bogus\""), "{err}");
    Ok(())
}

#[tokio::test]
async fn transition_rule_refuses_changing_an_immutable_field() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(
        &[],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
    )
    .await?;
    let frozen = |v: &str| {
        format!(
            "apiVersion: e2e.tend.dev/v1\nkind: Widget\nmetadata: {{name: f, namespace: shop}}\nspec: {{size: 1, frozen: {v}}}\n"
        )
    };
    c.apply_yaml(&[], &frozen("a")).await?;
    let err = c
        .apply_yaml(&[], &frozen("b"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.frozen") && err.contains("frozen is immutable"),
        "{err}"
    );
    let err = c
        .kubectl_fails(&[
            "patch",
            "wd",
            "f",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"spec":{"frozen":"c"}}"#,
        ])
        .await?;
    assert!(err.contains("frozen is immutable"), "{err}");
    c.apply_yaml(&[], &frozen("a")).await?;
    Ok(())
}

#[tokio::test]
async fn describe_shows_conditions_and_events_from_the_events_api() -> anyhow::Result<()> {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("shop", "w1", 3, "blue"))
        .await?;
    let client = c.client().await?;
    let api = widgets::api(&client, "shop");
    let w = api.get("w1").await?;
    let status = json!({
        "apiVersion": "e2e.tend.dev/v1", "kind": "Widget", "metadata": {"name": "w1"},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "Polished",
                   "message": "widget is shiny", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    api.patch_status(
        "w1",
        &PatchParams::apply("tend.dev").force(),
        &Patch::Apply(&status),
    )
    .await?;
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "tend.dev".into(),
            instance: Some("e2e".into()),
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Polished".into(),
        note: Some("polished to a shine".into()),
        action: "Polish".into(),
        secondary: None,
    };
    let reference = kube::Resource::object_ref(&w, &widgets::resource());
    recorder.publish(&ev, &reference).await?;
    recorder.publish(&ev, &reference).await?; // a repeat becomes a series (merge patch)
    let text = c
        .kubectl(&["describe", "widget", "w1", "-n", "shop"])
        .await?;
    assert!(text.contains("widget is shiny"), "{text}");
    let events = text.split("Events:").nth(1).unwrap_or_default();
    assert!(
        events.contains("Polished") && events.contains("polished to a shine"),
        "{text}"
    );
    assert!(events.contains("tend.dev"), "event source shown: {text}");
    let wait = c
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            "widget/w1",
            "-n",
            "shop",
            "--timeout=30s",
        ])
        .await?;
    assert!(wait.contains("condition met"), "{wait}");
    Ok(())
}

#[tokio::test]
async fn kubectl_wait_returns_when_the_condition_appears() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("shop", "w1", 3, "blue"))
        .await?;
    let client = c.client().await?;
    let waiter = {
        let mut cmd = c.kubectl_cmd();
        cmd.args([
            "wait",
            "--for=condition=Ready",
            "widget/w1",
            "-n",
            "shop",
            "--timeout=60s",
        ]);
        tokio::task::spawn_blocking(move || cmd.output().expect("kubectl wait"))
    };
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Done", "message": "",
                                                     "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    widgets::api(&client, "shop")
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let out = waiter.await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn finalizer_holds_deletion_until_it_is_removed() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("shop", "w1", 3, "blue"))
        .await?;
    let client = c.client().await?;
    let api = widgets::api(&client, "shop");
    let fin = json!({"metadata": {"finalizers": ["tend.dev/cleanup"]}});
    api.patch("w1", &PatchParams::default(), &Patch::Merge(&fin))
        .await?;
    c.kubectl(&["delete", "widget", "w1", "-n", "shop", "--wait=false"])
        .await?;
    let held = api.get("w1").await?;
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp set"
    );
    let clear = json!({"metadata": {"finalizers": null}});
    api.patch("w1", &PatchParams::default(), &Patch::Merge(&clear))
        .await?;
    eventually(WAIT, "widget removed", || async {
        api.get_opt("w1")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents() -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::ConfigMap;
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("shop", "w1", 3, "blue"))
        .await?;
    let client = c.client().await?;
    let owner = widgets::api(&client, "shop").get("w1").await?;
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "shop");
    let mut cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "w1-settings", "ownerReferences": [{
            "apiVersion": "e2e.tend.dev/v1", "kind": "Widget", "name": "w1",
            "uid": owner.metadata.uid, "controller": true, "blockOwnerDeletion": true}]},
        "data": {"a": "b"}
    }))?;
    cms.create(&PostParams::default(), &cm).await?;
    cm.metadata.name = Some("unowned".into());
    cm.metadata.owner_references = None;
    cms.create(&PostParams::default(), &cm).await?;
    c.kubectl(&["delete", "widget", "w1", "-n", "shop"]).await?;
    eventually(WAIT, "owned ConfigMap collected", || async {
        cms.get_opt("w1-settings")
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await?;
    assert!(cms.get_opt("unowned").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_contents() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    c.install_widgets().await?;
    c.apply_yaml(&[], &widgets::manifest("shop", "w1", 3, "blue"))
        .await?;
    c.kubectl(&["delete", "namespace", "shop", "--timeout=60s"])
        .await?;
    let client = c.client().await?;
    assert!(widgets::api(&client, "shop").get_opt("w1").await?.is_none());
    let err = c.apply_yaml(&[], "apiVersion: e2e.tend.dev/v1\nkind: Widget\nmetadata: {name: x, namespace: shop}\nspec: {size: 1}\n").await;
    assert!(err.unwrap_err().to_string().contains("not found"));
    Ok(())
}

#[tokio::test]
async fn kubectl_create_builtins_and_secret_string_data_becomes_data() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    // kubectl's typed clients send these as protobuf.
    c.kubectl(&["create", "namespace", "made"]).await?;
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        "s1",
        "-n",
        "made",
        "--from-literal=token=abc",
    ])
    .await?;
    c.kubectl(&[
        "create",
        "configmap",
        "c1",
        "-n",
        "made",
        "--from-literal=k=v",
    ])
    .await?;
    let token = c
        .kubectl(&[
            "get",
            "secret",
            "s1",
            "-n",
            "made",
            "-o",
            "jsonpath={.data.token}",
        ])
        .await?;
    assert_eq!(token, "YWJj");
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: s2, namespace: made}\nstringData: {password: hunter2}\n";
    c.apply_yaml(&[], yaml).await?;
    let s2: serde_json::Value = serde_json::from_str(
        &c.kubectl(&["get", "secret", "s2", "-n", "made", "-o", "json"])
            .await?,
    )?;
    assert_eq!(s2["data"]["password"], "aHVudGVyMg==");
    assert_eq!(s2["type"], "Opaque");
    assert!(s2.get("stringData").is_none());
    let table = c
        .kubectl(&["get", "secrets,configmaps", "-n", "made"])
        .await?;
    assert!(
        table.contains("secret/s1") && table.contains("configmap/c1"),
        "{table}"
    );
    Ok(())
}

/// kube-apiserver marks every response `Cache-Control: no-cache, private`; without it kubectl's
/// discovery cache judges freshness from the `Date` header, and a server whose clock runs ahead
/// of kubectl's (the year-ahead test run) looks fresh forever: kubectl then never sees CRDs
/// created after its first call ("no matches for kind").
#[tokio::test]
async fn responses_are_never_cached_by_kubectl() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let out = c.kubectl_output(&["get", "--raw", "/apis", "-v=8"]).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("Cache-Control") && l.contains("no-cache, private")),
        "no Cache-Control: no-cache, private in the response headers:\n{log}"
    );
    // A CRD created after kubectl's first discovery is found at once.
    c.install_widgets().await?;
    let out = c
        .apply_yaml(&[], &widgets::manifest("shop", "w1", 1, "blue"))
        .await?;
    assert!(out.contains("created"), "{out}");
    Ok(())
}
