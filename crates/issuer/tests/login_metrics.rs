//! The login hash gate's metrics in the scraped registry (issue 12,
//! finding 4: "metric for hashes in flight and refusals").
//!
//! The registry belongs to the process, so this file holds exactly one test.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::sync::Arc;

use common::*;

async fn scrape(h: &Harness, series: &str) -> f64 {
    let m = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    telemetry::sample(&m, series).unwrap_or_else(|| panic!("{series}: {m}"))
}

/// One login of a fresh anonymous session for an unknown id (a dummy hash)
/// from `addr`, released by `barrier`; the status.
async fn login(h: &Harness, addr: String, i: usize, barrier: Arc<tokio::sync::Barrier>) -> u16 {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{}/portal/login", h.base))
        .header("x-forwarded-for", &addr)
        .send()
        .await
        .unwrap();
    let cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let html = page.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = html[at..at + html[at..].find('"').unwrap()].to_owned();
    barrier.wait().await;
    let login = format!("nobody{i}");
    http.post(format!("{}/portal/login", h.base))
        .header("x-forwarded-for", &addr)
        .header("cookie", cookie)
        .form(&[
            ("login", login.as_str()),
            ("password", "wrong password!!"),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hash_refusals_and_hashes_in_flight_reach_the_scraped_registry() {
    for db in backends().await {
        let mut o = Options {
            trusted_proxies: vec!["127.0.0.1".into()],
            ..Options::default()
        };
        o.portal.throttle.hash_queue = 2;
        o.portal.throttle.hash_wait_ms = 120_000;
        let h = Arc::new(start_with(&db, o).await);
        let before = scrape(&h, "issuer_login_hash_refused_total").await;
        assert_eq!(scrape(&h, "issuer_login_hashes_in_flight").await, 0.0);
        let n = 30;
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (h, b) = (h.clone(), barrier.clone());
                tokio::spawn(async move { login(&h, format!("198.51.100.{}", i + 1), i, b).await })
            })
            .collect();
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                503 => refused += 1,
                s => assert_eq!(s, 401, "{}", h.label),
            }
        }
        assert!(refused > 0, "{}", h.label);
        assert_eq!(
            scrape(&h, "issuer_login_hash_refused_total").await - before,
            f64::from(refused),
            "{}",
            h.label
        );
        assert_eq!(
            scrape(&h, "issuer_login_hashes_in_flight").await,
            0.0,
            "{}: every slot given back",
            h.label
        );
    }
}
