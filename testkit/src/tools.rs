//! Finding the programs the tests start, or failing with what to install.

use std::path::PathBuf;
use std::process::Command;

/// Finds `tool` on PATH or panics naming what to install (`install`, e.g. the apt-get line).
pub fn require(tool: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{tool}` is needed by this test and is not installed: {install}");
}

/// Whether the tests run as root (PostgreSQL's tools then run as `postgres`). Asking `id` keeps
/// the kit free of unsafe (no geteuid call).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A Python interpreter that can import aiosmtpd (PATH's python3 first, then the
/// distribution's).
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
