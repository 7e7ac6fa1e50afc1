//! Benchmark of a full restore against `pg_restore` alone, in the same run (a ratio, not times).
//!
//! Set-up (not timed): a database of `TEND_BENCH_LARGE_MB` MiB of table data and 10,000
//! distinct photos are backed up once into a local repository; the database part is decrypted
//! to a plain dump file for the baseline.
//!
//! - **baseline**: `pg_restore --no-owner --no-privileges` (one job) of that file into a fresh,
//!   empty database;
//! - **tend**: `verify_backup`, then `restore_postgres` (IntoEmpty, into another fresh database)
//!   and `restore_objects` (into an empty directory, then `check_objects` on them) at the same
//!   time, then `table_row_counts` compared with the manifest. It runs in a child process, so its peak
//!   RSS (VmHWM) is the restore's alone.
//!
//! Goal: tend / baseline ≤ 1.2. Every figure is the best of `TEND_BENCH_ROUNDS` rounds
//! (default 2), baseline and tend interleaved.
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo bench -p tend-backup --bench restore_throughput
//! TEND_BENCH_LARGE_MB=1024 TEND_BENCH_PHOTO_KB=100 cargo bench -p tend-backup --bench restore_throughput
//! ```
//!
//! Environment: `TEND_BENCH_LARGE_MB` (default 64) — database size in MiB of table data;
//! `TEND_BENCH_PHOTO_KB` (default 8) — mean photo size in KiB (sizes spread from ¼ to 1¾ of
//! it); `TEND_BENCH_PHOTOS` (default 10000); `TEND_BENCH_ROUNDS` (default 2);
//! `TEND_BENCH_OBJECTS_PARALLELISM` (default 8, the API's default). After the rounds, each half
//! (database, objects) runs once alone, to show where the time goes.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use tend_backup::{
    BackupJob, DatabaseSource, Decryption, LocalRepository, ObjectsRestoreOptions, ObjectsSource,
    ObjectsTarget, PgRestoreMode, PolicyLocation, PostgresConnection, PostgresSource,
    PostgresTools, Progress, Repository, check_objects, load_manifest, restore_objects,
    restore_part, restore_postgres, run_backup, table_row_counts, verify_backup,
};
use tend_testkit::bench::{env_number, peak_rss_kib};

fn location() -> PolicyLocation {
    PolicyLocation::new("bench", "restore")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Seconds of each stage of one tend restore, and the peak RSS.
#[derive(Clone, Copy, Debug)]
struct TendRun {
    total: f64,
    verify: f64,
    database: f64,
    objects: f64,
    row_counts: f64,
    check: f64,
    hwm_kib: u64,
}

/// In the child: one restore as the controller would run it; prints the stage times.
fn child() {
    let var = |name: &str| std::env::var(name).unwrap();
    let conn = PostgresConnection {
        host: "127.0.0.1".into(),
        port: var("BENCH_PGPORT").parse().unwrap(),
        dbname: var("BENCH_DB"),
        user: "postgres".into(),
        password: var("BENCH_PGPASSWORD"),
    };
    let decryption = Decryption::from_identities(&var("BENCH_IDENTITY")).unwrap();
    let repo: Arc<dyn Repository> = Arc::new(LocalRepository::new(var("BENCH_REPO")).unwrap());
    let target = ObjectsTarget {
        store: Arc::new(
            LocalRepository::new(var("BENCH_TARGET"))
                .unwrap()
                .with_deferred_sync(),
        ),
        prefix: String::new(),
    };
    let tools = PostgresTools::default();
    let loc = location();
    let run = runtime().block_on(async {
        let manifest = load_manifest(repo.as_ref(), &loc, &var("BENCH_ID"))
            .await
            .unwrap();
        let start = Instant::now();
        verify_backup(repo.as_ref(), &loc, &manifest).await.unwrap();
        let verify = start.elapsed().as_secs_f64();
        let progress = Progress::default();
        let database = async {
            let t = Instant::now();
            restore_postgres(
                repo.as_ref(),
                &loc,
                &manifest,
                &decryption,
                &tools,
                &conn,
                PgRestoreMode::IntoEmpty,
                &progress,
            )
            .await
            .unwrap();
            t.elapsed().as_secs_f64()
        };
        let objects = async {
            let t = Instant::now();
            let report = restore_objects(
                repo.clone(),
                &loc,
                &manifest,
                &decryption,
                &target,
                &ObjectsRestoreOptions {
                    parallelism: env_number("TEND_BENCH_OBJECTS_PARALLELISM", 8) as usize,
                    ..ObjectsRestoreOptions::default()
                },
                &progress,
            )
            .await
            .unwrap();
            assert_eq!(report.restored, manifest.objects.as_ref().unwrap().count);
            let restored = t.elapsed().as_secs_f64();
            // Checked as soon as they are written, while the database is still restoring (the
            // controller does the same).
            let t = Instant::now();
            let check = check_objects(&target, &manifest, 8).await.unwrap();
            assert!(check.passed(), "{check:?}");
            (restored, t.elapsed().as_secs_f64())
        };
        // `both` (the restore as the controller runs it), or one half alone for the breakdown.
        let (database, (objects, check)) = match std::env::var("BENCH_MODE").as_deref() {
            Ok("database") => (database.await, (0.0, 0.0)),
            Ok("objects") => (0.0, objects.await),
            _ => tokio::join!(database, objects),
        };
        let mode = std::env::var("BENCH_MODE").unwrap_or_default();
        let t = Instant::now();
        if mode != "objects" {
            let counts = table_row_counts(&tools, &conn).await.unwrap();
            assert_eq!(counts, manifest.database.as_ref().unwrap().row_counts);
        }
        let row_counts = t.elapsed().as_secs_f64();
        TendRun {
            total: start.elapsed().as_secs_f64(),
            verify,
            database,
            objects,
            row_counts,
            check,
            hwm_kib: 0,
        }
    });
    // The restore process's own CPU (user + system), from /proc/self/stat, to stderr.
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(rest) = stat.rsplit(')').next()
    {
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        eprintln!(
            "restore process CPU: user {:.2} s, system {:.2} s",
            ticks(11) / 100.0,
            ticks(12) / 100.0
        );
    }
    println!(
        "{} {} {} {} {} {} {}",
        run.total,
        run.verify,
        run.database,
        run.objects,
        run.row_counts,
        run.check,
        peak_rss_kib()
    );
}

struct Setup {
    pg: tend_testkit::Postgres,
    dir: tempfile::TempDir,
    keys: tend_testkit::Keys,
    id: String,
    dump: std::path::PathBuf,
}

/// Eight bytes a step, unlike the kit's byte-a-step `pseudo_random`: the photo sets here are
/// large enough for the difference to show in the set-up time.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn setup() -> Setup {
    let mib = env_number("TEND_BENCH_LARGE_MB", 64);
    let photo_kib = env_number("TEND_BENCH_PHOTO_KB", 8).max(1);
    let count = env_number("TEND_BENCH_PHOTOS", 10_000);
    let pg = tend_testkit::Postgres::start();
    pg.psql("postgres", "create database source");
    // ~200 bytes a row of mixed, partly compressible data (as in backup_throughput), plus a
    // second table with an index and a foreign key, so the restore rebuilds both.
    let rows = mib * 1024 * 1024 / 200;
    pg.psql(
        "source",
        &format!(
            "create table fields (id int primary key, name text);
             insert into fields select g, 'field ' || g from generate_series(0, 999) g;
             create table records as select g as id, g % 1000 as field,
               now() - g * interval '1 minute' as at,
               md5(g::text) || ' ' || md5((g * 31)::text) || ' field ' || (g % 97) as note,
               repeat(chr(65 + g % 26), 60) || g as body, random() * 1000 as yield
             from generate_series(1, {rows}) g;
             alter table records add primary key (id);
             alter table records add foreign key (field) references fields;
             create index records_at on records (at);"
        ),
    );
    let size = pg.psql(
        "source",
        "select pg_size_pretty(pg_database_size(current_database()))",
    );
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let mut photo_bytes = 0u64;
    for i in 0..count {
        let path = photos.join(format!("{:02}/{:03}/{i}.jpg", i % 100, i / 100 % 1000));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Sizes spread evenly from ¼ to 1¾ of the mean; distinct content.
        let len = (photo_kib * 1024 / 4 + (i * 7919) % (photo_kib * 1024 * 3 / 2)) as usize;
        photo_bytes += len as u64;
        std::fs::write(path, pseudo_random(len, i + 1)).unwrap();
    }
    println!(
        "database: {size} ({mib} MiB of table data asked); photos: {count}, {:.1} MiB",
        photo_bytes as f64 / 1048576.0
    );

    let keys = tend_testkit::Keys::new();
    let rt = runtime();
    let (id, dump) = rt.block_on(async {
        let repo = Arc::new(LocalRepository::new(dir.path().join("repo")).unwrap());
        let mut job = BackupJob::new(repo.clone(), location(), keys.encryption());
        job.database = Some(DatabaseSource::Postgres(PostgresSource::new(
            pg.connection("source"),
        )));
        job.objects = Some(ObjectsSource::new(
            Arc::new(LocalRepository::new(&photos).unwrap()),
            "",
        ));
        let t = Instant::now();
        let manifest = run_backup(job).await.unwrap();
        println!(
            "backup (not timed in the results): {:.1} s, {:.1} MiB stored",
            t.elapsed().as_secs_f64(),
            manifest.stored_bytes() as f64 / 1048576.0
        );
        let part = manifest.database.as_ref().unwrap().part.clone();
        let dump = dir.path().join("database.pgdump");
        let mut file = tokio::fs::File::create(&dump).await.unwrap();
        restore_part(
            repo.as_ref(),
            &location(),
            &manifest,
            &part,
            &keys.decryption(),
            &mut file,
        )
        .await
        .unwrap();
        (manifest.id, dump)
    });
    // The photos source is not needed any more; free the page cache it holds.
    std::fs::remove_dir_all(&photos).unwrap();
    Setup {
        pg,
        dir,
        keys,
        id,
        dump,
    }
}

fn fresh_database(pg: &tend_testkit::Postgres, name: &str) {
    pg.psql("postgres", &format!("drop database if exists {name}"));
    pg.psql("postgres", &format!("create database {name}"));
}

fn baseline(s: &Setup) -> f64 {
    fresh_database(&s.pg, "baseline");
    let start = Instant::now();
    let out = Command::new(s.pg.bin.join("pg_restore"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &s.pg.port.to_string(),
            "-U",
            "postgres",
        ])
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-d",
            "baseline",
        ])
        .arg(&s.dump)
        .env("PGPASSWORD", &s.pg.password)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn tend(s: &Setup, mode: &str) -> TendRun {
    fresh_database(&s.pg, "tend");
    let target = s.dir.path().join("target");
    let _ = std::fs::remove_dir_all(&target);
    let out = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_CHILD", "1")
        .env("BENCH_PGPORT", s.pg.port.to_string())
        .env("BENCH_PGPASSWORD", &s.pg.password)
        .env("BENCH_DB", "tend")
        .env("BENCH_IDENTITY", &s.keys.identity)
        .env("BENCH_REPO", s.dir.path().join("repo"))
        .env("BENCH_TARGET", &target)
        .env("BENCH_ID", &s.id)
        .env("BENCH_MODE", mode)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!(
        "{}",
        String::from_utf8_lossy(&out.stderr)
            .replace("restore process", &format!("[{mode}] restore process"))
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<f64> = text
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    TendRun {
        total: f[0],
        verify: f[1],
        database: f[2],
        objects: f[3],
        row_counts: f[4],
        check: f[5],
        hwm_kib: f[6] as u64,
    }
}

fn main() {
    if std::env::var_os("BENCH_CHILD").is_some() {
        return child();
    }
    let rounds = env_number("TEND_BENCH_ROUNDS", 2).max(1);
    let s = setup();
    println!();
    println!(
        "| round | pg_restore alone | tend total | verify | database ∥ objects | row counts | check objects | tend / pg_restore | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut best_base = f64::MAX;
    let mut best: Option<TendRun> = None;
    let mut peak = 0;
    for round in 1..=rounds {
        let base = baseline(&s);
        let run = tend(&s, "both");
        println!(
            "| {round} | {base:.2} s | {:.2} s | {:.2} s | {:.2} s ∥ {:.2} s | {:.2} s | {:.2} s | {:.2} | {:.1} MiB |",
            run.total,
            run.verify,
            run.database,
            run.objects,
            run.row_counts,
            run.check,
            run.total / base,
            run.hwm_kib as f64 / 1024.0
        );
        best_base = best_base.min(base);
        if best.is_none_or(|b| run.total < b.total) {
            best = Some(run);
        }
        peak = peak.max(run.hwm_kib);
    }
    // Where the time goes: each half alone (after verify), once.
    let database = tend(&s, "database");
    let objects = tend(&s, "objects");
    println!(
        "breakdown, each alone: restore_postgres {:.2} s (+ row counts {:.2} s); restore_objects {:.2} s (+ check_objects {:.2} s); verify {:.2} s",
        database.database, database.row_counts, objects.objects, objects.check, objects.verify
    );
    let best = best.unwrap();
    let ratio = best.total / best_base;
    println!();
    println!(
        "Summary (best of {rounds}): pg_restore alone {best_base:.2} s; tend restore {:.2} s \
         (verify {:.2} s, database {:.2} s ∥ objects {:.2} s, row counts {:.2} s, check objects {:.2} s); \
         tend / pg_restore = {ratio:.2} (goal ≤ 1.20: {}); peak RSS of the restore process {:.1} MiB",
        best.total,
        best.verify,
        best.database,
        best.objects,
        best.row_counts,
        best.check,
        if ratio <= 1.2 { "met" } else { "NOT MET" },
        peak as f64 / 1024.0
    );
}
