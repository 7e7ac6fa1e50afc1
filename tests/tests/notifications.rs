//! AlertRule notifications end to end: the real controller (in-process, with a clock the test
//! can move) against devcluster, driven with kubectl; real peers on loopback — aiosmtpd receives
//! the e-mail, a webhook sink stands in for Slack, Teams and an Alertmanager receiver. The rule
//! probes a port the test opens and closes, so the breach is real.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use tend_e2e::alerts::{ProbeTarget, status_until};
use tend_e2e::inprocess::Controller;
use tend_e2e::{TestCluster, free_port};
use tend_testkit::smtp::SmtpSink;
use tend_testkit::webhook::{Reply, WebhookSink};

const NS: &str = "farm";
/// The credential part of the chat webhook URLs: it must never show in status or Events.
const HOOK_SECRET: &str = "T0000/B0000/XXXXsecretXXXX";

async fn setup(c: &TestCluster, smtp_port: u16, hooks: &WebhookSink) -> anyhow::Result<()> {
    c.install_tend_crds(&[]).await?;
    let hook = |kind: &str| hooks.url(&format!("/{kind}/{HOOK_SECRET}"));
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: smtp, namespace: {NS}}}\n\
             stringData: {{host: 127.0.0.1, port: \"{smtp_port}\", from: tend@fieldbook.test, tls: none}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: smtp-down, namespace: {NS}}}\n\
             stringData: {{host: 127.0.0.1, port: \"{}\", from: tend@fieldbook.test, tls: none, \
             username: tend, password: hunter2-smtp-secret}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: hooks, namespace: {NS}}}\n\
             stringData: {{slack: \"{}\", teams: \"{}\", webhook: \"{}\"}}\n",
            free_port(),
            hook("slack"),
            hook("teams"),
            hook("webhook"),
        ),
    )
    .await?;
    Ok(())
}

fn rule_yaml(name: &str, url: &str, routes: &str, extra: &str) -> String {
    format!(
        "apiVersion: tend.dev/v1alpha1\nkind: AlertRule\nmetadata: {{name: {name}, namespace: {NS}}}\n\
         spec:\n  summary: 圃場記録のAPIが応答しません\n  description: The health check cannot reach fieldbook.\n\
         \x20 severity: critical\n  runbookUrl: https://runbooks.fieldbook.test/app-down\n\
         \x20 interval: 1s\n  repeatInterval: 1m\n\
         \x20 source: {{http: {{url: \"{url}\", timeout: 1s}}}}\n\
         \x20 condition: {{operator: \"==\", threshold: 0}}\n  routes:\n{routes}{extra}"
    )
}

const ALL_ROUTES: &str = concat!(
    "    - {name: oncall-mail, email: {to: [oncall@fieldbook.test], smtpSecretRef: {name: smtp}}}\n",
    "    - {name: ops-slack, language: en, slack: {urlSecretRef: {name: hooks, key: slack}}}\n",
    "    - {name: ops-teams, language: en, teams: {urlSecretRef: {name: hooks, key: teams}}}\n",
    "    - {name: receiver, webhook: {urlSecretRef: {name: hooks, key: webhook}}}\n",
);

/// Every route's `delivered` starts with `what` (`firing`, `repeat`, `resolved`).
fn all_delivered(status: &Value, what: &str, routes: usize) -> bool {
    let list = status["routes"].as_array().cloned().unwrap_or_default();
    list.len() == routes
        && list.iter().all(|r| {
            r["delivered"]
                .as_str()
                .is_some_and(|d| d.starts_with(&format!("{what} ")))
                && r["lastResult"] == "Delivered"
        })
}

/// The requests the sink received on `/<kind>/…`.
fn received(hooks: &WebhookSink, kind: &str) -> Vec<tend_testkit::webhook::Recorded> {
    hooks
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(&format!("/{kind}/")))
        .collect()
}

#[tokio::test]
async fn every_route_hears_the_firing_once_a_reminder_and_the_resolution() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let mail = SmtpSink::start().await;
    let hooks = WebhookSink::start().await;
    setup(&c, mail.port, &hooks).await?;
    let mut service = ProbeTarget::closed();
    let controller = Controller::start(&c).await?;
    c.apply_yaml(&[], &rule_yaml("api-down", &service.url(), ALL_ROUTES, ""))
        .await?;

    let status = status_until(&c, NS, "api-down", "every route told of the firing", |s| {
        all_delivered(s, "firing", 4)
    })
    .await?;
    assert_eq!(status["state"], "Firing");
    let firing_since = status["activeSince"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for route in status["routes"].as_array().unwrap() {
        assert_eq!(
            route["delivered"].as_str().unwrap(),
            format!("firing {firing_since}")
        );
    }

    // The e-mail: Japanese subject intact (RFC 2047 on the wire), both parts, the facts.
    let messages = mail.messages();
    assert_eq!(messages.len(), 1, "one e-mail for the firing");
    assert!(
        !messages[0].contains("圃場記録"),
        "the raw message carries non-ASCII text unencoded"
    );
    let parsed = SmtpSink::parse(&messages[0]);
    let subject = parsed.header("Subject").unwrap_or_default();
    assert!(subject.contains("圃場記録のAPIが応答しません"), "{subject}");
    assert!(parsed.header("Message-ID").is_some() && parsed.header("Date").is_some());
    assert_eq!(parsed.header("To"), Some("oncall@fieldbook.test"));
    let text = parsed.part("text/plain").unwrap_or_default();
    for needle in [
        "https://runbooks.fieldbook.test/app-down",
        "kubectl describe alertrule/api-down -n farm",
        "== 0",
    ] {
        assert!(
            text.contains(needle),
            "the e-mail lacks {needle:?}:\n{text}"
        );
    }
    assert!(parsed.part("text/html").is_some());

    // Slack, Teams and the Alertmanager-shaped webhook: one each.
    let slack = received(&hooks, "slack");
    let teams = received(&hooks, "teams");
    let webhook = received(&hooks, "webhook");
    assert_eq!((slack.len(), teams.len(), webhook.len()), (1, 1, 1));
    assert!(slack[0].json()["blocks"].is_array());
    assert_eq!(teams[0].json()["type"], "message");
    let body = webhook[0].json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alerts"][0]["labels"]["alertname"], "api-down");
    assert_eq!(body["alerts"][0]["labels"]["severity"], "critical");

    // Reconciles between evaluations send nothing again; an hour's repeatInterval... here 1m.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hooks.requests().len(), 3, "nothing is sent twice");
    controller.clock.advance(61);
    status_until(&c, NS, "api-down", "every route reminded", |s| {
        all_delivered(s, "repeat", 4)
    })
    .await?;
    assert_eq!(mail.messages().len(), 2);
    assert_eq!(
        received(&hooks, "webhook")[1].json()["tend"]["repeat"],
        true
    );

    // The service comes back: one resolution each, then silence.
    service.open().await?;
    let status = status_until(
        &c,
        NS,
        "api-down",
        "every route told of the resolution",
        |s| all_delivered(s, "resolved", 4),
    )
    .await?;
    assert_eq!(status["state"], "Inactive");
    let resolved = received(&hooks, "webhook")[2].json();
    assert_eq!(resolved["status"], "resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mail.messages().len(), 3);
    assert_eq!(hooks.requests().len(), 9, "three per chat route, no more");

    let delivered = controller
        .metric("tend_notifications_total{type=\"email\",result=\"delivered\"}")
        .await;
    assert_eq!(delivered, 3.0);
    assert!(
        controller
            .metric("tend_notification_delivery_seconds_count{type=\"slack\"}")
            .await
            >= 3.0
    );

    // The webhook URLs' credential is in no status and no Event.
    let yaml = c
        .kubectl(&["get", "alertrule", "api-down", "-n", NS, "-o", "yaml"])
        .await?;
    let events = c
        .kubectl(&["get", "events", "-n", NS, "-o", "yaml"])
        .await?;
    assert!(!yaml.contains("XXXXsecret") && !events.contains("XXXXsecret"));
    assert!(events.contains("Notified"), "{events}");
    controller.stop().await
}

#[tokio::test]
async fn failing_routes_are_retried_named_and_never_leak_secrets() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let mail = SmtpSink::start().await;
    // The receiver throttles, then fails, then accepts: one delivery, after three requests.
    let hooks = WebhookSink::start_scripted(vec![
        Reply::status(429).header("Retry-After", "1"),
        Reply::status(500),
    ])
    .await;
    setup(&c, mail.port, &hooks).await?;
    let service = ProbeTarget::closed();
    let controller = Controller::start(&c).await?;
    let routes = concat!(
        "    - {name: receiver, webhook: {urlSecretRef: {name: hooks, key: webhook}}}\n",
        "    - {name: relay-down, email: {to: [oncall@fieldbook.test], smtpSecretRef: {name: smtp-down}}}\n",
    );
    c.apply_yaml(&[], &rule_yaml("api-down", &service.url(), routes, ""))
        .await?;

    let status = status_until(
        &c,
        NS,
        "api-down",
        "the receiver told, the relay failing",
        |s| {
            s["routes"][0]["lastResult"] == "Delivered"
                && s["routes"][1]["lastResult"]
                    .as_str()
                    .is_some_and(|r| r != "Delivered")
        },
    )
    .await?;
    let hooked = received(&hooks, "webhook");
    assert_eq!(hooked.len(), 3, "429, 500, then 200");
    assert!(
        hooked[1].at.duration_since(hooked[0].at) >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(status["routes"][0]["attempts"], 3);
    let down = &status["routes"][1];
    assert_eq!(down["lastResult"], "ConnectFailed", "{down:#}");
    let ready = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "NotificationFailed");
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("relay-down"),
        "{ready:#}"
    );

    // Retried at the next evaluations, never delivered twice to the receiver.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(received(&hooks, "webhook").len(), 3);
    let yaml = c
        .kubectl(&["get", "alertrule", "api-down", "-n", NS, "-o", "yaml"])
        .await?;
    let events = c
        .kubectl(&["get", "events", "-n", NS, "-o", "yaml"])
        .await?;
    for text in [&yaml, &events] {
        assert!(!text.contains("hunter2-smtp-secret") && !text.contains("XXXXsecret"));
    }
    assert!(events.contains("NotificationFailed"), "{events}");
    assert!(
        controller
            .metric("tend_notifications_total{type=\"email\",result=\"connect_failed\"}")
            .await
            >= 1.0
    );
    controller.stop().await
}

#[tokio::test]
async fn a_silence_keeps_the_rule_evaluated_and_quiet_until_it_ends() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let mail = SmtpSink::start().await;
    let hooks = WebhookSink::start().await;
    setup(&c, mail.port, &hooks).await?;
    let service = ProbeTarget::closed();
    let controller = Controller::start(&c).await?;
    let now = Timestamp::now();
    let silence = format!(
        "  silences:\n    - {{name: upgrade, from: \"{}\", until: \"{}\"}}\n",
        now - jiff::SignedDuration::from_hours(1),
        now + jiff::SignedDuration::from_hours(1)
    );
    let routes = "    - {name: receiver, webhook: {urlSecretRef: {name: hooks, key: webhook}}}\n";
    c.apply_yaml(
        &[],
        &rule_yaml("api-down", &service.url(), routes, &silence),
    )
    .await?;
    let status = status_until(&c, NS, "api-down", "firing under the silence", |s| {
        s["state"] == "Firing" && s["silencedBy"] == "upgrade"
    })
    .await?;
    assert!(status["routes"][0]["delivered"].is_null());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        hooks.requests().is_empty(),
        "nothing is sent under a silence"
    );

    // The silence ends (the clock passes `until`): the firing goes out then.
    controller.clock.advance(2 * 3600);
    let status = status_until(&c, NS, "api-down", "told after the silence", |s| {
        all_delivered(s, "firing", 1)
    })
    .await?;
    assert!(status["silencedBy"].is_null());
    assert_eq!(hooks.requests().len(), 1);
    controller.stop().await
}

#[tokio::test]
async fn an_unfinished_in_place_restore_of_the_policy_silences_the_rule() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let mail = SmtpSink::start().await;
    let hooks = WebhookSink::start().await;
    setup(&c, mail.port, &hooks).await?;
    // The policy the restore belongs to; it never runs.
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: tend.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: daily, namespace: {NS}}}\n\
             spec:\n  schedule: \"0 2 * * *\"\n  suspend: true\n\
             \x20 targets: {{objects: {{filesystem: {{path: /nonexistent/photos}}}}}}\n\
             \x20 repository: {{filesystem: {{path: /nonexistent/repository}}}}\n\
             \x20 encryption: {{recipientsSecretRef: {{name: backup-age, key: recipients}}}}\n"
        ),
    )
    .await?;
    // An in-place restore of it that has not finished: created before tend runs and held by a
    // finalizer while being deleted, so it never starts and never finishes until the test lets
    // it go (a restore that runs would finish in milliseconds here).
    c.apply_yaml(
        &[],
        &format!(
            "apiVersion: tend.dev/v1alpha1\nkind: RestoreRequest\n\
             metadata: {{name: in-place, namespace: {NS}, finalizers: [tend.test/hold]}}\n\
             spec:\n  policyRef: {{name: daily}}\n  restorePoint: {{latest: true}}\n\
             \x20 components: [objects]\n  target: {{mode: inPlace, confirm: true}}\n"
        ),
    )
    .await?;
    c.kubectl(&["delete", "rr", "in-place", "-n", NS, "--wait=false"])
        .await?;

    let service = ProbeTarget::closed();
    let controller = Controller::start(&c).await?;
    let silence = "  silences:\n    - {name: restoring, duringInPlaceRestoresOf: {name: daily}}\n";
    let routes = "    - {name: receiver, webhook: {urlSecretRef: {name: hooks, key: webhook}}}\n";
    c.apply_yaml(&[], &rule_yaml("api-down", &service.url(), routes, silence))
        .await?;
    status_until(&c, NS, "api-down", "firing, silenced by the restore", |s| {
        s["state"] == "Firing" && s["silencedBy"] == "restoring"
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        hooks.requests().is_empty(),
        "nothing is sent during the restore"
    );

    // The restore is over (here: gone): the firing goes out.
    c.kubectl(&[
        "patch",
        "rr",
        "in-place",
        "-n",
        NS,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await?;
    let status = status_until(&c, NS, "api-down", "told once the restore ended", |s| {
        all_delivered(s, "firing", 1)
    })
    .await?;
    assert!(status["silencedBy"].is_null());
    assert_eq!(hooks.requests().len(), 1);
    let events = c
        .kubectl(&["get", "events", "-n", NS, "-o", "yaml"])
        .await?;
    assert!(
        events.contains("Silenced") && events.contains("SilenceEnded"),
        "{events}"
    );
    controller.stop().await
}
