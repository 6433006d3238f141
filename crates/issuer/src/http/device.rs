//! Device API (PROTOCOLS.md §3): `POST /api/verify`, `POST /api/certificate`,
//! `GET /.well-known/jwks.json`.

use std::sync::Arc;

use api_types::verify::{
    CertificateRequest, CertificateResponse, JwkSet, VerifyRequest, VerifyResponse,
};
use axum::Json;
use axum::extract::State;
use tracing::instrument;

use crate::error::{Error, Result};
use crate::limits::Refusal;
use crate::state::App;
use crate::state::{ApiKeyHeader, ClientIp, JsonBody};
use crate::store::ApiKeyKind;

async fn gate(app: &App, ip: ClientIp, key: &ApiKeyHeader) -> Result<()> {
    app.limits
        .check_request(ip.0)
        .map_err(|retry_after| Error::RateLimited { retry_after })?;
    app.issuer
        .authenticate(key.0.as_deref(), ApiKeyKind::Device)
        .await?;
    Ok(())
}

/// The device's `Idempotency-Key` (the same on every retry of a step):
/// none, or 16 to 128 printable ASCII characters. A malformed one is
/// refused before anything is done, so that a phone with a bug learns of it
/// instead of losing its retries silently.
fn retry_key(headers: &axum::http::HeaderMap) -> Result<Option<&str>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .filter(|k| (16..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(Some)
        .ok_or(Error::InvalidRetryKey)
}

/// `POST /api/verify`.
#[instrument(skip_all)]
pub(super) async fn verify(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    key: ApiKeyHeader,
    headers: axum::http::HeaderMap,
    body: Result<JsonBody<VerifyRequest>>,
) -> Result<Json<VerifyResponse>> {
    gate(&app, ip, &key).await?;
    let JsonBody(req) = body?;
    let retry = retry_key(&headers)?;
    let now = app.issuer.now();
    // The app link's code (20 symbols, 100 bits) cannot be guessed, so it
    // needs no guessing budget, only the request bucket: phones behind one
    // carrier-NAT address whose budget others' typos used up still register
    // with the link in their SMS (issue 12, finding 3). A typed 8-digit
    // number is reserved before it is looked at, so a burst released at
    // once gets no more evaluations than the budget (finding 2).
    let link = matches!(
        crate::domain::codes::normalise_code(&req.code),
        Some(crate::domain::codes::TypedCode::Link(_))
    );
    // The guessing ledger weighs each typed number by the live numbers `L`, recounted at
    // most once a minute (by one request; the others use the last count).
    if !link && app.limits.claim_live_recount(now) {
        let live = app.issuer.store().live_numbers(now).await?;
        app.limits.set_live_numbers(live, now);
    }
    let reservation = if link {
        None
    } else {
        Some(
            app.limits
                .reserve_failure(ip.0, now)
                .map_err(|refusal| match refusal {
                    Refusal::Address { retry_after } => {
                        Error::NumberAttemptsExhausted { retry_after }
                    }
                    Refusal::Paused { retry_after } => Error::TypedNumbersPaused { retry_after },
                })?,
        )
    };
    let r = app
        .issuer
        .verify_or_replay(&req.code, req.accept.as_deref(), retry)
        .await;
    match r {
        Ok((report_type, token)) => {
            if let Some(r) = reservation {
                r.refund();
            }
            Ok(Json(VerifyResponse {
                testtype: report_type.as_str().to_owned(),
                symptom_date: None,
                test_date: None,
                token,
                padding: app.issuer.padding(),
            }))
        }
        // Nothing was asked about a number: a malformed `accept`, an outage.
        Err(e @ (Error::Unparsable(_) | Error::Internal(_))) => {
            if let Some(r) = reservation {
                r.refund();
            }
            Err(e)
        }
        // "Every request about a number that does not yield a token costs
        // the budget the same" (finding 10): unknown, used, expired, or of a
        // type the phone did not accept (a 412 would otherwise tell, for
        // free, that a guessed number is live).
        Err(e) => {
            if let Some(r) = reservation {
                r.charge();
            }
            Err(e)
        }
    }
}

/// `POST /api/certificate`.
#[instrument(skip_all)]
pub(super) async fn certificate(
    State(app): State<Arc<App>>,
    ip: ClientIp,
    key: ApiKeyHeader,
    headers: axum::http::HeaderMap,
    body: Result<JsonBody<CertificateRequest>>,
) -> Result<Json<CertificateResponse>> {
    gate(&app, ip, &key).await?;
    let JsonBody(req) = body?;
    let retry = retry_key(&headers)?;
    let certificate = app
        .issuer
        .certificate_or_replay(&req.token, &req.ekeyhmac, retry)
        .await?;
    Ok(Json(CertificateResponse {
        certificate,
        padding: app.issuer.padding(),
    }))
}

/// `GET /.well-known/jwks.json`.
pub(super) async fn jwks(State(app): State<Arc<App>>) -> Result<Json<JwkSet>> {
    app.issuer
        .keyring()
        .reload(app.issuer.store(), app.issuer.now())
        .await?;
    Ok(Json(app.issuer.keyring().jwks()))
}

/// `GET /api/v1/consultation-centres`: the consultation centre of each
/// prefecture whose health centre set one in its settings, for phones to
/// show beside a notification (the phone's `--consultation-centres-url`).
/// Public and the same for everyone, so it may be cached for five minutes;
/// it carries no personal data.
pub(super) async fn consultation_centres(
    State(app): State<Arc<App>>,
) -> Result<impl axum::response::IntoResponse> {
    let list = app.issuer.consultation_centres().await?;
    Ok((
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(list),
    ))
}
