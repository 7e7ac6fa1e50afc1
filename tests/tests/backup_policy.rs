//! BackupPolicy end to end: the real controller against devcluster, backing up fieldbook (SQLite
//! through its ops API, or PostgreSQL with pg_dump), photos (a directory or an S3 bucket) and
//! config into a local or S3 repository; scheduled runs and retention over simulated days with
//! an injected clock; a controller killed mid-backup.
//!
//! Real peers: a throwaway PostgreSQL cluster (initdb) and moto's S3 server, started here.

use jiff::civil::{Time, Weekday};
use serde_json::Value;
use std::path::PathBuf;
use tend::run::{RunConfig, run_with_client};
use tend_backup::{Decryption, LocalRepository, PolicyLocation, Repository, restore_points};
use tend_e2e::farm::{
    NS, annotate_backup_now, finished_run, patch_policy, policy_status, setup, sqlite, write_photos,
};
use tend_e2e::fieldbook::{Fieldbook, PhotoStore};
use tend_e2e::{TestCluster, WAIT, events_of, eventually, files_under, free_port};
use tend_testkit::clock::{TestClock, days_after, next_weekday_at, utc};
use tend_testkit::{Keys, S3_KEY_ID, S3_SECRET, S3Server, s3_repo};

/// Scheduled runs over sixteen simulated days (the clock is injected, nothing sleeps): every
/// day's 02:00 run produces a restore point, and retention (2 daily, 3 weekly) keeps exactly
/// the generations it should, in status and in the repository. Then the RPO objective is
/// breached when runs stop.
#[tokio::test]
async fn scheduled_backups_over_sixteen_days_keep_the_configured_generations() -> anyhow::Result<()>
{
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 20, 4096);
    let repo_dir = c.dir.path().join("repository");
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: daily, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  targets:
    objects: {{filesystem: {{path: {photos}}}}}
    config:
      configMapSelector: {{matchLabels: {{app: farm}}}}
  repository: {{filesystem: {{path: {repo}}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
  retention: {{keepDaily: 2, keepWeekly: 3}}
  objectives: {{rpo: 26h}}
"#,
            photos = photos.display(),
            repo = repo_dir.display()
        ),
    )
    .await?;

    // Day 1 is a Tuesday after today, so that the sixteen days span the same ISO weeks
    // whatever the date: Tue..Sun, Mon..Sun, Mon..Wed.
    let first = next_weekday_at(Weekday::Tuesday, Time::constant(2, 0, 30, 0));
    let day_at = |day: i64| days_after(first, day - 1);
    let (test_clock, now) = TestClock::frozen(first);
    let mut config = RunConfig::new(format!("127.0.0.1:{}", free_port()).parse()?);
    config.clock = tend::context::Clock::from_fn(now);
    let client = c.client().await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(run_with_client(client, config, async move {
        let _ = stop_rx.await;
    }));

    let mut previous: Option<String> = None;
    for day in 1..=16 {
        let now = day_at(day);
        test_clock.set(now);
        // Moving the clock does not wake the controller; any change to the object does.
        c.kubectl(&[
            "annotate",
            "--overwrite",
            "backuppolicy",
            "daily",
            "-n",
            NS,
            &format!("test.tend.dev/day={day}"),
        ])
        .await?;
        let status = finished_run(&c, "daily", previous.as_deref(), String::new).await?;
        let run = &status["lastBackup"];
        assert_eq!(run["result"], "Succeeded", "day {day}: {status:#}");
        assert_eq!(run["trigger"], "Schedule");
        let id = run["id"].as_str().unwrap().to_string();
        assert!(
            id.starts_with(&utc(now, "%Y%m%dT020030Z")),
            "day {day}: {id}"
        );
        assert_eq!(status["lastScheduleTime"], utc(now, "%Y-%m-%dT02:00:00Z"));
        previous = Some(id);
    }

    let status = policy_status(&c, "daily").await?;
    let kept_days: Vec<String> = status["restorePoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap()[..8].to_string())
        .collect();
    // Daily: days 16 and 15. Weekly (ISO weeks): the third week → day 16, the second → day 13
    // (Sunday), the first → day 6 (Sunday).
    let day_id = |day: i64| utc(day_at(day), "%Y%m%d");
    let expected_days = [day_id(16), day_id(15), day_id(13), day_id(6)];
    assert_eq!(kept_days, expected_days, "{status:#}");
    let retention = &status["lastRetention"];
    let kept: Vec<(String, Vec<&str>)> = retention["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap()[..8].to_string(),
                k["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            (day_id(16), vec!["daily", "weekly"]),
            (day_id(15), vec!["daily"]),
            (day_id(13), vec!["weekly"]),
            (day_id(6), vec!["weekly"]),
        ],
        "{retention:#}"
    );
    assert_eq!(
        retention["deleted"].as_array().unwrap().len(),
        1,
        "the last pass deleted day 14: {retention:#}"
    );
    // The repository agrees: only those four are restore points.
    let repo = LocalRepository::new(&repo_dir)?;
    let location = PolicyLocation::new(NS, "daily");
    let in_repo: Vec<String> = restore_points(&repo, &location)
        .await?
        .iter()
        .map(|p| p.id[..8].to_string())
        .collect();
    assert_eq!(in_repo, expected_days);
    assert_eq!(status["currentRpo"], "0s");
    let rpo = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "RPOMet")
        .cloned()
        .unwrap();
    assert_eq!(rpo["status"], "True", "{rpo}");

    // Runs stop (suspended); two days later the RPO objective of 26h is breached.
    test_clock.set(day_at(18));
    patch_policy(&c, "daily", r#"{"spec":{"suspend":true}}"#).await?;
    let breached = eventually(WAIT, "RPOMet to become False", || async {
        let status = policy_status(&c, "daily").await.ok()?;
        let rpo = status["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "RPOMet")?
            .clone();
        (rpo["status"] == "False").then_some((rpo, status))
    })
    .await?;
    assert_eq!(breached.0["reason"], "RPOBreached");
    assert_eq!(breached.1["currentRpo"], "48h0m0s");
    let describe = c
        .kubectl(&["describe", "backuppolicy", "daily", "-n", NS])
        .await?;
    let events = events_of(&describe);
    assert!(events.contains("RPOBreached"), "{describe}");
    assert!(events.contains("BackupSucceeded"), "{describe}");

    let _ = stop_tx.send(());
    controller.await??;
    Ok(())
}

/// The real `tend` binary backs up fieldbook on SQLite (snapshot and settings through the ops
/// API), its photo directory and a ConfigMap on demand. A bad recipient first fails the run
/// with a message naming the field; after the fix the next request succeeds, and the stored
/// snapshot decrypts to a readable SQLite database.
#[tokio::test]
async fn on_demand_backup_of_fieldbook_on_sqlite() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let app_dir = c.dir.path().join("fieldbook");
    let photos = app_dir.join("photos");
    write_photos(&photos, 12, 2048);
    let db = app_dir.join("fieldbook.db");
    let app = Fieldbook::start(
        &app_dir,
        &db.display().to_string(),
        PhotoStore::Dir(photos.clone()),
    )
    .await?;
    app.create_admin(&app_dir, "admin@example.com")?;
    let repo_dir = c.dir.path().join("repository");
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: fieldbook-ops, namespace: {NS}}}
stringData: {{token: {token}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: wrong-age, namespace: {NS}}}
stringData: {{recipients: not-an-age-recipient}}
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
    recipientsSecretRef: {{name: wrong-age, key: recipients}}
"#,
            token = app.token,
            endpoint = app.ops_endpoint(),
            photos = photos.display(),
            repo = repo_dir.display()
        ),
    )
    .await?;
    let tend = c.start_tend("backup-sqlite").await?;
    let log = || tend.proc.log_text();

    annotate_backup_now(&c, "fieldbook", "first").await?;
    let status = finished_run(&c, "fieldbook", None, log).await?;
    let failed = &status["lastBackup"];
    assert_eq!(failed["result"], "Failed", "{status:#}");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("spec.encryption.recipientsSecretRef"),
        "{message}"
    );
    assert!(status.get("restorePoints").is_none(), "{status:#}");
    let ready = &status["conditions"].as_array().unwrap()[0];
    assert_eq!(ready["reason"], "BackupFailed", "{status:#}");

    patch_policy(&c, "fieldbook", r#"{"spec":{"encryption":{"recipientsSecretRef":{"name":"backup-age","key":"recipients"}}}}"#).await?;
    annotate_backup_now(&c, "fieldbook", "second").await?;
    let failed_id = failed["id"].as_str().unwrap().to_string();
    let status = finished_run(&c, "fieldbook", Some(&failed_id), log).await?;
    let run = &status["lastBackup"];
    assert_eq!(run["result"], "Succeeded", "{status:#}");
    assert_eq!(run["trigger"], "Manual");
    assert_eq!(status["lastManualRequest"], "second");
    assert_eq!(status["restorePoints"].as_array().unwrap().len(), 1);
    let components: Vec<&str> = run["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["component"].as_str().unwrap())
        .collect();
    assert_eq!(components, ["database", "config", "objects"], "{run:#}");
    let objects = run["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "objects")
        .unwrap();
    assert_eq!(objects["objects"], 12);
    let config = run["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "config")
        .unwrap();
    assert_eq!(config["objects"], 2, "one ConfigMap and the app settings");

    // What kubectl shows.
    let table = c.kubectl(&["get", "bp", "-n", NS]).await?;
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.contains("Succeeded") && row.contains("True"), "{table}");
    let describe = c
        .kubectl(&["describe", "bp", "fieldbook", "-n", NS])
        .await?;
    let events = events_of(&describe);
    for reason in ["BackupStarted", "BackupFailed", "BackupSucceeded"] {
        assert!(events.contains(reason), "{reason} missing:\n{describe}");
    }
    assert!(!describe.contains(&app.token), "the ops token leaked");
    assert!(
        !describe.contains(&keys.identity),
        "the age identity leaked"
    );

    // The stored snapshot is the app's database.
    let repo = LocalRepository::new(&repo_dir)?;
    let location = PolicyLocation::new(NS, "fieldbook");
    let points = restore_points(&repo, &location).await?;
    let manifest = &points[0].manifest;
    let restored = c.dir.path().join("restored.db");
    let mut file = tokio::fs::File::create(&restored).await?;
    tend_backup::restore_part(
        &repo,
        &location,
        manifest,
        "database.sqlite.zst.age",
        &Decryption::from_identities(&keys.identity)?,
        &mut file,
    )
    .await?;
    drop(file);
    let users = sqlite(&restored, "SELECT count(*) FROM users;")?;
    assert_eq!(users, "1");
    // fieldbook counted the snapshot's rows; the manifest keeps them for restore checks.
    let counts = &manifest.database.as_ref().unwrap().row_counts;
    assert_eq!(counts.get("users"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("records"), Some(&0), "{counts:?}");
    let config_part = manifest
        .parts
        .iter()
        .find(|p| p.component == "config")
        .unwrap()
        .name
        .clone();
    let mut archive = Vec::new();
    tend_backup::restore_part(
        &repo,
        &location,
        manifest,
        &config_part,
        &Decryption::from_identities(&keys.identity)?,
        &mut archive,
    )
    .await?;
    let archive: Value = serde_json::from_slice(&archive)?;
    assert_eq!(archive["configMaps"][0]["data"]["greeting"], "hello");
    assert_eq!(archive["appSettings"]["app"], "fieldbook", "{archive:#}");

    // An unusable repository fails the run with a message naming the field; the restore
    // points already taken stay listed.
    let good_id = run["id"].as_str().unwrap().to_string();
    patch_policy(
        &c,
        "fieldbook",
        r#"{"spec":{"repository":{"filesystem":{"path":"/proc/tend-cannot-write-here"}}}}"#,
    )
    .await?;
    annotate_backup_now(&c, "fieldbook", "third").await?;
    let status = finished_run(&c, "fieldbook", Some(&good_id), log).await?;
    let failed = &status["lastBackup"];
    assert_eq!(failed["result"], "Failed", "{status:#}");
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("spec.repository.filesystem"), "{message}");
    assert_eq!(status["lastSuccessfulBackup"]["id"], good_id.as_str());
    assert_eq!(status["restorePoints"].as_array().unwrap().len(), 1);

    let metrics = tend.metrics().await;
    assert!(
        metrics.contains(
            "tend_backup_last_success_timestamp_seconds{namespace=\"farm\",policy=\"fieldbook\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tend_backup_failures_total"), "{metrics}");
    Ok(())
}

/// fieldbook on PostgreSQL with photos in an S3 bucket, backed up into an S3 repository (moto):
/// pg_dump's row counts and every photo are in the manifest.
#[tokio::test]
async fn on_demand_backup_of_fieldbook_on_postgres_and_s3() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let pg = tend_testkit::Postgres::start();
    pg.psql("postgres", "CREATE DATABASE fieldbook");
    let moto = S3Server::start();
    let photos = s3_repo(&moto.endpoint(), "farm-photos", "photos").await;
    for i in 0..8 {
        let body = format!("photo {i}").repeat(1000).into_bytes();
        let len = body.len() as u64;
        photos
            .put(
                &format!("sha256/{i:02}/photo-{i}"),
                Box::pin(std::io::Cursor::new(body)),
                Some(len),
            )
            .await?;
    }
    // The bucket for the repository must exist too.
    let _ = s3_repo(&moto.endpoint(), "farm-backups", "").await;
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
metadata: {{name: s3, namespace: {NS}}}
stringData: {{accessKeyId: {key_id}, secretAccessKey: {secret}}}
---
apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: fieldbook-pg, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  targets:
    database:
      postgres: {{connectionSecretRef: {{name: fieldbook-db}}}}
    objects:
      s3: {{bucket: farm-photos, prefix: photos, endpoint: "{endpoint}", forcePathStyle: true, credentialsSecretRef: {{name: s3}}}}
  repository:
    s3: {{bucket: farm-backups, prefix: tend, endpoint: "{endpoint}", forcePathStyle: true, credentialsSecretRef: {{name: s3}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
"#,
            port = pg.port,
            password = pg.password,
            key_id = S3_KEY_ID,
            secret = S3_SECRET,
            endpoint = moto.endpoint(),
        ),
    )
    .await?;
    let tend = c.start_tend("backup-pg").await?;
    annotate_backup_now(&c, "fieldbook-pg", "1").await?;
    let status = finished_run(&c, "fieldbook-pg", None, || tend.proc.log_text()).await?;
    let run = &status["lastBackup"];
    assert_eq!(run["result"], "Succeeded", "{status:#}");
    let database = run["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "database")
        .unwrap();
    assert!(
        database["message"]
            .as_str()
            .unwrap()
            .starts_with("postgresql"),
        "{database}"
    );
    let repo = s3_repo(&moto.endpoint(), "farm-backups", "tend").await;
    let location = PolicyLocation::new(NS, "fieldbook-pg");
    let points = restore_points(&repo, &location).await?;
    assert_eq!(points.len(), 1);
    let manifest = &points[0].manifest;
    let rows = &manifest.database.as_ref().unwrap().row_counts;
    assert_eq!(rows.get("public.users"), Some(&1), "{rows:?}");
    assert_eq!(manifest.objects.as_ref().unwrap().count, 8);
    let log = tend.proc.log_text();
    assert!(!log.contains(&pg.password), "the database password leaked");
    assert!(!log.contains(S3_SECRET), "the S3 secret leaked");
    Ok(())
}

/// SIGKILL during a run: after the restart the run is reported Failed (not left Running), its
/// partial data is gone from the repository, and the next run succeeds.
#[tokio::test]
async fn a_run_interrupted_by_sigkill_is_failed_and_cleaned_up() -> anyhow::Result<()> {
    let c = TestCluster::start().await?;
    let keys = Keys::new();
    setup(&c, &keys.recipient, &keys.identity).await?;
    let photos = c.dir.path().join("photos");
    write_photos(&photos, 96, 1024 * 1024);
    let repo_dir = c.dir.path().join("repository");
    c.apply_yaml(
        &[],
        &format!(
            r#"apiVersion: tend.dev/v1alpha1
kind: BackupPolicy
metadata: {{name: big, namespace: {NS}}}
spec:
  schedule: "0 2 * * *"
  targets:
    objects: {{filesystem: {{path: {photos}}}}}
    config:
      configMapSelector: {{matchLabels: {{app: farm}}}}
  repository: {{filesystem: {{path: {repo}}}}}
  encryption:
    recipientsSecretRef: {{name: backup-age, key: recipients}}
"#,
            photos = photos.display(),
            repo = repo_dir.display()
        ),
    )
    .await?;
    let mut tend = c.start_tend("backup-kill-1").await?;
    annotate_backup_now(&c, "big", "1").await?;
    let running = eventually(WAIT, "the run to report progress", || async {
        let status = policy_status(&c, "big").await.ok()?;
        let run = status["lastBackup"].clone();
        (run["result"] == "Running" && run["bytes"].as_u64()? > 0).then_some(run)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tend.proc.log_text()))?;
    let id = running["id"].as_str().unwrap().to_string();
    tend.proc.kill(); // SIGKILL
    assert!(
        !policy_status(&c, "big").await?["lastBackup"]["result"].eq("Failed"),
        "nothing can have reported it yet"
    );

    let tend = c.start_tend("backup-kill-2").await?;
    let status = finished_run(&c, "big", None, || tend.proc.log_text()).await?;
    let run = &status["lastBackup"];
    assert_eq!(run["id"], id.as_str());
    assert_eq!(run["result"], "Failed", "{status:#}");
    assert!(
        run["message"].as_str().unwrap().starts_with("interrupted"),
        "{run}"
    );
    let backup_dir = repo_dir.join(PolicyLocation::new(NS, "big").backup_prefix(&id));
    assert!(
        !backup_dir.exists() || files_under(&backup_dir).is_empty(),
        "partial parts left: {:?}",
        files_under(&backup_dir)
    );
    let temp: Vec<PathBuf> = files_under(&repo_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(temp.is_empty(), "unfinished uploads left: {temp:?}");

    annotate_backup_now(&c, "big", "2").await?;
    let status = finished_run(&c, "big", Some(&id), || tend.proc.log_text()).await?;
    assert_eq!(status["lastBackup"]["result"], "Succeeded", "{status:#}");
    assert_eq!(status["restorePoints"].as_array().unwrap().len(), 1);
    Ok(())
}
