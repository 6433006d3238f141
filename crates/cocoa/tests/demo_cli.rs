//! `cocoa demo` (the whole story, narrated, exits 0 only when every step
//! held) and `cocoa serve --demo` (banner, idempotent seed, a working
//! portal login), through the real binary.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;
use support::{Killed, Server, cocoa};

#[test]
fn the_demo_tells_the_whole_story_and_exits_0() {
    let out = cocoa().arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains('✗'), "{text}");
    for key in [
        // staff issue a number, without seeing it
        "「処理番号発行」を押す",
        "Health-centre staff log in to the portal and press 処理番号発行",
        "処理番号は職員の画面に表示されていない",
        // the SMS lands in the outbox
        "A の携帯電話に HER-SYS から SMS が届く",
        "the text holds an 8-digit processing number",
        // A registers
        "verify → certificate → publish done",
        "通知対象は 2020-12-12 00:00 JST 以降の接触",
        // B is notified with the date and whom to call; C is not
        "陽性者との接触 1 件",
        "date [\"2020-12-12\"]",
        "1 contact with a positive case",
        "whom to call: the Tokyo consultation centre",
        "東京都の受診・相談センター",
        "C's app checks for exposure",
        "0 contacts (after checking the same files)",
        "✓ 全ての手順が期待どおりに進みました。",
        "✓ Every step happened as it should.",
        // its files are in a temporary folder, and it says so
        "一時フォルダ",
        "デモの終了時に削除されます。残すには --data DIR を指定してください。",
        "deleted when the demo exits; keep them with --data DIR",
        "(a temporary folder, deleted at exit)",
    ] {
        assert!(text.contains(key), "missing {key:?} in:\n{text}");
    }

    let en = cocoa().args(["demo", "--lang", "en"]).output().unwrap();
    let en_text = String::from_utf8_lossy(&en.stdout);
    assert!(en.status.success());
    assert!(en_text.contains("B's app checks for exposure"));
    assert!(!en_text.contains("B のアプリが接触を確認する"), "{en_text}");
}

#[test]
fn the_demo_as_json_lists_every_step_and_keeps_its_files_with_data() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("story");
    let out = cocoa()
        .args(["demo", "--json", "--data"])
        .arg(&keep)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let steps = v["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "deploy",
            "phones",
            "meet_c",
            "meet_b",
            "case",
            "issue",
            "sms",
            "register",
            "export",
            "notified",
            "not_notified",
            "used"
        ]
    );
    for s in steps {
        assert_eq!(s["ok"], true, "{s}");
        assert!(!s["checks"].as_array().unwrap().is_empty(), "{s}");
        assert!(s["ja"].is_string() && s["en"].is_string());
    }
    // The deployment's files stay where asked; the SMS is there.
    let outbox = keep.join("data").join("outbox");
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
    assert!(keep.join("phones").join("b").exists());
    // A folder that is not empty is refused (bad input).
    let again = cocoa()
        .args(["demo", "--data"])
        .arg(&keep)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
}

/// Starts `cocoa serve --demo` in `cwd`; returns the server and its banner.
fn serve_demo(cwd: &Path) -> (Killed, String) {
    let mut child = cocoa()
        .current_dir(cwd)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = Killed(child);
    let mut banner = String::new();
    let mut rules = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("=====") {
            rules += 1;
            if rules == 2 {
                break;
            }
        }
    }
    assert_eq!(rules, 2, "{banner}");
    (server, banner)
}

/// The value after `label` on its line of the banner.
fn field(banner: &str, label: &str) -> String {
    banner
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {banner}"))
        .trim()
        .to_owned()
}

fn cookie_header(jar: &BTreeMap<String, String>) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn keep_cookies(jar: &mut BTreeMap<String, String>, resp: &reqwest::Response) {
    for v in resp.headers().get_all("set-cookie") {
        let kv = v.to_str().unwrap().split(';').next().unwrap();
        let (k, val) = kv.split_once('=').unwrap();
        jar.insert(k.to_owned(), val.to_owned());
    }
}

/// Logs in to the portal; returns the case list page.
async fn login_and_list(portal: &str, login: &str, password: &str) -> String {
    let base = portal.trim_end_matches("/portal/");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar = BTreeMap::new();
    let page = http
        .get(format!("{base}/portal/login"))
        .send()
        .await
        .unwrap();
    keep_cookies(&mut jar, &page);
    let html = page.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let resp = http
        .post(format!("{base}/portal/login"))
        .header("cookie", cookie_header(&jar))
        .form(&[("login", login), ("password", password), ("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/portal/cases");
    keep_cookies(&mut jar, &resp);
    let list = http
        .get(format!("{base}/portal/cases"))
        .header("cookie", cookie_header(&jar))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    list.text().await.unwrap()
}

#[test]
fn serve_demo_prints_the_banner_seeds_once_and_the_login_works() {
    let dir = tempfile::tempdir().unwrap();
    let (server, first) = serve_demo(dir.path());
    for s in [
        "ローカルでのデモ専用です",
        "For local demos only",
        "Demo data created.",
        "cocoa app --home ./phones/a",
        "cocoa app meet --home ./phones/a --home ./phones/b",
        "register --symptoms yes",
        "cocoa keyserver --data ./data export-now --min-age 0s",
        "cocoa app --home ./phones/b check",
        "/processing-number",
    ] {
        assert!(first.contains(s), "missing {s:?} in:\n{first}");
    }
    let portal = field(&first, "ポータル / Staff portal:");
    let login = field(&first, "ログイン / Login:");
    let password = field(&first, "パスワード / Password:");
    let device = field(&first, "端末API鍵 / Device API key:");
    let admin = field(&first, "機械API鍵 / Machine API key:");
    assert!(portal.starts_with("http://127.0.0.1:") && portal.ends_with("/portal/"));
    assert_eq!(login, "demo");
    assert!(password.len() >= 12, "{password}");
    assert!(device.starts_with("device_") && admin.starts_with("admin_"));
    assert_eq!(field(&first, "確定患者 / Confirmed cases:"), "3");
    let data = dir.path().join("data");
    assert!(data.join("export-public-key.pem").exists());
    assert!(data.join("issuer.sqlite3").exists());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let list = rt.block_on(login_and_list(&portal, &login, &password));
    assert_eq!(list.matches("横口 健太").count(), 1, "{list}");
    drop(server);

    // A second start finds everything: nothing is made twice, same login and keys.
    let (_server, second) = serve_demo(dir.path());
    assert!(second.contains("nothing created twice"), "{second}");
    assert_eq!(field(&second, "確定患者 / Confirmed cases:"), "3");
    assert_eq!(field(&second, "パスワード / Password:"), password);
    assert_eq!(field(&second, "端末API鍵 / Device API key:"), device);
    assert_eq!(field(&second, "機械API鍵 / Machine API key:"), admin);
    assert!(second.contains("(id 1,"), "{second}");
    let portal2 = field(&second, "ポータル / Staff portal:");
    let list = rt.block_on(login_and_list(&portal2, &login, &password));
    for name in ["横口 健太", "港 花子", "芝 一郎"] {
        assert_eq!(list.matches(name).count(), 1, "{name}: {list}");
    }
}

/// The commands of the banner's "Next commands" part, as a person would
/// paste them: comments and blank lines dropped, `\` continuations joined.
fn banner_commands(banner: &str) -> Vec<String> {
    let start = banner
        .find("Next commands to try (paste them in order, in this folder):")
        .expect("the banner lists the next commands");
    let end = banner
        .find("物語全体を1コマンドで")
        .expect("end of the commands");
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in banner[start..end].lines().skip(1) {
        let t = line.trim();
        if pending.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(t);
                out.push(std::mem::take(&mut pending));
            }
        }
    }
    out
}

#[test]
fn every_command_the_banner_prints_works_when_pasted_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, banner) = serve_demo(dir.path());
    // The banner says where the binary is and how to put it on the PATH.
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_cocoa"));
    assert!(
        banner.contains(&exe.display().to_string()),
        "the binary's path: {banner}"
    );
    assert!(
        banner.contains("cargo install --path crates/cocoa"),
        "{banner}"
    );
    assert!(banner.contains("target/release/cocoa"), "{banner}");
    // The outbox the banner lists exists before the first SMS.
    let outbox = dir.path().join("data").join("outbox");
    assert!(outbox.is_dir(), "./data/outbox exists at start");

    let commands = banner_commands(&banner);
    let starts: Vec<&str> = commands
        .iter()
        .map(|c| c.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "for", "cocoa", "cocoa", "curl", "ls", "cocoa", "cocoa", "cocoa", "cocoa"
        ],
        "{commands:#?}"
    );
    let path = format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut outputs = Vec::new();
    for command in &commands {
        let out = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("COCOA_CONFIG")
            .env_remove("COCOA_ISSUER_DATABASE_URL")
            .env_remove("COCOA_KEYSERVER_DATABASE_URL")
            .env("COCOA_LOG", "warn")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "pasted {command:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(stdout);
    }
    // The curl issued a number (not missing_idempotency_key), the SMS is in
    // the outbox, A registered with its link, B has 1 contact and C none.
    assert!(outputs[3].contains(r#""status":"sent""#), "{}", outputs[3]);
    assert!(
        outputs[4].contains("-sms-"),
        "ls shows the SMS: {}",
        outputs[4]
    );
    assert!(
        outputs[5].contains("陽性情報の登録が完了しました"),
        "{}",
        outputs[5]
    );
    assert!(
        outputs[7].contains("陽性者との接触が1件ありました"),
        "{}",
        outputs[7]
    );
    assert!(
        outputs[8].contains("陽性者との接触は確認されませんでした"),
        "{}",
        outputs[8]
    );

    // The phones' screens, as the banner says to open them (on a free port
    // instead of 8091): A shows the SMS it received, B its contact.
    let ui = banner
        .lines()
        .find(|l| l.starts_with("cocoa app ui "))
        .expect("the banner says how to open the phones' screens")
        .replace(
            "--listen 127.0.0.1:8091",
            "--listen 127.0.0.1:0 --check-every 0s",
        );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("exec {ui}"))
        .current_dir(dir.path())
        .env("PATH", &path)
        .env("COCOA_LOG", "warn");
    let ui = Server::listen("app ui", cmd);
    let base = ui.addr.to_string();
    let get = |path: &str| {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(&base).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: {base}\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let messages = get("/p/0/messages");
    assert!(
        messages.contains("cocoa/a/?pn="),
        "A's SMS with its link: {messages}"
    );
    let home_b = get("/p/1/");
    assert!(home_b.contains("1"), "{home_b}");
    assert!(
        home_b.contains("受診・相談センター"),
        "B was notified: {home_b}"
    );
}

#[test]
fn a_second_serve_on_a_busy_port_says_another_server_runs_and_how_to_choose_listen() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, banner) = serve_demo(dir.path());
    let portal = field(&banner, "ポータル / Staff portal:");
    let addr = portal
        .trim_start_matches("http://")
        .trim_end_matches("/portal/")
        .to_owned();
    let other = tempfile::tempdir().unwrap();
    let out = cocoa()
        .current_dir(other.path())
        .args(["serve", "--demo", "--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!("{addr} はすでに別のサーバーが使っています")),
        "{e}"
    );
    assert!(e.contains("--listen"), "{e}");
    assert!(
        e.contains(&format!("Another server is already listening on {addr}")),
        "{e}"
    );
    assert!(!e.contains("Address already in use"), "{e}");
}

#[test]
fn management_commands_refuse_a_missing_data_folder_unless_asked_to_create_it() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["keyserver", "export-now", "--min-age", "0s"][..],
        &["keyserver", "export-public-key"][..],
        &["issuer", "create-api-key", "--kind", "device"][..],
        &["issuer", "public-key"][..],
    ] {
        let out = cocoa().current_dir(dir.path()).args(args).output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {e}");
        assert!(
            e.contains("データフォルダ ./data がありません"),
            "{args:?}: {e}"
        );
        assert!(e.contains("--create-data"), "{e}");
        assert!(e.contains("The data folder ./data does not exist"), "{e}");
        assert!(out.stdout.is_empty(), "no success reported: {args:?}");
        assert!(
            !dir.path().join("data").exists(),
            "nothing created: {args:?}"
        );
    }
    let out = cocoa()
        .current_dir(dir.path())
        .args([
            "keyserver",
            "export-now",
            "--min-age",
            "0s",
            "--create-data",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data").is_dir());
    // Once it exists, no flag is needed.
    let out = cocoa()
        .current_dir(dir.path())
        .args(["keyserver", "export-public-key"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
