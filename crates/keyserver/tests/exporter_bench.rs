//! A measurement, not a timed test: the time of each part of an export cycle
//! of 1,000,000 keys (read from the database, build and sign, write to a local
//! folder), printed as JSON for the README's table. It asserts only what it
//! must for the numbers to mean anything: every key was exported, in two files
//! of 500,000. Performance is judged from the printed numbers, never by an
//! assertion on time. Ignored by default (it wants a release build):
//!
//! `cargo test --release -p keyserver --test exporter_bench -- --ignored --nocapture`
//!
//! `cocoa bench exporter --keys N [--database URL]` measures the same from
//! the command line.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::NowTs;
use en_protocol::export::{SignatureInfo, SoftwareSigner};
use keyserver::export::{CycleOptions, Exporter};
use keyserver::storage::ExportStorage;
use keyserver::store::Store;
use rand::SeedableRng;

const KEYS: usize = 1_000_000;

#[tokio::test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn measure_each_part_of_an_export_cycle_of_a_million_keys() {
    for db in common::backends().await {
        let store = Store::connect(&db.url, 2).await.unwrap();
        let clock = Arc::new(en_protocol::time::FixedClock::new(common::t0()));
        let now = clock.now_ts();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);

        let t = Instant::now();
        let keys = keyserver::testkit::stored_keys(&mut rng, KEYS, now);
        store.bulk_insert_keys("440", &keys).await.unwrap();
        drop(keys);
        let inserted = t.elapsed().as_secs_f64();

        let dir = tempfile::tempdir().unwrap();
        let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
        let exporter = Exporter::new(
            store.clone(),
            ExportStorage::local(dir.path()).unwrap(),
            vec![signer],
            common::export_settings(),
            clock.clone(),
            Box::new(rand_chacha::ChaCha20Rng::seed_from_u64(2)),
        );
        clock.advance(chrono::Duration::hours(3));
        let t = Instant::now();
        let r = exporter
            .run_cycle(CycleOptions { min_age: 7200 })
            .await
            .unwrap();
        let cycle = t.elapsed().as_secs_f64();
        assert_eq!(r.files.len(), 2, "two files of 500,000 keys");
        assert!(
            r.keys >= KEYS as u64,
            "every stored key exported: {}",
            r.keys
        );

        // The parts of the same batch again: read, build and sign, write.
        let batch = store.batch(r.built[0]).await.unwrap().unwrap();
        let t = Instant::now();
        let real = store.batch_keys(batch.id).await.unwrap();
        let read = t.elapsed().as_secs_f64();
        assert_eq!(real.len(), KEYS);
        let t = Instant::now();
        let files =
            keyserver::export::build_batch(&batch, real, Vec::new(), exporter.signers(), 500_000)
                .unwrap();
        let built = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for f in files {
            exporter.storage().put(&f.path, f.zip).await.unwrap();
        }
        let written = t.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "backend": db.label,
                "keys": KEYS,
                "insert_seconds": inserted,
                "export_cycle_seconds": cycle,
                "read_seconds": read,
                "build_and_sign_seconds": built,
                "write_seconds": written,
            })
        );
    }
}
