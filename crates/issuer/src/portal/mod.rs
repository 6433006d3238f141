//! The staff portal: server-rendered pages (askama templates compiled into
//! the binary, no JavaScript), Japanese first with English on `?lang=en`.
//!
//! - [`session`]: sessions, cookies, CSRF, the signed-in [`session::Viewer`].
//! - [`auth`]: login with argon2id and TOTP, logout, TOTP enrolment.
//! - [`cases`]: case list and search, create and edit, the HER-SYS case
//!   screen with its ID管理 tab, issuance with a confirmation step.
//! - [`reports`]: audit log and statistics (with an inline SVG chart).
//! - [`import`]: CSV import of confirmed cases, with a preview and a
//!   once-only confirmation.
//!
//! Every form post passes [`csrf_guard`] first: without the session's token
//! it is refused with 403 before any handler runs, so it changes nothing.

mod admin;
mod auth;
mod cases;
mod forms;
pub mod i18n;
mod import;
mod reports;
pub mod session;
mod settings;
mod views;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::Error;
use crate::state::App;
pub use crate::state::{Portal, PortalConfig, throttle};
use i18n::Lang;

/// The portal's routes (under `/portal`).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/portal", get(|| async { redirect("/portal/cases") }))
        .route("/portal/", get(|| async { redirect("/portal/cases") }))
        .route("/portal/static/portal.css", get(stylesheet))
        .route("/portal/login", get(auth::login_form).post(auth::login))
        .route("/portal/login/totp", get(auth::totp_form).post(auth::totp))
        .route("/portal/logout", axum::routing::post(auth::logout))
        .route(
            "/portal/account/totp",
            get(auth::totp_setup_form).post(auth::totp_setup),
        )
        .route("/portal/cases", get(cases::list).post(cases::create))
        .route("/portal/cases/new", get(cases::new_form))
        .route("/portal/cases/{id}", get(cases::show).post(cases::update))
        .route("/portal/cases/{id}/edit", get(cases::edit_form))
        .route(
            "/portal/cases/{id}/report",
            axum::routing::post(cases::report),
        )
        .route(
            "/portal/cases/{id}/issue",
            get(cases::confirm_issue).post(cases::issue),
        )
        .route(import::UPLOAD_PATH, get(import::form).post(import::upload))
        .route(
            "/portal/import/{id}",
            get(import::preview).post(import::confirm),
        )
        .route("/portal/import/{id}/result", get(import::result))
        .route("/portal/audit", get(reports::audit))
        .route("/portal/stats", get(reports::stats))
        .route("/portal/stats/funnel.csv", get(reports::funnel_csv))
        .route(
            "/portal/admin/staff",
            get(admin::staff_list).post(admin::staff_create),
        )
        .route(
            "/portal/admin/staff/{id}",
            axum::routing::post(admin::staff_change),
        )
        .route("/portal/admin/centre", get(settings::own_centre))
        .route(
            "/portal/admin/centres",
            get(settings::centres).post(settings::centre_create),
        )
        .route(
            "/portal/admin/centres/{id}",
            get(settings::centre_form).post(settings::centre_save),
        )
        .route(
            "/portal/admin/keys",
            get(settings::keys).post(settings::key_create),
        )
        .route(
            "/portal/admin/keys/{id}/revoke",
            axum::routing::post(settings::key_revoke),
        )
        // Every other portal URL gets the portal's own 404 page.
        .route("/portal/{*rest}", axum::routing::any(unknown))
}

async fn unknown(session::PageLang(lang): session::PageLang) -> Response {
    not_found(lang)
}

/// Wraps the portal routes with the CSRF guard and the security headers.
pub fn layer(routes: Router<Arc<App>>, app: Arc<App>) -> Router<Arc<App>> {
    let app_for_headers = app.clone();
    routes
        .layer(middleware::from_fn_with_state(app, csrf_guard))
        .layer(middleware::from_fn_with_state(app_for_headers, headers))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/portal.css"),
    )
        .into_response()
}

/// Security headers on every portal answer, and the language cookie when
/// `?lang=` chose one.
async fn headers(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let lang = session::query_param(req.uri().query(), "lang").and_then(Lang::parse);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(lang) = lang {
        h.append(
            header::SET_COOKIE,
            session::lang_cookie(&app.portal.config, lang),
        );
    }
    resp
}

/// Largest form accepted by the portal, bytes.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Refuses (403) every form post that does not carry the CSRF token of the
/// session in its cookie (for the login form: of the login cookie), before
/// any handler runs. The loaded session and the token are handed on to the
/// handler. The CSV upload (`multipart/form-data`, up to
/// [`import::MAX_UPLOAD_BODY_BYTES`]) is read here too: its token is a field
/// of the multipart body, and the handler gets the parsed [`import::Upload`].
async fn csrf_guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let lang = session::lang_of(&parts);
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .map(str::to_owned);
    let upload = parts.uri.path() == import::UPLOAD_PATH && multipart.is_some();
    let limit = if upload {
        import::MAX_UPLOAD_BODY_BYTES
    } else {
        MAX_FORM_BYTES
    };
    let Ok(mut bytes) = axum::body::to_bytes(body, limit).await else {
        let m = if upload {
            Msg::TooLarge
        } else {
            Msg::Forbidden
        };
        return page(
            StatusCode::PAYLOAD_TOO_LARGE,
            &views::message(lang, None, m),
        );
    };
    let token = match (&multipart, upload) {
        (Some(ct), true) => {
            let up = import::read_upload(ct, bytes).await.unwrap_or_default();
            bytes = axum::body::Bytes::new();
            let token = up.csrf.clone();
            parts.extensions.insert(up);
            token
        }
        _ => form_value(&bytes, "csrf").unwrap_or_default(),
    };
    let s = match session::load(&app, &parts.headers).await {
        Ok(s) => s,
        Err(e) => return server_error(lang, &e),
    };
    match s.filter(|s| s.csrf_matches(&token)) {
        Some(s) => {
            parts.extensions.insert(s);
        }
        // The login form has no session yet: its token is bound to the
        // login cookie instead.
        None if parts.uri.path() == "/portal/login"
            && session::login_token_matches(&app, &parts.headers, &token) => {}
        None => {
            tracing::info!(path = %parts.uri.path(), "form post refused: missing or wrong CSRF token");
            return forbidden(lang);
        }
    }
    parts.extensions.insert(session::FormCsrf(token));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The first value of field `name` in a URL-encoded form, decoded.
pub fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Renders a template with a status.
pub(crate) fn page<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A 303 redirect.
pub(crate) fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/portal/cases")),
        )],
    )
        .into_response()
}

/// Fixed messages of error pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Msg {
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 500.
    Error,
    /// 413 of the CSV upload.
    TooLarge,
}

/// 403: a form post without a valid CSRF token or session.
pub(crate) fn forbidden(lang: Lang) -> Response {
    page(
        StatusCode::FORBIDDEN,
        &views::message(lang, None, Msg::Forbidden),
    )
}

/// 404: no such page, or a case the viewer may not see.
pub(crate) fn not_found(lang: Lang) -> Response {
    page(
        StatusCode::NOT_FOUND,
        &views::message(lang, None, Msg::NotFound),
    )
}

/// 500 with the detail in the log only.
pub(crate) fn server_error(lang: Lang, e: &Error) -> Response {
    tracing::error!(error = %e, "portal request failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        &views::message(lang, None, Msg::Error),
    )
}

/// An error of a portal handler, rendered as a page.
#[derive(Debug)]
pub(crate) struct Failure(pub Lang, pub Error);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self.1 {
            Error::CaseNotFound => not_found(self.0),
            e => server_error(self.0, &e),
        }
    }
}

/// Attaches the page language to an error.
pub(crate) trait OrPage<T> {
    fn or_page(self, lang: Lang) -> Result<T, Failure>;
}

impl<T, E: Into<Error>> OrPage<T> for Result<T, E> {
    fn or_page(self, lang: Lang) -> Result<T, Failure> {
        self.map_err(|e| Failure(lang, e.into()))
    }
}
