//! The device API end to end on a real socket, on every backend: issue ->
//! outbox -> verify -> certificate, and every way it must refuse.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use api_types::verify::{CertificateClaims, JwkSet};
use common::*;

async fn jwks(h: &Harness) -> JwkSet {
    h.http
        .get(format!("{}/.well-known/jwks.json", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap())
        .collect()
}

#[tokio::test]
async fn issue_verify_certificate_story() {
    for db in backends().await {
        let h = start(&db).await;
        let case_id = h.create_case(&case_json()).await;
        let r = h.issue(case_id, "k1").await;
        assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
        assert_eq!(r.body["status"], "sent");
        assert_eq!(r.body["channel"], "sms");
        assert_eq!(r.body["expires_at"], "2020-12-17T10:00:00+09:00");
        assert_eq!(h.sent_count(), 1);
        let (number, _) = h.last_number();
        assert_eq!(h.sent.lock().unwrap()[0].to, "09012345678");

        // Full-width digits with a hyphen, as people type them.
        let typed = format!("{}-{}", full_width(&number[..4]), full_width(&number[4..]));
        let v = h.verify(&typed).await;
        assert_eq!(v.status, 200, "{}: {}", h.label, v.body);
        assert_eq!(v.body["testtype"], "confirmed");
        assert!(v.body.get("symptomDate").is_none() && v.body.get("testDate").is_none());
        let token = v.body["token"].as_str().unwrap().to_owned();

        // The number is single-use.
        let again = h.verify(&number).await;
        assert_eq!(again.status, 400);
        assert_eq!(again.body["errorCode"], "code_invalid");

        let c = h.certificate(&token, &hmac32()).await;
        assert_eq!(c.status, 200, "{}: {}", h.label, c.body);
        let jwt = c.body["certificate"].as_str().unwrap();
        let set = jwks(&h).await;
        let (kid, claims): (String, CertificateClaims) =
            issuer::signing::decode_certificate(jwt, &set).unwrap();
        assert_eq!(kid, set.keys[0].kid);
        assert_eq!(claims.iss, "cocoa-issuer");
        assert_eq!(claims.aud, "cocoa-keyserver");
        assert_eq!(claims.report_type, "confirmed");
        assert_eq!(claims.tekmac, hmac32());
        assert_eq!(claims.exp - claims.iat, 15 * 60);
        assert!(claims.nbf <= claims.iat);
        let payload: serde_json::Value = {
            use base64::Engine as _;
            let p = jwt.split('.').nth(1).unwrap();
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .unwrap(),
            )
            .unwrap()
        };
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 7, "no onset date or anything else: {keys:?}");

        // The token is single-use too.
        let c2 = h.certificate(&token, &hmac32()).await;
        assert_eq!(c2.body["errorCode"], "token_invalid");

        // After a successful registration the number cannot be reissued.
        let re = h.issue(case_id, "k2").await;
        assert_eq!(re.status, 409);
        assert_eq!(re.body["errorCode"], "already_registered");
        assert!(
            re.body["error"]
                .as_str()
                .unwrap()
                .contains("一度登録に成功した場合には処理番号を再発行できません")
        );
        assert_eq!(h.sent_count(), 1);
    }
}

#[tokio::test]
async fn reissue_kills_the_old_number_at_once() {
    for db in backends().await {
        let h = start(&db).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (old, old_link) = h.last_number();
        assert_eq!(h.issue(case_id, "b").await.status, 200);
        let (new, _) = h.last_number();
        assert_eq!(
            h.verify(&old).await.body["errorCode"],
            "code_invalid",
            "{}",
            h.label
        );
        assert_eq!(h.verify(&old_link).await.body["errorCode"], "code_invalid");
        assert_eq!(h.verify(&new).await.status, 200);
        let hist = h
            .app
            .issuer
            .store()
            .issuance_history(case_id, h.app.issuer.now())
            .await
            .unwrap();
        let states: Vec<&str> = hist.iter().map(|i| i.state.as_str()).collect();
        assert_eq!(states, ["used", "superseded"]);
    }
}

#[tokio::test]
async fn the_link_code_claims_the_issuance_and_ends_the_number() {
    for db in backends().await {
        let h = start(&db).await;
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (number, link) = h.last_number();
        let v = h.verify(&link.to_lowercase()).await;
        assert_eq!(v.status, 200, "{}: {}", h.label, v.body);
        assert_eq!(h.verify(&number).await.body["errorCode"], "code_invalid");
        assert_eq!(h.verify(&link).await.body["errorCode"], "code_invalid");
    }
}

#[tokio::test]
async fn numbers_and_tokens_expire() {
    for db in backends().await {
        let h = start(&db).await;
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (n1, _) = h.last_number();
        h.clock.advance(chrono::Duration::hours(24));
        assert_eq!(
            h.verify(&n1).await.body["errorCode"],
            "code_expired",
            "{}",
            h.label
        );
        // An expired, unused number may be reissued.
        assert_eq!(h.issue(case_id, "b").await.status, 200);
        let (n2, _) = h.last_number();
        let token = h.verify(&n2).await.body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        h.clock.advance(chrono::Duration::hours(24));
        assert_eq!(
            h.certificate(&token, &hmac32()).await.body["errorCode"],
            "token_expired"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_exactly_one_wins() {
    for db in backends().await {
        let h = std::sync::Arc::new(start(&db).await);
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (number, _) = h.last_number();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let h = h.clone();
            let n = number.clone();
            tasks.push(tokio::spawn(async move { h.verify(&n).await.status }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{}: {statuses:?}",
            h.label
        );
        assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 7);
        assert_eq!(h.count("issuances WHERE token_hmac IS NOT NULL").await, 1);
    }
}

#[tokio::test]
async fn malformed_codes_are_refused_and_counted() {
    for db in backends().await {
        let h = start(&db).await;
        for bad in [
            "1234567",
            "123456789",
            "1234567a",
            "abcdefgh",
            "",
            "12345678",
        ] {
            let r = h.verify(bad).await;
            assert_eq!(r.status, 400, "{bad}");
            assert_eq!(r.body["errorCode"], "code_invalid", "{bad}");
        }
        assert_eq!(h.app.limits.failed_total(), 6);
    }
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    for db in backends().await {
        let h = start(&db).await;
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (number, _) = h.last_number();
        let dk = h.device_key.clone();
        let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
            (
                "/api/verify",
                Some(&dk),
                "{not json".into(),
                400,
                "unparsable_request",
            ),
            (
                "/api/verify",
                Some(&dk),
                format!(r#"{{"code":"{number}","extra":1}}"#),
                400,
                "unparsable_request",
            ),
            (
                "/api/verify",
                Some(&dk),
                r#"{"code":12345678}"#.into(),
                400,
                "unparsable_request",
            ),
            (
                "/api/verify",
                Some(&dk),
                format!(r#"{{"code":"{number}","accept":["bogus"]}}"#),
                400,
                "unparsable_request",
            ),
            (
                "/api/verify",
                Some(&dk),
                format!(r#"{{"code":"{number}","accept":["likely"]}}"#),
                412,
                "invalid_test_type",
            ),
            (
                "/api/verify",
                None,
                format!(r#"{{"code":"{number}"}}"#),
                401,
                "unauthorized",
            ),
            (
                "/api/verify",
                Some("device_wrong"),
                format!(r#"{{"code":"{number}"}}"#),
                401,
                "unauthorized",
            ),
            (
                "/api/verify",
                Some(&h.admin_key),
                format!(r#"{{"code":"{number}"}}"#),
                401,
                "unauthorized",
            ),
            (
                "/api/verify",
                Some(&dk),
                format!(r#"{{"code":"{}"}}"#, "1".repeat(100_000)),
                413,
                "payload_too_large",
            ),
        ];
        for (path, key, body, status, code) in &cases {
            let r = h.post(path, *key, None, body).await;
            assert_eq!(r.status, *status, "{}: {body:.60}: {}", h.label, r.body);
            assert_eq!(r.body["errorCode"], *code, "{body:.60}");
        }
        // The number survived all of that.
        let v = h.verify(&number).await;
        assert_eq!(v.status, 200, "{}", v.body);
        let token = v.body["token"].as_str().unwrap().to_owned();
        // A 31-byte HMAC is refused and does not burn the token.
        use base64::Engine as _;
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 31]);
        let r = h.certificate(&token, &short).await;
        assert_eq!(
            (r.status, r.body["errorCode"].as_str()),
            (400, Some("hmac_invalid"))
        );
        let r = h.certificate(&token, "not base64!").await;
        assert_eq!(r.body["errorCode"], "hmac_invalid");
        let r = h
            .post(
                "/api/certificate",
                Some(&dk),
                None,
                &format!(r#"{{"token":"{token}"}}"#),
            )
            .await;
        assert_eq!(r.body["errorCode"], "unparsable_request");
        assert_eq!(
            h.certificate("nonsense", &hmac32()).await.body["errorCode"],
            "token_invalid"
        );
        assert_eq!(h.certificate(&token, &hmac32()).await.status, 200);
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    for db in backends().await {
        let h = start_with(
            &db,
            Options {
                limits: issuer::limits::LimitsConfig {
                    requests_per_minute: 1000,
                    failure_burst: 2,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await;
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (number, _) = h.last_number();
        let wrong = if number == "00000000" {
            "11111111"
        } else {
            "00000000"
        };
        assert_eq!(h.verify(wrong).await.status, 400);
        assert_eq!(h.verify(wrong).await.status, 400);
        let r = h.verify(&number).await;
        assert_eq!(r.status, 429, "{}", h.label);
        assert_eq!(r.body["errorCode"], "number_attempts_exhausted");
        assert_eq!(r.retry_after.as_deref(), Some("3600"));
        let msg = r.body["error"].as_str().unwrap();
        assert!(msg.contains("約1時間後") && msg.contains("リンク"), "{msg}");
        // The number was not touched: after the budget refills it works.
        h.clock.advance(chrono::Duration::hours(1));
        assert_eq!(h.verify(&number).await.status, 200);

        let h2 = start_with(
            &db,
            Options {
                limits: issuer::limits::LimitsConfig {
                    requests_per_minute: 2,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await;
        h2.verify("00000001").await;
        h2.verify("00000002").await;
        let r = h2.verify("00000003").await;
        assert_eq!(r.status, 429);
        assert_eq!(r.body["errorCode"], "quota_exceeded");
        assert!(r.retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    }
}

#[tokio::test]
async fn signing_keys_rotate_with_overlap() {
    for db in backends().await {
        let h = start(&db).await;
        let before = jwks(&h).await;
        assert_eq!(before.keys.len(), 1);
        assert_eq!(before.keys[0].alg, "ES256");
        assert_eq!(before.keys[0].crv, "P-256");
        let new_kid = h.app.issuer.rotate_signing_key().await.unwrap();
        let after = jwks(&h).await;
        assert_eq!(after.keys.len(), 2, "{}", h.label);
        assert_eq!(after.keys[0].kid, new_kid);
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (n, _) = h.last_number();
        let token = h.verify(&n).await.body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let cert = h.certificate(&token, &hmac32()).await.body["certificate"]
            .as_str()
            .unwrap()
            .to_owned();
        let (kid, _) = issuer::signing::decode_certificate(&cert, &after).unwrap();
        assert_eq!(kid, new_kid);
        // The old key leaves after the overlap.
        h.clock.advance(chrono::Duration::seconds(
            issuer::signing::ROTATION_OVERLAP_SECONDS + 1,
        ));
        assert_eq!(jwks(&h).await.keys.len(), 1);
        assert_eq!(h.app.issuer.keyring().public_pems().len(), 1);
        assert!(
            h.app.issuer.keyring().public_pems()[0]
                .1
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
    }
}

/// A phone whose answer was lost retries with the same `Idempotency-Key`
/// (the device sends `{registration key}-verify` / `-certificate`): the
/// issuer recognises the retry, so a lost answer does not burn the number.
#[tokio::test]
async fn a_retry_after_a_lost_answer_does_not_burn_the_number() {
    for db in backends().await {
        let h = start(&db).await;
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (number, _) = h.last_number();
        let verify = |key: Option<&'static str>| {
            let body = serde_json::json!({"code": number, "accept": ["confirmed"]}).to_string();
            let h = &h;
            async move { h.post("/api/verify", Some(&h.device_key), key, &body).await }
        };
        let first = verify(Some("0123456789abcdef0123456789abcdef-verify")).await;
        assert_eq!(first.status, 200, "{}", h.label);
        let lost = first.body["token"].as_str().unwrap().to_owned();
        // The answer was lost: the same request again gets a fresh token.
        let retry = verify(Some("0123456789abcdef0123456789abcdef-verify")).await;
        assert_eq!(retry.status, 200, "{}: {}", h.label, retry.body);
        let token = retry.body["token"].as_str().unwrap().to_owned();
        assert_ne!(token, lost);
        assert_eq!(retry.body["testtype"], "confirmed");
        // Anyone else — another key, or none — still finds the number used.
        let other = verify(Some("ffffffffffffffffffffffffffffffff-verify")).await;
        assert_eq!(other.body["errorCode"], "code_invalid");
        assert_eq!(verify(None).await.body["errorCode"], "code_invalid");
        // The lost token stopped working; the fresh one works.
        let mac = hmac32();
        assert_eq!(
            h.certificate(&lost, &mac).await.body["errorCode"],
            "token_invalid"
        );
        let cert = |key: Option<&'static str>, mac: String| {
            let body = serde_json::json!({"token": token, "ekeyhmac": mac}).to_string();
            let h = &h;
            async move {
                h.post("/api/certificate", Some(&h.device_key), key, &body)
                    .await
            }
        };
        let c1 = cert(
            Some("0123456789abcdef0123456789abcdef-certificate"),
            mac.clone(),
        )
        .await;
        assert_eq!(c1.status, 200, "{}: {}", h.label, c1.body);
        // The certificate answer was lost too: signed again, same keys.
        let c2 = cert(
            Some("0123456789abcdef0123456789abcdef-certificate"),
            mac.clone(),
        )
        .await;
        assert_eq!(c2.status, 200, "{}: {}", h.label, c2.body);
        let claims = |r: &Reply| {
            use base64::Engine as _;
            let jwt = r.body["certificate"].as_str().unwrap();
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap()
        };
        assert_eq!(claims(&c1)["tekmac"], claims(&c2)["tekmac"]);
        // Not for other keys of the device, nor without the key.
        assert_eq!(
            cert(Some("0123456789abcdef0123456789abcdef-certificate"), {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode([7u8; 32])
            })
            .await
            .body["errorCode"],
            "token_invalid",
            "another ekeyhmac"
        );
        assert_eq!(
            cert(None, mac.clone()).await.body["errorCode"],
            "token_invalid"
        );
        // Once the token is spent, verify retries stop working too.
        assert_eq!(
            verify(Some("0123456789abcdef0123456789abcdef-verify"))
                .await
                .body["errorCode"],
            "code_invalid"
        );
        // And after the token's 24 h, no certificate replay.
        h.clock.advance(chrono::Duration::hours(25));
        assert_eq!(
            cert(Some("0123456789abcdef0123456789abcdef-certificate"), mac)
                .await
                .body["errorCode"],
            "token_invalid"
        );
    }
}

/// A malformed `Idempotency-Key` (too short, too long, with a space) is
/// refused with its own code before anything happens: the number and the
/// token stay usable.
#[tokio::test]
async fn a_malformed_idempotency_key_is_refused_and_changes_nothing() {
    let too_long = "k".repeat(129);
    let malformed = [
        "short",
        too_long.as_str(),
        "0123456789abcdef 0123456789abcdef",
    ];
    for db in backends().await {
        let h = start(&db).await;
        let case_id = h.create_case(&case_json()).await;
        h.issue(case_id, "a").await;
        let (number, _) = h.last_number();
        let body = serde_json::json!({"code": number, "accept": ["confirmed"]}).to_string();
        for bad in malformed {
            let r = h
                .post("/api/verify", Some(&h.device_key), Some(bad), &body)
                .await;
            assert_eq!(r.status, 400, "{}: {bad:?}", h.label);
            assert_eq!(r.body["errorCode"], "invalid_idempotency_key", "{bad:?}");
            assert!(
                r.body["error"]
                    .as_str()
                    .unwrap()
                    .contains("Idempotency-Key"),
                "{}",
                r.body
            );
        }
        let ok = h
            .post(
                "/api/verify",
                Some(&h.device_key),
                Some("0123456789abcdef0123456789abcdef-verify"),
                &body,
            )
            .await;
        assert_eq!(ok.status, 200, "{}: the number still works", h.label);
        let token = ok.body["token"].as_str().unwrap();
        let body = serde_json::json!({"token": token, "ekeyhmac": hmac32()}).to_string();
        for bad in malformed {
            let r = h
                .post("/api/certificate", Some(&h.device_key), Some(bad), &body)
                .await;
            assert_eq!(r.status, 400, "{}: {bad:?}", h.label);
            assert_eq!(r.body["errorCode"], "invalid_idempotency_key", "{bad:?}");
        }
        let cert = h
            .post("/api/certificate", Some(&h.device_key), None, &body)
            .await;
        assert_eq!(cert.status, 200, "{}: the token still works", h.label);
    }
}
