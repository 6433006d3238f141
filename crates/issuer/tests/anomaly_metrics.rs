//! The anomaly signals on `/metrics` (issue 13): per centre the numbers
//! issued, registrations and their ratio over 24 h, the delivery failure
//! ratio of the last hour, and the age of the oldest message waiting —
//! brought up to date at each scrape, and back to 0 when a centre goes quiet
//! (a stale gauge would hide exactly the collapse the alert is for).
//!
//! The registry belongs to the process, so this file holds exactly one test.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;

async fn scrape(h: &Harness) -> String {
    h.http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn value(m: &str, series: &str) -> f64 {
    telemetry::sample(m, series).unwrap_or_else(|| panic!("{series}: {m}"))
}

async fn exec(h: &Harness, sql: &str) {
    sqlx::query(sql)
        .execute(h.app.issuer.store().pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn registration_ratio_delivery_failures_and_queue_age_are_scraped() {
    for db in backends().await {
        let h = start(&db).await;
        let centre = format!("{{centre=\"{}\"}}", h.centre_id);
        let m = scrape(&h).await;
        assert_eq!(
            value(&m, &format!("issuer_numbers_issued_24h{centre}")),
            0.0,
            "{}",
            h.label
        );
        assert_eq!(value(&m, "issuer_delivery_oldest_pending_seconds"), 0.0);

        // Four numbers, one registered.
        let mut ids = Vec::new();
        for i in 0..4 {
            let id = h.create_case(&case_json()).await;
            assert_eq!(h.issue(id, &format!("k{i}")).await.status, 200);
            ids.push(id);
        }
        let (number, _) = h.last_number();
        assert_eq!(h.verify(&number).await.status, 200);
        let m = scrape(&h).await;
        assert_eq!(
            value(&m, &format!("issuer_numbers_issued_24h{centre}")),
            4.0,
            "{}",
            h.label
        );
        assert_eq!(value(&m, &format!("issuer_registrations_24h{centre}")), 1.0);
        assert_eq!(
            value(&m, &format!("issuer_registration_ratio_24h{centre}")),
            0.25
        );
        assert_eq!(value(&m, "issuer_messages_last_hour"), 4.0);
        assert_eq!(value(&m, "issuer_delivery_failure_ratio_last_hour"), 0.0);

        // The gateway reports one undelivered; one message is still waiting
        // to be handed over, issued 10 minutes ago.
        let now = h.app.issuer.now();
        exec(
            &h,
            &format!(
                "UPDATE issuances SET delivery_status = 'undelivered' WHERE case_id = {}",
                ids[0]
            ),
        )
        .await;
        exec(
            &h,
            &format!(
                "UPDATE issuances SET delivery_status = 'pending', issued_at = {} WHERE case_id = {}",
                now - 600,
                ids[1]
            ),
        )
        .await;
        let m = scrape(&h).await;
        assert_eq!(
            value(&m, "issuer_delivery_failure_ratio_last_hour"),
            0.25,
            "{}",
            h.label
        );
        assert_eq!(value(&m, "issuer_delivery_oldest_pending_seconds"), 600.0);

        // A day later nothing happened: every figure is back to 0.
        exec(
            &h,
            "UPDATE issuances SET delivery_status = 'sent' WHERE delivery_status = 'pending'",
        )
        .await;
        h.clock.advance(chrono::Duration::hours(25));
        let m = scrape(&h).await;
        assert_eq!(
            value(&m, &format!("issuer_numbers_issued_24h{centre}")),
            0.0,
            "{}",
            h.label
        );
        assert_eq!(value(&m, &format!("issuer_registrations_24h{centre}")), 0.0);
        assert_eq!(
            value(&m, &format!("issuer_registration_ratio_24h{centre}")),
            0.0
        );
        assert_eq!(value(&m, "issuer_messages_last_hour"), 0.0);
        assert_eq!(value(&m, "issuer_delivery_oldest_pending_seconds"), 0.0);
    }
}
