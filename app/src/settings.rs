//! Operator-managed settings as one portable document, for backups: tend
//! exports it (`GET /ops/v1/settings`) into a backup and a restore re-applies
//! it (`PUT /ops/v1/settings`).
//!
//! Included is what an operator sets through the ops API and fieldbook keeps
//! in its database: the published support content (with its revision) and
//! the maintenance mode state. Not included: incidents (status-page history,
//! i.e. data with ids and timestamps, restored with the database), accounts
//! and roles (data, next to password hashes), logs, and anything from the
//! command line or environment (ops token, SMTP relay, S3 bucket) — no secret
//! is ever part of the document.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::db::{Db, now_ms};
use crate::error::{AppError, AppResult};
use crate::state::MAINTENANCE_SETTING;
use crate::support::SupportContent;

/// The document format this build reads and writes.
pub const FORMAT: u64 = 1;
pub const APP: &str = "fieldbook";
/// Maintenance message used when maintenance is turned on without one.
pub const DEFAULT_MAINTENANCE_MESSAGE: &str = "Scheduled maintenance is in progress.";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsDocument {
    pub format: u64,
    pub app: String,
    /// The fieldbook version that wrote the document; informational on import.
    #[serde(default)]
    pub version: Option<String>,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The published support content; `null` when nothing was ever published
    /// (the built-in defaults are in effect).
    pub support_content: Option<SupportContent>,
    pub maintenance: Maintenance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Maintenance {
    pub enabled: bool,
    #[serde(default)]
    pub message: Option<String>,
}

/// The message maintenance mode shows, or None when it is off. `field` names
/// the message in errors (`message` for `/maintenance`, a longer path here).
pub fn maintenance_message(
    enabled: bool,
    message: Option<String>,
    field: &'static str,
) -> AppResult<Option<String>> {
    if !enabled {
        return Ok(None);
    }
    let m = message.unwrap_or_else(|| DEFAULT_MAINTENANCE_MESSAGE.to_string());
    if m.trim().is_empty() || m.chars().count() > 500 {
        return Err(AppError::field(field, "must be 1 to 500 characters"));
    }
    Ok(Some(m))
}

fn bad_json(e: serde_path_to_error::Error<serde_json::Error>) -> AppError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path == "." || path.is_empty() {
        AppError::field("body", format!("invalid JSON: {inner}"))
    } else {
        AppError::field(path, format!("invalid value: {inner}"))
    }
}

/// Parses and checks a document, naming the bad field in the error. The
/// format is checked first, so a document of another format is refused as
/// such rather than for the shape of its contents.
pub fn parse(body: &[u8]) -> AppResult<SettingsDocument> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::field("body", format!("invalid JSON: {e}")))?;
    let Some(top) = value.as_object() else {
        return Err(AppError::field("body", "must be a JSON object"));
    };
    match top.get("format") {
        None => return Err(AppError::field("format", "is required")),
        Some(f) if f.as_u64() == Some(FORMAT) => {}
        Some(f) => {
            return Err(AppError::field(
                "format",
                format!(
                    "unsupported settings format {f}; fieldbook {} reads format {FORMAT} only",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
    }
    match top.get("app").and_then(Value::as_str) {
        Some(APP) => {}
        Some(other) => {
            return Err(AppError::field(
                "app",
                format!("is {other:?}; this is a fieldbook settings endpoint"),
            ));
        }
        None => return Err(AppError::field("app", "must be \"fieldbook\"")),
    }
    let Some(settings) = top.get("settings").and_then(Value::as_object) else {
        return Err(AppError::field("settings", "must be an object"));
    };
    for key in ["supportContent", "maintenance"] {
        if !settings.contains_key(key) {
            return Err(AppError::field(
                format!("settings.{key}"),
                "is required (supportContent may be null: the built-in defaults)",
            ));
        }
    }
    let doc: SettingsDocument = serde_path_to_error::deserialize(value).map_err(bad_json)?;
    if let Some(content) = &doc.settings.support_content {
        content.validate().map_err(|e| match e {
            AppError::BadInput { field, message } => {
                AppError::field(format!("settings.supportContent.{field}"), message)
            }
            other => other,
        })?;
    }
    maintenance_message(
        doc.settings.maintenance.enabled,
        doc.settings.maintenance.message.clone(),
        "settings.maintenance.message",
    )?;
    Ok(doc)
}

/// The current settings, read in one transaction.
pub async fn export(db: &Db) -> AppResult<SettingsDocument> {
    let mut tx = db.pool.begin().await?;
    let support = db
        .optional(
            &mut *tx,
            sqlx::query("SELECT document FROM support_content WHERE id = 1"),
        )
        .await?;
    let support_content = match support {
        Some(row) => {
            let text: String = row.get("document");
            Some(serde_json::from_str(&text).map_err(|e| AppError::Internal(e.into()))?)
        }
        None => None,
    };
    let message = db
        .optional(
            &mut *tx,
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(MAINTENANCE_SETTING),
        )
        .await?
        .map(|r| r.get::<String, _>("value"));
    tx.commit().await?;
    Ok(SettingsDocument {
        format: FORMAT,
        app: APP.to_string(),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        settings: Settings {
            support_content,
            maintenance: Maintenance {
                enabled: message.is_some(),
                message,
            },
        },
    })
}

/// What an import changed, and the maintenance message now in effect (for
/// the in-memory cache).
pub struct Applied {
    pub changed: Vec<&'static str>,
    pub maintenance: Option<String>,
}

/// Re-applies a parsed document in one transaction: all of it or nothing.
/// Support content is written with the document's revision even when that is
/// lower than the published one (a restore is a deliberate rollback); `null`
/// removes the published content. Applying the same document again changes
/// nothing.
pub async fn apply(db: &Db, doc: &SettingsDocument) -> AppResult<Applied> {
    let wanted_support = match &doc.settings.support_content {
        Some(c) => Some((
            c.revision,
            serde_json::to_string(c).map_err(|e| AppError::Internal(e.into()))?,
        )),
        None => None,
    };
    let wanted_message = maintenance_message(
        doc.settings.maintenance.enabled,
        doc.settings.maintenance.message.clone(),
        "settings.maintenance.message",
    )?;
    let mut changed = Vec::new();
    let mut tx = db.pool.begin().await?;

    let current_support = db
        .optional(
            &mut *tx,
            sqlx::query("SELECT revision, document FROM support_content WHERE id = 1"),
        )
        .await?
        .map(|r| (r.get::<i64, _>("revision"), r.get::<String, _>("document")));
    if current_support != wanted_support {
        db.exec(
            &mut *tx,
            sqlx::query("DELETE FROM support_content WHERE id = 1"),
        )
        .await?;
        if let Some((revision, document)) = &wanted_support {
            db.exec(
                &mut *tx,
                sqlx::query(
                    "INSERT INTO support_content (id, revision, document, updated_at) VALUES (1, $1, $2, $3)",
                )
                .bind(*revision)
                .bind(document.clone())
                .bind(now_ms()),
            )
            .await?;
        }
        changed.push("supportContent");
    }

    let current_message = db
        .optional(
            &mut *tx,
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(MAINTENANCE_SETTING),
        )
        .await?
        .map(|r| r.get::<String, _>("value"));
    if current_message != wanted_message {
        db.exec(
            &mut *tx,
            sqlx::query("DELETE FROM settings WHERE name = $1").bind(MAINTENANCE_SETTING),
        )
        .await?;
        if let Some(m) = &wanted_message {
            db.exec(
                &mut *tx,
                sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2)")
                    .bind(MAINTENANCE_SETTING)
                    .bind(m.clone()),
            )
            .await?;
        }
        changed.push("maintenance");
    }

    tx.commit().await?;
    Ok(Applied {
        changed,
        maintenance: wanted_message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "format": 1,
            "app": "fieldbook",
            "version": "0.0.0",
            "settings": {"supportContent": null, "maintenance": {"enabled": false, "message": null}}
        })
    }

    fn field_of(body: &Value) -> String {
        match parse(body.to_string().as_bytes()) {
            Err(AppError::BadInput { field, .. }) => field.into_owned(),
            other => panic!("expected a bad input error, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_minimal_document_parses() {
        let d = parse(doc().to_string().as_bytes()).unwrap();
        assert_eq!(d.settings.support_content, None);
        assert!(!d.settings.maintenance.enabled);
    }

    #[test]
    fn errors_name_the_field() {
        let mut d = doc();
        d["format"] = json!(2);
        assert_eq!(field_of(&d), "format");
        d["format"] = json!("1");
        assert_eq!(field_of(&d), "format");
        let mut d = doc();
        d.as_object_mut().unwrap().remove("format");
        assert_eq!(field_of(&d), "format");
        let mut d = doc();
        d["app"] = json!("other");
        assert_eq!(field_of(&d), "app");
        let mut d = doc();
        d["settings"]
            .as_object_mut()
            .unwrap()
            .remove("supportContent");
        assert_eq!(field_of(&d), "settings.supportContent");
        let mut d = doc();
        d["settings"]["maintenance"]["enabled"] = json!("yes");
        assert_eq!(field_of(&d), "settings.maintenance.enabled");
        let mut d = doc();
        d["settings"]["maintenance"] = json!({"enabled": true, "message": " "});
        assert_eq!(field_of(&d), "settings.maintenance.message");
        let mut d = doc();
        d["settings"]["colour"] = json!("red");
        assert_eq!(field_of(&d), "settings.colour");
        let mut d = doc();
        let mut content = serde_json::to_value(SupportContent::default()).unwrap();
        content["revision"] = json!(1);
        content["nps"]["intervalDays"] = json!(0);
        d["settings"]["supportContent"] = content;
        assert_eq!(field_of(&d), "settings.supportContent.nps.intervalDays");
    }
}
