//! The key server's `/metrics` counts with the process's one registry
//! (crate `telemetry`): publishes, stored keys, export cycles and their
//! failures, as scraped.
//!
//! The registry belongs to the process, so this file holds exactly one test:
//! no other test of the same binary can count into it while it compares.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, NowTs};
use keyserver::export::{CycleOptions, Exporter};
use keyserver::store::Store;

/// One series as the harness's `/metrics` shows it (0 when absent).
async fn scrape(h: &Harness, series: &str) -> f64 {
    let text = h.get("/metrics").await.text().await.unwrap();
    telemetry::sample(&text, series).unwrap_or(0.0)
}

#[tokio::test]
async fn publishes_and_export_cycles_reach_the_scraped_registry() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let stored = scrape(&h, r#"keyserver_publish_total{outcome="stored"}"#).await;
        let repeats = scrape(&h, r#"keyserver_publish_total{outcome="repeat"}"#).await;
        let keys = scrape(&h, "keyserver_keys_stored_total").await;

        let five = h.keys(5);
        let req = h.request(five);
        assert_eq!(h.publish(&req).await.0, 200, "{}", db.label);
        assert_eq!(h.publish(&req).await.0, 200, "{}: a repeat", db.label);
        assert_eq!(
            scrape(&h, r#"keyserver_publish_total{outcome="stored"}"#).await - stored,
            1.0,
            "{}",
            db.label
        );
        assert_eq!(
            scrape(&h, r#"keyserver_publish_total{outcome="repeat"}"#).await - repeats,
            1.0,
            "{}",
            db.label
        );
        assert_eq!(
            scrape(&h, "keyserver_keys_stored_total").await - keys,
            5.0,
            "{}",
            db.label
        );

        // Exported three hours later: one batch, one file, its keys (real and fake).
        h.clock.advance(chrono::Duration::hours(3));
        let batches = scrape(&h, "keyserver_export_batches_total").await;
        let files = scrape(&h, "keyserver_export_files_total").await;
        let exported = scrape(&h, "keyserver_export_keys_total").await;
        let r = h
            .exporter()
            .run_cycle(CycleOptions { min_age: 7200 })
            .await
            .unwrap();
        assert_eq!(r.built.len(), 1, "{}", db.label);
        assert_eq!(
            scrape(&h, "keyserver_export_batches_total").await - batches,
            1.0
        );
        assert_eq!(
            scrape(&h, "keyserver_export_files_total").await - files,
            r.files.len() as f64
        );
        assert_eq!(
            scrape(&h, "keyserver_export_keys_total").await - exported,
            r.keys as f64
        );
        assert!(r.keys >= 5, "{}: {r:?}", db.label);
        assert_eq!(
            scrape(&h, "keyserver_export_last_cycle_seconds").await,
            h.clock.now_ts() as f64,
            "{}",
            db.label
        );

        // A cycle whose write fails counts one failure.
        let three = h.keys(3);
        assert_eq!(h.publish_keys(three).await, 200);
        h.clock.advance(chrono::Duration::hours(3));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("440"), b"in the way").unwrap();
        let failing = Exporter::new(
            Store::connect(&db.url, 2).await.unwrap(),
            keyserver::storage::ExportStorage::local(dir.path()).unwrap(),
            vec![h.signer.clone()],
            common::export_settings(),
            h.clock.clone(),
            Box::new(<rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(5)),
        );
        let failures = scrape(&h, "keyserver_export_failures_total").await;
        assert!(
            failing
                .run_cycle(CycleOptions { min_age: 7200 })
                .await
                .is_err()
        );
        assert_eq!(
            scrape(&h, "keyserver_export_failures_total").await - failures,
            1.0,
            "{}",
            db.label
        );
    }
}
