//! Admission (the CRD's schema and CEL rules, evaluated as the apiserver does) and the
//! reconciler's validation must agree on every value that can be judged without the cluster:
//! what one refuses, the other refuses, naming the same field. Each case sets one field of a
//! minimal valid object and runs both.

use serde_json::{Value, json};
use tend_admission::Schema;
use tend_crds::validation::Validate;

fn schema(kind: &str) -> Schema {
    let crd = tend_crds::crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == kind)
        .expect("a tend kind");
    let open_api = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("a schema");
    Schema::compile(&serde_json::to_value(open_api).unwrap()).expect("the schema compiles")
}

fn backup_policy(spec: Value) -> Value {
    let mut doc = json!({
        "apiVersion": "tend.dev/v1alpha1", "kind": "BackupPolicy",
        "metadata": {"name": "p", "namespace": "fieldbook"},
        "spec": {
            "schedule": "@daily",
            "targets": {"objects": {"filesystem": {"path": "/srv/photos"}}},
            "repository": {"filesystem": {"path": "/srv/backups"}},
            "encryption": {"recipientsSecretRef": {"name": "age", "key": "recipients"}}
        }
    });
    for (key, value) in spec.as_object().unwrap() {
        doc["spec"][key] = value.clone();
    }
    doc
}

/// Whether admission refuses `doc` naming `field`, and whether validation does.
fn verdicts<T>(schema: &Schema, mut doc: Value, field: &str) -> (bool, bool)
where
    T: serde::de::DeserializeOwned + kube::Resource + HasSpec,
{
    let causes = schema.admit(&mut doc, None).causes;
    let admission = causes.iter().any(|c| c.field == field);
    // A too-long value keeps the CEL rules from running; the apiserver says so in one more
    // cause without a field.
    let others: Vec<_> = causes
        .iter()
        .filter(|c| c.field != field && !c.message.contains("rules were not checked"))
        .collect();
    assert!(others.is_empty(), "unexpected causes {others:?}");
    let typed: T = serde_json::from_value(doc).expect("deserializes");
    let validation = typed.errors().iter().any(|e| e.field == field);
    (admission, validation)
}

trait HasSpec {
    fn errors(&self) -> Vec<tend_crds::validation::FieldError>;
}

impl HasSpec for tend_crds::BackupPolicy {
    fn errors(&self) -> Vec<tend_crds::validation::FieldError> {
        self.spec.validate()
    }
}

impl HasSpec for tend_crds::EscalationPolicy {
    fn errors(&self) -> Vec<tend_crds::validation::FieldError> {
        self.spec.validate()
    }
}

fn check_backup_policy_field(field: &str, key: &str, values: &[&str], expect_valid: &[&str]) {
    let schema = schema("BackupPolicy");
    let mut disagreements = Vec::new();
    for value in values {
        let doc = backup_policy(json!({ key: value }));
        let (admission, validation) = verdicts::<tend_crds::BackupPolicy>(&schema, doc, field);
        if admission != validation {
            disagreements.push(format!(
                "{value:?}: admission refuses: {admission}, validation refuses: {validation}"
            ));
        }
        if expect_valid.contains(value) == admission {
            disagreements.push(format!(
                "{value:?}: expected {}",
                if admission { "valid" } else { "a refusal" }
            ));
        }
    }
    assert!(disagreements.is_empty(), "\n{}", disagreements.join("\n"));
}

#[test]
fn cron_schedules_are_judged_alike() {
    let valid = [
        "@daily",
        "@annually",
        "0 2 * * *",
        "*/15 9-17 * JAN,jul mon-fri",
        "0 0 * * 7",
        "0 0 * * sun",
        "59 23 31 12 6",
        "0-59/60 0-23/24 1-31/31 1-12/12 0-7/8",
        "00 002 01 1 0",
        "5  4  *  *  *",
        "? ? ? ? ?",
        "1,2,3-5/2 * * * *",
        "0 12 1 feb-MAR/1 Tue",
    ];
    let invalid = [
        "0 2 * * 8",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 0 *",
        "* * * 13 *",
        "0 2 L * *",
        "0 2 * * 5L",
        "0 2 * * 5#3",
        "0 2 15W * *",
        "*/0 * * * *",
        "*/61 * * * *",
        "+5 * * * *",
        "5-1 * * * *",
        "* * * * sat-sun",
        "* * * * sunday",
        "* * * * ſun",
        " 0 2 * * *",
        "0 2 * * * ",
        "0\t2 * * *",
        "0 2 * *",
        "0 2 * * * *",
        "@sometimes",
        "@Daily",
        "",
        "1,,2 * * * *",
        "1- * * * *",
        "*/ * * * *",
    ];
    // Longer than the schema's maxLength of 100 (and a valid schedule otherwise).
    let long = format!("{} * * * *", ["0"; 50].join(","));
    let all: Vec<&str> = valid
        .iter()
        .chain(invalid.iter())
        .copied()
        .chain([long.as_str()])
        .collect();
    check_backup_policy_field("spec.schedule", "schedule", &all, &valid);
}

#[test]
fn time_zones_are_judged_alike() {
    let valid = [
        "UTC",
        "Asia/Tokyo",
        "America/Argentina/Buenos_Aires",
        "Etc/GMT+5",
        "US/Pacific",
        "Europe/Kyiv",
    ];
    let invalid = [
        "Asia/Osaka",
        "asia/tokyo",
        "utc",
        "Mars/Olympus_Mons",
        "Factory",
        "Asia/Tokyo ",
        "",
        "+09:00",
    ];
    let all: Vec<&str> = valid.iter().chain(invalid.iter()).copied().collect();
    check_backup_policy_field("spec.timeZone", "timeZone", &all, &valid);
}

#[test]
fn durations_are_judged_alike() {
    // startingDeadline must be at least 1s.
    let valid = [
        "1s", "1h", "1h30m", "1.5h", "1000ms", "90s", "2160h", "876000h", "0.5h1s",
    ];
    let invalid = [
        "0",
        "0s",
        "999ms",
        "0.5s",
        "1000000us",
        "1000000µs",
        "-1h",
        "1d",
        "1h 30m",
        "h",
        "1.h",
        ".5h",
        "876001h",
        "99999999999999999999h",
        "",
        "1H",
        "1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1",
    ];
    let all: Vec<&str> = valid
        .iter()
        .chain(invalid.iter())
        .copied()
        .filter(|v| *v != "1000000us") // exactly 1s: valid, checked below
        .collect();
    check_backup_policy_field("spec.startingDeadline", "startingDeadline", &all, &valid);
    check_backup_policy_field(
        "spec.startingDeadline",
        "startingDeadline",
        &["1000000us"],
        &["1000000us"],
    );
}

#[test]
fn e_mail_addresses_are_judged_alike() {
    let schema = schema("EscalationPolicy");
    let valid = [
        "ops@fieldbook.example",
        "first.last+tag@mail.example.co.jp",
        "a_b%c-d@x-y.example",
    ];
    let invalid = [
        "ops",
        "ops@localhost",
        "Ops <ops@fieldbook.example>",
        "ops@@fieldbook.example",
        "ops@fieldbook..example",
        "ops@-fieldbook.example",
        "ops @fieldbook.example",
        "",
    ];
    let mut disagreements = Vec::new();
    for address in valid.iter().chain(invalid.iter()) {
        let doc = json!({
            "apiVersion": "tend.dev/v1alpha1", "kind": "EscalationPolicy",
            "metadata": {"name": "p", "namespace": "fieldbook"},
            "spec": {"levels": [{"name": "L1", "ackTimeout": "15m", "targets": [
                {"name": "mail", "email": {"to": [address], "smtpSecretRef": {"name": "smtp"}}}
            ]}]}
        });
        let field = "spec.levels[0].targets[0].email.to[0]";
        let (admission, validation) = verdicts::<tend_crds::EscalationPolicy>(&schema, doc, field);
        if admission != validation || valid.contains(address) == admission {
            disagreements.push(format!(
                "{address:?}: admission refuses: {admission}, validation refuses: {validation}"
            ));
        }
    }
    assert!(disagreements.is_empty(), "\n{}", disagreements.join("\n"));
}
