//! `cocoa app …` as scripts use it: the JSON contract of every command, a
//! story of several days through `--now`, and every kind of bad input
//! refused with exit status 2 and a clear Japanese message.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

mod support;
use support::cocoa;

use serde_json::Value;

fn app(homes: &[&Path], now: &str, args: &[&str]) -> Output {
    let mut c = cocoa();
    c.arg("app");
    for h in homes {
        c.arg("--home").arg(h);
    }
    c.args(["--now", now]).args(args).output().unwrap()
}

fn ok_json(homes: &[&Path], now: &str, args: &[&str]) -> Value {
    let out = app(homes, now, &[&["--json"], args].concat());
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a command that must be refused as bad input; returns its stderr.
fn refused(homes: &[&Path], now: &str, args: &[&str], code: &str) -> String {
    let out = app(homes, now, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(&format!("[{code}]")), "{args:?}: {stderr}");
    stderr
}

const DAY1: &str = "2020-12-01T12:00:00+09:00";
const NOW: &str = "2020-12-16T12:00:00+09:00";

#[test]
fn a_story_of_two_weeks_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let s = ok_json(&[&a], DAY1, &["init", "--prefecture", "東京都"]);
    assert_eq!(s["prefecture"], "13");
    assert_eq!(s["keys"], 1);
    ok_json(
        &[&b],
        DAY1,
        &["init", "--prefecture", "27", "--tx-power", "-12"],
    );

    // beacon prints its JSON even without --json.
    let out = app(&[&a], NOW, &["beacon", "--at", "2020-12-14T10:00:00+09:00"]);
    assert!(out.status.success());
    let beacon: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(beacon["rpi"].as_str().unwrap().len(), 32);
    assert_eq!(beacon["aem"].as_str().unwrap().len(), 8);
    assert_eq!(beacon["interval"], 1_607_907_600 / 600);
    let again = ok_json(&[&a], NOW, &["beacon", "--at", "2020-12-14T10:05:00+09:00"]);
    assert_eq!(again, beacon, "same interval, same advertisement");

    // B hears A.
    let r = ok_json(
        &[&b],
        NOW,
        &[
            "sight",
            "--rpi",
            beacon["rpi"].as_str().unwrap(),
            "--aem",
            beacon["aem"].as_str().unwrap(),
            "--rssi",
            "-63",
            "--at",
            "2020-12-14T10:01:00+09:00",
            "--seconds",
            "240",
        ],
    );
    assert_eq!(r["recorded"], 1);

    let m = ok_json(
        &[&a, &b],
        NOW,
        &[
            "meet",
            "--at",
            "2020-12-15T10:00:00+09:00",
            "--minutes",
            "20",
            "--distance",
            "1",
        ],
    );
    assert_eq!(m["scans"], 5);
    assert_eq!(m["attenuation_db"], 55);
    assert_eq!(m["rssi_a"], -12 - 55, "A hears B's TX power minus 55 dB");
    assert_eq!(m["rssi_b"], -8 - 55);

    let st = ok_json(&[&b], NOW, &["status"]);
    assert_eq!(st["sightings"], 6);
    assert_eq!(st["registration"], Value::Null);
    assert_eq!(st["contacts"], 0);
    // 12-01's key is gone after 14 days; 12-15's (meet) and 12-16's (open) are kept.
    assert_eq!(st["oldest_key_day"], "2020-12-15");

    let text = app(&[&b], NOW, &["--lang", "en", "status"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("sightings: 6"));
}

#[test]
fn bad_input_is_refused_with_a_clear_japanese_message() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    ok_json(&[&a], DAY1, &["init", "--server", "http://127.0.0.1:9"]);
    ok_json(&[&b], DAY1, &["init"]);
    let reg = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["register", "--symptoms", "yes", "--date", "2020-12-15"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>, code: &str| -> String {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&[&a], NOW, &args, code)
    };

    let e = run(reg(&["--number", "1234567"]), "number_length");
    assert!(
        e.contains("処理番号は8桁の数字です") && e.contains("7桁"),
        "{e}"
    );
    let e = run(reg(&["--number", "123456789"]), "number_length");
    assert!(e.contains("9桁"), "{e}");
    let e = run(reg(&["--number", "1234abcd"]), "number_character");
    assert!(e.contains("使えない文字「a」"), "{e}");
    let e = run(
        reg(&["--link", "https://cocoa.example.jp/cocoa/b/?pn=12345678"]),
        "link_malformed",
    );
    assert!(e.contains("処理番号のリンクではありません"), "{e}");

    let future = [
        "register",
        "--symptoms",
        "no",
        "--date",
        "2020-12-17",
        "--number",
        "12345678",
    ];
    let e = refused(&[&a], NOW, &future, "date_in_future");
    assert!(e.contains("未来の日付"), "{e}");
    let old = [
        "register",
        "--symptoms",
        "yes",
        "--date",
        "2020-12-01",
        "--number",
        "12345678",
    ];
    let e = refused(&[&a], NOW, &old, "date_too_old");
    assert!(
        e.contains("14日より前") && e.contains("2020年12月2日"),
        "{e}"
    );
    let e = refused(
        &[&a],
        NOW,
        &[
            "register",
            "--symptoms",
            "yes",
            "--date",
            "12/15",
            "--number",
            "12345678",
        ],
        "date_malformed",
    );
    assert!(e.contains("読み取れません"), "{e}");
    let e = refused(
        &[&a],
        NOW,
        &["register", "--symptoms", "yes", "--number", "12345678"],
        "registration_input_missing",
    );
    assert!(e.contains("入力してください"), "{e}");

    let fresh = dir.path().join("c");
    let e = refused(
        &[&fresh],
        NOW,
        &["init", "--prefecture", "99"],
        "unknown_prefecture",
    );
    assert!(e.contains("都道府県「99」が分かりません"), "{e}");
    assert!(!fresh.join("phone.sqlite3").exists(), "nothing set up");

    let sight = |rpi: &str, rssi: &str| {
        vec![
            "sight".to_string(),
            "--rpi".into(),
            rpi.into(),
            "--aem".into(),
            "40080000".into(),
            "--rssi".into(),
            rssi.into(),
            "--at".into(),
            "2020-12-16T10:00:00+09:00".into(),
        ]
    };
    let good_rpi = "000102030405060708090a0b0c0d0e0f";
    let e = run(sight(good_rpi, "-128"), "rssi_out_of_range");
    assert!(e.contains("範囲外") && e.contains("−127〜20 dBm"), "{e}");
    run(sight(good_rpi, "21"), "rssi_out_of_range");
    let e = run(sight("0001020304", "-60"), "rpi_malformed");
    assert!(e.contains("16進数32桁"), "{e}");
    let e = run(sight(&"zz".repeat(16), "-60"), "rpi_malformed");
    assert!(e.contains("RPI"), "{e}");

    let e = refused(
        &[&a, &b],
        NOW,
        &[
            "meet",
            "--at",
            "2020-12-16T10:00:00+09:00",
            "--minutes",
            "20",
            "--distance",
            "0",
        ],
        "meet_invalid",
    );
    assert!(e.contains("距離"), "{e}");
    let e = refused(
        &[&a],
        NOW,
        &["beacon", "--at", "2020-11-30T10:00:00+09:00"],
        "time_out_of_range",
    );
    assert!(e.contains("使い始める前"), "{e}");

    // --json: the error as an object on stdout too.
    let out = app(
        &[&a],
        NOW,
        &[
            "--json",
            "register",
            "--symptoms",
            "yes",
            "--date",
            "2020-12-15",
            "--number",
            "１２３",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "number_length");
    assert!(v["error"]["ja"].as_str().unwrap().contains("3桁"));
    assert!(v["error"]["en"].as_str().unwrap().contains("8 digits"));
    assert_eq!(v["error"]["retryable"], false);

    // A phone that cannot reach its server keeps the registration (exit 1).
    ok_json(&[&a], NOW, &["beacon", "--at", "2020-12-15T10:00:00+09:00"]);
    let out = app(
        &[&a],
        NOW,
        &[
            "--json",
            "register",
            "--symptoms",
            "yes",
            "--date",
            "2020-12-15",
            "--number",
            "１２３４-５６７８",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
    assert_eq!(v["error"]["retryable"], true);
    assert_eq!(
        ok_json(&[&a], NOW, &["status"])["registration"]["stage"],
        "entered"
    );
}

#[test]
fn a_phone_without_a_server_is_told_to_run_configure_not_init() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    ok_json(&[&a], DAY1, &["init"]);
    let out = app(&[&a], NOW, &["check"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("[not_configured]"), "{e}");
    assert!(e.contains("cocoa app configure --server URL"), "{e}");
    assert!(!e.contains("init"), "{e}");
    let out = app(&[&a], NOW, &["--lang", "en", "check"]);
    let en = String::from_utf8_lossy(&out.stderr);
    assert!(
        en.contains("set it with `cocoa app configure --server URL`"),
        "{en}"
    );
}

/// A phone whose exports are a local index listing one file that is not
/// there, with an export public key (a fresh P-256 key).
fn phone_with_local_exports(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("p");
    let exports = dir.join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    std::fs::write(exports.join("index.txt"), "1.zip\n").unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = dir.join("export-key.pem");
    std::fs::write(&pem, key.public_key_pem()).unwrap();
    let index = format!("file://{}", exports.join("index.txt").display());
    ok_json(
        &[&home],
        DAY1,
        &[
            "init",
            "--prefecture",
            "13",
            "--server",
            "http://127.0.0.1:9",
            "--exports",
            &index,
            "--export-public-key",
            pem.to_str().unwrap(),
        ],
    );
    home
}

#[test]
fn check_prints_a_short_summary_and_json_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let home = phone_with_local_exports(dir.path());
    let out = app(&[&home], NOW, &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "no JSON: {text}"
    );
    assert!(text.lines().count() <= 6, "short: {text}");
    assert!(text.len() < 800, "short: {} bytes: {text}", text.len());
    assert!(
        text.contains("陽性者との接触は確認されませんでした"),
        "{text}"
    );
    assert!(text.contains("2020年12月16日 12:00"), "{text}");
    assert!(text.contains("処理できなかったファイル 1件"), "{text}");
    assert!(text.contains("1.zip: 見つかりません（HTTP 404）"), "{text}");

    let en = app(&[&home], NOW, &["--lang", "en", "check"]);
    let en = String::from_utf8(en.stdout).unwrap();
    assert!(
        en.contains("No contact with a person who tested positive"),
        "{en}"
    );
    assert!(en.contains("1 file could not be processed"), "{en}");
    assert!(en.is_ascii(), "all English: {en}");

    let v = ok_json(&[&home], NOW, &["check"]);
    assert_eq!(v["contacts"], 0);
    assert_eq!(v["check"]["failed"][0]["reason"], "not found (HTTP 404)");
    assert_eq!(
        v["consultation_centre"]["name_en"],
        "the Tokyo consultation centre"
    );
}

#[test]
fn status_speaks_japanese_words_japan_time_and_the_prefecture_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let home = phone_with_local_exports(dir.path());
    let text = |args: &[&str]| {
        let out = app(&[&home], NOW, args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let s = text(&["status"]);
    assert!(s.contains("都道府県: 東京都"), "{s}");
    assert!(s.contains("現在: 2020年12月16日 12:00\n"), "{s}");
    assert!(s.contains("陽性登録: 未登録"), "{s}");
    assert!(s.contains("最終確認: まだ確認していません"), "{s}");
    assert!(s.contains("陽性者との接触: 0件"), "{s}");
    assert!(
        !s.contains("+00:00") && !s.contains("T03:00"),
        "no UTC: {s}"
    );

    // A registration the server never answered: 登録の途中, not `entered`.
    ok_json(
        &[&home],
        NOW,
        &["beacon", "--at", "2020-12-15T10:00:00+09:00"],
    );
    let out = app(
        &[&home],
        "2020-12-16T12:34:56+09:00",
        &[
            "register",
            "--symptoms",
            "yes",
            "--date",
            "2020-12-15",
            "--number",
            "12345678",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    app(&[&home], NOW, &["check"]);
    let s = text(&["status"]);
    assert!(
        s.contains("陽性登録: 登録の途中（処理番号の確認待ち）、2020年12月16日 12:34"),
        "{s}"
    );
    assert!(
        s.contains("register」をもう一度実行すると続きから再開します"),
        "{s}"
    );
    assert!(s.contains("最終確認: 2020年12月16日 12:00"), "{s}");
    for word in ["entered", "failed", "published"] {
        assert!(!s.contains(word), "{word}: {s}");
    }
    let en = text(&["--lang", "en", "status"]);
    assert!(en.contains("prefecture: Tokyo"), "{en}");
    assert!(en.contains("now: 2020-12-16 12:00 JST"), "{en}");
    assert!(en.contains("registration: in progress"), "{en}");
    assert!(en.contains("contacts: 0 contacts"), "{en}");
    assert!(en.is_ascii(), "all English: {en}");
    // The JSON keeps its machine words.
    assert_eq!(
        ok_json(&[&home], NOW, &["status"])["registration"]["stage"],
        "entered"
    );
}
