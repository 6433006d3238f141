//! Portal sessions: a random id in an `HttpOnly; SameSite=Strict` cookie
//! (`Secure` unless configured off), only its keyed hash in the database,
//! idle and absolute expiry, a new id at every step of a login (no session
//! fixation), and a synchronizer CSRF token bound to each session.
//!
//! Before login there is no session row: the login form's CSRF token is the
//! keyed hash of a random value in its own cookie ([`LOGIN_COOKIE`]), so an
//! anonymous visitor writes nothing to the database (issue 12, finding 12:
//! "anonymous visitors create 270 session rows a second (create a session at
//! login, or bound them)").

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use subtle::ConstantTimeEq as _;

use super::i18n::Lang;
use super::{PortalConfig, forbidden, redirect, server_error};
use crate::domain::codes::CodeKind;
use crate::domain::model::Role;
use crate::error::Result;
use crate::service::Actor;
use crate::state::App;
use crate::store::{SessionRow, StaffRow};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cocoa_sid";
/// Name of the language cookie.
pub const LANG_COOKIE: &str = "cocoa_lang";
/// Name of the login form's cookie: `<unix seconds>.<random>`, the value
/// whose keyed hash is the login form's CSRF token.
pub const LOGIN_COOKIE: &str = "cocoa_login";

/// Session stages.
pub mod stage {
    /// The login form's session of earlier versions (no account yet); no
    /// longer created, still accepted until it expires.
    pub const ANON: &str = "anon";
    /// Password checked, TOTP code pending.
    pub const TOTP: &str = "totp";
    /// Signed in.
    pub const FULL: &str = "full";
}

/// A TOTP step must be finished within this many seconds.
const TOTP_STAGE_SECONDS: i64 = 5 * 60;

/// The value of cookie `name`, when sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The value of query parameter `name` (only for plain values like `en`).
pub fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language of a request: `?lang=`, else the cookie, else Japanese.
pub fn lang_of(parts: &Parts) -> Lang {
    query_param(parts.uri.query(), "lang")
        .and_then(Lang::parse)
        .or_else(|| cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
        .unwrap_or_default()
}

/// A loaded session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Hash of the id (the database key).
    pub id_hash: String,
    /// The stored row.
    pub row: SessionRow,
}

impl Session {
    /// Whether `token` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        !token.is_empty() && bool::from(self.row.csrf_token.as_bytes().ct_eq(token.as_bytes()))
    }
}

fn expired(c: &PortalConfig, row: &SessionRow, now: i64) -> bool {
    let absolute = if row.stage == stage::TOTP {
        TOTP_STAGE_SECONDS.min(c.absolute_timeout_seconds)
    } else {
        c.absolute_timeout_seconds
    };
    now - row.last_seen_at > c.idle_timeout_seconds || now - row.created_at > absolute
}

/// The session of the request's cookie, if it is live. An expired one is
/// deleted; a live one is marked active (at most every 30 s).
pub async fn load(app: &App, headers: &HeaderMap) -> Result<Option<Session>> {
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty() && v.len() <= 100)
    else {
        return Ok(None);
    };
    let issuer = &app.issuer;
    let id_hash = issuer.hash_code(CodeKind::Session, id);
    let Some(row) = issuer.store().session(&id_hash).await? else {
        return Ok(None);
    };
    let now = issuer.now();
    if expired(&app.portal.config, &row, now) {
        issuer.store().delete_session(&id_hash).await?;
        return Ok(None);
    }
    if now - row.last_seen_at >= 30 {
        issuer.store().touch_session(&id_hash, now).await?;
    }
    Ok(Some(Session { id_hash, row }))
}

/// Starts a session with a fresh random id; returns the plain id (for the
/// cookie only) and the session. Expired sessions are swept on the way.
pub async fn create(app: &App, staff_id: Option<i64>, stage: &str) -> Result<(String, Session)> {
    let issuer = &app.issuer;
    let now = issuer.now();
    let c = &app.portal.config;
    issuer
        .store()
        .sweep_sessions(
            now - c.idle_timeout_seconds,
            now - c.absolute_timeout_seconds,
        )
        .await?;
    let id = issuer.random_secret(32);
    let csrf = issuer.random_secret(32);
    let id_hash = issuer.hash_code(CodeKind::Session, &id);
    issuer
        .store()
        .create_session(&id_hash, staff_id, stage, &csrf, now)
        .await?;
    let row = SessionRow {
        staff_id,
        stage: stage.to_owned(),
        csrf_token: csrf,
        totp_pending: None,
        created_at: now,
        last_seen_at: now,
    };
    Ok((id, Session { id_hash, row }))
}

/// The token the login form's CSRF field carries for the login cookie
/// `value`.
fn login_token(app: &App, value: &str) -> String {
    app.issuer
        .hash_code(CodeKind::Form, &format!("login\0{value}"))
}

/// The live login cookie of a request (issued within the idle timeout).
fn login_cookie<'a>(app: &App, headers: &'a HeaderMap) -> Option<&'a str> {
    let v = cookie(headers, LOGIN_COOKIE).filter(|v| v.len() <= 100)?;
    let (at, nonce) = v.split_once('.')?;
    let at: i64 = at.parse().ok()?;
    let age = app.issuer.now() - at;
    (nonce.len() >= 20 && (0..=app.portal.config.idle_timeout_seconds).contains(&age)).then_some(v)
}

/// The login form's CSRF token, and the `Set-Cookie` to send when the
/// request had no live login cookie. Writes nothing to the database.
pub fn login_form_token(app: &App, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(v) = login_cookie(app, headers) {
        return (login_token(app, v), None);
    }
    let v = format!("{}.{}", app.issuer.now(), app.issuer.random_secret(24));
    let set = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={v}; {}",
        cookie_attrs(&app.portal.config)
    ))
    .ok();
    (login_token(app, &v), set)
}

/// Whether `token` is the login form's CSRF token of the request's live
/// login cookie (constant time).
pub fn login_token_matches(app: &App, headers: &HeaderMap, token: &str) -> bool {
    login_cookie(app, headers).is_some_and(|v| {
        !token.is_empty() && bool::from(login_token(app, v).as_bytes().ct_eq(token.as_bytes()))
    })
}

/// `Set-Cookie` that removes the login cookie (once signed in).
pub fn clear_login_cookie(c: &PortalConfig) -> HeaderValue {
    HeaderValue::from_str(&format!("{LOGIN_COOKIE}=; Max-Age=0; {}", cookie_attrs(c)))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The CSRF token a form post passed the guard with (a session's, or the
/// login form's).
#[derive(Debug, Clone)]
pub struct FormCsrf(pub String);

fn cookie_attrs(c: &PortalConfig) -> &'static str {
    if c.secure() {
        "Path=/portal; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/portal; HttpOnly; SameSite=Strict"
    }
}

/// `Set-Cookie` of a session id.
pub fn set_cookie(c: &PortalConfig, id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={id}; {}", cookie_attrs(c)))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(c: &PortalConfig) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Max-Age=0; {}",
        cookie_attrs(c)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` of the language.
pub fn lang_cookie(c: &PortalConfig, lang: Lang) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Max-Age=31536000; {}",
        lang.code(),
        cookie_attrs(c)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session of a request: the one the CSRF guard already loaded, or
/// the cookie's.
pub async fn of_parts(parts: &Parts, app: &App) -> Result<Option<Session>> {
    match parts.extensions.get::<Session>() {
        Some(s) => Ok(Some(s.clone())),
        None => load(app, &parts.headers).await,
    }
}

/// A signed-in staff member (a `full` session of an enabled account).
/// Without one, a page redirects to the login form and a form post is
/// refused (403).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The session.
    pub session: Session,
    /// The account.
    pub staff: StaffRow,
    /// For the service and the audit log.
    pub actor: Actor,
    /// Page language.
    pub lang: Lang,
}

impl Viewer {
    /// Whether the viewer acts for every centre.
    pub fn is_system(&self) -> bool {
        self.staff.role == Role::System
    }
}

impl FromRequestParts<Arc<App>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let lang = lang_of(parts);
        let had_cookie = cookie(&parts.headers, SESSION_COOKIE).is_some();
        let reject = |expired: bool| {
            if parts.method == Method::POST {
                forbidden(lang)
            } else if expired {
                redirect("/portal/login?expired=1")
            } else {
                redirect("/portal/login")
            }
        };
        let session = of_parts(parts, app)
            .await
            .map_err(|e| server_error(lang, &e))?;
        let Some(session) = session.filter(|s| s.row.stage == stage::FULL) else {
            return Err(reject(had_cookie));
        };
        let Some(staff_id) = session.row.staff_id else {
            return Err(reject(true));
        };
        let staff = app
            .issuer
            .store()
            .staff(staff_id)
            .await
            .map_err(|e| server_error(lang, &e.into()))?;
        let Some(staff) = staff.filter(|s| s.disabled_at.is_none()) else {
            return Err(reject(true));
        };
        Ok(Self {
            actor: Actor::staff(&staff),
            session,
            staff,
            lang,
        })
    }
}

/// The page language as an extractor.
#[derive(Debug, Clone, Copy)]
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(lang_of(parts)))
    }
}
