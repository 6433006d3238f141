//! Which keys go into which batch, on every database backend: batches select
//! their keys by range (issue 4), and each region is exported on its own
//! (issue 6).
//!
//! - "each accepted key appears in exactly one export", even a key stored
//!   after its window was cut, and an embargoed key only once its period ended;
//! - a rebuilt batch is byte-identical;
//! - batches cut before migration 0002 (keys assigned one by one) and range
//!   batches after them share no key;
//! - "Canary keys go to a canary region only, so real phones never download
//!   them."
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{CANARY_HA, CANARY_REGION, Harness, insert, text};
use en_protocol::export::{TekSignatureList, TemporaryExposureKeyExport, read_zip};
use keyserver::export::{CycleOptions, RegionSettings};
use keyserver::store::StoredKey;
use keyserver::testkit::publish_request;
use sqlx::Row;

const AT_ONCE: CycleOptions = CycleOptions { min_age: 0 };
const TWO_HOURS: CycleOptions = CycleOptions { min_age: 7200 };

fn keys_of(zip: &[u8]) -> TemporaryExposureKeyExport {
    let archive = read_zip(zip).unwrap();
    TekSignatureList::decode(&archive.export_sig).unwrap();
    TemporaryExposureKeyExport::decode(&archive.export_bin).unwrap()
}

/// How many times each key appears across every export file of a region.
async fn exported(h: &Harness, region: &str) -> HashMap<[u8; 16], usize> {
    let mut seen = HashMap::new();
    for f in h.store.export_files(region).await.unwrap() {
        let zip = h.storage.get(&f.path).await.unwrap().unwrap().bytes;
        let export = keys_of(&zip);
        assert_eq!(export.region, region);
        for k in export.keys {
            *seen.entry(*k.key_data.as_bytes()).or_default() += 1;
        }
    }
    seen
}

fn keys(n: usize, seed: u8, start: i64, created: i64, available: i64) -> Vec<StoredKey> {
    (0..n)
        .map(|i| {
            let mut key_data = [seed; 16];
            key_data[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            StoredKey {
                key_data,
                rolling_start: start - 144 * (i as i64 % 13 + 1),
                rolling_period: 144,
                transmission_risk: 2,
                report_type: 1,
                created_at: created,
                available_at: available,
            }
        })
        .collect()
}

fn today(h: &Harness) -> i64 {
    let now = i64::from(h.now_interval());
    now - now % 144
}

#[tokio::test]
async fn every_key_is_exported_exactly_once_even_when_stored_after_its_window_was_cut() {
    for db in common::backends().await {
        let h = common::start(&db).await;
        let hour = h.now() - h.now() % 3600;
        let today = today(&h);
        let a = keys(20, 1, today, hour, hour);
        insert(&h.store, &a, "a", hour).await;
        h.clock.advance(chrono::Duration::minutes(20));
        let r = h.exporter().run_cycle(AT_ONCE).await.unwrap();
        assert_eq!(r.files.len(), 1, "{}", db.label);

        // Stored after [01:00, 01:20) was cut, available since 01:00 (the
        // upload hour): it goes into the next window. One key is still
        // valid: embargoed until midnight UTC.
        let b = keys(20, 2, today, hour, hour);
        insert(&h.store, &b, "b", hour).await;
        let midnight = (today + 144) * 600;
        let c = keys(1, 3, today + 144 + 13, hour, midnight);
        insert(&h.store, &c, "c", hour).await;
        h.clock.advance(chrono::Duration::minutes(20));
        let r = h.exporter().run_cycle(AT_ONCE).await.unwrap();
        assert_eq!(r.files.len(), 1, "{}", db.label);
        let seen = exported(&h, "440").await;
        for k in a.iter().chain(&b) {
            assert_eq!(seen.get(&k.key_data), Some(&1), "{}", db.label);
        }
        assert!(
            !seen.contains_key(&c[0].key_data),
            "{}: embargoed",
            db.label
        );

        // Past midnight UTC the embargoed key is exported, once.
        h.clock
            .set(chrono::DateTime::from_timestamp(midnight + 600, 0).unwrap());
        let r = h.exporter().run_cycle(AT_ONCE).await.unwrap();
        assert!(!r.files.is_empty(), "{}", db.label);
        let seen = exported(&h, "440").await;
        for k in a.iter().chain(&b).chain(&c) {
            assert_eq!(seen.get(&k.key_data), Some(&1), "{}", db.label);
        }

        // Every batch rebuilds to the very same bytes.
        for batch in h.store.batches("440").await.unwrap() {
            for f in h.exporter().build(&batch).await.unwrap() {
                let stored = h.storage.get(&f.path).await.unwrap().unwrap().bytes;
                assert_eq!(
                    stored.as_ref(),
                    f.zip.as_slice(),
                    "{}: {}",
                    db.label,
                    f.path
                );
            }
        }
    }
}

#[tokio::test]
async fn batches_cut_before_the_range_migration_keep_their_keys_and_share_none() {
    for db in common::backends().await {
        let h = common::start(&db).await;
        let hour = h.now() - h.now() % 3600;
        let today = today(&h);
        let old = keys(30, 4, today, hour, hour);
        insert(&h.store, &old, "old", hour).await;
        // A batch as cut before migration 0002: keys assigned by batch_id,
        // no sequence bounds.
        let id: i64 = sqlx::query(
            "INSERT INTO export_batches (region, start_timestamp, end_timestamp, status, created_at) \
             VALUES ('440', $1, $2, 'pending', $3) RETURNING id",
        )
        .bind(hour)
        .bind(hour + 3600)
        .bind(hour)
        .fetch_one(h.store.pool())
        .await
        .unwrap()
        .try_get("id")
        .unwrap();
        sqlx::query("UPDATE exposures SET batch_id = $1")
            .bind(id)
            .execute(h.store.pool())
            .await
            .unwrap();
        let new = keys(30, 5, today, hour, hour);
        insert(&h.store, &new, "new", hour).await;
        h.clock.advance(chrono::Duration::hours(4));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(r.files.len(), 2, "{}: {r:?}", db.label);
        let seen = exported(&h, "440").await;
        for k in old.iter().chain(&new) {
            assert_eq!(seen.get(&k.key_data), Some(&1), "{}", db.label);
        }
    }
}

#[tokio::test]
async fn canary_keys_go_to_the_canary_region_only() {
    for db in common::backends().await {
        let mut settings = common::export_settings();
        settings.regions.push(RegionSettings {
            name: CANARY_REGION.into(),
            batch_period: Some(60),
            min_age: Some(0),
        });
        let mut h = common::start_with(&db, settings).await;
        let real = h.keys(5);
        assert_eq!(h.publish_keys(real.clone()).await, 200);
        let canary_keys = h.keys(3);
        let now = h.now();
        let req = publish_request(
            &mut h.rng,
            &h.canary,
            CANARY_HA,
            canary_keys.clone(),
            "confirmed",
            now,
        );
        assert_eq!(h.publish(&req).await.0, 200, "{}", db.label);

        // A minute later the canary region is exported; 440 waits 2 h.
        h.clock.advance(chrono::Duration::minutes(2));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(r.files.len(), 1, "{}: {r:?}", db.label);
        assert!(r.files[0].starts_with("canary/"), "{r:?}");
        let canary_index = text(&h.storage, "canary/index.txt").await;
        assert_eq!(canary_index.lines().count(), 1);
        assert!(canary_index.starts_with("canary/"));
        let list: serde_json::Value =
            serde_json::from_str(&text(&h.storage, "canary/list.json").await).unwrap();
        assert_eq!(list[0]["region"], "canary");

        h.clock.advance(chrono::Duration::hours(3));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert!(r.files.iter().any(|f| f.starts_with("440/")), "{r:?}");

        let decode = |k: &api_types::publish::PublishKey| -> [u8; 16] {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(&k.key)
                .unwrap()
                .try_into()
                .unwrap()
        };
        let main = exported(&h, "440").await;
        let canary = exported(&h, CANARY_REGION).await;
        for k in &real {
            assert_eq!(main.get(&decode(k)), Some(&1), "{}", db.label);
            assert!(!canary.contains_key(&decode(k)));
        }
        for k in &canary_keys {
            assert_eq!(canary.get(&decode(k)), Some(&1), "{}", db.label);
            assert!(
                !main.contains_key(&decode(k)),
                "{}: canary key in 440",
                db.label
            );
        }
        // Phones read the main indexes: no canary file in them.
        let index = text(&h.storage, "index.txt").await;
        assert!(!index.is_empty() && !index.contains("canary"), "{index}");
        assert!(!text(&h.storage, "440/list.json").await.contains("canary"));
        // The public statistics count the real registration only: a canary
        // running every 5 minutes must not add 288 "registrations" a day.
        let days = h.store.stats_days().await.unwrap();
        let registrations: u64 = days.iter().map(|d| d.registrations).sum();
        let keys: u64 = days.iter().map(|d| d.keys).sum();
        assert_eq!((registrations, keys), (1, 5), "{}: {days:?}", db.label);
    }
}

#[tokio::test]
async fn sqlite_and_postgresql_migrations_build_the_same_schema() {
    let dbs = common::backends().await;
    for db in &dbs {
        keyserver::store::Store::connect(&db.url, 1)
            .await
            .unwrap()
            .close()
            .await;
    }
    store_support::testing::assert_same_schema(&dbs).await;
}
