//! A small fake of the issuer's device API, the key server's publish API and
//! the export folder, on a real socket, recording every request the phone
//! makes.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use device::{Phone, Settings};
use en_protocol::export::{
    ExportMeta, ExportSigner, ExposureKey, ReportType, SignatureInfo, SoftwareSigner, build_export,
};
use en_protocol::time::{EnIntervalNumber, FixedClock};
use en_protocol::{TEK_ROLLING_PERIOD, Tek};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How the next request to a path fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 without doing anything (server down, network lost before it arrived).
    Down,
    /// Does the work, then answers 503 (the answer is lost).
    LoseAnswer,
    /// Answers 429 without doing anything (an answer that arrives).
    Busy,
    /// Answers 429 `number_attempts_exhausted` (this address's wrong numbers), Retry-After 3600.
    AddressExhausted,
    /// Answers 429 `typed_numbers_paused` (the guessing bound), Retry-After 7200.
    TypedPaused,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub log: Vec<Recorded>,
    /// Live numbers or link codes -> test type.
    pub codes: HashMap<String, String>,
    pub expired: HashSet<String>,
    pub used: HashSet<String>,
    pub tokens: HashSet<String>,
    pub faults: HashMap<String, Vec<Fault>>,
    /// Keys published (base64), per publish.
    pub published: Vec<Vec<Value>>,
    /// Static files under /exports/.
    pub files: HashMap<String, Vec<u8>>,
    /// The served configuration under /exposure_configuration/ (`bundle.json`...), with an
    /// entity tag (its SHA-256) and 304 on `If-None-Match`, as the key server serves it.
    pub configuration: HashMap<String, Vec<u8>>,
    pub next_token: u32,
}

#[derive(Debug, Clone)]
pub struct Fake {
    pub state: Arc<Mutex<FakeState>>,
    pub url: String,
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": format!("fake {code}"), "errorCode": code})),
    )
        .into_response()
}

fn down() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
}

impl Fake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let s2 = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = s2.clone();
                async move { handle(&state, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            state,
            url: format!("http://{addr}"),
        }
    }

    pub fn add_code(&self, code: &str) {
        self.state
            .lock()
            .unwrap()
            .codes
            .insert(code.into(), "confirmed".into());
    }

    pub fn fail_next(&self, path: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(path.into())
            .or_default()
            .push(fault);
    }

    pub fn log(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn count(&self, path: &str) -> usize {
        self.log().iter().filter(|r| r.path == path).count()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    pub fn put_file(&self, path: &str, bytes: Vec<u8>) {
        self.state.lock().unwrap().files.insert(path.into(), bytes);
    }

    /// Serves `name` under /exposure_configuration/ (`None`: 404).
    pub fn put_configuration(&self, name: &str, bytes: Option<Vec<u8>>) {
        let mut s = self.state.lock().unwrap();
        match bytes {
            Some(b) => s.configuration.insert(name.into(), b),
            None => s.configuration.remove(name),
        };
    }

    pub fn settings(&self) -> Settings {
        Settings {
            prefecture: Some("13".into()),
            server: Some(self.url.clone()),
            api_key: Some("device-key".into()),
            ..Settings::default()
        }
    }
}

fn handle(
    state: &Mutex<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut s = state.lock().unwrap();
    s.log.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: body.to_vec(),
    });
    let fault = s
        .faults
        .get_mut(&path)
        .and_then(|f| (!f.is_empty()).then(|| f.remove(0)));
    if fault == Some(Fault::Down) {
        return down();
    }
    if fault == Some(Fault::Busy) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "120")],
            axum::Json(json!({"error": "fake busy", "errorCode": "rate_limited"})),
        )
            .into_response();
    }
    if let Some((code, wait)) = match fault {
        Some(Fault::AddressExhausted) => Some(("number_attempts_exhausted", "3600")),
        Some(Fault::TypedPaused) => Some(("typed_numbers_paused", "7200")),
        _ => None,
    } {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", wait)],
            axum::Json(json!({"error": "fake refusal", "errorCode": code})),
        )
            .into_response();
    }
    let lose = fault == Some(Fault::LoseAnswer);
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let answer = match (method.as_str(), path.as_str()) {
        ("POST", "/api/verify") => {
            if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("device-key") {
                return error(StatusCode::UNAUTHORIZED, "unauthorized");
            }
            let code = req["code"].as_str().unwrap_or("").to_owned();
            if s.used.contains(&code) {
                error(StatusCode::BAD_REQUEST, "code_invalid")
            } else if s.expired.contains(&code) {
                error(StatusCode::BAD_REQUEST, "code_expired")
            } else if let Some(tt) = s.codes.get(&code).cloned() {
                s.used.insert(code);
                s.next_token += 1;
                let token = format!("token-{}", s.next_token);
                s.tokens.insert(token.clone());
                axum::Json(json!({"testtype": tt, "token": token, "padding": "p"})).into_response()
            } else {
                error(StatusCode::BAD_REQUEST, "code_invalid")
            }
        }
        ("POST", "/api/certificate") => {
            let token = req["token"].as_str().unwrap_or("").to_owned();
            let mac = req["ekeyhmac"].as_str().unwrap_or("").to_owned();
            if !s.tokens.remove(&token) {
                error(StatusCode::BAD_REQUEST, "token_invalid")
            } else {
                axum::Json(json!({"certificate": format!("cert.{mac}"), "padding": "p"}))
                    .into_response()
            }
        }
        ("POST", "/v1/publish") => {
            let cert = req["verificationPayload"].as_str().unwrap_or("");
            let keys: Vec<api_types::publish::PublishKey> =
                serde_json::from_value(req["temporaryExposureKeys"].clone()).unwrap_or_default();
            let hmac_key = base64::engine::general_purpose::STANDARD
                .decode(req["hmacKey"].as_str().unwrap_or(""))
                .unwrap_or_default();
            let mac = device::register::key_hmac(&hmac_key, &keys);
            let expected = format!(
                "cert.{}",
                base64::engine::general_purpose::STANDARD.encode(mac)
            );
            if cert != expected {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"code": "hmac_mismatch", "error": "mismatch"})),
                )
                    .into_response()
            } else {
                s.published.push(
                    req["temporaryExposureKeys"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                axum::Json(json!({"insertedExposures": keys.len(), "padding": "p"})).into_response()
            }
        }
        ("GET", p) if p.starts_with("/exposure_configuration/") => {
            match s
                .configuration
                .get(p.trim_start_matches("/exposure_configuration/"))
            {
                Some(b) => {
                    use sha2::Digest as _;
                    let etag = format!("\"{}\"", hex::encode(sha2::Sha256::digest(b)));
                    let fresh = headers
                        .get("if-none-match")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v == etag);
                    if fresh {
                        (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response()
                    } else {
                        ([("etag", etag)], b.clone()).into_response()
                    }
                }
                None => error(StatusCode::NOT_FOUND, "configuration_not_published"),
            }
        }
        ("GET", p) if p.starts_with("/exports/") => {
            match s.files.get(p.trim_start_matches("/exports/")) {
                Some(b) => b.clone().into_response(),
                None => (StatusCode::NOT_FOUND, "no such file").into_response(),
            }
        }
        _ => (StatusCode::NOT_FOUND, "unknown").into_response(),
    };
    if lose { down() } else { answer }
}

pub fn jst(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono::FixedOffset::east_opt(9 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// A phone set up at `now` in `home`, with its own clock.
pub fn phone(
    home: &Path,
    settings: Settings,
    now: DateTime<Utc>,
    seed: u64,
) -> (Phone, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(now));
    let p = Phone::init(
        home,
        settings,
        clock.clone(),
        Box::new(ChaCha20Rng::seed_from_u64(seed)),
    )
    .unwrap();
    (p, clock)
}

/// Re-opens a phone (as after a crash of the app).
pub fn reopen(home: &Path, clock: Arc<FixedClock>, seed: u64) -> Phone {
    Phone::open(home, clock, Box::new(ChaCha20Rng::seed_from_u64(seed))).unwrap()
}

/// Makes a key for every day from `from` to `to` (the phone was on).
pub fn run_days(p: &mut Phone, clock: &FixedClock, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut t = from;
    while t <= to {
        clock.set(t);
        p.beacon(t).unwrap();
        t += chrono::Duration::days(1);
    }
    clock.set(to);
}

pub fn signer(seed: u64) -> SoftwareSigner {
    SoftwareSigner::generate(
        &mut ChaCha20Rng::seed_from_u64(seed),
        SignatureInfo::new("440", "v1"),
    )
}

/// A phone that has run since 12-01, checking against `fake` with `pem`.
pub fn checking_phone(
    home: &Path,
    fake: &Fake,
    pem: &str,
    seed: u64,
    exports: Option<String>,
) -> (Phone, Arc<FixedClock>) {
    let mut s = fake.settings();
    s.export_public_keys = vec![pem.to_owned()];
    s.exports = exports;
    let (mut p, clock) = phone(home, s, jst(2020, 12, 1, 12, 0), seed);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 1, 12, 0),
        jst(2020, 12, 16, 12, 0),
    );
    (p, clock)
}

/// The published keys of `fake` plus `noise` random keys, as one signed file.
pub fn export_of(fake: &Fake, noise: usize, signers: &[&dyn ExportSigner]) -> Vec<u8> {
    let published = fake.state.lock().unwrap().published.clone();
    let mut keys: Vec<ExposureKey> = published
        .iter()
        .flatten()
        .map(|k| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(k["key"].as_str().unwrap())
                .unwrap();
            let mut key = ExposureKey::new(
                Tek::try_from_slice(&bytes).unwrap(),
                EnIntervalNumber::new(k["rollingStartNumber"].as_u64().unwrap() as u32),
            );
            key.report_type = Some(ReportType::CONFIRMED_TEST);
            key
        })
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let day = EnIntervalNumber::from_datetime(jst(2020, 12, 14, 9, 0)).unwrap();
    for i in 0..noise {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        let start = day.get() - TEK_ROLLING_PERIOD * (i as u32 % 10);
        keys.push(ExposureKey::new(
            Tek::from_bytes(b),
            EnIntervalNumber::new(start),
        ));
    }
    let meta = ExportMeta {
        start_timestamp: 1_608_000_000,
        end_timestamp: 1_608_003_600,
        region: "440".into(),
    };
    build_export(&meta, keys, signers).unwrap()
}
