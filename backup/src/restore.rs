//! Restores: a PostgreSQL dump streamed through `pg_restore`, and objects (photos) written back
//! to a store, each checked against the manifest before it becomes visible.
//!
//! Nothing here touches the target before the data has been read from the repository: the
//! database stream holds back its last bytes until the part's SHA-256 is proven, so `pg_restore`
//! cannot finish (and, in [`PgRestoreMode::Replace`], cannot commit its single transaction) on
//! data that turns out wrong; an object is written with one atomic put whose body fails, instead
//! of ending, when its content does not match its hash.

mod objects;

use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::process::Child;

use crate::manifest::{Manifest, PolicyLocation};
use crate::pipeline::{self, Compression, Decryption, ExpectedPart, Progress};
use crate::postgres::{
    PgRestoreMode, PostgresConnection, PostgresTools, collect_tail, libpq_command, server_tools,
    tail,
};
use crate::repository::Repository;
use crate::{Error, Result};

pub use objects::{
    ObjectsCheck, ObjectsRestoreOptions, ObjectsRestoreReport, ObjectsTarget, check_objects,
    restore_objects,
};

/// Streams the database part of `manifest` (a pg_dump custom archive) through `pg_restore` into
/// `conn`, with the client tools of the server's major version and `--no-owner
/// --no-privileges` (the target role need not be the source's).
///
/// The plaintext goes straight into pg_restore's stdin (no temporary file, bounded memory). The
/// last write is held back until the stored part's size and SHA-256 have been checked; if
/// reading, decrypting or that check fails, pg_restore is killed before it has its whole input,
/// so in [`PgRestoreMode::Replace`] (one transaction) the target is unchanged. Returns the
/// plaintext bytes fed; `progress` counts them as they go.
#[allow(clippy::too_many_arguments)]
pub async fn restore_postgres(
    repo: &dyn Repository,
    location: &PolicyLocation,
    manifest: &Manifest,
    decryption: &Decryption,
    tools: &PostgresTools,
    conn: &PostgresConnection,
    mode: PgRestoreMode,
    progress: &Progress,
) -> Result<u64> {
    let manifest_key = location.manifest_key(&manifest.id);
    let bad_manifest = |message: String| Error::Manifest {
        key: manifest_key.clone(),
        message,
    };
    let database = manifest
        .database
        .as_ref()
        .ok_or_else(|| bad_manifest("has no database".into()))?;
    if database.engine != "postgresql" {
        return Err(bad_manifest(format!(
            "the database is {}, not postgresql",
            database.engine
        )));
    }
    let part = manifest
        .part(&database.part)
        .ok_or_else(|| bad_manifest(format!("has no part {}", database.part)))?;
    if part.content != "pg_dump-custom" {
        return Err(bad_manifest(format!(
            "part {} holds {}, not a pg_dump custom archive",
            part.name, part.content
        )));
    }
    let compression = match part.compression.as_str() {
        "zstd" => Compression::Zstd(0),
        "none" => Compression::None,
        other => {
            return Err(bad_manifest(format!(
                "part {}: unknown compression {other}",
                part.name
            )));
        }
    };
    let key = location.part_key(&manifest.id, &part.name);
    let (_, bin) = server_tools(tools, conn).await?;

    let mut cmd = libpq_command(&bin.join("pg_restore"), conn);
    // `--dbname=` (empty) makes pg_restore connect, and libpq then takes the database from
    // PGDATABASE like everything else: no connection detail on the command line.
    cmd.args(mode.pg_restore_args())
        .arg("--dbname=")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::source("database", format!("starting pg_restore: {e}")))?;
    let stdin = child.stdin.take().expect("piped");
    let stderr = tokio::spawn(collect_tail(child.stderr.take().expect("piped")));
    let what = format!("pg_restore of {key} into database {}", conn.dbname);

    let mut sink = HoldBack {
        inner: stdin,
        held: Vec::new(),
        pos: 0,
        progress: progress.clone(),
    };
    let expected = ExpectedPart {
        key: &key,
        stored: Some((part.stored_bytes, &part.sha256)),
    };
    let fed = match pipeline::restore(repo, &expected, decryption, compression, &mut sink).await {
        // Proven: now pg_restore may have the rest, and the end of its input.
        Ok(n) => sink.release().await.map(|()| n),
        Err(e) => Err(e),
    };
    drop(sink);
    match fed {
        Ok(n) => {
            let status = child
                .wait()
                .await
                .map_err(|e| Error::source("database", format!("{what}: {e}")))?;
            if status.success() {
                Ok(n)
            } else {
                let err = stderr.await.unwrap_or_default();
                Err(Error::source(
                    "database",
                    format!("{what} failed ({status}): {}", tail(&err)),
                ))
            }
        }
        Err(error) => Err(stop(child, stderr, error, &what).await),
    }
}

/// After a failed feed: pg_restore's own failure if it exited first (the broken pipe was only a
/// consequence), otherwise `error` — with pg_restore killed before it could finish.
async fn stop(
    mut child: Child,
    stderr: tokio::task::JoinHandle<String>,
    error: Error,
    what: &str,
) -> Error {
    let broken_pipe = matches!(&error, Error::Io { .. });
    if broken_pipe
        && let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(5), child.wait()).await
        && !status.success()
    {
        let err = stderr.await.unwrap_or_default();
        return Error::source(
            "database",
            format!("{what} failed ({status}): {}", tail(&err)),
        );
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    tracing::warn!(%error, "{what} stopped before the end of its input");
    error
}

/// A writer that always keeps the latest write back from `inner` until [`HoldBack::release`]:
/// the reader on the other side never sees the end of the data before it has been verified.
/// Holds at most one write (the pipeline writes 128 KiB chunks).
struct HoldBack<W> {
    inner: W,
    held: Vec<u8>,
    pos: usize,
    progress: Progress,
}

impl<W: AsyncWrite + Unpin> HoldBack<W> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.pos < self.held.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.held[self.pos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.pos += n;
                    self.progress.add(n as u64);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.held.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes what is held and ends the stream.
    async fn release(&mut self) -> Result<()> {
        let write = async {
            std::future::poll_fn(|cx| self.poll_drain(cx)).await?;
            self.inner.flush().await?;
            self.inner.shutdown().await
        };
        write
            .await
            .map_err(|e| Error::io("writing to pg_restore", e))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HoldBack<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => {
                self.held.extend_from_slice(buf);
                Poll::Ready(Ok(buf.len()))
            }
            other => other.map(|r| r.map(|()| 0)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Flushing never releases the held write.
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Err(std::io::Error::other(
            "the held-back stream ends only through release",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn hold_back_keeps_the_last_write_until_released() {
        let (writer, mut reader) = tokio::io::duplex(1024 * 1024);
        let progress = Progress::default();
        let mut sink = HoldBack {
            inner: writer,
            held: Vec::new(),
            pos: 0,
            progress: progress.clone(),
        };
        sink.write_all(b"first ").await.unwrap();
        sink.write_all(b"second").await.unwrap();
        sink.flush().await.unwrap();
        let mut buf = vec![0u8; 64];
        let n = reader.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first ");
        assert_eq!(progress.bytes(), 6);
        sink.release().await.unwrap();
        drop(sink);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"second");
        assert_eq!(progress.bytes(), 12);
    }
}
