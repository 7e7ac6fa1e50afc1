//! The engine against a real S3-compatible server (moto), including the server going away in
//! the middle of a multipart upload.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tend_backup::{
    BackupJob, DatabaseSource, ObjectsSource, PolicyLocation, Repository, RetentionOptions,
    RetentionRules, apply_retention, restore_object, restore_part, restore_points, run_backup,
    verify_backup,
};
use tend_testkit::pseudo_random;
use tend_testkit::{CutProxy, Keys, S3_SECRET, S3Server, s3_repo, until};
use tokio::io::{AsyncRead, ReadBuf};

/// `total` bytes of incompressible data, produced at a bounded rate, optionally failing at the end.
struct SlowSource {
    left: usize,
    fail_at_end: bool,
    x: u64,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl SlowSource {
    fn new(total: usize, fail_at_end: bool) -> Self {
        Self {
            left: total,
            fail_at_end,
            x: 0x9e37_79b9_7f4a_7c15,
            sleep: None,
        }
    }
}

impl AsyncRead for SlowSource {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(sleep) = self.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        if self.left == 0 {
            return if self.fail_at_end {
                Poll::Ready(Err(io::Error::other("source broke")))
            } else {
                Poll::Ready(Ok(()))
            };
        }
        let n = self.left.min(buf.remaining()).min(64 * 1024);
        let mut chunk = Vec::with_capacity(n);
        for _ in 0..n {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            chunk.push(self.x as u8);
        }
        buf.put_slice(&chunk);
        self.left -= n;
        self.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(2))));
        Poll::Ready(Ok(()))
    }
}

use std::future::Future;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip_single_put_and_multipart_leave_no_pending_upload() {
    let moto = S3Server::start();
    let repo = Arc::new(s3_repo(&moto.endpoint(), "backups", "tend/prod").await);
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    for size in [1_000usize, 13 << 20] {
        let data = pseudo_random(size, size as u64);
        let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
        job.database = Some(DatabaseSource::Sqlite {
            row_counts: Default::default(),
            name: "app".into(),
            snapshot: Box::pin(io::Cursor::new(data.clone())),
        });
        let manifest = run_backup(job).await.unwrap();
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
        assert!(restored == data, "restored bytes differ for size {size}");
    }
    assert_eq!(restore_points(repo.as_ref(), &loc).await.unwrap().len(), 2);
    assert!(repo.list_uploads("").await.unwrap().is_empty());
    // Keys live under the configured prefix.
    let raw = repo
        .client()
        .list_objects_v2()
        .bucket("backups")
        .send()
        .await
        .unwrap();
    assert!(raw.contents().iter().all(|o| {
        o.key()
            .unwrap()
            .starts_with("tend/prod/shop/nightly/backups/")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_failing_body_aborts_its_multipart_upload() {
    let moto = S3Server::start();
    let repo = s3_repo(&moto.endpoint(), "backups", "").await;
    let err = repo
        .put(
            "shop/nightly/backups/x/database.sqlite.zst.age",
            Box::pin(SlowSource::new(12 << 20, true)),
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("source broke"), "{err}");
    assert!(repo.list_uploads("").await.unwrap().is_empty());
    assert!(repo.list("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_server_gone_mid_upload_fails_cleanly_and_nothing_is_left_behind() {
    let moto = S3Server::start();
    let proxy = CutProxy::start(moto.port).await;
    let direct = Arc::new(s3_repo(&moto.endpoint(), "backups", "").await);
    let mut config = tend_testkit::s3::s3_config(&proxy.endpoint(), "backups", "");
    config.connect_timeout = Duration::from_secs(2);
    let repo = Arc::new(tend_backup::S3Repository::new(config).unwrap());
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");

    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Sqlite {
        row_counts: Default::default(),
        name: "app".into(),
        snapshot: Box::pin(SlowSource::new(200 << 20, false)),
    });
    let progress = job.progress.clone();
    let run = tokio::spawn(run_backup(job));
    // Wait until the multipart upload is under way (more than one part produced), then cut.
    until("the upload to start", || progress.bytes() > 7 << 20).await;
    assert!(
        !direct.list_uploads("").await.unwrap().is_empty(),
        "no multipart upload in flight"
    );
    proxy.cut();
    let err = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the run ends once the server is gone")
        .unwrap()
        .unwrap_err();
    let message = err.to_string();
    println!("failure reported: {message}");
    assert!(
        message.starts_with("repository: put shop/nightly/backups/"),
        "{message}"
    );
    assert!(!message.contains(S3_SECRET), "{message}");

    // No restore point; the upload the run could not abort is still pending on the server.
    assert!(
        restore_points(direct.as_ref(), &loc)
            .await
            .unwrap()
            .is_empty()
    );
    let orphans = direct.list_uploads("").await.unwrap();
    assert!(
        !orphans.is_empty(),
        "the run could not abort its upload while the server was away"
    );

    // The server is back: the next retention pass aborts the orphan, the next run succeeds.
    proxy.restore();
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
    assert_eq!(report.uploads_aborted, orphans.len() as u64);
    assert!(direct.list_uploads("").await.unwrap().is_empty());
    assert!(direct.list("").await.unwrap().is_empty());

    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Sqlite {
        row_counts: Default::default(),
        name: "app".into(),
        snapshot: Box::pin(SlowSource::new(12 << 20, false)),
    });
    let manifest = run_backup(job).await.unwrap();
    verify_backup(repo.as_ref(), &loc, &manifest).await.unwrap();
    assert!(direct.list_uploads("").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_bucket_as_object_source_is_backed_up_incrementally() {
    let moto = S3Server::start();
    let photos = Arc::new(s3_repo(&moto.endpoint(), "photos", "").await);
    let repo = Arc::new(s3_repo(&moto.endpoint(), "backups", "").await);
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    for i in 0..30u64 {
        photos
            .put(
                &format!("uploads/{i:02}.jpg"),
                Box::pin(io::Cursor::new(pseudo_random(5_000, 2 * i + 1))),
                None,
            )
            .await
            .unwrap();
    }
    let backup = || {
        let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
        job.objects = Some(ObjectsSource::new(photos.clone(), "uploads/"));
        run_backup(job)
    };
    let first = backup().await.unwrap();
    let o = first.objects.as_ref().unwrap();
    assert_eq!((o.count, o.read, o.uploaded), (30, 30, 30));
    photos
        .put(
            "uploads/07.jpg",
            Box::pin(io::Cursor::new(b"edited".to_vec())),
            None,
        )
        .await
        .unwrap();
    let second = backup().await.unwrap();
    let o = second.objects.as_ref().unwrap();
    assert_eq!((o.count, o.read, o.uploaded), (30, 1, 1));
    let mut restored = Vec::new();
    restore_object(
        repo.as_ref(),
        &loc,
        &second,
        "07.jpg",
        &keys.decryption(),
        &mut restored,
    )
    .await
    .unwrap();
    assert_eq!(restored, b"edited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_run_killed_mid_upload_leaves_an_upload_that_retention_aborts() {
    let moto = S3Server::start();
    let repo = Arc::new(s3_repo(&moto.endpoint(), "backups", "").await);
    let keys = Keys::new();
    let loc = PolicyLocation::new("shop", "nightly");
    let mut job = BackupJob::new(repo.clone(), loc.clone(), keys.encryption());
    job.database = Some(DatabaseSource::Sqlite {
        row_counts: Default::default(),
        name: "app".into(),
        snapshot: Box::pin(SlowSource::new(200 << 20, false)),
    });
    let progress = job.progress.clone();
    let run = tokio::spawn(run_backup(job));
    until("the upload to start", || progress.bytes() > 7 << 20).await;
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert!(
        restore_points(repo.as_ref(), &loc)
            .await
            .unwrap()
            .is_empty()
    );
    let pending = repo.list_uploads("").await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");

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
    assert!(repo.list_uploads("").await.unwrap().is_empty());
    assert!(repo.list("").await.unwrap().is_empty());
}
