//! The restore primitives against real peers: a throwaway PostgreSQL cluster (scratch and
//! in-place restores, check queries, row counts), objects restored into a local directory and
//! into S3 (moto), and what a corrupted repository does to each: an error naming the part or
//! object, and a target left as it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tend_backup::pipeline::{self, Compression};
use tend_backup::{
    BackupJob, DatabaseSource, Error, LocalRepository, Manifest, ObjectsRestoreOptions,
    ObjectsSource, ObjectsTarget, PgRestoreMode, PolicyLocation, PostgresSource, PostgresTools,
    Progress, Repository, check_objects, check_query, create_database, drop_database,
    restore_objects, restore_postgres, run_backup, table_row_counts, verify_backup,
};
use tend_testkit::{Keys, Postgres, S3Server, s3_repo};

fn seed(pg: &Postgres) {
    pg.psql("postgres", "create database shop");
    pg.psql(
        "shop",
        "create table farms (id serial primary key, name text not null);
         create table records (id serial primary key, farm int references farms, note text);
         create index records_farm on records (farm);
         insert into farms (name) select 'farm ' || g from generate_series(1, 50) g;
         insert into records (farm, note) select 1 + g % 50, md5(g::text) || repeat(' note', 20)
           from generate_series(1, 20000) g;",
    );
}

async fn backup_database(pg: &Postgres, repo: Arc<dyn Repository>, keys: &Keys) -> Manifest {
    let mut job = BackupJob::new(repo, loc(), keys.encryption());
    job.database = Some(DatabaseSource::Postgres(PostgresSource::new(
        pg.connection("shop"),
    )));
    run_backup(job).await.unwrap()
}

fn loc() -> PolicyLocation {
    PolicyLocation::new("fieldbook", "nightly")
}

fn local_repo(dir: &Path) -> Arc<LocalRepository> {
    Arc::new(LocalRepository::new(dir.join("repo")).unwrap())
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x40;
    std::fs::write(path, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restore_into_a_scratch_database_and_checks() {
    let pg = Postgres::start();
    seed(&pg);
    let dir = tempfile::tempdir().unwrap();
    let repo = local_repo(dir.path());
    let keys = Keys::new();
    let manifest = backup_database(&pg, repo.clone(), &keys).await;
    let tools = PostgresTools::default();
    let admin = pg.connection("postgres");

    create_database(&tools, &admin, "scratch restore")
        .await
        .unwrap();
    let err = create_database(&tools, &admin, "scratch restore")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");

    let scratch = pg.connection("scratch restore");
    let progress = Progress::default();
    let fed = restore_postgres(
        repo.as_ref(),
        &loc(),
        &manifest,
        &keys.decryption(),
        &tools,
        &scratch,
        PgRestoreMode::IntoEmpty,
        &progress,
    )
    .await
    .unwrap();
    let db = manifest.database.as_ref().unwrap();
    assert_eq!(fed, manifest.part(&db.part).unwrap().source_bytes);
    assert_eq!(progress.bytes(), fed);
    let counts = table_row_counts(&tools, &scratch).await.unwrap();
    assert_eq!(counts, db.row_counts);
    assert_eq!(counts["public.records"], 20000);
    // The index came back too.
    assert_eq!(
        pg.psql(
            "scratch restore",
            "select count(*) from pg_indexes where indexname = 'records_farm'"
        ),
        "1"
    );

    // Check queries: one boolean, or a clear error.
    assert!(
        check_query(&tools, &scratch, "select count(*) = 50 from farms;")
            .await
            .unwrap()
    );
    assert!(
        !check_query(
            &tools,
            &scratch,
            "select exists (select 1 from farms where id > 50)"
        )
        .await
        .unwrap()
    );
    for (sql, expected) in [
        ("select 't'::text as ok", "a string in column \"ok\""),
        ("select count(*) from farms", "a number"),
        ("select null::boolean", "NULL"),
        ("select true, false", "2 columns"),
        ("select true as a, false as a", "2 columns"),
        ("select true from farms", "50 rows"),
        ("select true where false", "0 rows"),
        ("select no_such_column from farms", "does not exist"),
        ("", "empty"),
    ] {
        let err = check_query(&tools, &scratch, sql)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{sql}: {err}");
        assert!(!err.contains(&pg.password), "{err}");
    }
    // Check queries run read-only.
    let err = check_query(&tools, &scratch, "select nextval('farms_id_seq') > 0")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(
        pg.psql("scratch restore", "select count(*) from farms"),
        "50"
    );

    // Dropping works while a session is connected, and twice.
    let mut session = std::process::Command::new(pg.bin.join("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", "scratch restore", "-c", "select pg_sleep(60)"])
        .env("PGPASSWORD", &pg.password)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tend_testkit::until("the session to connect", || {
        pg.psql(
            "postgres",
            "select count(*) from pg_stat_activity where datname = 'scratch restore'",
        ) != "0"
    })
    .await;
    drop_database(&tools, &admin, "scratch restore")
        .await
        .unwrap();
    drop_database(&tools, &admin, "scratch restore")
        .await
        .unwrap();
    let _ = session.kill();
    let _ = session.wait();
    assert_eq!(
        pg.psql(
            "postgres",
            "select count(*) from pg_database where datname = 'scratch restore'"
        ),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_restores_in_place_and_a_corrupted_part_changes_nothing() {
    let pg = Postgres::start();
    seed(&pg);
    let dir = tempfile::tempdir().unwrap();
    let repo = local_repo(dir.path());
    let keys = Keys::new();
    let manifest = backup_database(&pg, repo.clone(), &keys).await;
    let tools = PostgresTools::default();
    let shop = pg.connection("shop");
    let db = manifest.database.as_ref().unwrap();
    let restore = |m: Manifest| {
        let repo = repo.clone();
        let (tools, shop, keys) = (tools.clone(), shop.clone(), keys.decryption());
        async move {
            restore_postgres(
                repo.as_ref(),
                &loc(),
                &m,
                &keys,
                &tools,
                &shop,
                PgRestoreMode::Replace,
                &Progress::default(),
            )
            .await
        }
    };

    pg.psql("shop", "delete from records where id > 100");
    restore(manifest.clone()).await.unwrap();
    assert_eq!(
        table_row_counts(&tools, &shop).await.unwrap(),
        db.row_counts
    );

    // A flipped byte in the middle of the stored part: age refuses that chunk mid-stream.
    pg.psql("shop", "delete from records where id > 100");
    let part_key = loc().part_key(&manifest.id, &db.part);
    let part_path = repo.root().join(&part_key);
    let len = std::fs::metadata(&part_path).unwrap().len() as usize;
    flip_byte(&part_path, len / 2);
    let err = restore(manifest.clone()).await.unwrap_err().to_string();
    assert!(err.contains(&part_key), "{err}");
    assert_eq!(pg.psql("shop", "select count(*) from records"), "100");
    assert_eq!(pg.psql("shop", "select count(*) from farms"), "50");
    flip_byte(&part_path, len / 2);

    // Bytes appended after a valid age stream: decryption succeeds, the SHA-256 and size
    // check at the end fails — and pg_restore never got the end of its input.
    let mut data = std::fs::read(&part_path).unwrap();
    data.extend_from_slice(b"trailing garbage");
    std::fs::write(&part_path, &data).unwrap();
    let err = restore(manifest.clone()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Integrity(_)), "{text}");
    assert!(text.contains(&part_key), "{text}");
    assert_eq!(pg.psql("shop", "select count(*) from records"), "100");
    assert_eq!(
        pg.psql(
            "shop",
            "select count(*) from pg_indexes where indexname = 'records_farm'"
        ),
        "1"
    );

    // pg_restore's own failure (IntoEmpty into a database that has the tables) is reported
    // with its stderr, not as the broken pipe it causes.
    data.truncate(len);
    std::fs::write(&part_path, &data).unwrap();
    let err = restore_postgres(
        repo.as_ref(),
        &loc(),
        &manifest,
        &keys.decryption(),
        &tools,
        &shop,
        PgRestoreMode::IntoEmpty,
        &Progress::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("pg_restore") && err.contains("already exists"),
        "{err}"
    );
    assert!(!err.contains(&pg.password), "{err}");

    // Repaired, the same backup restores again.
    data.truncate(len);
    std::fs::write(&part_path, &data).unwrap();
    verify_backup(repo.as_ref(), &loc(), &manifest)
        .await
        .unwrap();
    restore(manifest.clone()).await.unwrap();
    assert_eq!(
        table_row_counts(&tools, &shop).await.unwrap(),
        db.row_counts
    );
}

/// Distinct photos of varied sizes (one empty, some over one age chunk), by key.
fn photos(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for i in 0..40u32 {
        let size = match i {
            0 => 0,
            1..=4 => 200_000 + i as usize * 1000,
            _ => 1000 + i as usize * 997,
        };
        let content: Vec<u8> = (0..size as u32)
            .map(|b| (b.wrapping_mul(i + 3) ^ (b >> 7)) as u8)
            .collect();
        let key = format!("{}/photo {i}.jpg", 2020 + i % 3);
        let path = dir.join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &content).unwrap();
        files.insert(key, content);
    }
    files
}

async fn backup_photos(repo: Arc<dyn Repository>, keys: &Keys, photos: &Path) -> Manifest {
    let mut job = BackupJob::new(repo, loc(), keys.encryption());
    job.objects = Some(ObjectsSource::new(
        Arc::new(LocalRepository::new(photos).unwrap()),
        "",
    ));
    run_backup(job).await.unwrap()
}

/// Replaces the blob of `key` with a valid age stream of other content.
async fn swap_blob(repo: &dyn Repository, manifest: &Manifest, key: &str, keys: &Keys) {
    let entry = &manifest.objects.as_ref().unwrap().entries[key];
    let blob = loc().blob_key(&entry.sha256);
    let other = vec![7u8; entry.size as usize];
    pipeline::store(
        repo,
        &blob,
        "objects",
        std::io::Cursor::new(other),
        &keys.encryption(),
        Compression::None,
        None,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_restore_into_a_directory_skip_unchanged_and_refuse_bad_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let originals = photos(&dir.path().join("photos"));
    let repo = local_repo(dir.path());
    let keys = Keys::new();
    let manifest = backup_photos(repo.clone(), &keys, &dir.path().join("photos")).await;
    let total: u64 = originals.values().map(|c| c.len() as u64).sum();
    let target_dir = dir.path().join("target");
    let target_store = Arc::new(LocalRepository::new(&target_dir).unwrap());
    let target = ObjectsTarget {
        store: target_store.clone(),
        prefix: String::new(),
    };
    let options = ObjectsRestoreOptions::default();
    let run = || {
        let repo: Arc<dyn Repository> = repo.clone();
        let (target, options, manifest, decryption) = (
            target.clone(),
            options.clone(),
            manifest.clone(),
            keys.decryption(),
        );
        async move {
            let progress = Progress::default();
            let report = restore_objects(
                repo,
                &loc(),
                &manifest,
                &decryption,
                &target,
                &options,
                &progress,
            )
            .await;
            if let Ok(report) = &report {
                assert_eq!(progress.bytes(), report.bytes);
            }
            report
        }
    };

    let first = run().await.unwrap();
    assert_eq!(
        (first.restored, first.unchanged, first.bytes),
        (40, 0, total)
    );
    for (key, content) in &originals {
        assert!(
            std::fs::read(target_dir.join(key)).unwrap() == *content,
            "{key}"
        );
    }
    let check = check_objects(&target, &manifest, 4).await.unwrap();
    assert!(check.passed(), "{check:?}");
    assert_eq!(check.checked, 40);

    let second = run().await.unwrap();
    assert_eq!(
        (second.restored, second.unchanged, second.bytes),
        (0, 40, 0)
    );

    // Three deleted, one changed in place (same size), one extra that the backup never had.
    let keys_list: Vec<&String> = originals.keys().collect();
    for key in &keys_list[..3] {
        std::fs::remove_file(target_dir.join(key)).unwrap();
    }
    let changed = keys_list[5];
    let mut content = originals[changed].clone();
    content[0] ^= 1;
    std::fs::write(target_dir.join(changed), &content).unwrap();
    std::fs::write(target_dir.join("extra.txt"), b"not in the backup").unwrap();
    let third = run().await.unwrap();
    assert_eq!((third.restored, third.unchanged), (4, 36));
    assert!(check_objects(&target, &manifest, 4).await.unwrap().passed());
    assert_eq!(
        std::fs::read(target_dir.join("extra.txt")).unwrap(),
        b"not in the backup"
    );

    // A tampered blob (a flipped byte in a large object's ciphertext): the error names the
    // object, which is absent from the target afterwards, with no temporary file left behind.
    let victim = keys_list
        .iter()
        .find(|k| originals[**k].len() > 100_000)
        .unwrap()
        .to_string();
    let blob = loc().blob_key(&manifest.objects.as_ref().unwrap().entries[&victim].sha256);
    let blob_path = repo.root().join(&blob);
    let len = std::fs::metadata(&blob_path).unwrap().len() as usize;
    flip_byte(&blob_path, len / 2);
    std::fs::remove_file(target_dir.join(&victim)).unwrap();
    let err = run().await.unwrap_err().to_string();
    assert!(err.contains(&victim), "{err}");
    assert!(!target_dir.join(&victim).exists());
    assert!(target_store.list_uploads("").await.unwrap().is_empty());
    flip_byte(&blob_path, len / 2);

    // A blob that decrypts fine to other content: refused by the SHA-256 check at the end, and
    // the (changed) object at the target stays as it was.
    let victim = keys_list[7].to_string();
    swap_blob(repo.as_ref(), &manifest, &victim, &keys).await;
    let mut content = originals[&victim].clone();
    content[0] ^= 1;
    std::fs::write(target_dir.join(&victim), &content).unwrap();
    let err = run().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Integrity(_)), "{text}");
    assert!(text.contains(&victim) && text.contains("SHA-256"), "{text}");
    assert_eq!(std::fs::read(target_dir.join(&victim)).unwrap(), content);
    assert!(target_store.list_uploads("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_objects_names_missing_and_mismatched_keys() {
    let dir = tempfile::tempdir().unwrap();
    let originals = photos(&dir.path().join("photos"));
    let repo = local_repo(dir.path());
    let keys = Keys::new();
    let manifest = backup_photos(repo.clone(), &keys, &dir.path().join("photos")).await;
    let target_dir = dir.path().join("target");
    let target = ObjectsTarget {
        store: Arc::new(LocalRepository::new(&target_dir).unwrap()),
        prefix: "restored/".into(),
    };
    restore_objects(
        repo.clone(),
        &loc(),
        &manifest,
        &keys.decryption(),
        &target,
        &ObjectsRestoreOptions {
            parallelism: 3,
            skip_unchanged: false,
        },
        &Progress::default(),
    )
    .await
    .unwrap();
    assert!(check_objects(&target, &manifest, 8).await.unwrap().passed());

    let k: Vec<&String> = originals.keys().collect();
    let root = target_dir.join("restored");
    std::fs::remove_file(root.join(k[1])).unwrap();
    std::fs::remove_file(root.join(k[9])).unwrap();
    // One shorter, one of the same size with other bytes.
    std::fs::write(root.join(k[2]), b"short").unwrap();
    let mut same_size = originals[k[3]].clone();
    same_size[10] ^= 0xff;
    std::fs::write(root.join(k[3]), same_size).unwrap();
    let check = check_objects(&target, &manifest, 8).await.unwrap();
    assert!(!check.passed());
    assert_eq!(check.checked, 40);
    assert_eq!(check.missing, 2);
    assert_eq!(check.missing_keys, vec![k[1].clone(), k[9].clone()]);
    assert_eq!(check.mismatched, 2);
    assert_eq!(check.mismatched_keys, vec![k[2].clone(), k[3].clone()]);

    let bad = ObjectsTarget {
        store: target.store.clone(),
        prefix: "no-slash".into(),
    };
    let err = check_objects(&bad, &manifest, 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("prefix"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_restore_into_s3() {
    let moto = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let originals = photos(&dir.path().join("photos"));
    let repo = local_repo(dir.path());
    let keys = Keys::new();
    let manifest = backup_photos(repo.clone(), &keys, &dir.path().join("photos")).await;
    let store: Arc<dyn Repository> = Arc::new(s3_repo(&moto.endpoint(), "photos", "app").await);
    let target = ObjectsTarget {
        store: store.clone(),
        prefix: "restored/".into(),
    };
    let run = || {
        let repo: Arc<dyn Repository> = repo.clone();
        let (target, manifest, decryption) = (target.clone(), manifest.clone(), keys.decryption());
        async move {
            restore_objects(
                repo,
                &loc(),
                &manifest,
                &decryption,
                &target,
                &ObjectsRestoreOptions::default(),
                &Progress::default(),
            )
            .await
        }
    };
    let first = run().await.unwrap();
    assert_eq!((first.restored, first.unchanged), (40, 0));
    assert!(check_objects(&target, &manifest, 8).await.unwrap().passed());
    let key = originals.keys().nth(4).unwrap();
    let mut body = store.get(&format!("restored/{key}")).await.unwrap();
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut body, &mut got)
        .await
        .unwrap();
    assert!(got == originals[key]);

    let second = run().await.unwrap();
    assert_eq!((second.restored, second.unchanged), (0, 40));

    // A bad blob for an object missing at the target: error naming it, nothing stored in S3,
    // no multipart upload left open.
    let victim = originals.keys().nth(2).unwrap().clone();
    swap_blob(repo.as_ref(), &manifest, &victim, &keys).await;
    store.delete(&format!("restored/{victim}")).await.unwrap();
    let err = run().await.unwrap_err().to_string();
    assert!(err.contains(&victim), "{err}");
    assert!(
        store
            .head(&format!("restored/{victim}"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.list_uploads("").await.unwrap().is_empty());
}
