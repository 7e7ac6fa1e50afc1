//! `x-kubernetes-validations`: evaluating the CEL rules compiled by kube-cel against an object,
//! and, on update, against the old object for transition rules (`oldSelf`).
//!
//! The walk is ours rather than kube-cel's because the apiserver's notion of "the old value of
//! this node" matters: object fields correlate by name, list-map entries by their keys, and
//! entries of sets and atomic lists have no old value at all (so transition rules under them do
//! not run). How values are typed for CEL is in `cel_value`.

use crate::cause::{Cause, CauseReason, path, sorted};
use crate::cel_value::to_cel;
use crate::lists;
use crate::node::{Additional, Node, Rule};
use kube_cel::KubeCelExt;
use kube_cel::cel::objects::OptionalValue;
use kube_cel::cel::{Context, ExecutionError, Value as CelValue};
use serde_json::Value;
use std::sync::Arc;

/// How a rule this build cannot evaluate is reported.
const UNSUPPORTED: &str = "rule cannot be evaluated by this validator";

thread_local! {
    /// Registering every Kubernetes CEL library takes a while; do it once per thread.
    static BASE_CONTEXT: Context<'static> = Context::default().with_all();
}

/// Evaluates every rule in the tree under `node` against `value` (and `old` on update).
pub(crate) fn evaluate(value: &Value, old: Option<&Value>, node: &Node, out: &mut Vec<Cause>) {
    BASE_CONTEXT.with(|base| walk(value, old, node, "", true, base, out));
}

fn walk(
    value: &Value,
    old: Option<&Value>,
    node: &Node,
    at: &str,
    is_root: bool,
    base: &Context,
    out: &mut Vec<Cause>,
) {
    if value.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    // Ratcheting: a rule that does not look at `oldSelf` judged this value already when it was
    // written, so on a value the update did not change its verdict is ignored, as the
    // apiserver ignores it — and not computed at all, which keeps status writes (where the
    // whole spec is unchanged) from re-running every spec rule.
    let unchanged = old == Some(value);
    let to_run: Vec<&Rule> = node
        .rules
        .iter()
        .filter(|rule| !unchanged || rule.compiled.is_transition_rule)
        .collect();
    if !to_run.is_empty() {
        let this = to_cel(value, node, is_root);
        let that = old.map(|o| to_cel(o, node, is_root));
        for rule in to_run {
            run_rule(rule, &this, that.as_ref(), node, at, base, out);
        }
    }
    match value {
        Value::Object(obj) => {
            let old_obj = old.and_then(Value::as_object);
            for (key, child) in sorted(obj) {
                let (schema, child_at) = if let Some(schema) = node.properties.get(key) {
                    (schema, path::child(at, key))
                } else if let Additional::Schema(schema) = &node.additional {
                    (schema.as_ref(), path::key(at, key))
                } else {
                    continue;
                };
                if is_root && key == "metadata" {
                    continue;
                }
                let old_child = old_obj.and_then(|o| o.get(key));
                walk(child, old_child, schema, &child_at, false, base, out);
            }
        }
        Value::Array(list) => {
            if let Some(items) = &node.items {
                let old_list = old.and_then(Value::as_array);
                for (i, item) in list.iter().enumerate() {
                    let old_item = old_list.and_then(|l| lists::counterpart(item, l, node));
                    walk(item, old_item, items, &path::index(at, i), false, base, out);
                }
            }
        }
        _ => {}
    }
}

fn run_rule(
    rule: &Rule,
    this: &CelValue,
    old: Option<&CelValue>,
    node: &Node,
    at: &str,
    base: &Context,
    out: &mut Vec<Cause>,
) {
    let compiled = &rule.compiled;
    let optional_old_self = compiled.rule.optional_old_self == Some(true);
    if compiled.is_transition_rule && old.is_none() && !optional_old_self {
        return;
    }
    let mut scope = base.new_inner_scope();
    scope.add_variable_from_value("self", this.clone());
    if optional_old_self {
        let wrapped = match old {
            Some(o) => OptionalValue::of(o.clone()),
            None => OptionalValue::none(),
        };
        scope.add_variable_from_value("oldSelf", CelValue::Opaque(Arc::new(wrapped)));
    } else if let Some(o) = old {
        scope.add_variable_from_value("oldSelf", o.clone());
    }

    let source = compiled.rule.rule.trim();
    // Runtime errors name the rule by its message when it has one, as the apiserver does.
    let rule_name = match compiled.rule.message.as_deref().map(str::trim) {
        Some(message) if !message.is_empty() => message,
        _ => source,
    };
    let type_label = Value::String(node.type_label().to_string());
    let invalid_here = |detail: String| {
        Cause::new(
            CauseReason::FieldValueInvalid,
            at,
            Some(&type_label),
            &detail,
        )
    };
    match compiled.program.execute(&scope) {
        Ok(CelValue::Bool(true)) => {}
        Ok(CelValue::Bool(false)) => {
            let message = failure_message(rule, &scope);
            let field = match compiled.rule.field_path.as_deref() {
                Some(relative) if !relative.is_empty() => join_field_path(at, relative),
                _ => at.to_string(),
            };
            out.push(cause_for_reason(
                compiled.rule.reason.as_deref(),
                &field,
                &type_label,
                &message,
            ));
        }
        Ok(other) => out.push(invalid_here(format!(
            "rule evaluated to {:?} instead of a boolean: {rule_name}",
            other.type_of()
        ))),
        // Fail closed: a rule this build cannot evaluate rejects the object rather than
        // letting it through unchecked.
        Err(ExecutionError::UndeclaredReference(name)) => out.push(invalid_here(format!(
            "{UNSUPPORTED} (it references '{name}', an unsupported CEL \
             function, macro or variable), so the object is refused: {rule_name}"
        ))),
        Err(e) => out.push(invalid_here(format!(
            "{} evaluating rule: {rule_name}",
            lower_first(&e.to_string())
        ))),
    }
}

/// CEL errors read as part of a sentence in kube (`no such key: x evaluating rule: ...`).
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The message for a failed rule: `messageExpression` when it yields a usable string, else
/// `message`, else `failed rule: <rule>`.
fn failure_message(rule: &Rule, scope: &Context) -> String {
    let compiled = &rule.compiled;
    if let Some(program) = &compiled.message_program
        && let Ok(CelValue::String(s)) = program.execute(scope)
        && !s.trim().is_empty()
        && !s.contains(['\n', '\r'])
    {
        return s.to_string();
    }
    match compiled.rule.message.as_deref() {
        Some(m) if !m.trim().is_empty() => m.to_string(),
        _ => format!("failed rule: {}", compiled.rule.rule.trim()),
    }
}

/// Maps a rule's `reason` to the field error the apiserver builds for it.
fn cause_for_reason(reason: Option<&str>, field: &str, type_label: &Value, message: &str) -> Cause {
    match reason {
        Some("FieldValueForbidden") => {
            Cause::bare(CauseReason::FieldValueForbidden, field, message)
        }
        Some("FieldValueRequired") => Cause::bare(CauseReason::FieldValueRequired, field, message),
        Some("FieldValueDuplicate") => Cause::new(
            CauseReason::FieldValueDuplicate,
            field,
            Some(type_label),
            "",
        ),
        _ => Cause::new(
            CauseReason::FieldValueInvalid,
            field,
            Some(type_label),
            message,
        ),
    }
}

/// Appends a rule's `fieldPath` (`.spec.replicas`, `.labels['app']`, `['a.b']`) to the node path.
fn join_field_path(at: &str, relative: &str) -> String {
    let mut out = at.to_string();
    let mut rest = relative.trim();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            out = path::child(&out, &after[..end]);
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let Some(end) = after.find("']") else { break };
            out = path::child(&out, &after[..end]);
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else { break };
            out = format!("{out}[{}]", &after[..end]);
            rest = &after[end + 1..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out = path::child(&out, &rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}
