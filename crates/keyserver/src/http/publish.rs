//! `POST /v1/publish`: real requests, chaff, and the padding of every answer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_types::publish::{CHAFF_HEADER, PublishRequest, PublishResponse, codes};
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;

use super::App;
use crate::error::Error;

/// Answers are padded to this size...
pub const PADDED_SIZE: usize = 1024;
/// ...plus a random number of bytes below this.
pub const PADDED_JITTER: usize = 256;

/// Recent durations of real publishes, which chaff answers imitate.
#[derive(Debug, Default)]
pub struct Latencies(VecDeque<Duration>);

impl Latencies {
    const KEEP: usize = 128;

    fn record(&mut self, d: Duration) {
        if self.0.len() == Self::KEEP {
            self.0.pop_front();
        }
        self.0.push_back(d);
    }

    fn sample(&self, r: u64) -> Duration {
        if self.0.is_empty() {
            return Duration::from_millis(20);
        }
        self.0[(r % self.0.len() as u64) as usize]
    }
}

/// Random base64 characters, `n` of them.
fn random_text(rng: &mut dyn RngCore, n: usize) -> String {
    let mut bytes = vec![0u8; n * 3 / 4 + 3];
    rng.fill_bytes(&mut bytes);
    let mut s = STANDARD_NO_PAD.encode(bytes);
    s.truncate(n);
    s
}

/// Serializes an answer padded to about [`PADDED_SIZE`] + jitter bytes, so
/// that success, failure and chaff answers are of one size class.
fn padded(app: &App, mut resp: PublishResponse) -> Vec<u8> {
    resp.padding.clear();
    let base = serde_json::to_vec(&resp).map_or(0, |v| v.len());
    let mut rng = app.rng.lock().unwrap_or_else(|e| e.into_inner());
    let target = PADDED_SIZE + (rng.next_u64() % PADDED_JITTER as u64) as usize;
    resp.padding = random_text(&mut **rng, target.saturating_sub(base).max(16));
    serde_json::to_vec(&resp).unwrap_or_default()
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn error_response(app: &App, e: &Error) -> Response {
    e.log_if_internal();
    let (status, message) = e.status_and_message();
    let body = padded(
        app,
        PublishResponse {
            error: Some(message),
            code: Some(e.code().to_owned()),
            ..PublishResponse::default()
        },
    );
    let mut resp = json(status, body);
    if matches!(e, Error::Unavailable(_)) {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from(crate::error::RETRY_AFTER_SECONDS),
        );
    }
    resp
}

/// The handler.
pub async fn publish(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(&app, &Error::PayloadTooLarge);
        }
        Err(_) => return error_response(&app, &Error::BadRequest("could not read the body")),
    };
    if headers.contains_key(CHAFF_HEADER) {
        return chaff(&app, &body, started).await;
    }
    let req: PublishRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            // serde's message may quote the input (keys): keep only its class.
            let why = match e.classify() {
                serde_json::error::Category::Data => "missing field or wrong type",
                serde_json::error::Category::Eof => "truncated JSON",
                _ => "malformed JSON",
            };
            return error_response(&app, &Error::BadRequest(why));
        }
    };
    let result = app.keyserver.publish(&req).await;
    app.latencies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(started.elapsed());
    match result {
        Ok(o) => {
            let partial = !o.warnings.is_empty();
            let resp = PublishResponse {
                inserted_exposures: o.inserted,
                code: partial.then(|| codes::PARTIAL_FAILURE.to_owned()),
                error: partial.then(|| {
                    "一部の診断キーを登録できませんでした / some keys were dropped".to_owned()
                }),
                warnings: o.warnings,
                ..PublishResponse::default()
            };
            json(StatusCode::OK, padded(&app, resp))
        }
        Err(e) => error_response(&app, &e),
    }
}

/// A chaff request: an answer shaped like a success, after a delay drawn
/// from recent real publishes; nothing is parsed beyond the key count and
/// nothing is stored.
async fn chaff(app: &App, body: &[u8], started: Instant) -> Response {
    crate::publish::count_publish("chaff");
    #[derive(serde::Deserialize)]
    struct Count {
        #[serde(rename = "temporaryExposureKeys", default)]
        keys: Vec<serde::de::IgnoredAny>,
    }
    let keys = serde_json::from_slice::<Count>(body)
        .map(|c| c.keys.len())
        .unwrap_or(14)
        .clamp(1, 30) as u32;
    let delay = {
        let r = app.rng.lock().unwrap_or_else(|e| e.into_inner()).next_u64();
        app.latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(r)
    };
    if let Some(rest) = delay.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let resp = PublishResponse {
        inserted_exposures: keys,
        ..PublishResponse::default()
    };
    json(StatusCode::OK, padded(app, resp))
}
