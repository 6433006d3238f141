//! Login (argon2id, then TOTP when the account has it), logout, and TOTP
//! enrolment. Each step of a login gets a new session id, attempts are
//! counted before they are checked (per login id and per client address,
//! [`crate::state::throttle`]), at most as many passwords are hashed at
//! once as there are cores, and every outcome is in the audit log.

use std::sync::Arc;

use axum::extract::{Extension, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, Secret, TOTP};

use super::session::{self, FormCsrf, PageLang, Session, Viewer, stage};
use super::views::{Layout, LoginPage, TotpPage, TotpSetupPage};
use super::{forbidden, page, redirect, server_error};
use crate::service::Actor;
use crate::state::throttle::{Limit, Refusal};
use crate::state::{App, ClientIp};
use crate::store::StaffRow;

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// A TOTP code form.
#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Query of the login page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
    bye: Option<String>,
}

fn with_cookie(mut resp: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(c) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// What was refused and until when (Japan time), in the page's language.
fn refusal_text(lang: super::i18n::Lang, r: Refusal) -> String {
    let t = lang.texts();
    let text = match r.limit {
        Limit::LoginFromAddress => t.login_throttled,
        Limit::Address => t.address_throttled,
        Limit::Codes => t.totp_throttled,
        Limit::Crowded => t.crowded_throttled,
    };
    text.replace("{until}", &super::views::when(lang, r.until))
}

/// `resp` with `Retry-After: seconds`.
fn retry_after(mut resp: Response, seconds: u64) -> Response {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
    resp
}

/// `GET /portal/login`: the form, whose CSRF token is bound to the login
/// cookie. No session row is created before the password checks (issue 12,
/// finding 12).
pub async fn login_form(
    State(app): State<Arc<App>>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let current = match session::load(&app, &headers).await {
        Ok(s) => s,
        Err(e) => return server_error(lang, &e),
    };
    let mut cookies = Vec::new();
    match current {
        Some(s) if s.row.stage == stage::FULL => return redirect("/portal/cases"),
        // A login left half-way (or an anonymous session of an earlier
        // version) ends here.
        Some(s) => {
            if let Err(e) = app.issuer.store().delete_session(&s.id_hash).await {
                return server_error(lang, &e.into());
            }
            cookies.push(session::clear_cookie(&app.portal.config));
        }
        None => {}
    }
    let (csrf, set) = session::login_form_token(&app, &headers);
    cookies.extend(set);
    let t = lang.texts();
    let info = if q.expired.is_some() {
        t.session_expired
    } else if q.bye.is_some() {
        t.logged_out
    } else {
        ""
    };
    let p = LoginPage {
        l: Layout::anon(lang, t.login_title, &csrf, "/portal/login"),
        login: String::new(),
        error: String::new(),
        info,
    };
    let mut resp = page(StatusCode::OK, &p);
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

fn login_page(lang: super::i18n::Lang, csrf: &str, login: &str, error: &str) -> LoginPage {
    let t = lang.texts();
    LoginPage {
        l: Layout::anon(lang, t.login_title, csrf, "/portal/login"),
        login: login.chars().take(64).collect(),
        error: error.to_owned(),
        info: "",
    }
}

async fn audit_login(app: &App, staff: &StaffRow, outcome: &str) {
    let actor = Actor::staff(staff);
    if outcome == "ok" {
        app.issuer
            .audit(
                &actor,
                Some(staff.centre_id),
                None,
                "login",
                outcome,
                String::new(),
            )
            .await;
    } else {
        // A refusal costs the attacker nothing: one row per account,
        // outcome and window, with a count (issue 12, finding 8).
        app.issuer
            .audit_counted(
                &actor,
                Some(staff.centre_id),
                "login",
                outcome,
                app.portal.config.throttle.window_seconds,
            )
            .await;
    }
}

/// Replaces the session (if any) by a new one (new id) of `stage`.
async fn rotate(
    app: &App,
    old: Option<&Session>,
    staff: &StaffRow,
    stage: &str,
) -> crate::Result<String> {
    if let Some(old) = old {
        app.issuer.store().delete_session(&old.id_hash).await?;
    }
    let (id, _) = session::create(app, Some(staff.id), stage).await?;
    Ok(id)
}

/// `POST /portal/login`.
pub async fn login(
    State(app): State<Arc<App>>,
    PageLang(lang): PageLang,
    ip: ClientIp,
    Extension(FormCsrf(csrf)): Extension<FormCsrf>,
    s: Option<Extension<Session>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let s = s.map(|Extension(s)| s);
    let t = lang.texts();
    let now = app.issuer.now();
    let login: String = f.login.trim().chars().take(64).collect();
    let login = login.as_str();
    // Counted before the hash (issue 12, finding 4): a burst cannot pass
    // the check before the first failure is written.
    let admission = match app.portal.throttle.reserve(login, ip.0, now) {
        Ok(a) => a,
        Err(r) => {
            if let Ok(Some(staff)) = app.issuer.store().staff_by_login(login).await {
                audit_login(&app, &staff, "throttled").await;
            }
            return retry_after(
                page(
                    StatusCode::TOO_MANY_REQUESTS,
                    &login_page(lang, &csrf, login, &refusal_text(lang, r)),
                ),
                (r.until - now).max(1) as u64,
            );
        }
    };
    // Slowed down, never refused, while the login id fails elsewhere.
    tokio::time::sleep(admission.delay).await;
    let slot = match app.portal.throttle.hashes().enter().await {
        Ok(slot) => slot,
        Err(busy) => {
            // Not checked: the attempt is given back.
            app.portal.throttle.release(login, ip.0);
            return retry_after(
                page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &login_page(lang, &csrf, login, t.login_busy),
                ),
                busy.retry_after,
            );
        }
    };
    let staff = match app.issuer.check_password(login, &f.password, slot).await {
        Ok(s) => s,
        Err(e) => return server_error(lang, &e),
    };
    let Some(staff) = staff else {
        // Only an existing account is named in the log: a password typed
        // into the login field must not be stored.
        if let Ok(Some(known)) = app.issuer.store().staff_by_login(login).await {
            audit_login(&app, &known, "wrong_password").await;
        }
        tracing::info!("portal login failed");
        return page(
            StatusCode::UNAUTHORIZED,
            &login_page(lang, &csrf, login, t.login_failed),
        );
    };
    let next_stage = if staff.totp_secret.is_some() {
        stage::TOTP
    } else {
        // The whole login succeeded: only now are the counters cleared
        // (issue 12, finding 6).
        app.portal.throttle.succeeded(login, ip.0);
        stage::FULL
    };
    let id = match rotate(&app, s.as_ref(), &staff, next_stage).await {
        Ok(id) => id,
        Err(e) => return server_error(lang, &e),
    };
    let to = if next_stage == stage::TOTP {
        "/portal/login/totp"
    } else {
        audit_login(&app, &staff, "ok").await;
        "/portal/cases"
    };
    let resp = with_cookie(
        redirect(to),
        Some(session::set_cookie(&app.portal.config, &id)),
    );
    with_cookie(resp, Some(session::clear_login_cookie(&app.portal.config)))
}

/// `GET /portal/login/totp`.
pub async fn totp_form(
    State(app): State<Arc<App>>,
    PageLang(lang): PageLang,
    headers: HeaderMap,
) -> Response {
    match session::load(&app, &headers).await {
        Ok(Some(s)) if s.row.stage == stage::TOTP => {
            let p = TotpPage {
                l: Layout::anon(
                    lang,
                    lang.texts().totp_title,
                    &s.row.csrf_token,
                    "/portal/login/totp",
                ),
                error: String::new(),
            };
            page(StatusCode::OK, &p)
        }
        Ok(_) => redirect("/portal/login?expired=1"),
        Err(e) => server_error(lang, &e),
    }
}

/// The TOTP of a base32 secret: SHA-1, 6 digits, 30-second steps (what
/// authenticator apps expect).
fn totp_of(secret_b32: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_owned()).to_bytes().ok()?;
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).ok()
}

/// The time step (`unix / 30`) whose code is `code`, checking one step of
/// clock drift either way.
pub(crate) fn matching_step(secret_b32: &str, code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) || now < 60 {
        return None;
    }
    let t = totp_of(secret_b32)?;
    let step = now / 30;
    [step - 1, step, step + 1].into_iter().find(|s| {
        let expected = t.generate((*s * 30) as u64);
        bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
    })
}

/// `POST /portal/login/totp`.
pub async fn totp(
    State(app): State<Arc<App>>,
    PageLang(lang): PageLang,
    ip: ClientIp,
    Extension(s): Extension<Session>,
    Form(f): Form<CodeForm>,
) -> Response {
    let t = lang.texts();
    let (true, Some(staff_id)) = (s.row.stage == stage::TOTP, s.row.staff_id) else {
        return forbidden(lang);
    };
    let staff = match app.issuer.store().staff(staff_id).await {
        Ok(Some(st)) if st.disabled_at.is_none() => st,
        Ok(_) => return forbidden(lang),
        Err(e) => return server_error(lang, &e.into()),
    };
    let now = app.issuer.now();
    let refuse = |status, error: String| {
        let p = TotpPage {
            l: Layout::anon(lang, t.totp_title, &s.row.csrf_token, "/portal/login/totp"),
            error,
        };
        page(status, &p)
    };
    // Codes are limited per account across addresses (finding 6).
    match app.portal.throttle.reserve_code(&staff.login, ip.0, now) {
        Ok(()) => {}
        Err(r) => {
            audit_login(&app, &staff, "throttled").await;
            return retry_after(
                refuse(StatusCode::TOO_MANY_REQUESTS, refusal_text(lang, r)),
                (r.until - now).max(1) as u64,
            );
        }
    }
    let secret = staff.totp_secret.clone().unwrap_or_default();
    let step = matching_step(&secret, &f.code, now);
    let fresh = match step {
        Some(step) => match app.issuer.store().use_totp_step(staff.id, step).await {
            Ok(fresh) => fresh,
            Err(e) => return server_error(lang, &e.into()),
        },
        None => false,
    };
    if !fresh {
        audit_login(&app, &staff, "wrong_totp").await;
        return refuse(StatusCode::UNAUTHORIZED, t.totp_failed.to_owned());
    }
    app.portal.throttle.succeeded(&staff.login, ip.0);
    let id = match rotate(&app, Some(&s), &staff, stage::FULL).await {
        Ok(id) => id,
        Err(e) => return server_error(lang, &e),
    };
    audit_login(&app, &staff, "ok").await;
    with_cookie(
        redirect("/portal/cases"),
        Some(session::set_cookie(&app.portal.config, &id)),
    )
}

/// `POST /portal/logout`.
pub async fn logout(
    State(app): State<Arc<App>>,
    PageLang(lang): PageLang,
    Extension(s): Extension<Session>,
) -> Response {
    if let Err(e) = app.issuer.store().delete_session(&s.id_hash).await {
        return server_error(lang, &e.into());
    }
    if let Some(id) = s.row.staff_id
        && let Ok(Some(staff)) = app.issuer.store().staff(id).await
    {
        app.issuer
            .audit(
                &Actor::staff(&staff),
                Some(staff.centre_id),
                None,
                "logout",
                "ok",
                String::new(),
            )
            .await;
    }
    let mut resp = redirect("/portal/login?bye=1");
    resp.headers_mut().append(
        header::SET_COOKIE,
        session::clear_cookie(&app.portal.config),
    );
    resp
}

fn otpauth_uri(login: &str, secret: &str) -> String {
    let label: String = login
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/HER-SYS:{label}?secret={secret}&issuer=HER-SYS&algorithm=SHA1&digits=6&period=30"
    )
}

/// The `otpauth://` URI as a QR code in inline SVG (issue 13: "TOTP setup
/// with a QR code … rendered as SVG beside the secret"), for an
/// authenticator app's camera. Inline, so the portal's CSP (`img-src
/// 'self'`) holds and the secret never leaves the page as a URL.
pub(super) fn qr_svg(uri: &str) -> String {
    use qrcode::render::svg;
    let Ok(code) = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M) else {
        // Longer than a QR code holds: the secret and URI stay beside it.
        return String::new();
    };
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The renderer writes an XML declaration; inline HTML takes the element only.
    let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
    svg.replacen(
        "<svg ",
        "<svg id=\"totp-qr\" role=\"img\" aria-label=\"QR\" ",
        1,
    )
}

fn setup_page(
    v: &Viewer,
    secret: &str,
    error: &'static str,
    info: &'static str,
    enabled: bool,
) -> TotpSetupPage {
    TotpSetupPage {
        l: Layout::of(v, v.lang.texts().totp_title, "/portal/account/totp"),
        enabled,
        secret: secret.to_owned(),
        uri: otpauth_uri(&v.staff.login, secret),
        qr: if secret.is_empty() {
            String::new()
        } else {
            qr_svg(&otpauth_uri(&v.staff.login, secret))
        },
        error,
        info,
    }
}

/// `GET /portal/account/totp`: a new secret to enrol (kept in the session
/// until confirmed with a code), or "on".
pub async fn totp_setup_form(State(app): State<Arc<App>>, v: Viewer) -> Response {
    if v.staff.totp_secret.is_some() {
        return page(StatusCode::OK, &setup_page(&v, "", "", "", true));
    }
    let mut raw = [0u8; 20];
    app.issuer.fill_random(&mut raw);
    let secret = Secret::Raw(raw.to_vec()).to_encoded().to_string();
    if let Err(e) = app
        .issuer
        .store()
        .set_session_totp_pending(&v.session.id_hash, Some(&secret))
        .await
    {
        return server_error(v.lang, &e.into());
    }
    page(StatusCode::OK, &setup_page(&v, &secret, "", "", false))
}

/// `POST /portal/account/totp`: turns TOTP on once a code of the pending
/// secret checks.
pub async fn totp_setup(
    State(app): State<Arc<App>>,
    v: Viewer,
    Form(f): Form<CodeForm>,
) -> Response {
    let t = v.lang.texts();
    if v.staff.totp_secret.is_some() {
        return page(StatusCode::OK, &setup_page(&v, "", "", "", true));
    }
    let Some(pending) = v.session.row.totp_pending.clone() else {
        return redirect("/portal/account/totp");
    };
    let now = app.issuer.now();
    let Some(step) = matching_step(&pending, &f.code, now) else {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &setup_page(&v, &pending, t.totp_failed, "", false),
        );
    };
    let store = app.issuer.store();
    let r = async {
        store.set_totp_secret(v.staff.id, Some(&pending)).await?;
        store.use_totp_step(v.staff.id, step).await?;
        store
            .set_session_totp_pending(&v.session.id_hash, None)
            .await
    }
    .await;
    if let Err(e) = r {
        return server_error(v.lang, &e.into());
    }
    app.issuer
        .audit(
            &v.actor,
            Some(v.staff.centre_id),
            None,
            "enable_totp",
            "ok",
            String::new(),
        )
        .await;
    page(
        StatusCode::OK,
        &setup_page(&v, "", "", t.totp_enabled_now, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rasterises the renderer's path (`M{x} {y}h{w}v{h}H{x}V{y}` per dark
    /// run) and reads it back with a QR decoder, as an authenticator's
    /// camera would: the code must hold the exact `otpauth://` URI.
    #[test]
    fn the_totp_qr_code_reads_back_as_the_otpauth_uri() {
        let uri = otpauth_uri("yamada", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        let svg = qr_svg(&uri);
        assert!(svg.starts_with("<svg id=\"totp-qr\""), "{svg}");
        let attr = |name: &str| -> usize {
            let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
        };
        let (w, h) = (attr("width"), attr("height"));
        let d_at = svg.find(" d=\"").unwrap() + 4;
        let d = &svg[d_at..d_at + svg[d_at..].find('"').unwrap()];
        let mut dark = vec![false; w * h];
        for run in d.split('M').filter(|r| !r.is_empty()) {
            let nums: Vec<usize> = run
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().unwrap())
                .collect();
            let (x, y, rw, rh) = (nums[0], nums[1], nums[2], nums[3]);
            for yy in y..y + rh {
                for xx in x..x + rw {
                    dark[yy * w + xx] = true;
                }
            }
        }
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            if dark[y * w + x] { 0 } else { 255 }
        });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
        assert!(
            qr_svg(&"x".repeat(5000)).is_empty(),
            "too long for a QR code"
        );
    }
}
