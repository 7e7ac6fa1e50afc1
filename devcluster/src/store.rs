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
        self.record(storage, change, obj.clone());
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
    /// Returns the uids of dependents that no longer have any live owner.
    pub fn remove(&mut self, storage: &str, key: &Key) -> Option<(Arc<Value>, Vec<ObjectRef>)> {
        let old = self.objects.get_mut(storage)?.remove(key)?;
        self.rv += 1;
        let mut gone = (*old).clone();
        meta::metadata_mut(&mut gone)
            .insert("resourceVersion".into(), Value::String(self.rv.to_string()));
        let gone = Arc::new(gone);
        let uid = meta::uid(&old).to_string();
        self.uids.remove(&uid);
        self.record(storage, Change::Deleted, gone.clone());
        let mut orphans = vec![];
        for (dep_storage, dep_key) in self.dependents.remove(&uid).unwrap_or_default() {
            let Some(dep) = self.get(&dep_storage, &dep_key) else {
                continue;
            };
            let owners = meta::owner_uids(&dep);
            if owners.contains(&uid) && owners.iter().all(|o| !self.uids.contains_key(o)) {
                orphans.push((dep_storage, dep_key));
            }
        }
        Some((gone, orphans))
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

    fn record(&mut self, storage: &str, change: Change, object: Arc<Value>) {
        self.write_count += 1;
        let rec = Arc::new(Record {
            rv: self.rv,
            storage: storage.to_string(),
            change,
            object,
        });
        self.history.push_back(rec.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.history_start = old.rv;
            }
        }
        let _ = self.tx.send(Notice::Change(rec));
    }

    /// Changes after `rv`, or `None` when some of them are no longer retained (410 Gone).
    pub fn history_after(&self, rv: u64) -> Option<Vec<Arc<Record>>> {
        if rv < self.history_start {
            return None;
        }
        Some(self.history.iter().filter(|r| r.rv > rv).cloned().collect())
    }

    /// Forgets all history and closes every open watch, as an API server restart or an etcd
    /// compaction does; watches resuming from an older resourceVersion then get 410 Gone.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.history.clear();
        self.history_start = self.rv;
        self.write_count += 1;
        let _ = self.tx.send(Notice::CloseAll);
    }

    /// Ends every open watch (server shutdown); clients reconnect and resume.
    pub fn close_watches(&self) {
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
