//! Issue 12, finding 3: "Japanese mobile carriers put many phones behind
//! one IPv4 address. Today two wrong numbers from an address answer 429 …
//! to every phone there." The typed number keeps its guessing budget; the
//! app link's code, which cannot be guessed (100 bits), does not spend it,
//! so a phone behind that address registers with the link in its SMS. On
//! SQLite and PostgreSQL, with the production budget.
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

#[tokio::test]
async fn ten_wrong_numbers_from_an_address_do_not_stop_a_valid_link_from_it() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, link) = h.last_number();
        // Other phones' typos behind the same address: the budget (2) goes,
        // then 429 with a message that points to the link.
        let mut statuses = Vec::new();
        for i in 0..10 {
            let wrong = format!(
                "{:08}",
                (number.parse::<u64>().unwrap() + 1 + i) % 100_000_000
            );
            let r = h.verify(&wrong).await;
            statuses.push(r.status);
            if r.status == 429 {
                let msg = r.body["error"].as_str().unwrap();
                assert!(msg.contains("リンク") && msg.contains("link"), "{msg}");
                assert!(r.retry_after.is_some());
            }
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 429).count(),
            8,
            "{}: {statuses:?}",
            h.label
        );
        // The typed valid number is stopped too (that is the guessing bound) …
        assert_eq!(h.verify(&number).await.status, 429, "{}", h.label);
        // … but the link in the SMS registers.
        let r = h.verify(&link).await;
        assert_eq!(r.status, 200, "{}: {:?}", h.label, r.body);
        assert!(r.body["token"].as_str().is_some_and(|t| !t.is_empty()));
    }
}

#[tokio::test]
async fn wrong_link_codes_spend_no_budget_and_a_typed_number_still_works() {
    for db in backends().await {
        let h = start_with(&db, production_budget()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, _) = h.last_number();
        // Ten wrong link codes (a broken link, a stale SMS): each refused as
        // invalid, none charged, since guessing a 100-bit code is hopeless.
        for _ in 0..10 {
            let r = h.verify("ABCDEFGHJKMNPQRSTVWX").await;
            assert_ne!(r.status, 429, "{}: {:?}", h.label, r.body);
            assert_ne!(r.status, 200, "{}", h.label);
        }
        let r = h.verify(&number).await;
        assert_eq!(
            r.status, 200,
            "{}: the budget is whole: {:?}",
            h.label, r.body
        );
    }
}
