//! Every AlertRule source against real peers, with the `tend` binary running against devcluster
//! and the rules applied with kubectl: fieldbook's `/metrics` through the windowed aggregations
//! (rate, errorRatio, quantile), a real Prometheus scraping a real node_exporter, and a real
//! PostgreSQL. Conditions are induced, not faked: fieldbook's maintenance mode makes its pages
//! answer 503, freezing PostgreSQL (SIGSTOP) makes queries — the probe's and fieldbook's — hang,
//! killing node_exporter makes Prometheus's `up` drop to 0.
//!
//! What these tests rely on from fieldbook's `/metrics` (this tree): the counter
//! `fieldbook_http_requests_total` with the labels `method`, `route`, `status` (the numeric
//! code, e.g. `"503"`), and the histogram `fieldbook_http_request_duration_seconds` (`_bucket`
//! series with `le`, same labels).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tend_e2e::alerts::{rule, status_until_within};
use tend_e2e::fieldbook::{Fieldbook, PhotoStore};
use tend_e2e::{TestCluster, free_port};
use tend_testkit::{NodeExporter, Postgres, Prometheus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "monitoring";
/// Long enough for a windowed rule on a shared two-core machine.
const WAIT: Duration = Duration::from_secs(120);

async fn setup(c: &TestCluster) -> anyhow::Result<tend_e2e::Tend> {
    c.install_tend_crds(&[]).await?;
    c.apply_yaml(
        &[],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n"),
    )
    .await?;
    c.start_tend("sources").await
}

fn state(status: &Value) -> &str {
    status["state"].as_str().unwrap_or_default()
}

fn last_value(status: &Value) -> &str {
    status["lastValue"].as_str().unwrap_or_default()
}

/// A number in lastValue (not an error, not "no data").
fn has_number(status: &Value) -> bool {
    last_value(status).parse::<f64>().is_ok()
}

async fn firing(c: &TestCluster, name: &str) -> anyhow::Result<Value> {
    status_until_within(c, NS, WAIT, name, "Firing", |s| state(s) == "Firing").await
}

async fn resolved(c: &TestCluster, name: &str) -> anyhow::Result<Value> {
    status_until_within(c, NS, WAIT, name, "resolved (Inactive with a value)", |s| {
        state(s) == "Inactive" && has_number(s)
    })
    .await
}

/// The rule's Events as `kubectl describe` shows them.
async fn events(c: &TestCluster, name: &str) -> anyhow::Result<String> {
    let describe = c
        .kubectl(&["describe", "alertrule", name, "-n", NS])
        .await?;
    Ok(tend_e2e::events_of(&describe))
}

fn rule_yaml(name: &str, interval: &str, source: &str, condition: &str) -> String {
    format!(
        "apiVersion: tend.dev/v1alpha1\nkind: AlertRule\nmetadata: {{name: {name}, namespace: {NS}}}\n\
         spec:\n  summary: {name}\n  interval: {interval}\n  condition: {condition}\n  source:\n{source}"
    )
}

/// GET (or PUT with a JSON body) on fieldbook; the status code, 0 when there was no answer.
async fn request(addr: &str, method: &str, path: &str, extra: &str, body: &str) -> u16 {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(head.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        std::str::from_utf8(out.get(9..12)?).ok()?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

/// `loops` clients, each GETting `path` every `pause` until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
}

impl Traffic {
    fn start(addr: String, path: &'static str, loops: usize, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..loops {
            let (addr, stop) = (addr.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    request(&addr, "GET", path, "", "").await;
                    tokio::time::sleep(pause).await;
                }
            });
        }
        Self { stop }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn maintenance(fieldbook: &Fieldbook, enabled: bool) {
    let addr = format!("127.0.0.1:{}", fieldbook.port);
    let status = request(
        &addr,
        "PUT",
        "/ops/v1/maintenance",
        &format!(
            "Authorization: Bearer {}\r\nContent-Type: application/json\r\n",
            fieldbook.token
        ),
        &format!(r#"{{"enabled": {enabled}, "message": "planned work"}}"#),
    )
    .await;
    assert_eq!(status, 200, "PUT /ops/v1/maintenance enabled={enabled}");
}

/// The connection Secret of the `postgres` source for `pg`'s database `dbname`.
fn pg_secret(name: &str, pg: &Postgres, dbname: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {NS}}}\n\
         stringData: {{host: 127.0.0.1, port: \"{}\", dbname: {dbname}, user: postgres, password: {}}}\n",
        pg.port, pg.password
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fieldbook_rate_error_ratio_and_latency_rules_and_the_postgres_probe_fire_and_resolve()
-> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let tend = setup(&c).await?;
    // fieldbook on PostgreSQL, so that freezing the database slows its requests down.
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE fieldbook");
    let fieldbook = Fieldbook::start(
        &c.dir.path().join("fieldbook"),
        &pg.url("fieldbook"),
        PhotoStore::Dir(c.dir.path().join("photos")),
    )
    .await?;
    let addr = format!("127.0.0.1:{}", fieldbook.port);
    let metrics = format!("http://{addr}/metrics");
    let page = tend_e2e::http_get(&addr, "/metrics")?;
    assert!(
        page.contains("fieldbook_http_requests_total{")
            && page.contains("fieldbook_http_request_duration_seconds_bucket{"),
        "fieldbook's /metrics lacks what the rules select:\n{page}"
    );

    let window = "      window: 8s\n";
    let yaml = [
        pg_secret("fieldbook-db", &pg, "fieldbook"),
        rule_yaml(
            "request-rate",
            "1s",
            &format!(
                "    metrics:\n      url: {metrics}\n      metric: fieldbook_http_requests_total\n\
                 \x20     aggregation: rate\n{window}"
            ),
            "{operator: \">\", threshold: 20}",
        ),
        rule_yaml(
            "error-ratio",
            "1s",
            &format!(
                "    metrics:\n      url: {metrics}\n      metric: fieldbook_http_requests_total\n\
                 \x20     aggregation: errorRatio\n      errorSelector: {{status: \"503\"}}\n{window}"
            ),
            "{operator: \">\", threshold: 0.3}",
        ),
        rule_yaml(
            "p95-latency",
            "1s",
            &format!(
                "    metrics:\n      url: {metrics}\n      metric: fieldbook_http_request_duration_seconds\n\
                 \x20     selector: {{route: /readyz}}\n\
                 \x20     aggregation: quantile\n      quantile: 0.95\n      window: 30s\n"
            ),
            "{operator: \">\", threshold: 1}",
        ),
        rule_yaml(
            "db-latency",
            "1s",
            "    postgres:\n      connectionSecretRef: {name: fieldbook-db}\n      measure: latencySeconds\n      timeout: 2s\n",
            "{operator: \">\", threshold: 1}",
        ),
        rule_yaml(
            "db-up",
            "1s",
            "    postgres:\n      connectionSecretRef: {name: fieldbook-db}\n      measure: up\n      timeout: 2s\n",
            "{operator: \"<\", threshold: 1}",
        ),
        rule_yaml(
            "db-value",
            "1s",
            "    postgres:\n      connectionSecretRef: {name: fieldbook-db}\n      measure: value\n      query: SELECT count(*) FROM pg_stat_activity\n",
            "{operator: \">\", threshold: 1000}",
        ),
        rule_yaml(
            "db-write",
            "1s",
            "    postgres:\n      connectionSecretRef: {name: fieldbook-db}\n      measure: value\n      query: CREATE TABLE tend_was_here (x int)\n",
            "{operator: \">\", threshold: 0}",
        ),
    ]
    .join("---\n");
    c.apply_yaml(&[], &yaml).await?;

    // Quiet: every rule has a value; the windowed ones said "no data yet" first, not an error.
    for name in [
        "request-rate",
        "error-ratio",
        "db-latency",
        "db-up",
        "db-value",
    ] {
        let s = status_until_within(&c, NS, WAIT, name, "a value", has_number).await?;
        assert_eq!(state(&s), "Inactive", "{name}: {s:#}");
    }
    // The window's first evaluations had no value yet: counted as such, not as failures.
    let no_data = tend
        .metric(
            r#"tend_alert_evaluations_total{namespace="monitoring",rule="request-rate",result="no_data"}"#,
        )
        .await;
    assert!(no_data >= 1.0, "{}", tend.metrics().await);
    let failures = tend
        .metric(
            r#"tend_alert_evaluation_failures_total{namespace="monitoring",rule="request-rate""#,
        )
        .await;
    assert_eq!(failures, 0.0, "{}", tend.metrics().await);
    // A write in the read-only transaction is refused by the server, and said so.
    let s = status_until_within(&c, NS, WAIT, "db-write", "the read-only refusal", |s| {
        last_value(s).contains("read-only transaction")
    })
    .await?;
    assert!(
        last_value(&s).contains("spec.source.postgres.query")
            && !last_value(&s).contains(&pg.password),
        "{s:#}"
    );
    let count = pg.psql(
        "fieldbook",
        "SELECT count(*) FROM pg_tables WHERE tablename = 'tend_was_here'",
    );
    assert_eq!(count, "0");

    // Load: 20 clients, each a page every 200 ms (≈ 100 requests/s).
    let traffic = Traffic::start(addr.clone(), "/login", 20, Duration::from_millis(200));
    let s = firing(&c, "request-rate").await?;
    assert!(last_value(&s).parse::<f64>()? > 20.0, "{s:#}");

    // Errors: maintenance mode makes /login answer 503.
    maintenance(&fieldbook, true).await;
    let s = firing(&c, "error-ratio").await?;
    assert!(last_value(&s).parse::<f64>()? > 0.3, "{s:#}");
    maintenance(&fieldbook, false).await;
    let s = resolved(&c, "error-ratio").await?;
    assert!(last_value(&s).parse::<f64>()? < 0.3, "{s:#}");
    drop(traffic);
    resolved(&c, "request-rate").await?;

    // Readiness checks, each a `SELECT 1` in fieldbook: 10 clients, one every 2 s each.
    let readiness = Traffic::start(addr.clone(), "/readyz", 10, Duration::from_secs(2));
    let s = status_until_within(&c, NS, WAIT, "p95-latency", "a value", has_number).await?;
    assert_eq!(state(&s), "Inactive", "{s:#}");

    // The database hangs: the probes time out (down, latency = the timeout), and fieldbook's
    // readiness checks wait for it, so its p95 latency rises once they finish. (fieldbook's
    // /metrics hangs too meanwhile — it writes an access log row per request — so the
    // windowed rules' scrapes fail for a while: those are errors, and say so.)
    let frozen = std::time::Instant::now();
    pg.freeze();
    let down = async {
        let up = firing(&c, "db-up").await?;
        let latency = firing(&c, "db-latency").await?;
        anyhow::Ok((up, latency))
    }
    .await;
    // Frozen for 8 s at least: each client has one check hanging all along, about one in
    // twelve of the 30 s window, more than the 5 % above the 95th percentile.
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(frozen.elapsed())).await;
    pg.thaw();
    let (up, latency) = down?;
    assert_eq!(last_value(&up), "0", "{up:#}");
    assert_eq!(last_value(&latency), "2", "{latency:#}");
    resolved(&c, "db-up").await?;
    let s = resolved(&c, "db-latency").await?;
    assert!(last_value(&s).parse::<f64>()? < 1.0, "{s:#}");
    let s = firing(&c, "p95-latency").await?;
    assert!(last_value(&s).parse::<f64>()? > 1.0, "{s:#}");
    // Fast checks fill the window again.
    let s = resolved(&c, "p95-latency").await?;
    assert!(last_value(&s).parse::<f64>()? < 1.0, "{s:#}");
    drop(readiness);

    for name in [
        "request-rate",
        "error-ratio",
        "p95-latency",
        "db-up",
        "db-latency",
    ] {
        let events = events(&c, name).await?;
        assert!(
            events.contains("AlertFiring") && events.contains("AlertResolved"),
            "{name}: {events}"
        );
        assert!(
            !events.contains("no data"),
            "{name}: no data yet is not a failure: {events}"
        );
        assert!(!events.contains(&pg.password), "{events}");
    }
    let log = tend.proc.log_text();
    assert!(!log.contains(&pg.password), "the password is never logged");
    assert!(!log.contains("panicked"), "{log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_source_follows_node_exporter_and_names_bad_queries() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let tend = setup(&c).await?;
    let mut node = NodeExporter::start().await;
    let prometheus = Prometheus::start(&[("node", node.address())]).await;
    let url = prometheus.url();
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let query = |name: &str, url: &str, query: &str, condition: &str| {
        rule_yaml(
            name,
            "1s",
            &format!("    prometheus:\n      url: {url}\n      query: '{query}'\n"),
            condition,
        )
    };
    let yaml = [
        query(
            "node-down",
            &url,
            r#"up{job="node"}"#,
            "{operator: \"<\", threshold: 1}",
        ),
        query(
            "cpu-busy",
            &url,
            r#"sum(rate(node_cpu_seconds_total{mode!="idle"}[10s]))"#,
            "{operator: \">\", threshold: 1000}",
        ),
        query(
            "bad-syntax",
            &url,
            "sum(",
            "{operator: \">\", threshold: 0}",
        ),
        query(
            "many-samples",
            &url,
            "node_cpu_seconds_total",
            "{operator: \">\", threshold: 0}",
        ),
        query("range", &url, "up[1m]", "{operator: \">\", threshold: 0}"),
        query(
            "nothing",
            &url,
            r#"up{job="absent"}"#,
            "{operator: \">\", threshold: 0}",
        ),
        query(
            "unreachable",
            &unreachable,
            "up",
            "{operator: \">\", threshold: 0}",
        ),
    ]
    .join("---\n");
    c.apply_yaml(&[], &yaml).await?;

    let s = status_until_within(&c, NS, WAIT, "node-down", "up = 1", |s| {
        last_value(s) == "1"
    })
    .await?;
    assert_eq!(state(&s), "Inactive");
    status_until_within(&c, NS, WAIT, "cpu-busy", "a value", has_number).await?;

    // Bad input: clear errors naming the field, Ready stays True (the rule is evaluated).
    let s = status_until_within(
        &c,
        NS,
        WAIT,
        "bad-syntax",
        "Prometheus's parse error",
        |s| last_value(s).starts_with("error:"),
    )
    .await?;
    let text = last_value(&s);
    assert!(
        text.contains("spec.source.prometheus.query") && text.contains("parse error"),
        "{text}"
    );
    let s = status_until_within(&c, NS, WAIT, "many-samples", "the vector error", |s| {
        last_value(s).starts_with("error:")
    })
    .await?;
    assert!(
        last_value(&s).contains("spec.source.prometheus.query returned a vector of"),
        "{s:#}"
    );
    let s = status_until_within(&c, NS, WAIT, "range", "the matrix error", |s| {
        last_value(s).starts_with("error:")
    })
    .await?;
    assert!(
        last_value(&s).contains("spec.source.prometheus.query returned a matrix"),
        "{s:#}"
    );
    let s = status_until_within(&c, NS, WAIT, "unreachable", "the connection error", |s| {
        last_value(s).starts_with("error:")
    })
    .await?;
    assert!(
        last_value(&s).contains("spec.source.prometheus.url")
            && last_value(&s).contains(&unreachable),
        "{s:#}"
    );
    let s = status_until_within(&c, NS, WAIT, "nothing", "no data", |s| {
        last_value(s).starts_with("no data")
    })
    .await?;
    assert!(
        last_value(&s).contains("empty vector") && state(&s) == "Inactive",
        "{s:#}"
    );
    for name in ["bad-syntax", "many-samples", "unreachable"] {
        let events = events(&c, name).await?;
        assert!(
            events.contains("EvaluationFailed") && events.contains("spec.source.prometheus"),
            "{name}: {events}"
        );
        let ready = rule(&c, NS, name).await?["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
            .unwrap_or_default();
        assert_eq!(ready["status"], "True", "{name}: {ready:#}");
    }
    assert!(!events(&c, "nothing").await?.contains("EvaluationFailed"));

    // node_exporter dies: Prometheus's `up` goes to 0 and the rule fires; back, it resolves.
    node.stop();
    let s = firing(&c, "node-down").await?;
    assert_eq!(last_value(&s), "0");
    node.restart().await;
    let s = status_until_within(&c, NS, WAIT, "node-down", "resolved", |s| {
        state(s) == "Inactive" && last_value(s) == "1"
    })
    .await?;
    assert!(s["activeSince"].is_null(), "{s:#}");
    let events = events(&c, "node-down").await?;
    assert!(
        events.contains("AlertFiring") && events.contains("AlertResolved"),
        "{events}"
    );
    assert!(!tend.proc.log_text().contains("panicked"));
    Ok(())
}

/// A rule file of `examples/monitoring/`, rewritten for this test's loopback peers: the
/// namespace, the Prometheus and fieldbook URLs, and the timings (`interval` 1 s, `for` 0 s,
/// windows 8 s — production's 5 m windows would need minutes to fill). fieldbook in this tree
/// has no `status_class` label yet, so the error-rate rule's `errorSelector` becomes
/// `{status: "503"}`, the status maintenance mode answers with.
fn example_for_test(path: &std::path::Path, prometheus: &str, fieldbook: &str) -> Value {
    let text = std::fs::read_to_string(path).expect("read the example");
    let mut rule: Value = serde_yaml::from_str(&text).expect("the example is YAML");
    assert_eq!(rule["kind"], "AlertRule", "{}", path.display());
    assert!(
        rule["spec"].get("routes").is_none(),
        "{}: routes are added per environment",
        path.display()
    );
    rule["metadata"]["namespace"] = NS.into();
    let spec = &mut rule["spec"];
    spec["interval"] = "1s".into();
    spec["for"] = "0s".into();
    let source = &mut spec["source"];
    let local = |url: &Value, base: &str, to: &str| -> Value {
        let url = url.as_str().expect("a URL");
        assert!(url.starts_with(base), "{url} is not on {base}");
        url.replacen(base, to, 1).into()
    };
    if source.get("prometheus").is_some() {
        source["prometheus"]["url"] = local(
            &source["prometheus"]["url"],
            "http://prometheus.monitoring.svc:9090",
            prometheus,
        );
    }
    if source.get("metrics").is_some() {
        let metrics = &mut source["metrics"];
        metrics["url"] = local(
            &metrics["url"],
            "http://fieldbook.fieldbook.svc:8080",
            fieldbook,
        );
        metrics["window"] = "8s".into();
        if metrics.get("errorSelector").is_some() {
            assert_eq!(
                metrics["errorSelector"],
                serde_json::json!({"status_class": "5xx"})
            );
            metrics["errorSelector"] = serde_json::json!({"status": "503"});
        }
    }
    if source.get("http").is_some() {
        source["http"]["url"] = local(
            &source["http"]["url"],
            "http://fieldbook.fieldbook.svc:8080",
            fieldbook,
        );
    }
    rule
}

async fn set_condition(
    c: &TestCluster,
    name: &str,
    operator: &str,
    threshold: f64,
) -> anyhow::Result<()> {
    let patch =
        serde_json::json!({"spec": {"condition": {"operator": operator, "threshold": threshold}}});
    c.kubectl(&[
        "patch",
        "alertrule",
        name,
        "-n",
        NS,
        "--type=merge",
        "-p",
        &patch.to_string(),
    ])
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_monitoring_example_evaluates_fires_and_resolves() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let c = TestCluster::start().await?;
    let _tend = setup(&c).await?;
    let node = NodeExporter::start().await;
    let prometheus = Prometheus::start(&[("node", node.address())]).await;
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE fieldbook");
    let fieldbook = Fieldbook::start(
        &c.dir.path().join("fieldbook"),
        &c.dir.path().join("fieldbook.db").display().to_string(),
        PhotoStore::Dir(c.dir.path().join("photos")),
    )
    .await?;
    let addr = format!("127.0.0.1:{}", fieldbook.port);
    // Requests for the API rules to measure.
    let traffic = Traffic::start(addr.clone(), "/login", 5, Duration::from_millis(200));

    let dir = tend_e2e::repo_root().join("examples/monitoring");
    let kustomized = c
        .kubectl(&["kustomize", dir.to_str().expect("utf-8 path")])
        .await?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.file_name().is_some_and(|n| n != "kustomization.yaml"));
    files.sort();
    assert_eq!(files.len(), 9, "{files:?}");
    let mut names = Vec::new();
    let mut yaml = vec![pg_secret("fieldbook-db", &pg, "fieldbook")];
    for file in &files {
        let rule = example_for_test(file, &prometheus.url(), &format!("http://{addr}"));
        let name = rule["metadata"]["name"].as_str().unwrap().to_string();
        assert!(
            kustomized.contains(&format!("name: {name}\n")),
            "kustomization.yaml lists {}",
            file.display()
        );
        names.push(name);
        yaml.push(serde_json::to_string(&rule)?);
    }
    c.apply_yaml(&[], &yaml.join("\n---\n")).await?;

    eprintln!("{:?}: examples applied", started.elapsed());
    // Every rule evaluates to a number: no error, no "no data".
    for name in &names {
        let s = status_until_within(&c, NS, WAIT, name, "a value", has_number).await?;
        let ready = s["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
            .unwrap_or_default();
        assert_eq!(ready["status"], "True", "{name}: {s:#}");
    }

    eprintln!("{:?}: every example has a value", started.elapsed());
    // Flipped (the host is not made to run out of CPU, memory, disk or bandwidth, and the
    // p95 latency is shown induced in the test above): the threshold is moved below the
    // current value, so the rule fires, then above it, so it resolves. All use `>`.
    let flipped = [
        "host-cpu-busy",
        "host-memory-pressure",
        "host-disk-full",
        "host-disk-io-saturated",
        "host-network-saturated",
        "fieldbook-api-p95-latency",
    ];
    for name in flipped {
        assert_eq!(
            rule(&c, NS, name).await?["spec"]["condition"]["operator"],
            ">",
            "{name}"
        );
        set_condition(&c, name, ">", -1.0).await?;
    }
    futures::future::try_join_all(flipped.map(|name| firing(&c, name))).await?;
    for name in flipped {
        set_condition(&c, name, ">", 1e12).await?;
    }
    futures::future::try_join_all(flipped.map(|name| resolved(&c, name))).await?;
    eprintln!("{:?}: flipped rules fired and resolved", started.elapsed());

    // Induced: the API answers 503 in maintenance mode.
    maintenance(&fieldbook, true).await;
    firing(&c, "fieldbook-api-errors").await?;
    maintenance(&fieldbook, false).await;
    resolved(&c, "fieldbook-api-errors").await?;

    eprintln!("{:?}: error rate induced and resolved", started.elapsed());
    // Induced: the database hangs; its round trip counts as the 5 s timeout.
    pg.freeze();
    let slow = firing(&c, "fieldbook-db-slow").await;
    pg.thaw();
    assert_eq!(last_value(&slow?), "5");
    resolved(&c, "fieldbook-db-slow").await?;

    // Induced: fieldbook stops answering (SIGSTOP), then comes back.
    drop(traffic);
    let pid = fieldbook.proc.id().to_string();
    let signal = |sig: &'static str| {
        let pid = pid.clone();
        async move {
            let ok = tokio::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .await
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {sig} {pid}");
        }
    };
    signal("-STOP").await;
    let down = firing(&c, "fieldbook-down").await;
    signal("-CONT").await;
    assert_eq!(last_value(&down?), "0");
    resolved(&c, "fieldbook-down").await?;
    eprintln!(
        "{:?}: database and liveness induced and resolved",
        started.elapsed()
    );

    for name in &names {
        let events = events(&c, name).await?;
        assert!(
            events.contains("AlertFiring") && events.contains("AlertResolved"),
            "{name}: {events}"
        );
    }
    Ok(())
}
