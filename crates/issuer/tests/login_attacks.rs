//! Attacks on the staff login through the real router (issue 12, findings
//! 4, 5, 6 and 8): bursts of simultaneous logins released together by a
//! barrier, bounded and on loopback, on every backend.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use issuer::domain::model::Role;

const PASSWORD: &str = "correct horse battery staple";

/// A minimal browser: keeps cookies, follows no redirects, and can say it
/// comes through the trusted proxy from another address.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    forwarded_for: Option<String>,
}

#[derive(Debug)]
struct Page {
    status: u16,
    location: String,
    retry_after: Option<String>,
    body: String,
}

impl Browser {
    fn new(h: &Harness) -> Self {
        Self {
            base: h.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            forwarded_for: None,
        }
    }

    /// A browser whose requests come from `addr` (through the trusted proxy).
    fn from(h: &Harness, addr: &str) -> Self {
        let mut b = Self::new(h);
        b.forwarded_for = Some(addr.to_owned());
        b
    }

    async fn send(&mut self, mut r: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        r = r.header("cookie", cookie);
        if let Some(a) = &self.forwarded_for {
            r = r.header("x-forwarded-for", a);
        }
        let resp = r.send().await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            let (kv, _) = v.split_once(';').unwrap_or((&v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|l| l.to_str().unwrap().to_owned())
        };
        let location = header("location").unwrap_or_default();
        let retry_after = header("retry-after");
        Page {
            status: resp.status().as_u16(),
            location,
            retry_after,
            body: resp.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }

    /// The CSRF token of the page at `from` (which opens the session).
    async fn token(&mut self, from: &str) -> String {
        csrf(&self.get(from).await.body)
    }

    async fn login(&mut self, login: &str, password: &str) -> Page {
        let t = self.token("/portal/login").await;
        self.post(
            "/portal/login",
            &[("login", login), ("password", password), ("csrf", &t)],
        )
        .await
    }

    async fn code(&mut self, code: &str) -> Page {
        let t = self.token("/portal/login/totp").await;
        self.post("/portal/login/totp", &[("code", code), ("csrf", &t)])
            .await
    }
}

fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn staff(h: &Harness, login: &str) {
    h.app
        .issuer
        .create_staff(h.centre_id, login, PASSWORD, Role::Staff)
        .await
        .unwrap()
        .unwrap();
}

/// Options whose requests from loopback may name their client address,
/// and whose password checks wait long enough for a debug build's argon2
/// (the hash gate's own test bounds the queue).
fn through_proxy() -> Options {
    let mut o = Options {
        trusted_proxies: vec!["127.0.0.1".into()],
        ..Options::default()
    };
    o.portal.throttle.hash_wait_ms = 120_000;
    o.portal.throttle.hash_queue = 100;
    o
}

fn count(statuses: &[u16], s: u16) -> usize {
    statuses.iter().filter(|x| **x == s).count()
}

/// `n` logins released together: every browser opens its session first,
/// then all post at once. `login(i)`, `password(i)` and `delay_ms(i)` (a pause after
/// the release) per attempt; the pages in attempt order.
async fn burst(
    browsers: Vec<Browser>,
    login: impl Fn(usize) -> String,
    password: impl Fn(usize) -> &'static str,
    delay_ms: impl Fn(usize) -> u64,
) -> Vec<Page> {
    let barrier = Arc::new(tokio::sync::Barrier::new(browsers.len()));
    let mut tasks = Vec::new();
    for (i, mut b) in browsers.into_iter().enumerate() {
        let barrier = barrier.clone();
        let login = login(i);
        let pw = password(i);
        let delay = delay_ms(i);
        tasks.push(tokio::spawn(async move {
            let t = b.token("/portal/login").await;
            barrier.wait().await;
            if delay > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            }
            b.post(
                "/portal/login",
                &[("login", &login), ("password", pw), ("csrf", &t)],
            )
            .await
        }));
    }
    let mut pages = Vec::new();
    for t in tasks {
        pages.push(t.await.unwrap());
    }
    pages
}

/// Finding 4: 100 simultaneous logins for one account from one address
/// checked 62 passwords (limit 5) and the right one logged in. The attempt
/// is now counted before the hash: at most the limit's number of passwords
/// is checked, and the right password sent after the release is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_100_logins_checks_at_most_the_limit() {
    for db in backends().await {
        let h = start_with(&db, through_proxy()).await;
        staff(&h, "yamada").await;
        let limit = h.app.portal.config.throttle.per_login_address as usize;
        let browsers = (0..100).map(|_| Browser::new(&h)).collect();
        let pages = burst(
            browsers,
            |_| "yamada".into(),
            |i| {
                if i == 62 {
                    PASSWORD
                } else {
                    "wrong password!!"
                }
            },
            |i| if i == 62 { 300 } else { 0 },
        )
        .await;
        let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
        let checked = count(&statuses, 401) + count(&statuses, 303);
        eprintln!(
            "{}: 100 simultaneous logins: {checked} passwords checked, {} answered 429, {} 503",
            h.label,
            count(&statuses, 429),
            count(&statuses, 503)
        );
        assert!(
            checked <= limit,
            "{}: {checked} passwords checked (limit {limit}): {statuses:?}",
            h.label
        );
        assert_eq!(statuses[62], 429, "{}: the right password at 62", h.label);
        assert_eq!(count(&statuses, 303), 0, "{}", h.label);
        assert_eq!(
            count(&statuses, 401) + count(&statuses, 429),
            100,
            "{}: {statuses:?}",
            h.label
        );
        assert!(pages[62].body.contains("ログイン"), "{}", h.label);
    }
}

/// Finding 4: concurrent argon2 hashes are capped (a semaphore sized to the
/// cores, a short bounded queue); beyond it a login is refused with 503,
/// `Retry-After` and a message, before any hash, and the refusal is
/// counted. Logins from many addresses for unknown ids (a dummy hash each).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_beyond_the_hash_queue_is_refused_with_503() {
    for db in backends().await {
        let mut o = through_proxy();
        o.portal.throttle.hash_queue = 4;
        let h = start_with(&db, o).await;
        let n = 60;
        let browsers = (0..n)
            .map(|i| Browser::from(&h, &format!("198.51.100.{}", i + 1)))
            .collect();
        let pages = burst(
            browsers,
            |i| format!("nobody{i}"),
            |_| "wrong password!!",
            |_| 0,
        )
        .await;
        let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
        let gate = h.app.portal.throttle.hashes();
        let admitted = count(&statuses, 401);
        eprintln!(
            "{}: {n} simultaneous logins: {admitted} checked, {} refused 503; peak {} hashes at once ({} cores)",
            h.label,
            count(&statuses, 503),
            gate.peak(),
            gate.permits()
        );
        assert_eq!(admitted + count(&statuses, 503), n, "{statuses:?}");
        assert!(
            count(&statuses, 503) > 0,
            "{}: no refusal: {statuses:?}",
            h.label
        );
        assert!(
            gate.peak() <= gate.permits(),
            "{}: {} hashes at once, {} permits",
            h.label,
            gate.peak(),
            gate.permits()
        );
        assert_eq!(gate.refused(), count(&statuses, 503) as u64, "{}", h.label);
        for p in pages.iter().filter(|p| p.status == 503) {
            let secs: u64 = p.retry_after.as_deref().unwrap().parse().unwrap();
            assert!((1..=60).contains(&secs), "{}: {secs}", h.label);
            assert!(p.body.contains("混み合って"), "{}: {}", h.label, p.body);
        }
        // Once the burst is over, a login is checked again.
        let mut b = Browser::from(&h, "203.0.113.9");
        assert_eq!(b.login("nobody", "wrong password!!").await.status, 401);
    }
}

/// Finding 5: five wrong passwords from anywhere locked the real user out
/// for 15 minutes from every address. Now a burst of wrong passwords from
/// other addresses slows the login down but does not stop the real user
/// at their own address; the guessing address itself is refused, and the
/// page says what happened and until when.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_from_other_addresses_do_not_lock_the_user_out() {
    for db in backends().await {
        let h = start_with(&db, through_proxy()).await;
        staff(&h, "yamada").await;
        let browsers = (0..12)
            .map(|i| Browser::from(&h, &format!("198.51.100.{}", i % 2 + 1)))
            .collect();
        let pages = burst(browsers, |_| "yamada".into(), |_| "wrong password!!", |_| 0).await;
        let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
        assert!(count(&statuses, 401) >= 6, "{}: {statuses:?}", h.label);
        // The real user, at their own address, logs in.
        let mut user = Browser::from(&h, "203.0.113.7");
        let started = std::time::Instant::now();
        let p = user.login("yamada", PASSWORD).await;
        eprintln!(
            "{}: after {} wrong passwords from 2 addresses, the real user logged in in {:?} (slowed down)",
            h.label,
            count(&statuses, 401),
            started.elapsed()
        );
        assert_eq!(p.status, 303, "{}: {}", h.label, p.body);
        assert_eq!(p.location, "/portal/cases");
        // The guessing address: refused for this login, with the time.
        let mut a = Browser::from(&h, "198.51.100.1");
        for _ in 0..5 {
            a.login("yamada", "wrong password!!").await;
        }
        let p = a.login("yamada", PASSWORD).await;
        assert_eq!(p.status, 429, "{}", h.label);
        assert_eq!(p.retry_after.as_deref(), Some("900"), "{}", h.label);
        assert!(
            p.body.contains("しばらくログインできません")
                && p.body.contains("2020年12月16日 10:15"),
            "{}: {}",
            h.label,
            p.body
        );
        let t = a.token("/portal/login?lang=en").await;
        let p = a
            .post(
                "/portal/login",
                &[("login", "yamada"), ("password", PASSWORD), ("csrf", &t)],
            )
            .await;
        assert!(
            p.body.contains("until 2020-12-16 10:15 JST"),
            "{}: {}",
            h.label,
            p.body
        );
    }
}

/// Bounds on the throttle's counters: when the tables are full of live
/// windows (a flood of new addresses), a new address is refused with a
/// page that says so and until when — the counts already made are kept,
/// so the flood cannot reset them — and it logs in once the oldest window
/// ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_throttle_refuses_new_addresses_until_the_oldest_window_ends() {
    for db in backends().await {
        let mut o = through_proxy();
        o.portal.throttle.max_tracked = 1;
        let h = start_with(&db, o).await;
        staff(&h, "yamada").await;
        let mut flood = Browser::from(&h, "198.51.100.1");
        assert_eq!(flood.login("nobody", "wrong password!!").await.status, 401);
        let mut user = Browser::from(&h, "203.0.113.7");
        let p = user.login("yamada", PASSWORD).await;
        assert_eq!(p.status, 429, "{}: {}", h.label, p.body);
        assert_eq!(p.retry_after.as_deref(), Some("900"), "{}", h.label);
        assert!(
            p.body
                .contains("初めての接続元からはしばらくログインできません")
                && p.body.contains("2020年12月16日 10:15"),
            "{}: {}",
            h.label,
            p.body
        );
        // The tracked address is still counted (and still refused at its
        // limit, not forgotten).
        for _ in 0..4 {
            assert_eq!(flood.login("nobody", "wrong password!!").await.status, 401);
        }
        assert_eq!(flood.login("nobody", "wrong password!!").await.status, 429);
        h.clock.advance(chrono::Duration::seconds(15 * 60));
        let p = user.login("yamada", PASSWORD).await;
        assert_eq!((p.status, p.location.as_str()), (303, "/portal/cases"));
    }
}

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn code_at(unix: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(SECRET.into()).to_bytes().unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate(unix as u64)
}

/// A code that is none of the three accepted at `unix` (one step of drift).
fn wrong_code_at(unix: i64) -> String {
    let right: Vec<String> = [-30, 0, 30].iter().map(|d| code_at(unix + d)).collect();
    (0..1000)
        .map(|i| format!("{:06}", 123_457 + i))
        .find(|c| !right.contains(c))
        .unwrap()
}

/// Finding 6: a correct password cleared the per-login counter, so
/// "password, then 4 wrong codes" could be repeated for ever. Now TOTP
/// codes are limited per account across addresses, and only a whole login
/// clears a counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_then_four_wrong_codes_repeated_is_stopped() {
    for db in backends().await {
        let h = start_with(&db, through_proxy()).await;
        staff(&h, "yamada").await;
        let store = h.app.issuer.store();
        let id = store.staff_by_login("yamada").await.unwrap().unwrap().id;
        store.set_totp_secret(id, Some(SECRET)).await.unwrap();
        let now = t0().timestamp();
        let wrong = wrong_code_at(now);
        let mut codes = Vec::new();
        for round in 0..4 {
            let mut b = Browser::from(&h, &format!("198.51.100.{}", round + 1));
            let p = b.login("yamada", PASSWORD).await;
            assert_eq!(p.status, 303, "{}: round {round}", h.label);
            assert_eq!(p.location, "/portal/login/totp");
            for _ in 0..4 {
                codes.push(b.code(&wrong).await.status);
            }
        }
        eprintln!(
            "{}: 4 rounds of password + 4 wrong codes: {} codes checked, {} refused",
            h.label,
            count(&codes, 401),
            count(&codes, 429)
        );
        assert!(
            count(&codes, 401) <= 5,
            "{}: {} wrong codes checked: {codes:?}",
            h.label,
            count(&codes, 401)
        );
        assert_eq!(count(&codes, 401) + count(&codes, 429), 16, "{codes:?}");
        // Even the right code from yet another address is refused now.
        let mut c = Browser::from(&h, "203.0.113.7");
        assert_eq!(c.login("yamada", PASSWORD).await.status, 303);
        let p = c.code(&code_at(now)).await;
        assert_eq!(p.status, 429, "{}", h.label);
        assert!(p.retry_after.is_some());
        // The window ends: the whole login succeeds.
        h.clock.advance(chrono::Duration::minutes(16));
        let later = now + 16 * 60;
        let mut d = Browser::from(&h, "203.0.113.8");
        assert_eq!(d.login("yamada", PASSWORD).await.status, 303);
        let p = d.code(&code_at(later)).await;
        assert_eq!(p.status, 303, "{}: {}", h.label, p.body);
        assert_eq!(p.location, "/portal/cases");
    }
}

/// Finding 8: each refused login of an existing account wrote a row, so
/// 320 requests pushed 299 of the 300 rows off the audit page. Refusals are
/// now one row per login, outcome and window, with a count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_logins_are_one_audit_row_per_login_and_window() {
    for db in backends().await {
        let h = start_with(&db, through_proxy()).await;
        staff(&h, "yamada").await;
        staff(&h, "root").await;
        let before = h.count("audit_log").await;
        let browsers = (0..40)
            .map(|i| Browser::from(&h, &format!("198.51.100.{}", i % 4 + 1)))
            .collect();
        let pages = burst(browsers, |_| "yamada".into(), |_| "wrong password!!", |_| 0).await;
        let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
        assert_eq!(count(&statuses, 401) + count(&statuses, 429), 40);
        let rows = h.count("audit_log").await - before;
        eprintln!("{}: 40 refused logins wrote {rows} audit rows", h.label);
        assert!(
            (1..=2).contains(&rows),
            "{}: {rows} rows for 40 refusals",
            h.label
        );
        let mut root = Browser::from(&h, "203.0.113.7");
        assert_eq!(root.login("root", PASSWORD).await.status, 303);
        let page = root.get("/portal/audit?account=staff:yamada").await.body;
        let shown: usize = page
            .split("class=\"count\">×")
            .skip(1)
            .map(|s| s[..s.find('<').unwrap()].parse::<usize>().unwrap())
            .sum();
        assert_eq!(shown, 40, "{}: {page}", h.label);
    }
}

fn audit_rows(html: &str) -> usize {
    html.matches("<tr class=\"entry\"").count()
}

/// Finding 8: the audit page is paged and filtered (kind, account, date),
/// and entries older than the retention are pruned.
#[tokio::test]
async fn the_audit_page_is_paged_filtered_and_pruned() {
    for db in backends().await {
        let h = start_with(&db, through_proxy()).await;
        staff(&h, "root").await;
        let store = h.app.issuer.store();
        let now = t0().timestamp();
        let entry = |at: i64, actor: &str, action: &str| issuer::store::AuditEntry {
            at,
            actor: actor.into(),
            centre_id: Some(h.centre_id),
            case_id: None,
            action: action.into(),
            outcome: "ok".into(),
            detail: String::new(),
        };
        // 2020-12-15 JST: 120 case edits by sato; 2020-12-14: 5 logouts.
        for i in 0..120 {
            store
                .audit(&entry(now - 86_400 + i, "staff:sato", "update_case"))
                .await
                .unwrap();
        }
        for i in 0..5 {
            store
                .audit(&entry(now - 2 * 86_400 + i, "staff:suzuki", "logout"))
                .await
                .unwrap();
        }
        // Past the retention (and one just inside it).
        let retention = issuer::service::AUDIT_RETENTION_DAYS * 86_400;
        store
            .audit(&entry(now - retention - 60, "staff:old", "logout"))
            .await
            .unwrap();
        store
            .audit(&entry(now - retention + 3_600, "staff:kept", "logout"))
            .await
            .unwrap();
        let mut root = Browser::new(&h);
        assert_eq!(root.login("root", PASSWORD).await.status, 303);
        let p = root.get("/portal/audit").await.body;
        assert_eq!(audit_rows(&p), 50, "{}: 50 per page", h.label);
        assert!(p.contains("page=2"), "{}", h.label);
        assert!(!p.contains("staff:old"), "{}: pruned", h.label);
        let p3 = root.get("/portal/audit?page=3").await.body;
        // 120 + 5 + 1 kept + the login of root = 127 rows: 27 on page 3.
        assert_eq!(audit_rows(&p3), 27, "{}", h.label);
        let p = root.get("/portal/audit?kind=logout").await.body;
        assert_eq!(audit_rows(&p), 6, "{}", h.label);
        let p = root.get("/portal/audit?account=suzuki").await.body;
        assert_eq!(audit_rows(&p), 5, "{}", h.label);
        let p = root
            .get("/portal/audit?from=2020-12-14&to=2020-12-14")
            .await
            .body;
        assert_eq!(audit_rows(&p), 5, "{}", h.label);
        let p = root
            .get("/portal/audit?kind=update_case&from=2020-12-15&to=2020-12-15&page=3")
            .await
            .body;
        assert_eq!(audit_rows(&p), 20, "{}", h.label);
        // A bad filter: a message, not a 500.
        let p = root.get("/portal/audit?from=2020-13-40").await;
        assert_eq!(p.status, 400, "{}", h.label);
        assert!(p.body.contains("日付"), "{}: {}", h.label, p.body);
        assert_eq!(
            store
                .audit_log(None, 1000)
                .await
                .unwrap()
                .iter()
                .filter(|e| e.actor == "staff:old")
                .count(),
            0
        );
    }
}
