//! The staff portal in real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver) against the real `cocoa serve`:
//! log in, create a case, issue a number, see 「送信済み」, find the number
//! in the outbox and nowhere in the pages, the database or the logs;
//! reissue before use; after a registration, a reissue is refused with the
//! seed's message on screen. Screenshots go to the test's temp dir (and to
//! `$COCOA_BROWSER_ARTIFACTS` when set).
//!
//! Without Chromium the test is skipped with a note, except under CI
//! (`CI` set), where it fails: `scripts/test` installs Chromium first.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine as _;
use serde_json::{Value, json};

mod support;
use support::browser::{CHROMEDRIVER, CHROMIUM, Driver, start_chromedriver};
use support::{Killed, cocoa};

const PASSWORD: &str = "correct horse battery staple";

fn json_out(args: &[&str], data: &Path, stdin: Option<&str>) -> Value {
    let mut cmd = cocoa();
    cmd.env("COCOA_LOG", "warn")
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The numbers in the outbox (in no particular order within a second).
fn outbox_numbers(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
        .iter()
        .map(|f| {
            let msg: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
            let body = msg["body"].as_str().unwrap().to_owned();
            body.split("処理番号: ").nth(1).unwrap()[..8].to_owned()
        })
        .collect()
}

async fn device_call(base: &str, key: &str, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("x-api-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Every file under `dir` as bytes (database, WAL, logs).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The page on screen fits a phone (390 px) and a desktop (1280 px): it
/// never scrolls sideways (wide tables scroll inside their box). Saves
/// `{file}-390.png` and `{file}-1280.png`.
async fn fits_phone_and_desktop(d: &Driver, dir: &Path, what: &str, file: &str) {
    for (w, h) in [(390, 844), (1280, 900)] {
        let (scroll, inner) = d.widths_at(w, h).await;
        assert!(
            scroll <= inner,
            "{what} at {w} px: scrollWidth {scroll} > {inner}"
        );
        d.screenshot(&dir.join(format!("{file}-{w}.png"))).await;
    }
}

#[tokio::test]
async fn staff_issue_a_number_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} or {CHROMEDRIVER} is missing under CI: scripts/test installs them"
        );
        eprintln!("SKIP: Debian's chromium and chromium-driver are not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let outbox = dir.path().join("outbox");
    let centre = json_out(
        &[
            "issuer",
            "create-centre",
            "--create-data",
            "--name",
            "みなと保健所",
            "--prefecture",
            "13",
        ],
        &data,
        None,
    )["centre_id"]
        .as_i64()
        .unwrap();
    json_out(
        &[
            "issuer",
            "create-user",
            "--centre",
            &centre.to_string(),
            "--login",
            "yamada",
            "--role",
            "staff",
        ],
        &data,
        Some(&format!("{PASSWORD}\n")),
    );
    json_out(
        &[
            "issuer",
            "create-user",
            "--centre",
            &centre.to_string(),
            "--login",
            "kanri",
            "--role",
            "admin",
        ],
        &data,
        Some(&format!("{PASSWORD}\n")),
    );
    let device = json_out(
        &["issuer", "create-api-key", "--kind", "device"],
        &data,
        None,
    )["api_key"]
        .as_str()
        .unwrap()
        .to_owned();

    // The real server, logging everything (debug) to a file.
    let log_path = dir.path().join("server.log");
    let mut child = cocoa()
        .env("COCOA_LOG", "debug")
        .args([
            "serve",
            "--role",
            "issuer",
            "--listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(&data)
        .arg("--outbox")
        .arg(&outbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Killed(child);
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    let (chromedriver, d) = start_chromedriver(&dir.path().join("profile")).await;
    let mut pages = Vec::new();

    // Log in.
    d.goto(&format!("{base}/portal/login")).await;
    d.type_into("#login", "yamada").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    pages.push(d.wait_for("患者一覧").await);
    assert!(d.url().await.ends_with("/portal/cases"));

    // Create a case.
    d.click("#new-case").await;
    d.wait_for("患者の新規登録").await;
    d.type_into("#name_kana", "ヨコグチ ケンタ").await;
    d.type_into("#name_kanji", "横口 健太").await;
    d.set_value("birth_date", "1998-09-09").await;
    d.type_into("#mobile", "090-1234-5678").await;
    d.type_into("#residence", "港区芝").await;
    d.type_into("#outpatient_facility", "港区帰国者・接触者外来")
        .await;
    d.click("#test_positive").await;
    d.set_value("diagnosis_date", "2020-12-15").await;
    d.click("#reported").await;
    d.click("#uses_app").await;
    d.screenshot(&dir.path().join("case-form.png")).await;
    d.click("#save").await;
    pages.push(d.wait_for("保存しました").await);

    // Issue, with the confirmation step.
    d.click("#tab-id").await;
    pages.push(d.wait_for("未発行").await);
    d.click("#issue-button").await;
    pages.push(d.wait_for("処理番号発行の確認").await);
    d.click("#confirm-issue").await;
    let page = d.wait_for("処理番号を送信しました").await;
    assert!(page.contains("送信済み"), "the status panel says sent");
    pages.push(page);
    d.screenshot(&dir.path().join("case-sent.png")).await;
    // The case header and the status panel fit a phone's width.
    fits_phone_and_desktop(&d, dir.path(), "case page", "case").await;
    let first = outbox_numbers(&outbox);
    assert_eq!(first.len(), 1);

    // Reissue before use: a new number, the old one stops working.
    d.click("#issue-button").await;
    pages.push(d.wait_for("現在の処理番号は直ちに無効になり").await);
    d.click("#confirm-issue").await;
    pages.push(d.wait_for("処理番号を送信しました").await);
    let numbers = outbox_numbers(&outbox);
    assert_eq!(numbers.len(), 2);
    // File names order by second only: tell the new number by difference.
    let old = first[0].clone();
    let new = numbers.iter().find(|n| **n != old).unwrap().clone();
    let (s, b) = device_call(&base, &device, "/api/verify", json!({"code": old})).await;
    assert_eq!((s, b["errorCode"].as_str()), (400, Some("code_invalid")));

    // Open the reissue confirmation, then the patient registers meanwhile.
    d.click("#issue-button").await;
    pages.push(d.wait_for("現在の処理番号は直ちに無効になり").await);
    let (s, b) = device_call(&base, &device, "/api/verify", json!({"code": new})).await;
    assert_eq!(s, 200, "{b}");
    let hmac = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let (s, b) = device_call(
        &base,
        &device,
        "/api/certificate",
        json!({"token": b["token"], "ekeyhmac": hmac}),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // The stale confirmation is refused with the seed's message on screen.
    d.click("#confirm-issue").await;
    let page = d
        .wait_for("一度登録に成功した場合には処理番号を再発行できません")
        .await;
    assert!(page.contains("登録済み") && !page.contains("id=\"issue-button\""));
    pages.push(page);
    d.screenshot(&dir.path().join("case-refused.png")).await;
    assert_eq!(outbox_numbers(&outbox).len(), 2, "no third message");

    // The audit log and statistics pages.
    d.goto(&format!("{base}/portal/audit")).await;
    // Issue 13: who issued, by name (the login when no display name is
    // set), never the stored id `staff:yamada`.
    let audit = d.wait_for("処理番号発行").await;
    assert!(
        audit.contains(">yamada<") && !audit.contains("staff:yamada"),
        "{audit}"
    );
    pages.push(audit);
    d.goto(&format!("{base}/portal/stats")).await;
    let stats = d.wait_for("陽性登録までの流れ").await;
    // Two numbers of one person, the first replaced by the reissue: one
    // person in the funnel.
    assert!(stats.contains(r#"<td id="superseded-1">1</td>"#), "{stats}");
    assert!(stats.contains("<th>期間合計</th><td>1</td>"), "{stats}");
    pages.push(stats);
    // The statistics and the funnel fit a phone and a desktop: the page
    // never scrolls sideways (wide tables scroll inside their box).
    fits_phone_and_desktop(&d, dir.path(), "stats", "stats").await;
    d.goto(&format!("{base}/portal/stats?lang=en")).await;
    d.wait_for("Registration funnel").await;
    d.screenshot(&dir.path().join("stats-en.png")).await;
    d.goto(&format!("{base}/portal/stats?lang=ja")).await;
    d.wait_for("陽性登録までの流れ").await;
    d.goto(&format!("{base}/portal/cases/1?tab=id&lang=en"))
        .await;
    pages.push(d.wait_for("it cannot be reissued").await);
    // CSV import: a file with one error row (Shift_JIS, as Excel saves it on
    // Japanese Windows), the preview names the row, the confirmation
    // imports the good rows, and the case list shows them.
    let csv = "ID,氏名,フリガナ,生年月日,性別,携帯電話,メール,外来機関,検査陽性,確定/無症状/疑似症,診断日,報告,アプリ利用\n\
               HS-0001,佐藤 花子,サトウ ハナコ,1990/04/01,女性,090-2222-3333,,港区帰国者・接触者外来,はい,確定,2020/12/15,はい,はい\n\
               HS-0002,高橋 次郎,タカハシ ジロウ,1985-13-40,男性,,jiro.takahashi.long.address@example.jp,港区帰国者・接触者外来,はい,確定,2020-12-15,はい,はい\n\
               HS-0003,伊藤 三郎,イトウ サブロウ,1970-05-05,男性,,saburo@example.jp,港区帰国者・接触者外来,はい,無症状,2020-12-14,はい,いいえ\n";
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(csv);
    let csv_path = dir.path().join("cases.csv");
    std::fs::write(&csv_path, &sjis).unwrap();
    d.goto(&format!("{base}/portal/cases?lang=ja")).await;
    d.wait_for("患者一覧").await;
    d.click("#nav-import").await;
    d.wait_for("CSVファイルの取込").await;
    d.choose_file("#file", &csv_path).await;
    d.click("#upload").await;
    let preview = d.wait_for("取込内容の確認").await;
    assert!(preview.contains("Shift_JIS"), "{preview}");
    assert!(
        preview.contains("3行目: 生年月日: 日付は YYYY-MM-DD の形式で入力してください"),
        "{preview}"
    );
    assert!(preview.contains(r#"<dd id="valid">2</dd>"#), "{preview}");
    pages.push(preview);
    fits_phone_and_desktop(&d, dir.path(), "import preview", "import-preview").await;
    d.click("#issue").await;
    d.click("#confirm-import").await;
    let result = d.wait_for("取込の結果").await;
    assert!(result.contains(r#"<dd id="imported">2</dd>"#), "{result}");
    assert!(
        result.contains(r#"<dd id="numbers-sent">1</dd>"#),
        "{result}"
    );
    assert!(result.contains("佐藤 花子") && result.contains("伊藤 三郎"));
    pages.push(result);
    fits_phone_and_desktop(&d, dir.path(), "import result", "import-result").await;
    d.click("#to-cases").await;
    let list = d.wait_for("患者一覧").await;
    assert!(list.contains("佐藤 花子") && list.contains("伊藤 三郎"));
    assert!(!list.contains("高橋 次郎"), "the error row was not saved");
    pages.push(list);
    let imported_numbers = outbox_numbers(&outbox);
    assert_eq!(imported_numbers.len(), 3, "one SMS for the imported case");

    // Administration, as the centre's administrator: the settings page (a
    // bad field named and nothing saved, then saved), API keys (a new key
    // shown once) and staff accounts; none scrolls sideways on a phone.
    d.click("#logout").await;
    d.wait_for("id=\"login-submit\"").await;
    d.type_into("#login", "kanri").await;
    d.type_into("#password", PASSWORD).await;
    d.click("#login-submit").await;
    d.wait_for("患者一覧").await;
    d.click("#nav-admin").await;
    d.wait_for("職員アカウント").await;
    d.click("#tab-centre").await;
    d.wait_for("受診・相談センター（通知を受けた方に表示）")
        .await;
    d.type_into("#validity_hours", "12").await;
    d.type_into("#consultation_name", "東京都発熱相談センター")
        .await;
    d.type_into("#consultation_phone", "03-5320-4592").await;
    d.type_into("#consultation_url", "javascript:alert(1)")
        .await;
    d.type_into("#consultation_hours", "24時間（土日祝日も含む）")
        .await;
    // Delivery: the e-mail fallback, and a reminder as late as the
    // validity (refused: it would come when the number no longer works).
    d.click("#delivery_fallback").await;
    d.type_into("#reminder_hours", "12").await;
    d.click("#save-settings").await;
    let refused = d.wait_for("id=\"err-consultation_url\"").await;
    assert!(refused.contains("入力内容を確認してください。保存されていません。"));
    assert!(
        refused.contains("id=\"err-reminder_hours\"") && refused.contains("有効期間（12時間）未満"),
        "the reminder's error is named"
    );
    assert!(
        refused.contains("id=\"delivery_fallback\" checked"),
        "what was chosen stays"
    );
    d.type_into("#reminder_hours", "6").await;
    d.screenshot(&dir.path().join("settings-error.png")).await;
    d.type_into(
        "#consultation_url",
        "https://www.fukushihoken.metro.tokyo.lg.jp/",
    )
    .await;
    d.click("#save-settings").await;
    let saved = d.wait_for("設定を保存しました。").await;
    assert!(saved.contains("id=\"delivery_fallback\" checked"));
    assert!(saved.contains("value=\"6\""), "the reminder hours are kept");
    pages.push(saved);
    let served: Value = reqwest::get(format!("{base}/api/v1/consultation-centres"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served[0]["name"], "東京都発熱相談センター", "{served}");
    assert_eq!(served[0]["phone"], "03-5320-4592", "{served}");
    fits_phone_and_desktop(&d, dir.path(), "settings", "settings").await;
    d.click("#tab-keys").await;
    d.wait_for("APIキーの作成").await;
    d.type_into("#key-label", "HER-SYS連携").await;
    d.click("#create-key").await;
    let created = d.wait_for("id=\"new-key\"").await;
    assert!(created.contains("HER-SYS連携"));
    fits_phone_and_desktop(&d, dir.path(), "keys", "keys").await;
    d.click("#tab-keys").await;
    let listed = d.wait_for("HER-SYS連携").await;
    assert!(!listed.contains("id=\"new-key\""), "the key is shown once");
    pages.push(listed);
    d.click("#tab-staff").await;
    let accounts = d.wait_for("アカウントの作成").await;
    assert!(accounts.contains("yamada") && accounts.contains("kanri"));
    d.resize(390, 844).await;
    d.screenshot(&dir.path().join("staff-390.png")).await;
    pages.push(accounts);
    if let Ok(keep) = std::env::var("COCOA_SCREENSHOTS") {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|e| e == "png") {
                std::fs::copy(f.path(), Path::new(&keep).join(f.file_name())).unwrap();
            }
        }
    }

    drop(d);
    drop(chromedriver);
    drop(server);

    // The numbers are in the outbox only.
    let logs = std::fs::read(&log_path).unwrap();
    assert!(
        contains(&logs, "processing number sent"),
        "logs were captured"
    );
    let db = all_bytes(&data);
    let third = imported_numbers
        .iter()
        .find(|n| **n != old && **n != new)
        .unwrap()
        .clone();
    for n in [&old, &new, &third] {
        for (i, p) in pages.iter().enumerate() {
            assert!(!p.contains(n.as_str()), "the number is on page {i}");
        }
        assert!(!contains(&logs, n), "the number is in the log");
        assert!(!contains(&db, n), "the number is in the database files");
    }
}
