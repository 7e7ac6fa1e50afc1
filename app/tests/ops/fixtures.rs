//! Data the areas share: a support-content document.

use serde_json::json;

pub(crate) fn content(revision: i64, answer: &str) -> serde_json::Value {
    json!({
        "revision": revision,
        "faq": [{"question": "When is the best time to water?", "answer": answer, "tags": ["water"]}],
        "guides": [{"title": "Planting rice", "body": "Flood the paddy first."}],
        "troubleshooting": [{"title": "Cannot sign in", "body": "Check caps lock."}],
        "forms": {"inquiryCategories": ["Account", "Harvest"]},
        "autoReply": {"subject": "Thanks for writing", "body": "We answer within a day."},
        "nps": {"enabled": false, "intervalDays": 30, "question": "Would you recommend us?"}
    })
}
