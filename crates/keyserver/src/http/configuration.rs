//! `GET /exposure_configuration/{configuration.json, risk_calculation_configuration.json,
//! bundle.json}`: the latest published phone configuration, in COCOA's formats, and the
//! bundle signed by every export signing key (`en_protocol::served_configuration`), with an
//! entity tag and `Cache-Control: no-cache` like the export indexes (a phone revalidates at
//! each check). 404 before anything is published: phones keep COCOA's built-in values.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use en_protocol::export::ExportSigner;
use en_protocol::served_configuration::{sha256_hex, sign_bundle};

use super::App;

/// Which served file.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Served {
    Configuration,
    RiskCalculation,
    Bundle,
}

pub(crate) async fn get(app: &Arc<App>, which: Served, headers: &HeaderMap) -> Response {
    let latest = match app.keyserver.store().latest_configuration().await {
        Ok(r) => r,
        Err(e) => return super::error_page(&crate::Error::from(e)),
    };
    let Some(row) = latest else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-cache")],
            axum::Json(api_types::error::ErrorResponse {
                error: "no configuration has been published".into(),
                error_code: "configuration_not_published".into(),
            }),
        )
            .into_response();
    };
    let body: Vec<u8> = match which {
        Served::Configuration => row.configuration_json.into_bytes(),
        Served::RiskCalculation => row.risk_calculation_json.into_bytes(),
        Served::Bundle => {
            let signers: Vec<&dyn ExportSigner> = app
                .exporter
                .signers()
                .iter()
                .map(|s| s as &dyn ExportSigner)
                .collect();
            let bundle = sign_bundle(
                u64::try_from(row.version).unwrap_or_default(),
                row.published_at,
                row.configuration_json.as_bytes(),
                row.risk_calculation_json.as_bytes(),
                &signers,
            );
            match bundle
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::to_vec_pretty(&b).map_err(|e| e.to_string()))
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "signing the configuration bundle");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            }
        }
    };
    let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().trim_start_matches("W/") == etag);
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

pub(crate) async fn configuration(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    get(&app, Served::Configuration, &headers).await
}

pub(crate) async fn risk_calculation(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    get(&app, Served::RiskCalculation, &headers).await
}

pub(crate) async fn bundle(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    get(&app, Served::Bundle, &headers).await
}
