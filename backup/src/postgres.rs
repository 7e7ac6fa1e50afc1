//! PostgreSQL as a backup source: `pg_dump --format=custom` run as a child process whose stdout
//! is the stream, with the client tools matched to the server's major version.
//!
//! Credentials go to the child through libpq's environment (`PGPASSWORD` etc.), never on its
//! command line (which `ps` shows) and never in messages. The dump reader reports the end of
//! data only after `pg_dump` exited 0; a non-zero exit, a signal, or a server that went away is
//! an error carrying the tail of `pg_dump`'s stderr, so no half dump is ever committed.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::process::{ChildStdout, Command};

use crate::{Error, Result};

pub(crate) const STDERR_TAIL: usize = 2048;

/// How to reach the database (the keys of the connection Secret). `Debug` hides the password.
#[derive(Clone)]
pub struct PostgresConnection {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: String,
}

impl fmt::Debug for PostgresConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConnection")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where client tools are looked for: `<dir>/<major>/bin` for each dir (Debian's layout).
#[derive(Clone, Debug)]
pub struct PostgresTools {
    pub search_dirs: Vec<PathBuf>,
}

impl Default for PostgresTools {
    fn default() -> Self {
        Self {
            search_dirs: vec![PathBuf::from("/usr/lib/postgresql")],
        }
    }
}

impl PostgresTools {
    /// Installed major versions, newest first.
    pub fn installed(&self) -> Vec<(u32, PathBuf)> {
        let mut found = Vec::new();
        for dir in &self.search_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(major) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let bin = entry.path().join("bin");
                if bin.join("pg_dump").is_file() {
                    found.push((major, bin));
                }
            }
        }
        found.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
        found
    }

    /// The bin directory whose major version equals the server's.
    pub fn for_server(&self, server_major: u32) -> Result<PathBuf> {
        let installed = self.installed();
        installed
            .iter()
            .find(|(major, _)| *major == server_major)
            .map(|(_, bin)| bin.clone())
            .ok_or_else(|| {
                Error::source(
                    "database",
                    format!(
                        "no pg_dump for PostgreSQL {server_major} (found: {}); install postgresql-client-{server_major}",
                        if installed.is_empty() {
                            "none".to_owned()
                        } else {
                            installed
                                .iter()
                                .map(|(m, _)| m.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                )
            })
    }

    /// Any psql (the newest), for queries that do not depend on the version.
    fn any_bin(&self) -> Result<PathBuf> {
        self.installed()
            .into_iter()
            .next()
            .map(|(_, bin)| bin)
            .ok_or_else(|| {
                Error::source(
                    "database",
                    "no PostgreSQL client tools found; install postgresql-client",
                )
            })
    }
}

pub(crate) fn libpq_command(program: &Path, conn: &PostgresConnection) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PGHOST", &conn.host)
        .env("PGPORT", conn.port.to_string())
        .env("PGDATABASE", &conn.dbname)
        .env("PGUSER", &conn.user)
        .env("PGPASSWORD", &conn.password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGAPPNAME", "tend-backup")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn psql(bin: &Path, conn: &PostgresConnection, sql: &str) -> Result<String> {
    psql_with(bin, conn, sql, &[]).await
}

async fn psql_with(
    bin: &Path,
    conn: &PostgresConnection,
    sql: &str,
    env: &[(&str, &str)],
) -> Result<String> {
    let out = libpq_command(&bin.join("psql"), conn)
        .envs(env.iter().copied())
        .args(["--no-psqlrc", "--no-password", "-X", "-A", "-t", "-q"])
        .args(["-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| Error::source("database", format!("running psql: {e}")))?;
    if !out.status.success() {
        return Err(Error::source(
            "database",
            format!(
                "psql failed ({}): {}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr))
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A child's stderr, keeping only the last `STDERR_TAIL` bytes or so, so a chatty child cannot
/// grow our memory.
pub(crate) async fn collect_tail(mut stderr: tokio::process::ChildStderr) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_TAIL {
                    kept.drain(..kept.len() - STDERR_TAIL);
                }
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

pub(crate) fn tail(text: &str) -> String {
    let text = text.trim();
    let start = text.len().saturating_sub(STDERR_TAIL);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].replace('\n', "; ")
}

/// Server facts gathered before a dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// `server_version_num / 10000`, e.g. 15.
    pub major: u32,
    /// `server_version`, e.g. `15.18 (Debian 15.18-0+deb12u1)`.
    pub version: String,
}

/// Asks the server its version.
pub async fn server_info(tools: &PostgresTools, conn: &PostgresConnection) -> Result<ServerInfo> {
    let out = psql(
        &tools.any_bin()?,
        conn,
        "select current_setting('server_version_num'), current_setting('server_version')",
    )
    .await?;
    let line = out.lines().next().unwrap_or_default();
    let (num, version) = line
        .split_once('\t')
        .ok_or_else(|| Error::source("database", "unexpected answer to the version query"))?;
    let num: u32 = num
        .trim()
        .parse()
        .map_err(|_| Error::source("database", "unexpected server_version_num"))?;
    Ok(ServerInfo {
        major: num / 10000,
        version: version.trim().to_owned(),
    })
}

/// Exact row counts of every user table (`schema.table`), in one query.
pub async fn row_counts(bin: &Path, conn: &PostgresConnection) -> Result<BTreeMap<String, u64>> {
    let sql = "select format('%s.%s', n.nspname, c.relname), \
        (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
        from pg_class c join pg_namespace n on n.oid = c.relnamespace \
        where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') \
        and n.nspname not like 'pg_toast%' order by 1";
    let out = psql(bin, conn, sql).await?;
    let mut counts = BTreeMap::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        if let Some((table, count)) = line.split_once('\t')
            && let Ok(count) = count.trim().parse()
        {
            counts.insert(table.to_owned(), count);
        }
    }
    Ok(counts)
}

/// How pg_restore treats the target database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgRestoreMode {
    /// The database is new and empty (a scratch database).
    IntoEmpty,
    /// Replace the objects of an existing database: `--clean --if-exists --single-transaction`,
    /// so a failed restore changes nothing (in-place restores).
    Replace,
}

impl PgRestoreMode {
    /// pg_restore's arguments for this mode (besides the connection and the input).
    pub fn pg_restore_args(self) -> &'static [&'static str] {
        match self {
            PgRestoreMode::IntoEmpty => &[
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--no-password",
            ],
            PgRestoreMode::Replace => &[
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--no-password",
                "--clean",
                "--if-exists",
                "--single-transaction",
            ],
        }
    }
}

/// A database error with what was being done in front of its message.
fn in_context(error: Error, context: &str) -> Error {
    match error {
        Error::Source { component, message } => Error::Source {
            component,
            message: format!("{context}: {message}"),
        },
        other => other,
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn check_database_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(Error::config(
            "database name",
            "must be 1 to 63 bytes without NUL",
        ));
    }
    Ok(())
}

/// The client tools matching the server of `conn`, and its facts.
pub async fn server_tools(
    tools: &PostgresTools,
    conn: &PostgresConnection,
) -> Result<(ServerInfo, PathBuf)> {
    let server = server_info(tools, conn).await?;
    let bin = tools.for_server(server.major)?;
    Ok((server, bin))
}

/// Creates database `name` (quoted identifier) on the server of `admin` (which connects to its
/// maintenance database). Errors if it exists.
pub async fn create_database(
    tools: &PostgresTools,
    admin: &PostgresConnection,
    name: &str,
) -> Result<()> {
    check_database_name(name)?;
    let (_, bin) = server_tools(tools, admin).await?;
    psql(
        &bin,
        admin,
        &format!("create database {}", quote_ident(name)),
    )
    .await
    .map_err(|e| in_context(e, &format!("creating database {name}")))?;
    Ok(())
}

/// Drops database `name` if it exists, terminating its connections (`WITH (FORCE)` on
/// PostgreSQL 13 and later; older servers get `pg_terminate_backend` first).
pub async fn drop_database(
    tools: &PostgresTools,
    admin: &PostgresConnection,
    name: &str,
) -> Result<()> {
    check_database_name(name)?;
    let (server, bin) = server_tools(tools, admin).await?;
    let quoted = quote_ident(name);
    let sql = if server.major >= 13 {
        format!("drop database if exists {quoted} with (force)")
    } else {
        let literal = format!("'{}'", name.replace('\'', "''"));
        psql(
            &bin,
            admin,
            &format!(
                "select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = {literal} and pid <> pg_backend_pid()"
            ),
        )
        .await?;
        format!("drop database if exists {quoted}")
    };
    psql(&bin, admin, &sql)
        .await
        .map_err(|e| in_context(e, &format!("dropping database {name}")))?;
    Ok(())
}

/// Runs a check query that must return exactly one row with one boolean column: `Ok(true)` or
/// `Ok(false)`. Anything else (no row, several rows or columns, another type, NULL) is an error
/// saying what came back — row and column counts and the column's type, never its value. The
/// query runs in a read-only transaction, with the client tools of the server's version.
/// `sql` must be a query usable as a subquery (a `SELECT` or `VALUES`; a trailing `;` is fine).
pub async fn check_query(
    tools: &PostgresTools,
    conn: &PostgresConnection,
    sql: &str,
) -> Result<bool> {
    let (_, bin) = server_tools(tools, conn).await?;
    let body = sql
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if body.is_empty() {
        return Err(Error::config("check query", "is empty"));
    }
    // Each row as JSON (booleans stay booleans, text 't' stays a string) with its column count
    // (json_object_keys keeps duplicate names, which a JSON map would merge).
    let wrapped = format!(
        "select (select count(*) from json_object_keys(row_to_json(q))), row_to_json(q)::text \
         from (\n{body}\n) q"
    );
    let out = psql_with(
        &bin,
        conn,
        &wrapped,
        &[("PGOPTIONS", "-c default_transaction_read_only=on")],
    )
    .await
    .map_err(|e| in_context(e, "check query"))?;
    let rows: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    if rows.len() != 1 {
        return Err(Error::source(
            "database",
            format!(
                "check query returned {} rows; expected exactly one row with one boolean column",
                rows.len()
            ),
        ));
    }
    let (columns, json) = rows[0]
        .split_once('\t')
        .ok_or_else(|| Error::source("database", "unexpected answer to the check query"))?;
    if columns.trim() != "1" {
        return Err(Error::source(
            "database",
            format!(
                "check query returned one row with {} columns; expected one boolean column",
                columns.trim()
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|_| Error::source("database", "unexpected answer to the check query"))?;
    let Some((column, value)) = value.as_object().and_then(|o| o.iter().next()) else {
        return Err(Error::source(
            "database",
            "unexpected answer to the check query",
        ));
    };
    match value {
        serde_json::Value::Bool(b) => Ok(*b),
        other => {
            let kind = match other {
                serde_json::Value::Null => "NULL",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Array(_) => "an array",
                _ => "a record or JSON object",
            };
            Err(Error::source(
                "database",
                format!("check query returned {kind} in column {column:?}; expected a boolean"),
            ))
        }
    }
}

/// Exact row counts of every user table (`schema.table`), in the format of the manifest's
/// `rowCounts`, with the client tools of the server's version.
pub async fn table_row_counts(
    tools: &PostgresTools,
    conn: &PostgresConnection,
) -> Result<BTreeMap<String, u64>> {
    let (_, bin) = server_tools(tools, conn).await?;
    row_counts(&bin, conn).await
}

/// `pg_dump --version` of a bin directory.
pub async fn pg_dump_version(bin: &Path) -> Result<String> {
    let out = Command::new(bin.join("pg_dump"))
        .arg("--version")
        .output()
        .await
        .map_err(|e| Error::source("database", format!("running pg_dump --version: {e}")))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

type ExitFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// The stdout of a child process as a stream that ends cleanly only if the child exits 0.
/// Dropping it kills the child.
pub struct ChildStream {
    stdout: ChildStdout,
    exit: Option<ExitFuture>,
}

impl ChildStream {
    /// Spawns `cmd` with stdout and stderr piped.
    pub fn spawn(mut cmd: Command, what: &'static str) -> Result<Self> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::source("database", format!("starting {what}: {e}")))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let exit = async move {
            let (status, err) = tokio::join!(child.wait(), collect_tail(stderr));
            let status = status?;
            if status.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "{what} failed ({status}): {}",
                    tail(&err)
                )))
            }
        };
        Ok(Self {
            stdout,
            exit: Some(Box::pin(exit)),
        })
    }
}

impl AsyncRead for ChildStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                // End of stdout: the data is complete only if the child says so.
                let Some(exit) = self.exit.as_mut() else {
                    return Poll::Ready(Ok(()));
                };
                match exit.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        self.exit = None;
                        Poll::Ready(result)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

/// A PostgreSQL database to dump.
#[derive(Clone, Debug)]
pub struct PostgresSource {
    pub connection: PostgresConnection,
    pub tools: PostgresTools,
    /// Count rows per table before the dump (one query; exact counts).
    pub count_rows: bool,
}

/// A dump about to stream, with what was learnt before starting it.
pub struct PreparedDump {
    pub stream: ChildStream,
    pub server: ServerInfo,
    pub pg_dump_version: String,
    pub row_counts: BTreeMap<String, u64>,
}

impl PostgresSource {
    pub fn new(connection: PostgresConnection) -> Self {
        Self {
            connection,
            tools: PostgresTools::default(),
            count_rows: true,
        }
    }

    /// Finds the server version, picks the matching pg_dump, counts rows and starts the dump
    /// (`--format=custom --compress=0`: the pipeline compresses with zstd, faster than
    /// pg_dump's zlib, and the result is a plain custom-format archive after `zstd -d`).
    pub async fn start(&self) -> Result<PreparedDump> {
        let server = server_info(&self.tools, &self.connection).await?;
        let bin = self.tools.for_server(server.major)?;
        let version = pg_dump_version(&bin).await?;
        let row_counts = if self.count_rows {
            row_counts(&bin, &self.connection).await?
        } else {
            BTreeMap::new()
        };
        let mut cmd = libpq_command(&bin.join("pg_dump"), &self.connection);
        cmd.args(["--format=custom", "--compress=0", "--no-password"]);
        let stream = ChildStream::spawn(cmd, "pg_dump")?;
        Ok(PreparedDump {
            stream,
            server,
            pg_dump_version: version,
            row_counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password() {
        let conn = PostgresConnection {
            host: "db".into(),
            port: 5432,
            dbname: "app".into(),
            user: "app".into(),
            password: "hunter2-secret".into(),
        };
        assert!(!format!("{conn:?}").contains("hunter2"));
    }

    #[test]
    fn missing_client_version_names_the_package() {
        let tools = PostgresTools {
            search_dirs: vec![PathBuf::from("/nonexistent")],
        };
        let err = tools.for_server(17).unwrap_err().to_string();
        assert!(err.contains("postgresql-client-17"), "{err}");
    }

    #[tokio::test]
    async fn child_stream_fails_when_the_child_exits_non_zero() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo partial; echo boom >&2; exit 3"]);
        let mut stream = ChildStream::spawn(cmd, "test child").unwrap();
        let mut out = Vec::new();
        let err = stream.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(out, b"partial\n");
        let msg = err.to_string();
        assert!(
            msg.contains("test child failed") && msg.contains("boom"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn child_stream_ends_cleanly_when_the_child_succeeds() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "printf hello"]);
        let mut stream = ChildStream::spawn(cmd, "test child").unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"hello");
    }
}
