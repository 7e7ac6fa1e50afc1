//! The one way tend reads Secrets: `get` by namespace and name — tend never lists or watches
//! Secrets, so it needs no cluster-wide read access to them. Values go only into the engines'
//! configuration; errors and logs name the field, the Secret and the key, never a value.
//!
//! [`Secrets`] reads the Secrets of one step (a run, a reference check), each once. Reconciles
//! read through [`SecretCache`], shared by all of them: every object that references a Secret
//! used to `get` it on every reconcile (10,000 EscalationPolicies naming one webhook Secret were
//! 10,000 reads). Freshness comes from a short time to live: a copy older than [`SECRET_TTL`] is
//! read again, so a Secret created, fixed or rotated is seen within that time. Objects with a
//! missing Secret are rechecked less often than that (`RECHECK_MISSING_REFERENCE`), so their
//! recheck always reads the API server again. Concurrent reconciles asking for the same Secret
//! share one read. Backup and restore runs read every Secret fresh.
//!
//! Values are kept in memory only as long as the entry lives, and never logged: only namespaces,
//! names and key names appear in messages. The copy keeps `data`, `stringData` and `type`; its
//! `managedFields` and annotations are dropped, because the last-applied annotation of a Secret
//! applied with `kubectl apply` holds every value in plain text and tend has no use for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Api, Client};
use tend_crds::types::SecretKeyRef;
use tokio::sync::OnceCell;

use crate::error::StepError;

/// How long a Secret read from the API server is used before it is read again.
pub const SECRET_TTL: Duration = Duration::from_secs(10);

/// Entries beyond this many trigger dropping the expired ones.
const PRUNE_ABOVE: usize = 256;

/// A Secret as read (`None`: it does not exist).
pub type CachedSecret = Option<Arc<Secret>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SecretKey {
    namespace: String,
    name: String,
}

struct Entry {
    created: Instant,
    /// Filled by the first reconcile that asks; the others wait for that read.
    read: Arc<OnceCell<CachedSecret>>,
}

/// Secrets read by namespace and name, each kept for [`SECRET_TTL`]. Cheap to clone (shared).
#[derive(Clone)]
pub struct SecretCache {
    client: Client,
    entries: Arc<Entries>,
}

impl SecretCache {
    pub fn new(client: Client) -> Self {
        Self::with_ttl(client, SECRET_TTL)
    }

    /// A cache whose entries live `ttl` (zero: every read goes to the API server).
    pub fn with_ttl(client: Client, ttl: Duration) -> Self {
        Self {
            client,
            entries: Arc::new(Entries::new(ttl)),
        }
    }

    /// The Secret `namespace/name`, `None` if it does not exist. Read from the API server when
    /// no copy younger than the time to live is held. A failed read is not kept.
    pub async fn get(&self, namespace: &str, name: &str) -> kube::Result<CachedSecret> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        self.entries
            .get_or_read(namespace, name, || async move {
                Ok(api.get_opt(name).await?.map(|s| Arc::new(trimmed(s))))
            })
            .await
    }
}

/// The map behind [`SecretCache`], apart from the API so that it is tested without one.
struct Entries {
    ttl: Duration,
    map: Mutex<HashMap<SecretKey, Entry>>,
}

impl Entries {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    async fn get_or_read<F, Fut>(
        &self,
        namespace: &str,
        name: &str,
        read: F,
    ) -> kube::Result<CachedSecret>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = kube::Result<CachedSecret>>,
    {
        let cell = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            let key = SecretKey {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            };
            match map.get(&key) {
                Some(entry) if entry.created.elapsed() < self.ttl => entry.read.clone(),
                _ => {
                    if map.len() >= PRUNE_ABOVE {
                        let ttl = self.ttl;
                        map.retain(|_, e| e.created.elapsed() < ttl);
                    }
                    let read = Arc::new(OnceCell::new());
                    map.insert(
                        key,
                        Entry {
                            created: Instant::now(),
                            read: read.clone(),
                        },
                    );
                    read
                }
            }
        };
        cell.get_or_try_init(read).await.cloned()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// What tend needs of a Secret: its name, version, type and values.
fn trimmed(secret: Secret) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: secret.metadata.name,
            namespace: secret.metadata.namespace,
            resource_version: secret.metadata.resource_version,
            uid: secret.metadata.uid,
            ..ObjectMeta::default()
        },
        data: secret.data,
        string_data: secret.string_data,
        type_: secret.type_,
        immutable: secret.immutable,
    }
}

/// Reads Secrets of one namespace, each once.
pub struct Secrets {
    source: SecretCache,
    namespace: String,
    read: HashMap<String, Arc<Secret>>,
}

impl Secrets {
    /// Reads each Secret from the API server: for runs, which use credentials as they are now.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self::cached(&SecretCache::with_ttl(client, Duration::ZERO), namespace)
    }

    /// Reads through `cache` (the reconciles' shared one), for checks that run on every
    /// reconcile.
    pub fn cached(cache: &SecretCache, namespace: &str) -> Self {
        Self {
            source: cache.clone(),
            namespace: namespace.to_owned(),
            read: HashMap::new(),
        }
    }

    async fn secret(&mut self, field: &str, name: &str) -> Result<&Secret, StepError> {
        if !self.read.contains_key(name) {
            let secret = self
                .source
                .get(&self.namespace, name)
                .await
                .map_err(|e| StepError::Setup(format!("{field}: reading Secret {name:?}: {e}")))?
                .ok_or_else(|| StepError::Setup(format!("{field}: Secret {name:?} not found")))?;
            self.read.insert(name.to_owned(), secret);
        }
        Ok(&self.read[name])
    }

    /// One key of a Secret as UTF-8 text.
    pub async fn value(
        &mut self,
        field: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, StepError> {
        let secret = self.secret(field, name).await?;
        secret_key(secret, key)
            .map(|b| {
                String::from_utf8(b.to_vec()).map_err(|_| {
                    StepError::Setup(format!(
                        "{field}: key {key:?} of Secret {name:?} is not UTF-8 text"
                    ))
                })
            })
            .transpose()
    }

    pub async fn required(
        &mut self,
        field: &str,
        name: &str,
        key: &str,
    ) -> Result<String, StepError> {
        self.value(field, name, key)
            .await?
            .ok_or_else(|| StepError::Setup(format!("{field}: Secret {name:?} has no key {key:?}")))
    }

    pub async fn key_ref(&mut self, field: &str, r: &SecretKeyRef) -> Result<String, StepError> {
        self.required(field, &r.name, &r.key).await
    }
}

/// The bytes of one key of a Secret, from `data` or (as written, before the API server merges
/// it) `stringData`.
pub fn secret_key<'s>(secret: &'s Secret, key: &str) -> Option<&'s [u8]> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.as_slice())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(String::as_bytes)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn secret(value: &str) -> CachedSecret {
        Some(Arc::new(Secret {
            string_data: Some(BTreeMap::from([("k".to_owned(), value.to_owned())])),
            ..Secret::default()
        }))
    }

    async fn read_counted(
        entries: &Entries,
        name: &str,
        reads: &AtomicUsize,
        value: &str,
    ) -> CachedSecret {
        entries
            .get_or_read("ns", name, || async {
                reads.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok(secret(value))
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_secret_is_read_once_within_its_time_to_live() {
        let entries = Entries::new(Duration::from_secs(60));
        let reads = AtomicUsize::new(0);
        let (a, b) = tokio::join!(
            read_counted(&entries, "s", &reads, "one"),
            read_counted(&entries, "s", &reads, "two"),
        );
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "concurrent reads are shared"
        );
        assert_eq!(a, b);
        read_counted(&entries, "s", &reads, "three").await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        read_counted(&entries, "other", &reads, "x").await;
        assert_eq!(reads.load(Ordering::SeqCst), 2, "keys are per name");
    }

    #[tokio::test]
    async fn an_expired_secret_is_read_again() {
        let entries = Entries::new(Duration::ZERO);
        let reads = AtomicUsize::new(0);
        read_counted(&entries, "s", &reads, "old").await;
        let fresh = read_counted(&entries, "s", &reads, "new").await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        assert_eq!(fresh, secret("new"));
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let entries = Entries::new(Duration::from_secs(60));
        let failed = entries
            .get_or_read("ns", "s", || async {
                Err(kube::Error::LinesCodecMaxLineLengthExceeded)
            })
            .await;
        assert!(failed.is_err());
        let reads = AtomicUsize::new(0);
        assert_eq!(read_counted(&entries, "s", &reads, "v").await, secret("v"));
    }

    #[tokio::test]
    async fn expired_entries_are_dropped_as_the_map_grows() {
        let entries = Entries::new(Duration::ZERO);
        let reads = AtomicUsize::new(0);
        for i in 0..PRUNE_ABOVE * 2 {
            read_counted(&entries, &format!("s{i}"), &reads, "v").await;
        }
        assert!(entries.len() <= PRUNE_ABOVE, "{}", entries.len());
    }

    #[test]
    fn the_copy_kept_has_no_annotations_or_managed_fields() {
        let mut s = Secret::default();
        s.metadata.name = Some("n".into());
        s.metadata.annotations = Some(BTreeMap::from([(
            "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
            "{\"stringData\":{\"k\":\"plain\"}}".to_owned(),
        )]));
        s.metadata.managed_fields = Some(vec![Default::default()]);
        let t = trimmed(s);
        assert_eq!(t.metadata.name.as_deref(), Some("n"));
        assert!(t.metadata.annotations.is_none());
        assert!(t.metadata.managed_fields.is_none());
    }
}
