//! `cocoa app ui` as a new user starts it: two phone folders set up with
//! `cocoa app init`, the UI on a free loopback port, its URL and one line
//! per phone printed, each phone's home screen served in Japanese, and a
//! folder that is no phone refused at start.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One GET: status and body.
fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::get(url).await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    })
}

#[test]
fn app_ui_serves_every_phone_folder_and_prints_their_urls() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for home in [&a, &b] {
        let out = support::cocoa()
            .args(["app", "--home"])
            .arg(home)
            .args(["init", "--prefecture", "13"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut child = Killed(
        support::cocoa()
            .args(["app", "--home"])
            .arg(&a)
            .arg("--home")
            .arg(&b)
            .args(["ui", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(line.trim().to_owned());
    }
    let base = lines[0]
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line {lines:?}"))
        .trim_end_matches('/')
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    for (i, home) in [&a, &b].into_iter().enumerate() {
        let url = format!("{base}/p/{i}/");
        assert!(
            lines[i + 1].starts_with(&url) && lines[i + 1].contains(&*home.to_string_lossy()),
            "{lines:?}"
        );
        let (status, html) = get(&url);
        assert_eq!(status, 200, "{url}");
        assert!(html.contains("陽性情報の登録"), "{html}");
        assert!(html.contains("今すぐ確認"), "{html}");
    }
    assert_eq!(get(&format!("{base}/p/2/")).0, 404);
}

#[test]
fn app_ui_refuses_a_folder_that_is_no_phone() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::cocoa()
        .args(["app", "--home"])
        .arg(dir.path().join("nothing-here"))
        .args(["ui", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().count() == 1, "one line: {err}");
    assert!(
        err.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
        "a Japanese message: {err}"
    );
}

#[test]
fn app_ui_checks_in_the_background_and_shows_the_outbox_of_each_phone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for home in [&a, &b] {
        let out = support::cocoa()
            .args(["app", "--home"])
            .arg(home)
            .args(["init", "--prefecture", "13"])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    // --contact needs --outbox; a bad interval is refused.
    for extra in [
        &["--contact", "090-1234-5001"][..],
        &["--check-every", "soon"][..],
    ] {
        let out = support::cocoa()
            .args(["app", "--home"])
            .arg(&a)
            .args(["ui", "--listen", "127.0.0.1:0"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
    }
    let outbox = dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(
        outbox.join("1-sms-x.json"),
        r#"{"channel":"sms","to":"09012345001","body":"処理番号: 12345678\nhttps://cocoa.example.jp/cocoa/a/?pn=12345678","sent_at":"2026-12-03T02:30:00+00:00"}"#,
    )
    .unwrap();
    let mut child = Killed(
        support::cocoa()
            .args(["app", "--home"])
            .arg(&a)
            .arg("--home")
            .arg(&b)
            .args(["ui", "--listen", "127.0.0.1:0", "--check-every", "1h"])
            .arg("--outbox")
            .arg(&outbox)
            .args(["--contact", "090-1234-5001"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Keep reading stdout (a closed pipe would end the server at its next line).
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    // The check at start ran (no server: it failed, and the home says so).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let html = loop {
        let (_, html) = get(&format!("{base}/p/0/"));
        if html.contains("id=\"check-warning\"") && html.contains("失敗しました") {
            break html;
        }
        assert!(std::time::Instant::now() < deadline, "{html}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(html.contains("1時間ごとに自動で接触確認をします"), "{html}");
    let (status, html) = get(&format!("{base}/p/0/messages"));
    assert_eq!(status, 200);
    assert!(
        html.contains("href=\"/p/0/cocoa/a/?pn=12345678\""),
        "{html}"
    );
    assert_eq!(get(&format!("{base}/p/1/messages")).0, 404);
}
