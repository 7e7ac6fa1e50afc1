//! A throwaway PostgreSQL server: initdb in a temp dir, started with pg_ctl on a free loopback
//! port with its socket in that dir. Over TCP the superuser `postgres` logs in with a password
//! (scram-sha-256); over the socket, trust.
//!
//! [`Postgres::start`] gives a test its own server, stopped on drop. [`Postgres::shared`] gives
//! every test of one test binary the same server (each takes a fresh database with
//! [`Postgres::fresh_database`]); a watchdog shell stops it and removes its dir when the test
//! process exits, since statics are never dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::net::free_port;
use crate::tools::is_root;

const INSTALL: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or PATH; install them with: apt-get install -y postgresql";

/// The superuser's password over TCP.
const PASSWORD: &str = "pg-secret-never-logged";

/// A running PostgreSQL server.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The directory of initdb, pg_ctl, psql and pg_dump.
    pub bin: PathBuf,
    pub password: String,
    root: bool,
}

/// The newest PostgreSQL under /usr/lib/postgresql, else the first on PATH.
fn find_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .unwrap_or_else(|| panic!("{INSTALL}"))
}

/// Runs a PostgreSQL server tool, as `postgres` when we are root (initdb refuses root).
fn pg_tool(bin: &Path, tool: &str, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        cmd
    } else {
        Command::new(bin.join(tool))
    }
}

static SHARED: OnceLock<Postgres> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// A server of this test's own, stopped when dropped.
    pub fn start() -> Self {
        let bin = find_bin_dir();
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("tend-pg")
            .tempdir()
            .expect("a temp dir for PostgreSQL");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("write the password file");
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(
                ok,
                "cannot chown the PostgreSQL temp dir to user postgres (is the postgresql package installed? apt-get install -y postgresql)"
            );
        }
        let data = dir.path().join("data");
        let out = pg_tool(&bin, "initdb", root)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--auth-local=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("initdb: {e}; {INSTALL}"));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Self {
            dir,
            port: free_port(),
            bin,
            password: PASSWORD.to_owned(),
            root,
        };
        pg.pg_ctl_start();
        pg
    }

    /// The server every test of this test binary shares, started on first use.
    pub fn shared() -> &'static Postgres {
        SHARED.get_or_init(|| {
            let pg = Postgres::start();
            pg.stop_when_process_exits();
            pg
        })
    }

    /// Stops the server and removes its dir when this test process ends, however it ends.
    fn stop_when_process_exits(&self) {
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {runas}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            runas = if self.root {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.path().join("data").display(),
            dir = self.dir.path().display(),
        );
        // Never waited for: the watchdog is meant to outlive this process.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &stop])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PostgreSQL watchdog");
    }

    /// Starts the server (again, after [`Postgres::kill`]) on the same port and data.
    pub fn pg_ctl_start(&self) {
        let log = self.dir.path().join("log");
        let out = pg_tool(&self.bin, "pg_ctl", self.root)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                self.port,
                self.dir.path().display()
            ))
            .args(["-w", "-t", "120", "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("pg_ctl: {e}; {INSTALL}"));
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&self) {
        let _ = pg_tool(&self.bin, "pg_ctl", self.root)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend): it still accepts TCP
    /// connections in the kernel, but answers nothing, as a hung or overloaded database.
    pub fn freeze(&self) {
        self.signal_all("STOP");
    }

    /// Undoes [`Postgres::freeze`].
    pub fn thaw(&self) {
        self.signal_all("CONT");
    }

    /// Sends `signal` to the postmaster (pid from `postmaster.pid`) and its children.
    fn signal_all(&self, signal: &str) {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let postmaster: u32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no postmaster pid in {}", pid_file.display()));
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(stat) = std::fs::read_to_string(entry.path().join("stat")).ok() else {
                continue;
            };
            // pid (comm) state ppid ...; comm may hold spaces, so read after the last ')'.
            let parent = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if parent == Some(postmaster)
                && let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok())
            {
                pids.push(pid);
            }
        }
        // A backend may exit between the listing and the signal: only the postmaster must
        // receive it.
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .args(pids[1..].iter().map(u32::to_string))
            .stderr(Stdio::null())
            .status();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(postmaster.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {postmaster} failed");
    }

    /// The URL of `dbname` over TCP as the superuser, with the password.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{dbname}",
            self.password, self.port
        )
    }

    /// Creates a new, empty database and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
        let name = format!("db_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs SQL with psql as the superuser; returns stdout (unaligned, tuples only).
    pub fn psql(&self, dbname: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", dbname, "-c", sql])
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}; {INSTALL}"));
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

#[cfg(feature = "backup")]
impl Postgres {
    /// A connection over TCP as the superuser, with the password.
    pub fn connection(&self, dbname: &str) -> tend_backup::PostgresConnection {
        tend_backup::PostgresConnection {
            host: "127.0.0.1".into(),
            port: self.port,
            dbname: dbname.into(),
            user: "postgres".into(),
            password: self.password.clone(),
        }
    }

    /// The same over the Unix socket (small buffers: a dump cannot run far ahead).
    pub fn socket_connection(&self, dbname: &str) -> tend_backup::PostgresConnection {
        let mut c = self.connection(dbname);
        c.host = self.dir.path().display().to_string();
        c
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}
