//! The attacks of issue 12 against the real router on a real socket, each
//! reproduced as it was found (bursts released at once, oracles), on SQLite
//! and PostgreSQL. Each test failed before its fix.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Options, backends, case_json, start_with};
use issuer::limits::LimitsConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The limits of these tests: the production failure budget (2), and a
/// request bucket large enough never to be what refuses.
fn production_budget() -> Options {
    Options {
        limits: LimitsConfig {
            requests_per_minute: 100_000,
            ..LimitsConfig::default()
        },
        ..Default::default()
    }
}

/// A raw HTTP/1.1 request (one connection each, closed after the answer).
fn raw_post(base: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let host = base.trim_start_matches("http://");
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// A `POST /api/verify` of `body` with the harness's device key, as raw bytes.
fn verify_request(h: &common::Harness, body: &str) -> Vec<u8> {
    raw_post(
        &h.base,
        "/api/verify",
        &[("x-api-key", &h.device_key)],
        body,
    )
}

/// Sends every request but its last byte, each on its own connection; once
/// all are held, releases them together and returns the statuses.
async fn held_burst(base: &str, requests: Vec<Vec<u8>>) -> Vec<u16> {
    let addr = base.trim_start_matches("http://").to_owned();
    let n = requests.len();
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::with_capacity(n);
    for req in requests {
        let barrier = barrier.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            let (head, last) = req.split_at(req.len() - 1);
            s.write_all(head).await.unwrap();
            s.flush().await.unwrap();
            barrier.wait().await;
            s.write_all(last).await.unwrap();
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await.unwrap();
            let text = String::from_utf8_lossy(&answer);
            text.split(' ').nth(1).unwrap().parse::<u16>().unwrap()
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// Finding 2: 60 connections holding `POST /api/verify` minus its last
/// byte, released together, got 60 of 60 guesses evaluated from one
/// address. The budget is reserved before a code is evaluated, so at most
/// the burst (2) are.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_held_verifies_released_together_get_at_most_the_budget_evaluated() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let burst = LimitsConfig::default().failure_burst as usize;
        let requests = (0..60)
            .map(|i| {
                let body = format!(
                    r#"{{"code": "{:08}", "accept": ["confirmed"]}}"#,
                    10_000_000 + i
                );
                verify_request(&h, &body)
            })
            .collect();
        let statuses = held_burst(&h.base, requests).await;
        assert_eq!(
            count(&statuses, 400),
            burst,
            "{}: guesses evaluated: {statuses:?}",
            h.label
        );
        assert_eq!(
            count(&statuses, 429),
            60 - burst,
            "{}: {statuses:?}",
            h.label
        );
        assert_eq!(h.app.limits.failed_total(), burst as u64, "{}", h.label);
    }
}

/// Finding 2, the honest side: a burst of right numbers from one address
/// is not eaten by the reservations of the others: every claim that yields
/// a token gives its reservation back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn right_numbers_released_together_all_get_tokens_and_leave_the_budget_whole() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let mut numbers = Vec::new();
        for i in 0..2 {
            let case_id = h.create_case(&case_json()).await;
            assert_eq!(h.issue(case_id, &format!("k{i}")).await.status, 200);
            numbers.push(h.last_number().0);
        }
        let requests = numbers
            .iter()
            .map(|n| {
                let body = format!(r#"{{"code": "{n}", "accept": ["confirmed"]}}"#);
                verify_request(&h, &body)
            })
            .collect();
        let statuses = held_burst(&h.base, requests).await;
        assert_eq!(statuses, vec![200, 200], "{}", h.label);
        // The whole budget is still there: the burst of misses is evaluated.
        let burst = LimitsConfig::default().failure_burst;
        for i in 0..burst {
            let guess = format!("{}", 10_000_001 + i);
            assert_eq!(h.verify(&guess).await.status, 400, "{}", h.label);
        }
        assert_eq!(h.verify("19999999").await.status, 429, "{}", h.label);
    }
}

/// Finding 10: `{"code": N, "accept": ["negative"]}` answered 412 for a
/// live number without using it or charging the budget — a free test of
/// whether a guessed number is live. Now it costs like a miss; so does
/// `code_expired`, whose message stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_412_for_a_live_number_and_an_expired_number_cost_the_budget_like_a_miss() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "live").await.status, 200);
        let (live, _) = h.last_number();
        let ask_negative = serde_json::json!({"code": live, "accept": ["negative"]}).to_string();
        let burst = LimitsConfig::default().failure_burst;
        for _ in 0..burst {
            let r = h
                .post("/api/verify", Some(&h.device_key), None, &ask_negative)
                .await;
            assert_eq!(r.status, 412, "{}: {}", h.label, r.body);
        }
        let r = h
            .post("/api/verify", Some(&h.device_key), None, &ask_negative)
            .await;
        assert_eq!(
            r.status, 429,
            "{}: the oracle is charged: {}",
            h.label, r.body
        );
        assert_eq!(h.app.limits.failed_total(), u64::from(burst), "{}", h.label);

        // An expired number: its message is kept, and it is charged.
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "old").await.status, 200);
        let (old, _) = h.last_number();
        h.clock.advance(chrono::Duration::days(30));
        for _ in 0..burst {
            let r = h.verify(&old).await;
            assert_eq!(r.status, 400, "{}: {}", h.label, r.body);
            assert_eq!(r.body["errorCode"], "code_expired", "{}", h.label);
        }
        let r = h.verify(&old).await;
        assert_eq!(r.status, 429, "{}: {}", h.label, r.body);
    }
}

/// Finding 12: answers of `/api/verify` and `/api/certificate` carry a token
/// or a certificate and must not be kept by any cache: `no-store`, on
/// success and on refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_certificate_answers_are_never_stored_by_a_cache() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "k").await.status, 200);
        let (number, _) = h.last_number();
        let send = |path: &str, body: serde_json::Value| {
            h.http
                .post(format!("{}{path}", h.base))
                .header("x-api-key", &h.device_key)
                .json(&body)
                .send()
        };
        let ok = send("/api/verify", serde_json::json!({"code": number}))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{}", h.label);
        let cache = ok.headers()["cache-control"].to_str().unwrap().to_owned();
        let token = ok.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(cache, "no-store", "{}", h.label);
        let refused = send("/api/verify", serde_json::json!({"code": number}))
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{}", h.label);
        assert_eq!(
            refused.headers()["cache-control"],
            "no-store",
            "{}",
            h.label
        );
        let cert = send(
            "/api/certificate",
            serde_json::json!({"token": token, "ekeyhmac": common::hmac32()}),
        )
        .await
        .unwrap();
        assert_eq!(cert.status(), 200, "{}", h.label);
        assert_eq!(cert.headers()["cache-control"], "no-store", "{}", h.label);
        let refused = send(
            "/api/certificate",
            serde_json::json!({"token": token, "ekeyhmac": common::hmac32()}),
        )
        .await
        .unwrap();
        assert_eq!(refused.status(), 400, "{}", h.label);
        assert_eq!(
            refused.headers()["cache-control"],
            "no-store",
            "{}",
            h.label
        );
    }
}
