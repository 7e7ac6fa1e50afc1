//! Admission for custom resources: validate a Kubernetes object against one CRD version's
//! `openAPIV3Schema` the way kube-apiserver does, without an apiserver.
//!
//! Two callers need this: `devcluster`, our embedded API server, which must answer a bad object
//! with the same 422 `Status` (and the same field paths and wording) a real cluster gives, and the
//! `crds` tests, which check examples and a corpus of invalid objects offline.
//!
//! [`Schema::compile`] prepares a schema once (regexes, CEL programs compiled with kube-cel);
//! [`Schema::admit`] then runs the apiserver's pipeline on an object, in its order:
//!
//! 1. prune fields the schema does not declare (kept under `x-kubernetes-preserve-unknown-fields`,
//!    and `apiVersion`/`kind`/`metadata` at the root and in embedded resources);
//! 2. apply `default`s top-down, then drop nulls the schema neither allows nor defaults;
//! 3. structural validation (types, formats, bounds, enums, patterns, `required`, compositions),
//!    embedded-resource type meta, and list-type (`set`/`map`) invariants;
//! 4. `x-kubernetes-validations` CEL rules, including transition rules against the old object —
//!    but, as in the apiserver, only when step 3 found no blocking error (wrong type, missing
//!    required field, unsupported enum value, too long, too many); otherwise one extra cause says
//!    the rules were not checked.
//!
//! On update (`old` given), errors are ratcheted as the apiserver ratchets them: schema errors
//! inside a value equal to its old value (correlated by field name, map key or list-map key) are
//! dropped, and CEL rules that do not use `oldSelf` are not evaluated on such a value (so a
//! status write does not re-run the spec's rules); list-type, embedded-resource and
//! transition-rule errors always count.
//!
//! What this crate deliberately does not do:
//! - validate `metadata` (names, labels, annotations, ...): the apiserver validates object
//!   metadata itself, and so must whoever calls this; here it only has to be an object, and CEL
//!   rules see only its `name` and `generateName`. (A CRD may also restrict `metadata.name` and
//!   `metadata.generateName` in its schema, which the apiserver enforces; those restrictions are
//!   ignored here, so the caller's metadata validation must cover them if a CRD uses them.)
//! - enforce CEL cost limits (per-rule and per-request budgets) or type-check rules against the
//!   schema at compile time: rules only have to parse, and run to completion; a rule that fails
//!   at runtime refuses the object with the CEL error, as the apiserver does;
//! - report ratcheted errors as warnings: on update, errors in values the update left unchanged
//!   are dropped (validation ratcheting, on by default since Kubernetes 1.30), where the
//!   apiserver would turn some of them into response warnings;
//! - check the CRD itself against every structural-schema rule: a schema is compiled as given;
//!   only problems that would make validation wrong (bad CEL, bad regex, malformed keywords,
//!   rules inside `allOf`/`anyOf`/`oneOf`/`not`) and `default`s their own schema refuses are
//!   reported;
//! - reproduce go-openapi's choice of the "best" failing `anyOf`/`oneOf` branch exactly: the
//!   branch with the fewest errors is reported;
//! - match Go's regexp (RE2) in every corner: patterns run on the `regex` crate, the same
//!   syntax family; `\d`, `\w`, `\s` are rewritten to RE2's ASCII sets, but rarer differences
//!   (e.g. `\b` on non-ASCII text) remain.
//!
//! Messages follow the apiserver releases that print the bad value of a failed CEL rule as the
//! schema type (`spec: Invalid value: "object": ...`) and a nil value as `"null"`.
//!
//! A CEL rule that kube-cel cannot evaluate (an unsupported macro or function) fails closed: the
//! object is refused with a cause that says so, never silently admitted — except on a value an
//! update leaves unchanged, where the rule is ratcheted like any other.

#![forbid(unsafe_code)]

mod cause;
mod cel;
mod cel_value;
mod composition;
mod embedded;
mod formats;
mod lists;
mod node;
mod pattern;
mod prune;
mod schema_check;
mod structural;

pub use cause::{Cause, CauseReason, invalid_status, strict_decoding_status};

use serde_json::Value;

/// One CRD version's schema, compiled once and reused for every object; `Send + Sync`.
#[derive(Debug)]
pub struct Schema {
    root: node::Node,
    has_rules: bool,
}

/// What admission found: the causes to reject the object with (empty when it is valid) and the
/// paths of the unknown fields it pruned (`spec.foo`), which strict field validation reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Validation errors, in the order kube-apiserver reports them.
    pub causes: Vec<Cause>,
    /// Paths of fields removed because the schema does not declare them, sorted.
    pub unknown_fields: Vec<String>,
}

impl Outcome {
    /// Whether the object may be stored.
    pub fn is_valid(&self) -> bool {
        self.causes.is_empty()
    }

    /// The unknown fields as `FieldValueUnknown` causes, for requests with
    /// `fieldValidation=Strict`, worded as the apiserver's strict decoding error.
    pub fn unknown_field_causes(&self) -> Vec<Cause> {
        self.unknown_fields
            .iter()
            .map(|field| Cause {
                reason: CauseReason::FieldValueUnknown,
                field: field.clone(),
                message: format!("unknown field {}", cause::go_quote(field)),
            })
            .collect()
    }
}

const RULES_NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; \
                                 correct the existing errors to complete validation";

impl Schema {
    /// Compiles an `openAPIV3Schema`. Fails with one message per problem (a CEL rule or
    /// `messageExpression` that does not parse, a `pattern` that is not a valid regex, a keyword
    /// with the wrong shape, a `default` its own schema refuses), each prefixed with its place in
    /// the schema.
    pub fn compile(open_api_v3_schema: &Value) -> Result<Schema, Vec<String>> {
        let mut problems = Vec::new();
        let root = node::compile(open_api_v3_schema, "openAPIV3Schema", &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let has_rules = node::has_rules(&root);
        Ok(Schema { root, has_rules })
    }

    /// Applies `default`s in place, prunes unknown fields in place (except under
    /// `x-kubernetes-preserve-unknown-fields`), then validates structure and CEL. `old` is the
    /// stored object on update (`None` on create): it feeds `oldSelf` transition rules and
    /// validation ratcheting.
    pub fn admit(&self, object: &mut Value, old: Option<&Value>) -> Outcome {
        self.admit_after_metadata(object, old, Vec::new())
    }

    /// Like [`Schema::admit`], for a caller that has already validated `metadata` itself (as the
    /// apiserver does before the schema): its causes come first in the outcome and, like schema
    /// errors, a blocking one (e.g. `metadata.name: Required value`) keeps the CEL rules from
    /// running.
    pub fn admit_after_metadata(
        &self,
        object: &mut Value,
        old: Option<&Value>,
        metadata_causes: Vec<Cause>,
    ) -> Outcome {
        let mut outcome = Outcome {
            causes: metadata_causes,
            unknown_fields: Vec::new(),
        };
        self.mutate(object, &mut outcome.unknown_fields);
        outcome.unknown_fields.sort();
        // The stored object went through the same decoding when it was written; normalise it
        // again so that defaults added to the schema since then are part of the comparison.
        let old = old.map(|o| {
            let mut o = o.clone();
            self.mutate(&mut o, &mut Vec::new());
            o
        });
        let mut found = structural::Findings::default();
        structural::validate_root(object, old.as_ref(), &self.root, &mut found);
        outcome.causes.extend(found.into_causes());

        if self.has_rules {
            if outcome.causes.iter().any(|c| blocks_rules(c.reason)) {
                // Reported against the nil root path, like the apiserver's.
                let null = Value::Null;
                outcome.causes.push(Cause::new(
                    CauseReason::FieldValueInvalid,
                    "",
                    Some(&null),
                    RULES_NOT_CHECKED,
                ));
            } else {
                cel::evaluate(object, old.as_ref(), &self.root, &mut outcome.causes);
            }
        }
        outcome
    }

    fn mutate(&self, object: &mut Value, unknown_fields: &mut Vec<String>) {
        prune::prune(object, &self.root, "", true, unknown_fields);
        prune::apply_defaults(object, &self.root);
        prune::drop_disallowed_nulls(object, &self.root);
    }
}

/// Errors after which the apiserver does not run CEL rules: the object's shape is not what the
/// rules were written against.
fn blocks_rules(reason: CauseReason) -> bool {
    matches!(
        reason,
        CauseReason::FieldValueNotSupported
            | CauseReason::FieldValueRequired
            | CauseReason::FieldValueTooLong
            | CauseReason::FieldValueTooMany
            | CauseReason::FieldValueTypeInvalid
    )
}

#[cfg(test)]
mod thread_safety {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn schema_can_be_shared_between_threads() {
        assert_send_sync::<super::Schema>();
    }
}
