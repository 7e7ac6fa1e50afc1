//! What the API server knows about tend objects without tend running: `kubectl explain` prints
//! the field documentation of the CRDs, and `kubectl apply` refuses every spec error that can be
//! found without the cluster (cron fields, time zones, durations, e-mail addresses), naming the
//! field. Each refusal is checked with the real kubectl against the cluster under test.

use serde_yaml::Value;
use tend_e2e::{TestCluster, repo_root};

/// A cluster with the tend CRDs and the `fieldbook` namespace.
async fn cluster() -> anyhow::Result<TestCluster> {
    let c = TestCluster::start().await?;
    c.install_tend_crds(&[]).await?;
    let ns = repo_root().join("examples/00-namespace.yaml");
    c.kubectl(&["apply", "-f", ns.to_str().expect("utf-8 path")])
        .await?;
    Ok(c)
}

/// The first object of `examples/<file>`.
fn example(file: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join("examples").join(file))
        .expect("reading the example");
    serde_yaml::from_str(&text).expect("the example is YAML")
}

/// The value at a dotted path with `[i]` indexes (`spec.levels[0].ackTimeout`), created when
/// missing.
fn at<'v>(object: &'v mut Value, path: &str) -> &'v mut Value {
    let mut node = object;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((key, rest)) => (
                key,
                Some(
                    rest.trim_end_matches(']')
                        .parse::<usize>()
                        .expect("a list index"),
                ),
            ),
            None => (part, None),
        };
        if node.is_null() {
            *node = Value::Mapping(Default::default());
        }
        node = node
            .as_mapping_mut()
            .expect("a mapping on the path")
            .entry(Value::from(key))
            .or_insert(Value::Null);
        if let Some(i) = index {
            node = &mut node.as_sequence_mut().expect("a list on the path")[i];
        }
    }
    node
}

/// Applies `examples/<file>` with `path` set to `value`; returns kubectl's error, failing when
/// the apply succeeds.
async fn refused(c: &TestCluster, file: &str, path: &str, value: Value) -> anyhow::Result<String> {
    let mut object = example(file);
    *at(&mut object, path) = value;
    let yaml = serde_yaml::to_string(&object)?;
    let out = c.kubectl_stdin(&["apply", "-f", "-"], &yaml).await;
    anyhow::ensure!(
        !out.status.success(),
        "{file} with {path} = {:?} was accepted:\n{}",
        at(&mut object, path),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Applies `examples/<file>` with `path` set to `value`, expecting success (then deletes it).
async fn accepted(c: &TestCluster, file: &str, path: &str, value: Value) -> anyhow::Result<()> {
    let mut object = example(file);
    *at(&mut object, path) = value;
    let yaml = serde_yaml::to_string(&object)?;
    c.apply_yaml(&[], &yaml).await?;
    let out = c.kubectl_stdin(&["delete", "-f", "-"], &yaml).await;
    anyhow::ensure!(out.status.success(), "deleting {file} failed");
    Ok(())
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn assert_names(stderr: &str, field: &str, words: &str) {
    assert!(
        stderr.contains(&format!("{field}: Invalid value"))
            || stderr.contains(&format!("{field}: Unsupported value")),
        "the error does not name {field}:\n{stderr}"
    );
    assert!(
        stderr.contains(words),
        "the error does not say {words:?}:\n{stderr}"
    );
}

#[tokio::test]
async fn kubectl_explain_prints_the_field_docs_of_the_crds() -> anyhow::Result<()> {
    let c = cluster().await?;
    let retention = c
        .kubectl(&["explain", "backuppolicy.spec.retention"])
        .await?;
    for expected in [
        "GROUP:      tend.dev",
        "KIND:       BackupPolicy",
        "VERSION:    v1alpha1",
        "FIELD: retention <Object>",
        "How many backups to keep",
        "keepDaily",
        "<integer>",
        "Keep the newest backup of each of the last N days",
    ] {
        assert!(
            retention.contains(expected),
            "missing {expected:?}:\n{retention}"
        );
    }
    let spec = c.kubectl(&["explain", "rr.spec"]).await?;
    for expected in ["KIND:       RestoreRequest", "restorePoint", "target"] {
        assert!(spec.contains(expected), "missing {expected:?}:\n{spec}");
    }
    // Short names of the other kinds resolve too, recursively.
    let support = c
        .kubectl(&["explain", "supch.spec.inquiryForm", "--recursive"])
        .await?;
    assert!(support.contains("firstResponseSla"), "{support}");
    Ok(())
}

#[tokio::test]
async fn cron_fields_out_of_range_or_unsupported_are_refused_naming_the_schedule()
-> anyhow::Result<()> {
    let c = cluster().await?;
    for (schedule, words) in [
        ("0 2 * * 8", "day-of-week (field 5) must be 0-7 or sun-sat"),
        ("60 2 * * *", "minute (field 1) must be 0-59"),
        ("0 2 L * *", "day-of-month (field 3) must be 1-31"),
        ("0 2 * * 5#3", "day-of-week (field 5)"),
        ("0 2 * 13 *", "month (field 4) must be 1-12 or jan-dec"),
        ("*/0 2 * * *", "each optionally with a step /1-60"),
        ("0 2 * *", "must be five fields separated by spaces"),
        ("@sometimes", "or one of @yearly"),
    ] {
        let err = refused(&c, "backuppolicy.yaml", "spec.schedule", s(schedule)).await?;
        assert_names(&err, "spec.schedule", words);
    }
    let err = refused(
        &c,
        "backuppolicy.yaml",
        "spec.drill.schedule",
        s("30 4-1 * * 0"),
    )
    .await?;
    assert_names(&err, "spec.drill.schedule", "hour (field 2) must be 0-23");
    let err = refused(&c, "logpolicy.yaml", "spec.audit.schedule", s("0 * 32 * *")).await?;
    assert_names(
        &err,
        "spec.audit.schedule",
        "day-of-month (field 3) must be 1-31",
    );
    // The edges of the grammar are accepted.
    for schedule in [
        "0 2 * * 7",
        "59 23 31 12 sun",
        "*/15 9-17 * JAN,jul mon-fri",
        "@weekly",
    ] {
        accepted(&c, "backuppolicy.yaml", "spec.schedule", s(schedule)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn time_zones_that_do_not_exist_are_refused_naming_the_field() -> anyhow::Result<()> {
    let c = cluster().await?;
    for zone in ["Asia/Osaka", "asia/tokyo", "Mars/Olympus_Mons", "+09:00"] {
        let err = refused(&c, "backuppolicy.yaml", "spec.timeZone", s(zone)).await?;
        assert_names(&err, "spec.timeZone", "must be an IANA time zone name");
    }
    let err = refused(&c, "logpolicy.yaml", "spec.timeZone", s("Japan/Tokyo")).await?;
    assert_names(&err, "spec.timeZone", "must be an IANA time zone name");
    for zone in [
        "UTC",
        "Europe/Kyiv",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT-9",
    ] {
        accepted(&c, "backuppolicy.yaml", "spec.timeZone", s(zone)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn zero_and_too_short_durations_are_refused_naming_the_field() -> anyhow::Result<()> {
    let c = cluster().await?;
    for (file, field, value, words) in [
        ("alertrule.yaml", "spec.interval", "0s", "at least 1s"),
        (
            "alertrule.yaml",
            "spec.repeatInterval",
            "30s",
            "at least 1m",
        ),
        (
            "alertrule.yaml",
            "spec.source.metrics.window",
            "0s",
            "at least 1s",
        ),
        (
            "escalationpolicy.yaml",
            "spec.levels[0].ackTimeout",
            "0s",
            "at least 1m",
        ),
        (
            "escalationpolicy.yaml",
            "spec.levels[2].ackTimeout",
            "59s",
            "at least 1m",
        ),
        (
            "backuppolicy.yaml",
            "spec.objectives.rpo",
            "0s",
            "at least 1m",
        ),
        (
            "backuppolicy.yaml",
            "spec.startingDeadline",
            "876001h",
            "at most 876000h",
        ),
        (
            "supportchannel.yaml",
            "spec.inquiryForm.firstResponseSla",
            "0s",
            "at least 1m",
        ),
        (
            "supportchannel.yaml",
            "spec.nps.interval",
            "30m",
            "at least 1h",
        ),
        (
            "logpolicy.yaml",
            "spec.categories.auth.retention",
            "0s",
            "at least 1h",
        ),
        (
            "logpolicy.yaml",
            "spec.audit.rules[0].window",
            "0s",
            "at least 1m",
        ),
    ] {
        let err = refused(&c, file, field, s(value)).await?;
        assert_names(&err, field, "must be a duration of at least");
        assert!(err.contains(words), "{field} = {value}: {err}");
    }
    // Malformed durations are refused by the pattern, also naming the field.
    let err = refused(&c, "alertrule.yaml", "spec.interval", s("30 seconds")).await?;
    assert_names(&err, "spec.interval", "should match");
    accepted(&c, "alertrule.yaml", "spec.interval", s("1s")).await?;
    accepted(&c, "alertrule.yaml", "spec.for", s("0s")).await?;
    accepted(
        &c,
        "escalationpolicy.yaml",
        "spec.levels[0].ackTimeout",
        s("1m"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn malformed_email_addresses_are_refused_naming_the_item() -> anyhow::Result<()> {
    let c = cluster().await?;
    for (file, field) in [
        ("alertrule.yaml", "spec.routes[0].email.to[0]"),
        (
            "escalationpolicy.yaml",
            "spec.levels[0].targets[0].email.to[0]",
        ),
        (
            "supportchannel.yaml",
            "spec.inquiryForm.routes[0].email.to[0]",
        ),
    ] {
        for address in ["oncall", "Ops <ops@fieldbook.example>", "ops@localhost"] {
            let err = refused(&c, file, field, s(address)).await?;
            assert_names(
                &err,
                field,
                "must be an e-mail address such as ops@example.com",
            );
        }
    }
    accepted(
        &c,
        "escalationpolicy.yaml",
        "spec.levels[0].targets[0].email.to[0]",
        s("first.last+tend@mail.fieldbook.example"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn short_names_reach_the_tend_kinds() -> anyhow::Result<()> {
    let c = cluster().await?;
    for file in [
        "alertrule.yaml",
        "escalationpolicy.yaml",
        "supportchannel.yaml",
    ] {
        let path = repo_root().join("examples").join(file);
        c.kubectl(&["apply", "-f", path.to_str().expect("utf-8 path")])
            .await?;
    }
    let names = c
        .kubectl(&["get", "arule,escpol,supch", "-n", "fieldbook", "-o", "name"])
        .await?;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [
            "alertrule.tend.dev/fieldbook-api-error-rate",
            "escalationpolicy.tend.dev/fieldbook-oncall",
            "supportchannel.tend.dev/fieldbook-support",
        ],
        "{names}"
    );
    Ok(())
}

#[tokio::test]
async fn silences_and_route_languages_are_checked_at_apply() -> anyhow::Result<()> {
    let c = cluster().await?;
    let window = |from: &str, until: &str| {
        y(serde_json::json!([{"name": "upgrade", "from": from, "until": until}]))
    };
    let err = refused(
        &c,
        "alertrule.yaml",
        "spec.silences",
        window("2030-01-02T00:00:00Z", "2030-01-01T00:00:00Z"),
    )
    .await?;
    assert_names(&err, "spec.silences[0].until", "until must be after from");
    let err = refused(
        &c,
        "alertrule.yaml",
        "spec.silences",
        y(serde_json::json!([{"name": "weekly", "schedule": "0 2 * * 0"}])),
    )
    .await?;
    assert!(
        err.contains("spec.silences[0]") && err.contains("schedule and duration go together"),
        "{err}"
    );
    let err = refused(
        &c,
        "alertrule.yaml",
        "spec.silences",
        y(
            serde_json::json!([{"name": "both", "from": "2030-01-01T00:00:00Z",
            "until": "2030-01-02T00:00:00Z", "duringInPlaceRestoresOf": {"name": "nightly"}}]),
        ),
    )
    .await?;
    assert!(err.contains("set exactly one of"), "{err}");
    let err = refused(&c, "alertrule.yaml", "spec.routes[0].language", s("fr")).await?;
    assert!(
        err.contains("spec.routes[0].language") && err.contains("Unsupported value"),
        "{err}"
    );
    accepted(
        &c,
        "alertrule.yaml",
        "spec.silences",
        y(serde_json::json!([
            {"name": "upgrade", "from": "2030-01-01T00:00:00Z", "until": "2030-01-01T02:00:00Z"},
            {"name": "sundays", "schedule": "0 2 * * 0", "duration": "2h", "timeZone": "Asia/Tokyo"},
            {"name": "restoring", "duringInPlaceRestoresOf": {"name": "nightly"}}
        ])),
    )
    .await?;
    Ok(())
}

fn y(json: serde_json::Value) -> Value {
    serde_yaml::to_value(json).expect("JSON is YAML")
}
