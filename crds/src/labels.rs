//! Labels and annotations tend puts on the objects it creates. They are API: users select on
//! them (`kubectl get rr -l tend.dev/drill-of=nightly`) and tend finds its children by them.

/// On a RestoreRequest a BackupPolicy created for a drill: the policy (see [`label_value`]).
pub const DRILL_OF: &str = "tend.dev/drill-of";
/// On a RestoreRequest an AlertRule created as remediation: the rule (see [`label_value`]).
pub const REMEDIATION_OF: &str = "tend.dev/remediation-of";
/// On a remediation RestoreRequest: when the firing that created it began (RFC 3339).
pub const FIRING_SINCE: &str = "tend.dev/firing-since";
/// On a BackupPolicy: a new value requests a backup now.
pub const BACKUP_NOW: &str = "tend.dev/backup-now";

/// Longest label value the API server accepts.
pub const LABEL_VALUE_MAX: usize = 63;

/// An object name as a label value. Names of up to 63 characters are used as they are (object
/// names are valid label values); longer ones — a name may have up to 253 — become their first
/// 46 characters, `-`, and 16 hex digits of a hash of the whole name, so two long names that
/// share a prefix still differ. The value is stable across releases: selectors depend on it.
pub fn label_value(name: &str) -> String {
    if name.len() <= LABEL_VALUE_MAX {
        return name.to_string();
    }
    let mut prefix: String = name.chars().take(46).collect();
    while prefix.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        prefix.pop();
    }
    format!("{prefix}-{:016x}", fnv1a(name.as_bytes()))
}

/// FNV-1a, 64 bits: small, stable, and enough to tell names apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_label_values_as_they_are() {
        assert_eq!(label_value("nightly"), "nightly");
        let exact = "a".repeat(63);
        assert_eq!(label_value(&exact), exact);
    }

    #[test]
    fn long_names_become_valid_distinct_label_values() {
        let a = format!("{}-a", "fieldbook-production-database".repeat(3));
        let b = format!("{}-b", "fieldbook-production-database".repeat(3));
        let (va, vb) = (label_value(&a), label_value(&b));
        assert_ne!(va, vb);
        for v in [&va, &vb] {
            assert!(v.len() <= LABEL_VALUE_MAX, "{v}");
            assert!(v.starts_with(|c: char| c.is_ascii_alphanumeric()));
            assert!(v.ends_with(|c: char| c.is_ascii_alphanumeric()));
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{v}"
            );
        }
        assert_eq!(label_value(&a), va, "stable");
    }
}
