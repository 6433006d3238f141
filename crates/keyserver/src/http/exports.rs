//! `GET /exports/{path}`: the export files and indexes from the object store,
//! with their content type, cache policy and entity tag.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::App;
use crate::storage::ObjectKind;

fn safe(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 256
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

/// The handler.
pub async fn get_export(
    State(app): State<Arc<App>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = ObjectKind::of_path(&path).filter(|_| safe(&path)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let object = match app.storage.get(&path).await {
        Ok(Some(o)) => o,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "reading an export object");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // A strong tag from the content: the same bytes always get the same tag,
    // whichever replica or rebuild wrote them.
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&object.bytes)[..16]));
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, kind.content_type())], object.bytes).into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(kind.cache_control()),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}
