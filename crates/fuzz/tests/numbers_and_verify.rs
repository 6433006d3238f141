//! The processing number as people type it, and the verify/certificate
//! JSON as the device API receives it.
//!
//! - The phone's normaliser (`device::normalise_number`) and the issuer's
//!   (`issuer::domain::codes::normalise_code`) never panic, produce 8 ASCII
//!   digits or nothing, and agree: whatever the phone sends, the issuer reads
//!   as the same number.
//! - `POST /api/verify` and `POST /api/certificate` with arbitrary bodies
//!   (garbage, mutated valid JSON, deep nesting, odd Unicode) answer a 4xx
//!   with a stable code — never a 500 — and claim nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use device::Code;
use issuer::domain::codes::{TypedCode, normalise_code};
use proptest::prelude::*;

use common::{bounded, config};

/// Characters people (and their keyboards) put into a number field.
fn typed_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => proptest::char::range('0', '9'),
        6 => proptest::char::range('０', '９'),
        2 => prop::sample::select(vec![
            ' ', '\u{3000}', '-', '‐', '‑', '–', '—', '−', 'ー', '－', '\t', '\n', '\u{200B}', '\u{00A0}',
        ]),
        1 => prop::sample::select(vec!['a', 'O', 'l', 'I', '٣', '۳', '߃', '१', '𝟑', '③', '¹', 'ｱ']),
        1 => any::<char>(),
    ]
}

fn typed() -> impl Strategy<Value = String> {
    proptest::collection::vec(typed_char(), 0..24).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(config(4_000))]

    #[test]
    fn normalisers_never_panic_and_agree(input in typed()) {
        let phone = bounded("device normaliser", || device::normalise_number(&input));
        let server = bounded("issuer normaliser", || normalise_code(&input));
        if let Ok(Code::Number(n)) = &phone {
            prop_assert_eq!(n.len(), 8);
            prop_assert!(n.bytes().all(|b| b.is_ascii_digit()));
            // What the phone sends, the issuer reads as the same number.
            prop_assert_eq!(normalise_code(n), Some(TypedCode::Number(n.clone())));
            // And so it does from what the person typed.
            prop_assert_eq!(&server, &Some(TypedCode::Number(n.clone())));
        }
        if let Some(TypedCode::Number(n)) = &server {
            prop_assert_eq!(n.len(), 8);
            prop_assert!(n.bytes().all(|b| b.is_ascii_digit()));
            // Normalising is idempotent.
            prop_assert_eq!(normalise_code(n), Some(TypedCode::Number(n.clone())));
        }
    }

    #[test]
    fn normalisers_never_panic_on_any_string(input in any::<String>()) {
        let _ = bounded("device normaliser", || device::normalise_number(&input));
        let _ = bounded("issuer normaliser", || normalise_code(&input));
        let _ = bounded("app link", || device::parse_app_link(&input));
    }
}

/// A running issuer (SQLite in a temporary folder) and its device API key.
struct Issuer {
    base: String,
    device_key: String,
    live_number: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn issuer() -> &'static Issuer {
    static I: OnceLock<Issuer> = OnceLock::new();
    I.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (base, device_key, live_number) = rt.block_on(async {
            let config = issuer::IssuerConfig {
                limits: issuer::limits::LimitsConfig {
                    requests_per_minute: 0,
                    failure_burst: 1_000_000_000,
                    guessed_numbers_per_day: f64::INFINITY,
                    ..Default::default()
                },
                ..Default::default()
            };
            let clock = std::sync::Arc::new(en_protocol::time::SystemClock);
            let app = issuer::http::build(&config, dir.path(), clock).await.unwrap();
            let (key, _) = app
                .issuer
                .create_api_key(issuer::store::ApiKeyKind::Device, None)
                .await
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let router = issuer::http::router(app.clone(), config.max_body_bytes);
            tokio::spawn(async move {
                issuer::http::serve_router(router, listener, std::future::pending())
                    .await
                    .unwrap();
            });
            // One live number, to show the fuzzing leaves it alone.
            let now = app.issuer.now();
            let centre = app
                .issuer
                .store()
                .create_centre("みなと保健所", "13", now)
                .await
                .unwrap();
            let (admin, _) = app
                .issuer
                .create_api_key(issuer::store::ApiKeyKind::Admin, Some(centre))
                .await
                .unwrap();
            let case = serde_json::json!({
                "name_kanji": "横口 健太", "name_kana": "ヨコグチ ケンタ",
                "birth_date": "1998-09-09", "sex": "male", "mobile": "090-1234-5678",
                "outpatient_facility": "港区外来", "test_positive": true,
                "classification": "confirmed",
                "diagnosis_date": en_protocol::time::Clock::now(&en_protocol::time::SystemClock).date_naive().to_string(),
                "reported": true, "uses_app": true
            });
            let http = reqwest::Client::new();
            let r: serde_json::Value = http
                .post(format!("{base}/api/v1/cases"))
                .header("x-api-key", &admin)
                .json(&case)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = r["case_id"].as_i64().unwrap();
            let r = http
                .post(format!("{base}/api/v1/cases/{id}/processing-number"))
                .header("x-api-key", &admin)
                .header("idempotency-key", "fuzz")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            (base, key, live_number(&dir.path().join("outbox")))
        });
        Issuer {
            base,
            device_key,
            live_number,
            rt,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    })
}

/// JSON-ish bodies: valid requests with odd values, mutated, nested, garbage.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        typed().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("a".repeat(70_000))),
    ];
    let object = (
        value.clone(),
        value.clone(),
        value,
        prop::sample::select(vec!["code", "token", "accept", "ekeyhmac", "padding", "x"]),
    )
        .prop_map(|(a, b, c, k)| {
            serde_json::json!({"code": a, "accept": [b], "token": c, k: "z"})
                .to_string()
                .into_bytes()
        });
    prop_oneof![
        object,
        proptest::collection::vec(any::<u8>(), 0..512),
        (1usize..20_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        typed().prop_map(|s| format!(r#"{{"code":"{s}"}}"#).into_bytes()),
    ]
}

/// The number of the one live case, read from the outbox.
fn live_number(outbox: &std::path::Path) -> String {
    let file = std::fs::read_dir(outbox)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let msg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let body = msg["body"].as_str().unwrap();
    body.split("処理番号: ").nth(1).unwrap()[..8].to_owned()
}

#[test]
fn device_api_answers_bad_bodies_with_a_stable_4xx_and_changes_nothing() {
    let i = issuer();
    let mut runner = proptest::test_runner::TestRunner::new(config(1_500));
    let paths = prop::sample::select(vec!["/api/verify", "/api/certificate"]);
    runner
        .run(&(body(), paths), |(b, path)| {
            let (status, text) = bounded("device API request", || {
                i.rt.block_on(async {
                    let r = i
                        .http
                        .post(format!("{}{path}", i.base))
                        .header("content-type", "application/json")
                        .header("x-api-key", &i.device_key)
                        .body(b.clone())
                        .send()
                        .await
                        .unwrap();
                    (r.status().as_u16(), r.text().await.unwrap())
                })
            });
            prop_assert!((400..500).contains(&status), "{status} {text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert!(
                v["errorCode"].as_str().is_some_and(|c| !c.is_empty()),
                "{text}"
            );
            Ok(())
        })
        .unwrap();
    // Nothing changed: the live number was neither claimed nor damaged.
    let status = i.rt.block_on(async {
        let r = i
            .http
            .post(format!("{}/api/verify", i.base))
            .header("x-api-key", &i.device_key)
            .json(&serde_json::json!({"code": i.live_number}))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    });
    assert_eq!(status, 200, "the live number still verifies, once");
}
