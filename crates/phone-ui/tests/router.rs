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
            check_every: None,
            ..Config::new(vec![home.path().to_owned()], clock.clone())
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
    assert!(phone_ui::router(Config::new(vec![], clock.clone())).is_err());
    let err = phone_ui::router(Config::new(vec![empty.path().to_owned()], clock)).unwrap_err();
    assert!(matches!(err, phone_ui::Error::Phone(_)), "{err}");
}

impl Ui {
    fn phone(&self) -> Phone {
        Phone::open(
            self.home.path(),
            self.clock.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(9)),
        )
        .unwrap()
    }

    async fn get_headers(&self, path: &str) -> (StatusCode, String, axum::http::HeaderMap) {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    /// A contact on 2026-12-02: what a check that matched a key keeps
    /// (five scans at 50 dB, 240 s each: COCOA's day rule is met).
    fn add_contact(&self) {
        use en_protocol::exposure_configuration::{
            ExposureWindow, Infectiousness, MILLIS_PER_DAY, ReportType, ScanInstance,
        };
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let windows = vec![ExposureWindow {
            date_millis_since_epoch: day.num_days() * MILLIS_PER_DAY,
            report_type: ReportType::ConfirmedTest,
            infectiousness: Infectiousness::Standard,
            calibration_confidence: 0,
            scan_instances: vec![
                ScanInstance {
                    typical_attenuation_db: 50,
                    min_attenuation_db: 50,
                    seconds_since_last_scan: 240,
                };
                5
            ],
        }];
        let mut phone = self.phone();
        phone
            .store_mut()
            .record_file(
                "http://ks.example/exports/1.zip",
                now().timestamp(),
                1,
                &[device::store::StoredExposure {
                    key_id: vec![1; 16],
                    report_type: 1,
                    windows_json: serde_json::to_string(&windows).unwrap(),
                    last_day: "2026-12-02".into(),
                }],
                &[],
            )
            .unwrap();
        assert_eq!(phone.status().unwrap().contacts, 1);
    }
}

fn location(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_app_link_opens_the_registration_with_the_number_filled_in_and_never_shown() {
    let ui = Ui::new();
    let (s, _, headers) = ui
        .get_headers("/cocoa/a/?pn=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94-5678")
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let to = location(&headers);
    assert!(to.starts_with("/p/0/register?link="), "{to}");
    assert!(!to.contains("5678"), "the number left in the address: {to}");
    let (s, page) = ui.get(&to).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("id=\"number-from-link\""), "{page}");
    assert!(page.contains("SMSのリンクから処理番号が入力されています"));
    assert!(!page.contains("5678") && !page.contains("１２３４"));
    assert!(!page.contains("id=\"number\""), "no number to type");
    let link = hidden(&page, "link");
    let form = hidden(&page, "form");
    // A refused form keeps the link (the number is still not typed).
    let (s, page) = ui
        .post(
            "/p/0/register",
            &[("form", &form), ("link", &link), ("date", "2026-12-02")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("data-code=\"symptoms_missing\""));
    assert!(page.contains("id=\"number-from-link\""));
    // Registering needs no typing of the number.
    let (s, page) = ui
        .post(
            "/p/0/register",
            &[
                ("form", &form),
                ("link", &link),
                ("symptoms", "no"),
                ("date", "2026-12-02"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("次の内容で登録します"));
    assert!(!page.contains("5678"));
    assert!(ui.registration().is_none());
    // The link's number moved to the confirmation: the token is spent.
    let (s, page) = ui
        .post(
            "/p/0/register",
            &[
                ("form", &form),
                ("link", &link),
                ("symptoms", "no"),
                ("date", "2026-12-02"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("data-code=\"link_expired\""), "{page}");
    assert!(page.contains("もう一度SMSまたはメールのリンクを開くか"));
    assert!(
        page.contains("id=\"number\""),
        "the number can be typed now"
    );
    // The phone-specific path and the 20-symbol code work too.
    let (s, _, headers) = ui
        .get_headers("/p/0/cocoa/a/?pn=0123456789abcdefghjk")
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(location(&headers).starts_with("/p/0/register?link="));
}

#[tokio::test]
async fn a_garbage_app_link_gets_a_clear_message_and_keeps_nothing() {
    let ui = Ui::new();
    for path in [
        "/cocoa/a/?pn=abc",
        "/cocoa/a/?pn=1234567",
        "/cocoa/a/?pn=123456789",
        "/cocoa/a/?pn=%3Cscript%3E",
        "/cocoa/a/",
        "/cocoa/a/?pn=12345678&pn=12345678",
        "/p/0/cocoa/a/?pn=",
    ] {
        let (s, page) = ui.get(path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.contains("data-code=\"link_malformed\""), "{path}");
        assert!(
            page.contains("このリンクは処理番号のリンクではありません"),
            "{path}"
        );
        assert!(page.contains("href=\"/p/0/register\""), "{path}: next step");
        assert!(!page.contains("<script>"), "{path}: escaped");
    }
    let (s, page) = ui.get("/p/0/register?link=0123").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("data-code=\"link_expired\""));
    assert!(page.contains("id=\"number\""));
    let (s, _) = ui.get("/p/3/cocoa/a/?pn=12345678").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(ui.registration().is_none());
}

#[tokio::test]
async fn notification_shows_count_japan_dates_and_the_prefectures_centre_never_the_time() {
    let ui = Ui::new();
    let (s, page) = ui.get("/p/0/notification").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("data-contacts=\"0\""));
    assert!(page.contains("東京都の受診・相談センター"));
    assert!(page.contains("href=\"tel:0120565653\""), "national line");
    assert!(page.contains("9:00～21:00"));
    assert!(page.contains("id=\"centre-unknown\""));
    ui.add_contact();
    let (s, page) = ui.get("/p/0/notification").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("data-contacts=\"1\""), "{page}");
    // The date and how long (5 scans of 240 s), never the time of day.
    assert!(
        page.contains("<li><span class=\"contact-date\">2026年12月2日</span> <span class=\"contact-minutes\">約20分</span></li>"),
        "{page}"
    );
    let listed = page
        .split("id=\"notification\"")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap();
    assert!(
        !listed.chars().collect::<Vec<_>>().windows(3).any(|w| {
            w[0].is_ascii_digit() && (w[1] == ':' || w[1] == '時') && w[2].is_ascii_digit()
        }),
        "no time of day in the notification: {listed}"
    );
    assert!(page.contains("症状の有無にかかわらず"));
    assert!(page.contains("接触の時刻や場所、相手が誰かは通知されません"));
    // The home screen says it and names whom to call.
    let (_, home) = ui.get("/p/0/").await;
    assert!(home.contains("<li>2026年12月2日</li>"));
    assert!(home.contains("id=\"home-centre\""));
    assert!(home.contains("東京都の受診・相談センター"));
    assert!(home.contains("href=\"/p/0/notification\""));
    // A centre list from the health authority: tel: link, URL and hours;
    // a URL that is not http(s) is not linked.
    ui.phone()
        .set_consultation_centres(&[device::prefecture::CentreOverride {
            prefecture: "13".into(),
            name: "東京都発熱相談センター".into(),
            name_en: None,
            phone: Some("03-5320-4592".into()),
            url: Some("https://www.fukushihoken.metro.tokyo.lg.jp/".into()),
            hours: Some("24時間（土日祝含む）".into()),
        }])
        .unwrap();
    let (_, page) = ui.get("/p/0/notification").await;
    assert!(page.contains("東京都発熱相談センター"));
    assert!(page.contains("href=\"tel:0353204592\">03-5320-4592</a>"));
    assert!(page.contains("href=\"https://www.fukushihoken.metro.tokyo.lg.jp/\""));
    assert!(page.contains("24時間（土日祝含む）"));
    assert!(!page.contains("id=\"centre-unknown\""));
    ui.phone()
        .set_consultation_centres(&[device::prefecture::CentreOverride {
            prefecture: "13".into(),
            name: "X".into(),
            name_en: None,
            phone: None,
            url: Some("javascript:alert(1)".into()),
            hours: None,
        }])
        .unwrap();
    let (_, page) = ui.get("/p/0/notification").await;
    assert!(!page.contains("javascript:"), "{page}");
    // English: the centre's name in English, no Japanese name mixed in.
    ui.phone().set_consultation_centres(&[]).unwrap();
    let (_, page, _) = ui
        .send(
            Request::get("/p/0/notification")
                .header(header::COOKIE, "lang=en")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(page.contains("The Tokyo consultation centre"), "{page}");
    assert!(page.contains("2026-12-02"));
    assert!(page.contains("about 20 minutes"), "{page}");
    assert!(!page.contains("受診・相談センター"));
}

#[tokio::test]
async fn without_a_prefecture_the_national_line_is_given() {
    let ui = Ui::new();
    let mut phone = ui.phone();
    let mut s = phone.settings().clone();
    s.prefecture = None;
    phone.update_settings(s).unwrap();
    drop(phone);
    let (_, page) = ui.get("/p/0/notification").await;
    assert!(page.contains("id=\"no-prefecture\""));
    assert!(page.contains("厚生労働省新型コロナウイルス関連電話相談窓口"));
    assert!(page.contains("href=\"tel:0120565653\""));
}

#[tokio::test]
async fn information_has_the_faq_privacy_and_labelled_settings() {
    let ui = Ui::new();
    let (s, page) = ui.get("/p/0/info").await;
    assert_eq!(s, StatusCode::OK);
    for phrase in [
        "問1 新型コロナウイルス感染症の陽性者と診断されましたが",
        "問2 アプリに陽性である旨の登録をした場合",
        "問3 新型コロナウイルス感染症陽性と判明した場合",
        "問4 接触確認アプリをまだ利用していません",
        "陽性となった旨の登録や過去に接触した可能性のある方への通知を行うことはできません",
        "※登録は匿名で行われ",
        "<option value=\"13\" selected>東京都</option>",
        "すべてのデータを削除",
        // Nothing served yet: COCOA's built-in values.
        "リスク判定の設定: 内蔵（COCOA既定値）",
    ] {
        assert!(page.contains(phrase), "{phrase} missing");
    }
    for id in ["prefecture", "lang"] {
        assert!(page.contains(&format!("<label for=\"{id}\"")), "label {id}");
        assert!(page.contains(&format!("id=\"{id}\"")), "control {id}");
    }
}

#[tokio::test]
async fn settings_change_through_the_device_and_bad_values_change_nothing() {
    let ui = Ui::new();
    let form = ui.form_token().await;
    for (pref, lang, code, ja) in [
        ("99", "ja", "unknown_prefecture", "都道府県"),
        ("Atlantis", "ja", "unknown_prefecture", "都道府県"),
        ("27", "fr", "lang_invalid", "言語は"),
        ("27", "", "lang_invalid", "言語は"),
    ] {
        let (s, page) = ui
            .post(
                "/p/0/settings",
                &[("form", &form), ("prefecture", pref), ("lang", lang)],
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{pref} {lang}");
        assert!(page.contains(&format!("data-code=\"{code}\"")), "{page}");
        assert!(page.contains(ja));
        let settings = ui.phone().settings().clone();
        assert_eq!(settings.prefecture.as_deref(), Some("13"));
        assert_eq!(settings.lang, device::Lang::Ja);
    }
    let (s, _) = ui
        .post(
            "/p/0/settings",
            &[("form", "0"), ("prefecture", "27"), ("lang", "en")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(ui.phone().settings().prefecture.as_deref(), Some("13"));
    let (s, _, headers) = ui
        .send(
            Request::post("/p/0/settings")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("form={form}&prefecture=27&lang=en")))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/p/0/info?saved=1");
    assert!(
        headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("lang=en")
    );
    let settings = ui.phone().settings().clone();
    assert_eq!(settings.prefecture.as_deref(), Some("27"));
    assert_eq!(settings.lang, device::Lang::En);
    // Without the cookie, the phone's language setting is used.
    let (_, page) = ui.get("/p/0/info?saved=1").await;
    assert!(page.contains("The settings were saved."), "{page}");
    assert!(page.contains("<option value=\"27\" selected>Osaka</option>"));
    let (_, page) = ui.get("/p/0/notification").await;
    assert!(page.contains("The Osaka consultation centre"));
}

#[tokio::test]
async fn deleting_all_data_asks_first_then_forgets_everything_but_the_settings() {
    let ui = Ui::new();
    ui.add_contact();
    let keys_before = ui.phone().keys().unwrap();
    let form = ui.form_token().await;
    let (s, page) = ui.post("/p/0/erase", &[("form", &form)]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("すべてのデータを削除しますか？"));
    assert!(page.contains("id=\"erase-confirm\""));
    assert_eq!(
        ui.phone().status().unwrap().contacts,
        1,
        "asked, not deleted"
    );
    let (s, _) = ui.post("/p/0/erase/confirm", &[("form", "0")]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(ui.phone().status().unwrap().contacts, 1);
    let (s, page) = ui.post("/p/0/erase/confirm", &[("form", &form)]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("data-code=\"erased\""));
    let phone = ui.phone();
    let status = phone.status().unwrap();
    assert_eq!(
        (status.contacts, status.sightings, status.files_processed),
        (0, 0, 0)
    );
    assert_eq!(status.prefecture.as_deref(), Some("13"));
    let keys = phone.keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_ne!(keys, keys_before, "a new key");
    let (_, home) = ui.get("/p/0/").await;
    assert!(home.contains("陽性者との接触は確認されていません"));
}
