//! Machine API for HER-SYS or any case system (admin API key, `Idempotency-Key`):
//! `POST /api/v1/cases`, `PATCH /api/v1/cases/{case_id}`,
//! `POST /api/v1/cases/{case_id}/processing-number`,
//! `GET /api/v1/cases/{case_id}/processing-number` (its state, never the
//! number), `POST /api/v1/cases/{case_id}/processing-number/expire` and
//! `POST /api/v1/processing-numbers:batch` (parity with Google's
//! verification server: issue 13).

use std::sync::Arc;

use api_types::cases::{
    BatchIssueRequest, BatchIssueResponse, BatchIssueResult, Classification,
    CreateCanaryCaseRequest, CreateCaseRequest, CreateCaseResponse, IssueResponse, MAX_BATCH,
    NumberStatusResponse, Sex,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::domain::model::CaseData;
use crate::error::{Error, Result};
use crate::service::{Actor, rfc3339_jst};
use crate::state::ApiKeyHeader;
use crate::state::App;
use crate::store::{ApiKeyKind, ApiKeyRow, IdempotencyBegin};

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| Error::MissingIdempotencyKey)?;
    if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::MissingIdempotencyKey);
    }
    Ok(Some(s.to_owned()))
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The admin API key of a machine-API request, and its `Idempotency-Key`
/// when it has a well-formed one.
async fn admin_request(
    app: &App,
    key: &ApiKeyHeader,
    headers: &HeaderMap,
) -> Result<(ApiKeyRow, Option<String>)> {
    let key = app
        .issuer
        .authenticate(key.0.as_deref(), ApiKeyKind::Admin)
        .await?;
    Ok((key, idempotency_key(headers)?))
}

/// Runs `work` at most once per `(key, Idempotency-Key)`; a retry gets the
/// stored answer, so it never sends a second message.
///
/// The work runs in its own task, detached from the connection: "When the
/// client resets the connection during `POST …/processing-number`, 23 of 30
/// keys answered 409 `request_in_progress` forever and 8 issuances stayed
/// delivery `pending`" (issue 12, finding 7). A client that goes away no
/// longer cancels the request half-way: the issuance, its delivery and the
/// stored answer all finish, and the retry with the same key gets that
/// answer. (Only a crash can still leave a key in progress; it expires, see
/// `Store::begin_idempotent`.)
async fn idempotent<F, Fut>(
    app: Arc<App>,
    key: ApiKeyRow,
    idem: Option<String>,
    fingerprint: Vec<u8>,
    work: F,
) -> Response
where
    F: FnOnce(Arc<App>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(StatusCode, String)>> + Send + 'static,
{
    let task = tokio::spawn(run_idempotent(app, key, idem, fingerprint, work));
    match task.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "idempotent request task failed");
            Error::Internal(anyhow::anyhow!("request task failed")).into_response()
        }
    }
}

async fn run_idempotent<F, Fut>(
    app: Arc<App>,
    key: ApiKeyRow,
    idem: Option<String>,
    fingerprint: Vec<u8>,
    work: F,
) -> Response
where
    F: FnOnce(Arc<App>) -> Fut,
    Fut: Future<Output = Result<(StatusCode, String)>>,
{
    let Some(idem) = idem else {
        return match work(app.clone()).await {
            Ok((s, b)) => json_response(s, b),
            Err(e) => e.into_response(),
        };
    };
    let hash = hex::encode(Sha256::digest(&fingerprint));
    let begun = app
        .issuer
        .store()
        .begin_idempotent(key.id, &idem, &hash, app.issuer.now())
        .await;
    match begun {
        Err(e) => return Error::from(e).into_response(),
        Ok(IdempotencyBegin::Done { status, body }) => {
            return json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
        }
        Ok(IdempotencyBegin::InProgress) => return Error::RequestInProgress.into_response(),
        Ok(IdempotencyBegin::Mismatch) => return Error::IdempotencyKeyReused.into_response(),
        Ok(IdempotencyBegin::New) => {}
    }
    let (status, body) = match work(app.clone()).await {
        Ok(r) => r,
        Err(e @ Error::Internal(_)) => {
            if let Err(e) = app.issuer.store().abandon_idempotent(key.id, &idem).await {
                tracing::error!(error = %e, "could not release idempotency key");
            }
            return e.into_response();
        }
        Err(e) => {
            let (s, b) = e.to_body();
            (s, serde_json::to_string(&b).unwrap_or_default())
        }
    };
    if let Err(e) = app
        .issuer
        .store()
        .finish_idempotent(key.id, &idem, status.as_u16(), &body)
        .await
    {
        return Error::from(e).into_response();
    }
    json_response(status, body)
}

/// `POST /api/v1/cases`.
#[instrument(skip_all)]
pub(super) async fn create_case(
    State(app): State<Arc<App>>,
    key: ApiKeyHeader,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, idem) = match admin_request(&app, &key, &headers).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut fp = b"POST /api/v1/cases\n".to_vec();
    fp.extend_from_slice(&body);
    let actor = Actor::api(&key);
    idempotent(app, key, idem, fp, move |app| async move {
        let req: CreateCaseRequest = serde_json::from_slice(&body)
            .map_err(|e| Error::Unparsable(format!("{:?}", e.classify()).to_lowercase()))?;
        let case_id = app.issuer.create_case(&actor, &req).await?;
        let b =
            serde_json::to_string(&CreateCaseResponse { case_id }).map_err(anyhow::Error::from)?;
        Ok((StatusCode::CREATED, b))
    })
    .await
}

/// `POST /api/v1/canary-cases`: a synthetic case for `cocoa canary`
/// (`Idempotency-Key` optional); `canary_not_configured` when the issuer has
/// no canary channel.
#[instrument(skip_all)]
pub(super) async fn create_canary_case(
    State(app): State<Arc<App>>,
    key: ApiKeyHeader,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, idem) = match admin_request(&app, &key, &headers).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut fp = b"POST /api/v1/canary-cases\n".to_vec();
    fp.extend_from_slice(&body);
    let actor = Actor::api(&key);
    idempotent(app, key, idem, fp, move |app| async move {
        let req: CreateCanaryCaseRequest = serde_json::from_slice(&body)
            .map_err(|e| Error::Unparsable(format!("{:?}", e.classify()).to_lowercase()))?;
        let case_id = app.issuer.create_canary_case(&actor, req.centre_id).await?;
        let b =
            serde_json::to_string(&CreateCaseResponse { case_id }).map_err(anyhow::Error::from)?;
        Ok((StatusCode::CREATED, b))
    })
    .await
}

/// `POST /api/v1/cases/{case_id}/processing-number`.
#[instrument(skip_all)]
pub(super) async fn issue(
    State(app): State<Arc<App>>,
    key: ApiKeyHeader,
    headers: HeaderMap,
    Path(case_id): Path<String>,
) -> Response {
    let (key, idem) = match admin_request(&app, &key, &headers).await {
        Ok((key, Some(idem))) => (key, idem),
        Ok((_, None)) => return Error::MissingIdempotencyKey.into_response(),
        Err(e) => return e.into_response(),
    };
    let Ok(case_id) = case_id.parse::<i64>() else {
        return Error::CaseNotFound.into_response();
    };
    let fp = format!("POST /api/v1/cases/{case_id}/processing-number");
    let actor = Actor::api(&key);
    idempotent(
        app,
        key,
        Some(idem),
        fp.into_bytes(),
        move |app| async move {
            let issued = app.issuer.issue(&actor, case_id).await?;
            let b = serde_json::to_string(&IssueResponse {
                status: issued_status(&issued).into(),
                channel: issued.channel.as_str().into(),
                expires_at: rfc3339_jst(issued.expires_at),
            })
            .map_err(anyhow::Error::from)?;
            // 202: accepted, waiting in the send queue.
            let code = if issued.queued {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok((code, b))
        },
    )
    .await
}

/// `GET /api/v1/cases/{case_id}/processing-number`: the latest number's
/// state, channel, delivery and times — never the number (it is not
/// stored). `state` is `none` for a case that never had one.
#[instrument(skip_all)]
pub(super) async fn number_status(
    State(app): State<Arc<App>>,
    key: ApiKeyHeader,
    Path(case_id): Path<String>,
) -> Response {
    let key = match app
        .issuer
        .authenticate(key.0.as_deref(), ApiKeyKind::Admin)
        .await
    {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let Ok(case_id) = case_id.parse::<i64>() else {
        return Error::CaseNotFound.into_response();
    };
    let actor = Actor::api(&key);
    let (latest, reissues) = match app.issuer.number_status(&actor, case_id).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let at = |t: Option<i64>| t.map(rfc3339_jst);
    let body = match latest {
        None => NumberStatusResponse {
            case_id,
            state: "none".into(),
            channel: None,
            delivery_status: None,
            delivery_error: None,
            reissues: 0,
            issued_at: None,
            sent_at: None,
            delivered_at: None,
            expires_at: None,
            used_at: None,
        },
        Some(i) => NumberStatusResponse {
            case_id,
            state: i.state.as_str().into(),
            channel: Some(i.channel.as_str().into()),
            delivery_status: Some(i.delivery_status.clone()),
            delivery_error: i.delivery_error.clone(),
            reissues,
            issued_at: at(Some(i.issued_at)),
            sent_at: at(i.sent_at),
            delivered_at: at(i.delivered_at),
            expires_at: at(Some(i.expires_at)),
            used_at: at(i.used_at),
        },
    };
    match serde_json::to_string(&body) {
        Ok(b) => json_response(StatusCode::OK, b),
        Err(e) => Error::Internal(e.into()).into_response(),
    }
}

/// `POST /api/v1/cases/{case_id}/processing-number/expire`: ends the live
/// number at once (sent to the wrong person). 409 `no_live_number` when
/// there is none. `Idempotency-Key` optional; with one, a retry gets the
/// first answer.
#[instrument(skip_all)]
pub(super) async fn expire(
    State(app): State<Arc<App>>,
    key: ApiKeyHeader,
    headers: HeaderMap,
    Path(case_id): Path<String>,
) -> Response {
    let (key, idem) = match admin_request(&app, &key, &headers).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Ok(case_id) = case_id.parse::<i64>() else {
        return Error::CaseNotFound.into_response();
    };
    let fp = format!("POST /api/v1/cases/{case_id}/processing-number/expire");
    let actor = Actor::api(&key);
    idempotent(app, key, idem, fp.into_bytes(), move |app| async move {
        app.issuer.expire_number(&actor, case_id).await?;
        let (latest, reissues) = app.issuer.number_status(&actor, case_id).await?;
        let expires_at = latest.map(|i| rfc3339_jst(i.expires_at));
        let b = serde_json::json!({
            "case_id": case_id,
            "state": "expired",
            "expires_at": expires_at,
            "reissues": reissues,
        })
        .to_string();
        Ok((StatusCode::OK, b))
    })
    .await
}

/// The ids of a batch: 1 to [`MAX_BATCH`], none twice.
fn batch_ids(body: &[u8]) -> Result<Vec<i64>> {
    let req: BatchIssueRequest = serde_json::from_slice(body)
        .map_err(|e| Error::Unparsable(format!("{:?}", e.classify()).to_lowercase()))?;
    if req.case_ids.is_empty() {
        return Err(Error::InvalidBatch("empty".into()));
    }
    if req.case_ids.len() > MAX_BATCH {
        return Err(Error::InvalidBatch("too_many".into()));
    }
    let mut seen = std::collections::HashSet::with_capacity(req.case_ids.len());
    for id in &req.case_ids {
        if !seen.insert(*id) {
            return Err(Error::InvalidBatch(format!("duplicate:{id}")));
        }
    }
    Ok(req.case_ids)
}

/// `POST /api/v1/processing-numbers:batch` `{"case_ids": [...]}`: issues a
/// number for each case (1 to 100, none twice), one result each in the
/// order asked — what the single `POST …/processing-number` would have
/// answered, so a case of another centre is `case_not_found` and a case
/// with a missing prerequisite names it. `Idempotency-Key` required: a
/// retry (after a dropped connection, say) gets the first answer and sends
/// nothing again. A malformed batch changes nothing.
#[instrument(skip_all)]
pub(super) async fn issue_batch(
    State(app): State<Arc<App>>,
    key: ApiKeyHeader,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, idem) = match admin_request(&app, &key, &headers).await {
        Ok((key, Some(idem))) => (key, idem),
        Ok((_, None)) => return Error::MissingIdempotencyKey.into_response(),
        Err(e) => return e.into_response(),
    };
    let ids = match batch_ids(&body) {
        Ok(ids) => ids,
        Err(e) => return e.into_response(),
    };
    let mut fp = b"POST /api/v1/processing-numbers:batch\n".to_vec();
    fp.extend_from_slice(&body);
    let actor = Actor::api(&key);
    idempotent(app, key, Some(idem), fp, move |app| async move {
        let mut results = Vec::with_capacity(ids.len());
        for case_id in ids {
            let r = match app.issuer.issue(&actor, case_id).await {
                Ok(issued) => BatchIssueResult {
                    case_id,
                    status: issued_status(&issued).into(),
                    channel: Some(issued.channel.as_str().into()),
                    expires_at: Some(rfc3339_jst(issued.expires_at)),
                    error_code: None,
                    error: None,
                },
                Err(e) => {
                    if let Error::Internal(detail) = &e {
                        tracing::error!(case_id, error = %detail, "batch issuance failed");
                    }
                    let (_, b) = e.to_body();
                    BatchIssueResult {
                        case_id,
                        status: "error".into(),
                        channel: None,
                        expires_at: None,
                        error_code: Some(b.error_code),
                        error: Some(b.error),
                    }
                }
            };
            results.push(r);
        }
        let b =
            serde_json::to_string(&BatchIssueResponse { results }).map_err(anyhow::Error::from)?;
        Ok((StatusCode::OK, b))
    })
    .await
}

/// `PATCH /api/v1/cases/{case_id}` body: any of the fields of
/// `POST /api/v1/cases`; absent fields keep their value, `null` (or `""`)
/// clears `mobile` / `email`. Unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    name_kanji: Option<String>,
    name_kana: Option<String>,
    birth_date: Option<String>,
    sex: Option<Sex>,
    #[serde(default, deserialize_with = "present")]
    mobile: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    outpatient_facility: Option<String>,
    test_positive: Option<bool>,
    classification: Option<Classification>,
    diagnosis_date: Option<String>,
    reported: Option<bool>,
    uses_app: Option<bool>,
}

/// A field that is present (possibly `null`) becomes `Some`.
fn present<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl CasePatch {
    fn apply(self, c: &CaseData) -> CreateCaseRequest {
        CreateCaseRequest {
            name_kanji: self.name_kanji.unwrap_or_else(|| c.name_kanji.clone()),
            name_kana: self.name_kana.unwrap_or_else(|| c.name_kana.clone()),
            birth_date: self
                .birth_date
                .unwrap_or_else(|| c.birth_date.format("%Y-%m-%d").to_string()),
            sex: self.sex.unwrap_or(c.sex),
            mobile: self.mobile.unwrap_or_else(|| c.mobile.clone()),
            email: self.email.unwrap_or_else(|| c.email.clone()),
            outpatient_facility: self
                .outpatient_facility
                .unwrap_or_else(|| c.outpatient_facility.clone()),
            test_positive: self.test_positive.unwrap_or(c.test_positive),
            classification: self.classification.unwrap_or(c.classification),
            diagnosis_date: self.diagnosis_date.unwrap_or_else(|| {
                c.diagnosis_date
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default()
            }),
            reported: self.reported.unwrap_or(c.reported),
            uses_app: self.uses_app.unwrap_or(c.uses_app),
            centre_id: None,
        }
    }
}

/// `PATCH /api/v1/cases/{case_id}`: edits a case (e.g. adds the contact
/// or reports the 発生届); may trigger automatic issuance. Answers
/// `{"case_id"}`. `Idempotency-Key` optional.
#[instrument(skip_all)]
pub(super) async fn update_case(
    State(app): State<Arc<App>>,
    key: ApiKeyHeader,
    headers: HeaderMap,
    Path(case_id): Path<String>,
    body: Bytes,
) -> Response {
    let (key, idem) = match admin_request(&app, &key, &headers).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Ok(case_id) = case_id.parse::<i64>() else {
        return Error::CaseNotFound.into_response();
    };
    let mut fp = format!("PATCH /api/v1/cases/{case_id}\n").into_bytes();
    fp.extend_from_slice(&body);
    let actor = Actor::api(&key);
    idempotent(app, key, idem, fp, move |app| async move {
        let case = app.issuer.case_for(&actor, case_id).await?;
        let patch: CasePatch = serde_json::from_slice(&body)
            .map_err(|e| Error::Unparsable(format!("{:?}", e.classify()).to_lowercase()))?;
        let req = patch.apply(&case.data);
        app.issuer.update_case(&actor, case_id, &req).await?;
        let b =
            serde_json::to_string(&CreateCaseResponse { case_id }).map_err(anyhow::Error::from)?;
        Ok((StatusCode::OK, b))
    })
    .await
}

/// `sent`, or `queued` for a number whose message waits in the send queue.
fn issued_status(issued: &crate::service::Issued) -> &'static str {
    if issued.queued { "queued" } else { "sent" }
}
