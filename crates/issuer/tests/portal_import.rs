//! CSV import in the staff portal over a real socket, on every backend:
//! UTF-8 (with and without BOM) and Shift_JIS files, rows with errors shown
//! with their line and never saved while the good rows are, duplicate IDs,
//! files refused whole (too large, wrong header, …), a double confirmation
//! that imports once, imports no other staff member or centre can see or
//! confirm, and the option that issues and sends the numbers.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use issuer::domain::model::Role;

const PASSWORD: &str = "correct horse battery staple";

const HEADER: &str = "ID,氏名,フリガナ,生年月日,性別,携帯電話,メール,外来機関,検査陽性,確定/無症状/疑似症,診断日,報告,アプリ利用";

async fn staff(h: &Harness, centre: i64, login: &str, role: Role) {
    h.app
        .issuer
        .create_staff(centre, login, PASSWORD, role)
        .await
        .unwrap()
        .unwrap();
}

async fn signed_in(h: &Harness, login: &str) -> Browser {
    let mut b = Browser::new(h);
    let p = b.login(login, PASSWORD).await;
    assert_eq!(p.status, 303, "{}: login {login}", h.label);
    b
}

/// A good row (an issuable case) with case system ID `id`.
fn good(id: &str, name: &str, kana: &str, mobile: &str) -> String {
    format!(
        "{id},{name},{kana},1998/09/09,男性,{mobile},,港区帰国者・接触者外来,はい,確定,2020/12/15,はい,はい"
    )
}

/// Two good rows (lines 2 and 5) and two with errors: line 3 a bad date of
/// birth, line 4 without 氏名.
fn mixed(prefix: &str) -> String {
    format!(
        "{HEADER}\n{}\n{prefix}-2,山田 花子,ヤマダ ハナコ,1990-13-45,女性,,hanako@example.jp,港区外来,はい,確定,2020-12-15,はい,いいえ\n\
         {prefix}-3,,ヤマダ タロウ,1990-01-01,男性,,,港区外来,はい,無症状,2020-12-14,はい,いいえ\n{}\n",
        good(
            &format!("{prefix}-1"),
            "横口 健太",
            "ヨコグチ ケンタ",
            "090-1234-5678"
        ),
        good(&format!("{prefix}-4"), "鈴木 一郎", "スズキ イチロウ", ""),
    )
}

/// Uploads `file` from the import page; returns the answer.
async fn upload(b: &mut Browser, file: &[u8]) -> Page {
    let form = b.get("/portal/import").await;
    assert_eq!(form.status, 200, "{}", form.body);
    b.upload("/portal/import", &csrf(&form.body), file).await
}

/// Uploads `file` and follows to the preview; returns its path and page.
async fn preview(b: &mut Browser, file: &[u8]) -> (String, Page) {
    let p = upload(b, file).await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with("/portal/import/"), "{}", p.location);
    let page = b.get(&p.location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    (p.location, page)
}

async fn confirm(b: &mut Browser, at: &str, issue: bool) -> Page {
    let page = b.get(at).await;
    let token = csrf(&page.body);
    let mut form = vec![("csrf", token.as_str())];
    if issue {
        form.push(("issue", "on"));
    }
    b.post(at, &form).await
}

async fn external_ids(h: &Harness) -> Vec<String> {
    use sqlx::Row;
    sqlx::query("SELECT external_id FROM cases WHERE external_id IS NOT NULL ORDER BY id")
        .fetch_all(h.app.issuer.store().pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn utf8_bom_and_shift_jis_files_import_their_good_rows_only() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = signed_in(&h, "yamada").await;
        let nav = b.get("/portal/cases").await;
        assert!(
            nav.body
                .contains(r#"href="/portal/import" id="nav-import">CSV取込"#)
        );
        let utf8 = mixed("U").into_bytes();
        let bom = [b"\xEF\xBB\xBF".as_slice(), mixed("B").as_bytes()].concat();
        let sjis_text = mixed("S");
        let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&sjis_text);
        assert!(!unmappable);
        let mut imported = 0;
        for (file, label, prefix) in [
            (utf8, "UTF-8", "U"),
            (bom, "UTF-8（BOM付き）", "B"),
            (sjis.into_owned(), "Shift_JIS", "S"),
        ] {
            let (at, p) = preview(&mut b, &file).await;
            let body = &p.body;
            assert!(
                body.contains(&format!(r#"<dd id="encoding">{label}</dd>"#)),
                "{}: {label}: {body}",
                h.label
            );
            assert!(body.contains(r#"<dd id="total">4</dd>"#), "{body}");
            assert!(body.contains(r#"<dd id="valid">2</dd>"#));
            assert!(body.contains(r#"<dd id="invalid">2</dd>"#));
            assert!(body.contains("3行目: 生年月日: 日付は YYYY-MM-DD の形式で入力してください"));
            assert!(body.contains("4行目: 氏名: 入力されていません"));
            assert!(body.contains("横口 健太") && body.contains("ヤマダ タロウ"));
            assert!(body.contains("有効な行に処理番号を発行する"));
            // The rows are kept server-side: the page carries no hidden copy.
            assert_eq!(
                body.matches("type=\"hidden\"").count(),
                2,
                "csrf fields only"
            );
            // Nothing is saved before the confirmation.
            assert_eq!(h.count("cases").await, imported);
            let p = confirm(&mut b, &at, false).await;
            assert_eq!(p.status, 303, "{}", p.body);
            assert_eq!(p.location, format!("{at}/result"));
            let r = b.get(&p.location).await;
            assert!(r.body.contains(r#"<dd id="imported">2</dd>"#), "{}", r.body);
            assert!(r.body.contains(r#"<dd id="skipped">2</dd>"#));
            assert!(r.body.contains("横口 健太") && r.body.contains("鈴木 一郎"));
            assert!(r.body.contains("取り込みませんでした"));
            imported += 2;
            assert_eq!(h.count("cases").await, imported);
            let ids = external_ids(&h).await;
            assert_eq!(
                ids[ids.len() - 2..],
                [format!("{prefix}-1"), format!("{prefix}-4")]
            );
        }
        // The saved case is the row's, through the form's rules (dates with
        // slashes, 男性 → male, はい → true).
        let p = b.get("/portal/cases?q=ヨコグチ").await;
        assert_eq!(p.body.matches("横口 健太").count(), 3, "{}", p.body);
        let list = h
            .app
            .issuer
            .store()
            .list_cases(Some(h.centre_id), "横口", 1)
            .await
            .unwrap();
        let c = &list[0].data;
        assert_eq!(c.birth_date.to_string(), "1998-09-09");
        assert_eq!(c.mobile.as_deref(), Some("09012345678"));
        assert!(c.test_positive && c.reported && c.uses_app);
        assert_eq!(c.diagnosis_date.unwrap().to_string(), "2020-12-15");
        // Nothing was sent without the option; the audit log has counts only.
        assert_eq!(h.sent_count(), 0);
        let a = b.get("/portal/audit?kind=import_cases").await;
        assert!(a.body.contains("<td>CSV取込</td>"), "{}", a.body);
        let dump = h.dump().await;
        assert!(dump.contains("rows=4 imported=2 invalid=2 numbers_sent=0"));
        for line in dump.lines().filter(|l| l.contains("rows=4")) {
            assert!(!line.contains("横口") && !line.contains("ヤマダ"), "{line}");
        }
        // English: the same errors named in English.
        let p = b.get("/portal/import?lang=en").await;
        assert!(p.body.contains("Import a CSV file"));
        let (_, p) = preview(&mut b, mixed("F").as_bytes()).await;
        assert!(
            p.body
                .contains("Line 3: date of birth: date must be YYYY-MM-DD"),
            "{}",
            p.body
        );
        assert!(p.body.contains("Line 4: name: is missing"));
    }
}

#[tokio::test]
async fn an_id_already_imported_is_an_error_not_a_duplicate() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = signed_in(&h, "yamada").await;
        let first = format!(
            "{HEADER}\n{}\n",
            good("H-1", "横口 健太", "ヨコグチ ケンタ", "")
        );
        let (at, _) = preview(&mut b, first.as_bytes()).await;
        assert_eq!(confirm(&mut b, &at, false).await.status, 303);
        assert_eq!(h.count("cases").await, 1);
        // Again, with a new row and the same one twice in the file.
        let again = format!(
            "{HEADER}\n{}\n{}\n{}\n",
            good("H-1", "横口 健太", "ヨコグチ ケンタ", ""),
            good("H-2", "鈴木 一郎", "スズキ イチロウ", ""),
            good("H-2", "鈴木 二郎", "スズキ ジロウ", ""),
        );
        let (at, p) = preview(&mut b, again.as_bytes()).await;
        assert!(
            p.body
                .contains("2行目: ID: このIDの患者は既に登録されています"),
            "{}: {}",
            h.label,
            p.body
        );
        assert!(p.body.contains("4行目: ID: 同じIDが3行目にもあります"));
        assert!(p.body.contains(r#"<dd id="valid">1</dd>"#));
        assert_eq!(confirm(&mut b, &at, false).await.status, 303);
        assert_eq!(h.count("cases").await, 2);
        assert_eq!(external_ids(&h).await, ["H-1", "H-2"]);
        // Another centre may use the same ID for its own case.
        let other = h
            .app
            .issuer
            .store()
            .create_centre("ちよだ保健所", "13", h.app.issuer.now())
            .await
            .unwrap();
        staff(&h, other, "suzuki", Role::Staff).await;
        let mut s = signed_in(&h, "suzuki").await;
        let (at, p) = preview(&mut s, first.as_bytes()).await;
        assert!(p.body.contains(r#"<dd id="valid">1</dd>"#), "{}", p.body);
        assert_eq!(confirm(&mut s, &at, false).await.status, 303);
        assert_eq!(h.count("cases").await, 3);
    }
}

#[tokio::test]
async fn bad_files_are_refused_whole_with_a_clear_message() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = signed_in(&h, "yamada").await;
        let row = good("X-1", "横口 健太", "ヨコグチ ケンタ", "");
        // A file just over 2 MB (its body is read) and one far over (the
        // body is cut off while it is read).
        let mut big = format!("{HEADER}\n{row}\n").into_bytes();
        big.resize(2 * 1024 * 1024 + 1, b' ');
        let p = upload(&mut b, &big).await;
        assert_eq!(p.status, 413, "{}", h.label);
        assert!(
            p.body.contains("ファイルが大きすぎます（2MBまで）"),
            "{}",
            p.body
        );
        let p = upload(&mut b, &vec![b'a'; 3 * 1024 * 1024]).await;
        assert_eq!(p.status, 413);
        assert!(p.body.contains("ファイルが大きすぎます"));
        let wrong = "ID,名前,フリガナ,生年月日\nX-1,横口 健太,ヨコグチ ケンタ,1998-09-09\n";
        let p = upload(&mut b, wrong.as_bytes()).await;
        assert_eq!(p.status, 422);
        assert!(
            p.body.contains(
                "1行目の見出しが正しくありません。次の列がありません: 氏名、性別、携帯電話"
            ),
            "{}",
            p.body
        );
        let many = format!("{HEADER}\n{}", format!("{row}\n").repeat(5_001));
        let p = upload(&mut b, many.as_bytes()).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("行数が多すぎます（5,000行まで）"));
        let p = upload(&mut b, format!("{HEADER}\n").as_bytes()).await;
        assert!(p.body.contains("データ行がありません"));
        let p = upload(&mut b, b"\x81\x39\xff\xfe\x00").await;
        assert!(p.body.contains("文字コードを読み取れません"));
        let p = upload(&mut b, b"").await;
        assert!(p.body.contains("CSVファイルを選んでください"));
        // English.
        b.get("/portal/import?lang=en").await;
        let p = upload(&mut b, wrong.as_bytes()).await;
        assert!(
            p.body
                .contains("The header line (line 1) is wrong. Missing columns: 氏名, 性別")
        );
        let p = upload(&mut b, &big).await;
        assert!(p.body.contains("The file is too large (2 MB at most)"));
        // Without the CSRF token: refused before anything is read.
        let p = b
            .upload(
                "/portal/import",
                "forged",
                format!("{HEADER}\n{row}\n").as_bytes(),
            )
            .await;
        assert_eq!(p.status, 403);
        assert_eq!(h.count("case_imports").await, 0);
        assert_eq!(h.count("cases").await, 0);
        // A system administrator acts for no centre: no import.
        staff(&h, h.centre_id, "root", Role::System).await;
        let mut root = signed_in(&h, "root").await;
        let p = root.get("/portal/import").await;
        assert_eq!(p.status, 403);
        assert!(!p.body.contains("id=\"nav-import\""));
    }
}

#[tokio::test]
async fn a_double_confirm_imports_once() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = signed_in(&h, "yamada").await;
        let file = format!(
            "{HEADER}\n{}\n{}\n",
            good("D-1", "横口 健太", "ヨコグチ ケンタ", "090-1234-5678"),
            good("D-2", "鈴木 一郎", "スズキ イチロウ", "090-1111-2222"),
        );
        let (at, p) = preview(&mut b, file.as_bytes()).await;
        let token = csrf(&p.body);
        let form = [("csrf", token.as_str()), ("issue", "on")];
        let tabs: Vec<Browser> = (0..4).map(|_| b.tab()).collect();
        let posts = tabs.into_iter().map(|mut t| {
            let at = at.clone();
            let form = form.map(|(k, v)| (k, v.to_owned()));
            tokio::spawn(async move {
                let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                t.post(&at, &f).await
            })
        });
        for p in futures_util::future::join_all(posts).await {
            let p = p.unwrap();
            assert_eq!(
                (p.status, p.location.as_str()),
                (303, format!("{at}/result").as_str()),
                "{}: {}",
                h.label,
                p.body
            );
        }
        assert_eq!(h.count("cases").await, 2, "{}", h.label);
        assert_eq!(h.sent_count(), 2, "one SMS a case");
        // Later: the result again, nothing more.
        let p = b.post(&at, &form).await;
        assert_eq!(p.status, 303);
        let r = b.get(&p.location).await;
        assert!(r.body.contains(r#"<dd id="imported">2</dd>"#), "{}", r.body);
        let p = b.get(&at).await;
        assert_eq!((p.status, p.location), (303, format!("{at}/result")));
        assert_eq!(h.count("cases").await, 2);
        assert_eq!(h.sent_count(), 2);
    }
}

#[tokio::test]
async fn another_staff_members_or_centres_import_is_not_found() {
    for db in backends().await {
        let h = start(&db).await;
        let other = h
            .app
            .issuer
            .store()
            .create_centre("ちよだ保健所", "13", h.app.issuer.now())
            .await
            .unwrap();
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        staff(&h, h.centre_id, "tanaka", Role::Admin).await;
        staff(&h, other, "suzuki", Role::Staff).await;
        let mut b = signed_in(&h, "yamada").await;
        let file = format!(
            "{HEADER}\n{}\n",
            good("I-1", "横口 健太", "ヨコグチ ケンタ", "")
        );
        let (at, _) = preview(&mut b, file.as_bytes()).await;
        // The same account in another session, a colleague, another centre.
        for login in ["yamada", "tanaka", "suzuki"] {
            let mut o = signed_in(&h, login).await;
            let p = o.get(&at).await;
            assert_eq!(p.status, 404, "{}: {login}", h.label);
            assert!(!p.body.contains("横口"));
            let token = csrf(&o.get("/portal/import").await.body);
            let p = o.post(&at, &[("csrf", &token)]).await;
            assert_eq!(p.status, 404, "{login}");
            assert_eq!(o.get(&format!("{at}/result")).await.status, 404);
        }
        let p = b.get("/portal/import/not-an-import").await;
        assert_eq!(p.status, 404);
        assert_eq!(h.count("cases").await, 0);
        // Past its hour the import is gone.
        let (late, _) = preview(&mut b, file.as_bytes()).await;
        // (Active meanwhile, so the session itself does not idle out.)
        for minutes in [25, 25, 11] {
            h.clock.advance(chrono::Duration::minutes(minutes));
            assert_eq!(b.get("/portal/cases").await.status, 200);
        }
        let token = csrf(&b.get("/portal/import").await.body);
        let p = b.post(&late, &[("csrf", &token)]).await;
        assert_eq!(p.status, 410, "{}", p.body);
        assert!(p.body.contains("有効期限（1時間）が切れました"));
        assert_eq!(h.count("cases").await, 0);
        let _ = at;
    }
}

#[tokio::test]
async fn the_issue_option_issues_and_sends_numbers_for_eligible_rows() {
    for db in backends().await {
        let h = start(&db).await;
        staff(&h, h.centre_id, "yamada", Role::Staff).await;
        let mut b = signed_in(&h, "yamada").await;
        let file = format!(
            "{HEADER}\n{}\n\
             N-2,山田 花子,ヤマダ ハナコ,1990-01-01,女性,,hanako@example.jp,港区外来,はい,確定,2020-12-15,はい,はい\n\
             N-3,鈴木 一郎,スズキ イチロウ,1990-01-01,男性,090-3333-4444,,港区外来,はい,確定,2020-12-15,はい,いいえ\n\
             N-4,佐藤 二郎,サトウ ジロウ,1990-01-01,男性,090-5555-6666,,港区外来,はい,確定,2020-12-15,いいえ,はい\n\
             N-5,,サトウ サブロウ,1990-01-01,男性,090-7777-8888,,港区外来,はい,確定,2020-12-15,はい,はい\n",
            good("N-1", "横口 健太", "ヨコグチ ケンタ", "090-1234-5678"),
        );
        let (at, p) = preview(&mut b, file.as_bytes()).await;
        assert!(
            p.body.contains(r#"<dd id="valid">4</dd>"#),
            "{}: {}",
            h.label,
            p.body
        );
        let p = confirm(&mut b, &at, true).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let r = b.get(&p.location).await;
        assert!(r.body.contains(r#"<dd id="imported">4</dd>"#), "{}", r.body);
        assert!(
            r.body.contains(r#"<dd id="numbers-sent">2</dd>"#),
            "{}",
            r.body
        );
        assert!(r.body.contains(r#"<dd id="numbers-not-sent">1</dd>"#));
        assert!(
            r.body
                .contains("対象外（アプリ利用なし、または連絡先なし）")
        );
        // N-4 is not reported: the issuance's own rule refuses it.
        assert!(r.body.contains("発生届"), "{}", r.body);
        // Through the normal delivery: one SMS, one e-mail, to the rows'
        // addresses; audited per case; the number on no page.
        let sent = h.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        let to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
        assert!(to.contains(&"hanako@example.jp"), "{to:?}");
        assert!(to.iter().any(|t| t.contains("9012345678")), "{to:?}");
        let numbers: Vec<String> = sent
            .iter()
            .map(|m| m.body.split("処理番号: ").nth(1).unwrap()[..8].to_owned())
            .collect();
        let a = b.get("/portal/audit").await;
        assert!(a.body.contains("処理番号発行") && a.body.contains("CSV取込"));
        for n in &numbers {
            assert!(!r.body.contains(n.as_str()) && !a.body.contains(n.as_str()));
        }
        let dump = h.dump().await;
        assert!(
            dump.contains("rows=5 imported=4 invalid=1 numbers_sent=2 numbers_not_sent=1"),
            "{dump}"
        );
        let p = b.get("/portal/cases?state=sent").await;
        assert!(p.body.contains("横口 健太") && p.body.contains("山田 花子"));
        assert!(!p.body.contains("鈴木 一郎"));
    }
}
