//! Accounts, sessions, CSRF and sign-in throttling.
//!
//! Session cookies hold a random token; the database keeps only its SHA-256,
//! so a leaked database does not yield live sessions. CSRF uses a
//! double-submit token: an HttpOnly, SameSite=Strict cookie whose value every
//! form repeats in a hidden `csrf` field.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::config::Argon2Cost;
use crate::db::{Db, now_ms};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "fb_session";
pub const CSRF_COOKIE: &str = "fb_csrf";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    User,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "user" => Some(Role::User),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
}

impl User {
    pub fn is_staff(&self) -> bool {
        self.role >= Role::Operator
    }
}

/// Per-request context the middleware resolves once: who is signed in and
/// the CSRF token forms must echo.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub user: Option<User>,
    pub csrf: String,
    pub session_token_hash: Option<String>,
    /// The language pages are written in.
    pub lang: crate::i18n::Lang,
    /// Path and query of this page (for GET requests; `/` otherwise), where
    /// the language switch returns to.
    pub here: String,
}

pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex::encode(buf)
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Equality that does not stop at the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn cookie_value<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn argon2(cost: Argon2Cost) -> AppResult<Argon2<'static>> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub async fn hash_password(password: String, cost: Argon2Cost) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("random: {e}"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hash = argon2(cost)?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        Ok(hash.to_string())
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
}

pub async fn verify_password(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        // Parameters come from the stored hash, so old hashes keep verifying.
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

pub fn validate_email(text: &str) -> AppResult<String> {
    let email = text.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.contains(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(AppError::field(
            "email",
            "must be an e-mail address like name@example.com",
        ))
    }
}

pub fn validate_password(text: &str) -> AppResult<()> {
    let chars = text.chars().count();
    if !(10..=200).contains(&chars) {
        return Err(AppError::field(
            "password",
            "must be 10 to 200 characters long",
        ));
    }
    Ok(())
}

pub async fn create_user(
    db: &Db,
    email: &str,
    password: &str,
    role: Role,
    cost: Argon2Cost,
) -> AppResult<i64> {
    let email = validate_email(email)?;
    validate_password(password)?;
    let hash = hash_password(password.to_string(), cost).await?;
    let exists = db
        .optional(
            &db.pool,
            sqlx::query("SELECT id FROM users WHERE email = $1").bind(email.clone()),
        )
        .await?;
    if exists.is_some() {
        return Err(AppError::field(
            "email",
            "an account with this e-mail already exists",
        ));
    }
    let row = db
        .one(
            &db.pool,
            sqlx::query(
                "INSERT INTO users (email, password_hash, role, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(email)
            .bind(hash)
            .bind(role.as_str())
            .bind(now_ms()),
        )
        .await?;
    Ok(row.get("id"))
}

pub async fn user_by_session(db: &Db, token_hash: &str) -> sqlx::Result<Option<User>> {
    let row = db
        .optional(
            &db.pool,
            sqlx::query(
                "SELECT u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash.to_string())
            .bind(now_ms()),
        )
        .await?;
    Ok(row.map(|r| User {
        id: r.get("id"),
        email: r.get("email"),
        role: Role::parse(&r.get::<String, _>("role")).unwrap_or(Role::User),
    }))
}

/// Creates a session and returns the cookie token (never logged).
pub async fn start_session(db: &Db, user_id: i64, ttl_secs: i64) -> sqlx::Result<String> {
    let token = random_token();
    let now = now_ms();
    // Expired sessions are useless; sweep them when a new one starts.
    db.exec(
        &db.pool,
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now),
    )
    .await?;
    db.exec(
        &db.pool,
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(&token))
        .bind(user_id)
        .bind(now)
        .bind(now + ttl_secs * 1000),
    )
    .await?;
    Ok(token)
}

pub fn session_cookie(token: &str, ttl_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={ttl_secs}{secure}")
}

pub fn clear_session_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
}

pub fn csrf_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// Counts failed sign-ins per key (e-mail, client address) in a sliding window.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// Err with the seconds to wait when any key is over the limit.
    pub fn check(&self, keys: &[String], max: u32, window: Duration) -> Result<(), u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if let Some((count, since)) = map.get(key) {
                let age = since.elapsed();
                if *count >= max && age < window {
                    return Err((window - age).as_secs().max(1));
                }
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, keys: &[String], window: Duration) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| since.elapsed() < window);
        }
        for key in keys {
            let entry = map.entry(key.clone()).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= window {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }

    pub fn reset(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// The signed-in user, or 401 (the web layer turns that into a redirect).
pub struct CurrentUser(pub User);

/// The signed-in user if any.
pub struct MaybeUser(pub Option<User>);

fn ctx(parts: &Parts) -> Ctx {
    parts.extensions.get::<Ctx>().cloned().unwrap_or(Ctx {
        user: None,
        csrf: String::new(),
        session_token_hash: None,
        lang: crate::i18n::Lang::from_headers(&parts.headers),
        here: "/".to_string(),
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ctx(parts))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        ctx(parts)
            .user
            .map(CurrentUser)
            .ok_or(AppError::Unauthenticated)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(MaybeUser(ctx(parts).user))
    }
}

/// A url-encoded form whose `csrf` field matched the CSRF cookie.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = req
            .extensions()
            .get::<Ctx>()
            .map(|c| c.csrf.clone())
            .unwrap_or_default();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::field("form", "the form could not be read"))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| AppError::field("form", "the form is not url-encoded"))?;
        check_csrf(
            &expected,
            pairs
                .iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.as_str()),
        )?;
        let value = serde_urlencoded::from_bytes(&body)
            .map_err(|e| AppError::field("form", e.to_string()))?;
        Ok(CsrfForm(value))
    }
}

pub fn check_csrf(expected: &str, given: Option<&str>) -> AppResult<()> {
    match given {
        Some(given)
            if !expected.is_empty() && constant_time_eq(given.as_bytes(), expected.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(AppError::Csrf),
    }
}

pub fn require_role(user: &User, role: Role) -> AppResult<()> {
    if user.role >= role {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}
