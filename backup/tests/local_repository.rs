//! The engine against a local directory repository: atomic puts, the manifest as commit point,
//! round trips through the pipeline, incremental objects, retention and clear errors.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jiff::{SignedDuration, Timestamp};
use tend_backup::{
    BackupJob, ConfigSource, DatabaseSource, Encryption, Error, LocalRepository, ObjectsSource,
    PolicyLocation, Repository, RetentionOptions, RetentionRules, apply_retention, restore_object,
    restore_part, restore_points, run_backup, verify_backup,
};
use tend_backup::{Uncommitted, remove_uncommitted_backup};
use tend_testkit::Keys;
use tend_testkit::pseudo_random;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Yields `good` bytes of data, then fails.
struct FailingReader {
    left: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(io::Error::other("snapshot stream broke")));
        }
        let n = self.left.min(buf.remaining()).min(8192);
        buf.put_slice(&vec![b'x'; n]);
        self.left -= n;
        Poll::Ready(Ok(()))
    }
}

/// A backup job of `loc` into `repo`, encrypted to `keys`, whose database is the SQLite
/// snapshot `snapshot` (named `app`, no row counts).
fn sqlite_job(
    repo: &Arc<LocalRepository>,
    loc: &PolicyLocation,
    keys: &Keys,
    snapshot: impl AsyncRead + Send + 'static,
) -> BackupJob {
    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Sqlite {
        row_counts: Default::default(),
        name: "app".into(),
        snapshot: Box::pin(snapshot),
    });
    job
}

fn repo() -> (tempfile::TempDir, Arc<LocalRepository>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Arc::new(LocalRepository::new(dir.path().join("repo")).unwrap());
    (dir, repo)
}

fn all_files(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(
                    entry
                        .path()
                        .strip_prefix(root)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_failed_put_leaves_neither_object_nor_temporary_file() {
    let (_dir, repo) = repo();
    let err = repo
        .put("a/b/obj", Box::pin(FailingReader { left: 100_000 }), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("snapshot stream broke"), "{err}");
    assert!(repo.head("a/b/obj").await.unwrap().is_none());
    assert!(repo.list_uploads("").await.unwrap().is_empty());
    assert!(
        all_files(repo.root()).is_empty(),
        "{:?}",
        all_files(repo.root())
    );

    let n = repo
        .put(
            "a/b/obj",
            Box::pin(io::Cursor::new(b"hello".to_vec())),
            Some(5),
        )
        .await
        .unwrap();
    assert_eq!(n, 5);
    assert_eq!(repo.list("a/").await.unwrap()[0].key, "a/b/obj");
}

#[tokio::test]
async fn backup_is_not_a_restore_point_until_manifest_written() {
    let (_dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");

    // The snapshot stream breaks half way: the run fails, names the component, leaves nothing.
    let job = sqlite_job(&repo, &loc, &keys, FailingReader { left: 3 << 20 });
    let err = run_backup(job).await.unwrap_err();
    assert!(matches!(err, Error::Source { .. }), "{err:?}");
    assert!(err.to_string().contains("database"), "{err}");
    assert!(
        restore_points(repo.as_ref(), &loc)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        all_files(repo.root()).is_empty(),
        "{:?}",
        all_files(repo.root())
    );

    // A good run commits; its parts restore to the original bytes.
    let db = pseudo_random(3 << 20, 1);
    let config = br#"{"configMaps":[{"name":"settings"}]}"#.to_vec();
    let mut job = sqlite_job(&repo, &loc, &keys, io::Cursor::new(db.clone()));
    job.config = Some(ConfigSource {
        archive: Box::pin(io::Cursor::new(config.clone())),
        content: "json".into(),
    });
    job.trigger = Some("Manual".into());
    let progress = job.progress.clone();
    let manifest = run_backup(job).await.unwrap();
    assert_eq!(progress.bytes(), manifest.stored_bytes());
    let points = restore_points(repo.as_ref(), &loc).await.unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].manifest, manifest);
    verify_backup(repo.as_ref(), &loc, &manifest).await.unwrap();

    let mut restored = Vec::new();
    restore_part(
        repo.as_ref(),
        &loc,
        &manifest,
        "database.sqlite.zst.age",
        &keys.decryption(),
        &mut restored,
    )
    .await
    .unwrap();
    assert_eq!(restored, db);
    let mut restored = Vec::new();
    restore_part(
        repo.as_ref(),
        &loc,
        &manifest,
        "config.json.zst.age",
        &keys.decryption(),
        &mut restored,
    )
    .await
    .unwrap();
    assert_eq!(restored, config);

    // The stored part is encrypted: the plaintext is nowhere in it.
    let stored = std::fs::read(
        repo.root()
            .join(loc.part_key(&manifest.id, "config.json.zst.age")),
    )
    .unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1"));
    assert!(!stored.windows(10).any(|w| w == b"configMaps"));
}

#[tokio::test]
async fn a_tampered_part_fails_verification_and_restore() {
    let (_dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let job = sqlite_job(
        &repo,
        &loc,
        &keys,
        io::Cursor::new(pseudo_random(200_000, 3)),
    );
    let manifest = run_backup(job).await.unwrap();
    let path = repo
        .root()
        .join(loc.part_key(&manifest.id, "database.sqlite.zst.age"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 10;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = verify_backup(repo.as_ref(), &loc, &manifest)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity(_)), "{err}");
    let err = restore_part(
        repo.as_ref(),
        &loc,
        &manifest,
        "database.sqlite.zst.age",
        &keys.decryption(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::Integrity(_) | Error::Encryption(_)),
        "{err}"
    );
}

#[tokio::test]
async fn bad_recipients_and_wrong_identities_are_clear_errors_without_secrets() {
    let err = Encryption::from_recipients("age1notakey")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1") && err.contains("age1"), "{err}");
    let keys = Keys::new();
    let err = Encryption::from_recipients(&format!("# ops key\n{}", keys.identity))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2") && err.contains("identity"), "{err}");
    assert!(!err.contains(&keys.identity[15..]), "secret leaked: {err}");
    let err = Encryption::from_recipients("\n# none\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no age recipient"), "{err}");
    let err = tend_backup::Decryption::from_identities("AGE-SECRET-KEY-1BROKEN")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("BROKEN"), "secret leaked: {err}");

    // Restoring with someone else's identity names the cause.
    let (_dir, repo) = repo();
    let loc = PolicyLocation::new("shop", "nightly");
    let job = sqlite_job(&repo, &loc, &keys, io::Cursor::new(b"data".to_vec()));
    let manifest = run_backup(job).await.unwrap();
    let other = Keys::new();
    let err = restore_part(
        repo.as_ref(),
        &loc,
        &manifest,
        "database.sqlite.zst.age",
        &other.decryption(),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Encryption(_)), "{err:?}");
    assert!(!err.to_string().contains(&other.identity), "{err}");
}

#[tokio::test]
async fn objects_are_stored_once_and_only_changes_are_read_again() {
    let (dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let photos_root = dir.path().join("photos");
    std::fs::create_dir_all(photos_root.join("photos/2026")).unwrap();
    for i in 0..20 {
        std::fs::write(
            photos_root.join(format!("photos/2026/{i:02}.jpg")),
            pseudo_random(10_000 + i * 100, i as u64 + 10),
        )
        .unwrap();
    }
    // Two keys with the same content share one blob.
    std::fs::write(
        photos_root.join("photos/copy.jpg"),
        pseudo_random(10_000, 10),
    )
    .unwrap();
    let photos: Arc<dyn Repository> = Arc::new(LocalRepository::new(&photos_root).unwrap());
    let mut source = ObjectsSource::new(photos.clone(), "photos/");
    source.small_object_limit = 10_500; // some objects take the two-pass path

    let backup = |source: ObjectsSource| {
        let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
        job.objects = Some(source);
        run_backup(job)
    };
    let first = backup(source.clone()).await.unwrap();
    let objects = first.objects.as_ref().unwrap();
    assert_eq!(
        (objects.count, objects.read, objects.uploaded),
        (21, 21, 20)
    );
    assert_eq!(repo.list(&loc.blobs_prefix()).await.unwrap().len(), 20);

    // Nothing changed: nothing is read, nothing uploaded.
    let second = backup(source.clone()).await.unwrap();
    let objects = second.objects.as_ref().unwrap();
    assert_eq!((objects.count, objects.read, objects.uploaded), (21, 0, 0));
    assert_eq!(objects.entries, first.objects.as_ref().unwrap().entries);

    // One changed, one added, one deleted.
    std::fs::write(photos_root.join("photos/2026/03.jpg"), b"new content").unwrap();
    std::fs::write(photos_root.join("photos/2026/99.jpg"), b"added").unwrap();
    std::fs::remove_file(photos_root.join("photos/2026/05.jpg")).unwrap();
    let third = backup(source.clone()).await.unwrap();
    let objects = third.objects.as_ref().unwrap();
    assert_eq!((objects.count, objects.read, objects.uploaded), (21, 2, 2));
    assert!(!objects.entries.contains_key("2026/05.jpg"));

    let mut restored = Vec::new();
    restore_object(
        repo.as_ref(),
        &loc,
        &third,
        "2026/03.jpg",
        &keys.decryption(),
        &mut restored,
    )
    .await
    .unwrap();
    assert_eq!(restored, b"new content");
    // The first backup still restores the old content of the same key.
    let mut restored = Vec::new();
    restore_object(
        repo.as_ref(),
        &loc,
        &first,
        "2026/03.jpg",
        &keys.decryption(),
        &mut restored,
    )
    .await
    .unwrap();
    assert_eq!(restored, pseudo_random(10_300, 13));
    verify_backup(repo.as_ref(), &loc, &first).await.unwrap();
}

#[tokio::test]
async fn retention_deletes_expired_backups_unreferenced_blobs_and_leftovers() {
    let (dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let photos_root = dir.path().join("photos");
    std::fs::create_dir_all(&photos_root).unwrap();
    let photos: Arc<dyn Repository> = Arc::new(LocalRepository::new(&photos_root).unwrap());
    let start: Timestamp = "2026-01-01T02:00:00Z".parse().unwrap();
    let mut ids = Vec::new();
    for day in 0..5 {
        // Each day replaces the photo: every backup references a different blob.
        std::fs::write(photos_root.join("p.jpg"), format!("photo of day {day}")).unwrap();
        let mut job = sqlite_job(
            &repo,
            &loc,
            &keys,
            io::Cursor::new(format!("db {day}").into_bytes()),
        );
        job.objects = Some(ObjectsSource::new(photos.clone(), ""));
        job.started_at = Some(start + SignedDuration::from_hours(24 * day));
        ids.push(run_backup(job).await.unwrap().id);
    }
    // Leftovers of a crashed run: a part without manifest and a temporary file.
    let crashed = loc.part_key("20250101T000000Z-dead", "database.sqlite.zst.age");
    repo.put(
        &crashed,
        Box::pin(io::Cursor::new(b"partial".to_vec())),
        None,
    )
    .await
    .unwrap();
    let temp = repo
        .root()
        .join(loc.backups_prefix())
        .join(".manifest.json.tmp-00000000000000ff");
    std::fs::write(&temp, b"half").unwrap();

    let options = RetentionOptions {
        rules: RetentionRules {
            keep_last: 0,
            keep_daily: 2,
            ..RetentionRules::default()
        },
        verified: [ids[0].clone()].into(),
        now: Timestamp::now(),
        grace: SignedDuration::ZERO,
    };
    let report = apply_retention(repo.as_ref(), &loc, &options)
        .await
        .unwrap();
    let kept: Vec<&str> = report.plan.kept.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(kept, [ids[4].as_str(), ids[3].as_str(), ids[0].as_str()]);
    assert_eq!(report.plan.deleted, [ids[2].clone(), ids[1].clone()]);
    assert_eq!(report.incomplete_removed, ["20250101T000000Z-dead"]);
    assert_eq!(report.blobs_deleted, 2);
    assert_eq!(report.uploads_aborted, 1);
    assert!(!temp.exists());

    let points = restore_points(repo.as_ref(), &loc).await.unwrap();
    assert_eq!(points.len(), 3);
    for point in &points {
        verify_backup(repo.as_ref(), &loc, &point.manifest)
            .await
            .unwrap();
    }
    assert_eq!(repo.list(&loc.blobs_prefix()).await.unwrap().len(), 3);

    // A second pass has nothing left to do.
    let again = apply_retention(repo.as_ref(), &loc, &options)
        .await
        .unwrap();
    assert!(again.plan.deleted.is_empty());
    assert_eq!((again.blobs_deleted, again.uploads_aborted), (0, 0));

    // Grace protects a run in progress.
    repo.put(
        &crashed,
        Box::pin(io::Cursor::new(b"running".to_vec())),
        None,
    )
    .await
    .unwrap();
    let patient = RetentionOptions {
        grace: SignedDuration::from_hours(1),
        ..options
    };
    let report = apply_retention(repo.as_ref(), &loc, &patient)
        .await
        .unwrap();
    assert!(report.incomplete_removed.is_empty());
    let mut text = String::new();
    repo.get(&crashed)
        .await
        .unwrap()
        .read_to_string(&mut text)
        .await
        .unwrap();
    assert_eq!(text, "running");
}

/// `data`, then never another byte: a source that hangs, so the run can be killed mid-way.
struct HangingReader {
    data: io::Cursor<Vec<u8>>,
}

impl AsyncRead for HangingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let _ = Pin::new(&mut self.data).poll_read(cx, buf);
        if buf.filled().len() == before {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_backup_leaves_no_restore_point_and_retention_cleans_it() {
    let (_dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let job = sqlite_job(
        &repo,
        &loc,
        &keys,
        HangingReader {
            data: io::Cursor::new(pseudo_random(2 << 20, 5)),
        },
    );
    let progress = job.progress.clone();
    let run = tokio::spawn(run_backup(job));
    tend_testkit::until("data to reach the repository", || {
        progress.bytes() > 1 << 20
    })
    .await;
    // The controller dies: the run's future is dropped where it stands.
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert!(
        restore_points(repo.as_ref(), &loc)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(repo.list_uploads("").await.unwrap().len(), 1);

    let report = apply_retention(
        repo.as_ref(),
        &loc,
        &RetentionOptions {
            rules: RetentionRules::default(),
            verified: Default::default(),
            now: Timestamp::now(),
            grace: SignedDuration::ZERO,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.uploads_aborted, 1);
    assert!(
        all_files(repo.root()).is_empty(),
        "{:?}",
        all_files(repo.root())
    );
}

/// Cleaning up after a run whose end was never recorded keeps a committed backup (its manifest
/// is the commit point) and removes only the parts of one that has no manifest.
#[tokio::test]
async fn cleanup_of_an_unrecorded_run_never_deletes_a_committed_backup() {
    let (_dir, repo) = repo();
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let job = sqlite_job(
        &repo,
        &loc,
        &keys,
        io::Cursor::new(pseudo_random(1 << 20, 7)),
    );
    let manifest = run_backup(job).await.unwrap();

    let found = remove_uncommitted_backup(repo.as_ref(), &loc, &manifest.id)
        .await
        .unwrap();
    assert_eq!(found, Uncommitted::Committed(Box::new(manifest.clone())));
    let points = restore_points(repo.as_ref(), &loc).await.unwrap();
    assert_eq!(
        points.len(),
        1,
        "the committed backup is still a restore point"
    );
    verify_backup(repo.as_ref(), &loc, &manifest).await.unwrap();

    // A run that stopped before its manifest: only its parts, and they go.
    let id = "20300101T000000Z-abcd";
    let part = loc.part_key(id, "database.sqlite.zst.age");
    repo.put(&part, Box::pin(io::Cursor::new(vec![1u8; 4096])), None)
        .await
        .unwrap();
    let found = remove_uncommitted_backup(repo.as_ref(), &loc, id)
        .await
        .unwrap();
    assert_eq!(found, Uncommitted::Removed { parts: 1 });
    assert!(repo.head(&part).await.unwrap().is_none());
    assert_eq!(restore_points(repo.as_ref(), &loc).await.unwrap().len(), 1);

    // A manifest that exists but cannot be read deletes nothing.
    let id = "20300102T000000Z-abcd";
    let part = loc.part_key(id, "database.sqlite.zst.age");
    repo.put(&part, Box::pin(io::Cursor::new(vec![1u8; 16])), None)
        .await
        .unwrap();
    repo.put(
        &loc.manifest_key(id),
        Box::pin(io::Cursor::new(b"{not json".to_vec())),
        None,
    )
    .await
    .unwrap();
    let err = remove_uncommitted_backup(repo.as_ref(), &loc, id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Manifest { .. }), "{err:?}");
    assert!(repo.head(&part).await.unwrap().is_some());
}
