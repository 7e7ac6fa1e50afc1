//! Parsing an `openAPIV3Schema` into a tree of [`Node`]s, once per CRD version.
//!
//! Everything that can be prepared ahead of time is prepared here: regexes are built, CEL rules
//! are compiled with kube-cel, and malformed schemas are reported instead of being half-used.

use kube_cel::{CompilationResult, compile_schema};
use regex::Regex;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// How a list's entries relate to each other (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// What an object allows beside its declared `properties`.
#[derive(Debug, Default)]
pub(crate) enum Additional {
    /// Absent or `false`: undeclared fields are pruned.
    #[default]
    None,
    /// `true`: any value under any key.
    Any,
    /// A schema every undeclared value must satisfy (a map).
    Schema(Box<Node>),
}

/// One compiled `x-kubernetes-validations` entry.
#[derive(Debug)]
pub(crate) struct Rule {
    pub compiled: CompilationResult,
}

/// One schema node with everything validation needs, pre-parsed.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub type_name: Option<String>,
    pub nullable: bool,
    pub required: Vec<String>,
    pub properties: BTreeMap<String, Node>,
    pub additional: Additional,
    pub items: Option<Box<Node>>,
    pub preserve_unknown: bool,
    pub int_or_string: bool,
    pub embedded: bool,
    pub enum_values: Option<Vec<Value>>,
    pub format: Option<String>,
    pub pattern: Option<(String, Regex)>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub exclusive_minimum: bool,
    pub exclusive_maximum: bool,
    pub multiple_of: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_properties: Option<u64>,
    pub max_properties: Option<u64>,
    pub unique_items: bool,
    pub list_type: Option<ListType>,
    pub all_of: Vec<Node>,
    pub any_of: Vec<Node>,
    pub one_of: Vec<Node>,
    pub not: Option<Box<Node>>,
    pub default: Option<Value>,
    pub rules: Vec<Rule>,
}

impl Node {
    /// Whether this object is a map, whose keys are data rather than field names.
    pub(crate) fn is_map(&self) -> bool {
        !matches!(self.additional, Additional::None)
    }

    /// The schema type as CEL errors report it (`"object"`, `"string"`, or `""` when untyped).
    pub(crate) fn type_label(&self) -> &str {
        self.type_name.as_deref().unwrap_or("")
    }

    /// The schema of the value under `key` in an object, declared or via `additionalProperties`.
    pub(crate) fn child(&self, key: &str) -> Option<&Node> {
        self.properties.get(key).or(match &self.additional {
            Additional::Schema(node) => Some(node),
            _ => None,
        })
    }
}

const SUPPORTED_TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean"];

/// Compiles a schema node; problems are pushed to `problems` prefixed with the schema path.
pub(crate) fn compile(schema: &Value, at: &str, problems: &mut Vec<String>) -> Node {
    let Some(obj) = schema.as_object() else {
        problems.push(format!("{at}: a schema must be an object"));
        return Node::default();
    };
    let mut node = Node {
        nullable: flag(obj, "nullable"),
        preserve_unknown: flag(obj, "x-kubernetes-preserve-unknown-fields"),
        int_or_string: flag(obj, "x-kubernetes-int-or-string"),
        embedded: flag(obj, "x-kubernetes-embedded-resource"),
        exclusive_minimum: flag(obj, "exclusiveMinimum"),
        exclusive_maximum: flag(obj, "exclusiveMaximum"),
        unique_items: flag(obj, "uniqueItems"),
        default: obj.get("default").cloned(),
        enum_values: obj.get("enum").and_then(Value::as_array).cloned(),
        format: obj
            .get("format")
            .and_then(Value::as_str)
            .map(str::to_string),
        minimum: number(obj, "minimum", at, problems),
        maximum: number(obj, "maximum", at, problems),
        multiple_of: number(obj, "multipleOf", at, problems),
        min_length: count(obj, "minLength", at, problems),
        max_length: count(obj, "maxLength", at, problems),
        min_items: count(obj, "minItems", at, problems),
        max_items: count(obj, "maxItems", at, problems),
        min_properties: count(obj, "minProperties", at, problems),
        max_properties: count(obj, "maxProperties", at, problems),
        ..Node::default()
    };

    match obj.get("type") {
        None => {}
        Some(Value::String(t)) if SUPPORTED_TYPES.contains(&t.as_str()) => {
            node.type_name = Some(t.clone())
        }
        Some(other) => problems.push(format!("{at}.type: unsupported type {other}")),
    }
    if let Some(required) = obj.get("required") {
        match required.as_array() {
            Some(names) => {
                node.required = names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }
            None => problems.push(format!("{at}.required: must be a list of field names")),
        }
    }
    if let Some(pattern) = obj.get("pattern").and_then(Value::as_str) {
        match Regex::new(&crate::pattern::ascii_classes(pattern)) {
            Ok(re) => node.pattern = Some((pattern.to_string(), re)),
            Err(e) => problems.push(format!("{at}.pattern: cannot compile {pattern:?}: {e}")),
        }
    }
    if let Some(props) = obj.get("properties") {
        match props.as_object() {
            Some(props) => {
                for (name, sub) in props {
                    let child = compile(sub, &format!("{at}.properties[{name}]"), problems);
                    node.properties.insert(name.clone(), child);
                }
            }
            None => problems.push(format!("{at}.properties: must be an object")),
        }
    }
    node.additional = match obj.get("additionalProperties") {
        None | Some(Value::Bool(false)) => Additional::None,
        Some(Value::Bool(true)) => Additional::Any,
        Some(sub) => Additional::Schema(Box::new(compile(
            sub,
            &format!("{at}.additionalProperties"),
            problems,
        ))),
    };
    if let Some(items) = obj.get("items") {
        node.items = Some(Box::new(compile(items, &format!("{at}.items"), problems)));
    }
    node.list_type = match obj.get("x-kubernetes-list-type").and_then(Value::as_str) {
        None => None,
        Some("atomic") => Some(ListType::Atomic),
        Some("set") => Some(ListType::Set),
        Some("map") => {
            let keys: Vec<String> = obj
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                problems.push(format!(
                    "{at}.x-kubernetes-list-map-keys: required when x-kubernetes-list-type is map"
                ));
            }
            Some(ListType::Map(keys))
        }
        Some(other) => {
            problems.push(format!(
                "{at}.x-kubernetes-list-type: unsupported value {other:?}"
            ));
            None
        }
    };
    node.all_of = branches(obj, "allOf", at, problems);
    node.any_of = branches(obj, "anyOf", at, problems);
    node.one_of = branches(obj, "oneOf", at, problems);
    if let Some(not) = obj.get("not") {
        node.not = Some(Box::new(compile(not, &format!("{at}.not"), problems)));
    }
    let branch_has_rules = node
        .all_of
        .iter()
        .chain(&node.any_of)
        .chain(&node.one_of)
        .chain(node.not.as_deref())
        .any(has_rules);
    if branch_has_rules {
        // The apiserver refuses such a CRD; evaluating the rules would guess at semantics.
        problems.push(format!(
            "{at}: x-kubernetes-validations is not allowed inside allOf, anyOf, oneOf or not"
        ));
    }
    node.rules = compile_rules(obj, at, problems);
    crate::schema_check::check_default(&node, at, problems);
    node
}

fn flag(obj: &Map<String, Value>, key: &str) -> bool {
    obj.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn number(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Option<f64> {
    let value = obj.get(key)?;
    let parsed = value.as_f64();
    if parsed.is_none() {
        problems.push(format!("{at}.{key}: must be a number, got {value}"));
    }
    parsed
}

fn count(obj: &Map<String, Value>, key: &str, at: &str, problems: &mut Vec<String>) -> Option<u64> {
    let value = obj.get(key)?;
    let parsed = value.as_u64();
    if parsed.is_none() {
        problems.push(format!(
            "{at}.{key}: must be a non-negative integer, got {value}"
        ));
    }
    parsed
}

fn branches(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
    problems: &mut Vec<String>,
) -> Vec<Node> {
    match obj.get(key) {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, sub)| compile(sub, &format!("{at}.{key}[{i}]"), problems))
            .collect(),
        Some(_) => {
            problems.push(format!("{at}.{key}: must be a list of schemas"));
            Vec::new()
        }
    }
}

/// Compiles this node's `x-kubernetes-validations` with kube-cel. Only the rules of this node are
/// handed over, so kube-cel's own tree walk is not used: this crate walks the object itself to
/// correlate old and new values the way the apiserver does.
fn compile_rules(obj: &Map<String, Value>, at: &str, problems: &mut Vec<String>) -> Vec<Rule> {
    let Some(rules) = obj.get("x-kubernetes-validations") else {
        return Vec::new();
    };
    if !rules.is_array() {
        problems.push(format!(
            "{at}.x-kubernetes-validations: must be a list of rules"
        ));
        return Vec::new();
    }
    let compiled = compile_schema(&json!({ "x-kubernetes-validations": rules }));
    let mut out = Vec::new();
    for (i, result) in compiled.validations.into_iter().enumerate() {
        match result {
            Ok(compiled) => out.push(Rule { compiled }),
            Err(e) => problems.push(format!("{at}.x-kubernetes-validations[{i}]: {e}")),
        }
    }
    out
}

/// Whether any node in the tree carries CEL rules.
pub(crate) fn has_rules(node: &Node) -> bool {
    !node.rules.is_empty()
        || node.properties.values().any(has_rules)
        || node.items.as_deref().is_some_and(has_rules)
        || matches!(&node.additional, Additional::Schema(s) if has_rules(s))
}
