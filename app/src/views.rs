//! Page layout shared by every HTML page: navigation, incident banner,
//! maintenance notice, and the help button fixed at the bottom-right.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::auth::{Ctx, Role};

/// What the layout needs besides the page body.
pub struct Chrome<'a> {
    pub ctx: &'a Ctx,
    /// (name, status) of open incidents.
    pub incidents: &'a [(String, String)],
}

pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

pub fn page(chrome: &Chrome<'_>, title: &str, body: Markup) -> Markup {
    let user = chrome.ctx.user.as_ref();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · fieldbook" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "fieldbook" }
                    nav aria-label="Main" {
                        @if let Some(u) = user {
                            a href="/records" { "Records" }
                            a href="/fields" { "Fields & crops" }
                            a href="/support" { "Support" }
                            @if u.role >= Role::Operator { a href="/admin" { "Admin" } }
                            form.inline method="post" action="/logout" {
                                (csrf_field(chrome.ctx))
                                button.link type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/login" { "Sign in" }
                            a href="/signup" { "Create account" }
                        }
                        a href="/status" { "Status" }
                    }
                }
                @for (name, status) in chrome.incidents {
                    div.banner role="status" id="incident-banner" {
                        strong { "Service notice: " } (name) " — " (status) ". "
                        a href="/status" { "Details on the status page" }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                footer.foot { a href="/help" { "Help" } " · " a href="/support" { "Support" } " · " a href="/status" { "Status" } }
                (help_widget())
                script src="/static/app.js" defer {}
            }
        }
    }
}

/// The help button and its panel. Without JavaScript the button is a plain
/// link to /help; with it, it opens the panel with live FAQ search.
fn help_widget() -> Markup {
    html! {
        a #help-button .help-button href="/help" aria-controls="help-panel" aria-expanded="false" {
            span aria-hidden="true" { "?" } " Help"
        }
        div #help-panel .help-panel role="dialog" aria-label="Help" hidden {
            form method="get" action="/help" role="search" {
                label for="help-q" { "Search the FAQ" }
                input #help-q type="search" name="q" autocomplete="off";
            }
            ul #help-results aria-live="polite" {}
            p {
                a href="/help#guides" { "Guides" } " · "
                a href="/help#troubleshooting" { "Troubleshooting" } " · "
                a href="/support" { "Contact support" }
            }
        }
    }
}

pub fn pager(base: &str, page: i64, has_next: bool) -> Markup {
    let sep = if base.contains('?') { '&' } else { '?' };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href={(base) (sep) "page=" (page - 1)} rel="prev" { "← Newer" } }
            span { "Page " (page) }
            @if has_next { a href={(base) (sep) "page=" (page + 1)} rel="next" { "Older →" } }
        }
    }
}

pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub fn error_body(message: &str) -> Markup {
    html! { p.error role="alert" { (message) } p { a href="javascript:history.back()" { "Go back" } } }
}

pub fn raw(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}
