//! `POST /v1/publish` against the real router on a real socket, on every
//! database backend: success, each bad input with its stable code and
//! nothing stored, partial failure, idempotent retry, chaff, padding.
#![allow(clippy::unwrap_used)]

mod common;

use api_types::publish::{PublishKey, codes};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{HA, Harness, NowTs};
use keyserver::testkit::{key_hmac, publish_request};
use sqlx::Row;

async fn stored_rows(h: &Harness) -> Vec<(i64, i64, i64, i64, i64)> {
    sqlx::query(
        "SELECT rolling_start, transmission_risk, report_type, created_at, available_at \
         FROM exposures ORDER BY rolling_start",
    )
    .fetch_all(h.store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.try_get(0).unwrap(),
            r.try_get(1).unwrap(),
            r.try_get(2).unwrap(),
            r.try_get(3).unwrap(),
            r.try_get(4).unwrap(),
        )
    })
    .collect()
}

async fn nothing_stored(h: &Harness, what: &str) {
    assert_eq!(h.store.key_count().await.unwrap(), 0, "{what}: keys stored");
    assert_eq!(
        h.store.publish_count().await.unwrap(),
        0,
        "{what}: publish recorded"
    );
}

#[tokio::test]
async fn a_publish_stores_keys_with_server_set_risk_and_embargo() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        // Seven past days, plus today's key (still valid: embargoed).
        let mut keys = h.keys(7);
        let today = h.now_interval() - h.now_interval() % 144;
        let mut k = [0u8; 16];
        rand::RngCore::fill_bytes(&mut h.rng, &mut k);
        keys.push(PublishKey {
            key: STANDARD.encode(k),
            rolling_start_number: today,
            rolling_period: 144,
            transmission_risk: Some(0),
        });
        // COCOA sent 0: the server must not keep the client's value.
        keys[0].transmission_risk = Some(0);
        let req = h.request(keys);
        let (status, resp) = h.publish(&req).await;
        assert_eq!(status, 200, "{}: {resp:?}", db.label);
        assert_eq!(resp.inserted_exposures, 8);
        assert_eq!(resp.code, None);
        assert!(resp.warnings.is_empty());

        let rows = stored_rows(&h).await;
        assert_eq!(rows.len(), 8);
        let hour = h.now() - h.now() % 3600;
        for (start, risk, report_type, created, available) in &rows {
            assert_eq!(
                (*risk, *report_type),
                (2, 1),
                "confirmed: risk 2, CONFIRMED_TEST"
            );
            assert_eq!(*created, hour, "upload time truncated to the hour");
            if *start == i64::from(today) {
                assert_eq!(
                    *available,
                    (i64::from(today) + 144) * 600,
                    "embargoed to its end"
                );
            } else {
                assert_eq!(*available, hour);
            }
        }
    }
}

#[tokio::test]
async fn likely_certificates_give_clinical_diagnosis() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let keys = h.keys(2);
        let now = h.now();
        let req = publish_request(&mut h.rng, &h.minter, HA, keys, "likely", now);
        let (status, _) = h.publish(&req).await;
        assert_eq!(status, 200);
        let rows = stored_rows(&h).await;
        assert!(rows.iter().all(|r| (r.1, r.2) == (4, 2)), "{rows:?}");
    }
}

/// One bad input: how to make it, and the status and code it must get.
struct Case {
    name: &'static str,
    status: u16,
    code: &'static str,
    body: Vec<u8>,
}

fn with_keys(h: &mut Harness, f: impl FnOnce(&mut Vec<PublishKey>, u32)) -> Vec<u8> {
    let mut keys = h.keys(1);
    let today = h.now_interval() - h.now_interval() % 144;
    f(&mut keys, today);
    serde_json::to_vec(&h.request(keys)).unwrap()
}

fn cases(h: &mut Harness) -> Vec<Case> {
    let now = h.now();
    let mut v = vec![
        Case {
            name: "malformed JSON",
            status: 400,
            code: codes::BAD_REQUEST,
            body: b"{\"temporaryExposureKeys\": [".to_vec(),
        },
        Case {
            name: "wrong type",
            status: 400,
            code: codes::BAD_REQUEST,
            body: br#"{"temporaryExposureKeys": 3, "healthAuthorityID": "cocoa", "verificationPayload": "x", "hmacKey": "x"}"#.to_vec(),
        },
        Case {
            name: "body over the limit",
            status: 413,
            code: codes::PAYLOAD_TOO_LARGE,
            body: {
                let keys = h_keys(h, 1);
                let mut req = h.request(keys);
                req.padding = Some("A".repeat(70_000));
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "31 keys",
            status: 400,
            code: codes::TOO_MANY_KEYS,
            body: {
                let mut keys = h_keys(h, 15);
                keys.extend(h_keys(h, 15));
                keys.extend(h_keys(h, 1));
                serde_json::to_vec(&h.request(keys)).unwrap()
            },
        },
        Case {
            name: "no keys",
            status: 400,
            code: codes::NO_KEYS,
            body: serde_json::to_vec(&h.request(Vec::new())).unwrap(),
        },
        Case {
            name: "a 15-byte key",
            status: 400,
            code: codes::KEY_INVALID_LENGTH,
            body: with_keys(h, |k, _| k[0].key = STANDARD.encode([9u8; 15])),
        },
        Case {
            name: "rolling period 0",
            status: 400,
            code: codes::KEY_INVALID_ROLLING_PERIOD,
            body: with_keys(h, |k, _| k[0].rolling_period = 0),
        },
        Case {
            name: "rolling period 145",
            status: 400,
            code: codes::KEY_INVALID_ROLLING_PERIOD,
            body: with_keys(h, |k, _| k[0].rolling_period = 145),
        },
        Case {
            name: "a key 16 days old",
            status: 400,
            code: codes::KEY_TOO_OLD,
            body: with_keys(h, |k, today| k[0].rolling_start_number = today - 16 * 144),
        },
        Case {
            name: "a key starting tomorrow",
            status: 400,
            code: codes::KEY_IN_FUTURE,
            body: with_keys(h, |k, today| k[0].rolling_start_number = today + 144),
        },
        Case {
            name: "4 keys with one start",
            status: 400,
            code: codes::TOO_MANY_KEYS_SAME_START,
            body: {
                let mut keys = h_keys(h, 1);
                for _ in 0..3 {
                    let mut k = h_keys(h, 1);
                    k[0].rolling_start_number = keys[0].rolling_start_number;
                    keys.extend(k);
                }
                serde_json::to_vec(&h.request(keys)).unwrap()
            },
        },
        Case {
            name: "an expired certificate",
            status: 401,
            code: codes::CERTIFICATE_EXPIRED,
            body: {
                let keys = h_keys(h, 2);
                let req = publish_request(&mut h.rng, &h.minter, HA, keys, "confirmed", now - 901 - 61);
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "a certificate not yet valid",
            status: 401,
            code: codes::CERTIFICATE_EXPIRED,
            body: {
                let keys = h_keys(h, 2);
                let req = publish_request(&mut h.rng, &h.minter, HA, keys, "confirmed", now + 200);
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "a certificate signed by an unknown key",
            status: 401,
            code: codes::CERTIFICATE_INVALID,
            body: {
                let stranger = keyserver::testkit::Minter::generate(
                    &mut h.rng,
                    "cocoa-issuer",
                    "cocoa-keyserver",
                );
                let keys = h_keys(h, 2);
                serde_json::to_vec(&publish_request(&mut h.rng, &stranger, HA, keys, "confirmed", now)).unwrap()
            },
        },
        Case {
            name: "a known kid with a foreign signature",
            status: 401,
            code: codes::CERTIFICATE_INVALID,
            body: {
                let stranger = keyserver::testkit::Minter::generate(
                    &mut h.rng,
                    "cocoa-issuer",
                    "cocoa-keyserver",
                );
                let keys = h_keys(h, 2);
                let mut req = publish_request(&mut h.rng, &stranger, HA, keys, "confirmed", now);
                let claims: serde_json::Value = {
                    let c = req.verification_payload.split('.').nth(1).unwrap();
                    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap()
                };
                req.verification_payload = stranger.sign_claims(&claims, Some(h.minter.kid()), "ES256");
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "a certificate without kid",
            status: 401,
            code: codes::CERTIFICATE_INVALID,
            body: resign(h, None, "ES256"),
        },
        Case {
            name: "a certificate with alg none",
            status: 401,
            code: codes::CERTIFICATE_INVALID,
            body: {
                let keys = h_keys(h, 2);
                let mut req = h.request(keys);
                let mut parts: Vec<String> = req.verification_payload.split('.').map(str::to_owned).collect();
                parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, h.minter.kid()));
                parts[2] = String::new();
                req.verification_payload = parts.join(".");
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "a wrong aud",
            status: 401,
            code: codes::CERTIFICATE_AUDIENCE_INVALID,
            body: {
                let keys = h_keys(h, 2);
                let mut req = h.request(keys.clone());
                let hk = STANDARD.decode(&req.hmac_key).unwrap();
                let mut claims = h.minter.claims(&key_hmac(&hk, &keys), "confirmed", now);
                claims.aud = "someone-else".into();
                req.verification_payload = h.minter.certificate(&claims);
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "a negative report type",
            status: 401,
            code: codes::CERTIFICATE_INVALID,
            body: {
                let keys = h_keys(h, 2);
                serde_json::to_vec(&publish_request(&mut h.rng, &h.minter, HA, keys, "negative", now)).unwrap()
            },
        },
        Case {
            name: "a tekmac that does not match the keys",
            status: 401,
            code: codes::HMAC_MISMATCH,
            body: {
                let keys = h_keys(h, 2);
                let mut req = h.request(keys);
                req.keys[0].rolling_start_number -= 144;
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "a bad base64 hmacKey",
            status: 400,
            code: codes::HMAC_KEY_INVALID,
            body: {
                let keys = h_keys(h, 2);
                let mut req = h.request(keys);
                req.hmac_key = "not base64!".into();
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "a too short hmacKey",
            status: 400,
            code: codes::HMAC_KEY_INVALID,
            body: {
                let keys = h_keys(h, 2);
                let mut req = h.request(keys);
                req.hmac_key = STANDARD.encode([1u8; 8]);
                serde_json::to_vec(&req).unwrap()
            },
        },
        Case {
            name: "an unknown healthAuthorityID",
            status: 401,
            code: codes::UNKNOWN_HEALTH_AUTHORITY_ID,
            body: {
                let keys = h_keys(h, 2);
                let mut req = h.request(keys);
                req.health_authority_id = "somewhere".into();
                serde_json::to_vec(&req).unwrap()
            },
        },
    ];
    v.shrink_to_fit();
    v
}

fn h_keys(h: &mut Harness, n: u32) -> Vec<PublishKey> {
    h.keys(n)
}

fn resign(h: &mut Harness, kid: Option<&str>, alg: &str) -> Vec<u8> {
    let keys = h.keys(2);
    let mut req = h.request(keys);
    let c = req
        .verification_payload
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .unwrap(),
    )
    .unwrap();
    req.verification_payload = h.minter.sign_claims(&claims, kid, alg);
    serde_json::to_vec(&req).unwrap()
}

#[tokio::test]
async fn every_bad_input_gets_a_stable_code_and_stores_nothing() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        for case in cases(&mut h) {
            let (status, resp, len) = h.post(case.body, false).await;
            assert_eq!(
                (status, resp.code.as_deref()),
                (case.status, Some(case.code)),
                "{} on {}: {resp:?}",
                case.name,
                db.label
            );
            assert_eq!(resp.inserted_exposures, 0, "{}", case.name);
            assert!(resp.error.is_some(), "{}", case.name);
            assert!(len >= 1024, "{}: error answers are padded too", case.name);
            nothing_stored(&h, case.name).await;
        }
    }
}

#[tokio::test]
async fn bad_keys_are_dropped_with_warnings_and_the_rest_stored() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let mut keys = h.keys(5);
        keys[1].rolling_period = 0;
        keys[3].key = STANDARD.encode([1u8; 15]);
        let req = h.request(keys);
        let (status, resp) = h.publish(&req).await;
        assert_eq!(status, 200, "{}", db.label);
        assert_eq!(resp.inserted_exposures, 3);
        assert_eq!(resp.code.as_deref(), Some(codes::PARTIAL_FAILURE));
        assert_eq!(
            resp.warnings,
            [
                format!("key 1 dropped: {}", codes::KEY_INVALID_ROLLING_PERIOD),
                format!("key 3 dropped: {}", codes::KEY_INVALID_LENGTH),
            ]
        );
        assert_eq!(h.store.key_count().await.unwrap(), 3);
    }
}

#[tokio::test]
async fn publishing_twice_stores_once_and_succeeds_twice() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let keys = h.keys(14);
        let req = h.request(keys);
        let (s1, r1) = h.publish(&req).await;
        // The phone lost the answer and retries, after the certificate expired.
        h.clock.advance(chrono::Duration::minutes(30));
        let mut again = req.clone();
        again.keys.reverse();
        again.padding = Some("other padding".into());
        let (s2, r2) = h.publish(&again).await;
        assert_eq!((s1, s2), (200, 200), "{}", db.label);
        assert_eq!(r1.inserted_exposures, 14);
        assert_eq!(r2.inserted_exposures, 14);
        assert_eq!(h.store.key_count().await.unwrap(), 14);
        assert_eq!(h.store.publish_count().await.unwrap(), 1);
        let days = h.store.stats_days().await.unwrap();
        assert_eq!(days.iter().map(|d| d.registrations).sum::<u64>(), 1);
        assert_eq!(days.iter().map(|d| d.keys).sum::<u64>(), 14);

        // Concurrent duplicates also store once.
        let keys = h.keys(3);
        let mut fresh = h.request(keys);
        fresh.verification_payload = {
            let now = h.clock.now_ts();
            let hk = STANDARD.decode(&fresh.hmac_key).unwrap();
            h.minter.certificate(
                &h.minter
                    .claims(&key_hmac(&hk, &fresh.keys), "confirmed", now),
            )
        };
        let (a, b) = tokio::join!(h.publish(&fresh), h.publish(&fresh));
        assert_eq!((a.0, b.0), (200, 200));
        assert_eq!(a.1.inserted_exposures, b.1.inserted_exposures);
        assert_eq!(h.store.publish_count().await.unwrap(), 2);
    }
}

#[tokio::test]
async fn chaff_looks_like_a_publish_and_stores_nothing() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        // A real one first, so that chaff has a latency to imitate.
        let keys = h.keys(14);
        let real = h.request(keys);
        let (_, real_resp, real_len) = h.post(serde_json::to_vec(&real).unwrap(), false).await;
        let keys = h.keys(14);
        let fake = h.request(keys);
        let (status, resp, len) = h.post(serde_json::to_vec(&fake).unwrap(), true).await;
        assert_eq!(status, 200, "{}", db.label);
        assert_eq!(resp.inserted_exposures, real_resp.inserted_exposures);
        assert_eq!(resp.code, None);
        assert!(!resp.padding.is_empty());
        for l in [len, real_len] {
            assert!((1024..1024 + 256 + 4).contains(&l), "size class: {l}");
        }
        // Even garbage gets a normal-looking answer.
        let (status, _, _) = h.post(b"garbage".to_vec(), true).await;
        assert_eq!(status, 200);
        assert_eq!(
            h.store.key_count().await.unwrap(),
            14,
            "chaff stored nothing"
        );
        assert_eq!(h.store.publish_count().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn issuers_added_to_the_database_are_trusted_without_a_restart() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let other =
            keyserver::testkit::Minter::generate(&mut h.rng, "pref-issuer", "cocoa-keyserver");
        let keys = h.keys(2);
        let now = h.now();
        let req = publish_request(&mut h.rng, &other, "pref-13", keys, "confirmed", now);
        let (status, resp) = h.publish(&req).await;
        assert_eq!(
            (status, resp.code.as_deref()),
            (401, Some(codes::UNKNOWN_HEALTH_AUTHORITY_ID))
        );
        h.store
            .add_trusted_issuer(
                &keyserver::store::IssuerRow {
                    health_authority_id: "pref-13".into(),
                    iss: "pref-issuer".into(),
                    kid: other.kid().into(),
                    public_key_pem: other.public_key_pem(),
                    region: None,
                },
                now,
            )
            .await
            .unwrap();
        // The stored issuers are re-read at most every 10 s.
        h.clock.advance(chrono::Duration::seconds(11));
        let (status, resp) = h.publish(&req).await;
        assert_eq!(status, 200, "{}: {resp:?}", db.label);
        // A certificate of that issuer presented under another authority is refused.
        let keys = h.keys(2);
        let now = h.now();
        let wrong = publish_request(&mut h.rng, &other, HA, keys, "confirmed", now);
        let (status, resp) = h.publish(&wrong).await;
        assert_eq!(
            (status, resp.code.as_deref()),
            (401, Some(codes::CERTIFICATE_INVALID))
        );
    }
}

#[tokio::test]
async fn issuers_can_be_trusted_through_their_jwks_url() {
    use std::sync::Arc;
    let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(5);
    let minter = keyserver::testkit::Minter::generate(&mut rng, "jwks-issuer", "cocoa-keyserver");
    // The issuer's JWKS on its own socket.
    let vk = p256::PublicKey::from_public_key_pem(&minter.public_key_pem()).unwrap();
    let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&vk, false);
    let url_b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks = api_types::verify::JwkSet {
        keys: vec![api_types::verify::Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: url_b64.encode(point.x().unwrap()),
            y: url_b64.encode(point.y().unwrap()),
            kid: minter.kid().into(),
            use_: "sig".into(),
            alg: "ES256".into(),
        }],
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(jwks);
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let s = served.clone();
                async move { axum::Json((*s).clone()) }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let issuer =
        keyserver::trust::TrustedIssuer::from_config(&keyserver::config::TrustedIssuerConfig {
            health_authority_id: "jwks-ha".into(),
            iss: "jwks-issuer".into(),
            jwks_url: Some(format!("http://{addr}/.well-known/jwks.json")),
            ..Default::default()
        })
        .unwrap();
    let db = common::backends().await.remove(0);
    let store = keyserver::store::Store::connect(&db.url, 2).await.unwrap();
    let trust = keyserver::trust::Trust::new(vec![issuer]);
    let mac = [7u8; 32];
    let now = common::t0().timestamp();
    let cert = minter.certificate(&minter.claims(&mac, "confirmed", now));
    let v = trust
        .verify_signature(&store, "jwks-ha", &cert, now)
        .await
        .unwrap();
    assert_eq!(v.tekmac, mac);
    assert!(
        trust
            .verify_signature(&store, "cocoa", &cert, now)
            .await
            .is_err()
    );
}

use p256::pkcs8::DecodePublicKey as _;

#[tokio::test]
async fn concurrent_publishes_are_committed_together_and_counted_once_each() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let mut reqs = Vec::new();
        for _ in 0..40 {
            let keys = h.keys(3);
            reqs.push(h.request(keys));
        }
        // Some retries racing their originals.
        reqs.push(reqs[0].clone());
        reqs.push(reqs[7].clone());
        let answers = futures_join_all(&h, &reqs).await;
        assert!(
            answers
                .iter()
                .all(|(s, r)| *s == 200 && r.inserted_exposures == 3),
            "{}",
            db.label
        );
        assert_eq!(h.store.key_count().await.unwrap(), 120);
        assert_eq!(h.store.publish_count().await.unwrap(), 40);
        let days = h.store.stats_days().await.unwrap();
        assert_eq!(days.iter().map(|d| d.registrations).sum::<u64>(), 40);
        assert_eq!(days.iter().map(|d| d.keys).sum::<u64>(), 120);
    }
}

async fn futures_join_all(
    h: &Harness,
    reqs: &[api_types::publish::PublishRequest],
) -> Vec<(u16, api_types::publish::PublishResponse)> {
    let mut set = tokio::task::JoinSet::new();
    for r in reqs {
        let (http, url, body) = (
            h.http.clone(),
            format!("{}/v1/publish", h.base),
            serde_json::to_vec(r).unwrap(),
        );
        set.spawn(async move {
            let resp = http.post(url).body(body).send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap())
        });
    }
    set.join_all().await
}

/// The database goes away: a publish answers 503 `unavailable` with
/// `Retry-After` (a phone retries), not a 500 that reads like a bug.
#[tokio::test]
async fn a_database_outage_answers_503_with_retry_after() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let keys = h.keys(3);
        let req = h.request(keys);
        h.store.close().await;
        let resp = h
            .http
            .post(format!("{}/v1/publish", h.base))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "{}", db.label);
        assert_eq!(resp.headers()["retry-after"], "5");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "unavailable", "{body}");
        assert!(body["error"].as_str().unwrap().contains("しばらくしてから"));
    }
}
