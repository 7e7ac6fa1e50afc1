//! PostgreSQL through pg_dump against a throwaway cluster: a restorable dump with row counts,
//! and clean failures when pg_dump fails or the server dies mid-dump.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tend_backup::repository::PendingUpload;
use tend_backup::{
    BackupJob, ByteReader, DatabaseSource, Error, LocalRepository, ObjectMeta, PolicyLocation,
    PostgresSource, Repository, restore_part, restore_points, run_backup,
};
use tend_testkit::{Keys, Postgres, until};
use tokio::io::{AsyncRead, ReadBuf};

fn seed(pg: &Postgres) {
    pg.psql("postgres", "create database shop");
    pg.psql(
        "shop",
        "create table farms (id serial primary key, name text not null);
         create table records (id serial primary key, farm int references farms, note text);
         insert into farms (name) select 'farm ' || g from generate_series(1, 50) g;
         insert into records (farm, note) select 1 + g % 50, repeat('note ', 20) || g
           from generate_series(1, 3000) g;",
    );
}

fn repo() -> (tempfile::TempDir, Arc<LocalRepository>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Arc::new(LocalRepository::new(dir.path().join("repo")).unwrap());
    (dir, repo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dump_restores_with_pg_restore_and_row_counts_match() {
    let pg = Postgres::start();
    seed(&pg);
    let (dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Postgres(PostgresSource::new(
        pg.connection("shop"),
    )));
    let manifest = run_backup(job).await.unwrap();
    let db = manifest.database.as_ref().unwrap();
    assert_eq!(db.engine, "postgresql");
    assert_eq!(db.row_counts["public.farms"], 50);
    assert_eq!(db.row_counts["public.records"], 3000);
    assert!(
        manifest.tools["pg_dump"].contains("15") || manifest.tools["pg_dump"].contains("pg_dump")
    );
    assert!(
        db.server_version
            .as_deref()
            .unwrap()
            .starts_with(char::is_numeric)
    );
    // The manifest never holds the password.
    let text = std::fs::read_to_string(repo.root().join(loc.manifest_key(&manifest.id))).unwrap();
    assert!(!text.contains(&pg.password));

    let dump = dir.path().join("shop.dump");
    let mut file = tokio::fs::File::create(&dump).await.unwrap();
    restore_part(
        repo.as_ref(),
        &loc,
        &manifest,
        &db.part,
        &keys.decryption(),
        &mut file,
    )
    .await
    .unwrap();
    drop(file);
    pg.psql("postgres", "create database restored");
    let out = std::process::Command::new(pg.bin.join("pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", "restored", "--no-owner"])
        .arg(&dump)
        .env("PGPASSWORD", &pg.password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (table, count) in &db.row_counts {
        let restored = pg.psql("restored", &format!("select count(*) from {table}"));
        assert_eq!(restored, count.to_string(), "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_clear_error_without_the_password() {
    let pg = Postgres::start();
    let (_dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let mut conn = pg.connection("postgres");
    conn.password = "wrong-password-must-not-leak".into();
    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Postgres(PostgresSource::new(conn)));
    let err = run_backup(job).await.unwrap_err().to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("wrong-password-must-not-leak"), "{err}");
    assert!(
        restore_points(repo.as_ref(), &loc)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_failure_leaves_no_restore_point_and_no_parts() {
    let pg = Postgres::start();
    seed(&pg);
    // A role that may connect but not read one table: pg_dump starts, streams, then fails.
    pg.psql(
        "shop",
        "create role app login password 'app-password';
         grant select on farms to app;
         revoke all on records from public;",
    );
    let (_dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let mut conn = pg.connection("shop");
    conn.user = "app".into();
    conn.password = "app-password".into();
    let mut source = PostgresSource::new(conn);
    source.count_rows = false;
    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Postgres(source));
    let err = run_backup(job).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Source { .. }), "{err:?}");
    assert!(
        message.contains("pg_dump failed") && message.contains("permission denied"),
        "{message}"
    );
    assert!(!message.contains("app-password"), "{message}");
    assert!(
        restore_points(repo.as_ref(), &loc)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(repo.list("").await.unwrap().is_empty());
    assert!(repo.list_uploads("").await.unwrap().is_empty());
}

/// A local repository that accepts data slowly, so a dump is still running when we kill the
/// server.
struct SlowRepository(LocalRepository);

struct SlowReader {
    inner: ByteReader,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for SlowReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use std::future::Future;
        if let Some(sleep) = self.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        let mut small = [0u8; 16 * 1024];
        let mut limited = ReadBuf::new(&mut small[..buf.remaining().min(16 * 1024)]);
        match self.inner.as_mut().poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(limited.filled());
                self.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(5))));
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl Repository for SlowRepository {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: ByteReader,
        size_hint: Option<u64>,
    ) -> BoxFuture<'a, tend_backup::Result<u64>> {
        let slow = SlowReader {
            inner: body,
            sleep: None,
        };
        self.0.put(key, Box::pin(slow), size_hint)
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, tend_backup::Result<ByteReader>> {
        self.0.get(key)
    }
    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, tend_backup::Result<Option<ObjectMeta>>> {
        self.0.head(key)
    }
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, tend_backup::Result<Vec<ObjectMeta>>> {
        self.0.list(prefix)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, tend_backup::Result<()>> {
        self.0.delete(key)
    }
    fn list_uploads<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, tend_backup::Result<Vec<PendingUpload>>> {
        self.0.list_uploads(prefix)
    }
    fn abort_upload<'a>(
        &'a self,
        upload: &'a PendingUpload,
    ) -> BoxFuture<'a, tend_backup::Result<()>> {
        self.0.abort_upload(upload)
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_dump_leaves_no_restore_point_and_next_run_succeeds() {
    let pg = Postgres::start();
    pg.psql("postgres", "create database shop");
    // About 40 MB of table data: far more than the socket, pipe and pipeline buffers hold.
    pg.psql(
        "shop",
        "create table big as select g as id, md5(g::text) || md5((g * 7)::text) as payload
         from generate_series(1, 500000) g",
    );
    let dir = tempfile::tempdir().unwrap();
    let local = LocalRepository::new(dir.path().join("repo")).unwrap();
    let repo = Arc::new(SlowRepository(local.clone()));
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let mut source = PostgresSource::new(pg.socket_connection("shop"));
    source.count_rows = false;
    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Postgres(source));
    let progress = job.progress.clone();
    let run = tokio::spawn(run_backup(job));
    until("the dump to stream", || progress.bytes() > 1 << 20).await;
    pg.kill();
    let err = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run ends once the server is gone")
        .unwrap()
        .unwrap_err();
    let message = err.to_string();
    println!("failure reported: {message}");
    assert!(
        message.starts_with("source database: pg_dump failed"),
        "{message}"
    );
    assert!(restore_points(&local, &loc).await.unwrap().is_empty());
    assert!(local.list("").await.unwrap().is_empty());
    assert!(local.list_uploads("").await.unwrap().is_empty());

    // The server is back: the next run commits.
    pg.pg_ctl_start();
    let mut job = BackupJob::new(Arc::new(local.clone()), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Postgres(PostgresSource::new(
        pg.connection("shop"),
    )));
    let manifest = run_backup(job).await.unwrap();
    assert_eq!(manifest.database.unwrap().row_counts["public.big"], 500_000);
}
