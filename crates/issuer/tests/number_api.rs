//! The processing number's machine API beyond issuing it (issue 13, parity
//! with Google's verification server): its state (never the number), ending
//! a live number at once, and issuing for up to 100 cases in one request —
//! with bad input refused by a stable code and nothing changed.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use issuer::store::ApiKeyKind;

async fn status(h: &Harness, key: &str, case: &str) -> Reply {
    let resp = h
        .http
        .get(format!("{}/api/v1/cases/{case}/processing-number", h.base))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        retry_after: None,
    }
}

async fn expire(h: &Harness, key: &str, case: &str, idem: Option<&str>) -> Reply {
    h.post(
        &format!("/api/v1/cases/{case}/processing-number/expire"),
        Some(key),
        idem,
        "",
    )
    .await
}

async fn batch(h: &Harness, idem: Option<&str>, body: &str) -> Reply {
    h.post(
        "/api/v1/processing-numbers:batch",
        Some(&h.admin_key),
        idem,
        body,
    )
    .await
}

#[tokio::test]
async fn the_state_of_a_number_is_shown_but_never_the_number() {
    for db in backends().await {
        let h = start(&db).await;
        let id = h.create_case(&case_json()).await;
        let r = status(&h, &h.admin_key, &id.to_string()).await;
        assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
        assert_eq!(r.body["state"], "none");
        assert_eq!(r.body["reissues"], 0);
        assert!(r.body.get("issued_at").is_none());

        assert_eq!(h.issue(id, "a").await.status, 200);
        let (number, link) = h.last_number();
        let r = status(&h, &h.admin_key, &id.to_string()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["state"], "issued", "{}", r.body);
        assert_eq!(r.body["channel"], "sms");
        // No receipts from this gateway: handed over = sent (and validity
        // counted from then).
        assert_eq!(r.body["delivery_status"], "sent");
        assert_eq!(r.body["reissues"], 0);
        for field in ["issued_at", "sent_at", "delivered_at", "expires_at"] {
            assert!(
                r.body[field].as_str().unwrap().ends_with("+09:00"),
                "{field}: {}",
                r.body
            );
        }
        assert!(r.body.get("used_at").is_none());
        let text = r.body.to_string();
        assert!(!text.contains(&number) && !text.contains(&link), "{text}");

        // A reissue: the latest number, and one before it.
        assert_eq!(h.issue(id, "b").await.status, 200);
        let r = status(&h, &h.admin_key, &id.to_string()).await;
        assert_eq!(
            (r.body["state"].as_str(), r.body["reissues"].as_u64()),
            (Some("issued"), Some(1))
        );

        // Used by a registration.
        let (number, _) = h.last_number();
        assert_eq!(h.verify(&number).await.status, 200);
        let r = status(&h, &h.admin_key, &id.to_string()).await;
        assert_eq!(r.body["state"], "used", "{}", r.body);
        assert!(r.body["used_at"].as_str().unwrap().ends_with("+09:00"));
    }
}

#[tokio::test]
async fn an_ended_number_stops_working_at_once_and_ending_twice_changes_nothing() {
    for db in backends().await {
        let h = start(&db).await;
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "a").await.status, 200);
        let (number, link) = h.last_number();

        let r = expire(&h, &h.admin_key, &id.to_string(), Some("e1")).await;
        assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
        assert_eq!(r.body["state"], "expired");
        // Neither the typed number nor the SMS link registers any more, and
        // the phone is told the number expired (ask for a reissue).
        for code in [&number, &link] {
            let v = h.verify(code).await;
            assert_eq!(v.body["errorCode"], "code_expired", "{}", v.body);
        }
        let s = status(&h, &h.admin_key, &id.to_string()).await;
        assert_eq!(s.body["state"], "expired");

        // A retry with the same key gets the first answer; a new request is
        // told there is nothing live, and changes nothing.
        let again = expire(&h, &h.admin_key, &id.to_string(), Some("e1")).await;
        assert_eq!((again.status, &again.body), (200, &r.body));
        let before = h.dump().await;
        let none = expire(&h, &h.admin_key, &id.to_string(), None).await;
        assert_eq!(
            (none.status, none.body["errorCode"].as_str()),
            (409, Some("no_live_number"))
        );
        // (Only the audit log grows: the refused attempt is recorded.)
        let after = h.dump().await;
        let strip = |d: &str| {
            d.lines()
                .filter(|l| !l.contains("expire_number"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(strip(&before), strip(&after));

        // The centre reissues; the new number works.
        assert_eq!(h.issue(id, "b").await.status, 200);
        let (number, _) = h.last_number();
        assert_eq!(h.verify(&number).await.status, 200);

        // A used number cannot be ended.
        let used = expire(&h, &h.admin_key, &id.to_string(), None).await;
        assert_eq!(used.body["errorCode"], "no_live_number");
    }
}

#[tokio::test]
async fn another_centres_case_or_an_unknown_one_is_not_found_and_nothing_changes() {
    for db in backends().await {
        let h = start(&db).await;
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "a").await.status, 200);
        let (number, _) = h.last_number();
        let other = h
            .app
            .issuer
            .store()
            .create_centre("ほか保健所", "27", 0)
            .await
            .unwrap();
        let (other_key, _) = h
            .app
            .issuer
            .create_api_key(ApiKeyKind::Admin, Some(other))
            .await
            .unwrap();
        let (device_key, _) = h
            .app
            .issuer
            .create_api_key(ApiKeyKind::Device, None)
            .await
            .unwrap();
        let cases = [id.to_string(), "99999".into(), "abc".into(), "-1".into()];
        for (key, case, want) in [
            (&other_key, &cases[0], (404, "case_not_found")),
            (&h.admin_key, &cases[1], (404, "case_not_found")),
            (&h.admin_key, &cases[2], (404, "case_not_found")),
            (&h.admin_key, &cases[3], (404, "case_not_found")),
            (&device_key, &cases[0], (401, "unauthorized")),
        ] {
            let s = status(&h, key, case).await;
            assert_eq!(
                (s.status, s.body["errorCode"].as_str()),
                (want.0, Some(want.1)),
                "GET {case}"
            );
            let e = expire(&h, key, case, Some(&format!("x{case}"))).await;
            assert_eq!(
                (e.status, e.body["errorCode"].as_str()),
                (want.0, Some(want.1)),
                "expire {case}"
            );
        }
        let s = status(&h, "wrong", &cases[0]).await;
        assert_eq!(s.status, 401);
        // The number still works.
        assert_eq!(h.verify(&number).await.status, 200);
    }
}

#[tokio::test]
async fn a_batch_issues_one_result_per_case_and_a_bad_batch_changes_nothing() {
    for db in backends().await {
        let h = start(&db).await;
        let good: Vec<i64> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(h.create_case(&case_json()).await);
            }
            v
        };
        let mut unreported = case_json();
        unreported["reported"] = false.into();
        let blocked = h.create_case(&unreported).await;
        let other = h
            .app
            .issuer
            .store()
            .create_centre("ほか保健所", "27", 0)
            .await
            .unwrap();
        let mut theirs = case_json();
        theirs["centre_id"] = other.into();
        let (other_key, _) = h
            .app
            .issuer
            .create_api_key(ApiKeyKind::Admin, Some(other))
            .await
            .unwrap();
        let r = h
            .post("/api/v1/cases", Some(&other_key), None, &theirs.to_string())
            .await;
        let foreign = r.body["case_id"].as_i64().unwrap();

        // Bad batches: refused whole, with a code; nothing issued or sent.
        let many: Vec<i64> = (1..=101).collect();
        for (idem, body, code) in [
            (
                Some("b1"),
                serde_json::json!({"case_ids": []}).to_string(),
                "invalid_batch",
            ),
            (
                Some("b2"),
                serde_json::json!({"case_ids": many}).to_string(),
                "invalid_batch",
            ),
            (
                Some("b3"),
                serde_json::json!({"case_ids": [good[0], good[0]]}).to_string(),
                "invalid_batch",
            ),
            (
                Some("b4"),
                r#"{"case_ids": ["1"]}"#.to_owned(),
                "unparsable_request",
            ),
            (
                Some("b5"),
                r#"{"ids": [1]}"#.to_owned(),
                "unparsable_request",
            ),
            (Some("b6"), "not json".to_owned(), "unparsable_request"),
            (
                None,
                serde_json::json!({"case_ids": [good[0]]}).to_string(),
                "missing_idempotency_key",
            ),
        ] {
            let r = batch(&h, idem, &body).await;
            assert_eq!(r.status / 100, 4, "{body}: {}", r.body);
            assert_eq!(r.body["errorCode"], code, "{body}: {}", r.body);
            assert!(!r.body["error"].as_str().unwrap().is_empty());
        }
        let too_many = batch(
            &h,
            Some("b2"),
            &serde_json::json!({"case_ids": many}).to_string(),
        )
        .await;
        assert!(
            too_many.body["error"].as_str().unwrap().contains("100件"),
            "{}",
            too_many.body
        );
        assert_eq!(h.sent_count(), 0);
        assert_eq!(h.count("issuances").await, 0);

        // A mix: the good ones are sent; each bad one says why, as the single
        // request would; the order is kept.
        let ids = [good[0], blocked, good[1], foreign, 424_242, good[2]];
        let body = serde_json::json!({ "case_ids": ids }).to_string();
        let r = batch(&h, Some("mix"), &body).await;
        assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
        let results = r.body["results"].as_array().unwrap();
        assert_eq!(results.len(), ids.len());
        for (res, id) in results.iter().zip(ids) {
            assert_eq!(res["case_id"], id);
        }
        let codes: Vec<_> = results
            .iter()
            .map(|r| {
                r["error_code"]
                    .as_str()
                    .unwrap_or(r["status"].as_str().unwrap())
            })
            .collect();
        assert_eq!(
            codes,
            [
                "sent",
                "not_reported",
                "sent",
                "case_not_found",
                "case_not_found",
                "sent"
            ]
        );
        assert!(
            results[0]["expires_at"]
                .as_str()
                .unwrap()
                .ends_with("+09:00")
        );
        assert_eq!(h.sent_count(), 3);

        // The same batch again with its key: the same answer, nothing sent.
        let again = batch(&h, Some("mix"), &body).await;
        assert_eq!((again.status, &again.body), (200, &r.body));
        assert_eq!(h.sent_count(), 3);
        // The key with another batch is refused.
        let reused = batch(
            &h,
            Some("mix"),
            &serde_json::json!({"case_ids": [good[0]]}).to_string(),
        )
        .await;
        assert_eq!(reused.body["errorCode"], "idempotency_key_reused");
        assert_eq!(h.sent_count(), 3);
        // The other centre's case was not touched.
        let s = status(&h, &other_key, &foreign.to_string()).await;
        assert_eq!(s.body["state"], "none");
    }
}

/// Ten concurrent copies of one batch with one key: each case gets one
/// number and one SMS, every answer is the one answer or
/// `request_in_progress`.
#[tokio::test]
async fn a_burst_of_one_batch_sends_each_message_once() {
    for db in backends().await {
        let h = std::sync::Arc::new(start(&db).await);
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(h.create_case(&case_json()).await);
        }
        let body = serde_json::json!({ "case_ids": ids }).to_string();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let h = h.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                batch(&h, Some("burst"), &body).await
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let done: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
        assert!(!done.is_empty(), "{}", h.label);
        for a in &answers {
            assert!(
                a.status == 200 && a.body == done[0].body
                    || a.body["errorCode"] == "request_in_progress",
                "{}",
                a.body
            );
        }
        assert_eq!(h.sent_count(), 5, "{}", h.label);
        assert_eq!(h.count("issuances").await, 5);
    }
}
