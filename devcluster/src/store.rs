//! The object store: every object in its storage form, the cluster-wide resourceVersion counter,
//! and the bounded history of changes that watches resume from.
//!
//! All mutations go through [`Store::put`] and [`Store::remove`], which assign resourceVersions,
//! append to the history and notify open watches, so no write can escape a watcher.

use crate::meta;
use crate::registry::Registry;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type Key = (String, String);

/// An object's storage key and `(namespace, name)`.
pub type ObjectRef = (String, Key);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Record {
    pub rv: u64,
    pub storage: String,
    pub change: Change,
    pub object: Arc<Value>,
    /// The object before this change (`None` for an addition): what reads "as of" an older
    /// resourceVersion see.
    pub previous: Option<Arc<Value>>,
    /// When the change was made, for reads served with a lag.
    pub at: Instant,
}

/// Dependents of a removed owner, due for the garbage collector at `due`.
#[derive(Debug, Clone)]
pub struct GcItem {
    pub due: Instant,
    pub owner_uid: String,
    pub dependents: Vec<ObjectRef>,
}

/// A message to open watches: a change, or an order to close (simulated compaction/restart).
#[derive(Debug, Clone)]
pub enum Notice {
    Change(Arc<Record>),
    CloseAll,
}

pub struct Store {
    pub registry: Registry,
    objects: HashMap<String, BTreeMap<Key, Arc<Value>>>,
    uids: HashMap<String, (String, Key)>,
    dependents: HashMap<String, BTreeSet<(String, Key)>>,
    rv: u64,
    history: VecDeque<Arc<Record>>,
    history_limit: usize,
    /// Every change after this resourceVersion is still in `history`.
    history_start: u64,
    /// Watches may start from this resourceVersion or later; older ones get 410 Gone. Like the
    /// watch cache of a restarted API server, it can be newer than `history_start`.
    watch_start: u64,
    /// Owners removed lately whose dependents the garbage collector still has to look at.
    pub gc_queue: VecDeque<GcItem>,
    /// Objects being deleted in the foreground (they carry the `foregroundDeletion` finalizer).
    pub foreground: BTreeSet<ObjectRef>,
    tx: broadcast::Sender<Notice>,
    /// Bumped on every write; the persistence task saves when it changes.
    pub write_count: u64,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        Store {
            registry: Registry::with_builtins(),
            objects: HashMap::new(),
            uids: HashMap::new(),
            dependents: HashMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            history_start: 1,
            watch_start: 1,
            gc_queue: VecDeque::new(),
            foreground: BTreeSet::new(),
            tx,
            write_count: 0,
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// Restores the counter after loading a snapshot; history starts empty at that point.
    pub fn set_rv(&mut self, rv: u64) {
        self.rv = rv.max(self.rv);
        self.history_start = self.rv;
        self.watch_start = self.rv;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }

    pub fn get(&self, storage: &str, key: &Key) -> Option<Arc<Value>> {
        self.objects.get(storage)?.get(key).cloned()
    }

    /// Objects of one storage, optionally in one namespace, in key order, after `after` (paging).
    pub fn list(
        &self,
        storage: &str,
        namespace: Option<&str>,
        after: Option<&Key>,
    ) -> Vec<Arc<Value>> {
        let Some(map) = self.objects.get(storage) else {
            return vec![];
        };
        let lower = match after {
            Some(k) => std::ops::Bound::Excluded(k.clone()),
            None => std::ops::Bound::Unbounded,
        };
        map.range((lower, std::ops::Bound::Unbounded))
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn count_in_namespace(&self, namespace: &str) -> usize {
        self.objects
            .values()
            .map(|m| m.keys().filter(|(ns, _)| ns == namespace).count())
            .sum()
    }

    pub fn storages(&self) -> Vec<String> {
        self.objects.keys().cloned().collect()
    }

    /// Writes an object, assigning the next resourceVersion. Returns the stored object.
    pub fn put(&mut self, storage: &str, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        meta::metadata_mut(&mut obj)
            .insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let key = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        let uid = meta::uid(&obj).to_string();
        for owner in meta::owner_uids(&obj) {
            self.dependents
                .entry(owner)
                .or_default()
                .insert((storage.to_string(), key.clone()));
        }
        let obj = Arc::new(obj);
        let previous = self
            .objects
            .entry(storage.to_string())
            .or_default()
            .insert(key.clone(), obj.clone());
        if !uid.is_empty() {
            self.uids.insert(uid, (storage.to_string(), key));
        }
        let change = if previous.is_some() {
            Change::Modified
        } else {
            Change::Added
        };
        self.record(storage, change, obj.clone(), previous);
        obj
    }

    /// Loads an object from a snapshot without recording a change.
    pub fn load(&mut self, storage: &str, obj: Value) {
        let key = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        let uid = meta::uid(&obj).to_string();
        for owner in meta::owner_uids(&obj) {
            self.dependents
                .entry(owner)
                .or_default()
                .insert((storage.to_string(), key.clone()));
        }
        if !uid.is_empty() {
            self.uids.insert(uid, (storage.to_string(), key.clone()));
        }
        self.objects
            .entry(storage.to_string())
            .or_default()
            .insert(key, Arc::new(obj));
    }

    /// Removes an object for good. The DELETED event carries a fresh resourceVersion.
    /// Returns the removed object and the objects that still name it as an owner.
    pub fn remove(&mut self, storage: &str, key: &Key) -> Option<(Arc<Value>, Vec<ObjectRef>)> {
        let old = self.objects.get_mut(storage)?.remove(key)?;
        self.rv += 1;
        let mut gone = (*old).clone();
        meta::metadata_mut(&mut gone)
            .insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let gone = Arc::new(gone);
        let uid = meta::uid(&old).to_string();
        self.uids.remove(&uid);
        self.foreground.remove(&(storage.to_string(), key.clone()));
        self.record(storage, Change::Deleted, gone.clone(), Some(old));
        let dependents = self.dependents_of(&uid);
        self.dependents.remove(&uid);
        Some((gone, dependents))
    }

    /// Objects whose ownerReferences name `uid` now.
    pub fn dependents_of(&self, uid: &str) -> Vec<ObjectRef> {
        let Some(refs) = self.dependents.get(uid) else {
            return vec![];
        };
        refs.iter()
            .filter(|(s, k)| {
                self.get(s, k)
                    .is_some_and(|d| meta::owner_uids(&d).iter().any(|o| o == uid))
            })
            .cloned()
            .collect()
    }

    /// True while an object with this uid exists.
    pub fn uid_exists(&self, uid: &str) -> bool {
        self.uids.contains_key(uid)
    }

    /// Drops a whole storage (a deleted CRD's objects), recording a DELETED event for each.
    pub fn drop_storage(&mut self, storage: &str) {
        let keys: Vec<Key> = self
            .objects
            .get(storage)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for k in keys {
            self.remove(storage, &k);
        }
        self.objects.remove(storage);
    }

    fn record(
        &mut self,
        storage: &str,
        change: Change,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        self.write_count += 1;
        let rec = Arc::new(Record {
            rv: self.rv,
            storage: storage.to_string(),
            change,
            object,
            previous,
            at: Instant::now(),
        });
        self.history.push_back(rec.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.history_start = old.rv;
            }
        }
        let _ = self.tx.send(Notice::Change(rec));
    }

    /// Changes after `rv` for a watch, or `None` when some of them are no longer retained
    /// (410 Gone).
    pub fn history_after(&self, rv: u64) -> Option<Vec<Arc<Record>>> {
        if rv < self.history_start.max(self.watch_start) {
            return None;
        }
        Some(self.history.iter().filter(|r| r.rv > rv).cloned().collect())
    }

    /// The oldest resourceVersion a watch can resume from.
    pub fn oldest_watchable(&self) -> u64 {
        self.history_start.max(self.watch_start)
    }

    /// Objects of one storage as they were at resourceVersion `rv` (an etcd read at a revision),
    /// optionally in one namespace, in key order, after `after`. `None` when the history no
    /// longer reaches back that far (the revision was compacted).
    pub fn list_at(
        &self,
        storage: &str,
        namespace: Option<&str>,
        after: Option<&Key>,
        rv: u64,
    ) -> Option<Vec<Arc<Value>>> {
        if rv >= self.rv {
            return Some(self.list(storage, namespace, after));
        }
        if rv < self.history_start {
            return None;
        }
        let in_scope = |k: &Key| namespace.is_none_or(|n| n == k.0) && after.is_none_or(|a| k > a);
        let mut map: BTreeMap<Key, Arc<Value>> = self
            .objects
            .get(storage)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| in_scope(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for r in self.history.iter().rev() {
            if r.rv <= rv {
                break;
            }
            if r.storage != storage {
                continue;
            }
            let k = (
                meta::namespace(&r.object).to_string(),
                meta::name(&r.object).to_string(),
            );
            if !in_scope(&k) {
                continue;
            }
            match &r.previous {
                Some(p) => map.insert(k, p.clone()),
                None => map.remove(&k),
            };
        }
        Some(map.into_values().collect())
    }

    /// One object as it was at resourceVersion `rv` (`None` inside: it did not exist then).
    pub fn get_at(&self, storage: &str, key: &Key, rv: u64) -> Option<Option<Arc<Value>>> {
        let objs = self.list_at(storage, Some(&key.0), None, rv)?;
        Some(
            objs.into_iter()
                .find(|o| meta::name(o) == key.1 && meta::namespace(o) == key.0),
        )
    }

    /// The resourceVersion the store had at `when` (as far back as the history reaches).
    pub fn rv_at(&self, when: Instant) -> u64 {
        let mut rv = self.rv;
        for r in self.history.iter().rev() {
            if r.at <= when {
                break;
            }
            rv = r.rv - 1;
        }
        rv.max(self.history_start)
    }

    /// The oldest resourceVersion reads "as of" can be served at.
    pub fn history_start(&self) -> u64 {
        self.history_start
    }

    /// Forgets all history and closes every open watch, as an API server restart or an etcd
    /// compaction does; watches resuming from an older resourceVersion then get 410 Gone.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.history.clear();
        self.history_start = self.rv;
        self.watch_start = self.rv;
        self.write_count += 1;
        let _ = self.tx.send(Notice::CloseAll);
    }

    /// Ends every open watch (server shutdown); clients reconnect and resume.
    pub fn close_watches(&self) {
        let _ = self.tx.send(Notice::CloseAll);
    }

    /// Ends every open watch as an API server restart does: the new watch cache starts at the
    /// current resourceVersion, so watches resuming from an older one get 410 Gone and
    /// clients re-list. Paged lists and reads at older revisions still work (etcd keeps them).
    pub fn restart_watches(&mut self) {
        // A fresh resourceVersion, so every client's last one is older than the new cache.
        self.rv += 1;
        self.watch_start = self.rv;
        self.write_count += 1;
        let _ = self.tx.send(Notice::CloseAll);
    }

    /// Every object with its storage key, for snapshots.
    pub fn all_objects(&self) -> Vec<(String, Arc<Value>)> {
        let mut out = vec![];
        for (storage, map) in &self.objects {
            for v in map.values() {
                out.push((storage.clone(), v.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(name: &str, v: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}")}, "data": {"v": v}})
    }

    #[test]
    fn list_at_an_older_revision_undoes_later_changes() {
        let mut s = Store::new(100);
        s.put("configmaps", cm("a", "1"));
        s.put("configmaps", cm("b", "1"));
        let rv = s.current_rv();
        s.put("configmaps", cm("a", "2"));
        s.put("configmaps", cm("c", "1"));
        s.remove("configmaps", &("ns".into(), "b".into()));
        s.put("secrets", cm("x", "1"));
        let then = s.list_at("configmaps", Some("ns"), None, rv).unwrap();
        let names: Vec<(&str, &str)> = then
            .iter()
            .map(|o| (meta::name(o), o["data"]["v"].as_str().unwrap()))
            .collect();
        assert_eq!(names, [("a", "1"), ("b", "1")]);
        let after_a = s
            .list_at(
                "configmaps",
                Some("ns"),
                Some(&("ns".into(), "a".into())),
                rv,
            )
            .unwrap();
        assert_eq!(after_a.len(), 1);
        assert_eq!(
            s.get_at("configmaps", &("ns".into(), "c".into()), rv),
            Some(None)
        );
        s.compact();
        assert!(s.list_at("configmaps", None, None, rv).is_none());
    }

    #[test]
    fn restarted_watches_cannot_resume_from_before_the_restart() {
        let mut s = Store::new(100);
        s.put("configmaps", cm("a", "1"));
        let rv = s.current_rv();
        s.put("configmaps", cm("a", "2"));
        assert!(s.history_after(rv).is_some());
        s.restart_watches();
        assert!(s.history_after(rv).is_none());
        assert!(s.history_after(s.current_rv()).is_some());
        // Reads at the older revision still work, as etcd keeps it.
        assert!(s.list_at("configmaps", None, None, rv).is_some());
    }
}
