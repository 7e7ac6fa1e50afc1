//! Judging a restore: row counts against the manifest, object hashes, SQL checks on a SQLite
//! file, and the app's own verify report.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use tend_backup::restore::ObjectsCheck;

/// Every table of the manifest must hold exactly as many rows as when it was backed up.
/// PostgreSQL names tables `schema.table`; the app and SQLite name them bare, so `public.` is
/// ignored when one side has it and the other does not.
pub fn compare_row_counts(
    expected: &BTreeMap<String, u64>,
    found: &BTreeMap<String, u64>,
) -> (bool, String) {
    let bare = |t: &str| t.strip_prefix("public.").unwrap_or(t).to_owned();
    let found: BTreeMap<String, u64> = found.iter().map(|(t, n)| (bare(t), *n)).collect();
    let mut problems = Vec::new();
    for (table, rows) in expected {
        match found.get(&bare(table)) {
            Some(n) if n == rows => {}
            Some(n) => problems.push(format!("{table}: {n} rows, the backup had {rows}")),
            None => problems.push(format!("{table}: missing")),
        }
    }
    if problems.is_empty() {
        let rows: u64 = expected.values().sum();
        (
            true,
            format!(
                "{} tables, {rows} rows, all as in the backup",
                expected.len()
            ),
        )
    } else {
        let shown: Vec<_> = problems.iter().take(10).cloned().collect();
        (
            false,
            format!(
                "{} of {} tables differ: {}",
                problems.len(),
                expected.len(),
                shown.join("; ")
            ),
        )
    }
}

pub fn describe_objects(report: &ObjectsCheck) -> (bool, String) {
    if report.passed() {
        return (
            true,
            format!(
                "{} objects present with the SHA-256 of the backup",
                report.checked
            ),
        );
    }
    let mut parts = Vec::new();
    if report.missing > 0 {
        parts.push(format!(
            "{} missing (e.g. {})",
            report.missing,
            report.missing_keys.join(", ")
        ));
    }
    if report.mismatched > 0 {
        parts.push(format!(
            "{} with other content (e.g. {})",
            report.mismatched,
            report.mismatched_keys.join(", ")
        ));
    }
    (
        false,
        format!("of {} objects: {}", report.checked, parts.join("; ")),
    )
}

/// The app's `/verify` report must say ok: every photo its records reference is present and
/// its audit log chains are intact. (Row counts are the `rowCounts` check's job, measured on the
/// target right after the restore: by the time the app is asked, it has logged the restore
/// itself.)
pub fn judge_app_verify(report: &Value) -> (bool, String) {
    let ok = report.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let missing = report["photos"]["missing"]
        .as_array()
        .map_or(0, |m| m.len());
    let referenced = report["photos"]["referenced"].as_u64().unwrap_or(0);
    let chains = report["logChains"]["ok"].as_bool().unwrap_or(false);
    if ok {
        return (
            true,
            format!(
                "the app reports ok: {referenced} referenced photos present, log chains intact"
            ),
        );
    }
    let mut problems = Vec::new();
    if missing > 0 {
        problems.push(format!(
            "{missing} of {referenced} referenced photos are missing"
        ));
    }
    if !chains {
        problems.push("the audit log chains are broken".to_string());
    }
    if problems.is_empty() {
        problems.push("the app reported ok: false".to_string());
    }
    (
        false,
        format!("the app reports problems: {}", problems.join("; ")),
    )
}

/// A SQL check on a SQLite file: one row, one column, true (1).
pub async fn sqlite_check(file: PathBuf, query: String) -> (bool, String) {
    let run = tokio::task::spawn_blocking(move || -> Result<bool, String> {
        let conn = open_read_only(&file)?;
        let mut statement = conn
            .prepare(&query)
            .map_err(|e| format!("the query: {e}"))?;
        if statement.column_count() != 1 {
            return Err(format!(
                "the query returns {} columns; a check returns one boolean",
                statement.column_count()
            ));
        }
        let mut rows = statement.query([]).map_err(|e| format!("the query: {e}"))?;
        let row = rows
            .next()
            .map_err(|e| format!("the query: {e}"))?
            .ok_or("the query returned no row")?;
        let value: rusqlite::types::Value = row.get(0).map_err(|e| format!("the query: {e}"))?;
        if rows
            .next()
            .map_err(|e| format!("the query: {e}"))?
            .is_some()
        {
            return Err("the query returned more than one row".into());
        }
        match value {
            rusqlite::types::Value::Integer(n) => Ok(n != 0),
            other => Err(format!("the query returned {other:?}, not a boolean")),
        }
    })
    .await;
    match run {
        Ok(Ok(true)) => (true, "returned true".into()),
        Ok(Ok(false)) => (false, "returned false".into()),
        Ok(Err(e)) => (false, e),
        Err(e) => (false, format!("the check crashed: {e}")),
    }
}

/// Rows per table of a SQLite file (every table but SQLite's and the migration bookkeeping).
pub async fn sqlite_row_counts(file: PathBuf) -> Result<BTreeMap<String, u64>, String> {
    tokio::task::spawn_blocking(move || {
        let conn = open_read_only(&file)?;
        let tables: Vec<String> = {
            let mut statement = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .map_err(|e| e.to_string())?;
            let names = statement
                .query_map([], |row| row.get(0))
                .map_err(|e| e.to_string())?;
            names.collect::<Result<_, _>>().map_err(|e| e.to_string())?
        };
        let mut counts = BTreeMap::new();
        for table in tables {
            let sql = format!("SELECT COUNT(*) FROM \"{}\"", table.replace('"', "\"\""));
            let n: i64 = conn
                .query_row(&sql, [], |row| row.get(0))
                .map_err(|e| format!("counting {table}: {e}"))?;
            counts.insert(table, n.max(0) as u64);
        }
        Ok(counts)
    })
    .await
    .map_err(|e| format!("counting rows crashed: {e}"))?
}

fn open_read_only(file: &std::path::Path) -> Result<rusqlite::Connection, String> {
    rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("opening the restored SQLite file {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    #[test]
    fn row_counts_must_match_every_table() {
        let expected = counts(&[("public.users", 2), ("public.photos", 5)]);
        assert!(
            compare_row_counts(
                &expected,
                &counts(&[("public.users", 2), ("public.photos", 5)])
            )
            .0
        );
        let (ok, message) = compare_row_counts(&expected, &counts(&[("public.users", 1)]));
        assert!(!ok);
        assert!(
            message.contains("public.users: 1 rows, the backup had 2"),
            "{message}"
        );
        assert!(message.contains("public.photos: missing"), "{message}");
        // The app names tables without the schema.
        assert!(compare_row_counts(&expected, &counts(&[("users", 2), ("photos", 5)])).0);
    }

    #[test]
    fn app_verify_needs_ok() {
        let report = json!({"ok": true, "tables": {"users": 2}, "photos": {"referenced": 3, "missing": []}, "logChains": {"ok": true}});
        assert!(judge_app_verify(&report).0);
        let missing = json!({"ok": false, "tables": {}, "photos": {"referenced": 3, "missing": ["a", "b"]}, "logChains": {"ok": true}});
        let (ok, message) = judge_app_verify(&missing);
        assert!(
            !ok && message.contains("2 of 3 referenced photos are missing"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn sql_checks_and_counts_on_a_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.sqlite");
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE users(id INTEGER PRIMARY KEY); INSERT INTO users VALUES (1), (2);",
        )
        .unwrap();
        drop(conn);
        assert_eq!(
            sqlite_row_counts(file.clone()).await.unwrap(),
            counts(&[("users", 2)])
        );
        assert!(
            sqlite_check(file.clone(), "SELECT COUNT(*) = 2 FROM users".into())
                .await
                .0
        );
        let (ok, message) =
            sqlite_check(file.clone(), "SELECT COUNT(*) = 3 FROM users".into()).await;
        assert!(!ok && message == "returned false");
        let (ok, message) = sqlite_check(file.clone(), "SELECT 'yes'".into()).await;
        assert!(!ok && message.contains("not a boolean"), "{message}");
        let (ok, message) = sqlite_check(file, "SELECT * FROM nope".into()).await;
        assert!(!ok && message.contains("nope"), "{message}");
    }
}
