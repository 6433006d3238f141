//! `cocoa app ui` as a new user starts it: two phone folders set up with
//! `cocoa app init`, the UI on a free loopback port, its URL and one line
//! per phone printed, each phone's home screen served in Japanese, and a
//! folder that is no phone refused at start.
#![allow(clippy::unwrap_used)]

mod support;

use support::{Server, get};

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
    let mut cmd = support::cocoa();
    cmd.args(["app", "--home"])
        .arg(&a)
        .arg("--home")
        .arg(&b)
        .args(["ui", "--listen", "127.0.0.1:0"]);
    let ui = Server::listen("app ui", cmd);
    let base = ui.base.clone();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let lines = ui.wait_stdout_lines(2, std::time::Duration::from_secs(10));
    for (i, home) in [&a, &b].into_iter().enumerate() {
        let url = format!("{base}/p/{i}/");
        assert!(
            lines.get(i).is_some_and(|l| l.trim().starts_with(&url) && l.contains(&*home.to_string_lossy())),
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
    let mut cmd = support::cocoa();
    cmd.args(["app", "--home"])
        .arg(&a)
        .arg("--home")
        .arg(&b)
        .args(["ui", "--listen", "127.0.0.1:0", "--check-every", "1h"])
        .arg("--outbox")
        .arg(&outbox)
        .args(["--contact", "090-1234-5001"]);
    let ui = Server::listen("app ui", cmd);
    let base = ui.base.clone();
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
