//! Administration in the portal, on every backend (issue 13): the centre
//! settings page (whole form saved or nothing; another centre's is not
//! found; the consultation centre reaches phones through
//! `GET /api/v1/consultation-centres`), API keys (shown once, listed,
//! revoked at once, by role) and the list of centres for system
//! administrators.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use issuer::domain::model::Role;

const PASSWORD: &str = "correct horse battery staple";

async fn staff(h: &Harness, centre: i64, login: &str, role: Role) {
    h.app
        .issuer
        .create_staff(centre, login, PASSWORD, role)
        .await
        .unwrap()
        .unwrap();
}

async fn other_centre(h: &Harness) -> i64 {
    h.app
        .issuer
        .store()
        .create_centre("ちよだ保健所", "13", h.app.issuer.now())
        .await
        .unwrap()
}

async fn signed_in(h: &Harness, login: &str) -> Browser {
    let mut b = Browser::new(h);
    assert_eq!(b.login(login, PASSWORD).await.status, 303, "{login}");
    b
}

fn settings(validity: &str, name: &str, phone: &str, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("validity_hours", validity.into()),
        ("auto_issue", "on".into()),
        ("consultation_name", name.into()),
        ("consultation_phone", phone.into()),
        ("consultation_url", url.into()),
        ("consultation_hours", "24時間（土日祝日も含む）".into()),
    ]
}

async fn save(b: &mut Browser, centre: i64, form: &[(&'static str, String)]) -> Page {
    let path = format!("/portal/admin/centres/{centre}");
    let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.submit(&path, &path, &f).await
}

async fn consultation_centres(h: &Harness) -> (serde_json::Value, String) {
    let r = h
        .http
        .get(format!("{}/api/v1/consultation-centres", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cache = r.headers()["cache-control"].to_str().unwrap().to_owned();
    (r.json().await.unwrap(), cache)
}

#[tokio::test]
async fn centre_settings_are_saved_whole_or_not_at_all_and_reach_the_phones() {
    for db in backends().await {
        let h = start(&db).await;
        let store = h.app.issuer.store();
        let other = other_centre(&h).await;
        staff(&h, h.centre_id, "sato", Role::Staff).await;
        staff(&h, h.centre_id, "kanri", Role::Admin).await;

        // Staff may not; the administrator's link goes to their own centre.
        let mut s = signed_in(&h, "sato").await;
        assert_eq!(
            s.get("/portal/admin/centre").await.location,
            format!("/portal/admin/centres/{}", h.centre_id)
        );
        assert_eq!(
            s.get(&format!("/portal/admin/centres/{}", h.centre_id))
                .await
                .status,
            403
        );
        let mut a = signed_in(&h, "kanri").await;
        let p = a
            .get(&format!("/portal/admin/centres/{}", h.centre_id))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("みなと保健所（東京都）") && p.body.contains("id=\"tab-keys\""));
        assert!(
            !p.body.contains("id=\"tab-centres\""),
            "the list of centres is for system administrators"
        );
        let (list, cache) = consultation_centres(&h).await;
        assert_eq!(list, serde_json::json!([]), "{}: nothing set yet", h.label);
        assert_eq!(cache, "public, max-age=300");

        // Bad fields: each named, nothing saved (not even the good ones).
        let before = store.centre(h.centre_id).await.unwrap().unwrap();
        let p = save(
            &mut a,
            h.centre_id,
            &settings(
                "0",
                "東京都発熱相談センター",
                "03-5320-4592",
                "javascript:alert(1)",
            ),
        )
        .await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(
            p.body.contains("id=\"err-validity_hours\"")
                && p.body.contains("id=\"err-consultation_url\"")
        );
        assert!(
            p.body
                .contains("有効期間は1～168の整数（時間）で入力してください")
        );
        assert!(
            p.body.contains("value=\"東京都発熱相談センター\""),
            "what was typed stays"
        );
        assert_eq!(
            store.centre(h.centre_id).await.unwrap().unwrap(),
            before,
            "{}",
            h.label
        );

        // Good: saved as one, audited, served to phones of the prefecture.
        let p = save(
            &mut a,
            h.centre_id,
            &settings(
                "12",
                "東京都発熱相談センター",
                "03-5320-4592",
                "https://www.fukushihoken.metro.tokyo.lg.jp/",
            ),
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("設定を保存しました。"));
        let c = store.centre(h.centre_id).await.unwrap().unwrap();
        assert_eq!(c.validity_seconds, 12 * 3600);
        assert!(c.auto_issue && !c.allow_clinical);
        assert_eq!(c.consultation_phone, "03-5320-4592");
        let (list, _) = consultation_centres(&h).await;
        assert_eq!(
            list,
            serde_json::json!([{
                "prefecture": "13",
                "name": "東京都発熱相談センター",
                "phone": "03-5320-4592",
                "url": "https://www.fukushihoken.metro.tokyo.lg.jp/",
                "hours": "24時間（土日祝日も含む）"
            }]),
            "{}",
            h.label
        );
        // The phone reads exactly this list (device::prefecture::CentreOverride
        // is this type).
        let parsed: Vec<api_types::centres::ConsultationCentreEntry> =
            serde_json::from_value(list).unwrap();
        assert_eq!(parsed[0].phone.as_deref(), Some("03-5320-4592"));
        let audit = a.get("/portal/audit?kind=centre_settings").await.body;
        assert!(audit.contains("kanri"), "{audit}");

        // Another centre of the same prefecture: its entry is not served, and its page says so.
        staff(&h, other, "chiyoda", Role::Admin).await;
        let mut o = signed_in(&h, "chiyoda").await;
        let p = save(
            &mut o,
            other,
            &settings("24", "別の相談窓口", "03-1111-2222", ""),
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body.contains("id=\"served-by\"") && p.body.contains("みなと保健所"),
            "{}",
            p.body
        );
        assert_eq!(
            consultation_centres(&h).await.0.as_array().unwrap().len(),
            1
        );

        // Another centre's page is not found, and a post to it changes nothing.
        let before = store.centre(other).await.unwrap().unwrap();
        assert_eq!(
            a.get(&format!("/portal/admin/centres/{other}"))
                .await
                .status,
            404
        );
        let p = a
            .submit(
                &format!("/portal/admin/centres/{}", h.centre_id),
                &format!("/portal/admin/centres/{other}"),
                &[("validity_hours", "1")],
            )
            .await;
        assert_eq!(p.status, 404);
        assert_eq!(store.centre(other).await.unwrap().unwrap(), before);
        assert_eq!(a.get("/portal/admin/centres/abc").await.status, 404);

        // A burst of saves with different values: the centre ends as one of
        // them whole, never a mix.
        let page = a
            .get(&format!("/portal/admin/centres/{}", h.centre_id))
            .await;
        let token = csrf(&page.body);
        let mut tasks = Vec::new();
        for i in 1..=8u32 {
            let mut tab = a.tab();
            let token = token.clone();
            let centre = h.centre_id;
            tasks.push(tokio::spawn(async move {
                let name = format!("相談センター{i}");
                let validity = i.to_string();
                let p = tab
                    .post(
                        &format!("/portal/admin/centres/{centre}"),
                        &[
                            ("csrf", token.as_str()),
                            ("validity_hours", validity.as_str()),
                            ("consultation_name", name.as_str()),
                        ],
                    )
                    .await;
                assert_eq!(p.status, 200, "{}", p.body);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let c = store.centre(h.centre_id).await.unwrap().unwrap();
        let i = c.validity_seconds / 3600;
        assert_eq!(
            c.consultation_name,
            format!("相談センター{i}"),
            "{}",
            h.label
        );
        assert_eq!(c.consultation_phone, "", "the whole form was saved");
    }
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_and_revoked_by_role() {
    for db in backends().await {
        let h = start(&db).await;
        let other = other_centre(&h).await;
        staff(&h, h.centre_id, "sato", Role::Staff).await;
        staff(&h, h.centre_id, "kanri", Role::Admin).await;
        let mut s = signed_in(&h, "sato").await;
        assert_eq!(s.get("/portal/admin/keys").await.status, 403);
        let mut a = signed_in(&h, "kanri").await;

        // Bad input: no label, the app's key (system administrators only),
        // another centre, an unknown kind. Nothing is created.
        let keys_before = h.count("api_keys").await;
        for (form, status, text) in [
            (
                vec![("label", ""), ("kind", "admin")],
                422,
                "名前（どの連携システムのキーか）を40文字以内で入力してください",
            ),
            (
                vec![("label", "アプリ"), ("kind", "device")],
                422,
                "アプリ用のキーはシステム管理者だけが作成できます",
            ),
            (
                vec![("label", "x"), ("kind", "root")],
                422,
                "種類と保健所は一覧から選んでください",
            ),
        ] {
            let p = a
                .submit("/portal/admin/keys", "/portal/admin/keys", &form)
                .await;
            assert_eq!(p.status, status, "{form:?}: {}", p.body);
            assert!(p.body.contains(text), "{form:?}: {}", p.body);
        }
        let other_id = other.to_string();
        let p = a
            .submit(
                "/portal/admin/keys",
                "/portal/admin/keys",
                &[
                    ("label", "他所"),
                    ("kind", "admin"),
                    ("centre_id", &other_id),
                ],
            )
            .await;
        assert_eq!(p.status, 404);
        assert_eq!(h.count("api_keys").await, keys_before, "{}", h.label);

        // Created: the key shown once, never stored, working at once.
        let p = a
            .submit(
                "/portal/admin/keys",
                "/portal/admin/keys",
                &[("label", "HER-SYS連携"), ("kind", "admin")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let at = p.body.find("id=\"new-key\">").unwrap() + 13;
        let key = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
        assert!(key.starts_with("admin_") && key.len() > 30, "{key}");
        assert!(
            !h.dump().await.contains(&key),
            "{}: the key is not stored",
            h.label
        );
        let list = a.get("/portal/admin/keys").await.body;
        assert!(
            list.contains("HER-SYS連携") && !list.contains(&key),
            "shown once"
        );
        let id: i64 = p.body.split("API key created: id ").nth(1).map_or_else(
            || {
                let s = p.body.split("APIキーを作成しました: ID ").nth(1).unwrap();
                s[..s.find('<').unwrap()].trim().parse().unwrap()
            },
            |s| s[..s.find('<').unwrap()].trim().parse().unwrap(),
        );
        let created = h
            .post("/api/v1/cases", Some(&key), None, &case_json().to_string())
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        // The case system's actions carry its label on the staff screens.
        let audit = a.get("/portal/audit").await.body;
        assert!(
            audit.contains("連携システム（HER-SYS連携）") || audit.contains("kanri"),
            "{audit}"
        );

        // Another centre's key cannot be revoked from here.
        let (_, foreign) = h
            .app
            .issuer
            .create_api_key(issuer::store::ApiKeyKind::Admin, Some(other))
            .await
            .unwrap();
        let p = a
            .submit(
                "/portal/admin/keys",
                &format!("/portal/admin/keys/{foreign}/revoke"),
                &[],
            )
            .await;
        assert_eq!(p.status, 404, "{}", p.body);
        assert!(
            !a.get("/portal/admin/keys")
                .await
                .body
                .contains(&format!("id=\"key-{foreign}\""))
        );

        // Revoked: refused from the next request on; a second revoke is 404.
        let p = a
            .submit(
                "/portal/admin/keys",
                &format!("/portal/admin/keys/{id}/revoke"),
                &[],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("失効"));
        let refused = h
            .post("/api/v1/cases", Some(&key), None, &case_json().to_string())
            .await;
        assert_eq!(refused.status, 401, "{:?}", refused.body);
        let p = a
            .submit(
                "/portal/admin/keys",
                &format!("/portal/admin/keys/{id}/revoke"),
                &[],
            )
            .await;
        assert_eq!(p.status, 404);
        let audit = a.get("/portal/audit?kind=revoke_api_key").await.body;
        assert!(audit.contains("kanri"), "{audit}");
    }
}

#[tokio::test]
async fn system_administrators_list_and_add_centres() {
    for db in backends().await {
        let h = start(&db).await;
        other_centre(&h).await;
        staff(&h, h.centre_id, "kanri", Role::Admin).await;
        staff(&h, h.centre_id, "root", Role::System).await;
        let mut a = signed_in(&h, "kanri").await;
        assert_eq!(a.get("/portal/admin/centres").await.status, 403);
        let p = a
            .submit(
                "/portal/admin/keys",
                "/portal/admin/centres",
                &[("name", "新保健所"), ("prefecture", "13")],
            )
            .await;
        assert_eq!(p.status, 403);

        let mut r = signed_in(&h, "root").await;
        let p = r.get("/portal/admin/centres").await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(
            p.body.contains("みなと保健所")
                && p.body.contains("ちよだ保健所")
                && p.body.contains("id=\"tab-centres\"")
        );
        let centres = h.count("centres").await;
        for (name, pref, text) in [
            ("", "13", "保健所名を100文字以内で入力してください"),
            ("おおさか保健所", "48", "都道府県は一覧から選んでください"),
            ("みなと保健所", "13", "同じ名前の保健所がすでにあります"),
        ] {
            let p = r
                .submit(
                    "/portal/admin/centres",
                    "/portal/admin/centres",
                    &[("name", name), ("prefecture", pref)],
                )
                .await;
            assert_eq!(p.status, 422, "{name}: {}", p.body);
            assert!(p.body.contains(text), "{name}: {}", p.body);
        }
        assert_eq!(h.count("centres").await, centres, "{}", h.label);
        let p = r
            .submit(
                "/portal/admin/centres",
                "/portal/admin/centres",
                &[("name", "おおさか保健所"), ("prefecture", "27")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = r.get(&p.location).await;
        assert!(
            page.body.contains("おおさか保健所（大阪府）"),
            "{}",
            page.body
        );
        // A system administrator reaches every centre's settings and may create the app's key.
        let p = r
            .submit(
                "/portal/admin/keys",
                "/portal/admin/keys",
                &[("label", "アプリ"), ("kind", "device")],
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("id=\"new-key\">device_"), "{}", p.body);
    }
}

#[tokio::test]
async fn fallback_and_reminder_are_centre_settings_off_by_default() {
    for db in backends().await {
        let h = start(&db).await;
        let store = h.app.issuer.store();
        staff(&h, h.centre_id, "kanri", Role::Admin).await;
        let mut a = signed_in(&h, "kanri").await;
        let path = format!("/portal/admin/centres/{}", h.centre_id);
        let p = a.get(&path).await;
        assert!(
            p.body.contains("id=\"delivery_fallback\">")
                && !p.body.contains("id=\"delivery_fallback\" checked"),
            "off by default"
        );
        assert!(p.body.contains("id=\"reminder_hours\" name=\"reminder_hours\" type=\"number\" min=\"1\" max=\"167\" value=\"\""));
        let before = store.centre(h.centre_id).await.unwrap().unwrap();
        assert!(!before.delivery_fallback && before.reminder_after_hours.is_none());

        // A reminder as late as the validity (12 h) would come too late.
        let mut f = settings("12", "東京都発熱相談センター", "03-5320-4592", "");
        f.push(("delivery_fallback", "on".into()));
        f.push(("reminder_hours", "12".into()));
        let p = save(&mut a, h.centre_id, &f).await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(p.body.contains("id=\"err-reminder_hours\""));
        assert!(p.body.contains("有効期間（12時間）未満"), "{}", p.body);
        assert_eq!(
            store.centre(h.centre_id).await.unwrap().unwrap(),
            before,
            "{}: nothing saved, the checkbox neither",
            h.label
        );

        f.pop();
        f.push(("reminder_hours", "6".into()));
        let p = save(&mut a, h.centre_id, &f).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("id=\"delivery_fallback\" checked"));
        assert!(
            p.body.contains(
                "name=\"reminder_hours\" type=\"number\" min=\"1\" max=\"167\" value=\"6\""
            )
        );
        let c = store.centre(h.centre_id).await.unwrap().unwrap();
        assert!(c.delivery_fallback);
        assert_eq!(c.reminder_after_hours, Some(6));
        let d = store
            .centre_delivery_settings(h.centre_id)
            .await
            .unwrap()
            .unwrap();
        assert!(d.fallback && d.reminder_after_hours == Some(6));
        let log = store.audit_log(Some(h.centre_id), 5).await.unwrap();
        assert_eq!(log[0].action, "centre_settings");
        assert!(
            log[0].detail.contains("delivery_fallback=true")
                && log[0].detail.contains("reminder=6h"),
            "{}",
            log[0].detail
        );

        // Cleared: both off again.
        let p = save(
            &mut a,
            h.centre_id,
            &settings("12", "東京都発熱相談センター", "03-5320-4592", ""),
        )
        .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let c = store.centre(h.centre_id).await.unwrap().unwrap();
        assert!(!c.delivery_fallback && c.reminder_after_hours.is_none());
        let log = store.audit_log(Some(h.centre_id), 5).await.unwrap();
        assert!(log[0].detail.contains("reminder=off"), "{}", log[0].detail);
    }
}
