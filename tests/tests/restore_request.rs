//! RestoreRequests and drills end to end on devcluster with real kubectl: fieldbook on SQLite
//! and on PostgreSQL (photos in a directory and in S3) is backed up, damaged, and restored in
//! place and into scratch targets; a corrupted part is caught before anything is touched; a
//! finished request is never run again; drills run on an injected clock; a restore killed by
//! SIGKILL ends Failed and its scratch target is removed.

use std::time::Duration;

use jiff::ToSpan;
use jiff::civil::Time;
use serde_json::Value;
use tend::run::{RunConfig, run_with_client};
use tend_backup::{LocalRepository, PolicyLocation, Repository, restore_points};
use tend_e2e::farm::{
    NS, finished_restore, object_json, photo_body, policy_status, restore_yaml, setup, sqlite,
    successful_backup, write_photos,
};
use tend_e2e::fieldbook::{Fieldbook, PhotoStore};
use tend_e2e::{TestCluster, WAIT, events_of, eventually, files_under, free_port};
use tend_testkit::clock::{TestClock, days_after, next_day_at, utc};
use tend_testkit::{Keys, S3_KEY_ID, S3_SECRET, S3Server, s3_repo};

fn check<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name}: {status:#}"))
}

fn component<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["component"] == name))
        .unwrap_or_else(|| panic!("no component {name}: {status:#}"))
}

/// fieldbook on SQLite with photos in a directory: a scratch restore leaves production alone;
/// after users and photos are lost an in-place restore brings them back (maintenance on and off,
/// the app's verify agrees); re-applying the finished request runs nothing; a corrupted part
/// fails the next request before anything is touched, naming the part.
#[tokio::test]
async fn fieldbook_on_sqlite_restores_in_place_and_into_scratch() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let app_dir = c.dir.path().join("fieldbook");
    let photos_dir = app_dir.join("photos");
    let photos = write_photos(&photos_dir, 12, 4096);
    let db = app_dir.join("fieldbook.db");
    let app = Fieldbook::start(
        &app_dir,
        &db.display().to_string(),
        PhotoStore::Dir(photos_dir.clone()),
    )
    .await?;
    app.create_admin(&app_dir, "admin@example.com")?;
    let repo_dir = c.dir.path().join("repository");
    let scratch_dir = c.dir.path().join("scratch");
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: fieldbook-ops, namespace: {NS}}}
stringData: {{token: {token}}}
---
apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: fieldbook, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  app:
    endpoint: {endpoint}
    tokenSecretRef: {{name: fieldbook-ops, key: token}}
  targets:
    database: {{sqlite: {{}}}}
    objects: {{filesystem: {{path: {photos}}}}}
    config:
      configMapSelector: {{matchLabels: {{app: farm}}}}
      appSettings: true
  repository: {{filesystem: {{path: {repo}}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
    identitySecretRef: {{name: backup-age, key: identity}}
"#,
            token = app.token,
            endpoint = app.ops_endpoint(),
            photos = photos_dir.display(),
            repo = repo_dir.display()
        ),
    )
    .await?;
    let tend = c.start_tend("restore-sqlite").await?;
    let log = || tend.proc.log_text();
    let point = successful_backup(&c, "fieldbook", "1", String::new).await?;

    // A scratch restore: everything lands under the scratch directory, production is untouched.
    let scratch = restore_yaml(
        "scratch-1",
        "fieldbook",
        &format!(
            "{{mode: scratch, scratch: {{filesystem: {{path: {}}}}}}}",
            scratch_dir.display()
        ),
        "  checks:\n  - {name: one-admin, type: sql, query: \"SELECT COUNT(*) = 1 FROM users\"}\n",
    );
    c.apply_yaml(&[], &scratch).await?;
    let status = finished_restore(&c, "scratch-1", log).await?;
    eprintln!(
        "measured: RestoreRequest scratch-1: phase {}, RTO {}",
        status["phase"], status["rto"]
    );
    assert_eq!(status["phase"], "Succeeded", "{status:#}");
    assert_eq!(status["restorePoint"]["id"], point.as_str());
    assert!(status["rto"].as_str().is_some(), "{status:#}");
    for name in ["rowCounts", "objectHashes", "one-admin"] {
        assert_eq!(check(&status, name)["passed"], true, "{status:#}");
    }
    for name in ["database", "objects", "config"] {
        assert_eq!(
            component(&status, name)["result"],
            "Succeeded",
            "{status:#}"
        );
    }
    let scratch_copy = scratch_dir.join("farm-scratch-1");
    assert_eq!(
        sqlite(
            &scratch_copy.join("database.sqlite"),
            "SELECT COUNT(*) FROM users"
        )?,
        "1"
    );
    assert_eq!(files_under(&scratch_copy.join("objects")).len(), 12);
    let describe = c
        .kubectl(&["describe", "rr", "scratch-1", "-n", NS])
        .await?;
    let events = events_of(&describe);
    assert!(
        events.contains("RestoreStarted") && events.contains("RestoreSucceeded"),
        "{describe}"
    );
    assert!(
        !events.contains("MaintenanceOn"),
        "a scratch restore touched the app: {describe}"
    );
    assert_eq!(app.ops_get("maintenance")?["enabled"], false);

    // Disaster: the users are deleted, photos deleted and one overwritten.
    sqlite(&db, "PRAGMA foreign_keys = OFF; DELETE FROM users;")?;
    for path in &photos[..3] {
        std::fs::remove_file(path)?;
    }
    std::fs::write(&photos[3], b"overwritten")?;
    assert_eq!(app.ops_get("verify")?["tables"]["users"], 0);
    c.kubectl(&["delete", "configmap", "farm-settings", "-n", NS])
        .await?;

    let in_place = restore_yaml(
        "in-place-1",
        "fieldbook",
        "{mode: inPlace, confirm: true}",
        "  checks:\n  - {name: app, type: appVerify}\n",
    );
    c.apply_yaml(&[], &in_place).await?;
    let status = finished_restore(&c, "in-place-1", log).await?;
    eprintln!(
        "measured: RestoreRequest in-place-1: phase {}, RTO {}",
        status["phase"], status["rto"]
    );
    assert_eq!(status["phase"], "Succeeded", "{status:#}\n{}", log());
    assert_eq!(check(&status, "app")["passed"], true, "{status:#}");
    assert_eq!(check(&status, "rowCounts")["passed"], true, "{status:#}");
    assert_eq!(check(&status, "objectHashes")["passed"], true, "{status:#}");
    let objects = component(&status, "objects");
    assert_eq!(objects["objects"], 4, "{objects}");
    assert_eq!(objects["objectsSkipped"], 8, "{objects}");
    assert_eq!(sqlite(&db, "SELECT COUNT(*) FROM users")?, "1");
    for (i, path) in photos.iter().enumerate() {
        assert_eq!(
            std::fs::read(path)?,
            photo_body(i, 4096),
            "{}",
            path.display()
        );
    }
    let verify = app.ops_get("verify")?;
    assert_eq!(verify["ok"], true, "{verify:#}");
    assert_eq!(verify["tables"]["users"], 1, "{verify:#}");
    assert_eq!(app.ops_get("maintenance")?["enabled"], false);
    let config = component(&status, "config");
    assert_eq!(
        config["objects"], 2,
        "one ConfigMap and the app settings: {config}"
    );
    let cm = object_json(&c, "configmap", "farm-settings").await?;
    assert_eq!(cm["data"]["greeting"], "hello", "{cm:#}");
    assert_eq!(cm["metadata"]["labels"]["app"], "farm", "{cm:#}");
    let describe = c
        .kubectl(&["describe", "rr", "in-place-1", "-n", NS])
        .await?;
    let events = events_of(&describe);
    for reason in [
        "RestoreStarted",
        "MaintenanceOn",
        "MaintenanceOff",
        "RestoreSucceeded",
    ] {
        assert!(events.contains(reason), "{reason} missing:\n{describe}");
    }
    assert!(!describe.contains(&app.token), "the ops token leaked");
    assert!(
        !describe.contains(&keys.identity),
        "the age identity leaked"
    );
    let table = c.kubectl(&["get", "rr", "-n", NS]).await?;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("in-place-1") && l.contains("Succeeded") && l.contains(&point)),
        "{table}"
    );

    // Re-applying the finished request (a GitOps re-sync) runs nothing.
    let before = object_json(&c, "rr", "in-place-1").await?["status"].clone();
    sqlite(&db, "PRAGMA foreign_keys = OFF; DELETE FROM users;")?;
    c.apply_yaml(&[], &in_place).await?;
    c.kubectl(&[
        "annotate",
        "rr",
        "in-place-1",
        "-n",
        NS,
        "test.tend.dev/poke=1",
    ])
    .await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = object_json(&c, "rr", "in-place-1").await?["status"].clone();
    assert_eq!(before["phase"], after["phase"]);
    assert_eq!(before["startTime"], after["startTime"]);
    assert_eq!(before["completionTime"], after["completionTime"]);
    assert_eq!(
        sqlite(&db, "SELECT COUNT(*) FROM users")?,
        "0",
        "it ran again"
    );
    let describe = c
        .kubectl(&["describe", "rr", "in-place-1", "-n", NS])
        .await?;
    assert_eq!(
        events_of(&describe).matches("RestoreStarted").count(),
        1,
        "{describe}"
    );

    // One byte flipped in the stored database part: the next request fails naming the part,
    // and neither the database nor maintenance mode is touched.
    let manifest = restore_points(
        &LocalRepository::new(&repo_dir)?,
        &PolicyLocation::new(NS, "fieldbook"),
    )
    .await?
    .remove(0)
    .manifest;
    let part = &manifest.database.as_ref().unwrap().part;
    let key = PolicyLocation::new(NS, "fieldbook").part_key(&manifest.id, part);
    let path = repo_dir.join(&key);
    let mut bytes = std::fs::read(&path)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes)?;
    c.apply_yaml(
        &[],
        &restore_yaml(
            "in-place-2",
            "fieldbook",
            "{mode: inPlace, confirm: true}",
            "",
        ),
    )
    .await?;
    let status = finished_restore(&c, "in-place-2", log).await?;
    eprintln!(
        "measured: RestoreRequest in-place-2: phase {}, RTO {}",
        status["phase"], status["rto"]
    );
    assert_eq!(status["phase"], "Failed", "{status:#}");
    let message = status["message"].as_str().unwrap();
    assert!(message.contains(&key), "the part is not named: {message}");
    assert!(message.contains("nothing was restored"), "{message}");
    assert_eq!(
        sqlite(&db, "SELECT COUNT(*) FROM users")?,
        "0",
        "the database was touched"
    );
    let describe = c
        .kubectl(&["describe", "rr", "in-place-2", "-n", NS])
        .await?;
    assert!(
        !events_of(&describe).contains("MaintenanceOn"),
        "{describe}"
    );
    assert!(events_of(&describe).contains("RestoreFailed"), "{describe}");
    Ok(())
}

/// fieldbook on PostgreSQL with photos in S3 (moto), repository in S3: a scratch restore goes
/// into a new database and a scratch prefix, and production is untouched; after the users table
/// is emptied and photos deleted, an in-place restore brings both back.
#[tokio::test]
async fn fieldbook_on_postgres_and_s3_restores_in_place_and_into_scratch() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let pg = tend_testkit::Postgres::start();
    pg.psql("postgres", "CREATE DATABASE fieldbook");
    let moto = S3Server::start();
    let photos = s3_repo(&moto.endpoint(), "farm-photos", "photos").await;
    for i in 0..8 {
        let body = photo_body(i, 3000);
        let len = body.len() as u64;
        photos
            .put(
                &format!("sha256/{i:02}/photo-{i}"),
                Box::pin(std::io::Cursor::new(body)),
                Some(len),
            )
            .await?;
    }
    let _ = s3_repo(&moto.endpoint(), "farm-backups", "").await;
    let scratch_bucket = s3_repo(&moto.endpoint(), "farm-scratch", "").await;
    let app_dir = c.dir.path().join("fieldbook");
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/fieldbook",
        pg.password, pg.port
    );
    let app = Fieldbook::start(
        &app_dir,
        &url,
        PhotoStore::S3 {
            endpoint: moto.endpoint(),
            bucket: "farm-photos".into(),
            prefix: "photos".into(),
            access_key_id: S3_KEY_ID.into(),
            secret_access_key: S3_SECRET.into(),
        },
    )
    .await?;
    app.create_admin(&app_dir, "admin@example.com")?;
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: fieldbook-db, namespace: {NS}}}
stringData: {{host: 127.0.0.1, port: "{port}", dbname: fieldbook, user: postgres, password: {password}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: scratch-db, namespace: {NS}}}
stringData: {{host: 127.0.0.1, port: "{port}", dbname: postgres, user: postgres, password: {password}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: fieldbook-ops, namespace: {NS}}}
stringData: {{token: {token}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: s3, namespace: {NS}}}
stringData: {{accessKeyId: {key_id}, secretAccessKey: {secret}}}
---
apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: fieldbook-pg, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  app:
    endpoint: {endpoint_app}
    tokenSecretRef: {{name: fieldbook-ops, key: token}}
  targets:
    database:
      postgres: {{connectionSecretRef: {{name: fieldbook-db}}}}
    objects:
      s3: {{bucket: farm-photos, prefix: photos, endpoint: "{endpoint}", forcePathStyle: true, credentialsSecretRef: {{name: s3}}}}
  repository:
    s3: {{bucket: farm-backups, prefix: tend, endpoint: "{endpoint}", forcePathStyle: true, credentialsSecretRef: {{name: s3}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
    identitySecretRef: {{name: backup-age, key: identity}}
"#,
            port = pg.port,
            password = pg.password,
            token = app.token,
            endpoint_app = app.ops_endpoint(),
            key_id = S3_KEY_ID,
            secret = S3_SECRET,
            endpoint = moto.endpoint(),
        ),
    )
    .await?;
    let tend = c.start_tend("restore-pg").await?;
    let log = || tend.proc.log_text();
    successful_backup(&c, "fieldbook-pg", "1", String::new).await?;

    c.apply_yaml(
        &[],
        &restore_yaml(
            "scratch-pg",
            "fieldbook-pg",
            &format!(
                "{{mode: scratch, scratch: {{postgres: {{connectionSecretRef: {{name: scratch-db}}}}, s3: {{bucket: farm-scratch, prefix: drills, endpoint: \"{}\", forcePathStyle: true, credentialsSecretRef: {{name: s3}}}}}}}}",
                moto.endpoint()
            ),
            "  checks:\n  - {name: one-admin, type: sql, query: \"SELECT count(*) = 1 FROM users\"}\n",
        ),
    )
    .await?;
    let status = finished_restore(&c, "scratch-pg", log).await?;
    eprintln!(
        "measured: RestoreRequest scratch-pg: phase {}, RTO {}",
        status["phase"], status["rto"]
    );
    assert_eq!(status["phase"], "Succeeded", "{status:#}");
    for name in ["rowCounts", "objectHashes", "one-admin"] {
        assert_eq!(check(&status, name)["passed"], true, "{status:#}");
    }
    let resources: Vec<String> = status["scratchResources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let database = resources
        .iter()
        .find_map(|r| r.strip_prefix("postgres:"))
        .expect("a scratch database is listed")
        .to_string();
    assert!(database.starts_with("tend_scratch_"), "{resources:?}");
    assert_eq!(pg.psql(&database, "SELECT count(*) FROM users").trim(), "1");
    let scratch_objects = scratch_bucket
        .list("drills/farm-scratch-pg/objects/")
        .await?;
    assert_eq!(scratch_objects.len(), 8, "{scratch_objects:?}");
    // Production untouched.
    assert_eq!(
        pg.psql("fieldbook", "SELECT count(*) FROM users").trim(),
        "1"
    );
    let describe = c
        .kubectl(&["describe", "rr", "scratch-pg", "-n", NS])
        .await?;
    assert!(
        !events_of(&describe).contains("MaintenanceOn"),
        "{describe}"
    );

    // Disaster: users gone, photos deleted.
    pg.psql("fieldbook", "TRUNCATE users CASCADE");
    for i in 0..3 {
        photos.delete(&format!("sha256/{i:02}/photo-{i}")).await?;
    }
    c.apply_yaml(
        &[],
        &restore_yaml(
            "in-place-pg",
            "fieldbook-pg",
            "{mode: inPlace, confirm: true}",
            "  checks:\n  - {name: app, type: appVerify}\n",
        ),
    )
    .await?;
    let status = finished_restore(&c, "in-place-pg", log).await?;
    eprintln!(
        "measured: RestoreRequest in-place-pg: phase {}, RTO {}",
        status["phase"], status["rto"]
    );
    assert_eq!(status["phase"], "Succeeded", "{status:#}\n{}", log());
    assert_eq!(
        pg.psql("fieldbook", "SELECT count(*) FROM users").trim(),
        "1"
    );
    assert_eq!(photos.list("sha256/").await?.len(), 8);
    assert_eq!(component(&status, "objects")["objects"], 3, "{status:#}");
    let verify = app.ops_get("verify")?;
    assert_eq!(verify["ok"], true, "{verify:#}");
    assert_eq!(verify["tables"]["users"], 1, "{verify:#}");
    assert_eq!(app.ops_get("maintenance")?["enabled"], false);
    let log_text = log();
    assert!(
        !log_text.contains(&pg.password),
        "the database password leaked"
    );
    assert!(!log_text.contains(S3_SECRET), "the S3 secret leaked");
    Ok(())
}

/// A clock the test sets, which then runs at real speed (so measured RTOs are real).
/// Drills on an injected clock: the nightly drill restores the newest point into a scratch
/// directory, passes, records its RTO, marks the point verified and removes the scratch copy;
/// after a blob is lost the next drill fails with DrillFailed naming it; only the newest drill
/// request is kept.
#[tokio::test]
async fn drills_run_on_schedule_measure_rto_and_catch_a_broken_backup() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 20, 4096);
    let repo_dir = c.dir.path().join("repository");
    let scratch_dir = c.dir.path().join("scratch");
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: nightly, namespace: {NS}}}
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
  objectives: {{rpo: 26h, rto: 30m}}
  drill:
    schedule: "0 3 * * *"
    scratch: {{filesystem: {{path: {scratch}}}}}
    keepRequests: 1
"#,
            photos = photos.display(),
            repo = repo_dir.display(),
            scratch = scratch_dir.display()
        ),
    )
    .await?;
    // The night after today, so the schedule's 02:00 lies after the policy's creation.
    let first_backup = next_day_at(Time::constant(2, 0, 30, 0));
    let first_drill = first_backup + 1.hour();
    let (test_clock, now) = TestClock::new(first_backup);
    let mut config = RunConfig::new(format!("127.0.0.1:{}", free_port()).parse()?);
    config.clock = tend::context::Clock::from_fn(now);
    let client = c.client().await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(run_with_client(client, config, async move {
        let _ = stop_rx.await;
    }));
    let poke = |n: &str| {
        let n = n.to_string();
        let c = &c;
        async move {
            c.kubectl(&[
                "annotate",
                "--overwrite",
                "backuppolicy",
                "nightly",
                "-n",
                NS,
                &format!("test.tend.dev/poke={n}"),
            ])
            .await
        }
    };

    // Day 1: the 02:00 backup, then the 03:00 drill.
    poke("1").await?;
    let status = eventually(WAIT * 3, "the first backup", || async {
        let s = policy_status(&c, "nightly").await.ok()?;
        (s["lastBackup"]["result"] == "Succeeded").then_some(s)
    })
    .await?;
    let point = status["lastBackup"]["id"].as_str().unwrap().to_string();
    assert!(status.get("lastDrill").is_none(), "{status:#}");
    test_clock.set(first_drill);
    poke("2").await?;
    let status = eventually(WAIT * 3, "the first drill", || async {
        let s = policy_status(&c, "nightly").await.ok()?;
        matches!(
            s["lastDrill"]["result"].as_str(),
            Some("Succeeded" | "Failed")
        )
        .then_some(s)
    })
    .await?;
    let drill = &status["lastDrill"];
    eprintln!(
        "measured: drill {}: RTO {}",
        drill["requestName"], drill["rto"]
    );
    assert_eq!(drill["result"], "Succeeded", "{status:#}");
    assert_eq!(drill["restorePoint"], point.as_str());
    let request = drill["requestName"].as_str().unwrap().to_string();
    assert_eq!(
        request,
        // Named after the schedule's slot (03:00), not the moment the drill started.
        format!("nightly-drill-{}", utc(first_drill, "%Y%m%d%H%M00"))
    );
    assert!(
        drill["rto"].as_str().is_some_and(|r| r.ends_with('s')),
        "{drill}"
    );
    let conditions = status["conditions"].as_array().unwrap();
    let condition = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(condition("DrillPassed")["status"], "True", "{status:#}");
    assert_eq!(condition("RTOMet")["status"], "True", "{status:#}");
    assert_eq!(condition("RTOMet")["reason"], "RTOMet");
    assert_eq!(status["restorePoints"][0]["verified"], true, "{status:#}");
    let rr = object_json(&c, "rr", &request).await?;
    assert_eq!(rr["status"]["phase"], "Succeeded", "{rr:#}");
    assert_eq!(rr["metadata"]["labels"]["tend.dev/drill-of"], "nightly");
    assert_eq!(rr["metadata"]["ownerReferences"][0]["name"], "nightly");
    assert!(rr["status"].get("scratchResources").is_none(), "{rr:#}");
    assert!(
        files_under(&scratch_dir).is_empty(),
        "the drill's scratch copy is left: {:?}",
        files_under(&scratch_dir)
    );

    // A blob goes missing from the repository; the next day's backup still references it
    // (unchanged photos are not re-read), and that night's drill catches it.
    let blobs = files_under(&repo_dir.join(PolicyLocation::new(NS, "nightly").blobs_prefix()));
    std::fs::remove_file(&blobs[0])?;
    test_clock.set(days_after(first_backup, 1));
    poke("3").await?;
    eventually(WAIT * 3, "the second backup", || async {
        let s = policy_status(&c, "nightly").await.ok()?;
        (s["lastBackup"]["result"] == "Succeeded" && s["lastBackup"]["id"] != point.as_str())
            .then_some(())
    })
    .await?;
    let second_drill = days_after(first_drill, 1);
    test_clock.set(second_drill);
    poke("4").await?;
    let status = eventually(WAIT * 3, "the second drill", || async {
        let s = policy_status(&c, "nightly").await.ok()?;
        (s["lastDrill"]["requestName"] != request.as_str()
            && matches!(
                s["lastDrill"]["result"].as_str(),
                Some("Succeeded" | "Failed")
            ))
        .then_some(s)
    })
    .await?;
    let drill = &status["lastDrill"];
    assert_eq!(drill["result"], "Failed", "{status:#}");
    assert!(
        drill["message"].as_str().unwrap().contains("is missing"),
        "{drill}"
    );
    let conditions = status["conditions"].as_array().unwrap();
    let drill_passed = conditions
        .iter()
        .find(|c| c["type"] == "DrillPassed")
        .unwrap();
    assert_eq!(drill_passed["status"], "False");
    assert_eq!(drill_passed["reason"], "DrillFailed");
    assert!(
        drill_passed["message"]
            .as_str()
            .unwrap()
            .contains("is missing")
    );
    let rto = conditions.iter().find(|c| c["type"] == "RTOMet").unwrap();
    assert_eq!(rto["status"], "Unknown", "{status:#}");
    // The new point was not verified; the first one still is.
    assert_eq!(status["restorePoints"][0]["verified"], false, "{status:#}");
    assert_eq!(status["restorePoints"][1]["verified"], true, "{status:#}");
    // keepRequests: 1 — only the newest finished drill request remains.
    let names = eventually(WAIT, "old drill requests to be pruned", || async {
        let out = c
            .kubectl(&[
                "get",
                "rr",
                "-n",
                NS,
                "-l",
                "tend.dev/drill-of=nightly",
                "-o",
                "name",
            ])
            .await
            .ok()?;
        (out.lines().count() == 1).then_some(out)
    })
    .await?;
    let second_request = format!("nightly-drill-{}", utc(second_drill, "%Y%m%d%H%M00"));
    assert!(names.contains(&second_request), "{names}");
    let describe = c.kubectl(&["describe", "bp", "nightly", "-n", NS]).await?;
    let events = events_of(&describe);
    for reason in ["DrillStarted", "DrillPassed", "DrillFailed"] {
        assert!(events.contains(reason), "{reason} missing:\n{describe}");
    }
    let _ = stop_tx.send(());
    controller.await??;
    Ok(())
}

/// SIGKILL in the middle of a scratch restore: the next controller ends the request Failed
/// ("interrupted") and removes what it had written; it never runs it again.
#[tokio::test]
async fn a_restore_killed_mid_way_is_failed_and_its_scratch_removed() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 160, 1024 * 1024);
    let repo_dir = c.dir.path().join("repository");
    let scratch_dir = c.dir.path().join("scratch");
    let policy = format!(
        r#"apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: big, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  targets:
    objects: {{filesystem: {{path: {photos}}}}}
  repository: {{filesystem: {{path: {repo}}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
    identitySecretRef: {{name: backup-age, key: identity}}
"#,
        photos = photos.display(),
        repo = repo_dir.display()
    );
    c.apply_yaml(&[], &policy).await?;
    let mut tend = c.start_tend("restore-kill-1").await?;
    successful_backup(&c, "big", "1", String::new).await?;
    c.apply_yaml(
        &[],
        &restore_yaml(
            "big-1",
            "big",
            &format!(
                "{{mode: scratch, scratch: {{filesystem: {{path: {}}}}}}}",
                scratch_dir.display()
            ),
            "",
        ),
    )
    .await?;
    let objects = scratch_dir.join("farm-big-1").join("objects");
    let deadline = std::time::Instant::now() + WAIT * 2;
    while files_under(&objects).is_empty() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the restore never started writing:\n{}",
            tend.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tend.proc.kill(); // SIGKILL
    let written = files_under(&objects).len();
    assert!(written < 160, "the restore finished before it was killed");
    let status = object_json(&c, "rr", "big-1").await?["status"].clone();
    assert_eq!(status["phase"], "Running", "{status:#}");
    assert!(
        status["scratchResources"][0]
            .as_str()
            .is_some_and(|r| r.ends_with("farm-big-1")),
        "{status:#}"
    );

    let tend = c.start_tend("restore-kill-2").await?;
    let status = finished_restore(&c, "big-1", || tend.proc.log_text()).await?;
    assert_eq!(status["phase"], "Failed", "{status:#}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("interrupted"),
        "{status:#}"
    );
    assert!(status.get("scratchResources").is_none(), "{status:#}");
    assert!(
        !scratch_dir.join("farm-big-1").exists(),
        "the scratch copy is left: {} files",
        files_under(&scratch_dir).len()
    );
    // Restarting again never runs it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!scratch_dir.join("farm-big-1").exists());
    assert_eq!(
        object_json(&c, "rr", "big-1").await?["status"]["phase"],
        "Failed"
    );

    // A rebuilt cluster: the same policy applied anew lists the repository's restore points
    // before any backup runs.
    c.kubectl(&["delete", "backuppolicy", "big", "-n", NS])
        .await?;
    c.apply_yaml(&[], &policy).await?;
    let status = eventually(WAIT, "restore points of the re-created policy", || async {
        let status = object_json(&c, "backuppolicy", "big").await.ok()?["status"].clone();
        status["restorePoints"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
            .then_some(status)
    })
    .await?;
    assert_eq!(
        status["restorePoints"].as_array().unwrap().len(),
        1,
        "{status:#}"
    );
    assert!(status.get("lastBackup").is_none(), "{status:#}");
    Ok(())
}

/// The automated path for lost photos: fieldbook's self-check sees referenced photos missing
/// (`fieldbook_verify_missing_objects`), an AlertRule on that metric fires and creates the
/// RestoreRequest of its remediation template (objects, in place), and the photos come back.
#[tokio::test]
async fn missing_photos_fire_an_alert_whose_remediation_restores_them() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let app_dir = c.dir.path().join("fieldbook");
    let photos_dir = app_dir.join("photos");
    let db = app_dir.join("fieldbook.db");
    let app = Fieldbook::start_with_env(
        &app_dir,
        &db.display().to_string(),
        PhotoStore::Dir(photos_dir.clone()),
        &[("FIELDBOOK_VERIFY_INTERVAL", "1s")],
    )
    .await?;
    app.create_admin(&app_dir, "admin@example.com")?;
    // Three photos of one record, stored under fieldbook's content-addressed keys.
    let mut sql = String::from(
        "INSERT INTO fields (owner_id, name, location, created_at) VALUES (1, 'north', 'hill', 0);\
         INSERT INTO crops (owner_id, field_id, name, variety, created_at) VALUES (1, 1, 'rice', 'koshihikari', 0);\
         INSERT INTO records (owner_id, crop_id, day, kind, quantity, unit, notes, created_at) VALUES (1, 1, '2026-11-28', 'harvest', 3.5, 'kg', '', 0);",
    );
    let mut files = Vec::new();
    for i in 0..3u8 {
        let prefix = format!("{:02x}", 0xa0 + i);
        let key = format!("sha256/{prefix}/{prefix}{}", "0".repeat(62));
        let body = photo_body(usize::from(i), 5000);
        let path = photos_dir.join(&key);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, &body)?;
        sql.push_str(&format!(
            "INSERT INTO photos (record_id, object_key, content_type, size_bytes, created_at) VALUES (1, '{key}', 'image/jpeg', {}, 0);",
            body.len()
        ));
        files.push((path, body));
    }
    sqlite(&db, &sql)?;
    let metrics_url = format!("http://127.0.0.1:{}/metrics", app.port);
    let repo_dir = c.dir.path().join("repository");
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: fieldbook-ops, namespace: {NS}}}
stringData: {{token: {token}}}
---
apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: fieldbook, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  app:
    endpoint: {endpoint}
    tokenSecretRef: {{name: fieldbook-ops, key: token}}
  targets:
    database: {{sqlite: {{}}}}
    objects: {{filesystem: {{path: {photos}}}}}
  repository: {{filesystem: {{path: {repo}}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
    identitySecretRef: {{name: backup-age, key: identity}}
---
apiVersion: tend.dev/v1alpha1
kind: AlertRule
metadata: {{name: photos-missing, namespace: {NS}}}
spec:
  summary: Photos referenced by records are missing
  interval: 1s
  source:
    metrics: {{url: "{metrics_url}", metric: fieldbook_verify_missing_objects, aggregation: max}}
  condition: {{operator: ">", threshold: 0}}
  remediation:
    restore:
      policyRef: {{name: fieldbook}}
      restorePoint: {{latest: true}}
      components: [objects]
      target: {{mode: inPlace, confirm: true}}
      checks:
      - {{name: app, type: appVerify}}
"#,
            token = app.token,
            endpoint = app.ops_endpoint(),
            photos = photos_dir.display(),
            repo = repo_dir.display()
        ),
    )
    .await?;
    let tend = c.start_tend("restore-alert").await?;
    let log = || tend.proc.log_text();
    successful_backup(&c, "fieldbook", "1", String::new).await?;
    let rule = object_json(&c, "alertrule", "photos-missing").await?;
    assert_ne!(rule["status"]["state"], "Firing", "{rule:#}");

    // Photos disappear from the store.
    for (path, _) in &files[..2] {
        std::fs::remove_file(path)?;
    }
    let request = eventually(
        WAIT * 2,
        "the alert to fire and create a RestoreRequest",
        || async {
            let rule = object_json(&c, "alertrule", "photos-missing").await.ok()?;
            rule["status"]["currentRemediation"]
                .as_str()
                .map(str::to_owned)
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", log()))?;
    let status = finished_restore(&c, &request, log).await?;
    assert_eq!(status["phase"], "Succeeded", "{status:#}\n{}", log());
    assert_eq!(component(&status, "objects")["objects"], 2, "{status:#}");
    assert_eq!(check(&status, "app")["passed"], true, "{status:#}");
    for (path, body) in &files {
        assert_eq!(&std::fs::read(path)?, body, "{}", path.display());
    }
    // The self-check sees the photos again and the rule resolves; no second request.
    eventually(WAIT * 2, "the alert to resolve", || async {
        let rule = object_json(&c, "alertrule", "photos-missing").await.ok()?;
        (rule["status"]["state"] == "Inactive").then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", log()))?;
    let requests = c.kubectl(&["get", "rr", "-n", NS, "-o", "name"]).await?;
    assert_eq!(requests.lines().count(), 1, "{requests}");
    Ok(())
}
