//! What an incremental object backup asks of the source and of the repository: work in
//! proportion to what changed, changed objects read in parallel however sparse they are, and
//! the opt-in full blob check that repairs a blob lost out of band.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tend_backup::{
    BackupJob, ByteReader, LocalRepository, Manifest, ObjectMeta, ObjectsSource, PendingUpload,
    PolicyLocation, Repository, Result, run_backup, verify_backup,
};
use tend_testkit::Keys;

/// A repository that counts the calls made to it, by kind and key prefix, and can slow `get`
/// down to show how many run at once.
struct Counting {
    inner: LocalRepository,
    calls: Mutex<BTreeMap<String, usize>>,
    get_delay: Option<Duration>,
    gets_now: AtomicUsize,
    gets_max: AtomicUsize,
}

impl Counting {
    fn new(inner: LocalRepository) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
            get_delay: None,
            gets_now: AtomicUsize::new(0),
            gets_max: AtomicUsize::new(0),
        }
    }

    fn count(&self, op: &str, key: &str) {
        let area = if key.contains("/blobs/") {
            "blobs"
        } else if key.contains("/backups/") {
            "backups"
        } else {
            "other"
        };
        *self
            .calls
            .lock()
            .unwrap()
            .entry(format!("{op} {area}"))
            .or_default() += 1;
    }

    fn calls(&self, what: &str) -> usize {
        self.calls.lock().unwrap().get(what).copied().unwrap_or(0)
    }

    fn reset(&self) {
        self.calls.lock().unwrap().clear();
        self.gets_max.store(0, Ordering::SeqCst);
    }
}

impl Repository for Counting {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: ByteReader,
        size_hint: Option<u64>,
    ) -> BoxFuture<'a, Result<u64>> {
        self.count("put", key);
        self.inner.put(key, body, size_hint)
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<ByteReader>> {
        self.count("get", key);
        Box::pin(async move {
            let now = self.gets_now.fetch_add(1, Ordering::SeqCst) + 1;
            self.gets_max.fetch_max(now, Ordering::SeqCst);
            if let Some(delay) = self.get_delay {
                tokio::time::sleep(delay).await;
            }
            let result = self.inner.get(key).await;
            self.gets_now.fetch_sub(1, Ordering::SeqCst);
            result
        })
    }

    fn head<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<ObjectMeta>>> {
        self.count("head", key);
        self.inner.head(key)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<ObjectMeta>>> {
        self.count("list", prefix);
        self.inner.list(prefix)
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<()>> {
        self.count("delete", key);
        self.inner.delete(key)
    }

    fn list_uploads<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<PendingUpload>>> {
        self.inner.list_uploads(prefix)
    }

    fn abort_upload<'a>(&'a self, upload: &'a PendingUpload) -> BoxFuture<'a, Result<()>> {
        self.inner.abort_upload(upload)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

struct Setup {
    dir: tempfile::TempDir,
    keys: Keys,
    loc: PolicyLocation,
    repo: Arc<Counting>,
    photos: Arc<Counting>,
}

impl Setup {
    fn new(objects: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        for i in 0..objects {
            let sub = root.join(format!("{:02}", i % 10));
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(format!("{i}.jpg")), format!("photo {i}")).unwrap();
        }
        let repo = Counting::new(LocalRepository::new(dir.path().join("repo")).unwrap());
        let photos = Counting::new(LocalRepository::new(&root).unwrap());
        Self {
            keys: Keys::new(),
            loc: PolicyLocation::new("shop", "nightly"),
            repo: Arc::new(repo),
            photos: Arc::new(photos),
            dir,
        }
    }

    fn photo(&self, i: usize) -> std::path::PathBuf {
        self.dir
            .path()
            .join(format!("photos/{:02}/{i}.jpg", i % 10))
    }

    async fn backup(&self, configure: impl FnOnce(&mut ObjectsSource)) -> Manifest {
        let mut source = ObjectsSource::new(self.photos.clone(), "");
        configure(&mut source);
        let mut job = BackupJob::new(self.repo.clone(), self.loc.clone(), self.keys.encryption());
        job.objects = Some(source);
        run_backup(job).await.unwrap()
    }
}

fn counts(manifest: &Manifest) -> (u64, u64, u64) {
    let o = manifest.objects.as_ref().unwrap();
    (o.count, o.read, o.uploaded)
}

#[tokio::test]
async fn an_incremental_run_touches_only_what_changed() {
    let s = Setup::new(200);
    let first = s.backup(|_| {}).await;
    assert_eq!(counts(&first), (200, 200, 200));
    // Without an index the run lists the blobs once (to reuse what an earlier run left).
    assert_eq!(s.repo.calls("list blobs"), 1);

    s.repo.reset();
    s.photos.reset();
    let second = s.backup(|_| {}).await;
    assert_eq!(counts(&second), (200, 0, 0));
    assert_eq!(
        s.photos.calls("get other"),
        0,
        "unchanged objects were read"
    );
    assert_eq!(s.repo.calls("list blobs"), 0, "the blobs were listed");
    assert_eq!(s.repo.calls("head blobs"), 0);
    assert_eq!(s.repo.calls("put blobs"), 0);

    // Two changed objects with new content, and one whose new content is another object's.
    std::fs::write(s.photo(3), "new 3").unwrap();
    std::fs::write(s.photo(4), "new 4").unwrap();
    std::fs::write(s.photo(5), "photo 6").unwrap();
    s.repo.reset();
    s.photos.reset();
    let third = s.backup(|_| {}).await;
    assert_eq!(counts(&third), (200, 3, 2));
    assert_eq!(s.photos.calls("get other"), 3);
    assert_eq!(s.repo.calls("list blobs"), 0);
    // A content the index knows needs no request; a new one costs one HEAD.
    assert_eq!(s.repo.calls("head blobs"), 2);
    assert_eq!(s.repo.calls("put blobs"), 2);
    let entries = &third.objects.as_ref().unwrap().entries;
    assert_eq!(entries["05/5.jpg"].sha256, entries["06/6.jpg"].sha256);
    verify_backup(s.repo.as_ref(), &s.loc, &third)
        .await
        .unwrap();

    // A new content another run already stored (not in the index) is found and not uploaded
    // again: here the blob of the first backup's `3.jpg`.
    std::fs::write(s.photo(3), "photo 3").unwrap();
    s.repo.reset();
    let fourth = s.backup(|_| {}).await;
    assert_eq!(counts(&fourth), (200, 1, 0));
    assert_eq!(s.repo.calls("head blobs"), 1);
}

#[tokio::test]
async fn sparse_changes_are_still_read_in_parallel() {
    let s = Setup::new(400);
    s.backup(|_| {}).await;
    // Every 20th object changes: consecutive objects in the listing are almost all unchanged.
    for i in (0..400).step_by(20) {
        std::fs::write(s.photo(i), format!("changed {i}")).unwrap();
    }
    let mut photos = Counting::new(LocalRepository::new(s.dir.path().join("photos")).unwrap());
    photos.get_delay = Some(Duration::from_millis(30));
    let photos = Arc::new(photos);
    let mut job = BackupJob::new(s.repo.clone(), s.loc.clone(), s.keys.encryption());
    let mut source = ObjectsSource::new(photos.clone(), "");
    source.parallelism = 4;
    job.objects = Some(source);
    let manifest = run_backup(job).await.unwrap();
    assert_eq!(counts(&manifest), (400, 20, 20));
    assert_eq!(photos.calls("get other"), 20);
    assert_eq!(
        photos.gets_max.load(Ordering::SeqCst),
        4,
        "changed objects were not read `parallelism` at a time"
    );
}

#[tokio::test]
async fn a_lost_blob_is_repaired_only_by_the_full_blob_check() {
    let s = Setup::new(20);
    let first = s.backup(|_| {}).await;
    let lost = first.objects.as_ref().unwrap().entries["07/7.jpg"]
        .sha256
        .clone();
    s.repo.inner.delete(&s.loc.blob_key(&lost)).await.unwrap();

    // By default the index is trusted: nothing is read, and the drill check finds the loss.
    let second = s.backup(|_| {}).await;
    assert_eq!(counts(&second), (20, 0, 0));
    let err = verify_backup(s.repo.as_ref(), &s.loc, &second)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("07/7.jpg"), "{err}");

    // The full check lists the blobs and reads the object again.
    s.repo.reset();
    let third = s.backup(|o| o.check_all_blobs = true).await;
    assert_eq!(counts(&third), (20, 1, 1));
    assert_eq!(s.repo.calls("list blobs"), 1);
    verify_backup(s.repo.as_ref(), &s.loc, &third)
        .await
        .unwrap();
    verify_backup(s.repo.as_ref(), &s.loc, &first)
        .await
        .unwrap();
}
