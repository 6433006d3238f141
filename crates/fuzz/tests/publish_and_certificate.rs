//! The key server's `POST /v1/publish` and the certificate parser behind it,
//! fed what a hostile client can send: garbage and deeply nested JSON,
//! valid requests with fields replaced by odd values, and valid requests
//! whose certificate (JWT) has been mutated byte by byte.
//!
//! - Never a 500, never a hang; every refusal is a 4xx with a stable `code`.
//! - A mutated certificate is never accepted: only the exact certificate the
//!   issuer signed publishes.
//! - Nothing is stored by a refused request (checked at the end against the
//!   stored key count).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, OnceLock};

use api_types::publish::PublishRequest;
use keyserver::testkit::{Minter, daily_keys, publish_request};
use proptest::prelude::*;
use rand::SeedableRng as _;

use common::{bounded, config};

const HA: &str = "fuzz";

struct Server {
    base: String,
    minter: Minter,
    app: Arc<keyserver::http::App>,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let minter = Minter::generate(&mut rng, "fuzz-issuer", "cocoa-keyserver");
        let (base, app) = rt.block_on(async {
            let config = keyserver::KeyserverConfig::default();
            let clock = Arc::new(en_protocol::time::SystemClock);
            let app =
                keyserver::http::build(&config, dir.path(), clock, vec![minter.trusted_issuer(HA)])
                    .await
                    .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let router = keyserver::router(app.clone());
            tokio::spawn(async move { axum_serve(listener, router).await });
            (base, app)
        });
        Server {
            base,
            minter,
            app,
            rt,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    })
}

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) {
    axum::serve(listener, router).await.unwrap();
}

fn now() -> i64 {
    en_protocol::time::Clock::now(&en_protocol::time::SystemClock).timestamp()
}

/// A valid request of fresh keys.
fn valid_request(seed: u64) -> PublishRequest {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let t = now();
    let keys = daily_keys(&mut rng, 5, (t / 600) as u32);
    publish_request(&mut rng, &server().minter, HA, keys, "confirmed", t)
}

fn post(body: Vec<u8>) -> (u16, serde_json::Value) {
    let s = server();
    s.rt.block_on(async {
        let r = s
            .http
            .post(format!("{}/v1/publish", s.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or_default())
    })
}

/// Held by a test between counting the stored keys and counting them
/// again, and by every other publish meanwhile: the tests of this file share
/// one server, and `cargo test` runs them on parallel threads.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn stored_keys() -> i64 {
    let s = server();
    s.rt.block_on(async {
        use sqlx::Row as _;
        sqlx::query("SELECT COUNT(*) AS n FROM exposures")
            .fetch_one(s.app.keyserver.store().pool())
            .await
            .unwrap()
            .try_get::<i64, _>("n")
            .unwrap()
    })
}

fn odd_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        any::<String>().prop_map(serde_json::Value::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        Just(serde_json::Value::from("A".repeat(5_000))),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| serde_json::Value::from(base64_encode(&b))),
    ]
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A path into a publish request to replace.
fn field() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::select(vec![
        vec!["temporaryExposureKeys"],
        vec!["temporaryExposureKeys", "0", "key"],
        vec!["temporaryExposureKeys", "0", "rollingStartNumber"],
        vec!["temporaryExposureKeys", "0", "rollingPeriod"],
        vec!["temporaryExposureKeys", "0", "transmissionRisk"],
        vec!["healthAuthorityID"],
        vec!["verificationPayload"],
        vec!["hmacKey"],
        vec!["symptomOnsetInterval"],
        vec!["traveler"],
        vec!["revisionToken"],
        vec!["padding"],
        vec!["unknownField"],
    ])
}

fn replace(v: &mut serde_json::Value, path: &[&str], with: serde_json::Value) {
    let mut at = v;
    for (i, p) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let next = match p.parse::<usize>() {
            Ok(n) => at.get_mut(n),
            Err(_) => {
                if last {
                    if let Some(o) = at.as_object_mut() {
                        o.insert((*p).to_owned(), with);
                    }
                    return;
                }
                at.get_mut(*p)
            }
        };
        match next {
            Some(n) if last => {
                *n = with;
                return;
            }
            Some(n) => at = n,
            None => return,
        }
    }
}

fn assert_refusal_shape(status: u16, body: &serde_json::Value) -> Result<(), TestCaseError> {
    prop_assert!(status != 500, "500: {body}");
    if status != 200 {
        prop_assert!((400..500).contains(&status), "{status} {body}");
        prop_assert!(
            body["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{status} without a code: {body}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn odd_fields_and_garbage_are_refused_with_a_code(
        seed in any::<u64>(),
        path in field(),
        value in odd_value(),
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
        which in 0u8..4,
    ) {
        let body = match which {
            0 => garbage,
            1 => format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)).into_bytes(),
            _ => {
                let mut v = serde_json::to_value(valid_request(seed)).unwrap();
                replace(&mut v, &path, value);
                v.to_string().into_bytes()
            }
        };
        let (status, answer) = {
            let _turn = one_at_a_time();
            bounded("publish", || post(body))
        };
        assert_refusal_shape(status, &answer)?;
    }

    #[test]
    fn a_mutated_certificate_never_publishes(
        seed in any::<u64>(),
        at in any::<usize>(),
        with in prop::sample::select(vec![b'A', b'B', b'_', b'-', b'.', b'0', b'=', b'/', b'+', b' ']),
    ) {
        let mut req = valid_request(seed);
        let cert = req.verification_payload.clone().into_bytes();
        let i = at % cert.len();
        let mut mutated = cert.clone();
        mutated[i] = with;
        prop_assume!(mutated != cert);
        req.verification_payload = String::from_utf8_lossy(&mutated).into_owned();
        let _turn = one_at_a_time();
        let before = stored_keys();
        let (status, answer) =
            bounded("publish", || post(serde_json::to_vec(&req).unwrap()));
        assert_refusal_shape(status, &answer)?;
        prop_assert_ne!(status, 200, "a mutated certificate was accepted: {}", answer);
        prop_assert_eq!(stored_keys(), before, "a refused publish stored keys");
    }
}

#[test]
fn the_unmutated_request_publishes() {
    // The baseline the mutations are measured against: the same request,
    // untouched, is accepted. (Without it the tests above could pass against
    // a server that refuses everything.)
    let _turn = one_at_a_time();
    let before = stored_keys();
    let (status, answer) = post(serde_json::to_vec(&valid_request(1)).unwrap());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["insertedExposures"], 5);
    assert_eq!(stored_keys(), before + 5);
}
