//! The four audit logs (access, auth, operation, error).
//!
//! Every entry is printed as one JSON line on stdout and appended to the
//! `logs` table. Each category is its own hash chain: an entry's hash covers
//! the previous entry's hash of the same category, so editing or deleting a
//! row breaks the chain. Pruning removes a prefix of one chain and records
//! the last removed hash in `log_checkpoints`, from which verification of the
//! remaining rows starts.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::Mutex;

use crate::db::{Db, ms_to_rfc3339, now_ms};

pub const CATEGORIES: &[&str] = &["access", "auth", "operation", "error"];
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Access,
    Auth,
    Operation,
    Error,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Access => "access",
            Category::Auth => "auth",
            Category::Operation => "operation",
            Category::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        match text {
            "access" => Some(Category::Access),
            "auth" => Some(Category::Auth),
            "operation" => Some(Category::Operation),
            "error" => Some(Category::Error),
            _ => None,
        }
    }
}

pub fn entry_hash(prev_hash: &str, category: &str, ts: i64, data: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(category.as_bytes());
    h.update(b"\n");
    h.update(ts.to_string().as_bytes());
    h.update(b"\n");
    h.update(data.as_bytes());
    hex::encode(h.finalize())
}

/// Appends entries; the mutex serialises appends so each chain stays linear.
/// One fieldbook process writes a database's logs (see README).
pub struct LogStore {
    db: Db,
    heads: Mutex<HashMap<Category, String>>,
    stdout: bool,
}

#[derive(Debug, Serialize)]
pub struct StoredEntry {
    pub id: i64,
    pub category: String,
    pub ts: String,
    pub data: serde_json::Value,
    pub hash: String,
}

#[derive(Debug, Default, Serialize)]
pub struct ChainReport {
    pub checked: u64,
    pub problems: Vec<String>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl LogStore {
    pub fn new(db: Db, stdout: bool) -> LogStore {
        LogStore {
            db,
            heads: Mutex::new(HashMap::new()),
            stdout,
        }
    }

    async fn head(&self, category: Category) -> sqlx::Result<String> {
        let last = self
            .db
            .optional(
                &self.db.pool,
                sqlx::query("SELECT hash FROM logs WHERE category = $1 ORDER BY id DESC LIMIT 1")
                    .bind(category.as_str()),
            )
            .await?;
        if let Some(row) = last {
            return Ok(row.get("hash"));
        }
        let checkpoint = self
            .db
            .optional(
                &self.db.pool,
                sqlx::query("SELECT last_hash FROM log_checkpoints WHERE category = $1")
                    .bind(category.as_str()),
            )
            .await?;
        Ok(checkpoint
            .map(|r| r.get::<String, _>("last_hash"))
            .unwrap_or_else(|| GENESIS.to_string()))
    }

    /// Inserts one entry; with `guarded`, only if `prev` is still the head of its chain.
    /// Returns the rows inserted.
    async fn insert(
        &self,
        category: Category,
        ts: i64,
        data: &str,
        prev: &str,
        hash: &str,
        guarded: bool,
    ) -> sqlx::Result<u64> {
        let sql = if guarded {
            "INSERT INTO logs (category, ts, data, prev_hash, hash) SELECT $1, $2, $3, $4, $5 \
             WHERE $4 = COALESCE(\
               (SELECT hash FROM logs WHERE category = $1 ORDER BY id DESC LIMIT 1), \
               (SELECT last_hash FROM log_checkpoints WHERE category = $1), $6)"
        } else {
            "INSERT INTO logs (category, ts, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5)"
        };
        let mut query = sqlx::query(sql)
            .bind(category.as_str())
            .bind(ts)
            .bind(data.to_owned())
            .bind(prev.to_owned())
            .bind(hash.to_owned());
        if guarded {
            query = query.bind(GENESIS);
        }
        self.db.exec(&self.db.pool, query).await
    }

    /// Appends one entry. Failure to store is reported on stderr and returned;
    /// callers on the request path ignore it so logging never breaks a page.
    pub async fn append(&self, category: Category, data: serde_json::Value) -> sqlx::Result<()> {
        let ts = now_ms();
        let data_text = data.to_string();
        if self.stdout {
            let line = serde_json::json!({
                "ts": ms_to_rfc3339(ts),
                "log": category.as_str(),
                "entry": data,
            });
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
        let mut heads = self.heads.lock().await;
        let cached = heads.get(&category).cloned();
        // The cached head is only trusted if it still is the head: the rows may have been
        // replaced from outside (a database restore). Checked in the insert itself; a stale
        // head (nothing inserted) is read again from the database.
        let guarded = match cached {
            Some(prev) => {
                let hash = entry_hash(&prev, category.as_str(), ts, &data_text);
                match self
                    .insert(category, ts, &data_text, &prev, &hash, true)
                    .await
                {
                    Ok(0) => None,
                    other => Some((hash, other)),
                }
            }
            None => None,
        };
        let (hash, result) = match guarded {
            Some(done) => done,
            None => {
                let prev = self.head(category).await?;
                let hash = entry_hash(&prev, category.as_str(), ts, &data_text);
                let result = self
                    .insert(category, ts, &data_text, &prev, &hash, false)
                    .await;
                (hash, result)
            }
        };
        match result {
            Ok(_) => {
                heads.insert(category, hash);
                Ok(())
            }
            Err(e) => {
                heads.remove(&category);
                eprintln!(
                    "{{\"log\":\"error\",\"entry\":{{\"message\":\"log store append failed\",\"detail\":{:?}}}}}",
                    e.to_string()
                );
                Err(e)
            }
        }
    }

    /// Drops the cached chain heads so the next append reads them from the
    /// database (after rows were rewritten outside this process, e.g. a restore).
    pub async fn forget_heads(&self) {
        self.heads.lock().await.clear();
    }

    /// Runs `work`, which replaces the `logs` table wholesale (a database
    /// restore), with appends held back, then drops the cached heads: no entry
    /// can be chained to a head of the replaced rows.
    pub async fn while_replaced<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let mut heads = self.heads.lock().await;
        let out = work.await;
        heads.clear();
        out
    }

    /// Page of entries, newest first, for the admin viewer.
    pub async fn recent(
        &self,
        category: Option<Category>,
        before_id: Option<i64>,
        limit: i64,
    ) -> sqlx::Result<Vec<StoredEntry>> {
        let rows = self
            .db
            .all(
                &self.db.pool,
                sqlx::query(
                    "SELECT id, category, ts, data, hash FROM logs \
                     WHERE ($1 = '' OR category = $1) AND id < $2 ORDER BY id DESC LIMIT $3",
                )
                .bind(category.map(|c| c.as_str()).unwrap_or(""))
                .bind(before_id.unwrap_or(i64::MAX))
                .bind(limit),
            )
            .await?;
        Ok(rows.iter().map(row_to_entry).collect())
    }

    /// Entries of one category strictly older than `before_ms`, after `after_id`,
    /// in chain order; export pages through these so no cursor stays open.
    pub async fn older_than(
        &self,
        category: Category,
        before_ms: i64,
        after_id: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<StoredEntry>> {
        let rows = self
            .db
            .all(
                &self.db.pool,
                sqlx::query(
                    "SELECT id, category, ts, data, hash FROM logs \
                     WHERE category = $1 AND ts < $2 AND id > $3 ORDER BY id LIMIT $4",
                )
                .bind(category.as_str())
                .bind(before_ms)
                .bind(after_id)
                .bind(limit),
            )
            .await?;
        Ok(rows.iter().map(row_to_entry).collect())
    }

    /// Deletes the entries of one category older than `before_ms` and moves
    /// the checkpoint to the last deleted entry, in one transaction.
    /// Only a chain prefix is removed: the cut stops at the first entry that
    /// is not old enough, so the remaining rows still link to the checkpoint.
    pub async fn prune(&self, category: Category, before_ms: i64) -> sqlx::Result<u64> {
        let _heads = self.heads.lock().await;
        let mut tx = self.db.pool.begin().await?;
        let first_young = self
            .db
            .optional(
                &mut *tx,
                sqlx::query("SELECT MIN(id) AS id FROM logs WHERE category = $1 AND ts >= $2")
                    .bind(category.as_str())
                    .bind(before_ms),
            )
            .await?
            .and_then(|r| r.try_get::<Option<i64>, _>("id").ok().flatten())
            .unwrap_or(i64::MAX);
        let last = self
            .db
            .optional(
                &mut *tx,
                sqlx::query(
                    "SELECT id, hash FROM logs WHERE category = $1 AND id < $2 ORDER BY id DESC LIMIT 1",
                )
                .bind(category.as_str())
                .bind(first_young),
            )
            .await?;
        let Some(last) = last else {
            tx.rollback().await?;
            return Ok(0);
        };
        let last_id: i64 = last.get("id");
        let last_hash: String = last.get("hash");
        let deleted = self
            .db
            .exec(
                &mut *tx,
                sqlx::query("DELETE FROM logs WHERE category = $1 AND id <= $2")
                    .bind(category.as_str())
                    .bind(last_id),
            )
            .await?;
        let previous_total = self
            .db
            .optional(
                &mut *tx,
                sqlx::query("SELECT pruned_total FROM log_checkpoints WHERE category = $1")
                    .bind(category.as_str()),
            )
            .await?
            .map(|r| r.get::<i64, _>("pruned_total"))
            .unwrap_or(0);
        self.db
            .exec(
                &mut *tx,
                sqlx::query("DELETE FROM log_checkpoints WHERE category = $1")
                    .bind(category.as_str()),
            )
            .await?;
        self.db
            .exec(
                &mut *tx,
                sqlx::query(
                    "INSERT INTO log_checkpoints (category, last_id, last_hash, pruned_total, updated_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(category.as_str())
                .bind(last_id)
                .bind(last_hash)
                .bind(previous_total + deleted as i64)
                .bind(now_ms()),
            )
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}

fn row_to_entry(row: &sqlx::any::AnyRow) -> StoredEntry {
    let data: String = row.get("data");
    StoredEntry {
        id: row.get("id"),
        category: row.get("category"),
        ts: ms_to_rfc3339(row.get("ts")),
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
        hash: row.get("hash"),
    }
}

/// Walks every chain from its checkpoint (or the genesis hash) and reports
/// each row whose stored hash or link does not match its content.
pub async fn verify_chains(db: &Db) -> sqlx::Result<ChainReport> {
    let mut report = ChainReport::default();
    for category in CATEGORIES {
        let mut expected_prev = db
            .optional(
                &db.pool,
                sqlx::query("SELECT last_id, last_hash FROM log_checkpoints WHERE category = $1")
                    .bind(*category),
            )
            .await?
            .map(|r| r.get::<String, _>("last_hash"))
            .unwrap_or_else(|| GENESIS.to_string());
        let mut after = 0_i64;
        loop {
            let rows = db
                .all(
                    &db.pool,
                    sqlx::query(
                        "SELECT id, ts, data, prev_hash, hash FROM logs \
                         WHERE category = $1 AND id > $2 ORDER BY id LIMIT 1000",
                    )
                    .bind(*category)
                    .bind(after),
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let id: i64 = row.get("id");
                let prev: String = row.get("prev_hash");
                let hash: String = row.get("hash");
                let data: String = row.get("data");
                let ts: i64 = row.get("ts");
                if prev != expected_prev {
                    report.problems.push(format!(
                        "{category} entry {id}: link to the previous entry is broken (an entry before it was removed or altered)"
                    ));
                }
                if entry_hash(&prev, category, ts, &data) != hash {
                    report.problems.push(format!(
                        "{category} entry {id}: content does not match its hash (edited)"
                    ));
                }
                expected_prev = hash;
                after = id;
                report.checked += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_hash_covers_previous_hash_and_content() {
        let a = entry_hash(GENESIS, "auth", 1, "{\"event\":\"login\"}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, entry_hash(GENESIS, "auth", 1, "{\"event\":\"logout\"}"));
        assert_ne!(a, entry_hash(&a, "auth", 1, "{\"event\":\"login\"}"));
        assert_ne!(a, entry_hash(GENESIS, "access", 1, "{\"event\":\"login\"}"));
        assert_ne!(a, entry_hash(GENESIS, "auth", 2, "{\"event\":\"login\"}"));
    }
}
