//! The manual restore procedure of docs/backup-repository.md, run as written with standard
//! tools only (age, zstd, jq, sha256sum, pg_restore/psql, sqlite3, aws CLI) on backups the
//! engine made — from a local directory and from S3.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tend_backup::{
    BackupJob, ConfigSource, DatabaseSource, LocalRepository, ObjectsSource, PolicyLocation,
    PostgresSource, Repository, run_backup,
};
use tend_testkit::{Keys, Postgres, S3_KEY_ID, S3_SECRET, S3Server, require, s3_repo};

const DOC: &str = include_str!("../../docs/backup-repository.md");

/// The shell block that follows `<!-- test: NAME -->` in the doc.
fn doc_block(name: &str) -> &'static str {
    let marker = format!("<!-- test: {name} -->");
    let at = DOC
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/backup-repository.md has no block {name}"));
    let rest = &DOC[at..];
    let start = rest.find("```sh\n").expect("a sh block follows the marker") + 6;
    let end = rest[start..].find("\n```").expect("the block ends");
    &rest[start..start + end]
}

fn require_tools() {
    require("age", "apt-get install age");
    require("zstd", "apt-get install zstd");
    require("jq", "apt-get install jq");
    require("sha256sum", "apt-get install coreutils");
    require("sqlite3", "apt-get install sqlite3");
}

/// Runs the named doc blocks in order in one bash, in `workdir`, with `env`.
fn run_procedure(blocks: &[&str], workdir: &Path, env: &[(&str, String)]) -> String {
    let script: Vec<&str> = blocks.iter().map(|b| doc_block(b)).collect();
    let script = script.join("\n");
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(workdir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "manual procedure failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn photos(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for (i, name) in ["2026/05/field 1.jpg", "2026/05/field-2.jpg", "cover.png"]
        .iter()
        .enumerate()
    {
        let content: Vec<u8> = (0..20_000u32).map(|b| (b * (i as u32 + 7)) as u8).collect();
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &content).unwrap();
        files.insert(name.to_string(), content);
    }
    files
}

fn seed(pg: &Postgres) {
    pg.psql("postgres", "create database shop");
    pg.psql("postgres", "create database target");
    pg.psql(
        "shop",
        "create table crops (id serial primary key, name text);
         insert into crops (name) select 'crop ' || g from generate_series(1, 777) g;",
    );
}

const CONFIG: &str = r#"{"configMaps":[{"name":"fieldbook-settings","data":{"theme":"green"}}]}"#;

fn full_job(
    repo: Arc<dyn Repository>,
    loc: &PolicyLocation,
    keys: &Keys,
    pg: &Postgres,
    photo_dir: &Path,
) -> BackupJob {
    let mut job = BackupJob::new(repo, loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Postgres(PostgresSource::new(
        pg.connection("shop"),
    )));
    job.objects = Some(ObjectsSource::new(
        Arc::new(LocalRepository::new(photo_dir).unwrap()),
        "",
    ));
    job.config = Some(ConfigSource {
        archive: Box::pin(std::io::Cursor::new(CONFIG.as_bytes().to_vec())),
        content: "json".into(),
    });
    job
}

fn pg_env(pg: &Postgres, keys_file: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("NS", "fieldbook".into()),
        ("POLICY", "nightly".into()),
        ("IDENTITY", keys_file.display().to_string()),
        ("TARGET_DB", "target".into()),
        ("PGHOST", "127.0.0.1".into()),
        ("PGPORT", pg.port.to_string()),
        ("PGUSER", "postgres".into()),
        ("PGPASSWORD", pg.password.clone()),
        (
            "PATH",
            format!(
                "{}:{}",
                pg.bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
    ]
}

fn check_restored(work: &Path, originals: &BTreeMap<String, Vec<u8>>, pg: &Postgres) {
    for (key, content) in originals {
        let restored = std::fs::read(work.join("restore/objects").join(key)).unwrap();
        assert!(restored == *content, "object {key} differs");
    }
    assert_eq!(
        std::fs::read_to_string(work.join("restore/config.json")).unwrap(),
        CONFIG
    );
    assert_eq!(pg.psql("target", "select count(*) from crops"), "777");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_restore_from_a_local_directory_with_standard_tools() {
    require_tools();
    let pg = Postgres::start();
    seed(&pg);
    let dir = tempfile::tempdir().unwrap();
    let originals = photos(&dir.path().join("photos"));
    let repo_root = dir.path().join("repo");
    let repo = Arc::new(LocalRepository::new(&repo_root).unwrap());
    let keys = Keys::new();
    let loc = PolicyLocation::new("fieldbook", "nightly");
    run_backup(full_job(repo, &loc, &keys, &pg, &dir.path().join("photos")))
        .await
        .unwrap();

    let key_file = dir.path().join("identity.txt");
    std::fs::write(&key_file, &keys.identity).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut env = pg_env(&pg, &key_file);
    env.push(("REPO", repo_root.display().to_string()));
    let out = run_procedure(
        &[
            "fetch-local",
            "verify",
            "restore-postgres",
            "restore-objects",
            "restore-config",
        ],
        &work,
        &env,
    );
    assert!(out.contains("row counts match"), "{out}");
    check_restored(&work, &originals, &pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_restore_of_sqlite_with_standard_tools() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("create table notes (id integer primary key, body text); insert into notes (body) values ('a'), ('b'), ('c');")
        .output()
        .unwrap();
    assert!(out.status.success());
    let repo_root = dir.path().join("repo");
    let repo = Arc::new(LocalRepository::new(&repo_root).unwrap());
    let keys = Keys::new();
    let loc = PolicyLocation::new("fieldbook", "nightly");
    let mut job = BackupJob::new(repo, loc, keys.encryption());
    job.database = Some(DatabaseSource::Sqlite {
        row_counts: Default::default(),
        name: "app".into(),
        snapshot: Box::pin(tokio::fs::File::open(&db).await.unwrap()),
    });
    run_backup(job).await.unwrap();

    let key_file = dir.path().join("identity.txt");
    std::fs::write(&key_file, &keys.identity).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let env = vec![
        ("NS", "fieldbook".to_owned()),
        ("POLICY", "nightly".to_owned()),
        ("IDENTITY", key_file.display().to_string()),
        ("REPO", repo_root.display().to_string()),
    ];
    let out = run_procedure(&["fetch-local", "verify", "restore-sqlite"], &work, &env);
    assert!(out.contains("ok"), "{out}");
    let count = Command::new("sqlite3")
        .arg(work.join("restore/app.db"))
        .arg("select group_concat(body) from notes")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&count.stdout).trim(), "a,b,c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_restore_from_s3_with_the_aws_cli() {
    require_tools();
    require("aws", "pip install awscli");
    let pg = Postgres::start();
    seed(&pg);
    let moto = S3Server::start();
    let repo = Arc::new(s3_repo(&moto.endpoint(), "backups", "tend").await);
    let dir = tempfile::tempdir().unwrap();
    let originals = photos(&dir.path().join("photos"));
    let keys = Keys::new();
    let loc = PolicyLocation::new("fieldbook", "nightly");
    run_backup(full_job(repo, &loc, &keys, &pg, &dir.path().join("photos")))
        .await
        .unwrap();

    let key_file = dir.path().join("identity.txt");
    std::fs::write(&key_file, &keys.identity).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut env = pg_env(&pg, &key_file);
    env.extend([
        ("ENDPOINT", moto.endpoint()),
        ("BUCKET", "backups".to_owned()),
        ("PREFIX", "tend".to_owned()),
        ("AWS_ACCESS_KEY_ID", S3_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET.to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
    ]);
    let out = run_procedure(
        &[
            "fetch-s3",
            "verify",
            "restore-postgres",
            "restore-objects",
            "restore-config",
        ],
        &work,
        &env,
    );
    assert!(out.contains("row counts match"), "{out}");
    check_restored(&work, &originals, &pg);
}
