//! What the AlertRule end-to-end tests share: reading a rule back with kubectl, waiting for its
//! status, and a probe target the test opens and closes.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{TestCluster, WAIT, eventually, free_port};

/// The AlertRule `name` in `ns`, as `kubectl get -o json` prints it.
pub async fn rule(c: &TestCluster, ns: &str, name: &str) -> anyhow::Result<Value> {
    let out = c
        .kubectl(&["get", "alertrule", name, "-n", ns, "-o", "json"])
        .await?;
    Ok(serde_json::from_str(&out)?)
}

/// Waits up to [`WAIT`] until the rule's status satisfies `check`; returns the status. On
/// timeout the error carries the last status seen.
pub async fn status_until(
    c: &TestCluster,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    status_until_within(c, ns, WAIT, name, what, check).await
}

/// [`status_until`] with another limit than [`WAIT`] (rules whose windows take long to fill).
pub async fn status_until_within(
    c: &TestCluster,
    ns: &str,
    wait: Duration,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let found = eventually(wait, &format!("{name}: {what}"), || async {
        let status = rule(c, ns, name).await.ok()?["status"].clone();
        check(&status).then_some(status)
    })
    .await;
    match found {
        Ok(status) => Ok(status),
        Err(e) => {
            let last = rule(c, ns, name).await.map(|r| r["status"].clone());
            anyhow::bail!("{e}; last status: {last:#?}")
        }
    }
}

/// A loopback port that answers HTTP 200 while open: an `http` probe's target. Closed, the
/// probe cannot connect (`up` 0), so opening and closing it makes a real breach.
pub struct ProbeTarget {
    pub port: u16,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl ProbeTarget {
    /// A free port nothing listens on yet.
    pub fn closed() -> Self {
        Self {
            port: free_port(),
            server: None,
        }
    }

    /// Starts answering 200 on the port.
    pub async fn open(&mut self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.server = Some(tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    let _ = socket.shutdown().await;
                });
            }
        }));
        Ok(())
    }

    /// Stops answering: new connections are refused.
    pub fn close(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.port)
    }
}

impl Drop for ProbeTarget {
    fn drop(&mut self) {
        self.close();
    }
}
