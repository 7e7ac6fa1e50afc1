//! Page layout shared by every HTML page: navigation, incident banner,
//! maintenance notice, and the help button fixed at the bottom-right.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::auth::{Ctx, Role};
use crate::i18n::Lang;

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
    let lang = chrome.ctx.lang;
    let t = lang.t();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) (t.site_suffix) }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    a.brand href="/" { "fieldbook" }
                    nav aria-label=(t.nav_main) {
                        @if let Some(u) = user {
                            a href="/records" { (t.nav_records) }
                            a href="/fields" { (t.nav_fields) }
                            a href="/support" { (t.nav_support) }
                            @if u.role >= Role::Operator { a href="/admin" { (t.nav_admin) } }
                            form.inline #signout method="post" action="/logout" {
                                (csrf_field(chrome.ctx))
                                button.link type="submit" { (t.sign_out) }
                            }
                        } @else {
                            a #signin href="/login" { (t.sign_in) }
                            a href="/signup" { (t.create_account) }
                        }
                        a href="/status" { (t.nav_status) }
                    }
                    (lang_switch(chrome.ctx))
                }
                @for (name, status) in chrome.incidents {
                    div.banner role="status" id="incident-banner" {
                        strong { (t.service_notice) } (name) " — " (lang.state_word(status)) " "
                        a href="/status" { (t.status_details) }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
                footer.foot { a href="/help" { (t.nav_help) } " · " a href="/support" { (t.nav_support) } " · " a href="/status" { (t.nav_status) } }
                (help_widget(lang))
                script src="/static/app.js" defer {}
            }
        }
    }
}

/// Links to `/lang`, which sets the `lang` cookie and returns to this page.
/// The current language is shown as text, not as a link.
fn lang_switch(ctx: &Ctx) -> Markup {
    html! {
        nav #lang-switch .lang-switch aria-label=(ctx.lang.t().language) {
            @for (i, lang) in Lang::ALL.iter().enumerate() {
                @if i > 0 { " / " }
                @if *lang == ctx.lang {
                    strong lang=(lang.code()) aria-current="true" { (lang.native_name()) }
                } @else {
                    a lang=(lang.code()) hreflang=(lang.code()) data-lang=(lang.code())
                        href={ "/lang?set=" (lang.code()) "&next=" (url_component(&ctx.here)) } { (lang.native_name()) }
                }
            }
        }
    }
}

fn url_component(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// The help button and its panel. Without JavaScript the button is a plain
/// link to /help; with it, it opens the panel with live FAQ search.
fn help_widget(lang: Lang) -> Markup {
    let t = lang.t();
    html! {
        a #help-button .help-button href="/help" aria-controls="help-panel" aria-expanded="false" {
            span aria-hidden="true" { "?" } (t.help_button)
        }
        div #help-panel .help-panel role="dialog" aria-label=(t.help_panel) hidden {
            form method="get" action="/help" role="search" {
                label for="help-q" { (t.faq_search_label) }
                input #help-q type="search" name="q" autocomplete="off";
            }
            ul #help-results aria-live="polite" data-empty=(t.faq_panel_empty) {}
            p {
                a href="/help#guides" { (t.guides) } " · "
                a href="/help#troubleshooting" { (t.troubleshooting) } " · "
                a href="/support" { (t.contact_support) }
            }
        }
    }
}

pub fn pager(lang: Lang, base: &str, page: i64, has_next: bool) -> Markup {
    let t = lang.t();
    let sep = if base.contains('?') { '&' } else { '?' };
    html! {
        nav.pager aria-label=(t.pager) {
            @if page > 1 { a href={(base) (sep) "page=" (page - 1)} rel="prev" { (t.newer) } }
            span { (lang.page_n(page)) }
            @if has_next { a href={(base) (sep) "page=" (page + 1)} rel="next" { (t.older) } }
        }
    }
}

/// A time for staff pages (English).
pub fn when(ms: i64) -> String {
    Lang::En.when(ms)
}

pub fn error_body(lang: Lang, message: &str) -> Markup {
    html! { p.error role="alert" { (message) } p { a href="javascript:history.back()" { (lang.t().go_back) } } }
}

pub fn raw(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}
