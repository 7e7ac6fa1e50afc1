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
    let t = ctx.lang.t();
    let body = html! {
        form.card method="get" action="/help" role="search" {
            label for="faq-q" { (t.faq_search_label) }
            input #faq-q type="search" name="q" value=(q);
            button type="submit" { (t.search) }
        }
        section #faq {
            h2 { (t.faq_title) }
            @if hits.is_empty() { p { (t.faq_no_match) a href="/support" { (t.ask_support) } (t.sentence_end) } }
            @for f in &hits { details.card { summary { (f.question) } p { (f.answer) } } }
        }
        section #guides {
            h2 { (t.guides) }
            @for g in &content.guides { article.card { h3 { (g.title) } p { (g.body) } } }
        }
        section #troubleshooting {
            h2 { (t.troubleshooting) }
            @for t in &content.troubleshooting { article.card { h3 { (t.title) } p { (t.body) } } }
        }
        p { (t.still_stuck) a href="/support" { (t.contact_support) } (t.sentence_end) }
    };
    Ok(render(&state, &ctx, t.help_title, body)
        .await
        .into_response())
}

pub async fn faq_json(
    State(state): State<AppState>,
    Query(query): Query<HelpQuery>,
) -> AppResult<Json<Vec<FaqEntry>>> {
    let content = support::load(&state.db).await?;
    let q: String = query.q.chars().take(200).collect();
    Ok(Json(content.search_faq(&q).into_iter().cloned().collect()))
}
