//! Checks for `x-kubernetes-embedded-resource` objects: like a top-level object they need an
//! `apiVersion` and a `kind`. Their `metadata` is kept but, as at the root, not validated here.

use crate::cause::{Cause, CauseReason, path};
use serde_json::{Map, Value};

pub(crate) fn check(obj: &Map<String, Value>, at: &str, out: &mut Vec<Cause>) {
    for field in ["apiVersion", "kind"] {
        if !obj.contains_key(field) {
            out.push(Cause::bare(
                CauseReason::FieldValueRequired,
                &path::child(at, field),
                "must not be empty",
            ));
        }
    }
    for (field, value) in obj {
        if field != "apiVersion" && field != "kind" {
            continue;
        }
        let at = path::child(at, field);
        let invalid =
            |detail: &str| Cause::new(CauseReason::FieldValueInvalid, &at, Some(value), detail);
        match value.as_str() {
            None => out.push(invalid("must be a string")),
            Some("") => out.push(invalid("must not be empty")),
            Some(api_version) if field == "apiVersion" && api_version.matches('/').count() > 1 => {
                out.push(invalid(&format!(
                    "unexpected GroupVersion string: {api_version}"
                )));
            }
            Some(kind) if field == "kind" && !is_kind(kind) => {
                out.push(invalid(
                    "may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case \
                     alphanumeric characters or '-', start with an alphabetic character, and end with an \
                     alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is \
                     '[a-z]([-a-z0-9]*[a-z0-9])?')",
                ));
            }
            Some(_) => {}
        }
    }
}

/// A kind, lower-cased, must be a DNS-1035 label.
fn is_kind(kind: &str) -> bool {
    let lower = kind.to_ascii_lowercase();
    lower.len() <= 63
        && lower.starts_with(|c: char| c.is_ascii_lowercase())
        && lower.ends_with(|c: char| c.is_ascii_alphanumeric())
        && lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
