//! AlertRule end to end: the real controller (in-process, with an injected clock) against
//! devcluster, driven with the real kubectl. A tiny HTTP server started here serves a metrics
//! page whose value the test changes; the rule scrapes it, fires, and its remediation creates
//! exactly one RestoreRequest per firing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use tend_e2e::TestCluster;
use tend_e2e::alerts::{rule, status_until};
use tend_e2e::inprocess::Controller;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "farm";

/// A metrics endpoint whose page the test sets.
struct MetricsPage {
    page: Arc<Mutex<String>>,
    url: String,
}

impl MetricsPage {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/metrics", listener.local_addr()?);
        let page = Arc::new(Mutex::new(String::new()));
        let served = page.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = served.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        let this = Self { page, url };
        this.set_missing(0);
        Ok(this)
    }

    fn set(&self, page: &str) {
        *self.page.lock().unwrap() = page.to_string();
    }

    fn set_missing(&self, value: i64) {
        self.set(&format!(
            "# HELP fieldbook_verify_missing_objects Objects the manifest lists but storage lacks.\n\
             # TYPE fieldbook_verify_missing_objects gauge\n\
             fieldbook_verify_missing_objects{{kind=\"photo\"}} {value}\n\
             fieldbook_verify_missing_objects{{kind=\"thumbnail\"}} 0\n\
             fieldbook_up 1\n"
        ));
    }
}

async fn setup(c: &TestCluster) -> anyhow::Result<()> {
    c.install_tend_crds(&[]).await?;
    // The remediation's policyRef must name an existing BackupPolicy; this one never runs.
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n---\n\
             apiVersion: tend.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: daily, namespace: {NS}}}\n\
             spec:\n  schedule: \"0 2 * * *\"\n  suspend: true\n\
             \x20 targets: {{objects: {{filesystem: {{path: /nonexistent/photos}}}}}}\n\
             \x20 repository: {{filesystem: {{path: /nonexistent/repository}}}}\n\
             \x20 encryption: {{recipientsSecretRef: {{name: backup-age, key: recipients}}}}\n"
        ),
    )
    .await?;
    Ok(())
}

fn rule_yaml(name: &str, url: &str, for_: &str, remediation: bool) -> String {
    let remediation = if remediation {
        "  remediation:\n    restore:\n      policyRef: {name: daily}\n      restorePoint: {latest: true}\n\
         \x20     components: [objects]\n      target: {mode: inPlace, confirm: true}\n"
    } else {
        ""
    };
    format!(
        "apiVersion: tend.dev/v1alpha1\nkind: AlertRule\nmetadata: {{name: {name}, namespace: {NS}}}\n\
         spec:\n  summary: photos are missing from storage\n  interval: 1s\n  for: {for_}\n\
         \x20 source:\n    metrics:\n      url: {url}\n      metric: fieldbook_verify_missing_objects\n\
         \x20     aggregation: max\n  condition: {{operator: \">\", threshold: 0}}\n{remediation}"
    )
}

/// The rule's RestoreRequests, by the remediation label.
async fn remediations(c: &TestCluster, rule: &str) -> anyhow::Result<Vec<Value>> {
    let out = c
        .kubectl(&[
            "get",
            "restorerequests",
            "-n",
            NS,
            "-l",
            &format!("tend.dev/remediation-of={rule}"),
            "-o",
            "json",
        ])
        .await?;
    let list: Value = serde_json::from_str(&out)?;
    let mut items = list["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|i| {
        i["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    Ok(items)
}

/// Waits until the rule has been evaluated `count` more times after `status`.
async fn evaluations_after(
    c: &TestCluster,
    name: &str,
    status: &Value,
    count: usize,
) -> anyhow::Result<Value> {
    let mut last = status["lastEvaluationTime"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut latest = status.clone();
    for _ in 0..count {
        let before = last.clone();
        latest = status_until(c, NS, name, "another evaluation", |s| {
            s["lastEvaluationTime"]
                .as_str()
                .is_some_and(|t| t != before)
        })
        .await?;
        last = latest["lastEvaluationTime"].as_str().unwrap().to_string();
    }
    Ok(latest)
}

fn assert_remediation(request: &Value, rule: &Value) {
    let name = rule["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        request["spec"],
        serde_json::json!({
            "policyRef": {"name": "daily"},
            "restorePoint": {"latest": true},
            "components": ["objects"],
            "target": {"mode": "inPlace", "confirm": true},
        }),
        "the template is copied verbatim: {request:#}"
    );
    assert_eq!(
        request["metadata"]["labels"]["tend.dev/remediation-of"],
        name
    );
    let owners = request["metadata"]["ownerReferences"].as_array().unwrap();
    assert_eq!(owners.len(), 1, "{request:#}");
    assert_eq!(owners[0]["kind"], "AlertRule");
    assert_eq!(owners[0]["name"], name);
    assert_eq!(owners[0]["uid"], rule["metadata"]["uid"]);
    assert_eq!(owners[0]["controller"], false);
    let request_name = request["metadata"]["name"].as_str().unwrap();
    let prefix = format!("{name}-remediation-");
    assert!(
        request_name.starts_with(&prefix)
            && request_name.len() == prefix.len() + 14
            && request_name[prefix.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit()),
        "{request_name}"
    );
}

/// Value 3 fires the rule and its remediation creates exactly one RestoreRequest, however many
/// evaluations follow (and an unreadable page keeps the state); value 0 resolves it and clears
/// `currentRemediation`; value 3 again creates a second one.
#[tokio::test]
async fn firing_rule_creates_one_restore_request_per_firing() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    setup(&c).await?;
    let page = MetricsPage::start().await?;
    let controller = Controller::start(&c).await?;
    c.apply_yaml(&[], &rule_yaml("missing-objects", &page.url, "0s", true))
        .await?;

    let status = status_until(
        &c,
        NS,
        "missing-objects",
        "the rule to be Inactive at 0",
        |s| s["state"] == "Inactive" && s["lastValue"] == "0",
    )
    .await?;
    let ready = &status["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("True")),
        "{status:#}"
    );
    assert_eq!(ready["reason"], "Evaluating");
    assert!(remediations(&c, "missing-objects").await?.is_empty());

    page.set_missing(3);
    let status = status_until(&c, NS, "missing-objects", "the rule to fire", |s| {
        s["state"] == "Firing" && s["currentRemediation"].is_string()
    })
    .await?;
    assert_eq!(status["lastValue"], "3");
    assert!(status["activeSince"].is_string(), "{status:#}");
    let first = status["currentRemediation"].as_str().unwrap().to_string();
    let object = rule(&c, NS, "missing-objects").await?;
    let requests = remediations(&c, "missing-objects").await?;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0]["metadata"]["name"], first.as_str());
    assert_remediation(&requests[0], &object);

    // More evaluations while firing create nothing more.
    let status = evaluations_after(&c, "missing-objects", &status, 3).await?;
    assert_eq!(status["state"], "Firing");
    assert_eq!(status["currentRemediation"], first.as_str());
    assert_eq!(remediations(&c, "missing-objects").await?.len(), 1);

    // An unreadable page: the condition is unknown, the state stays, the error names the line.
    page.set("fieldbook_up 1\nfieldbook_verify_missing_objects{kind=\"photo} 3\n");
    let status = status_until(&c, NS, "missing-objects", "an evaluation error", |s| {
        s["lastValue"]
            .as_str()
            .is_some_and(|v| v.starts_with("error: "))
    })
    .await?;
    let error = status["lastValue"].as_str().unwrap();
    assert!(error.contains("line 2"), "{error}");
    assert_eq!(status["state"], "Firing");
    assert_eq!(status["currentRemediation"], first.as_str());

    let metrics = controller.metrics().await;
    assert!(
        metrics.contains("tend_alert_firing{namespace=\"farm\",rule=\"missing-objects\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "tend_alert_evaluations_total{namespace=\"farm\",rule=\"missing-objects\",result=\"error\"}"
        ),
        "{metrics}"
    );

    page.set_missing(0);
    let status = status_until(&c, NS, "missing-objects", "the rule to resolve", |s| {
        s["state"] == "Inactive"
    })
    .await?;
    assert!(status.get("currentRemediation").is_none(), "{status:#}");
    assert!(status.get("activeSince").is_none(), "{status:#}");
    assert_eq!(status["lastValue"], "0");
    // The request stays as the record of the first firing.
    assert_eq!(remediations(&c, "missing-objects").await?.len(), 1);

    // The second firing gets its own request (names carry the second the firing began).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    page.set_missing(3);
    let status = status_until(&c, NS, "missing-objects", "the rule to fire again", |s| {
        s["state"] == "Firing" && s["currentRemediation"].is_string()
    })
    .await?;
    let second = status["currentRemediation"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let requests = remediations(&c, "missing-objects").await?;
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_remediation(request, &object);
    }

    let describe = c
        .kubectl(&["describe", "alertrule", "missing-objects", "-n", NS])
        .await?;
    for reason in [
        "AlertFiring",
        "RemediationStarted",
        "AlertResolved",
        "EvaluationFailed",
    ] {
        assert!(describe.contains(reason), "no {reason} Event:\n{describe}");
    }
    assert!(describe.contains(&second), "{describe}");

    controller.stop().await
}

/// With `for: 30s` the rule is Pending first and fires only once the (injected) clock has
/// moved 30 s; routes or an incident make Ready say what is not in this build.
#[tokio::test]
async fn rule_is_pending_until_for_has_elapsed() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    setup(&c).await?;
    let page = MetricsPage::start().await?;
    let controller = Controller::start(&c).await?;
    page.set_missing(3);
    c.apply_yaml(&[], &rule_yaml("slow-burn", &page.url, "30s", false))
        .await?;

    let status = status_until(&c, NS, "slow-burn", "the rule to be Pending", |s| {
        s["state"] == "Pending"
    })
    .await?;
    let since = status["activeSince"].as_str().unwrap().to_string();
    // Real seconds pass, the injected clock has not moved 30 s: still Pending.
    let status = evaluations_after(&c, "slow-burn", &status, 3).await?;
    assert_eq!(status["state"], "Pending", "{status:#}");
    assert_eq!(status["activeSince"], since.as_str());

    controller.advance(30);
    let status = status_until(&c, NS, "slow-burn", "the rule to fire", |s| {
        s["state"] == "Firing"
    })
    .await?;
    let firing_since = status["activeSince"].clone();
    let fired: Timestamp = status["activeSince"].as_str().unwrap().parse()?;
    let pending: Timestamp = since.parse()?;
    assert!(
        fired.duration_since(pending) >= SignedDuration::from_secs(30),
        "{since} → {fired}"
    );
    assert!(status.get("currentRemediation").is_none());
    assert!(remediations(&c, "slow-burn").await?.is_empty());

    // An incident template: still evaluated, but Ready says incidents are not in this build.
    c.kubectl(&[
        "patch",
        "alertrule",
        "slow-burn",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"incident":{}}}"#,
    ])
    .await?;
    let status = status_until(&c, NS, "slow-burn", "Ready to name incidents", |s| {
        s["conditions"][0]["reason"] == "EngineNotImplemented"
    })
    .await?;
    let message = status["conditions"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Firing") && message.contains("incidents (spec.incident)"),
        "{message}"
    );
    assert_eq!(status["conditions"][0]["status"], "False");

    // A windowed aggregation starts a new window: "no data yet" until it holds two scrapes
    // half a window apart, which is not an error, and the firing state stays.
    c.kubectl(&[
        "patch",
        "alertrule",
        "slow-burn",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"source":{"metrics":{"aggregation":"rate","window":"5m"}}}}"#,
    ])
    .await?;
    let status = status_until(&c, NS, "slow-burn", "the window to start filling", |s| {
        s["lastValue"]
            .as_str()
            .is_some_and(|v| v.starts_with("no data yet"))
    })
    .await?;
    assert_eq!(status["state"], "Firing", "{status:#}");
    assert_eq!(status["activeSince"], firing_since, "{status:#}");

    controller.stop().await
}

/// A RestoreRequest created by an attempt whose status write never landed (the controller died
/// in between) is adopted by the next attempt, not duplicated: it is owned by the rule and its
/// firing began after the last evaluation the rule's status recorded.
#[tokio::test]
async fn request_from_a_lost_status_write_is_adopted_not_duplicated() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    setup(&c).await?;
    let page = MetricsPage::start().await?;
    let controller = Controller::start(&c).await?;
    c.apply_yaml(&[], &rule_yaml("missing-objects", &page.url, "0s", true))
        .await?;
    status_until(&c, NS, "missing-objects", "the rule to be Inactive", |s| {
        s["state"] == "Inactive"
    })
    .await?;
    controller.stop().await?;

    let object = rule(&c, NS, "missing-objects").await?;
    let recorded: Timestamp = object["status"]["lastEvaluationTime"]
        .as_str()
        .unwrap()
        .parse()?;
    let firing = recorded + SignedDuration::from_secs(1);
    let name = format!(
        "missing-objects-remediation-{}",
        firing.strftime("%Y%m%d%H%M%S")
    );
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: tend.dev/v1alpha1\nkind: RestoreRequest\nmetadata:\n  name: {name}\n  namespace: {NS}\n\
             \x20 labels: {{tend.dev/remediation-of: missing-objects}}\n\
             \x20 annotations: {{tend.dev/firing-since: \"{firing}\"}}\n\
             \x20 ownerReferences:\n  - {{apiVersion: tend.dev/v1alpha1, kind: AlertRule, name: missing-objects, uid: {uid}, controller: false}}\n\
             spec:\n  policyRef: {{name: daily}}\n  restorePoint: {{latest: true}}\n  components: [objects]\n\
             \x20 target: {{mode: inPlace, confirm: true}}\n",
            uid = object["metadata"]["uid"].as_str().unwrap()
        ),
    )
    .await?;

    page.set_missing(3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let controller = Controller::start(&c).await?;
    let status = status_until(&c, NS, "missing-objects", "the rule to fire", |s| {
        s["state"] == "Firing" && s["currentRemediation"].is_string()
    })
    .await?;
    assert_eq!(status["currentRemediation"], name.as_str());
    let requests = remediations(&c, "missing-objects").await?;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    controller.stop().await
}
