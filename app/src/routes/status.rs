//! Public status page, and the same data in Statuspage's `summary.json` shape.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::{Value, json};

use crate::auth::Ctx;
use crate::db::ms_to_rfc3339;
use crate::error::AppResult;
use crate::i18n::Lang;
use crate::incidents::{self, Incident};
use crate::state::AppState;
use crate::web::render;

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let all = incidents::list(&state.db, false, 50).await?;
    let (open, past): (Vec<&Incident>, Vec<&Incident>) =
        all.iter().partition(|i| i.resolved_at.is_none());
    let lang = ctx.lang;
    let t = lang.t();
    let body = html! {
        @if open.is_empty() { p.notice #all-ok { (t.all_ok) } }
        @for i in &open { (incident_card(lang, i)) }
        h2 { (t.past_incidents) }
        @if past.is_empty() { p.muted { (t.no_incidents) } }
        @for i in &past { (incident_card(lang, i)) }
    };
    Ok(render(&state, &ctx, t.status_title, body)
        .await
        .into_response())
}

fn incident_card(lang: Lang, i: &Incident) -> maud::Markup {
    let t = lang.t();
    html! {
        article.card id={"incident-" (i.id)} {
            h3 { (i.name) }
            p.muted { (t.impact) (lang.state_word(&i.impact)) (t.incident_status) (lang.state_word(&i.status)) (t.started) (lang.when(i.created_at)) }
            ul { @for u in &i.updates { li { strong { (lang.state_word(&u.status)) } " — " (u.body) " " span.muted { "(" (lang.when(u.created_at)) ")" } } } }
        }
    }
}

fn indicator(open: &[Incident]) -> (&'static str, &'static str) {
    let worst = open
        .iter()
        .map(|i| {
            incidents::IMPACTS
                .iter()
                .position(|x| *x == i.impact)
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    match worst {
        0 if open.is_empty() => ("none", "All Systems Operational"),
        0 | 1 => ("minor", "Minor Service Outage"),
        2 => ("major", "Partial System Outage"),
        _ => ("critical", "Major System Outage"),
    }
}

fn incident_json(i: &Incident) -> Value {
    json!({
        "id": i.id.to_string(),
        "name": i.name,
        "status": i.status,
        "impact": i.impact,
        "created_at": ms_to_rfc3339(i.created_at),
        "updated_at": ms_to_rfc3339(i.updated_at),
        "started_at": ms_to_rfc3339(i.created_at),
        "monitoring_at": null,
        "resolved_at": i.resolved_at.map(ms_to_rfc3339),
        "shortlink": format!("/status#incident-{}", i.id),
        "page_id": "fieldbook",
        "incident_updates": i.updates.iter().map(|u| json!({
            "id": u.id.to_string(),
            "incident_id": i.id.to_string(),
            "status": u.status,
            "body": u.body,
            "created_at": ms_to_rfc3339(u.created_at),
            "updated_at": ms_to_rfc3339(u.created_at),
            "display_at": ms_to_rfc3339(u.created_at),
        })).collect::<Vec<_>>(),
    })
}

pub async fn summary(State(state): State<AppState>) -> AppResult<Json<Value>> {
    let open = incidents::list(&state.db, true, 50).await?;
    let (indicator, description) = indicator(&open);
    let updated = open
        .iter()
        .map(|i| i.updated_at)
        .max()
        .unwrap_or_else(crate::db::now_ms);
    Ok(Json(json!({
        "page": {
            "id": "fieldbook",
            "name": "fieldbook",
            "url": "/status",
            "time_zone": "Etc/UTC",
            "updated_at": ms_to_rfc3339(updated),
        },
        "status": { "indicator": indicator, "description": description },
        "components": [],
        "incidents": open.iter().map(incident_json).collect::<Vec<_>>(),
        "scheduled_maintenances": [],
    })))
}
