//! `pattern` regexes: Go's RE2 semantics on top of the `regex` crate.

/// Rewrites the Perl classes `\d`, `\w`, `\s` (and their negations outside brackets) to the
/// ASCII sets Go's RE2 gives them; the `regex` crate would otherwise match Unicode digits,
/// letters and spaces that the apiserver refuses.
pub(crate) fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    out.push(c);
                    break;
                };
                let set = match escaped {
                    'd' | 'D' => "0-9",
                    'w' | 'W' => "0-9A-Za-z_",
                    's' | 'S' => "\\t\\n\\x0C\\r ",
                    _ => "",
                };
                let negated = escaped.is_ascii_uppercase();
                match (set.is_empty(), in_class, negated) {
                    (true, _, _) | (false, true, true) => {
                        out.push(c);
                        out.push(escaped);
                    }
                    (false, true, false) => out.push_str(set),
                    (false, false, false) => out.push_str(&format!("[{set}]")),
                    (false, false, true) => out.push_str(&format!("[^{set}]")),
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal, not the end of the class.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ascii_classes;

    #[test]
    fn perl_classes_become_ascii_sets_like_go() {
        assert_eq!(ascii_classes(r"^\d+$"), r"^[0-9]+$");
        assert_eq!(
            ascii_classes(r"[\w.-]+\S"),
            r"[0-9A-Za-z_.-]+[^\t\n\x0C\r ]"
        );
        assert_eq!(ascii_classes(r"[]\d]"), r"[]0-9]");
        assert_eq!(ascii_classes(r"\.\D"), r"\.[^0-9]");
        assert!(
            !regex::Regex::new(&ascii_classes(r"^\d+$"))
                .unwrap()
                .is_match("\u{663}")
        );
    }
}
