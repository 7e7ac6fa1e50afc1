//! Load benchmark on loopback: p50/p99 latency and throughput of the record
//! list (`GET /records`) and record create (`POST /records`), through real
//! HTTP/1.1 keep-alive connections to an in-process server.
//!
//! ```sh
//! cargo run -p fieldbook --example loadbench -- [DATABASE_URL] [SECONDS] [CONNECTIONS]
//! ```
//! DATABASE_URL defaults to a fresh SQLite file in a temp dir; pass a
//! `postgres://` URL of an empty database to measure PostgreSQL.

use std::time::{Duration, Instant};

use fieldbook::auth::{self, Role};
use fieldbook::config::Argon2Cost;
use fieldbook::{AppConfig, AppState, Db, app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads one Content-Length-framed response.
    async fn exchange(&mut self, request: &[u8]) -> (u16, Vec<u8>, String) {
        self.stream.write_all(request).await.expect("write");
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let body = self.buf[end + 4..end + 4 + len].to_vec();
                    self.buf.drain(..end + 4 + len);
                    let status = head
                        .split(' ')
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    return (status, body, head);
                }
            }
            let n = self.stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(
    name: &str,
    addr: std::net::SocketAddr,
    seconds: u64,
    connections: usize,
    request: impl Fn(usize) -> Vec<u8> + Send + Sync + Clone + 'static,
    expect: u16,
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < deadline {
                let req = request(worker * 1_000_000 + i);
                let started = Instant::now();
                let (status, _, _) = conn.exchange(&req).await;
                latencies.push(started.elapsed());
                assert_eq!(status, expect, "unexpected status");
                i += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    all.sort();
    println!(
        "{name:<14} requests={:>6}  throughput={:>8.1} req/s  p50={:>7.2} ms  p99={:>7.2} ms",
        all.len(),
        all.len() as f64 / seconds as f64,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir()?;
    let url = args
        .get(1)
        .filter(|u| !u.is_empty())
        .cloned()
        .unwrap_or_else(|| dir.path().join("bench.db").to_string_lossy().into_owned());
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let connections: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(8);

    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let mut config = AppConfig::new(dir.path().join("photos"));
    config.log_stdout = false;
    config.argon2 = Argon2Cost {
        memory_kib: 256,
        iterations: 1,
    };
    let state = AppState::new(db.clone(), config).await?;
    auth::create_user(
        &db,
        "bench@example.com",
        "benchmark password",
        Role::User,
        state.config.argon2,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(
            listener,
            app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    // Sign in over HTTP to get the CSRF and session cookies.
    let mut conn = Conn::open(addr).await;
    let (_, _, head) = conn
        .exchange(b"GET /login HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await;
    let csrf = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: fb_csrf="))
        .and_then(|v| v.split(';').next())
        .expect("csrf cookie")
        .to_string();
    let form = format!("csrf={csrf}&email=bench%40example.com&password=benchmark+password");
    let login = format!(
        "POST /login HTTP/1.1\r\nHost: bench\r\nCookie: fb_csrf={csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let (status, _, head) = conn.exchange(login.as_bytes()).await;
    assert_eq!(status, 303, "login");
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: fb_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let cookie = format!("fb_csrf={csrf}; fb_session={session}");

    // A field and a crop to record against, then 200 records so the list has pages.
    for (path, body) in [
        ("/fields", format!("csrf={csrf}&name=North")),
        ("/crops", format!("csrf={csrf}&field_id=1&name=Rice")),
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(conn.exchange(req.as_bytes()).await.0, 303, "{path}");
    }
    let create = {
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        move |i: usize| {
            let boundary = "bench-boundary";
            let mut body = String::new();
            for (k, v) in [
                ("csrf", csrf.clone()),
                ("crop_id", "1".to_string()),
                ("day", format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1)),
                ("kind", "watering".to_string()),
                ("quantity", "3.5".to_string()),
                ("unit", "L".to_string()),
                ("notes", format!("bench record {i}")),
            ] {
                body.push_str(&format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                ));
            }
            body.push_str(&format!("--{boundary}--\r\n"));
            format!(
                "POST /records HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
    };
    for i in 0..200 {
        assert_eq!(conn.exchange(&create(i)).await.0, 303);
    }
    let list = {
        let cookie = cookie.clone();
        move |_| {
            format!("GET /records HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\n\r\n").into_bytes()
        }
    };
    println!(
        "fieldbook loadbench: {} on {}, {connections} connections, {seconds} s per scenario",
        if url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        addr
    );
    run("GET /records", addr, seconds, connections, list, 200).await;
    run("POST /records", addr, seconds, connections, create, 303).await;
    Ok(())
}
