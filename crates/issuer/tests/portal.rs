//! The staff portal over a real socket, on every backend: login (with TOTP,
//! throttling, expiry and fresh session ids), CSRF, centre isolation, case
//! forms with per-field messages, issuance with its confirmation, the
//! status panel that never shows the number, audit and statistics pages.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use issuer::domain::model::Role;
use issuer::portal::PortalConfig;

const PASSWORD: &str = "correct horse battery staple";

async fn staff(h: &Harness, centre: i64, login: &str, role: Role) {
    h.app
        .issuer
        .create_staff(centre, login, PASSWORD, role)
        .await
        .unwrap()
        .unwrap();
}

/// A second centre (ちよだ保健所, Tokyo) beside the harness's own, for the
/// tests of what one centre's staff may not see or touch of another's.
async fn second_centre(h: &Harness) -> i64 {
    h.app
        .issuer
        .store()
        .create_centre("ちよだ保健所", "13", h.app.issuer.now())
        .await
        .unwrap()
}

fn case_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name_kanji", "横口 健太"),
        ("name_kana", "ヨコグチ ケンタ"),
        ("birth_date", "1998-09-09"),
        ("sex", "male"),
        ("mobile", "090-1234-5678"),
        ("email", ""),
        ("residence", "港区芝"),
        ("symptoms", ""),
        ("outpatient_facility", "港区帰国者・接触者外来"),
        ("test_positive", "on"),
        ("classification", "confirmed"),
        ("diagnosis_date", "2020-12-15"),
        ("reported", "on"),
        ("uses_app", "on"),
    ]
}

async fn create_case(b: &mut Browser) -> i64 {
    let p = b
        .submit("/portal/cases/new", "/portal/cases", &case_form())
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    p.location
        .trim_start_matches("/portal/cases/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn issue(b: &mut Browser, id: i64) -> Page {
    let from = format!("/portal/cases/{id}/issue");
    b.submit(&from, &from, &[]).await
}

#[tokio::test]
async fn staff_issue_and_see_sent_but_never_the_number() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let store = h.app.issuer.store();
        let yamada = store.staff_by_login("yamada").await.unwrap().unwrap();
        store
            .set_staff_display_name(yamada.id, "山田 太郎")
            .await
            .unwrap();
        let mut b = Browser::new(&h);
        assert_eq!(b.get("/portal/cases").await.location, "/portal/login");
        let p = b.login("yamada", PASSWORD).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, "/portal/cases"),
            "{}",
            h.label
        );
        let id = create_case(&mut b).await;

        let p = b.get(&format!("/portal/cases/{id}")).await;
        assert_eq!(p.status, 200);
        for s in [
            "ID管理",
            "基礎情報",
            "検査",
            "発生届",
            "性別",
            "症状",
            "現在のステータス",
            "患者名",
            "年齢",
            "居所",
            "横口 健太",
            "22歳3ヶ月",
            "港区芝",
            "未発行",
            "処理番号発行",
        ] {
            assert!(p.body.contains(s), "{}: case page lacks {s}", h.label);
        }
        // The confirmation step changes nothing; the post issues.
        let c = b.get(&format!("/portal/cases/{id}/issue")).await;
        assert!(c.body.contains("処理番号発行の確認") && c.body.contains("09012345678"));
        assert_eq!(h.sent_count(), 0);
        let p = issue(&mut b, id).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let p = b.get(&p.location).await;
        assert!(p.body.contains("送信済み") && p.body.contains("処理番号を送信しました"));
        assert!(p.body.contains("再発行") && p.body.contains("SMS"));
        let (number, link) = h.last_number();
        assert!(!p.body.contains(&number) && !p.body.contains(&link));

        // Reissue before use: the old number stops working.
        let stale = b.get(&format!("/portal/cases/{id}/issue")).await.body;
        let p = issue(&mut b, id).await;
        assert_eq!(p.status, 303);
        assert_eq!(h.sent_count(), 2);
        let (new_number, _) = h.last_number();
        assert_eq!(h.verify(&number).await.body["errorCode"], "code_invalid");
        let v = h.verify(&new_number).await;
        let token = v.body["token"].as_str().unwrap().to_owned();
        assert_eq!(h.certificate(&token, &hmac32()).await.status, 200);

        // After a registration: the seed's refusal, no button, and a stale
        // confirmation post is refused with the same message.
        let p = b.get(&format!("/portal/cases/{id}?tab=id")).await;
        assert!(
            p.body
                .contains("一度登録に成功した場合には処理番号を再発行できません")
        );
        assert!(p.body.contains("登録済み") && !p.body.contains("id=\"issue-button\""));
        let p = b
            .post(
                &format!("/portal/cases/{id}/issue"),
                &[
                    ("csrf", &csrf(&p.body)),
                    ("form_token", &hidden(&stale, "form_token").unwrap()),
                ],
            )
            .await;
        assert_eq!(p.status, 409);
        assert!(
            p.body
                .contains("一度登録に成功した場合には処理番号を再発行できません")
        );
        assert_eq!(h.sent_count(), 2);

        // English.
        let p = b.get(&format!("/portal/cases/{id}?tab=id&lang=en")).await;
        assert!(p.body.contains("ID management") && p.body.contains("Registered"));
        assert!(p.body.contains("it cannot be reissued"));
        assert!(
            b.last_set_cookie
                .iter()
                .any(|c| c.starts_with("cocoa_lang=en"))
        );
        let p = b.get("/portal/cases").await;
        assert!(
            p.body.contains("Search (name, furigana, ID)"),
            "the cookie keeps English"
        );
        let p = b.get("/portal/cases?lang=ja").await;
        assert!(p.body.contains("検索（氏名・フリガナ・ID）"));

        // Audit log and statistics: who, which case, outcome; never a number.
        let a = b.get("/portal/audit").await;
        // Issue 13: the display name, never the stored id `staff:yamada`.
        assert!(a.body.contains("山田 太郎") && a.body.contains("処理番号発行"));
        assert!(!a.body.contains(">staff:yamada<"), "{}", a.body);
        assert!(a.body.contains("拒否（登録済みのため再発行不可）"));
        let s = b.get("/portal/stats").await;
        assert!(s.body.contains("<svg") && s.body.contains("自保健所") && s.body.contains("全国"));
        for page in [&a.body, &s.body] {
            assert!(!page.contains(&number) && !page.contains(&new_number));
        }
        let dump = h.dump().await;
        assert!(!dump.contains(&number) && !dump.contains(&new_number));

        // Search by name, furigana (ASCII space accepted) and ID.
        for q in ["横口", "ヨコグチ%20ケンタ", &id.to_string()] {
            let p = b.get(&format!("/portal/cases?q={q}")).await;
            assert!(
                p.body.contains(&format!("/portal/cases/{id}")),
                "search {q}"
            );
        }
        let p = b.get("/portal/cases?q=存在しない").await;
        assert!(p.body.contains("該当する患者はいません"));
    }
}

#[tokio::test]
async fn failed_delivery_shows_the_reason_and_a_retry() {
    for db in backends().await {
        let h = start_with(
            &db,
            Options {
                delivery: Some(issuer::delivery::Delivery::uniform(
                    issuer::delivery::Sender::Failing(
                        "gateway answered 400: invalid number".into(),
                    ),
                )),
                ..Options::default()
            },
        )
        .await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let id = create_case(&mut b).await;
        let p = issue(&mut b, id).await;
        assert_eq!(p.status, 502, "{}", h.label);
        assert!(p.body.contains("送信失敗") && p.body.contains("gateway answered 400"));
        assert!(p.body.contains("再送信"));
        let p = b.get(&format!("/portal/cases/{id}")).await;
        assert!(
            p.body
                .contains("id=\"delivery-reason\">gateway answered 400")
        );
    }
}

#[tokio::test]
async fn a_number_waiting_in_the_queue_and_a_dead_letter_show_on_the_case_page() {
    for db in backends().await {
        let h = start_with(
            &db,
            Options {
                delivery: Some(issuer::delivery::Delivery::uniform(
                    issuer::delivery::Sender::Failing("gateway answered 503: maintenance".into()),
                )),
                ..Options::default()
            },
        )
        .await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let id = create_case(&mut b).await;
        let from = format!("/portal/cases/{id}/issue");
        let p = b.submit(&from, &from, &[]).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (
                303,
                format!("/portal/cases/{id}?tab=id&msg=queued").as_str()
            ),
            "{}",
            h.label
        );
        let p = b.get(&p.location).await;
        assert!(p.body.contains("処理番号は送信待ちです"), "{}", p.body);
        assert!(
            p.body
                .contains("id=\"issuance-state\">送信待ち（自動で再送します）")
        );
        assert!(p.body.contains("id=\"delivery-attempts\">1回（次回 "));
        assert!(
            p.body
                .contains("id=\"delivery-reason\">gateway answered 503: maintenance")
        );
        assert!(!p.body.contains("id=\"dead-letters\""));
        // The gateway never comes back: the queue gives up, staff see why
        // and are offered 再送信 (a new number: nobody received this one).
        for _ in 0..issuer::delivery::MAX_ATTEMPTS {
            h.clock.advance(chrono::Duration::minutes(16));
            h.app.issuer.process_send_queue().await.unwrap();
        }
        // Two hours later the session has timed out: sign in again.
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let p = b.get(&format!("/portal/cases/{id}")).await;
        assert!(
            p.body.contains("id=\"issuance-state\">送信失敗"),
            "{}",
            p.body
        );
        assert!(p.body.contains("id=\"dead-letters\""));
        assert!(p.body.contains("送信できなかったメッセージ"));
        assert!(
            p.body
                .contains(&format!("送信の試行 {}回", issuer::delivery::MAX_ATTEMPTS))
        );
        assert!(
            p.body
                .contains("<td class=\"reason\">gateway answered 503: maintenance</td>")
        );
        assert!(p.body.contains("id=\"issue-button\">再送信"));
        // English too.
        let p = b.get(&format!("/portal/cases/{id}?lang=en")).await;
        assert!(p.body.contains("Messages given up"), "{}", h.label);
    }
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused_and_change_nothing() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        // Even the login form needs its token.
        let p = b
            .post(
                "/portal/login",
                &[("login", "yamada"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.status, 403, "{}", h.label);
        b.login("yamada", PASSWORD).await;
        let id = create_case(&mut b).await;
        let cases = h.count("cases").await;
        let audit = h.count("audit_log").await;
        let mut form = case_form();
        form.push(("csrf", "forged"));
        for (path, f) in [
            ("/portal/cases".to_owned(), case_form()),
            ("/portal/cases".to_owned(), form.clone()),
            (format!("/portal/cases/{id}"), case_form()),
            (format!("/portal/cases/{id}/issue"), vec![]),
            (format!("/portal/cases/{id}/issue"), vec![("csrf", "")]),
            ("/portal/logout".to_owned(), vec![]),
            ("/portal/account/totp".to_owned(), vec![("code", "123456")]),
        ] {
            let p = b.post(&path, &f).await;
            assert_eq!(p.status, 403, "{}: {path}", h.label);
            assert!(p.body.contains("操作を受け付けられません"));
        }
        assert_eq!(h.count("cases").await, cases);
        assert_eq!(h.count("issuances").await, 0);
        assert_eq!(h.count("audit_log").await, audit);
        assert_eq!(h.sent_count(), 0);
        assert_eq!(b.get("/portal/cases").await.status, 200, "still signed in");
        // A token of another session does not work either.
        let mut other = Browser::new(&h);
        other.login("yamada", PASSWORD).await;
        let theirs = csrf(&other.get("/portal/cases").await.body);
        let p = b
            .post(&format!("/portal/cases/{id}/issue"), &[("csrf", &theirs)])
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(h.count("issuances").await, 0);
    }
}

#[tokio::test]
async fn another_centres_case_is_not_found_through_every_url() {
    for db in backends().await {
        let h = start(&db).await;
        let other = second_centre(&h).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        staff(&h, other, "suzuki", Role::Staff).await;
        staff(&h, other, "root", Role::System).await;
        let mut owner = Browser::new(&h);
        owner.login("yamada", PASSWORD).await;
        let id = create_case(&mut owner).await;
        let mut b = Browser::new(&h);
        b.login("suzuki", PASSWORD).await;
        for path in [
            format!("/portal/cases/{id}"),
            format!("/portal/cases/{id}?tab=basic"),
            format!("/portal/cases/{id}/edit"),
            format!("/portal/cases/{id}/issue"),
            "/portal/cases/999999".to_owned(),
            "/portal/cases/abc".to_owned(),
        ] {
            let p = b.get(&path).await;
            assert_eq!(p.status, 404, "{}: {path}", h.label);
            assert!(!p.body.contains("横口"));
        }
        let mut edited = case_form();
        edited[0] = ("name_kanji", "乗っ取り");
        for (path, f) in [
            (format!("/portal/cases/{id}"), edited),
            (format!("/portal/cases/{id}/issue"), vec![]),
        ] {
            let p = b.submit("/portal/cases", &path, &f).await;
            assert_eq!(p.status, 404, "{}: POST {path}", h.label);
        }
        assert_eq!(h.count("issuances").await, 0);
        let c = h.app.issuer.store().case(id).await.unwrap().unwrap();
        assert_eq!(c.data.name_kanji, "横口 健太");
        assert!(!b.get("/portal/cases").await.body.contains("横口"));
        let href = format!("/portal/cases/{id}\"");
        assert!(!b.get("/portal/cases?q=横口").await.body.contains(&href));
        assert!(!b.get("/portal/audit").await.body.contains("yamada"));
        // A system administrator sees every centre.
        let mut root = Browser::new(&h);
        root.login("root", PASSWORD).await;
        assert!(root.get("/portal/cases").await.body.contains("横口"));
        assert_eq!(root.get(&format!("/portal/cases/{id}")).await.status, 200);
    }
}

#[tokio::test]
async fn wrong_logins_are_refused_then_throttled() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        for (login, pw) in [
            ("yamada", "wrong password!"),
            ("nobody", PASSWORD),
            ("", ""),
        ] {
            let p = b.login(login, pw).await;
            assert_eq!(p.status, 401, "{}: {login}", h.label);
            assert!(
                p.body
                    .contains("ログインIDまたはパスワードが正しくありません")
            );
            assert!(
                !p.body.contains(pw) || pw.is_empty(),
                "the password is not echoed"
            );
        }
        for _ in 0..4 {
            b.login("yamada", "still wrong!!").await;
        }
        let p = b.login("yamada", PASSWORD).await;
        assert_eq!(p.status, 429, "throttled even with the right password");
        assert!(p.body.contains("しばらくログインできません"));
        // Another login id from the same address still works (address limit is 20).
        staff(&h, h.centre_id, "sato", Role::Staff).await;
        assert_eq!(b.login("sato", PASSWORD).await.status, 303);
        // The window ends.
        h.clock.advance(chrono::Duration::minutes(16));
        let mut b2 = Browser::new(&h);
        assert_eq!(b2.login("yamada", PASSWORD).await.status, 303);
        let a = b2.get("/portal/audit").await.body;
        assert!(a.contains("失敗（パスワード誤り）") && a.contains("拒否（試行回数超過）"));
        assert!(!a.contains("nobody"), "unknown login ids are not logged");
    }
}

#[tokio::test]
async fn case_forms_show_a_message_beside_each_bad_field() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let long = "山".repeat(101);
        let mut f = case_form();
        f[0] = ("name_kanji", &long);
        f[1] = ("name_kana", "よこぐち けんた");
        f[4] = ("mobile", "03-1234-5678");
        f[5] = ("email", "not-an-address");
        f[2] = ("birth_date", "2030-01-01");
        let p = b.submit("/portal/cases/new", "/portal/cases", &f).await;
        assert_eq!(p.status, 422, "{}", h.label);
        for (field, msg) in [
            ("name_kanji", "100文字以内"),
            ("name_kana", "全角カタカナ"),
            ("mobile", "携帯電話番号の形式"),
            ("email", "メールアドレスの形式"),
            ("birth_date", "未来の日付"),
        ] {
            let at = p
                .body
                .find(&format!("id=\"err-{field}\""))
                .unwrap_or_else(|| panic!("{field}"));
            let near: String = p.body[at..].chars().take(120).collect();
            assert!(near.contains(msg), "{field}: {msg}");
        }
        assert!(
            p.body.contains("value=\"よこぐち けんた\""),
            "values are kept"
        );
        assert_eq!(h.count("cases").await, 0);
        // English messages.
        let p = b
            .submit("/portal/cases/new?lang=en", "/portal/cases", &f)
            .await;
        assert!(p.body.contains("full-width katakana"));
        b.get("/portal/cases?lang=ja").await;
        // Editing: the same checks, and nothing changes.
        let id = create_case(&mut b).await;
        let edit = format!("/portal/cases/{id}/edit");
        let p = b.submit(&edit, &format!("/portal/cases/{id}"), &f).await;
        assert_eq!(p.status, 422);
        let c = h.app.issuer.store().case(id).await.unwrap().unwrap();
        assert_eq!(c.data.name_kana, "ヨコグチ\u{3000}ケンタ");
        let mut ok = case_form();
        ok[6] = ("residence", "港区芝公園");
        ok[7] = ("symptoms", "yes");
        let p = b.submit(&edit, &format!("/portal/cases/{id}"), &ok).await;
        assert_eq!(p.status, 303);
        let p = b.get(&p.location).await;
        assert!(
            p.body.contains("港区芝公園") && p.body.contains("保存しました"),
            "{}",
            p.body
        );
        // A case missing prerequisites shows each item and no button.
        let mut partial = case_form();
        partial[4] = ("mobile", "");
        partial.retain(|(k, _)| *k != "reported");
        let id2 = create_case_with(&mut b, &partial).await;
        let p = b.get(&format!("/portal/cases/{id2}")).await;
        assert!(p.body.contains(
            "患者の連絡先（携帯電話番号またはメールアドレスのいずれか）が入力されていません"
        ));
        assert!(p.body.contains("発生届が報告されていません"));
        assert!(!p.body.contains("id=\"issue-button\""));
        assert_eq!(
            b.get(&format!("/portal/cases/{id2}/issue")).await.status,
            422
        );
    }
}

async fn create_case_with(b: &mut Browser, form: &[(&str, &str)]) -> i64 {
    let p = b.submit("/portal/cases/new", "/portal/cases", form).await;
    assert_eq!(p.status, 303, "{}", p.body);
    p.location
        .trim_start_matches("/portal/cases/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn totp_code(secret: &str, at: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate(at as u64)
}

#[tokio::test]
async fn totp_login_with_fresh_session_ids_and_expiry() {
    for db in backends().await {
        let h = start_with(
            &db,
            Options {
                portal: PortalConfig {
                    secure_cookies: Some(true),
                    ..PortalConfig::default()
                },
                ..Options::default()
            },
        )
        .await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.get("/portal/login").await;
        // No session before login (issue 12, finding 12): the login form's
        // token is bound to its own cookie.
        assert_eq!(b.sid(), None);
        assert_eq!(h.count("staff_sessions").await, 0);
        let set = b.last_set_cookie.join("\n");
        assert!(set.contains("cocoa_login="), "{set}");
        for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/portal"] {
            assert!(
                set.contains(attr),
                "{}: cookie lacks {attr}: {set}",
                h.label
            );
        }
        // A session id planted before login is not the one signed in.
        let anon = "planted-by-an-attacker-0123456789".to_owned();
        b.cookies.insert("cocoa_sid".into(), anon.clone());
        b.login("yamada", PASSWORD).await;
        let full = b.sid().unwrap();
        assert_ne!(anon, full, "a new session id at login");
        assert!(
            !b.cookies.contains_key("cocoa_login"),
            "login cookie cleared"
        );
        let mut fixated = Browser::new(&h);
        fixated.cookies.insert("cocoa_sid".into(), anon.clone());
        assert_eq!(fixated.get("/portal/cases").await.status, 303);
        let stored: Vec<String> = {
            use sqlx::Row;
            sqlx::query("SELECT id_hash FROM staff_sessions")
                .fetch_all(h.app.issuer.store().pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>(0).unwrap())
                .collect()
        };
        assert!(stored.iter().all(|s| *s != full), "only hashes are stored");

        // Enrol: a wrong code first, then the code of the key shown.
        let p = b
            .submit(
                "/portal/account/totp",
                "/portal/account/totp",
                &[("code", "000000")],
            )
            .await;
        assert_eq!(p.status, 422);
        // Issue 13: the QR code beside the secret, inline SVG.
        assert!(p.body.contains("<svg id=\"totp-qr\""), "{}", p.body);
        let at = p.body.find("id=\"totp-secret\">").unwrap() + 17;
        let secret = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
        let now = h.app.issuer.now();
        let p = b
            .post(
                "/portal/account/totp",
                &[("code", &totp_code(&secret, now)), ("csrf", &csrf(&p.body))],
            )
            .await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("2段階認証を有効にしました"));
        b.submit("/portal/cases", "/portal/logout", &[]).await;
        assert_eq!(b.get("/portal/cases").await.location, "/portal/login");

        // Login now asks for a code; each step has a new id.
        h.clock.advance(chrono::Duration::seconds(60));
        let p = b.login("yamada", PASSWORD).await;
        assert_eq!(p.location, "/portal/login/totp");
        let pending = b.sid().unwrap();
        assert_eq!(
            b.get("/portal/cases").await.status,
            303,
            "not signed in yet"
        );
        let p = b
            .submit(
                "/portal/login/totp",
                "/portal/login/totp",
                &[("code", "123456")],
            )
            .await;
        assert_eq!(p.status, 401);
        assert!(p.body.contains("確認コードが正しくありません"));
        let code = totp_code(&secret, h.app.issuer.now());
        let p = b
            .submit(
                "/portal/login/totp",
                "/portal/login/totp",
                &[("code", &code)],
            )
            .await;
        assert_eq!(p.location, "/portal/cases");
        assert_ne!(b.sid().unwrap(), pending);
        assert_eq!(b.get("/portal/cases").await.status, 200);
        // The same code does not work twice.
        let mut again = Browser::new(&h);
        again.login("yamada", PASSWORD).await;
        let p = again
            .submit(
                "/portal/login/totp",
                "/portal/login/totp",
                &[("code", &code)],
            )
            .await;
        assert_eq!(p.status, 401, "{}: a TOTP code is single-use", h.label);

        // Idle expiry.
        h.clock.advance(chrono::Duration::minutes(31));
        let p = b.get("/portal/cases").await;
        assert_eq!(p.location, "/portal/login?expired=1");
        assert!(
            b.get(&p.location)
                .await
                .body
                .contains("セッションの有効期限が切れました")
        );
    }
}

#[tokio::test]
async fn sessions_end_after_the_absolute_limit_even_when_active() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        for _ in 0..40 {
            h.clock.advance(chrono::Duration::minutes(20));
            if b.get("/portal/cases").await.status != 200 {
                break;
            }
        }
        assert_eq!(
            b.get("/portal/cases").await.location,
            "/portal/login?expired=1",
            "{}",
            h.label
        );
    }
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let db = &backends().await[0];
    let h = start(db).await;
    let mut b = Browser::new(&h);
    let r = b
        .http
        .get(format!("{}/portal/login", h.base))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(!b.get("/portal/login").await.body.contains("<script"));
    assert_eq!(b.get("/portal/nowhere").await.status, 404);
}

/// Issue 12, finding 12: "anonymous visitors create 270 session rows a
/// second". The login form now writes nothing: its CSRF token is bound to
/// a cookie of its own, and only a checked password makes a session row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anonymous_visitors_create_no_session_rows() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut signed_in = Browser::new(&h);
        signed_in.login("yamada", PASSWORD).await;
        let sessions = h.count("staff_sessions").await;
        assert_eq!(sessions, 1, "{}", h.label);
        let audit = h.count("audit_log").await;
        // 300 anonymous GETs of the login form, 50 at a time.
        for _ in 0..6 {
            let gets = (0..50).map(|_| {
                let (base, http) = (h.base.clone(), reqwest::Client::new());
                tokio::spawn(async move {
                    http.get(format!("{base}/portal/login"))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            });
            for g in gets.collect::<Vec<_>>() {
                assert_eq!(g.await.unwrap(), 200);
            }
        }
        assert_eq!(h.count("staff_sessions").await, sessions, "{}", h.label);
        assert_eq!(h.count("audit_log").await, audit);

        // The form's token works only with its own cookie, unaltered and
        // fresh.
        let mut a = Browser::new(&h);
        let token = csrf(&a.get("/portal/login").await.body);
        let cookie = a.cookies["cocoa_login"].clone();
        let mut b = Browser::new(&h);
        let theirs = csrf(&b.get("/portal/login").await.body);
        fn form(t: &str) -> Vec<(&str, &str)> {
            vec![("login", "yamada"), ("password", PASSWORD), ("csrf", t)]
        }
        let mut none = Browser::new(&h);
        assert_eq!(none.post("/portal/login", &form(&token)).await.status, 403);
        assert_eq!(a.post("/portal/login", &form(&theirs)).await.status, 403);
        let (at, nonce) = cookie.split_once('.').unwrap();
        let shifted = format!("{}.{nonce}", at.parse::<i64>().unwrap() + 1);
        a.cookies.insert("cocoa_login".into(), shifted);
        assert_eq!(a.post("/portal/login", &form(&token)).await.status, 403);
        a.cookies.insert("cocoa_login".into(), cookie.clone());
        h.clock.advance(chrono::Duration::seconds(31 * 60));
        assert_eq!(a.post("/portal/login", &form(&token)).await.status, 403);
        assert_eq!(h.count("staff_sessions").await, sessions, "{}", h.label);
        // A fresh form signs in: the row is made at login (the first
        // session, idle for 31 minutes, is swept on the way).
        let p = a.login("yamada", PASSWORD).await;
        assert_eq!((p.status, p.location.as_str()), (303, "/portal/cases"));
        assert_eq!(h.count("staff_sessions").await, 1);
        assert_eq!(signed_in.get("/portal/cases").await.status, 303);
        assert_eq!(a.get("/portal/cases").await.status, 200);
    }
}

/// Issue 12, finding 7: "A triple click on 「処理番号発行」 sent 3 SMS: the
/// portal form is idempotent too." Three posts of one confirmation page,
/// released together, send one SMS and all land on the same screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_triple_click_on_issue_sends_one_sms() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let id = create_case(&mut b).await;
        let other = create_case(&mut b).await;
        let confirm = b.get(&format!("/portal/cases/{id}/issue")).await.body;
        let (token, once) = (csrf(&confirm), hidden(&confirm, "form_token").unwrap());

        // Forged, missing or another case's token: nothing is sent, the
        // confirmation (with a new token) is shown again.
        let theirs = hidden(
            &b.get(&format!("/portal/cases/{other}/issue")).await.body,
            "form_token",
        )
        .unwrap();
        let (nonce, _) = once.split_once('.').unwrap();
        let forged = format!("{nonce}.{}", "0".repeat(32));
        for t in ["", forged.as_str(), theirs.as_str()] {
            let p = b
                .post(
                    &format!("/portal/cases/{id}/issue"),
                    &[("csrf", &token), ("form_token", t)],
                )
                .await;
            assert_eq!(p.status, 200, "{}", h.label);
            assert!(p.body.contains("処理番号発行の確認"));
            assert_ne!(hidden(&p.body, "form_token").unwrap(), once);
        }
        assert_eq!(h.sent_count(), 0);
        assert_eq!(h.count("issuances").await, 0);

        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(3));
        let clicks = (0..3).map(|_| {
            let r = b
                .http
                .post(format!("{}/portal/cases/{id}/issue", h.base))
                .header("cookie", b.cookie_header())
                .form(&[("csrf", token.as_str()), ("form_token", once.as_str())]);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = r.send().await.unwrap();
                let location = resp.headers()["location"].to_str().unwrap().to_owned();
                (resp.status().as_u16(), location)
            })
        });
        let mut answers = Vec::new();
        for c in clicks.collect::<Vec<_>>() {
            answers.push(c.await.unwrap());
        }
        let sent = format!("/portal/cases/{id}?tab=id&msg=sent");
        assert!(
            answers.iter().all(|(s, l)| *s == 303 && *l == sent),
            "{}: {answers:?}",
            h.label
        );
        assert_eq!(h.sent_count(), 1, "{}: one SMS", h.label);
        assert_eq!(h.count("issuances").await, 1);
        // The same page posted again later: still nothing more.
        let p = b
            .post(
                &format!("/portal/cases/{id}/issue"),
                &[("csrf", &token), ("form_token", &once)],
            )
            .await;
        assert_eq!((p.status, p.location.as_str()), (303, sent.as_str()));
        assert_eq!(h.sent_count(), 1);
        // A new confirmation page is a deliberate reissue.
        assert_eq!(issue(&mut b, id).await.status, 303);
        assert_eq!(h.sent_count(), 2);
    }
}

/// Issue 12, finding 7, in the portal: the tab is closed (the connection
/// reset) while the SMS gateway is still taking the message. The issuance
/// finishes anyway, once; the same page posted again lands on 「送信済み」
/// without sending again; no delivery stays pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_tab_during_issue_sends_once_and_the_page_again_lands_on_sent() {
    use tokio::io::AsyncWriteExt as _;
    let (gateway, sent) = slow_sms_gateway(std::time::Duration::from_millis(400)).await;
    for db in backends().await {
        *sent.lock().unwrap() = 0;
        let h = start_with(
            &db,
            Options {
                delivery: Some(twilio_delivery(&gateway)),
                ..Options::default()
            },
        )
        .await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let id = create_case(&mut b).await;
        let confirm = b.get(&format!("/portal/cases/{id}/issue")).await.body;
        let (token, once) = (csrf(&confirm), hidden(&confirm, "form_token").unwrap());
        let body = format!("csrf={}&form_token={}", urlencode(&token), urlencode(&once));
        let req = format!(
            "POST /portal/cases/{id}/issue HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
            b.cookie_header(),
            body.len()
        );
        let addr = h.base.trim_start_matches("http://").to_owned();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        s.set_zero_linger().unwrap();
        drop(s);
        // The detached work finishes: one SMS.
        for _ in 0..100 {
            if *sent.lock().unwrap() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(*sent.lock().unwrap(), 1, "{}", h.label);
        // The same page again (the user reopens and clicks): the first
        // answer, nothing sent again.
        let p = b
            .post(
                &format!("/portal/cases/{id}/issue"),
                &[("csrf", &token), ("form_token", &once)],
            )
            .await;
        let sent_page = format!("/portal/cases/{id}?tab=id&msg=sent");
        assert_eq!((p.status, p.location.as_str()), (303, sent_page.as_str()));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(*sent.lock().unwrap(), 1, "{}: nothing sent twice", h.label);
        assert_eq!(h.count("issuances").await, 1);
        use sqlx::Row as _;
        let pending: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM issuances WHERE delivery_status = 'pending'")
                .fetch_one(h.app.issuer.store().pool())
                .await
                .unwrap()
                .try_get("n")
                .unwrap();
        assert_eq!(pending, 0, "{}: no delivery left pending", h.label);
        let p = b.get(&sent_page).await;
        assert!(p.body.contains("送信済み"), "{}", h.label);
    }
}

/// Form-urlencodes `s` (the tokens are base64url with a dot, but be safe).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect()
}

async fn exec(h: &Harness, sql: &str) {
    sqlx::query(sql)
        .execute(h.app.issuer.store().pool())
        .await
        .unwrap();
}

/// The text of the state cell of case `id` in a list page.
fn state_cell(body: &str, id: i64) -> Option<String> {
    let row = body
        .split("<tr>")
        .find(|r| r.contains(&format!("/portal/cases/{id}\"")))?;
    let at = row.find("<span class=\"state")?;
    let rest = &row[at..];
    let start = rest.find('>')? + 1;
    Some(rest[start..rest.find("</span>")?].to_owned())
}

/// Issue 13: "Case list: a state column (未発行 / 送信待ち / 送信済み /
/// 送達済み / 送信失敗 / 期限切れ / 登録済み), filter by state, paging".
#[tokio::test]
async fn the_case_list_shows_each_state_filters_and_pages() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let mut ids = Vec::new();
        for _ in 0..7 {
            ids.push(h.create_case(&case_json()).await);
        }
        // 0: none; 1..=6 issued, then moved to each state.
        for (n, id) in ids[1..].iter().enumerate() {
            let r = h.issue(*id, &format!("k{n}")).await;
            assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
        }
        let (number, _) = h.last_number();
        let v = h.verify(&number).await;
        let token = v.body["token"].as_str().unwrap().to_owned();
        assert_eq!(h.certificate(&token, &hmac32()).await.status, 200);
        let set = |id: i64, what: &str| format!("UPDATE issuances SET {what} WHERE case_id = {id}");
        exec(&h, &set(ids[1], "delivery_status = 'pending'")).await;
        exec(&h, &set(ids[3], "delivery_status = 'delivered'")).await;
        exec(
            &h,
            &set(ids[4], "delivery_status = 'failed', state = 'expired'"),
        )
        .await;
        exec(&h, &set(ids[5], "expires_at = 1")).await;
        let want = [
            "未発行",
            "送信待ち",
            "送信済み",
            "送達済み",
            "送信失敗",
            "期限切れ",
            "登録済み",
        ];
        let p = b.get("/portal/cases").await;
        assert_eq!(p.status, 200);
        for (id, w) in ids.iter().zip(want) {
            assert_eq!(
                state_cell(&p.body, *id).as_deref(),
                Some(w),
                "{}: case {id}",
                h.label
            );
        }
        // Filter: exactly the cases in that state.
        for (i, s) in [
            "none",
            "pending",
            "sent",
            "delivered",
            "failed",
            "expired",
            "used",
        ]
        .into_iter()
        .enumerate()
        {
            let p = b.get(&format!("/portal/cases?state={s}")).await;
            let shown: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|id| state_cell(&p.body, *id).is_some())
                .collect();
            assert_eq!(shown, vec![ids[i]], "{}: state={s}", h.label);
            assert!(p.body.contains(&format!("value=\"{s}\" selected")));
        }
        let p = b.get("/portal/cases?state=lost").await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("状態は一覧から選んでください"));
        let p = b.get("/portal/cases?state=lost&lang=en").await;
        assert!(p.body.contains("Choose a state from the list."));
        b.get("/portal/cases?lang=ja").await;

        // Paging: 50 a page, newest first, links keep the filter.
        for _ in 0..100 {
            h.create_case(&case_json()).await;
        }
        let rows = |body: &str| body.matches("<span class=\"state").count();
        let p = b.get("/portal/cases").await;
        assert_eq!(rows(&p.body), 50);
        assert!(p.body.contains("href=\"/portal/cases?page=2\""));
        assert!(!p.body.contains("id=\"prev-page\""));
        let p = b.get("/portal/cases?page=3").await;
        assert_eq!(rows(&p.body), 7, "{}", h.label);
        assert!(!p.body.contains("id=\"next-page\""));
        assert!(p.body.contains("href=\"/portal/cases?page=2\""));
        assert_eq!(state_cell(&p.body, ids[0]).as_deref(), Some("未発行"));
        let p = b.get("/portal/cases?state=none&page=2").await;
        assert_eq!(rows(&p.body), 50);
        assert!(
            p.body
                .contains("href=\"/portal/cases?page=3&amp;state=none\""),
            "{}",
            p.body
        );
        assert_eq!(b.get("/portal/cases?page=x").await.status, 200);
    }
}

/// 10,000 cases of one centre, a third with a used number, straight into
/// the store (the portal's list reads them as any others).
async fn seed_ten_thousand_cases(h: &Harness) {
    let pool = h.app.issuer.store().pool();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..10_000i64 {
        sqlx::query(
            "INSERT INTO cases (centre_id, name_kanji, name_kana, birth_date, sex, outpatient_facility, \
             test_positive, classification, reported, uses_app, created_at, updated_at) \
             VALUES ($1, '横口 健太', 'ヨコグチ ケンタ', '1998-09-09', 'male', '港区', 1, 'confirmed', 1, 1, 0, 0)",
        )
        .bind(h.centre_id)
        .execute(&mut *tx)
        .await
        .unwrap();
        if i % 3 == 0 {
            sqlx::query(
                "INSERT INTO issuances (case_id, number_hmac, link_hmac, report_type, state, channel, \
                 delivery_status, issued_by, issued_at, expires_at) \
                 VALUES ((SELECT MAX(id) FROM cases), $1, $2, 'confirmed', 'used', 'sms', 'sent', 'staff:yamada', 0, 1)",
            )
            .bind(format!("n{i}"))
            .bind(format!("l{i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
}

/// The list pages of 10,000 cases, with the rows each must show (`cocoa
/// bench case-list` times the same pages).
const LIST_PAGES: [(&str, usize); 4] = [
    ("/portal/cases", 50),
    ("/portal/cases?state=used", 50),
    // 6,666 cases without a number: page 100 holds the 4,951st to the 5,000th.
    ("/portal/cases?state=none&page=100", 50),
    ("/portal/cases?state=pending", 0),
];

fn list_rows(body: &str) -> usize {
    body.matches("<tr><td><a href=\"/portal/cases/").count()
}

/// Issue 13: a centre at the peak has thousands of cases. With 10,000 the
/// list, the filtered lists and a far page answer with their 50 rows (the
/// time is measured by `cocoa bench case-list`, not asserted here).
#[tokio::test]
async fn ten_thousand_cases_list_page_by_page_and_by_state() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        seed_ten_thousand_cases(&h).await;
        for (path, rows) in LIST_PAGES {
            let p = b.get(path).await;
            assert_eq!(p.status, 200, "{}: {path}", h.label);
            assert_eq!(list_rows(&p.body), rows, "{}: {path}", h.label);
        }
        // Past the last page of a filter: an empty page, not an error.
        let p = b.get("/portal/cases?state=used&page=1000").await;
        assert_eq!((p.status, list_rows(&p.body)), (200, 0), "{}", h.label);
    }
}

#[tokio::test]
async fn unknown_portal_urls_get_the_portals_404_page_and_reissue_is_titled_so() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = Browser::new(&h);
        for path in [
            "/portal/nothing",
            "/portal/cases/1/nothing",
            "/portal/static/x.css",
        ] {
            let p = b.get(path).await;
            assert_eq!(p.status, 404, "{path}");
            assert!(p.body.contains("見つかりません") && p.body.contains("portal.css"));
        }
        let p = b.get("/portal/nothing?lang=en").await;
        assert!(p.body.contains("No such page or case."));
        b.get("/portal/nothing?lang=ja").await;
        b.login("yamada", PASSWORD).await;
        let id = create_case(&mut b).await;
        let c = b.get(&format!("/portal/cases/{id}/issue")).await;
        assert!(c.body.contains("<h1>処理番号発行の確認</h1>"));
        assert_eq!(issue(&mut b, id).await.status, 303);
        let c = b.get(&format!("/portal/cases/{id}/issue")).await;
        assert!(c.body.contains("<h1>再発行の確認</h1>"), "{}", c.body);
        assert!(c.body.contains("<title>再発行の確認"));
    }
}

/// Issue 13: "「報告」 button on the 発生届 tab (the seed: staff press 報告
/// after the four fields), every prerequisite message names a control that
/// exists".
#[tokio::test]
async fn the_report_button_reports_once_the_four_fields_are_entered() {
    for db in backends().await {
        let h = start(&db).await;
        let other = second_centre(&h).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        staff(&h, other, "suzuki", Role::Staff).await;
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let form: Vec<_> = case_form()
            .into_iter()
            .filter(|(k, _)| *k != "reported")
            .map(|(k, v)| {
                if k == "diagnosis_date" {
                    (k, "")
                } else {
                    (k, v)
                }
            })
            .collect();
        let id = create_case_with(&mut b, &form).await;
        // The ID管理 tab names the button, and the 発生届 tab has it.
        let p = b.get(&format!("/portal/cases/{id}?tab=id")).await;
        assert!(
            p.body.contains("「報告」ボタンを押下してください"),
            "{}",
            h.label
        );
        let tab = format!("/portal/cases/{id}?tab=report");
        let p = b.get(&tab).await;
        assert!(p.body.contains("id=\"report-button\">報告</button>"));
        // A missing field: refused, named, nothing changed.
        let audit = h.count("audit_log").await;
        let report = format!("/portal/cases/{id}/report");
        let p = b.submit(&tab, &report, &[]).await;
        assert_eq!(p.status, 422, "{}", h.label);
        assert!(p.body.contains("「診断年月日」が入力されていません"));
        let c = h.app.issuer.store().case(id).await.unwrap().unwrap();
        assert!(!c.data.reported);
        assert_eq!(h.count("audit_log").await, audit);
        // Another centre's staff: not found; no CSRF token: refused.
        let mut theirs = Browser::new(&h);
        theirs.login("suzuki", PASSWORD).await;
        assert_eq!(
            theirs.submit("/portal/cases", &report, &[]).await.status,
            404
        );
        assert_eq!(b.post(&report, &[]).await.status, 403);
        // Enter the date with 編集, then 報告.
        let mut dated = form.clone();
        for f in dated.iter_mut() {
            if f.0 == "diagnosis_date" {
                f.1 = "2020-12-15";
            }
        }
        let edit = format!("/portal/cases/{id}/edit");
        let p = b
            .submit(&edit, &format!("/portal/cases/{id}"), &dated)
            .await;
        assert_eq!(p.status, 303);
        let p = b.submit(&tab, &report, &[]).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (
                303,
                format!("/portal/cases/{id}?tab=report&msg=reported").as_str()
            )
        );
        let p = b.get(&p.location).await;
        assert!(p.body.contains("発生届を報告しました。"));
        assert!(!p.body.contains("id=\"report-button\""));
        let c = h.app.issuer.store().case(id).await.unwrap().unwrap();
        assert!(c.data.reported);
        assert!(b.get("/portal/audit").await.body.contains("report_case"));
        // Now the number can be issued.
        assert_eq!(issue(&mut b, id).await.status, 303);
        assert_eq!(h.sent_count(), 1);
    }
}

/// Issue 13: staff accounts in the portal — create (password shown once),
/// display name, role, disable, reset password, reset TOTP; each audited;
/// a centre administrator cannot touch another centre; staff get 403.
#[tokio::test]
async fn administrators_manage_their_centres_staff_accounts() {
    for db in backends().await {
        let h = start(&db).await;
        let other = second_centre(&h).await;
        staff(&h, h.centre_id, "boss", Role::Admin).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        staff(&h, other, "suzuki", Role::Staff).await;
        let mut worker = Browser::new(&h);
        worker.login("yamada", PASSWORD).await;
        assert_eq!(
            worker.get("/portal/admin/staff").await.status,
            403,
            "{}",
            h.label
        );
        let p = worker
            .submit(
                "/portal/cases",
                "/portal/admin/staff",
                &[("login", "x"), ("display_name", "x"), ("role", "staff")],
            )
            .await;
        assert_eq!(p.status, 403);

        let mut b = Browser::new(&h);
        b.login("boss", PASSWORD).await;
        let page = "/portal/admin/staff";
        let p = b.get(page).await;
        assert_eq!(p.status, 200);
        assert!(p.body.contains("yamada") && !p.body.contains("suzuki"));
        let accounts = h.count("staff").await;
        // Bad input: refused with a message, nothing created.
        for (login, name, role) in [
            ("bad login!", "佐藤 一郎", "staff"),
            ("sato", "", "staff"),
            ("sato", "佐藤", "system"),
            ("yamada", "山田", "staff"),
        ] {
            let p = b
                .submit(
                    page,
                    page,
                    &[("login", login), ("display_name", name), ("role", role)],
                )
                .await;
            assert_eq!(p.status, 422, "{}: {login} {name} {role}", h.label);
            assert!(p.body.contains("id=\"admin-error\""));
        }
        assert_eq!(h.count("staff").await, accounts);
        // Create: the password is shown once and logs in.
        let p = b
            .submit(
                page,
                page,
                &[
                    ("login", "sato"),
                    ("display_name", "佐藤 一郎"),
                    ("role", "staff"),
                ],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let at = p.body.find("id=\"new-password\">").unwrap() + 18;
        let password = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
        assert!(!b.get(page).await.body.contains(&password));
        let mut sato = Browser::new(&h);
        assert_eq!(
            sato.login("sato", &password).await.location,
            "/portal/cases"
        );
        let id = h
            .app
            .issuer
            .store()
            .staff_by_login("sato")
            .await
            .unwrap()
            .unwrap()
            .id;
        let act = format!("/portal/admin/staff/{id}");
        // Display name, role; then disable ends the session and the login.
        assert_eq!(
            b.submit(
                page,
                &act,
                &[("action", "display_name"), ("value", "佐藤 一朗")]
            )
            .await
            .status,
            200
        );
        assert!(b.get(page).await.body.contains("value=\"佐藤 一朗\""));
        assert_eq!(
            b.submit(
                page,
                &act,
                &[("action", "display_name"), ("value", "\u{200b}")]
            )
            .await
            .status,
            422
        );
        assert_eq!(
            b.submit(page, &act, &[("action", "role"), ("value", "admin")])
                .await
                .status,
            200
        );
        assert_eq!(
            b.submit(page, &act, &[("action", "role"), ("value", "system")])
                .await
                .status,
            422
        );
        assert_eq!(
            b.submit(page, &act, &[("action", "explode")]).await.status,
            422
        );
        let r = h.app.issuer.store().staff(id).await.unwrap().unwrap();
        assert_eq!(r.role, Role::Admin);
        assert_eq!(
            b.submit(page, &act, &[("action", "disable")]).await.status,
            200
        );
        assert_eq!(sato.get("/portal/cases").await.status, 303);
        assert_eq!(Browser::new(&h).login("sato", &password).await.status, 401);
        assert_eq!(
            b.submit(page, &act, &[("action", "enable")]).await.status,
            200
        );
        // Reset password: the old one stops working, the new one is shown.
        let p = b.submit(page, &act, &[("action", "reset_password")]).await;
        let at = p.body.find("id=\"new-password\">").unwrap() + 18;
        let fresh = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
        assert_eq!(Browser::new(&h).login("sato", &password).await.status, 401);
        assert_eq!(Browser::new(&h).login("sato", &fresh).await.status, 303);
        assert_eq!(
            b.submit(page, &act, &[("action", "reset_totp")])
                .await
                .status,
            200
        );
        // Oneself, another centre's account: refused, nothing changed.
        let me = h
            .app
            .issuer
            .store()
            .staff_by_login("boss")
            .await
            .unwrap()
            .unwrap()
            .id;
        let p = b
            .submit(
                page,
                &format!("/portal/admin/staff/{me}"),
                &[("action", "disable")],
            )
            .await;
        assert_eq!(p.status, 422);
        let theirs = h
            .app
            .issuer
            .store()
            .staff_by_login("suzuki")
            .await
            .unwrap()
            .unwrap();
        let p = b
            .submit(
                page,
                &format!("/portal/admin/staff/{}", theirs.id),
                &[("action", "disable")],
            )
            .await;
        assert_eq!(p.status, 404);
        assert!(
            h.app
                .issuer
                .store()
                .staff(theirs.id)
                .await
                .unwrap()
                .unwrap()
                .disabled_at
                .is_none()
        );
        // Each action is in the audit log, in words staff read (issue 13:
        // no internal identifiers on the page).
        let audit = b.get("/portal/audit").await.body;
        for (a, word) in [
            ("staff_create", "職員アカウント作成"),
            ("staff_display_name", "表示名の変更"),
            ("staff_role", "権限の変更"),
            ("staff_disable", "アカウント無効化"),
            ("staff_enable", "アカウント有効化"),
            ("staff_reset_password", "パスワード再設定"),
            ("staff_reset_totp", "2段階認証の再設定"),
        ] {
            assert!(audit.contains(word), "{}: audit lacks {word}", h.label);
            assert!(!audit.contains(a), "{}: audit shows {a}", h.label);
        }
    }
}

/// The statistics page (issue 13): a reissued number counts as 再発行により無効,
/// the period is shown and chosen, and the registration funnel counts people
/// — given a number, sent, registered, the share — by Japan day, for the
/// centre beside the nation, with a CSV of the same. A bad period says so
/// and shows the default.
#[tokio::test]
async fn statistics_show_the_period_reissues_and_the_registration_funnel() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        // Person A: a number, a reissue, registered with the second.
        let a = h.create_case(&case_json()).await;
        assert_eq!(h.issue(a, "a1").await.status, 200);
        assert_eq!(h.issue(a, "a2").await.status, 200);
        let (number, _) = h.last_number();
        assert_eq!(h.verify(&number).await.status, 200);
        // Person B: a number, not used.
        let b_case = h.create_case(&case_json()).await;
        assert_eq!(h.issue(b_case, "b1").await.status, 200);
        // Person C: no number.
        h.create_case(&case_json()).await;
        // Another centre's person: national only.
        let other = second_centre(&h).await;
        let (other_key, _) = h
            .app
            .issuer
            .create_api_key(issuer::store::ApiKeyKind::Admin, Some(other))
            .await
            .unwrap();
        let r = h
            .post(
                "/api/v1/cases",
                Some(&other_key),
                None,
                &case_json().to_string(),
            )
            .await;
        let theirs = r.body["case_id"].as_i64().unwrap();
        let r = h
            .post(
                &format!("/api/v1/cases/{theirs}/processing-number"),
                Some(&other_key),
                Some("o1"),
                "",
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        // The next Japan day: one more person of this centre.
        h.clock.advance(chrono::Duration::days(1));
        let d = h.create_case(&case_json()).await;
        assert_eq!(h.issue(d, "d1").await.status, 200);

        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let s = b.get("/portal/stats").await;
        assert_eq!(s.status, 200, "{}: {}", h.label, s.body);
        // The period: the last 28 Japan days ending today (2020-12-17).
        assert!(
            s.body.contains("集計期間: 2020年11月20日〜2020年12月17日"),
            "{}",
            s.body
        );
        // Four numbers of this centre: one used, one replaced by the reissue,
        // two live.
        assert!(
            s.body.contains(r#"<td id="superseded-1">1</td>"#),
            "{}",
            s.body
        );
        assert!(s.body.contains("再発行により無効"));
        // The funnel: 3 people of this centre given a number, 3 sent, 1
        // registered; 4 nationally.
        let total =
            r#"<tr class="total"><th>期間合計</th><td>3</td><td>3</td><td>1</td><td>33.3%</td>"#;
        assert!(s.body.contains(total), "{}", s.body);
        assert!(
            s.body
                .contains(r#"<tr class="total"><th>全国（期間合計）</th><td>4</td><td>4</td><td>1</td><td>25.0%</td>"#),
            "{}",
            s.body
        );
        assert!(
            s.body
                .contains("<th>2020年12月16日</th><td>2</td><td>2</td><td>1</td><td>50.0%</td>")
        );
        assert!(
            s.body
                .contains("<th>2020年12月17日</th><td>1</td><td>1</td><td>0</td><td>0.0%</td>")
        );
        assert!(!s.body.contains(&number));

        // A chosen period: only the 16th.
        let s = b.get("/portal/stats?from=2020-12-16&to=2020-12-16").await;
        assert!(s.body.contains(
            r#"<tr class="total"><th>期間合計</th><td>2</td><td>2</td><td>1</td><td>50.0%</td>"#
        ));
        assert!(s.body.contains(r#"<td id="superseded-1">1</td>"#));
        let s = b.get("/portal/stats?from=2020-12-17&to=2020-12-17").await;
        assert!(
            s.body.contains(r#"<td id="superseded-1">0</td>"#),
            "{}",
            s.body
        );

        // The CSV: a line per day, then the total.
        let csv = b
            .get("/portal/stats/funnel.csv?from=2020-12-15&to=2020-12-17")
            .await;
        assert_eq!(csv.status, 200);
        assert!(csv.body.starts_with('\u{feff}'));
        let lines: Vec<&str> = csv.body.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines.len(), 5, "{}", csv.body);
        assert!(
            lines[0].starts_with("日付,処理番号を発行した人,"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "2020-12-15,0,0,0,,,");
        assert!(
            lines[2].starts_with("2020-12-16,2,2,1,0.5000,0,"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("2020-12-17,1,1,0,0.0000,0,"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].starts_with("期間合計,3,3,1,0.3333,0,"),
            "{}",
            lines[4]
        );

        // Bad periods: said, the default shown; the CSV refuses.
        for q in [
            "from=2020-12-17&to=2020-12-01",
            "from=2019-01-01&to=2020-12-17",
            "from=yesterday",
        ] {
            let s = b.get(&format!("/portal/stats?{q}")).await;
            assert_eq!(s.status, 400, "{q}");
            assert!(s.body.contains(r#"id="period-error""#), "{q}");
            assert!(s.body.contains("集計期間: 2020年11月20日〜2020年12月17日"));
            let c = b.get(&format!("/portal/stats/funnel.csv?{q}")).await;
            assert_eq!(c.status, 400, "{q}");
        }

        // English.
        let s = b.get("/portal/stats?lang=en").await;
        assert!(s.body.contains("Registration funnel") && s.body.contains("Replaced by a reissue"));
        assert!(
            s.body.contains("Period: 2020-11-20 to 2020-12-17"),
            "{}",
            s.body
        );
        let csv = b.get("/portal/stats/funnel.csv").await;
        assert!(
            csv.body.contains("Date,People given a number,"),
            "{}",
            csv.body
        );
    }
}
