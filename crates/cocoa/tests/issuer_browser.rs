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
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "correct horse battery staple";
/// WebDriver's key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cocoa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cocoa"));
    c.env_remove("COCOA_CONFIG");
    c
}

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session.
struct Driver {
    http: reqwest::Client,
    session: String,
    /// `host:port` of chromedriver, for the cleanup in `Drop`.
    driver_addr: String,
}

impl Drop for Driver {
    /// Ends the session (and so the browser) even when the test failed:
    /// killing chromedriver alone would leave Chromium running.
    fn drop(&mut self) {
        let Some(path) = self.session.split_once("/session/").map(|(_, id)| id) else {
            return;
        };
        if let Ok(mut s) = std::net::TcpStream::connect(&self.driver_addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.driver_addr
            );
            let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new());
        }
    }
}

impl Driver {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.session);
        let mut r = self.http.request(method, &url);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "WebDriver {path}: {status} {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self
                .http
                .post(format!("{}/element", self.session))
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .unwrap();
            if r.status().is_success() {
                let v: Value = r.json().await.unwrap();
                return v["value"][ELEMENT].as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn set_value(&self, id: &str, value: &str) {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({
                "script": "document.getElementById(arguments[0]).value = arguments[1];",
                "args": [id, value]
            })),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until the page holds `text`; returns the page.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.source().await;
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "page never showed {text:?}:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, to: &Path) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        std::fs::write(to, &png).unwrap();
        if let Some(dir) = std::env::var_os("COCOA_BROWSER_ARTIFACTS") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(PathBuf::from(dir).join(to.file_name().unwrap()), &png).unwrap();
        }
    }
}

async fn start_chromedriver(profile: &Path) -> (Killed, Driver) {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Killed(child);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{base}/status")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == true
        {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--lang=ja-JP",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
    }}});
    let r: Value = http
        .post(format!("{base}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
        .to_owned();
    (
        guard,
        Driver {
            http,
            session: format!("{base}/session/{id}"),
            driver_addr: format!("127.0.0.1:{port}"),
        },
    )
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
    pages.push(d.wait_for("staff:yamada").await);
    d.goto(&format!("{base}/portal/stats")).await;
    pages.push(d.wait_for("<svg").await);
    d.screenshot(&dir.path().join("stats.png")).await;
    d.goto(&format!("{base}/portal/cases/1?tab=id&lang=en"))
        .await;
    pages.push(d.wait_for("it cannot be reissued").await);
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
    for n in [&old, &new] {
        for (i, p) in pages.iter().enumerate() {
            assert!(!p.contains(n.as_str()), "the number is on page {i}");
        }
        assert!(!contains(&logs, n), "the number is in the log");
        assert!(!contains(&db, n), "the number is in the database files");
    }
}
