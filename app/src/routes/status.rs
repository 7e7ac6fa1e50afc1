//! Public status page, and the same data in Statuspage's `summary.json` shape.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::{Value, json};

use crate::auth::Ctx;
use crate::db::ms_to_rfc3339;
use crate::error::AppResult;
use crate::incidents::{self, Incident};
use crate::state::AppState;
use crate::views::when;
use crate::web::render;

pub async fn page(State(state): State<AppState>, ctx: Ctx) -> AppResult<Response> {
    let all = incidents::list(&state.db, false, 50).await?;
    let (open, past): (Vec<&Incident>, Vec<&Incident>) =
        all.iter().partition(|i| i.resolved_at.is_none());
    let body = html! {
        @if open.is_empty() { p.notice #all-ok { "All systems operational." } }
        @for i in &open { (incident_card(i)) }
        h2 { "Past incidents" }
        @if past.is_empty() { p.muted { "No incidents reported." } }
        @for i in &past { (incident_card(i)) }
    };
    Ok(render(&state, &ctx, "Service status", body)
        .await
        .into_response())
}

fn incident_card(i: &Incident) -> maud::Markup {
    html! {
        article.card {
            h3 { (i.name) }
            p.muted { "Impact: " (i.impact) " · Status: " (i.status) " · Started " (when(i.created_at)) }
            ul { @for u in &i.updates { li { strong { (u.status) } " — " (u.body) " " span.muted { "(" (when(u.created_at)) ")" } } } }
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
