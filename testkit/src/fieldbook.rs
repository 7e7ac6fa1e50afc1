//! fieldbook in-process: [`TestApp`] builds the app on a fresh SQLite file or a fresh database
//! in the shared throwaway PostgreSQL server, and [`Client`], a small cookie-keeping client,
//! drives its router with `oneshot` (no socket). [`on_both_backends!`] declares one test per
//! backend for a scenario.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use fieldbook::config::Argon2Cost;
use fieldbook::{AppConfig, AppState, Db, app};
use tower::ServiceExt;

pub const OPS_TOKEN: &str = "test-ops-token-0123456789";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub dir: tempfile::TempDir,
    pub database_url: String,
}

pub fn test_config(dir: &std::path::Path) -> AppConfig {
    let mut config = AppConfig::new(dir.join("photos")).with_ops_token(OPS_TOKEN);
    config.log_stdout = false;
    // Debug builds hash slowly; production cost is covered by AppConfig::new.
    config.argon2 = Argon2Cost {
        memory_kib: 256,
        iterations: 1,
    };
    config
}

impl TestApp {
    pub async fn new(backend: Backend) -> TestApp {
        TestApp::with_config(backend, |_| {}).await
    }

    pub async fn with_config(backend: Backend, adjust: impl FnOnce(&mut AppConfig)) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => dir
                .path()
                .join("fieldbook.db")
                .to_string_lossy()
                .into_owned(),
            Backend::Postgres => crate::Postgres::shared().fresh_database(),
        };
        let db = Db::connect(&database_url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let state = AppState::new(db, config).await.expect("state");
        TestApp {
            router: app(state.clone()),
            state,
            dir,
            database_url,
        }
    }

    pub fn client(&self) -> Client {
        Client {
            router: self.router.clone(),
            cookies: HashMap::new(),
            accept_language: Some("en".to_string()),
        }
    }

    /// A signed-in client for a new account with the given role.
    pub async fn user(&self, email: &str, role: fieldbook::auth::Role) -> Client {
        fieldbook::auth::create_user(
            &self.state.db,
            email,
            "correct horse battery",
            role,
            self.state.config.argon2,
        )
        .await
        .expect("create user");
        let mut c = self.client();
        c.get("/login").await;
        let r = c
            .post_form(
                "/login",
                &[("email", email), ("password", "correct horse battery")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login failed: {}", r.text);
        c
    }

    pub async fn ops(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Reply {
        self.ops_with_token(method, path, body, Some(OPS_TOKEN))
            .await
    }

    pub async fn ops_with_token(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        Reply::from(self.router.clone().oneshot(req).await.expect("infallible")).await
    }

    /// A field "North" with a crop "Tomato" for `user` (signed in); returns the crop's id.
    pub async fn field_with_crop(&self, user: &mut Client) -> i64 {
        use sqlx::Row;
        user.post_form("/fields", &[("name", "North")]).await;
        let fid: i64 = sqlx::query("SELECT MAX(id) AS id FROM fields")
            .fetch_one(&self.state.db.pool)
            .await
            .expect("a field")
            .get("id");
        user.post_form(
            "/crops",
            &[("field_id", &fid.to_string()), ("name", "Tomato")],
        )
        .await;
        sqlx::query("SELECT MAX(id) AS id FROM crops")
            .fetch_one(&self.state.db.pool)
            .await
            .expect("a crop")
            .get("id")
    }

    /// A new user `email` with one field, crop and record with the photo `png(seed)`; returns
    /// the photo's object key.
    pub async fn farm_with_photo(&self, email: &str, seed: u8) -> String {
        use sqlx::Row;
        let mut user = self.user(email, fieldbook::auth::Role::User).await;
        let crop = self.field_with_crop(&mut user).await;
        let r = user
            .post_multipart(
                "/records",
                &[
                    ("crop_id", &crop.to_string()),
                    ("day", "2024-05-01"),
                    ("kind", "sowing"),
                ],
                Some(("photo", "p.png", &png(seed))),
                true,
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        sqlx::query("SELECT object_key FROM photos ORDER BY id DESC LIMIT 1")
            .fetch_one(&self.state.db.pool)
            .await
            .expect("a photo")
            .get("object_key")
    }

    /// Count of stored log entries of one category whose JSON contains `needle`.
    pub async fn log_count(&self, category: &str, needle: &str) -> usize {
        let rows = sqlx::query("SELECT data FROM logs WHERE category = $1")
            .bind(category.to_string())
            .fetch_all(&self.state.db.pool)
            .await
            .expect("logs");
        rows.iter()
            .filter(|r| sqlx::Row::get::<String, _>(*r, "data").contains(needle))
            .count()
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
    pub text: String,
}

impl Reply {
    pub async fn from(resp: Response<Body>) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 256 * 1024 * 1024)
            .await
            .expect("body")
            .to_vec();
        Reply {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Keeps cookies like a browser and fills in the CSRF field.
pub struct Client {
    pub router: Router,
    pub cookies: HashMap<String, String>,
    /// Sent as `Accept-Language` unless the request has one. English by
    /// default, so scenarios can match English text; `None` sends none.
    pub accept_language: Option<String>,
}

impl Client {
    pub fn csrf(&self) -> String {
        self.cookies.get("fb_csrf").cloned().unwrap_or_default()
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, mut req: Request<Body>) -> Reply {
        if let Some(lang) = &self.accept_language
            && !req.headers().contains_key(header::ACCEPT_LANGUAGE)
            && let Ok(v) = header::HeaderValue::from_str(lang)
        {
            req.headers_mut().insert(header::ACCEPT_LANGUAGE, v);
        }
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let text = v.to_str().unwrap_or("");
            let pair = text.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                if val.is_empty() || text.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), val.to_string());
                }
            }
        }
        Reply::from(resp).await
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = Request::builder()
            .uri(path)
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    /// POSTs a form with the CSRF field added.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        if self.csrf().is_empty() {
            self.get("/").await;
        }
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw_form(path, &serde_urlencoded::to_string(&all).expect("encode"))
            .await
    }

    pub async fn post_raw_form(&mut self, path: &str, body: &str) -> Reply {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::COOKIE, self.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(req).await
    }

    /// POSTs multipart/form-data: text fields (CSRF first) then an optional file.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
        with_csrf: bool,
    ) -> Reply {
        if self.csrf().is_empty() {
            self.get("/").await;
        }
        let boundary = "fieldbook-test-boundary-7d1e";
        let mut body = Vec::new();
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = Vec::new();
        if with_csrf {
            all.push(("csrf", csrf.as_str()));
        }
        all.extend_from_slice(fields);
        for (k, v) in all {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, filename, bytes)) = file {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::COOKIE, self.cookie_header())
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A valid 1×1 PNG whose pixel colour comes from `seed`, so tests can make
/// distinct objects that browsers really decode.
pub fn png(seed: u8) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut v, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
    let raw = [0u8, seed, 128, 64]; // filter byte + RGB
    let (mut a, mut b) = (1u32, 0u32);
    for x in raw {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    let mut zlib = vec![0x78, 0x01, 0x01, 4, 0, 0xFB, 0xFF];
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    png_chunk(&mut v, b"IDAT", &zlib);
    png_chunk(&mut v, b"IEND", &[]);
    v
}

/// Declares one test per backend for a scenario `async fn name(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::fieldbook::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::fieldbook::Backend::Postgres).await;
                }
            )*
        }
    };
}
