//! A real headless Chromium (Debian's `chromium` + `chromium-driver`) driven
//! over the W3C WebDriver protocol: sign in, add a field, a crop and a record
//! with a photo, see it listed; the help button sits at the bottom-right (on
//! a desktop and a phone-sized window) and finds a FAQ answer; an inquiry is
//! acknowledged, answered by an operator and the answer shown; an incident
//! published through the ops API shows a banner. Screenshots of the pages go
//! to `$CARGO_TARGET_TMPDIR/fieldbook-screenshots`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use fieldbook::auth::Role;
use serde_json::{Value, json};
use tend_testkit::fieldbook::{Backend, TestApp, png};
use tend_testkit::{ChildGuard, free_port, require};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PACKAGES: &str = "apt-get install -y chromium chromium-driver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One HTTP/1.1 exchange with chromedriver (Connection: close keeps it simple).
async fn http(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("chromedriver");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // Read the head, then exactly Content-Length bytes (or chunks / EOF):
    // chromedriver may keep the connection open.
    let read = async {
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let body = &raw[end + 4..];
                match length {
                    Some(n) if body.len() >= n => {
                        return (head, String::from_utf8_lossy(&body[..n]).into_owned());
                    }
                    None if head.contains("transfer-encoding: chunked")
                        && body.ends_with(b"0\r\n\r\n") =>
                    {
                        return (head, dechunk(&String::from_utf8_lossy(body)));
                    }
                    _ => {}
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                let text = String::from_utf8_lossy(&raw).into_owned();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                return (head.to_ascii_lowercase(), body.to_string());
            }
            raw.extend_from_slice(&buf[..n]);
        }
    };
    let (_head, payload) = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .unwrap_or_else(|_| panic!("chromedriver did not answer {method} {path} within 120 s"));
    let value: Value = serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{e}: {payload}"));
    if value["value"]["error"].is_string() {
        panic!("WebDriver {method} {path}: {}", value["value"]);
    }
    value["value"].clone()
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

struct Browser {
    port: u16,
    session: String,
    shots: std::path::PathBuf,
}

impl Browser {
    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
        .await
    }
    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).await;
    }
    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }
    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }
    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }
    async fn script(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }
    async fn wait_for_text(&self, css: &str, needle: &str) {
        let started = Instant::now();
        let script = format!(
            "var e = document.querySelector({}); return e ? e.innerText : '';",
            serde_json::to_string(css).unwrap()
        );
        loop {
            let text = self.script(&script).await;
            if text.as_str().unwrap_or("").contains(needle) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{css} never showed {needle:?}; it shows {text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    async fn screenshot(&self, name: &str) {
        let b64 = self.cmd("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }
    /// Asserts the help button's box touches the bottom-right corner area
    /// of the viewport (within 40 CSS pixels of both edges).
    async fn assert_help_button_bottom_right(&self) {
        let id = self.find("#help-button").await;
        let rect = self.cmd("GET", &format!("/element/{id}/rect"), None).await;
        let view = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let (x, y, w, h) = (
            rect["x"].as_f64().unwrap(),
            rect["y"].as_f64().unwrap(),
            rect["width"].as_f64().unwrap(),
            rect["height"].as_f64().unwrap(),
        );
        let (vw, vh) = (view[0].as_f64().unwrap(), view[1].as_f64().unwrap());
        assert!(w > 20.0 && h > 20.0, "help button too small: {rect}");
        assert!(
            vw - (x + w) <= 40.0 && vw - (x + w) >= 0.0,
            "help button not at the right edge: {rect} in {vw}x{vh}"
        );
        assert!(
            vh - (y + h) <= 40.0 && vh - (y + h) >= 0.0,
            "help button not at the bottom edge: {rect} in {vw}x{vh}"
        );
        assert!(
            x > vw / 2.0 && y > vh / 2.0,
            "help button not in the bottom-right quarter: {rect}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn farmer_signs_in_records_with_photo_and_finds_help_in_chromium() {
    // Boxed: the whole scenario's state is large for a debug-build stack.
    Box::pin(scenario()).await;
}

async fn scenario() {
    let driver_bin = require("chromedriver", PACKAGES);
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| panic!("chromium not found; install it with: {PACKAGES}"));

    let app = TestApp::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    let port = free_port();
    let mut command = Command::new(driver_bin);
    command
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut driver = ChildGuard::spawn(&mut command, "chromedriver");
    driver
        .wait_for_port(port, "chromedriver", Duration::from_secs(60))
        .await;
    let profile = tempfile::tempdir().unwrap();
    let session = http(
        port,
        "POST",
        "/session",
        Some(json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}})),
    )
    .await;
    let shots = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fieldbook-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let b = Browser {
        port,
        session: session["sessionId"]
            .as_str()
            .expect("session id")
            .to_string(),
        shots,
    };
    b.cmd(
        "POST",
        "/timeouts",
        Some(json!({"implicit": 15000, "pageLoad": 60000, "script": 30000})),
    )
    .await;

    // English pages (the scenario matches English text), chosen through
    // the language switch, which returns to the sign-up page. A new farmer
    // signs up, signs out, and signs in again.
    b.goto(&format!("{base}/lang?set=en&next=%2Fsignup")).await;
    b.screenshot("signup").await;
    b.type_into("#email", "hanako@example.com").await;
    b.type_into("#password", "correct horse battery").await;
    b.click("main form button[type=submit]").await;
    b.wait_for_text("header nav", "Sign out").await;
    b.click("#signout button").await;
    b.goto(&format!("{base}/login")).await;
    b.screenshot("login").await;
    b.type_into("#email", "hanako@example.com").await;
    b.type_into("#password", "correct horse battery").await;
    b.click("main form button[type=submit]").await;
    b.wait_for_text("header nav", "Sign out").await;

    // A field and a crop.
    b.goto(&format!("{base}/fields")).await;
    b.type_into("#field-name", "Riverside paddy").await;
    b.click("form[action='/fields'] button").await;
    b.wait_for_text("main", "Riverside paddy").await;
    b.type_into("#crop-name", "Rice").await;
    b.type_into("#crop-variety", "Koshihikari").await;
    b.click("form[action='/crops'] button").await;
    b.wait_for_text("main", "Koshihikari").await;
    b.screenshot("fields").await;

    // A record with a photo.
    let photo = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(photo.path(), png(42)).unwrap();
    b.goto(&format!("{base}/records")).await;
    b.type_into("#quantity", "12").await;
    b.type_into("#unit", "kg").await;
    b.type_into("#notes", "Transplanted seedlings in the rain")
        .await;
    let file_input = b.find("#photo").await;
    b.cmd(
        "POST",
        &format!("/element/{file_input}/value"),
        Some(json!({"text": photo.path().to_string_lossy()})),
    )
    .await;
    b.click("#new-record button[type=submit]").await;
    b.wait_for_text("#records", "Transplanted seedlings in the rain")
        .await;
    let started = Instant::now();
    loop {
        let loaded = b.script("var i = document.querySelector('#records img.photo'); return i ? i.complete && i.naturalWidth > 0 : false;").await;
        if loaded == json!(true) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the record's photo is never displayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.screenshot("records").await;

    // Help button at the bottom-right; it opens the panel and finds a FAQ answer.
    b.assert_help_button_bottom_right().await;
    b.click("#help-button").await;
    b.type_into("#help-q", "password").await;
    b.wait_for_text("#help-results", "I forgot my password")
        .await;
    b.type_into("#help-q", "photo").await;
    b.wait_for_text("#help-results", "How do I add a photo to a record?")
        .await;
    let started = Instant::now();
    while b
        .script("return document.querySelector('#help-results').innerText;")
        .await
        .as_str()
        .unwrap_or("")
        .contains("password")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the FAQ search did not narrow to the photo answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.screenshot("help-panel").await;

    // An inquiry is acknowledged on the page; an operator answers; the user sees it.
    b.goto(&format!("{base}/support")).await;
    b.type_into("#subject", "Where is my harvest total?").await;
    b.type_into("#message", "I cannot find the sum of this year's harvest.")
        .await;
    b.click("#inquiry-form button[type=submit]").await;
    b.wait_for_text("#acknowledgement", "We received your inquiry")
        .await;
    b.screenshot("inquiry-acknowledged").await;
    let inquiry: i64 = sqlx::Row::get(
        &sqlx::query("SELECT id FROM inquiries")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap(),
        "id",
    );
    let mut operator = app.user("operator@example.com", Role::Operator).await;
    let r = operator
        .post_form(
            &format!("/admin/inquiries/{inquiry}/reply"),
            &[(
                "body",
                "Use the search with crop Rice and this year's dates.",
            )],
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::SEE_OTHER, "{}", r.text);
    b.goto(&format!("{base}/support/inquiries/{inquiry}")).await;
    b.wait_for_text("main", "Use the search with crop Rice")
        .await;
    b.screenshot("inquiry-answered").await;

    // An incident published through the ops API puts a banner on the pages.
    let r = app
        .ops("POST", "/ops/v1/incidents", Some(json!({"name": "Slow photo uploads", "status": "investigating", "impact": "minor", "body": "We are looking into it."})))
        .await;
    assert_eq!(r.status, axum::http::StatusCode::CREATED, "{}", r.text);
    b.goto(&format!("{base}/records")).await;
    b.wait_for_text("#incident-banner", "Slow photo uploads")
        .await;
    b.screenshot("incident-banner").await;
    b.goto(&format!("{base}/status")).await;
    b.wait_for_text("main", "We are looking into it.").await;
    b.screenshot("status").await;

    // The language switch turns the same page Japanese.
    b.goto(&format!("{base}/records")).await;
    b.click("#lang-switch a[data-lang='ja']").await;
    b.wait_for_text("header nav", "ログアウト").await;
    b.wait_for_text("#records", "播種").await;
    b.wait_for_text("#records", "年").await;
    b.screenshot("records-ja").await;

    // Still bottom-right on a phone-sized window.
    b.cmd(
        "POST",
        "/window/rect",
        Some(json!({"width": 390, "height": 844})),
    )
    .await;
    b.goto(&format!("{base}/records")).await;
    b.assert_help_button_bottom_right().await;
    b.script("document.querySelector('#records').scrollIntoView();")
        .await;
    b.screenshot("records-phone").await;

    b.cmd("DELETE", "", None).await;
    drop(driver);
    server.abort();
}
