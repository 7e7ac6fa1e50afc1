//! Support content (FAQ, guides, troubleshooting, form categories,
//! auto-reply, NPS settings): one JSON document with a revision, published by
//! tend through the ops API from a SupportChannel spec.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::db::{Db, now_ms};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SupportContent {
    pub revision: i64,
    #[serde(default)]
    pub faq: Vec<FaqEntry>,
    #[serde(default)]
    pub guides: Vec<Article>,
    #[serde(default)]
    pub troubleshooting: Vec<Article>,
    #[serde(default)]
    pub forms: Forms,
    #[serde(default)]
    pub auto_reply: AutoReply,
    #[serde(default)]
    pub nps: NpsSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaqEntry {
    pub question: String,
    pub answer: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Article {
    pub title: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Forms {
    pub inquiry_categories: Vec<String>,
}

impl Default for Forms {
    fn default() -> Self {
        Forms {
            inquiry_categories: vec![
                "Account".into(),
                "Records and photos".into(),
                "Billing".into(),
                "Other".into(),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoReply {
    pub subject: String,
    pub body: String,
}

impl Default for AutoReply {
    fn default() -> Self {
        AutoReply {
            subject: "We received your inquiry".into(),
            body: "Thank you for contacting fieldbook support. We have received your message and will answer within one business day.".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NpsSettings {
    pub enabled: bool,
    pub interval_days: i64,
    pub question: String,
}

impl Default for NpsSettings {
    fn default() -> Self {
        NpsSettings {
            enabled: true,
            interval_days: 90,
            question: "How likely are you to recommend fieldbook to a fellow farmer?".into(),
        }
    }
}

impl Default for SupportContent {
    fn default() -> Self {
        SupportContent {
            revision: 0,
            faq: vec![
                FaqEntry {
                    question: "How do I add a photo to a record?".into(),
                    answer: "Open Records, fill in the new record form and choose a photo in the Photo field before saving.".into(),
                    tags: vec!["photo".into(), "records".into()],
                },
                FaqEntry {
                    question: "I forgot my password. What can I do?".into(),
                    answer: "Send an inquiry from the Support page with the category Account; staff will help you.".into(),
                    tags: vec!["account".into()],
                },
            ],
            guides: vec![Article {
                title: "Getting started".into(),
                body: "Add a field, add a crop to it, then record sowing, watering, fertilising, spraying and harvest as they happen.".into(),
            }],
            troubleshooting: vec![Article {
                title: "A photo does not upload".into(),
                body: "Photos must be JPEG, PNG, GIF or WebP and at most 20 MiB.".into(),
            }],
            forms: Forms::default(),
            auto_reply: AutoReply::default(),
            nps: NpsSettings::default(),
        }
    }
}

fn need(field: &'static str, text: &str, max: usize) -> AppResult<()> {
    if text.trim().is_empty() {
        return Err(AppError::field(field, "must not be empty"));
    }
    if text.chars().count() > max {
        return Err(AppError::field(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}

impl SupportContent {
    /// Checks every field; the error names the first bad one, e.g. `faq.answer`.
    pub fn validate(&self) -> AppResult<()> {
        if self.revision < 1 {
            return Err(AppError::field("revision", "must be a positive integer"));
        }
        for f in &self.faq {
            need("faq.question", &f.question, 500)?;
            need("faq.answer", &f.answer, 20_000)?;
        }
        for a in self.guides.iter().chain(&self.troubleshooting) {
            need("guides.title", &a.title, 500)?;
            need("guides.body", &a.body, 50_000)?;
        }
        if self.forms.inquiry_categories.is_empty() || self.forms.inquiry_categories.len() > 30 {
            return Err(AppError::field(
                "forms.inquiryCategories",
                "must list 1 to 30 categories",
            ));
        }
        for c in &self.forms.inquiry_categories {
            need("forms.inquiryCategories", c, 100)?;
        }
        need("autoReply.subject", &self.auto_reply.subject, 200)?;
        need("autoReply.body", &self.auto_reply.body, 10_000)?;
        if !(1..=3650).contains(&self.nps.interval_days) {
            return Err(AppError::field(
                "nps.intervalDays",
                "must be between 1 and 3650",
            ));
        }
        need("nps.question", &self.nps.question, 500)?;
        Ok(())
    }

    pub fn search_faq(&self, query: &str) -> Vec<&FaqEntry> {
        let words: Vec<String> = query.split_whitespace().map(|w| w.to_lowercase()).collect();
        self.faq
            .iter()
            .filter(|f| {
                let text =
                    format!("{} {} {}", f.question, f.answer, f.tags.join(" ")).to_lowercase();
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .collect()
    }
}

pub async fn load(db: &Db) -> AppResult<SupportContent> {
    let row = db
        .optional(
            &db.pool,
            sqlx::query("SELECT document FROM support_content WHERE id = 1"),
        )
        .await?;
    match row {
        Some(row) => {
            let text: String = row.get("document");
            serde_json::from_str(&text).map_err(|e| AppError::Internal(e.into()))
        }
        None => Ok(SupportContent::default()),
    }
}

/// Stores a new revision. An older revision is refused (409) so a stale
/// publisher cannot roll content back; the same revision is accepted again
/// only with the same content (idempotent re-publish).
pub async fn publish(db: &Db, content: &SupportContent) -> AppResult<bool> {
    content.validate()?;
    let document = serde_json::to_string(content).map_err(|e| AppError::Internal(e.into()))?;
    let mut tx = db.pool.begin().await?;
    let current = db
        .optional(
            &mut *tx,
            sqlx::query("SELECT revision, document FROM support_content WHERE id = 1"),
        )
        .await?;
    if let Some(row) = &current {
        let revision: i64 = row.get("revision");
        let stored: String = row.get("document");
        if revision > content.revision {
            return Err(AppError::Conflict(format!(
                "revision {} is older than the published revision {revision}",
                content.revision
            )));
        }
        if revision == content.revision {
            if stored == document {
                return Ok(false);
            }
            return Err(AppError::Conflict(format!(
                "revision {revision} is already published with different content; increase revision"
            )));
        }
    }
    db.exec(
        &mut *tx,
        sqlx::query("DELETE FROM support_content WHERE id = 1"),
    )
    .await?;
    db.exec(
        &mut *tx,
        sqlx::query(
            "INSERT INTO support_content (id, revision, document, updated_at) VALUES (1, $1, $2, $3)",
        )
        .bind(content.revision)
        .bind(document)
        .bind(now_ms()),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faq_search_matches_all_words_in_question_answer_or_tags() {
        let content = SupportContent::default();
        assert_eq!(content.search_faq("").len(), content.faq.len());
        assert_eq!(content.search_faq("PHOTO record").len(), 1);
        assert_eq!(content.search_faq("account").len(), 1);
        assert!(content.search_faq("tractor").is_empty());
    }

    #[test]
    fn defaults_are_valid_once_given_a_revision() {
        let mut content = SupportContent::default();
        assert!(content.validate().is_err());
        content.revision = 1;
        content.validate().unwrap();
    }
}
