//! The machine API (HER-SYS or any case system): cases, issuance, the seed's
//! prerequisites with one code each, idempotency, centre isolation.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use issuer::store::ApiKeyKind;

#[tokio::test]
async fn each_missing_prerequisite_has_its_own_code() {
    for db in backends().await {
        let h = start(&db).await;
        let edits: Vec<(&str, serde_json::Value, &str)> = vec![
            ("mobile", serde_json::Value::Null, "missing_contact"),
            ("classification", "clinical".into(), "not_confirmed"),
            ("reported", false.into(), "not_reported"),
            ("test_positive", false.into(), "missing_positive_test"),
            (
                "outpatient_facility",
                "".into(),
                "missing_outpatient_facility",
            ),
            ("diagnosis_date", "".into(), "missing_diagnosis_date"),
            ("name_kana", "".into(), "missing_name_kana"),
            ("name_kanji", "".into(), "missing_name_kanji"),
        ];
        for (field, value, code) in edits {
            let mut c = case_json();
            c[field] = value;
            let id = h.create_case(&c).await;
            let r = h.issue(id, &format!("k-{field}")).await;
            assert_eq!(r.status, 422, "{}: {field}: {}", h.label, r.body);
            assert_eq!(r.body["errorCode"], code, "{field}");
            assert!(!r.body["error"].as_str().unwrap().is_empty());
        }
        assert_eq!(h.sent_count(), 0);
        assert_eq!(h.count("issuances").await, 0);
    }
}

#[tokio::test]
async fn asymptomatic_and_email_only_cases_are_issued_by_email() {
    for db in backends().await {
        let h = start(&db).await;
        let mut c = case_json();
        c["classification"] = "asymptomatic".into();
        c["mobile"] = serde_json::Value::Null;
        c["email"] = "Kenta@Example.JP".into();
        let id = h.create_case(&c).await;
        let r = h.issue(id, "e").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["channel"], "email");
        let sent = h.sent.lock().unwrap();
        assert_eq!(sent[0].to, "Kenta@example.jp");
        assert!(sent[0].subject.as_deref().unwrap().contains("処理番号"));
    }
}

#[tokio::test]
async fn invalid_cases_are_refused_and_store_nothing() {
    for db in backends().await {
        let h = start(&db).await;
        let bad: Vec<(serde_json::Value, u16, &str)> = vec![
            (
                {
                    let mut c = case_json();
                    c["name_kana"] = "よこぐち けんた".into();
                    c
                },
                400,
                "invalid_field",
            ),
            // Invisible names (issue 12, finding 11): a bidi override inside
            // a name, a name of only a zero-width space.
            (
                {
                    let mut c = case_json();
                    c["name_kanji"] = "横口\u{202E}健太".into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["name_kanji"] = "\u{200B}".into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["mobile"] = "03-1234-5678".into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["email"] = "not-an-address".into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["name_kanji"] = "長".repeat(101).into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["outpatient_facility"] = "x".repeat(201).into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["birth_date"] = "1998/09/09".into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["diagnosis_date"] = "2021-01-01".into();
                    c
                },
                400,
                "invalid_field",
            ),
            (
                {
                    let mut c = case_json();
                    c["test_positive"] = "yes".into();
                    c
                },
                400,
                "unparsable_request",
            ),
            (
                {
                    let mut c = case_json();
                    c["sex"] = "unknown".into();
                    c
                },
                400,
                "unparsable_request",
            ),
            (
                {
                    let mut c = case_json();
                    c["nickname"] = "ケン".into();
                    c
                },
                400,
                "unparsable_request",
            ),
            (
                {
                    let mut c = case_json();
                    c.as_object_mut().unwrap().remove("uses_app");
                    c
                },
                400,
                "unparsable_request",
            ),
            (
                {
                    let mut c = case_json();
                    c["centre_id"] = 999.into();
                    c
                },
                400,
                "invalid_field",
            ),
        ];
        for (body, status, code) in bad {
            let r = h
                .post("/api/v1/cases", Some(&h.admin_key), None, &body.to_string())
                .await;
            assert_eq!(
                (r.status, r.body["errorCode"].as_str().unwrap()),
                (status, code),
                "{}: {body}",
                h.label
            );
        }
        let r = h
            .post(
                "/api/v1/cases",
                Some(&h.admin_key),
                None,
                "{\"name_kanji\": ",
            )
            .await;
        assert_eq!(r.body["errorCode"], "unparsable_request");
        let r = h
            .post("/api/v1/cases", None, None, &case_json().to_string())
            .await;
        assert_eq!(
            (r.status, r.body["errorCode"].as_str()),
            (401, Some("unauthorized"))
        );
        let r = h
            .post(
                "/api/v1/cases",
                Some(&h.device_key),
                None,
                &case_json().to_string(),
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(h.count("cases").await, 0);
    }
}

#[tokio::test]
async fn retries_with_the_same_idempotency_key_never_send_twice() {
    for db in backends().await {
        let h = start(&db).await;
        let id = h.create_case(&case_json()).await;
        let a = h.issue(id, "retry-1").await;
        let b = h.issue(id, "retry-1").await;
        assert_eq!(a.status, 200);
        assert_eq!((a.status, &a.body), (b.status, &b.body), "{}", h.label);
        assert_eq!(h.sent_count(), 1);
        // Without the header the request is refused.
        let r = h
            .post(
                &format!("/api/v1/cases/{id}/processing-number"),
                Some(&h.admin_key),
                None,
                "",
            )
            .await;
        assert_eq!(r.body["errorCode"], "missing_idempotency_key");
        // Case creation with a key: replayed, and a different body is refused.
        let body = case_json().to_string();
        let c1 = h
            .post("/api/v1/cases", Some(&h.admin_key), Some("case-1"), &body)
            .await;
        let c2 = h
            .post("/api/v1/cases", Some(&h.admin_key), Some("case-1"), &body)
            .await;
        assert_eq!(c1.body, c2.body);
        let mut other = case_json();
        other["name_kanji"] = "別人".into();
        let c3 = h
            .post(
                "/api/v1/cases",
                Some(&h.admin_key),
                Some("case-1"),
                &other.to_string(),
            )
            .await;
        assert_eq!(
            (c3.status, c3.body["errorCode"].as_str()),
            (422, Some("idempotency_key_reused"))
        );
        assert_eq!(h.count("cases").await, 2);
    }
}

#[tokio::test]
async fn another_centres_case_is_not_found() {
    for db in backends().await {
        let h = start(&db).await;
        let id = h.create_case(&case_json()).await;
        let other = h
            .app
            .issuer
            .store()
            .create_centre("ほか保健所", "27", 0)
            .await
            .unwrap();
        let (key, _) = h
            .app
            .issuer
            .create_api_key(ApiKeyKind::Admin, Some(other))
            .await
            .unwrap();
        let r = h
            .post(
                &format!("/api/v1/cases/{id}/processing-number"),
                Some(&key),
                Some("x"),
                "",
            )
            .await;
        assert_eq!(
            (r.status, r.body["errorCode"].as_str()),
            (404, Some("case_not_found")),
            "{}",
            h.label
        );
        let r = h
            .post(
                "/api/v1/cases/99999/processing-number",
                Some(&h.admin_key),
                Some("y"),
                "",
            )
            .await;
        assert_eq!(r.status, 404);
        let r = h
            .post(
                "/api/v1/cases/abc/processing-number",
                Some(&h.admin_key),
                Some("z"),
                "",
            )
            .await;
        assert_eq!(r.status, 404);
        // A key bound to a centre cannot file a case for another one.
        let mut c = case_json();
        c["centre_id"] = other.into();
        let r = h
            .post("/api/v1/cases", Some(&h.admin_key), None, &c.to_string())
            .await;
        assert_eq!(r.body["errorCode"], "invalid_field");
        assert_eq!(h.sent_count(), 0);
        assert_eq!(h.count("issuances").await, 0);
    }
}

#[tokio::test]
async fn automatic_issuance_sends_without_a_button_press() {
    for db in backends().await {
        let h = start(&db).await;
        let mut centre = h
            .app
            .issuer
            .store()
            .centre(h.centre_id)
            .await
            .unwrap()
            .unwrap();
        centre.auto_issue = true;
        h.app.issuer.store().update_centre(&centre).await.unwrap();
        let mut no_app = case_json();
        no_app["uses_app"] = false.into();
        h.create_case(&no_app).await;
        assert_eq!(h.sent_count(), 0, "{}", h.label);
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.sent_count(), 1);
        let hist = h
            .app
            .issuer
            .store()
            .issuance_history(id, h.app.issuer.now())
            .await
            .unwrap();
        assert_eq!(hist[0].issued_by, "auto");
        let (n, _) = h.last_number();
        assert_eq!(h.verify(&n).await.status, 200);
    }
}

#[tokio::test]
async fn clinical_diagnoses_are_likely_when_the_centre_allows_them() {
    for db in backends().await {
        let h = start(&db).await;
        let mut centre = h
            .app
            .issuer
            .store()
            .centre(h.centre_id)
            .await
            .unwrap()
            .unwrap();
        centre.allow_clinical = true;
        centre.validity_seconds = 3600;
        h.app.issuer.store().update_centre(&centre).await.unwrap();
        let mut c = case_json();
        c["classification"] = "clinical".into();
        c["test_positive"] = false.into();
        let id = h.create_case(&c).await;
        let r = h.issue(id, "a").await;
        assert_eq!(r.body["expires_at"], "2020-12-16T11:00:00+09:00");
        let (n, _) = h.last_number();
        assert_eq!(
            h.verify(&n).await.body["errorCode"],
            "invalid_test_type",
            "{}",
            h.label
        );
        let body = serde_json::json!({"code": n, "accept": ["confirmed", "likely"]});
        let v = h
            .post("/api/verify", Some(&h.device_key), None, &body.to_string())
            .await;
        assert_eq!(v.body["testtype"], "likely");
    }
}

async fn patch(h: &Harness, id: i64, key: &str, body: &str) -> (u16, serde_json::Value) {
    let r = h
        .http
        .patch(format!("{}/api/v1/cases/{id}", h.base))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn cases_are_edited_with_patch() {
    for db in backends().await {
        let h = start(&db).await;
        let mut c = case_json();
        c["mobile"] = serde_json::Value::Null;
        c["reported"] = false.into();
        let id = h.create_case(&c).await;
        assert_eq!(h.issue(id, "a").await.status, 422);
        let (s, b) = patch(
            &h,
            id,
            &h.admin_key,
            r#"{"mobile": "080-1111-2222", "reported": true}"#,
        )
        .await;
        assert_eq!(
            (s, b["case_id"].as_i64()),
            (200, Some(id)),
            "{}: {b}",
            h.label
        );
        let r = h.issue(id, "b").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(h.sent.lock().unwrap()[0].to, "08011112222");
        let stored = h.app.issuer.store().case(id).await.unwrap().unwrap();
        assert_eq!(
            stored.data.name_kanji, "横口 健太",
            "absent fields are kept"
        );
        // null clears; bad values, unknown fields and wrong types change nothing.
        assert_eq!(
            patch(
                &h,
                id,
                &h.admin_key,
                r#"{"email": "a@example.jp", "mobile": null}"#
            )
            .await
            .0,
            200
        );
        let stored = h.app.issuer.store().case(id).await.unwrap().unwrap();
        assert_eq!(
            (stored.data.mobile, stored.data.email.as_deref()),
            (None, Some("a@example.jp"))
        );
        for (body, code) in [
            (r#"{"name_kana": "よこぐち"}"#, "invalid_field"),
            (r#"{"nickname": "x"}"#, "unparsable_request"),
            (r#"{"reported": "yes"}"#, "unparsable_request"),
            ("{", "unparsable_request"),
        ] {
            let (s, b) = patch(&h, id, &h.admin_key, body).await;
            assert_eq!((s, b["errorCode"].as_str()), (400, Some(code)), "{body}");
        }
        let after = h.app.issuer.store().case(id).await.unwrap().unwrap();
        assert_eq!(after.data.name_kana, "ヨコグチ\u{3000}ケンタ");
        // Another centre's key, or none.
        let now = h.app.issuer.now();
        let other = h
            .app
            .issuer
            .store()
            .create_centre("ちよだ保健所", "13", now)
            .await
            .unwrap();
        let (other_key, _) = h
            .app
            .issuer
            .create_api_key(ApiKeyKind::Admin, Some(other))
            .await
            .unwrap();
        assert_eq!(
            patch(&h, id, &other_key, r#"{"uses_app": false}"#).await.0,
            404
        );
        assert_eq!(patch(&h, id, "nope", r#"{"uses_app": false}"#).await.0, 401);
        assert!(
            h.app
                .issuer
                .store()
                .case(id)
                .await
                .unwrap()
                .unwrap()
                .data
                .uses_app
        );
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let db = &backends().await[0];
    for (trusted, expect_separate) in [(vec!["127.0.0.1".to_owned()], true), (vec![], false)] {
        let h = start_with(
            db,
            Options {
                limits: issuer::limits::LimitsConfig {
                    requests_per_minute: 2,
                    ..issuer::limits::LimitsConfig::default()
                },
                trusted_proxies: trusted,
                ..Options::default()
            },
        )
        .await;
        let call = |ip: &'static str| {
            h.http
                .post(format!("{}/api/verify", h.base))
                .header("x-api-key", &h.device_key)
                .header("x-forwarded-for", ip)
                .body(r#"{"code": "1234567"}"#)
                .send()
        };
        for _ in 0..2 {
            assert_ne!(call("203.0.113.1").await.unwrap().status(), 429);
        }
        assert_eq!(call("203.0.113.1").await.unwrap().status(), 429);
        let other = call("203.0.113.2").await.unwrap().status();
        assert_eq!(
            other != 429,
            expect_separate,
            "trusted proxy: {expect_separate}"
        );
    }
}

/// A key that leaked is revoked and refused at the very next request — not
/// after the 30 s this process would otherwise keep a checked key — while
/// the other keys go on working; revoking twice or an unknown id changes
/// nothing; the list shows when it was revoked; the audit log says who.
#[tokio::test]
async fn a_revoked_api_key_is_refused_at_once() {
    for db in backends().await {
        let h = start(&db).await;
        let issuer = &h.app.issuer;
        let centre = h.centre_id;
        let (leaked, id) = issuer
            .create_api_key(ApiKeyKind::Admin, Some(centre))
            .await
            .unwrap();
        let create = |key: String| {
            let h = &h;
            async move {
                h.post("/api/v1/cases", Some(&key), None, &case_json().to_string())
                    .await
            }
        };
        // Checked once: now in this process's cache of keys.
        assert_eq!(create(leaked.clone()).await.status, 201, "{}", h.label);
        let cases = h.count("cases").await;

        let cli = issuer::service::Actor::cli();
        assert!(issuer.revoke_api_key(&cli, id).await.unwrap());
        let r = create(leaked.clone()).await;
        assert_eq!(
            (r.status, r.body["errorCode"].as_str()),
            (401, Some("unauthorized")),
            "{}: {}",
            h.label,
            r.body
        );
        assert_eq!(h.count("cases").await, cases, "nothing was created");
        // The harness's own key still works.
        assert_eq!(create(h.admin_key.clone()).await.status, 201);

        let listed = issuer.store().api_key_listing(Some(centre)).await.unwrap();
        let row = listed.iter().find(|k| k.id == id).unwrap();
        let revoked_at = row.revoked_at.expect("revoked");
        assert!(
            listed
                .iter()
                .filter(|k| k.id != id)
                .all(|k| k.revoked_at.is_none())
        );
        // Again, or an id that does not exist: `false`, and the first time stays.
        assert!(!issuer.revoke_api_key(&cli, id).await.unwrap());
        assert!(!issuer.revoke_api_key(&cli, 987_654).await.unwrap());
        let again = issuer.store().api_key_listing(Some(centre)).await.unwrap();
        assert_eq!(
            again.iter().find(|k| k.id == id).unwrap().revoked_at,
            Some(revoked_at)
        );
        let audit = issuer.store().audit_log(None, 50).await.unwrap();
        let revocations: Vec<_> = audit
            .iter()
            .filter(|e| e.action == "revoke_api_key")
            .collect();
        assert_eq!(revocations.len(), 1, "{}: {audit:?}", h.label);
        assert_eq!(revocations[0].actor, "cli");
        assert_eq!(revocations[0].detail, format!("api:{id}"));
    }
}

/// The audit log tells a reissue from a first issuance (issue 13: 「監査ログ
/// は再発行を再発行と記録する」).
#[tokio::test]
async fn a_reissue_is_audited_as_a_reissue() {
    for db in backends().await {
        let h = start(&db).await;
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "first-issuance-key-1").await.status, 200);
        assert_eq!(h.issue(id, "second-issuance-key-2").await.status, 200);
        let log = h.app.issuer.store().audit_log(None, 20).await.unwrap();
        let actions: Vec<&str> = log
            .iter()
            .filter(|e| e.case_id == Some(id) && e.action.ends_with("issue_number"))
            .map(|e| e.action.as_str())
            .collect();
        // Newest first.
        assert_eq!(actions, ["reissue_number", "issue_number"], "{}", h.label);
    }
}
