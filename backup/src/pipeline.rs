//! The streaming pipeline every part of a backup goes through:
//!
//! ```text
//! source AsyncRead → zstd (optional) → age (x25519 recipients) → SHA-256 + byte count → repository
//! ```
//!
//! and back for restores: repository → SHA-256 → age decrypt → zstd decode → sink, with the hash
//! and size checked against the manifest at the end. Stages are connected by a small in-memory
//! pipe, so memory does not depend on the size of the data. Encoding runs in its own task, so
//! compression and encryption overlap with the upload on a multi-core machine.
//!
//! A failing source must never produce a stored object: the pipe only reports a clean end of
//! data once the encoder has finished successfully; any other end is an error the repository
//! sees, and a repository never stores a body that failed.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_compression::Level;
use futures::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio_util::compat::{
    FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt,
};

use crate::repository::Repository;
use crate::{Error, Result};

const PIPE_BYTES: usize = 256 * 1024;
const CHUNK: usize = 128 * 1024;

/// The public keys backups are encrypted to (age x25519 recipients).
#[derive(Clone)]
pub struct Encryption {
    recipients: Vec<age::x25519::Recipient>,
}

impl fmt::Debug for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.recipients.iter().map(ToString::to_string))
            .finish()
    }
}

impl Encryption {
    /// Parses recipients, one `age1...` per line; blank lines and `#` comments are ignored.
    /// Errors name the line, never its content (a pasted identity must not leak into a status).
    pub fn from_recipients(text: &str) -> Result<Self> {
        let mut recipients = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("AGE-SECRET-KEY-") {
                return Err(Error::Encryption(format!(
                    "recipients line {}: this is an identity (secret key), not a recipient; give its public key (age1...)",
                    n + 1
                )));
            }
            let recipient = line.parse::<age::x25519::Recipient>().map_err(|_| {
                Error::Encryption(format!(
                    "recipients line {}: not an age x25519 recipient (expected age1...)",
                    n + 1
                ))
            })?;
            recipients.push(recipient);
        }
        if recipients.is_empty() {
            return Err(Error::Encryption("no age recipient given".into()));
        }
        Ok(Self { recipients })
    }

    /// The recipients as text, for the manifest (public keys only).
    pub fn recipients(&self) -> Vec<String> {
        self.recipients.iter().map(ToString::to_string).collect()
    }

    fn encryptor(&self) -> Result<age::Encryptor> {
        age::Encryptor::with_recipients(self.recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::Encryption(e.to_string()))
    }
}

/// The secret keys restores decrypt with. `Debug` never prints them.
#[derive(Clone)]
pub struct Decryption {
    identities: Vec<age::x25519::Identity>,
}

impl fmt::Debug for Decryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decryption({} identities)", self.identities.len())
    }
}

impl Decryption {
    /// Parses identities, one `AGE-SECRET-KEY-1...` per line (an `age-keygen` file works).
    pub fn from_identities(text: &str) -> Result<Self> {
        let mut identities = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = line.parse::<age::x25519::Identity>().map_err(|_| {
                Error::Encryption(format!(
                    "identity line {}: not an age x25519 identity (expected AGE-SECRET-KEY-1...)",
                    n + 1
                ))
            })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(Error::Encryption("no age identity given".into()));
        }
        Ok(Self { identities })
    }
}

/// How a part is encoded before encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// zstd at this level (3 is a good default: fast, and dumps shrink a lot).
    Zstd(i32),
    /// Already-compressed data (photos): encryption only.
    None,
}

/// Bytes moved so far by a running backup or restore, readable from another task (status
/// progress).
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Counts `n` more bytes (restores count the plaintext they write).
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

/// What was stored for one part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPart {
    /// Bytes read from the source.
    pub source_bytes: u64,
    /// Bytes stored in the repository (after compression and encryption).
    pub stored_bytes: u64,
    /// SHA-256 (hex) of the stored bytes.
    pub sha256: String,
}

#[derive(Default)]
struct Digesting {
    hasher: Sha256,
    bytes: u64,
}

/// Hashes and counts what passes through; fails at the end of data unless `clean_end` is set,
/// so an encoder that died is never mistaken for a complete stream.
struct Tap<R> {
    inner: R,
    state: Arc<Mutex<Digesting>>,
    clean_end: Option<Arc<AtomicBool>>,
    progress: Option<Progress>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Tap<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if new.is_empty() {
                    if let Some(flag) = &this.clean_end
                        && !flag.load(Ordering::Acquire)
                    {
                        return Poll::Ready(Err(io::Error::other(
                            "the source failed before the end of its data",
                        )));
                    }
                } else {
                    let mut state = this.state.lock().expect("digest lock");
                    state.hasher.update(new);
                    state.bytes += new.len() as u64;
                    if let Some(p) = &this.progress {
                        p.add(new.len() as u64);
                    }
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// A futures writer whose close only flushes: the pipe must stay open until the encoder has
/// declared success, so that the reader can tell a clean end from a crash.
struct KeepOpen<W>(W);

impl<W: AsyncWrite + Unpin> AsyncWrite for KeepOpen<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
}

async fn encode<S, W>(
    mut source: S,
    writer: W,
    encryptor: age::Encryptor,
    compression: Compression,
) -> Result<u64>
where
    S: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send,
{
    let sealed = encryptor
        .wrap_async_output(writer)
        .await
        .map_err(|e| Error::Encryption(format!("writing the age header: {e}")))?;
    let mut out: Pin<Box<dyn AsyncWrite + Send + '_>> = match compression {
        Compression::Zstd(level) => Box::pin(
            async_compression::futures::write::ZstdEncoder::with_quality(
                sealed,
                Level::Precise(level),
            ),
        ),
        Compression::None => Box::pin(sealed),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = source.read(&mut buf).await.map_err(|e| Error::Source {
            component: String::new(),
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        total += n as u64;
        out.write_all(&buf[..n])
            .await
            .map_err(|e| Error::io("writing to the repository stream", e))?;
    }
    out.close()
        .await
        .map_err(|e| Error::io("finishing the encrypted stream", e))?;
    Ok(total)
}

/// Streams `source` through compression and encryption into `repo` under `key`.
///
/// Returns sizes and the SHA-256 of the stored bytes. Fails — and stores nothing — when the
/// source fails, the encoder fails or the repository fails. A source error is reported as
/// [`Error::Source`] with `component` set.
pub async fn store<S>(
    repo: &dyn Repository,
    key: &str,
    component: &str,
    source: S,
    encryption: &Encryption,
    compression: Compression,
    progress: Option<&Progress>,
) -> Result<StoredPart>
where
    S: AsyncRead + Send + Unpin + 'static,
{
    let encryptor = encryption.encryptor()?;
    let (pipe_in, pipe_out) = tokio::io::duplex(PIPE_BYTES);
    let clean_end = Arc::new(AtomicBool::new(false));
    let state = Arc::new(Mutex::new(Digesting::default()));
    let encoder = {
        let clean_end = clean_end.clone();
        AbortOnDrop(tokio::spawn(async move {
            let mut writer = KeepOpen(pipe_in.compat_write());
            let result = encode(source, &mut writer, encryptor, compression).await;
            if result.is_ok() {
                clean_end.store(true, Ordering::Release);
            }
            // Dropping the writer ends the pipe: a clean end now only if the flag is set.
            drop(writer);
            result
        }))
    };
    let tap = Tap {
        inner: pipe_out,
        state: state.clone(),
        clean_end: Some(clean_end),
        progress: progress.cloned(),
    };
    let put = repo.put(key, Box::pin(tap), None).await;
    let encoded = encoder
        .join()
        .await
        .map_err(|e| Error::io("the encoder task", io::Error::other(e)))?;
    // The source's own failure is the root cause; report it before the repository's.
    let source_bytes = match encoded {
        Ok(n) => n,
        Err(Error::Source { message, .. }) => {
            return Err(Error::source(component, message));
        }
        Err(e) => {
            put?;
            return Err(e);
        }
    };
    let stored_bytes = put?;
    let digest = std::mem::take(&mut *state.lock().expect("digest lock"));
    if digest.bytes != stored_bytes {
        return Err(Error::Integrity(format!(
            "{key}: {} bytes streamed but the repository reports {stored_bytes}",
            digest.bytes
        )));
    }
    Ok(StoredPart {
        source_bytes,
        stored_bytes,
        sha256: hex::encode(digest.hasher.finalize()),
    })
}

/// Aborts the encoder task when the run is dropped (a cancelled or killed run), so it does not
/// linger holding the source (and, for pg_dump, the child process).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> std::result::Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a restore expects of a stored part (from its manifest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedPart<'a> {
    pub key: &'a str,
    /// Size and SHA-256 (hex) of the stored bytes; `None` for blobs, whose plaintext hash is
    /// their name and is checked by the caller.
    pub stored: Option<(u64, &'a str)>,
}

/// Streams a stored part back: verify, decrypt, decompress, write to `sink`.
///
/// The SHA-256 and size of the stored bytes are checked when the stream ends, and age
/// authenticates every 64 KiB chunk as it goes; the restore has failed if this returns an error,
/// even though some data may have reached the sink. Returns the bytes written to the sink.
pub async fn restore<W>(
    repo: &dyn Repository,
    expected: &ExpectedPart<'_>,
    decryption: &Decryption,
    compression: Compression,
    sink: &mut W,
) -> Result<u64>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let key = expected.key;
    let body = repo.get(key).await?;
    let state = Arc::new(Mutex::new(Digesting::default()));
    let tap = Tap {
        inner: body,
        state: state.clone(),
        clean_end: None,
        progress: None,
    };
    let mut raw = futures::io::BufReader::with_capacity(CHUNK, tap.compat());
    let decryptor = age::Decryptor::new_async_buffered(&mut raw)
        .await
        .map_err(|e| Error::Encryption(format!("{key}: {e}")))?;
    let plain = decryptor
        .decrypt_async(
            decryption
                .identities
                .iter()
                .map(|i| i as &dyn age::Identity),
        )
        .map_err(|e| Error::Encryption(format!("{key}: {e}")))?;
    let mut decoded: Pin<Box<dyn AsyncRead + Send + '_>> = match compression {
        Compression::Zstd(_) => Box::pin(
            async_compression::futures::bufread::ZstdDecoder::new(futures::io::BufReader::new(
                plain,
            ))
            .compat(),
        ),
        Compression::None => Box::pin(plain.compat()),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    loop {
        let n = decoded
            .read(&mut buf)
            .await
            .map_err(|e| Error::Integrity(format!("{key}: {e}")))?;
        if n == 0 {
            break;
        }
        sink.write_all(&buf[..n])
            .await
            .map_err(|e| Error::io(format!("writing the restored {key}"), e))?;
        written += n as u64;
    }
    sink.flush()
        .await
        .map_err(|e| Error::io(format!("writing the restored {key}"), e))?;
    drop(decoded);
    // Whatever the decoders left unread still counts for the hash.
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest)
        .await
        .map_err(|e| Error::repo("get", key, e))?;
    check_digest(&state, expected)?;
    Ok(written)
}

/// Reads a stored part and checks its size and SHA-256 without decrypting it (no identity
/// needed): proves the repository still holds what the manifest promises.
pub async fn verify(repo: &dyn Repository, expected: &ExpectedPart<'_>) -> Result<()> {
    let body = repo.get(expected.key).await?;
    let state = Arc::new(Mutex::new(Digesting::default()));
    let mut tap = Tap {
        inner: body,
        state: state.clone(),
        clean_end: None,
        progress: None,
    };
    tokio::io::copy(&mut tap, &mut tokio::io::sink())
        .await
        .map_err(|e| Error::repo("get", expected.key, e))?;
    check_digest(&state, expected)
}

fn check_digest(state: &Mutex<Digesting>, expected: &ExpectedPart<'_>) -> Result<()> {
    let Some((stored_bytes, sha256)) = expected.stored else {
        return Ok(());
    };
    let digest = std::mem::take(&mut *state.lock().expect("digest lock"));
    if digest.bytes != stored_bytes {
        return Err(Error::Integrity(format!(
            "{}: {} bytes stored, manifest says {stored_bytes}",
            expected.key, digest.bytes
        )));
    }
    let actual = hex::encode(digest.hasher.finalize());
    if actual != sha256 {
        return Err(Error::Integrity(format!(
            "{}: SHA-256 {actual} does not match the manifest's {sha256}",
            expected.key
        )));
    }
    Ok(())
}

/// The plaintext of an age-encrypted, uncompressed stream (a blob), as a reader that owns its
/// input: age authenticates every 64 KiB chunk and the end, so a read error means tampered or
/// truncated data. `key` names the stream in errors.
pub(crate) async fn decrypting_reader(
    body: crate::repository::ByteReader,
    decryption: &Decryption,
    key: &str,
) -> Result<crate::repository::ByteReader> {
    let raw = futures::io::BufReader::with_capacity(CHUNK, body.compat());
    let decryptor = age::Decryptor::new_async_buffered(raw)
        .await
        .map_err(|e| Error::Encryption(format!("{key}: {e}")))?;
    let plain = decryptor
        .decrypt_async(
            decryption
                .identities
                .iter()
                .map(|i| i as &dyn age::Identity),
        )
        .map_err(|e| Error::Encryption(format!("{key}: {e}")))?;
    Ok(Box::pin(plain.compat()))
}
