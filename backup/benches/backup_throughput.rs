//! Benchmark of the backup engine against its baselines, in the same run (ratios, not times):
//!
//! 1. Full PostgreSQL backup (pg_dump → zstd → age → SHA-256 → local repository) vs
//!    `pg_dump -Fc > /dev/null` on the same database, and vs `pg_dump -Fc -Z0 > /dev/null`
//!    (the dump stage the engine runs). Goal: ≥ 0.9 of `pg_dump -Fc`'s speed.
//! 2. Peak RSS (VmHWM) of a process doing only the backup, for two database sizes: it must not
//!    grow with the data.
//! 3. Incremental object backup: 10,000 distinct 4 KiB objects, 1 % changed, vs the first full
//!    backup of them. Goal: ≤ 5 % of its time.
//!
//! It ends with a summary of the ratios against the goals of issue 5.
//!
//! Run (release build; needs PostgreSQL's `initdb`/`pg_ctl`/`pg_dump`, as the tests do):
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo bench -p tend-backup --bench backup_throughput
//! TEND_BENCH_LARGE_MB=1024 cargo bench -p tend-backup --bench backup_throughput   # the 1 GiB run
//! TEND_BENCH_ONLY=objects cargo bench -p tend-backup --bench backup_throughput    # one part
//! ```
//!
//! Environment: `TEND_BENCH_SMALL_MB`, `TEND_BENCH_LARGE_MB` — database sizes in MiB of table
//! data (defaults 64 and 512); `TEND_BENCH_ONLY` — `database` or `objects`. Every figure is the
//! best of two runs, baselines and engine interleaved; on a busy machine run it twice.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use tend_backup::{
    BackupJob, DatabaseSource, LocalRepository, ObjectsSource, PolicyLocation, PostgresConnection,
    PostgresSource, Repository, run_backup,
};
use tend_testkit::bench::{env_number, peak_rss_kib};
use tend_testkit::pseudo_random;

/// In the child: one backup of the database named by the environment; prints
/// `seconds stored_bytes vmhwm_kib`.
fn child() {
    let conn = PostgresConnection {
        host: "127.0.0.1".into(),
        port: std::env::var("BENCH_PGPORT").unwrap().parse().unwrap(),
        dbname: std::env::var("BENCH_DB").unwrap(),
        user: "postgres".into(),
        password: std::env::var("BENCH_PGPASSWORD").unwrap(),
    };
    let repo_dir = std::env::var("BENCH_REPO").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys = tend_testkit::Keys::new();
    let (seconds, bytes) = rt.block_on(async {
        let repo = Arc::new(LocalRepository::new(&repo_dir).unwrap());
        let mut source = PostgresSource::new(conn);
        source.count_rows = false;
        let mut job = BackupJob::new(repo, PolicyLocation::new("bench", "db"), keys.encryption());
        job.database = Some(DatabaseSource::Postgres(source));
        let start = Instant::now();
        let manifest = run_backup(job).await.unwrap();
        (start.elapsed().as_secs_f64(), manifest.stored_bytes())
    });
    println!("{seconds} {bytes} {}", peak_rss_kib());
}

fn time_pg_dump(pg: &tend_testkit::Postgres, db: &str, extra: &[&str]) -> f64 {
    let start = Instant::now();
    let status = Command::new(pg.bin.join("pg_dump"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["--format=custom"])
        .args(extra)
        .arg(db)
        .env("PGPASSWORD", &pg.password)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    start.elapsed().as_secs_f64()
}

fn backup_in_child(pg: &tend_testkit::Postgres, db: &str) -> (f64, u64, u64) {
    let repo = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_CHILD", "1")
        .env("BENCH_PGPORT", pg.port.to_string())
        .env("BENCH_PGPASSWORD", &pg.password)
        .env("BENCH_DB", db)
        .env("BENCH_REPO", repo.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace();
    (
        fields.next().unwrap().parse().unwrap(),
        fields.next().unwrap().parse().unwrap(),
        fields.next().unwrap().parse().unwrap(),
    )
}

fn make_database(pg: &tend_testkit::Postgres, db: &str, mib: u64) {
    pg.psql("postgres", &format!("create database {db}"));
    // ~200 bytes a row of mixed, partly compressible data.
    let rows = mib * 1024 * 1024 / 200;
    pg.psql(
        db,
        &format!(
            "create table records as select g as id, now() - g * interval '1 minute' as at,
               md5(g::text) || ' ' || md5((g * 31)::text) || ' field ' || (g % 97) as note,
               repeat(chr(65 + g % 26), 60) || g as body, random() * 1000 as yield
             from generate_series(1, {rows}) g"
        ),
    );
    let size = pg.psql(
        db,
        "select pg_size_pretty(pg_database_size(current_database()))",
    );
    println!("database {db}: {size}");
}

/// Per database: name, `pg_dump -Fc` seconds, `-Z0` seconds, engine (seconds, stored bytes,
/// peak RSS KiB).
type DatabaseResult = (&'static str, f64, f64, (f64, u64, u64));

fn database_benchmark() -> Vec<DatabaseResult> {
    let small = env_number("TEND_BENCH_SMALL_MB", 64);
    let large = env_number("TEND_BENCH_LARGE_MB", 512);
    let pg = tend_testkit::Postgres::start();
    make_database(&pg, "small", small);
    make_database(&pg, "large", large);
    // Warm the cache so the first measured run is not penalised.
    time_pg_dump(&pg, "large", &["-Z0"]);

    let mut results = Vec::new();
    for db in ["small", "large"] {
        // Interleave baseline and engine runs, and keep the best of two of each.
        let mut fc = f64::MAX;
        let mut z0 = f64::MAX;
        let mut engine = (f64::MAX, 0, 0);
        for _ in 0..2 {
            fc = fc.min(time_pg_dump(&pg, db, &[]));
            z0 = z0.min(time_pg_dump(&pg, db, &["-Z0"]));
            let run = backup_in_child(&pg, db);
            if run.0 < engine.0 {
                engine.0 = run.0;
                engine.1 = run.1;
            }
            engine.2 = engine.2.max(run.2);
        }
        results.push((db, fc, z0, engine));
    }
    println!();
    println!(
        "| database | pg_dump -Fc >/dev/null | pg_dump -Fc -Z0 >/dev/null | tend backup | speed vs -Fc | speed vs -Z0 | stored | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (db, fc, z0, (secs, bytes, hwm)) in &results {
        println!(
            "| {db} | {fc:.2} s | {z0:.2} s | {secs:.2} s | {:.2} | {:.2} | {:.1} MiB | {:.1} MiB |",
            fc / secs,
            z0 / secs,
            *bytes as f64 / 1048576.0,
            *hwm as f64 / 1024.0
        );
    }
    results
}

/// Full backup and incremental (1 % changed) times, best of two rounds, each in a fresh
/// repository.
fn objects_benchmark() -> (f64, f64) {
    let count: u64 = 10_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys = tend_testkit::Keys::new();
    println!();
    println!("| round | objects | full backup | incremental (1 % changed) | ratio |");
    println!("|---|---|---|---|---|");
    let mut best = (f64::MAX, f64::MAX);
    for round in 1..=2u64 {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        let path = |i: u64| photos.join(format!("{:02}/{i}.jpg", i % 100));
        for i in 0..count {
            std::fs::create_dir_all(path(i).parent().unwrap()).unwrap();
            // Distinct photos: each one is a blob of its own.
            std::fs::write(path(i), pseudo_random(4096, bench_seed(i))).unwrap();
        }
        let repo: Arc<dyn Repository> =
            Arc::new(LocalRepository::new(dir.path().join("repo")).unwrap());
        let source: Arc<dyn Repository> = Arc::new(LocalRepository::new(&photos).unwrap());
        let run = || {
            let mut job = BackupJob::new(
                repo.clone(),
                PolicyLocation::new("bench", "photos"),
                keys.encryption(),
            );
            job.objects = Some(ObjectsSource::new(source.clone(), ""));
            let start = Instant::now();
            let manifest = rt.block_on(run_backup(job)).unwrap();
            (start.elapsed().as_secs_f64(), manifest.objects.unwrap())
        };
        let (full, first) = run();
        for i in (0..count).step_by(100) {
            std::fs::write(path(i), pseudo_random(4096, bench_seed(count * round + i))).unwrap();
        }
        let (incremental, second) = run();
        assert_eq!((second.read, second.uploaded), (count / 100, count / 100));
        println!(
            "| {round} | {} ({} read, {} uploaded → {} read, {} uploaded) | {full:.2} s | {incremental:.3} s | {:.3} |",
            first.count,
            first.read,
            first.uploaded,
            second.read,
            second.uploaded,
            incremental / full
        );
        best = (best.0.min(full), best.1.min(incremental));
    }
    best
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT MET" }
}

fn main() {
    if std::env::var_os("BENCH_CHILD").is_some() {
        return child();
    }
    // `cargo bench` passes `--bench`; ignore arguments.
    let only = std::env::var("TEND_BENCH_ONLY").unwrap_or_default();
    let database = (only.is_empty() || only == "database").then(database_benchmark);
    let objects = (only.is_empty() || only == "objects").then(objects_benchmark);

    println!();
    println!("Summary (goals of issue 5; speed ratio = baseline time / tend time, best of two):");
    if let Some(results) = &database {
        for (db, fc, z0, (secs, _, _)) in results {
            println!(
                "  full backup of `{db}` vs pg_dump -Fc: {:.2} (goal ≥ 0.90: {}); vs pg_dump -Fc -Z0: {:.2}",
                fc / secs,
                verdict(fc / secs >= 0.9),
                z0 / secs
            );
        }
        if let [(_, _, _, (_, _, small)), (_, _, _, (_, _, large))] = results.as_slice() {
            println!(
                "  peak RSS of the backup: small {:.1} MiB, large {:.1} MiB (large/small {:.2}; goal: does not grow with the data)",
                *small as f64 / 1024.0,
                *large as f64 / 1024.0,
                *large as f64 / *small as f64
            );
        }
    }
    if let Some((full, incremental)) = objects {
        println!(
            "  incremental objects backup (1 % of 10,000 changed) vs full: {:.3} ({:.3} s / {:.2} s; goal ≤ 0.05: {})",
            incremental / full,
            incremental,
            full,
            verdict(incremental / full <= 0.05)
        );
    }
}

/// Photo seeds spread over the whole u64 range (the kit's generator takes the seed as is).
fn bench_seed(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
