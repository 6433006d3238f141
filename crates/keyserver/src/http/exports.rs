//! `GET /exports/{path}`: the export files and indexes from the object store,
//! with their content type, cache policy and entity tag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
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

/// What the server remembers of the objects it served: path -> (object
/// version, content tag, and the bytes while they fit). A request for an
/// unchanged object then costs one metadata lookup (a `stat` of the file,
/// or a `HEAD` of the bucket's object): a revalidation (`If-None-Match`)
/// answers 304 without reading the object, and a download is served from
/// memory without reading or hashing it again. A changed object (a
/// rewritten index) has another version and is read and hashed again.
///
/// Hand-written rather than an LRU crate: entries are replaced whole and
/// the bound is on bytes; when either bound is reached the memory is simply
/// emptied (the working set — the indexes and two weeks of zips — refills
/// it at the cost of one read each).
#[derive(Debug, Default)]
pub(crate) struct ServedObjects(Mutex<Served>);

#[derive(Debug, Default)]
struct Served {
    entries: HashMap<String, ServedObject>,
    /// Sum of the bytes held.
    held: usize,
}

#[derive(Debug, Clone)]
struct ServedObject {
    version: String,
    tag: String,
    bytes: Option<Bytes>,
}

/// Most objects remembered (an index and two weeks of hourly zips in a few
/// regions need a few thousand).
const MAX_SERVED_OBJECTS: usize = 20_000;
/// Most bytes held in memory: two weeks of a peak day's exports (about
/// 65 MB of zips a day at 3.6 M keys) do not fit, the recent days do.
const MAX_SERVED_BYTES: usize = 256 << 20;
/// Objects larger than this are never held (each is read when asked for).
const MAX_HELD_OBJECT: usize = 32 << 20;

impl ServedObjects {
    fn get(&self, path: &str, version: &str) -> Option<ServedObject> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.entries
            .get(path)
            .filter(|o| o.version == version)
            .cloned()
    }

    fn put(&self, path: &str, version: String, tag: String, bytes: &Bytes) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let keep = bytes.len() <= MAX_HELD_OBJECT;
        let size = if keep { bytes.len() } else { 0 };
        if m.entries.len() >= MAX_SERVED_OBJECTS || m.held + size > MAX_SERVED_BYTES {
            m.entries.clear();
            m.held = 0;
        }
        let new = ServedObject {
            version,
            tag,
            bytes: keep.then(|| bytes.clone()),
        };
        if let Some(old) = m.entries.insert(path.to_owned(), new) {
            m.held -= old.bytes.map_or(0, |b| b.len());
        }
        m.held += size;
    }
}

/// Whether `If-None-Match` names `etag`. "A recipient MUST use the weak
/// comparison function when comparing entity tags for If-None-Match" (RFC
/// 9110 §13.1.2): `W/"x"` matches `"x"` (a proxy that compressed the file
/// weakens the tag it passes on), so a phone revalidating through one gets
/// its 304 too.
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    let opaque = |t: &str| {
        let t = t.trim();
        t.strip_prefix("W/").unwrap_or(t).to_owned()
    };
    let ours = opaque(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
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

/// The indexes of the regions this server exports, before the first export
/// wrote them: `index.txt` (or `{region}/index.txt`) and `{region}/list.json`.
fn is_exported_index(app: &App, path: &str) -> bool {
    let settings = app.exporter.settings();
    std::iter::once(settings.region.as_str())
        .chain(settings.regions.iter().map(|r| r.name.as_str()))
        .any(|region| path == settings.index_path(region) || path == format!("{region}/list.json"))
}

/// A missing object: 404, except the index of an exported region, which is
/// served empty before the first export (the key server always serves an
/// index, so a phone can tell "nothing published yet" from a wrong URL).
fn missing(app: &App, path: &str, kind: ObjectKind, headers: &HeaderMap) -> Response {
    let body: &'static [u8] = match kind {
        ObjectKind::IndexTxt if is_exported_index(app, path) => b"",
        ObjectKind::ListJson if is_exported_index(app, path) => b"[]",
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]));
    let resp = if matches(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, kind.content_type())], body).into_response()
    };
    with_cache_headers(resp, kind, &etag)
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
    let failed = |e: anyhow::Error| {
        tracing::error!(error = format!("{e:#}"), "reading an export object");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    };
    let version = match app.storage.version(&path).await {
        Ok(Some(v)) => v,
        Ok(None) => return missing(&app, &path, kind, &headers),
        Err(e) => return failed(e),
    };
    if let Some(known) = app.served.get(&path, &version) {
        if matches(&headers, &known.tag) {
            return with_cache_headers(StatusCode::NOT_MODIFIED.into_response(), kind, &known.tag);
        }
        if let Some(bytes) = known.bytes {
            return with_cache_headers(
                ([(header::CONTENT_TYPE, kind.content_type())], bytes).into_response(),
                kind,
                &known.tag,
            );
        }
    }
    let object = match app.storage.get(&path).await {
        Ok(Some(o)) => o,
        Ok(None) => return missing(&app, &path, kind, &headers),
        Err(e) => return failed(e),
    };
    // A strong tag from the content: the same bytes always get the same tag,
    // whichever replica or rebuild wrote them. Remembered under the version
    // of what was read (which may be newer than the one looked up above).
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&object.bytes)[..16]));
    app.served
        .put(&path, object.version, etag.clone(), &object.bytes);
    let resp = if matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, kind.content_type())], object.bytes).into_response()
    };
    with_cache_headers(resp, kind, &etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_objects_follow_the_version_and_stay_within_their_bounds() {
        let served = ServedObjects::default();
        let bytes = Bytes::from(vec![7u8; 1000]);
        served.put("440/a.zip", "v1".into(), "\"t1\"".into(), &bytes);
        let hit = served.get("440/a.zip", "v1").unwrap();
        assert_eq!(
            (hit.tag.as_str(), hit.bytes.unwrap()),
            ("\"t1\"", bytes.clone())
        );
        assert!(served.get("440/a.zip", "v2").is_none(), "another version");
        // Replacing an entry replaces its bytes in the count.
        served.put("440/a.zip", "v2".into(), "\"t2\"".into(), &bytes);
        assert_eq!(served.0.lock().unwrap().held, 1000);
        // Too large to hold: the tag is remembered, the bytes are not.
        let big = Bytes::from(vec![0u8; MAX_HELD_OBJECT + 1]);
        served.put("index.txt", "v1".into(), "\"t3\"".into(), &big);
        let hit = served.get("index.txt", "v1").unwrap();
        assert!(hit.bytes.is_none());
        assert_eq!(served.0.lock().unwrap().held, 1000);
        // Past the byte bound the memory is emptied and refilled.
        let chunk = Bytes::from(vec![1u8; MAX_HELD_OBJECT]);
        for i in 0..(MAX_SERVED_BYTES / MAX_HELD_OBJECT + 1) {
            served.put(&format!("440/{i}.zip"), "v".into(), "\"t\"".into(), &chunk);
            assert!(served.0.lock().unwrap().held <= MAX_SERVED_BYTES);
        }
        assert!(served.get("440/a.zip", "v2").is_none(), "emptied once");
    }
}
