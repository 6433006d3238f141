//! The phone UI through its router: status codes, messages, and that bad
//! input stores nothing.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, TimeZone, Utc};
use device::{Phone, Settings};
use en_protocol::time::FixedClock;
use phone_ui::Config;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use tower::ServiceExt;

/// 2026-12-03 12:00 JST.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 3, 0, 0).unwrap()
}

fn new_phone(home: &Path, clock: Arc<FixedClock>) {
    Phone::init(
        home,
        Settings {
            prefecture: Some("13".into()),
            ..Settings::default()
        },
        clock,
        Box::new(ChaCha20Rng::seed_from_u64(7)),
    )
    .unwrap();
}

struct Ui {
    router: Router,
    home: tempfile::TempDir,
    clock: Arc<FixedClock>,
}

impl Ui {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(now()));
        new_phone(home.path(), clock.clone());
        let router = phone_ui::router(Config {
            homes: vec![home.path().to_owned()],
            clock: clock.clone(),
        })
        .unwrap();
        Self {
            router,
            home,
            clock,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, String, axum::http::HeaderMap) {
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap(), headers)
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let (s, b, _) = self
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        (s, b)
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let (s, b, _) = self
            .send(
                Request::post(path)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        (s, b)
    }

    /// The page's form token.
    async fn form_token(&self) -> String {
        let (_, page) = self.get("/p/0/register").await;
        hidden(&page, "form")
    }

    fn registration(&self) -> Option<device::register::RegistrationSummary> {
        Phone::open(
            self.home.path(),
            self.clock.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(8)),
        )
        .unwrap()
        .registration_summary()
        .unwrap()
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("hidden field") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[tokio::test]
async fn home_says_no_check_yet_and_not_registered() {
    let ui = Ui::new();
    let (s, page) = ui.get("/p/0/").await;
    assert_eq!(s, StatusCode::OK);
    for phrase in [
        "今すぐ確認",
        "陽性情報の登録",
        "まだ接触確認をしていません",
        "まだ陽性登録をしていません",
        "陽性者との接触は確認されていません",
        "東京都",
        "lang=\"ja\"",
    ] {
        assert!(page.contains(phrase), "{phrase} missing");
    }
    // One phone: / goes to it.
    let (s, _) = ui.get("/").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, page) = ui.get("/p/1/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(page.contains("このページはありません"));
}

#[tokio::test]
async fn english_toggle_sets_a_cookie_and_pages_follow_it() {
    let ui = Ui::new();
    let (s, _, headers) = ui
        .send(Request::get("/p/0/lang/en").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(cookie.starts_with("lang=en"), "{cookie}");
    let (_, page, _) = ui
        .send(
            Request::get("/p/0/")
                .header(header::COOKIE, "lang=en")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(page.contains("Check now"), "{page}");
    assert!(page.contains("lang=\"en\""));
    assert!(!page.contains("今すぐ確認"));
}

#[tokio::test]
async fn registration_form_has_the_seeds_words_and_labelled_controls() {
    let ui = Ui::new();
    let (s, page) = ui.get("/p/0/register").await;
    assert_eq!(s, StatusCode::OK);
    for phrase in [
        "次のような症状がありますか？",
        "症状が始まった最初の日を入力してください",
        "SMSまたはメールで届いた処理番号を入力してください",
        "処理番号の取得方法",
        "placeholder=\"8桁の処理番号を入力してください\"",
        "inputmode=\"numeric\"",
        "type=\"date\"",
        "min=\"2026-11-19\"",
        "max=\"2026-12-03\"",
        "登録すると",
        "症状が始まった日または検査を受けた日の2日前以降にあなたと接触した人に通知が行きます",
        "※登録は匿名で行われ",
        "※接触した場所がどこなのか記録されたり",
        "検査日を入力してください",
        ">登録する<",
    ] {
        assert!(page.contains(phrase), "{phrase} missing");
    }
    for id in ["symptoms-yes", "symptoms-no", "date", "number"] {
        assert!(page.contains(&format!("<label for=\"{id}\"")), "label {id}");
        assert!(page.contains(&format!("id=\"{id}\"")), "control {id}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_japanese_message_and_stores_nothing() {
    let ui = Ui::new();
    let form = ui.form_token().await;
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // symptoms, date, number, code, Japanese fragment
        (
            "",
            "2026-12-01",
            "12345678",
            "symptoms_missing",
            "症状が「ある」か「ない」か",
        ),
        (
            "yes",
            "",
            "12345678",
            "date_missing",
            "日付を入力してください",
        ),
        ("yes", "2026-12-04", "12345678", "date_in_future", "日"),
        ("no", "2026-11-18", "12345678", "date_too_old", "日"),
        (
            "yes",
            "2026-12-01",
            "",
            "number_empty",
            "処理番号を入力してください",
        ),
        (
            "yes",
            "2026-12-01",
            "1234567",
            "number_length",
            "入力された番号は7桁です",
        ),
        (
            "yes",
            "2026-12-01",
            "123456789",
            "number_length",
            "入力された番号は9桁です",
        ),
        (
            "yes",
            "2026-12-01",
            "1234abcd",
            "number_character",
            "処理番号",
        ),
        ("yes", "not-a-date", "12345678", "date_malformed", "日付"),
    ];
    for (symptoms, date, number, code, ja) in cases {
        let mut fields = vec![
            ("form", form.as_str()),
            ("date", *date),
            ("number", *number),
        ];
        if !symptoms.is_empty() {
            fields.push(("symptoms", *symptoms));
        }
        let (s, page) = ui.post("/p/0/register", &fields).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{code}");
        assert!(
            page.contains(&format!("data-code=\"{code}\"")),
            "{code}: {page}"
        );
        assert!(page.contains(ja), "{code}: {ja}");
        if number.len() >= 7 {
            assert!(!page.contains(number), "{code}: the number is shown again");
        }
        // The form comes back with the answers kept (not the number).
        assert!(page.contains("id=\"register-form\""));
        assert!(ui.registration().is_none(), "{code}: something was stored");
    }
}

#[tokio::test]
async fn a_forged_or_stale_form_is_refused() {
    let ui = Ui::new();
    let (s, page) = ui
        .post(
            "/p/0/register",
            &[
                ("form", "0000"),
                ("symptoms", "yes"),
                ("date", "2026-12-01"),
                ("number", "12345678"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(page.contains("form_expired"));
    let (s, _) = ui.post("/p/0/check", &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(ui.registration().is_none());
}

#[tokio::test]
async fn full_width_number_reaches_the_confirmation_which_never_shows_it() {
    let ui = Ui::new();
    let form = ui.form_token().await;
    let (s, page) = ui
        .post(
            "/p/0/register",
            &[
                ("form", &form),
                ("symptoms", "no"),
                ("date", "2026-12-02"),
                ("number", "１２３４－５６７８"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("次の内容で登録します"));
    assert!(page.contains("検査を受けた日"));
    assert!(page.contains("2026年12月2日"));
    assert!(!page.contains("12345678") && !page.contains("１２３４"));
    assert!(!page.contains("5678"));
    // Waiting for the confirmation stores nothing.
    assert!(ui.registration().is_none());
}

#[tokio::test]
async fn installed_after_the_date_is_explained_with_faq_4_and_the_number_is_not_used() {
    let ui = Ui::new();
    let form = ui.form_token().await;
    // The phone was set up today; the date is 10 days back: no keys then.
    let (s, page) = ui
        .post(
            "/p/0/register",
            &[
                ("form", &form),
                ("symptoms", "yes"),
                ("date", "2026-11-23"),
                ("number", "1234 5678"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let pending = hidden(&page, "pending");
    let (s, page) = ui
        .post(
            "/p/0/register/confirm",
            &[("form", &form), ("pending", &pending)],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("data-code=\"no_keys_in_window\""), "{page}");
    assert!(page.contains("問4"));
    assert!(page.contains("処理番号は使われていません"));
    assert!(ui.registration().is_none());
    // The confirmation is one-time.
    let (s, page) = ui
        .post(
            "/p/0/register/confirm",
            &[("form", &form), ("pending", &pending)],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(page.contains("form_expired"));
}

#[tokio::test]
async fn no_phone_folder_is_refused_at_start() {
    let empty = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(now()));
    assert!(
        phone_ui::router(Config {
            homes: vec![],
            clock: clock.clone(),
        })
        .is_err()
    );
    let err = phone_ui::router(Config {
        homes: vec![empty.path().to_owned()],
        clock,
    })
    .unwrap_err();
    assert!(matches!(err, phone_ui::Error::Phone(_)), "{err}");
}
