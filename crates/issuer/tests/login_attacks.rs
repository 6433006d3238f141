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

    #[allow(dead_code)] // for the TOTP tests of finding 6
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
        let p = user.login("yamada", PASSWORD).await;
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
