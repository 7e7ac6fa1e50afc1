//! `allOf`/`anyOf`/`oneOf`/`not` value validations, worded as go-openapi words them.

use crate::cause::{Cause, CauseReason, go_quote};
use crate::node::Node;
use crate::structural::{self, Findings};
use serde_json::Value;

/// `allOf`/`anyOf`/`oneOf`/`not`: each branch validates the same value at the same path; the
/// branch errors that are reported follow go-openapi (all of `allOf`'s, the closest `anyOf` or
/// `oneOf` branch's when none matched).
pub(crate) fn validate(value: &Value, node: &Node, at: &str, found: &mut Findings) {
    let composite = |detail: String| {
        Cause::new(
            CauseReason::FieldValueInvalid,
            at,
            Some(&Value::from("")),
            &detail,
        )
    };
    if !node.all_of.is_empty() {
        let mut passed = 0;
        for branch in &node.all_of {
            let errors = branch_errors(value, branch, at);
            if errors.is_empty() {
                passed += 1;
            }
            found.schema.extend(errors);
        }
        if passed == 0 {
            found.schema.push(composite(format!(
                "{} must validate all the schemas (allOf). None validated",
                go_quote(at)
            )));
        } else if passed < node.all_of.len() {
            found.schema.push(composite(format!(
                "{} must validate all the schemas (allOf)",
                go_quote(at)
            )));
        }
    }
    if !node.any_of.is_empty() {
        let results: Vec<Vec<Cause>> = node
            .any_of
            .iter()
            .map(|b| branch_errors(value, b, at))
            .collect();
        if !results.iter().any(Vec::is_empty) {
            found.schema.push(composite(format!(
                "{} must validate at least one schema (anyOf)",
                go_quote(at)
            )));
            found.schema.extend(closest(results));
        }
    }
    if !node.one_of.is_empty() {
        let results: Vec<Vec<Cause>> = node
            .one_of
            .iter()
            .map(|b| branch_errors(value, b, at))
            .collect();
        let passed = results.iter().filter(|r| r.is_empty()).count();
        if passed == 0 {
            found.schema.push(composite(format!(
                "{} must validate one and only one schema (oneOf). Found none valid",
                go_quote(at)
            )));
            found.schema.extend(closest(results));
        } else if passed > 1 {
            found.schema.push(composite(format!(
                "{} must validate one and only one schema (oneOf). Found {passed} valid alternatives",
                go_quote(at)
            )));
        }
    }
    if let Some(not) = &node.not
        && branch_errors(value, not, at).is_empty()
    {
        found.schema.push(composite(format!(
            "{} must not validate the schema (not)",
            go_quote(at)
        )));
    }
}

fn branch_errors(value: &Value, branch: &Node, at: &str) -> Vec<Cause> {
    let mut found = Findings::default();
    // Values under allOf/anyOf/oneOf/not are not ratcheted: no old value is passed.
    structural::validate(value, None, branch, at, false, &mut found);
    found.into_causes()
}

/// The failing branch with the fewest errors, standing in for go-openapi's "best failure".
fn closest(results: Vec<Vec<Cause>>) -> Vec<Cause> {
    results.into_iter().min_by_key(Vec::len).unwrap_or_default()
}
