//! `/metrics` counts with the process's one registry (crate `telemetry`).
//!
//! The registry belongs to the process, so this file holds exactly one test:
//! no other test of the same binary can count into it while it compares.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;

/// One series as the harness's `/metrics` shows it.
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

#[tokio::test]
async fn failed_verifications_reach_the_scraped_registry_one_for_one() {
    for db in backends().await {
        let h = start(&db).await;
        // Described at start: a scrape before the first failure shows 0 growth,
        // not a missing series.
        let before = scrape(&h, "issuer_verify_failed_total").await;
        for bad in ["1234567", "abcdefgh", "12345678"] {
            assert_eq!(h.verify(bad).await.status, 400, "{}: {bad}", h.label);
        }
        // A valid number verified is not a failure.
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "k1").await.status, 200);
        let (number, _) = h.last_number();
        assert_eq!(h.verify(&number).await.status, 200, "{}", h.label);
        // Used now: a second verify is a failure.
        assert_eq!(h.verify(&number).await.status, 400, "{}", h.label);
        assert_eq!(
            scrape(&h, "issuer_verify_failed_total").await - before,
            4.0,
            "{}",
            h.label
        );
        assert_eq!(h.app.limits.failed_total(), 4, "{}", h.label);
        // The gauge of the last hour is brought up to date at each scrape.
        assert_eq!(
            scrape(&h, "issuer_verify_failed_last_hour").await,
            4.0,
            "{}",
            h.label
        );
    }
}
