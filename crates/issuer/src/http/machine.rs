//! Machine API for HER-SYS or any case system (admin API key, `Idempotency-Key`):
//! `POST /api/v1/cases`, `PATCH /api/v1/cases/{case_id}`,
//! `POST /api/v1/cases/{case_id}/processing-number`.

use std::sync::Arc;

use api_types::cases::{
    Classification, CreateCanaryCaseRequest, CreateCaseRequest, CreateCaseResponse, IssueResponse,
    Sex,
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
                status: "sent".into(),
                channel: issued.channel.as_str().into(),
                expires_at: rfc3339_jst(issued.expires_at),
            })
            .map_err(anyhow::Error::from)?;
            Ok((StatusCode::OK, b))
        },
    )
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
