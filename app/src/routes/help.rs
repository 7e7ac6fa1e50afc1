//! Help pages: FAQ search, guides, troubleshooting, and the JSON the help
//! button's panel searches.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use crate::auth::Ctx;
use crate::error::AppResult;
use crate::state::AppState;
use crate::support::{self, FaqEntry};
use crate::web::render;

#[derive(Deserialize, Default)]
pub struct HelpQuery {
    #[serde(default)]
    q: String,
}

pub async fn page(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(query): Query<HelpQuery>,
) -> AppResult<Response> {
    let content = support::load(&state.db).await?;
    let q: String = query.q.chars().take(200).collect();
    let hits = content.search_faq(&q);
    let body = html! {
        form.card method="get" action="/help" role="search" {
            label for="faq-q" { "Search the FAQ" }
            input #faq-q type="search" name="q" value=(q);
            button type="submit" { "Search" }
        }
        section #faq {
            h2 { "Frequently asked questions" }
            @if hits.is_empty() { p { "No answer matches. " a href="/support" { "Ask support" } "." } }
            @for f in &hits { details.card { summary { (f.question) } p { (f.answer) } } }
        }
        section #guides {
            h2 { "Guides" }
            @for g in &content.guides { article.card { h3 { (g.title) } p { (g.body) } } }
        }
        section #troubleshooting {
            h2 { "Troubleshooting" }
            @for t in &content.troubleshooting { article.card { h3 { (t.title) } p { (t.body) } } }
        }
        p { "Still stuck? " a href="/support" { "Contact support" } "." }
    };
    Ok(render(&state, &ctx, "Help", body).await.into_response())
}

pub async fn faq_json(
    State(state): State<AppState>,
    Query(query): Query<HelpQuery>,
) -> AppResult<Json<Vec<FaqEntry>>> {
    let content = support::load(&state.db).await?;
    let q: String = query.q.chars().take(200).collect();
    Ok(Json(content.search_faq(&q).into_iter().cloned().collect()))
}
