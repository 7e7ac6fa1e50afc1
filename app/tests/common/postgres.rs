//! A throwaway PostgreSQL server for the tests of one test binary: initdb in
//! a temp dir, started on a free port with its socket in that dir, one fresh
//! database per test. A watchdog shell stops the server and removes the dir
//! when the test process exits (statics are never dropped).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

struct Server {
    port: u16,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

const INSTALL: &str = "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or PATH; install them with: apt-get install -y postgresql";

fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb
/// refuses to run as root).
fn pg_command(bin: &Path, tool: &str, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start() -> Result<Server, String> {
    let bin = find_bin_dir().ok_or_else(|| INSTALL.to_string())?;
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("fieldbook-pg")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    if root {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err("cannot chown the PostgreSQL temp dir to user postgres (is the postgresql package installed? apt-get install -y postgresql)".into());
        }
    }
    let out = pg_command(&bin, "initdb", root)
        .args(["-D"])
        .arg(&data)
        .args(["--auth=trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}; {INSTALL}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
        dir.display()
    );
    let out = pg_command(&bin, "pg_ctl", root)
        .args(["-D"])
        .arg(&data)
        .args(["-o", &opts, "-l"])
        .arg(dir.join("server.log"))
        .args(["-w", "-t", "120", "start"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        return Err(format!(
            "pg_ctl start failed: {}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Stop the server when this test process ends, however it ends.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {runas}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        runas = if root { "runuser -u postgres -- " } else { "" },
        pg_ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    Ok(Server { port })
}

/// URL of a new, empty database on the shared test server.
pub async fn fresh_database() -> String {
    let server = SERVER
        .get_or_init(start)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let n = NEXT_DB.fetch_add(1, Ordering::SeqCst);
    let name = format!("fb_{}_{n}", std::process::id());
    let admin_url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin_url)
        .await
        .expect("connect to test PostgreSQL");
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(&create)
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}
