//! Keeping secrets out of text: a webhook URL's path and query are its credential (Slack,
//! Teams), so any URL in a message is cut to `scheme://host[:port]`, and known secrets (the
//! URL's path, an SMTP password) are masked wherever they appear, even inside text a library
//! or a peer produced.

/// The `scheme://host[:port]` of `url`, or `"<invalid URL>"`; never its path, query or user info.
pub fn url_origin(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.host()) {
            (Some(scheme), Some(host)) => match uri.port_u16() {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            },
            _ => "<invalid URL>".to_string(),
        },
        Err(_) => "<invalid URL>".to_string(),
    }
}

/// `text` with every URL cut to its origin and every non-empty `secret` masked.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = cut_urls(text);
    for secret in secrets.iter().filter(|s| s.len() >= 2) {
        if out.contains(secret) {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// Replaces `scheme://authority/path?query` with `scheme://host[:port]` wherever "://" occurs.
fn cut_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The scheme: the letters right before "://".
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..scheme_start]);
        let scheme = &rest[scheme_start..at];
        let after = &rest[at + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '>' | '<' | ')' | '`'))
            .unwrap_or(after.len());
        let url_rest = &after[..end];
        let authority_end = url_rest.find(['/', '?', '#']).unwrap_or(url_rest.len());
        let authority = &url_rest[..authority_end];
        // Drop any user info.
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        out.push_str(scheme);
        out.push_str("://");
        out.push_str(host);
        if authority_end < url_rest.len() {
            out.push_str("/…");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Text safe for a single header line: control characters (CR, LF, tab …) become spaces.
pub fn one_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out.truncate(out.trim_end().len());
    out
}

/// At most `max` characters of `text`, ending in "…" when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_only_their_origin() {
        let text = "error sending request for url (https://hooks.slack.com/services/T0/B0/XXSECRET?x=1): boom";
        let red = redact(text, &[]);
        assert_eq!(
            red,
            "error sending request for url (https://hooks.slack.com/…): boom"
        );
        assert_eq!(
            redact("see http://user:pw@127.0.0.1:8080/a/b now", &[]),
            "see http://127.0.0.1:8080/… now"
        );
        assert_eq!(redact("no url here", &[]), "no url here");
    }

    #[test]
    fn known_secrets_are_masked() {
        assert_eq!(
            redact("535 bad password hunter2 for x", &["hunter2", ""]),
            "535 bad password *** for x"
        );
    }

    #[test]
    fn origin_of_urls() {
        assert_eq!(
            url_origin("https://hooks.slack.com/services/T/B/C"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            url_origin("http://127.0.0.1:9000/x?y"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(url_origin("not a url"), "<invalid URL>");
    }

    #[test]
    fn header_text_is_one_line() {
        assert_eq!(one_line("a\r\nBcc: x@y\t"), "a  Bcc: x@y");
        assert_eq!(truncate_chars("日本語テキスト", 4), "日本語…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }
}
