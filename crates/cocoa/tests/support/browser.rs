//! The headless Chromium both browser tests drive: chromedriver on a free
//! port, one WebDriver session, and the few commands the tests use (Debian's
//! `chromium` and `chromium-driver`, as `scripts/test` installs them).
//! Used by `issuer_browser.rs` and `phone_ui_browser.rs` as `support::browser`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Killed, free_port};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// WebDriver's key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session.
pub struct Driver {
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
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
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

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn find(&self, css: &str) -> String {
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

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
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

    /// Chooses the local file `path` in the file input `css`.
    pub async fn choose_file(&self, css: &str, path: &Path) {
        let e = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": path.to_str().unwrap() })),
        )
        .await;
    }

    pub async fn set_value(&self, id: &str, value: &str) {
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

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits until the page holds `text`; returns the page.
    pub async fn wait_for(&self, text: &str) -> String {
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

    pub async fn screenshot(&self, to: &Path) {
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

pub async fn start_chromedriver(profile: &Path) -> (Killed, Driver) {
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

impl Driver {
    pub async fn script(&self, js: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
        .await
    }

    /// Resizes the viewport to `width` × `height` and answers the page's
    /// (scrollWidth, innerWidth): a page that scrolls sideways has the
    /// first larger.
    pub async fn widths_at(&self, width: u32, height: u32) -> (u64, u64) {
        self.resize(width, height).await;
        let dims = self
            .script("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        (
            dims[0].as_u64().expect("scrollWidth"),
            dims[1].as_u64().expect("innerWidth"),
        )
    }

    /// The viewport of a phone (mobile) or a desktop, through the DevTools
    /// protocol (a headless window cannot be made as narrow as a phone).
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({
                "cmd": "Emulation.setDeviceMetricsOverride",
                "params": {
                    "width": width,
                    "height": height,
                    "deviceScaleFactor": 1,
                    "mobile": width < 600
                }
            })),
        )
        .await;
    }
}
