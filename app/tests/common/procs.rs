//! Child processes the tests start (SMTP sink, chromedriver): found or
//! explained, waited for by polling, and killed when the guard drops.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A started service and everything it started (its own process group).
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Starts `command` as the leader of a new process group, so the guard
    /// can stop its children too (chromedriver's Chromium), and arms a
    /// watchdog that stops the group if this test process dies without
    /// unwinding (abort, SIGKILL).
    pub fn spawn(command: &mut Command, what: &str) -> ChildGuard {
        command.process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let watchdog = format!(
            "while kill -0 {me} 2>/dev/null && kill -0 {pgid} 2>/dev/null; do sleep 1; done; kill -KILL -- -{pgid} 2>/dev/null",
            me = std::process::id(),
            pgid = child.id()
        );
        let _ = Command::new("sh")
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        ChildGuard(child)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // The whole group when we made one; the child alone otherwise.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls until something listens on the port, or panics after `timeout`.
pub async fn wait_for_port(port: u16, child: &mut ChildGuard, what: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("{what} exited early with {status}");
        }
        assert!(
            started.elapsed() < timeout,
            "{what} did not listen on port {port} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Python interpreter that can import aiosmtpd (PATH's python3 first,
/// then the distribution's).
pub fn python_with_aiosmtpd() -> String {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return candidate.to_string();
        }
    }
    panic!(
        "the SMTP test needs aiosmtpd: pip install aiosmtpd (or apt-get install -y python3-aiosmtpd)"
    );
}

pub fn find_program(name: &str, install: &str) -> String {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    if !found {
        panic!("{name} not found on PATH; install it with: {install}");
    }
    name.to_string()
}
