//! The repository layout and the manifest, the commit point of a backup.
//!
//! ```text
//! <namespace>/<policy>/backups/<id>/database.<content>.zst.age
//! <namespace>/<policy>/backups/<id>/config.json.zst.age
//! <namespace>/<policy>/backups/<id>/manifest.json          written last
//! <namespace>/<policy>/blobs/sha256/<xx>/<sha256>           objects, age-encrypted, shared
//! ```
//! A backup is a restore point only once `manifest.json` exists; listing restore points reads
//! manifests and nothing else.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The manifest format this version writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
pub const MANIFEST_NAME: &str = "manifest.json";

/// Where one policy's backups live inside a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyLocation {
    pub namespace: String,
    pub policy: String,
}

impl PolicyLocation {
    pub fn new(namespace: impl Into<String>, policy: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            policy: policy.into(),
        }
    }

    /// `<namespace>/<policy>/`: everything of this policy, including pending uploads.
    pub fn root(&self) -> String {
        format!("{}/{}/", self.namespace, self.policy)
    }

    pub fn backups_prefix(&self) -> String {
        format!("{}backups/", self.root())
    }

    pub fn backup_prefix(&self, id: &str) -> String {
        format!("{}{id}/", self.backups_prefix())
    }

    pub fn part_key(&self, id: &str, name: &str) -> String {
        format!("{}{name}", self.backup_prefix(id))
    }

    pub fn manifest_key(&self, id: &str) -> String {
        self.part_key(id, MANIFEST_NAME)
    }

    pub fn blobs_prefix(&self) -> String {
        format!("{}blobs/sha256/", self.root())
    }

    /// `blobs/sha256/<first two hex digits>/<sha256>`: content-addressed by the plaintext.
    pub fn blob_key(&self, sha256: &str) -> String {
        format!("{}{}/{sha256}", self.blobs_prefix(), &sha256[..2])
    }

    /// The hash a blob key names, if `key` is one.
    pub fn blob_hash<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(&self.blobs_prefix())?;
        let (_, hash) = rest.split_once('/')?;
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
    }
}

/// Everything needed to verify and restore one backup. Stored as plain JSON (no secrets in it)
/// so restore points can be listed and checked without the decryption identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub namespace: String,
    pub policy: String,
    /// What started the run (`Schedule`, `Manual`, `Drill`), as the caller said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// Versions of the tools that wrote the data (`tend-backup`, `pg_dump`, server...).
    pub tools: BTreeMap<String, String>,
    /// age recipients (public keys) the parts and blobs are encrypted to.
    pub recipients: Vec<String>,
    /// Files under `backups/<id>/`, in the order they were written.
    pub parts: Vec<PartEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<ObjectsEntry>,
}

impl Manifest {
    /// Bytes this backup added to the repository: its parts and the blobs it uploaded.
    pub fn stored_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.stored_bytes).sum::<u64>()
            + self.objects.as_ref().map_or(0, |o| o.uploaded_bytes)
    }

    pub fn part(&self, name: &str) -> Option<&PartEntry> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// One stored file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartEntry {
    /// File name under `backups/<id>/`, e.g. `database.pgdump.zst.age`.
    pub name: String,
    /// `database` or `config`.
    pub component: String,
    /// What the decrypted, decompressed bytes are: `pg_dump-custom`, `sqlite`, `json`...
    pub content: String,
    /// `zstd` or `none`.
    pub compression: String,
    /// Always `age`.
    pub encryption: String,
    /// Bytes read from the source.
    pub source_bytes: u64,
    /// Bytes stored.
    pub stored_bytes: u64,
    /// SHA-256 (hex) of the stored bytes.
    pub sha256: String,
}

/// The database in a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseEntry {
    /// `postgresql` or `sqlite`.
    pub engine: String,
    /// The part holding the dump.
    pub part: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// Rows per table (`schema.table`), counted just before the dump; empty when unknown.
    #[serde(default)]
    pub row_counts: BTreeMap<String, u64>,
}

/// The objects (photos) in a backup: the full key → content map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectsEntry {
    /// Where they came from (no credentials).
    pub source: String,
    pub count: u64,
    /// Total plaintext bytes of all objects.
    pub bytes: u64,
    /// Blobs this backup uploaded, and their stored size.
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    /// Objects whose content was read (new or changed); the rest came from the previous index.
    pub read: u64,
    /// Key (relative to the source prefix) → content.
    pub entries: BTreeMap<String, ObjectEntry>,
}

/// One object: its content hash (the blob name), size and the source's version stamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectEntry {
    pub sha256: String,
    pub size: u64,
    /// ETag or modification time at the source; unchanged stamp and size → content not re-read.
    pub version: String,
}

/// A new backup id: the start time in UTC and a random suffix, so ids sort by time and two
/// runs in the same second never collide.
pub fn new_backup_id(started: Timestamp) -> String {
    format!(
        "{}-{:04x}",
        started.strftime("%Y%m%dT%H%M%SZ"),
        rand::random::<u16>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keys_follow_the_documented_shape() {
        let loc = PolicyLocation::new("shop", "nightly");
        let hash = "ab".repeat(32);
        assert_eq!(
            loc.manifest_key("20261128T020000Z-0001"),
            "shop/nightly/backups/20261128T020000Z-0001/manifest.json"
        );
        assert_eq!(
            loc.blob_key(&hash),
            format!("shop/nightly/blobs/sha256/ab/{hash}")
        );
        assert_eq!(loc.blob_hash(&loc.blob_key(&hash)), Some(hash.as_str()));
        assert_eq!(loc.blob_hash("shop/nightly/blobs/sha256/ab/short"), None);
    }

    #[test]
    fn backup_ids_sort_by_start_time() {
        let a = new_backup_id("2026-11-28T02:00:00Z".parse().unwrap());
        let b = new_backup_id("2026-11-28T02:00:01Z".parse().unwrap());
        assert!(a < b, "{a} !< {b}");
        assert!(a.starts_with("20261128T020000Z-"));
    }
}
