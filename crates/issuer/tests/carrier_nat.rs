//! Issue 12, finding 3: "Japanese mobile carriers put many phones behind one IPv4 address.
//! Today two wrong numbers from an address answer 429 … to every phone there. … at least:
//! 10 wrong numbers from an address do not stop a valid number from that address — while
//! keeping a documented guessing bound."
//!
//! An address has 20 wrong typed numbers (one more an hour); the bound is kept by the
//! guessing ledger, which pauses typed numbers for everyone once the guesses of the last
//! 24 h could have found `guessed_numbers_per_day` live numbers. The app link's code
//! (100 bits) spends neither. On SQLite and PostgreSQL, with the production budget.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Options, backends, case_json, start_with};
use issuer::limits::LimitsConfig;

fn production_budget() -> Options {
    Options {
        limits: LimitsConfig {
            requests_per_minute: 100_000,
            ..LimitsConfig::default()
        },
        ..Default::default()
    }
}

/// `number` plus `i` (never `number` itself), 8 digits.
fn wrong(number: &str, i: u64) -> String {
    format!(
        "{:08}",
        (number.parse::<u64>().unwrap() + 1 + i) % 100_000_000
    )
}

#[tokio::test]
async fn ten_wrong_numbers_from_an_address_do_not_stop_a_valid_number_from_it() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, _) = h.last_number();
        // Other phones' typos behind the same address.
        for i in 0..10 {
            let r = h.verify(&wrong(&number, i)).await;
            assert_eq!(r.status, 400, "{}: typo {i}: {:?}", h.label, r.body);
            assert_eq!(r.body["errorCode"], "code_invalid");
        }
        // The patient types the number the SMS gave: it registers.
        let r = h.verify(&number).await;
        assert_eq!(r.status, 200, "{}: {:?}", h.label, r.body);
        assert!(r.body["token"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

#[tokio::test]
async fn an_address_that_used_its_budget_is_told_when_and_that_the_link_works_now() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, link) = h.last_number();
        let burst = LimitsConfig::default().failure_burst;
        for i in 0..u64::from(burst) {
            assert_eq!(
                h.verify(&wrong(&number, i)).await.status,
                400,
                "{}",
                h.label
            );
        }
        let r = h.verify(&number).await;
        assert_eq!(r.status, 429, "{}: {:?}", h.label, r.body);
        assert_eq!(r.body["errorCode"], "number_attempts_exhausted");
        assert_eq!(r.retry_after.as_deref(), Some("3600"), "one more an hour");
        let msg = r.body["error"].as_str().unwrap();
        for words in [
            "同じ回線",
            "約1時間後",
            "リンク",
            "今すぐ登録",
            "in about an hour",
        ] {
            assert!(msg.contains(words), "{words}: {msg}");
        }
        assert!(!msg.contains("混み合"), "not 'the server is busy': {msg}");
        // The link in the SMS registers at once.
        let r = h.verify(&link).await;
        assert_eq!(r.status, 200, "{}: {:?}", h.label, r.body);
    }
}

#[tokio::test]
async fn wrong_link_codes_spend_no_budget_and_a_typed_number_still_works() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, _) = h.last_number();
        // Thirty wrong link codes (a broken link, a stale SMS): each refused as invalid,
        // none charged, since guessing a 100-bit code is hopeless.
        for _ in 0..30 {
            let r = h.verify("ABCDEFGHJKMNPQRSTVWX").await;
            assert_eq!(r.status, 400, "{}: {:?}", h.label, r.body);
        }
        let r = h.verify(&number).await;
        assert_eq!(
            r.status, 200,
            "{}: the budget is whole: {:?}",
            h.label, r.body
        );
        assert_eq!(h.app.limits.failed_total(), 0, "{}", h.label);
    }
}

/// The bound against many addresses: each wrong typed number adds `L / 10^8` to the
/// ledger. With one live number (`L` = 1) and a bound of 5.5 × 10^-8 the ledger admits five
/// wrong numbers, from five addresses; then typed numbers are paused for every address —
/// the right one too — while the link still registers; a day later typing works again.
#[tokio::test]
async fn the_guessing_ledger_pauses_typed_numbers_everywhere_but_never_the_link() {
    for db in backends().await {
        let h = start_with(
            &db,
            Options {
                limits: LimitsConfig {
                    requests_per_minute: 100_000,
                    guessed_numbers_per_day: 5.5e-8,
                    ..LimitsConfig::default()
                },
                trusted_proxies: vec!["127.0.0.1".into()],
                ..Default::default()
            },
        )
        .await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, link) = h.last_number();
        for i in 0..5u64 {
            let r = h
                .verify_from(&format!("198.51.100.{i}"), &wrong(&number, i))
                .await;
            assert_eq!(r.status, 400, "{}: guess {i}: {:?}", h.label, r.body);
        }
        assert_eq!(h.app.limits.live_numbers(), 1, "{}", h.label);
        let r = h.verify_from("203.0.113.7", &wrong(&number, 9)).await;
        assert_eq!(r.status, 429, "{}: {:?}", h.label, r.body);
        assert_eq!(r.body["errorCode"], "typed_numbers_paused");
        let wait: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&wait), "{wait}");
        let msg = r.body["error"].as_str().unwrap();
        assert!(msg.contains("一時停止") && msg.contains("リンク"), "{msg}");
        // The right number, typed from an address never seen: paused too (a guess and the
        // patient look the same).
        let r = h.verify_from("203.0.113.8", &number).await;
        assert_eq!(r.body["errorCode"], "typed_numbers_paused", "{}", h.label);
        assert_eq!(h.app.limits.failed_total(), 5, "{}", h.label);
        // The link registers.
        let r = h.verify_from("203.0.113.8", &link).await;
        assert_eq!(r.status, 200, "{}: {:?}", h.label, r.body);
        // A day later the guesses have left the ledger: a new number can be typed.
        h.clock.advance(chrono::Duration::hours(24));
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "b").await.status, 200);
        let (number, _) = h.last_number();
        let r = h.verify_from("203.0.113.9", &number).await;
        assert_eq!(r.status, 200, "{}: {:?}", h.label, r.body);
    }
}
