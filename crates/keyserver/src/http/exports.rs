//! `GET /exports/{path}`: the export files and indexes from the object store,
//! with their content type, cache policy and entity tag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

/// Content tags already computed: path -> (object version, tag). A
/// revalidation (`If-None-Match`) of an unchanged object then costs one
/// metadata lookup, not a read and a hash of the whole file; a changed
/// object (a rewritten index) has another version and is hashed again.
#[derive(Debug, Default)]
pub(crate) struct ETags(Mutex<HashMap<String, (String, String)>>);

/// Most tags kept (an index and two weeks of hourly zips need ~700).
const MAX_ETAGS: usize = 20_000;

impl ETags {
    fn get(&self, path: &str, version: &str) -> Option<String> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(path)
            .filter(|(v, _)| v == version)
            .map(|(_, tag)| tag.clone())
    }

    fn put(&self, path: &str, version: String, tag: String) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_ETAGS {
            m.clear();
        }
        m.insert(path.to_owned(), (version, tag));
    }
}

fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn with_cache_headers(mut resp: Response, kind: ObjectKind, etag: &str) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(kind.cache_control()),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    resp
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
    let version = if headers.contains_key(header::IF_NONE_MATCH) {
        match app.storage.version(&path).await {
            Ok(Some(v)) => Some(v),
            Ok(None) => return StatusCode::NOT_FOUND.into_response(),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "reading an export object");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    } else {
        None
    };
    if let Some(v) = &version
        && let Some(tag) = app.etags.get(&path, v)
        && matches(&headers, &tag)
    {
        return with_cache_headers(StatusCode::NOT_MODIFIED.into_response(), kind, &tag);
    }
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
    if let Some(v) = version {
        app.etags.put(&path, v, etag.clone());
    }
    let resp = if matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, kind.content_type())], object.bytes).into_response()
    };
    with_cache_headers(resp, kind, &etag)
}
