//! A minimal SMTP client for acknowledgement e-mails to a local relay
//! (plain SMTP, no auth, no TLS — the relay or sidecar handles delivery).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::SmtpConfig;

/// Header values must not carry line breaks (header injection).
fn header_safe(text: &str) -> String {
    text.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

async fn expect<R: AsyncBufReadExt + Unpin>(reader: &mut R, code: &str) -> anyhow::Result<()> {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            anyhow::bail!("SMTP server closed the connection");
        }
        if !line.starts_with(code) {
            anyhow::bail!(
                "SMTP server answered {:?}, expected {code}",
                line.trim_end()
            );
        }
        // "250-" continues a multi-line reply, "250 " ends it.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

pub async fn send(config: &SmtpConfig, to: &str, subject: &str, body: &str) -> anyhow::Result<()> {
    tokio::time::timeout(
        Duration::from_secs(20),
        send_inner(config, to, subject, body),
    )
    .await
    .map_err(|_| anyhow::anyhow!("SMTP timed out"))?
}

async fn send_inner(
    config: &SmtpConfig,
    to: &str,
    subject: &str,
    body: &str,
) -> anyhow::Result<()> {
    let to = header_safe(to);
    let from = header_safe(&config.from);
    let stream = TcpStream::connect((config.host.as_str(), config.port)).await?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    expect(&mut reader, "220").await?;
    write.write_all(b"EHLO fieldbook\r\n").await?;
    expect(&mut reader, "250").await?;
    write
        .write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
        .await?;
    expect(&mut reader, "250").await?;
    write
        .write_all(format!("RCPT TO:<{to}>\r\n").as_bytes())
        .await?;
    expect(&mut reader, "25").await?;
    write.write_all(b"DATA\r\n").await?;
    expect(&mut reader, "354").await?;
    let date = chrono::Utc::now().to_rfc2822();
    let mut message = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nDate: {date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        header_safe(subject)
    );
    for line in body.replace("\r\n", "\n").split('\n') {
        // Dot-stuffing: a line starting with '.' gets another one.
        if line.starts_with('.') {
            message.push('.');
        }
        message.push_str(line);
        message.push_str("\r\n");
    }
    message.push_str(".\r\n");
    write.write_all(message.as_bytes()).await?;
    expect(&mut reader, "250").await?;
    write.write_all(b"QUIT\r\n").await?;
    let _ = expect(&mut reader, "221").await;
    Ok(())
}
