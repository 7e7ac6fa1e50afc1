//! Checks a CRD's own `default`s the way the apiserver checks them when the CRD is created: a
//! default must survive pruning unchanged and pass the structural validation of its schema.
//! Catching this at compile time lets the `crds` tests refuse a bad default offline.

use crate::node::Node;
use crate::prune;
use crate::structural::{self, Findings};

pub(crate) fn check_default(node: &Node, at: &str, problems: &mut Vec<String>) {
    let Some(default) = &node.default else { return };
    if default.is_null() && node.nullable {
        return;
    }
    let mut value = default.clone();
    let mut unknown = Vec::new();
    prune::prune(&mut value, node, "", false, &mut unknown);
    for field in unknown {
        problems.push(format!(
            "{at}.default: {field}: must not have fields the schema does not declare"
        ));
    }
    prune::apply_defaults(&mut value, node);
    let mut found = Findings::default();
    structural::validate(&value, None, node, "", false, &mut found);
    for cause in found.into_causes() {
        if cause.field == "<nil>" {
            problems.push(format!("{at}.default: {}", cause.message));
        } else {
            problems.push(format!("{at}.default: {}: {}", cause.field, cause.message));
        }
    }
}
