//! Child processes the tests start (servers, chromedriver, the `tend` and `fieldbook`
//! binaries): killed with everything they started when the guard drops, and by a watchdog if
//! the test process dies without unwinding.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A started child, the leader of its own process group.
pub struct ChildGuard {
    child: Child,
    /// Where stdout and stderr go, for [`ChildGuard::spawn_logged`].
    pub log: Option<PathBuf>,
}

impl ChildGuard {
    /// Starts `command` as the leader of a new process group, so the guard can stop its
    /// children too (chromedriver's Chromium), and arms a watchdog that stops the group if this
    /// test process dies without unwinding (abort, SIGKILL). Panics if it cannot start.
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
        ChildGuard { child, log: None }
    }

    /// [`ChildGuard::spawn`] with stdout and stderr in the file `log` (created anew) and no
    /// stdin, so a failing test can show the output ([`ChildGuard::log_text`]).
    pub fn spawn_logged(mut command: Command, log: &Path) -> std::io::Result<ChildGuard> {
        let file = std::fs::File::create(log)?;
        command
            .stdout(file.try_clone()?)
            .stderr(file)
            .stdin(Stdio::null());
        let what = command.get_program().to_string_lossy().into_owned();
        let mut guard = ChildGuard::spawn(&mut command, &what);
        guard.log = Some(log.to_path_buf());
        Ok(guard)
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's output so far (empty without a log file).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    /// The exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILLs the child alone (not what it started), as a crash of that one process would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Polls until something listens on `port`; panics if the child exits first or after
    /// `timeout`.
    pub async fn wait_for_port(&mut self, port: u16, what: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            if let Some(status) = self.try_wait() {
                panic!("{what} exited early with {status}");
            }
            assert!(
                started.elapsed() < timeout,
                "{what} did not listen on port {port} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// [`ChildGuard::wait_for_port`] for callers off the async runtime (blocks the thread).
    pub fn wait_for_port_blocking(&mut self, port: u16, what: &str, timeout: Duration) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.try_wait() {
                panic!("{what} exited early with {status}");
            }
            assert!(
                started.elapsed() < timeout,
                "{what} did not listen on port {port} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // The whole group, then the child itself (already gone if the group went).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        self.kill();
    }
}
