//! The self-check behind `GET /ops/v1/verify` and the periodic background
//! check: row counts per table, every referenced photo/screenshot object
//! present in the store, log hash chains intact. Each run, wherever it was
//! started from, updates the `fieldbook_verify_*` gauges, so tend can alert on
//! "photos went missing" without calling the ops API.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Row;

use crate::db::{TABLES, now_ms};
use crate::error::AppResult;
use crate::logs::{self, ChainReport};
use crate::state::AppState;

/// What one check found; `to_json` is the body of `GET /ops/v1/verify`.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub tables: serde_json::Map<String, Value>,
    pub referenced: u64,
    /// Keys referenced by a row but absent from the store (or unreadable).
    pub missing: Vec<String>,
    pub store_errors: Vec<String>,
    pub chains: ChainReport,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.chains.ok()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "tables": self.tables,
            "photos": {
                "referenced": self.referenced,
                "missing": self.missing,
                "storeErrors": self.store_errors,
            },
            "logChains": {
                "ok": self.chains.ok(),
                "checked": self.chains.checked,
                "problems": self.chains.problems,
            },
        })
    }
}

/// Runs the check and records its outcome in the metrics. A check that
/// cannot finish (database down) counts as not ok.
pub async fn run(state: &AppState) -> AppResult<VerifyReport> {
    let outcome = check(state).await;
    let now = now_ms() as f64 / 1000.0;
    match &outcome {
        Ok(report) => {
            state
                .metrics
                .record_verify(Some(report.missing.len() as i64), report.ok(), now)
        }
        Err(_) => state.metrics.record_verify(None, false, now),
    }
    outcome
}

async fn check(state: &AppState) -> AppResult<VerifyReport> {
    let mut report = VerifyReport::default();
    for table in TABLES {
        let count = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = state.db.one(&state.db.pool, sqlx::query(&count)).await?;
        report
            .tables
            .insert((*table).to_string(), json!(row.get::<i64, _>("n")));
    }
    for sql in [
        "SELECT id, object_key FROM photos WHERE id > $1 ORDER BY id LIMIT 1000",
        "SELECT id, screenshot_key AS object_key FROM inquiries WHERE id > $1 AND screenshot_key IS NOT NULL ORDER BY id LIMIT 1000",
    ] {
        let mut after = 0_i64;
        loop {
            let rows = state
                .db
                .all(&state.db.pool, sqlx::query(sql).bind(after))
                .await?;
            for r in &rows {
                report.referenced += 1;
                let key: String = r.get("object_key");
                match state.photos.exists(&key).await {
                    Ok(true) => {}
                    Ok(false) => report.missing.push(key),
                    Err(e) => {
                        report.store_errors.push(e);
                        report.missing.push(key);
                    }
                }
                after = r.get("id");
            }
            if rows.len() < 1000 {
                break;
            }
        }
    }
    report.chains = logs::verify_chains(&state.db).await?;
    Ok(report)
}

/// Starts the periodic check when `config.verify_interval` is set.
pub fn start(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let every = state.config.verify_interval?;
    Some(spawn_periodic(state.clone(), every))
}

/// Runs the check now and then every `interval` until the process ends.
/// Failures only show in the metrics (and, for internal errors, on stderr):
/// the periodic check must never take the app down.
pub fn spawn_periodic(state: AppState, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = run(&state).await {
                eprintln!(
                    "{}",
                    json!({"log": "error", "entry": {"message": "periodic self-check failed", "detail": e.to_string()}})
                );
            }
        }
    })
}

/// Parses `FIELDBOOK_VERIFY_INTERVAL`: a whole number with `s`, `m` or `h`
/// (`90s`, `10m`, `1h`; a bare number is seconds), or `0`/`off` to disable
/// (`None`). The error names the variable, as clap prints it as is.
pub fn parse_interval(text: &str) -> Result<Option<Duration>, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "FIELDBOOK_VERIFY_INTERVAL (--verify-interval): {t:?} is not a duration; use e.g. 30s, 10m or 1h, or 0/off to disable"
        )
    };
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_or_name_the_variable() {
        assert_eq!(parse_interval("10m"), Ok(Some(Duration::from_secs(600))));
        assert_eq!(parse_interval("45"), Ok(Some(Duration::from_secs(45))));
        assert_eq!(parse_interval("2h"), Ok(Some(Duration::from_secs(7200))));
        assert_eq!(parse_interval("1s"), Ok(Some(Duration::from_secs(1))));
        assert_eq!(parse_interval("0"), Ok(None));
        assert_eq!(parse_interval("0m"), Ok(None));
        assert_eq!(parse_interval("OFF"), Ok(None));
        for bad in [
            "",
            "soon",
            "10 minutes",
            "-5s",
            "1.5m",
            "m",
            "99999999999999999999h",
        ] {
            let err = parse_interval(bad).unwrap_err();
            assert!(err.starts_with("FIELDBOOK_VERIFY_INTERVAL"), "{bad}: {err}");
        }
    }
}
