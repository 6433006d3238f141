//! The background checks and the emulator mode, through
//! `phone_ui::background_checks` (the router and the checks' future that
//! `serve` spawns): the first check at once, the next at the cadence with no
//! request asking for it; pages answer while a check hangs; the outbox's
//! messages for the phone's contact with a tappable app link; 「接触させる」
//! (bad input records nothing).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn new_phone(home: &Path, clock: Arc<FixedClock>, settings: Settings) {
    Phone::init(
        home,
        settings,
        clock,
        Box::new(ChaCha20Rng::seed_from_u64(7)),
    )
    .unwrap();
}

fn open(home: &Path, clock: Arc<FixedClock>) -> Phone {
    Phone::open(home, clock, Box::new(ChaCha20Rng::seed_from_u64(3))).unwrap()
}

async fn send(router: &Router, req: Request<Body>) -> (StatusCode, String) {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(router: &Router, path: &str) -> (StatusCode, String) {
    send(router, Request::get(path).body(Body::empty()).unwrap()).await
}

async fn post(router: &Router, path: &str, body: String) -> (StatusCode, String) {
    send(
        router,
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("hidden field") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Polls the home page until it holds `text`.
async fn home_until(router: &Router, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = get(router, "/p/0/").await;
        if page.contains(text) {
            return page;
        }
        assert!(Instant::now() < deadline, "never showed {text:?}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn checks_run_at_start_and_then_at_their_cadence_without_a_request() {
    let home = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(now()));
    // No server: every check fails at once, and says when it ran.
    new_phone(home.path(), clock.clone(), Settings::default());
    let mut config = Config::new(vec![home.path().to_owned()], clock.clone());
    config.check_every = Some(Duration::from_millis(300));
    let (router, checks) = phone_ui::background_checks(config).unwrap();
    let checks = tokio::spawn(checks);
    let page = home_until(
        &router,
        "最後の接触確認（2026年12月3日 12:00）に失敗しました",
    )
    .await;
    assert!(page.contains("cocoa app configure"), "{page}");
    assert!(page.contains("id=\"cadence\""));
    // An hour later on the phone's clock: the next scheduled check says so.
    clock.set(now() + chrono::Duration::hours(1));
    home_until(
        &router,
        "最後の接触確認（2026年12月3日 13:00）に失敗しました",
    )
    .await;
    checks.abort();
    // Without a cadence nothing checks by itself.
    let home = tempfile::tempdir().unwrap();
    new_phone(home.path(), clock.clone(), Settings::default());
    let mut config = Config::new(vec![home.path().to_owned()], clock.clone());
    config.check_every = None;
    let (router, checks) = phone_ui::background_checks(config).unwrap();
    let checks = tokio::spawn(checks);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, page) = get(&router, "/p/0/").await;
    assert!(page.contains("まだ接触確認をしていません"), "{page}");
    assert!(!page.contains("id=\"cadence\""));
    checks.abort();
    assert!(matches!(
        phone_ui::router(Config {
            check_every: Some(Duration::ZERO),
            ..Config::new(vec![home.path().to_owned()], clock)
        }),
        Err(phone_ui::Error::CheckEveryZero)
    ));
}

#[tokio::test]
async fn pages_answer_while_a_check_hangs_and_show_its_progress() {
    // A key server that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let signer = en_protocol::export::SoftwareSigner::generate(
        &mut ChaCha20Rng::seed_from_u64(1),
        en_protocol::export::SignatureInfo::new("440", "v1"),
    );
    let home = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(now()));
    new_phone(
        home.path(),
        clock.clone(),
        Settings {
            prefecture: Some("13".into()),
            server: Some(format!("http://{}/", silent.local_addr().unwrap())),
            export_public_keys: vec![signer.public_key_pem().unwrap()],
            ..Settings::default()
        },
    );
    let mut config = Config::new(vec![home.path().to_owned()], clock.clone());
    config.check_every = Some(Duration::from_secs(3600));
    let (router, checks) = phone_ui::background_checks(config).unwrap();
    let checks = tokio::spawn(checks);
    let page = home_until(&router, "id=\"checking\"").await;
    assert!(page.contains("接触確認をしています"), "{page}");
    assert!(page.contains("<progress id=\"check-progress\">"));
    assert!(page.contains("<label for=\"check-progress\">"));
    assert!(
        page.contains("http-equiv=\"refresh\""),
        "the page follows the check"
    );
    // Every page answers at once while the check waits for the server.
    for path in ["/p/0/", "/p/0/register", "/p/0/notification", "/p/0/info"] {
        let t = Instant::now();
        let (s, _) = get(&router, path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{path} waited {:?}",
            t.elapsed()
        );
    }
    // 「今すぐ確認」 during a check starts no second one and returns at once.
    let form = hidden(&get(&router, "/p/0/").await.1, "form");
    let t = Instant::now();
    let (s, _) = post(&router, "/p/0/check", format!("form={form}")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(t.elapsed() < Duration::from_secs(2));
    // A refused form is refused while a check runs, too.
    let (s, _) = post(
        &router,
        "/p/0/register",
        format!("form={form}&symptoms=yes&date=2026-12-02&number=1234567"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    checks.abort();
    drop(silent);
}

/// 「今すぐ確認」 pressed while a check runs (one that may have listed the
/// files before the newest) runs one more check after it, once.
#[tokio::test]
async fn a_press_during_a_running_check_runs_one_more_after_it() {
    // A key server whose first connection is held 1.5 s, then closed; later
    // ones are closed at once. It counts the connections (one a check).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                drop(s);
            });
        }
    });
    let signer = en_protocol::export::SoftwareSigner::generate(
        &mut ChaCha20Rng::seed_from_u64(1),
        en_protocol::export::SignatureInfo::new("440", "v1"),
    );
    let home = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(now()));
    new_phone(
        home.path(),
        clock.clone(),
        Settings {
            prefecture: Some("13".into()),
            server: Some(format!("http://{addr}/")),
            export_public_keys: vec![signer.public_key_pem().unwrap()],
            ..Settings::default()
        },
    );
    let mut config = Config::new(vec![home.path().to_owned()], clock.clone());
    config.check_every = Some(Duration::from_secs(3600));
    let (router, checks) = phone_ui::background_checks(config).unwrap();
    let checks = tokio::spawn(checks);
    home_until(&router, "id=\"checking\"").await;
    let form = hidden(&get(&router, "/p/0/").await.1, "form");
    let (s, _) = post(&router, "/p/0/check", format!("form={form}")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the press during the running check was forgotten"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once: the start's check and the one asked for, no loop.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    checks.abort();
    server.abort();
}

fn write_message(dir: &Path, name: &str, to: &str, body: &str, sent_at: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(name),
        serde_json::json!({"channel": "sms", "to": to, "body": body, "sent_at": sent_at})
            .to_string(),
    )
    .unwrap();
}

struct Two {
    router: Router,
    homes: [tempfile::TempDir; 2],
    clock: Arc<FixedClock>,
    _outbox: tempfile::TempDir,
}

fn two_phones() -> Two {
    let homes = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let clock = Arc::new(FixedClock::new(now()));
    for h in &homes {
        new_phone(
            h.path(),
            clock.clone(),
            Settings {
                prefecture: Some("13".into()),
                ..Settings::default()
            },
        );
    }
    let outbox = tempfile::tempdir().unwrap();
    let body = "【HER-SYS】接触確認アプリ（COCOA）陽性登録のための処理番号のお知らせ\n\n処理番号: 12345678\n\n次のリンクを開くと、処理番号が入力された状態でアプリが開きます。\nhttps://cocoa.example.jp/cocoa/a/?pn=0123456789ABCDEFGHJK\n";
    write_message(
        outbox.path(),
        "1-sms-a.json",
        "+81 90-1234-5001",
        body,
        "2026-12-03T02:30:00+00:00",
    );
    write_message(
        outbox.path(),
        "2-sms-b.json",
        "090-9999-0000",
        "someone else's",
        "2026-12-03T02:40:00+00:00",
    );
    std::fs::write(outbox.path().join(".3-sms-c.json.tmp"), "{").unwrap();
    let mut config = Config::new(
        homes.iter().map(|h| h.path().to_owned()).collect(),
        clock.clone(),
    );
    config.check_every = None;
    config.outbox = Some(outbox.path().to_owned());
    config.contacts = vec!["09012345001".into()];
    Two {
        router: phone_ui::router(config).unwrap(),
        homes,
        clock,
        _outbox: outbox,
    }
}

#[tokio::test]
async fn the_emulator_shows_the_phones_sms_with_a_tappable_app_link() {
    let t = two_phones();
    let (s, page) = get(&t.router, "/p/0/messages").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("処理番号: 12345678"), "{page}");
    assert!(
        page.contains("href=\"/p/0/cocoa/a/?pn=0123456789ABCDEFGHJK\""),
        "{page}"
    );
    assert!(page.contains("2026年12月3日 11:30"), "sent, JST");
    assert!(!page.contains("someone else"), "another phone's message");
    let (_, home) = get(&t.router, "/p/0/").await;
    assert!(home.contains("href=\"/p/0/messages\""));
    // The link opens this phone's registration with the code held.
    let res = t
        .router
        .clone()
        .oneshot(
            Request::get("/p/0/cocoa/a/?pn=0123456789ABCDEFGHJK")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The second phone has no contact: no messages screen.
    let (s, _) = get(&t.router, "/p/1/messages").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, home) = get(&t.router, "/p/1/").await;
    assert!(!home.contains("/p/1/messages"));
    assert!(matches!(
        phone_ui::router(Config {
            contacts: vec!["a@example.jp".into(); 3],
            ..Config::new(
                t.homes.iter().map(|h| h.path().to_owned()).collect(),
                t.clock.clone()
            )
        }),
        Err(phone_ui::Error::TooManyContacts {
            contacts: 3,
            homes: 2
        })
    ));
}

#[tokio::test]
async fn putting_two_phones_together_records_the_meeting_and_bad_input_nothing() {
    let t = two_phones();
    let (s, page) = get(&t.router, "/meet").await;
    assert_eq!(s, StatusCode::OK);
    for id in ["meet-a", "meet-b", "meet-minutes", "meet-distance"] {
        assert!(page.contains(&format!("<label for=\"{id}\"")), "label {id}");
    }
    let form = hidden(&page, "form");
    let sightings = |i: usize| {
        open(t.homes[i].path(), t.clock.clone())
            .status()
            .unwrap()
            .sightings
    };
    for (a, b, minutes, distance, code) in [
        ("0", "0", "20", "1", "meet_invalid"),
        ("0", "5", "20", "1", "phone_invalid"),
        ("x", "1", "20", "1", "phone_invalid"),
        ("0", "1", "abc", "1", "minutes_invalid"),
        ("0", "1", "-3", "1", "minutes_invalid"),
        ("0", "1", "0", "1", "meet_invalid"),
        ("0", "1", "20", "near", "distance_invalid"),
        ("0", "1", "20", "0", "meet_invalid"),
        ("0", "1", "20", "NaN", "distance_invalid"),
    ] {
        let (s, page) = post(
            &t.router,
            "/meet",
            format!("form={form}&a={a}&b={b}&minutes={minutes}&distance={distance}"),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{code}");
        assert!(
            page.contains(&format!("data-code=\"{code}\"")),
            "{code}: {page}"
        );
        assert_eq!((sightings(0), sightings(1)), (0, 0), "{code}: recorded");
    }
    let (s, _) = post(
        &t.router,
        "/meet",
        "form=0&a=0&b=1&minutes=20&distance=1".into(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, page) = post(
        &t.router,
        "/meet",
        format!("form={form}&a=0&b=1&minutes=20&distance=1"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"meet-done\""));
    assert!(page.contains("20分間"));
    assert_eq!(
        (sightings(0), sightings(1)),
        (5, 5),
        "20 minutes: 5 scans each"
    );
}
