//! Slack, Teams and Alertmanager-shaped webhooks against a real HTTP server on loopback (the
//! testkit's scripted sink): retries after 429/5xx, `Retry-After`, pacing, no retry on 400,
//! timeouts, refused connections, and bad URLs refused before any request.

mod common;

use std::time::{Duration, Instant};

use common::{fast_config, notification, notifier};
use tend_notify::{Destination, Lang, NotifierConfig};
use tend_testkit::{Reply, WebhookSink, free_port};

#[tokio::test]
async fn slack_arrives_once_after_429_with_retry_after_and_500() {
    let sink = WebhookSink::start_scripted(vec![
        Reply::status(429)
            .header("Retry-After", "1")
            .body("rate_limited"),
        Reply::status(500).body("oops"),
        Reply::ok(),
    ])
    .await;
    let notifier = notifier(fast_config());
    let dest = Destination::Slack {
        url: sink.url("/services/T000/B000/XXXX"),
    };
    let delivery = notifier
        .send(&dest, Lang::En, &notification())
        .await
        .expect("delivered on the third attempt");
    assert_eq!(delivery.attempts, 3);
    let requests = sink.requests();
    assert_eq!(
        requests.len(),
        3,
        "one request per attempt, none after the 200"
    );
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_secs(1),
        "Retry-After: 1 not honoured: {gap:?}"
    );
    assert!(delivery.latency >= Duration::from_secs(1));
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/services/T000/B000/XXXX");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
        assert!(r.header("user-agent").unwrap().starts_with("tend-notify/"));
        assert_eq!(
            r.body, requests[0].body,
            "every attempt sends the same message"
        );
    }
    let body = requests[2].json();
    assert_eq!(body["text"], "[FIRING critical] API error rate above 5%");
    assert_eq!(body["blocks"][0]["type"], "header");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured_and_capped() {
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let sink = WebhookSink::start_scripted(vec![
        Reply::status(503).header("Retry-After", &httpdate_fmt(at)),
        Reply::status(429).header("Retry-After", "3600"),
    ])
    .await;
    let notifier = notifier(NotifierConfig {
        max_retry_after: Duration::from_millis(1500),
        ..fast_config()
    });
    let dest = Destination::Webhook {
        url: sink.url("/alerts"),
    };
    let started = Instant::now();
    let delivery = notifier
        .send(&dest, Lang::En, &notification())
        .await
        .unwrap();
    assert_eq!(delivery.attempts, 3);
    let r = sink.requests();
    // The date is ~2 s away but the cap is 1.5 s (an HTTP date has whole seconds).
    assert!(
        r[1].at - r[0].at >= Duration::from_millis(900),
        "{:?}",
        r[1].at - r[0].at
    );
    // An hour's Retry-After waits only the cap.
    assert!(r[2].at - r[1].at >= Duration::from_millis(1500));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

fn httpdate_fmt(at: std::time::SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(at).unwrap();
    ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test]
async fn teams_card_arrives_after_server_errors() {
    let sink = WebhookSink::start_scripted(vec![Reply::status(502), Reply::status(503)]).await;
    let dest = Destination::Teams {
        url: sink.url("/workflows/abc/triggers/manual/paths/invoke?sig=SECRET"),
    };
    let mut n = notification();
    n.description = Some("長い説明。".repeat(20_000));
    let delivery = notifier(fast_config())
        .send(&dest, Lang::Ja, &n)
        .await
        .expect("delivered");
    assert_eq!(delivery.attempts, 3);
    let requests = sink.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[2].path,
        "/workflows/abc/triggers/manual/paths/invoke?sig=SECRET"
    );
    assert!(
        requests[2].body.len() <= 28 * 1024,
        "{} bytes",
        requests[2].body.len()
    );
    let body = requests[2].json();
    assert_eq!(body["type"], "message");
    let card = &body["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["version"], "1.4");
    assert!(
        card["content"]["body"][1]["text"]
            .as_str()
            .unwrap()
            .ends_with('…')
    );
}

#[tokio::test]
async fn webhook_gets_the_alertmanager_v4_body() {
    let sink = WebhookSink::start().await;
    let dest = Destination::Webhook {
        url: sink.url("/hook?team=ops"),
    };
    notifier(fast_config())
        .send(&dest, Lang::Ja, &notification())
        .await
        .unwrap();
    let r = &sink.requests()[0];
    assert_eq!(r.path, "/hook?team=ops");
    let body = r.json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["groupKey"], "fieldbook/AlertRule/api-errors");
    assert_eq!(body["alerts"][0]["fingerprint"], "a1b2c3d4e5f60718");
    assert_eq!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(body["tend"]["lang"], "ja");
}

#[tokio::test]
async fn a_400_is_not_retried() {
    let sink = WebhookSink::start_scripted(vec![Reply::status(400).body("invalid_payload")]).await;
    let dest = Destination::Slack {
        url: sink.url("/services/T/B/C"),
    };
    let err = notifier(fast_config())
        .send(&dest, Lang::En, &notification())
        .await
        .expect_err("400 is final");
    assert_eq!(err.reason(), "Rejected");
    assert!(err.is_permanent());
    assert_eq!(err.attempts(), 1);
    assert!(
        err.to_string().contains("400") && err.to_string().contains("invalid_payload"),
        "{err}"
    );
    assert_eq!(sink.requests().len(), 1);
}

#[tokio::test]
async fn persistent_429_ends_as_rate_limited() {
    let sink = WebhookSink::start_scripted(vec![Reply::status(429), Reply::status(429)]).await;
    let dest = Destination::Webhook {
        url: sink.url("/x"),
    };
    let err = notifier(NotifierConfig {
        max_attempts: 2,
        ..fast_config()
    })
    .send(&dest, Lang::En, &notification())
    .await
    .unwrap_err();
    assert_eq!((err.reason(), err.attempts()), ("RateLimited", 2), "{err}");
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn two_slack_sends_to_one_webhook_are_a_second_apart() {
    let sink = WebhookSink::start().await;
    let notifier = notifier(fast_config());
    let same = Destination::Slack {
        url: sink.url("/services/T/B/one"),
    };
    let other = Destination::Slack {
        url: sink.url("/services/T/B/two"),
    };
    let n = notification();
    let (a, b, c) = tokio::join!(
        notifier.send(&same, Lang::En, &n),
        notifier.send(&same, Lang::En, &n),
        notifier.send(&other, Lang::En, &n),
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    let r = sink.requests();
    let times = |path: &str| -> Vec<Instant> {
        r.iter()
            .filter(|x| x.path.ends_with(path))
            .map(|x| x.at)
            .collect()
    };
    let one = times("/one");
    assert_eq!(one.len(), 2);
    let gap = one[1] - one[0];
    assert!(gap >= Duration::from_millis(990), "two sends {gap:?} apart");
    let two = times("/two");
    assert!(
        two[0] - one[0] < Duration::from_millis(500),
        "another webhook was held back"
    );
}

#[tokio::test]
async fn a_slow_server_is_a_timeout() {
    let sink = WebhookSink::start_scripted(vec![Reply::ok().delay(Duration::from_secs(3))]).await;
    let dest = Destination::Webhook {
        url: sink.url("/slow"),
    };
    let started = Instant::now();
    let err = notifier(NotifierConfig {
        max_attempts: 1,
        request_timeout: Duration::from_millis(300),
        ..fast_config()
    })
    .send(&dest, Lang::En, &notification())
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "Timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_refused_connection_is_connect_failed_after_retries() {
    let port = free_port();
    let dest = Destination::Slack {
        url: format!("http://127.0.0.1:{port}/services/T/B/C"),
    };
    let err = notifier(NotifierConfig {
        max_attempts: 3,
        ..fast_config()
    })
    .send(&dest, Lang::En, &notification())
    .await
    .unwrap_err();
    assert_eq!(
        (err.reason(), err.attempts()),
        ("ConnectFailed", 3),
        "{err}"
    );
}

#[tokio::test]
async fn bad_urls_are_refused_without_a_request() {
    let sink = WebhookSink::start().await;
    let notifier = notifier(fast_config());
    for (dest, expected) in [
        (
            Destination::Webhook {
                url: format!("ftp://127.0.0.1:{}/x", sink.port),
            },
            "scheme \"ftp\"",
        ),
        (
            Destination::Slack {
                url: format!("127.0.0.1:{}/x", sink.port),
            },
            "no scheme",
        ),
        (
            Destination::Teams {
                url: format!("http://127.0.0.1:{}/a b", sink.port),
            },
            "not a valid",
        ),
    ] {
        let err = notifier
            .send(&dest, Lang::En, &notification())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "InvalidDestination");
        assert_eq!(err.attempts(), 0);
        assert!(err.to_string().contains(expected), "{err}");
    }
    assert!(sink.requests().is_empty());
}

#[test]
fn send_futures_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let notifier = notifier(fast_config());
    let dest = Destination::Webhook {
        url: "http://127.0.0.1:1/x".into(),
    };
    let n = notification();
    let future = notifier.send(&dest, Lang::En, &n);
    assert_send(&future);
}
