//! Status-page incidents: published and updated by tend through the ops API,
//! shown on `/status`, as a banner while open, and as a Statuspage summary.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Db, now_ms};
use crate::error::{AppError, AppResult};

pub const STATUSES: &[&str] = &["investigating", "identified", "monitoring", "resolved"];
pub const IMPACTS: &[&str] = &["none", "minor", "major", "critical"];

#[derive(Debug, Clone, Serialize)]
pub struct Incident {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub impact: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub resolved_at: Option<i64>,
    pub updates: Vec<IncidentUpdate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentUpdate {
    pub id: i64,
    pub status: String,
    pub body: String,
    pub created_at: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    pub name: String,
    pub status: String,
    pub impact: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentChange {
    pub status: String,
    pub body: String,
    #[serde(default)]
    pub impact: Option<String>,
}

fn check_status(s: &str) -> AppResult<()> {
    if STATUSES.contains(&s) {
        Ok(())
    } else {
        Err(AppError::field(
            "status",
            format!("must be one of {}", STATUSES.join(", ")),
        ))
    }
}

fn check_impact(s: &str) -> AppResult<()> {
    if IMPACTS.contains(&s) {
        Ok(())
    } else {
        Err(AppError::field(
            "impact",
            format!("must be one of {}", IMPACTS.join(", ")),
        ))
    }
}

fn check_text(field: &'static str, s: &str, max: usize) -> AppResult<()> {
    if s.trim().is_empty() || s.chars().count() > max {
        return Err(AppError::field(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(())
}

pub async fn create(db: &Db, new: &NewIncident) -> AppResult<i64> {
    check_text("name", &new.name, 200)?;
    check_status(&new.status)?;
    check_impact(&new.impact)?;
    check_text("body", &new.body, 10_000)?;
    let now = now_ms();
    let resolved = (new.status == "resolved").then_some(now);
    let mut tx = db.pool.begin().await?;
    let row = db
        .one(
            &mut *tx,
            sqlx::query(
                "INSERT INTO incidents (name, status, impact, created_at, updated_at, resolved_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(new.name.trim().to_string())
            .bind(new.status.clone())
            .bind(new.impact.clone())
            .bind(now)
            .bind(now)
            .bind(resolved),
        )
        .await?;
    let id: i64 = row.get("id");
    db.exec(
        &mut *tx,
        sqlx::query(
            "INSERT INTO incident_updates (incident_id, status, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(new.status.clone())
        .bind(new.body.clone())
        .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

pub async fn update(db: &Db, id: i64, change: &IncidentChange) -> AppResult<()> {
    check_status(&change.status)?;
    check_text("body", &change.body, 10_000)?;
    if let Some(impact) = &change.impact {
        check_impact(impact)?;
    }
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let current = db
        .optional(
            &mut *tx,
            sqlx::query("SELECT impact, resolved_at FROM incidents WHERE id = $1").bind(id),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    let impact = change
        .impact
        .clone()
        .unwrap_or_else(|| current.get::<String, _>("impact"));
    let resolved = if change.status == "resolved" {
        Some(
            current
                .try_get::<Option<i64>, _>("resolved_at")?
                .unwrap_or(now),
        )
    } else {
        None
    };
    db.exec(
        &mut *tx,
        sqlx::query(
            "UPDATE incidents SET status = $1, impact = $2, updated_at = $3, resolved_at = $4 WHERE id = $5",
        )
        .bind(change.status.clone())
        .bind(impact)
        .bind(now)
        .bind(resolved)
        .bind(id),
    )
    .await?;
    db.exec(
        &mut *tx,
        sqlx::query(
            "INSERT INTO incident_updates (incident_id, status, body, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(change.status.clone())
        .bind(change.body.clone())
        .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Incidents newest first; `open_only` for the banner and summary.
pub async fn list(db: &Db, open_only: bool, limit: i64) -> AppResult<Vec<Incident>> {
    let rows = db
        .all(
            &db.pool,
            sqlx::query(
                "SELECT id, name, status, impact, created_at, updated_at, resolved_at FROM incidents \
                 WHERE ($1 = 0 OR resolved_at IS NULL) ORDER BY id DESC LIMIT $2",
            )
            .bind(i64::from(open_only))
            .bind(limit),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: i64 = r.get("id");
        let updates = db
            .all(
                &db.pool,
                sqlx::query(
                    "SELECT id, status, body, created_at FROM incident_updates WHERE incident_id = $1 ORDER BY id DESC",
                )
                .bind(id),
            )
            .await?
            .into_iter()
            .map(|u| IncidentUpdate {
                id: u.get("id"),
                status: u.get("status"),
                body: u.get("body"),
                created_at: u.get("created_at"),
            })
            .collect();
        out.push(Incident {
            id,
            name: r.get("name"),
            status: r.get("status"),
            impact: r.get("impact"),
            created_at: r.get("created_at"),
            updated_at: r.get("updated_at"),
            resolved_at: r.try_get("resolved_at")?,
            updates,
        });
    }
    Ok(out)
}

/// Open incidents without their updates: what the banner on every page needs.
pub async fn open_names(db: &Db) -> AppResult<Vec<(String, String)>> {
    let rows = db
        .all(
            &db.pool,
            sqlx::query(
                "SELECT name, status FROM incidents WHERE resolved_at IS NULL ORDER BY id DESC LIMIT 5",
            ),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get("name"), r.get("status")))
        .collect())
}
