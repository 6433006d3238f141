//! The exporter on every database backend: signed, padded, deterministic
//! files; indexes; serving with cache headers; embargo; leases between
//! several exporters; splitting; retention; an independent decoder.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use api_types::publish::PublishKey;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, NowTs, insert};
use en_protocol::export::{
    ReportType, TekSignatureList, TemporaryExposureKeyExport, VerificationKey, read_zip, verify,
};
use keyserver::export::{CycleOptions, Exporter};
use keyserver::store::{Store, StoredKey};

const TWO_HOURS: CycleOptions = CycleOptions { min_age: 7200 };
const AT_ONCE: CycleOptions = CycleOptions { min_age: 0 };

/// Decodes and verifies one export zip; returns its content.
fn open(h: &Harness, zip: &[u8]) -> TemporaryExposureKeyExport {
    let archive = read_zip(zip).unwrap();
    let sigs = TekSignatureList::decode(&archive.export_sig).unwrap();
    let public = VerificationKey::from_public_key_pem(&h.signer.public_key_pem().unwrap()).unwrap();
    assert!(
        verify(&archive.export_bin, &sigs, &[public]).is_some(),
        "every file verifies with the public key"
    );
    TemporaryExposureKeyExport::decode(&archive.export_bin).unwrap()
}

async fn object(h: &Harness, path: &str) -> Vec<u8> {
    h.storage.get(path).await.unwrap().unwrap().bytes.to_vec()
}

/// Today's key of a device (still valid: embargoed until midnight UTC).
fn todays_key(h: &mut Harness) -> PublishKey {
    let today = h.now_interval() - h.now_interval() % 144;
    let mut k = [0u8; 16];
    rand::RngCore::fill_bytes(&mut h.rng, &mut k);
    PublishKey {
        key: STANDARD.encode(k),
        rolling_start_number: today,
        rolling_period: 144,
        transmission_risk: None,
    }
}

#[tokio::test]
async fn an_export_cycle_writes_signed_padded_files_and_indexes() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        // Before the first export the indexes are served empty, never 404
        // (a phone tells "nothing published yet" from a wrong URL); an index
        // of a region this server does not export is still 404.
        let empty = h.get("/exports/index.txt").await;
        assert_eq!(empty.status(), 200, "{}", db.label);
        assert_eq!(empty.headers()["cache-control"], "no-cache");
        assert_eq!(empty.text().await.unwrap(), "");
        let empty = h.get("/exports/440/list.json").await;
        assert_eq!(empty.headers()["content-type"], "application/json");
        assert_eq!(empty.text().await.unwrap(), "[]");
        assert_eq!(h.get("/exports/999/index.txt").await.status(), 404);
        assert_eq!(h.get("/exports/999/list.json").await.status(), 404);
        let mut keys = h.keys(14);
        let today = todays_key(&mut h);
        keys.push(today.clone());
        let req = h.request(keys.clone());
        assert_eq!(h.publish(&req).await.0, 200);

        // Uploaded at 01:00 UTC: window 01:00-02:00, exported from 04:00.
        h.clock.advance(chrono::Duration::minutes(179));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert!(r.built.is_empty(), "{}: window too young", db.label);
        h.clock.advance(chrono::Duration::minutes(1));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(r.built.len(), 1, "{}", db.label);
        let start = common::t0().timestamp();
        let zip_path = format!("440/{start}-{}-00001.zip", start + 3600);
        assert_eq!(r.files, std::slice::from_ref(&zip_path));
        assert_eq!(
            h.storage.list().await.unwrap(),
            [zip_path.clone(), "440/list.json".into(), "index.txt".into()]
        );

        let zip = object(&h, &zip_path).await;
        let export = open(&h, &zip);
        assert_eq!(export.region, "440");
        assert_eq!((export.batch_num, export.batch_size), (1, 1));
        // The cycle's report counts what it wrote (tests/metrics.rs: the registry too).
        assert_eq!(r.keys, export.keys.len() as u64);
        assert_eq!(
            (export.start_timestamp, export.end_timestamp),
            (start as u64, start as u64 + 3600)
        );
        assert_eq!(export.signature_infos.len(), 1);
        assert_eq!(export.signature_infos[0].verification_key_id, "440");
        assert_eq!(export.signature_infos[0].verification_key_version, "v1");
        let n = export.keys.len();
        assert!((1000..1100).contains(&n), "padded to 1,000 + jitter: {n}");
        let bytes: Vec<[u8; 16]> = export.keys.iter().map(|k| *k.key_data.as_bytes()).collect();
        assert!(bytes.is_sorted(), "sorted by key bytes");
        let real: HashSet<[u8; 16]> = keys[..14]
            .iter()
            .map(|k| STANDARD.decode(&k.key).unwrap().try_into().unwrap())
            .collect();
        let real_starts: HashSet<u32> = keys[..14].iter().map(|k| k.rolling_start_number).collect();
        assert_eq!(bytes.iter().filter(|b| real.contains(*b)).count(), 14);
        let todays: [u8; 16] = STANDARD.decode(&today.key).unwrap().try_into().unwrap();
        assert!(!bytes.contains(&todays), "embargoed");
        for k in &export.keys {
            // Real and fake keys alike carry what the server set.
            assert_eq!(k.transmission_risk_level, Some(2));
            assert_eq!(k.report_type, Some(ReportType::CONFIRMED_TEST));
            assert_eq!(k.days_since_onset_of_symptoms, None, "no onset date");
            assert_eq!(k.rolling_period, 144);
            assert!(real_starts.contains(&k.rolling_start_interval_number.get()));
        }

        // Indexes.
        let index = String::from_utf8(object(&h, "index.txt").await).unwrap();
        assert_eq!(index, format!("{zip_path}\n"));
        let list: serde_json::Value =
            serde_json::from_slice(&object(&h, "440/list.json").await).unwrap();
        assert_eq!(
            list,
            serde_json::json!([{"region": "440", "url": format!("/exports/{zip_path}"), "created": h.clock.now_ts() * 1000}])
        );

        // Served with cache headers and an entity tag.
        let resp = h.get(&format!("/exports/{zip_path}")).await;
        assert_eq!(resp.status(), 200);
        let headers = resp.headers().clone();
        assert_eq!(headers["content-type"], "application/zip");
        assert_eq!(headers["cache-control"], "public, max-age=86400");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert_eq!(resp.bytes().await.unwrap().to_vec(), zip);
        let again = h
            .http
            .get(format!("{}/exports/{zip_path}", h.base))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        // Revalidating again (the tag now remembered for this version of
        // the object): still 304 with the tag; another tag gets the file.
        let revalidate = |path: String, tag: String| {
            let http = h.http.clone();
            let url = format!("{}{path}", h.base);
            async move {
                http.get(url)
                    .header("if-none-match", tag)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let third = revalidate(format!("/exports/{zip_path}"), etag.clone()).await;
        assert_eq!(third.status(), 304);
        assert_eq!(third.headers()["etag"].to_str().unwrap(), etag);
        // If-None-Match compares weakly (RFC 9110 §13.1.2): the tag a
        // compressing proxy weakened, alone or in a list, still gets 304.
        for tag in [format!("W/{etag}"), format!("\"0\", W/{etag}")] {
            let weak = revalidate(format!("/exports/{zip_path}"), tag.clone()).await;
            assert_eq!(weak.status(), 304, "If-None-Match: {tag}");
        }
        let other = revalidate(format!("/exports/{zip_path}"), "\"0\"".into()).await;
        assert_eq!(other.status(), 200);
        assert_eq!(other.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(other.headers()["cache-control"], "public, max-age=86400");
        assert_eq!(other.bytes().await.unwrap().to_vec(), zip);
        let idx = h.get("/exports/index.txt").await;
        assert_eq!(idx.headers()["cache-control"], "no-cache");
        let index_tag = idx.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(
            revalidate("/exports/index.txt".into(), index_tag.clone())
                .await
                .status(),
            304
        );
        assert_eq!(
            h.get("/exports/440/list.json").await.headers()["cache-control"],
            "no-cache"
        );
        for bad in [
            "/exports/../keyserver.sqlite3",
            "/exports/440/none.zip",
            "/exports/x.bin",
        ] {
            assert_eq!(h.get(bad).await.status(), 404, "{bad}");
        }

        // Rebuilding the batch gives the very same bytes.
        let batch = h.store.batch(r.built[0]).await.unwrap().unwrap();
        let rebuilt = h.exporter().build(&batch).await.unwrap();
        assert_eq!(rebuilt.len(), 1);
        assert_eq!(rebuilt[0].zip, zip, "byte-identical rebuild");

        // Nothing more to do at the same time.
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert!(r.built.is_empty() && r.files.is_empty());

        // Today's key comes out once its day has ended (and its window aged).
        h.clock.advance(chrono::Duration::hours(22));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert!(r.files.is_empty(), "{r:?}");
        h.clock.advance(chrono::Duration::hours(1));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(r.files.len(), 1, "{r:?}");
        let export = open(&h, &object(&h, &r.files[0]).await);
        assert!(export.keys.iter().any(|k| *k.key_data.as_bytes() == todays));
        let index = String::from_utf8(object(&h, "index.txt").await).unwrap();
        assert_eq!(index.lines().count(), 2);
        // The rewritten index is not mistaken for the one revalidated or
        // downloaded before.
        let fresh = revalidate("/exports/index.txt".into(), index_tag).await;
        assert_eq!(fresh.status(), 200);
        assert_eq!(fresh.text().await.unwrap(), index);
        assert_eq!(
            h.get("/exports/index.txt").await.text().await.unwrap(),
            index
        );
        assert_eq!(
            index.lines().next(),
            Some(zip_path.as_str()),
            "oldest first"
        );
    }
}

#[tokio::test]
async fn export_now_with_zero_min_age_closes_the_window_but_keeps_the_embargo() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let mut keys = h.keys(3);
        let today = todays_key(&mut h);
        keys.push(today.clone());
        assert_eq!(h.publish_keys(keys).await, 200);
        h.clock.advance(chrono::Duration::minutes(20));
        let r = h.exporter().run_cycle(AT_ONCE).await.unwrap();
        assert_eq!(r.files.len(), 1, "{}", db.label);
        let start = common::t0().timestamp();
        assert_eq!(
            r.files[0],
            format!("440/{start}-{}-00001.zip", start + 1200)
        );
        let export = open(&h, &object(&h, &r.files[0]).await);
        let todays: [u8; 16] = STANDARD.decode(&today.key).unwrap().try_into().unwrap();
        assert!(!export.keys.iter().any(|k| *k.key_data.as_bytes() == todays));
        // The next window resumes where this one was cut.
        let k = h.keys(1);
        assert_eq!(h.publish_keys(k).await, 200);
        h.clock.advance(chrono::Duration::minutes(5));
        let r = h.exporter().run_cycle(AT_ONCE).await.unwrap();
        // The key uploaded at 01:20 was stamped 01:00 (hour-truncated) but
        // still lands in a batch.
        assert_eq!(r.files.len(), 1, "{r:?}");
        assert_eq!(
            r.files[0],
            format!("440/{}-{}-00001.zip", start + 1200, start + 1500)
        );
    }
}

#[tokio::test]
async fn two_exporters_build_each_batch_exactly_once() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        for _ in 0..4 {
            let keys = h.keys(5);
            assert_eq!(h.publish_keys(keys).await, 200);
            h.clock.advance(chrono::Duration::hours(1));
        }
        h.clock.advance(chrono::Duration::hours(2));
        let url = db.url.clone();
        let make = |seed: u64| {
            let url = url.clone();
            let storage = h.storage.clone();
            let signer = h.signer.clone();
            let clock = h.clock.clone();
            async move {
                let store = Store::connect(&url, 2).await.unwrap();
                Exporter::new(
                    store,
                    storage,
                    vec![signer],
                    common::export_settings(),
                    clock,
                    Box::new(<rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(seed)),
                )
            }
        };
        let (a, b) = (make(1).await, make(2).await);
        let (ra, rb) = tokio::join!(a.run_cycle(TWO_HOURS), b.run_cycle(TWO_HOURS));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let built: Vec<i64> = ra.built.iter().chain(&rb.built).copied().collect();
        let unique: HashSet<i64> = built.iter().copied().collect();
        assert_eq!(
            built.len(),
            unique.len(),
            "{}: a batch built twice: {ra:?} {rb:?}",
            db.label
        );
        assert_eq!(unique.len(), 4, "{ra:?} {rb:?}");
        let files = h.store.export_files("440").await.unwrap();
        assert_eq!(files.len(), 4);
        let index = String::from_utf8(object(&h, "index.txt").await).unwrap();
        assert_eq!(index.lines().count(), 4, "indexes list every file");
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&object(&h, "440/list.json").await).unwrap();
        assert_eq!(list.len(), 4);
        let fakes = h.store.fake_count().await.unwrap() as i64;
        let total: i64 = files.iter().map(|f| f.key_count).sum();
        assert_eq!(fakes + 20, total, "fakes stored once per batch");
    }
}

/// A cycle that fails after claiming a batch (here: the object store
/// refuses the write) leaves the batch leased to its exporter; that
/// exporter's next cycle builds it at once instead of waiting out the
/// 10-minute lease, and no other exporter takes it meanwhile.
#[tokio::test]
async fn an_exporter_takes_up_its_own_failed_batch_at_the_next_cycle() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let keys = h.keys(5);
        assert_eq!(h.publish_keys(keys).await, 200);
        h.clock.advance(chrono::Duration::hours(3));
        let dir = tempfile::tempdir().unwrap();
        let storage = keyserver::storage::ExportStorage::local(dir.path()).unwrap();
        let make = |seed: u64| {
            let url = db.url.clone();
            let storage = storage.clone();
            let signer = h.signer.clone();
            let clock = h.clock.clone();
            async move {
                Exporter::new(
                    Store::connect(&url, 2).await.unwrap(),
                    storage,
                    vec![signer],
                    common::export_settings(),
                    clock,
                    Box::new(<rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(seed)),
                )
            }
        };
        let (a, b) = (make(1).await, make(2).await);

        // A file where the region's folder should be: the write fails.
        std::fs::write(dir.path().join("440"), b"in the way").unwrap();
        let failed = a.run_cycle(TWO_HOURS).await;
        assert!(failed.is_err(), "{}: the write failed", db.label);
        let pending = h.store.batches("440").await.unwrap();
        assert_eq!(pending.len(), 1, "{}", db.label);
        assert_eq!(pending[0].status, "pending");

        // Another exporter leaves it alone while the lease lasts ...
        std::fs::remove_file(dir.path().join("440")).unwrap();
        let other = b.run_cycle(TWO_HOURS).await.unwrap();
        assert!(other.built.is_empty(), "{}: {other:?}", db.label);
        // ... and the one holding it builds it at its next cycle.
        let again = a.run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(again.built, vec![pending[0].id], "{}", db.label);
        assert_eq!(again.files.len(), 1);
        let done = h.store.batches("440").await.unwrap();
        assert_eq!(done[0].status, "done");
        let index = std::fs::read_to_string(dir.path().join("index.txt")).unwrap();
        assert_eq!(index.lines().collect::<Vec<_>>(), again.files);
    }
}

fn stored(n: usize, start: i64, hour: i64, seed: u8) -> Vec<StoredKey> {
    (0..n)
        .map(|i| {
            let mut key_data = [seed; 16];
            key_data[..8]
                .copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
            StoredKey {
                key_data,
                rolling_start: start - 144 * (i as i64 % 14 + 1),
                rolling_period: 144,
                transmission_risk: 2,
                report_type: 1,
                created_at: hour,
                available_at: hour,
            }
        })
        .collect()
}

#[tokio::test]
async fn big_batches_are_split_into_files_of_at_most_the_maximum() {
    for db in common::backends().await {
        let mut settings = common::export_settings();
        settings.max_keys_per_file = 500;
        let h = common::start_with(&db, settings).await;
        let hour = h.now() - h.now() % 3600;
        let today = i64::from(h.now_interval()) - i64::from(h.now_interval()) % 144;
        insert(&h.store, &stored(1200, today, hour, 1), "a", hour).await;
        h.clock.advance(chrono::Duration::hours(3));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(r.files.len(), 3, "{}", db.label);
        let mut ends = Vec::new();
        let mut total = 0;
        for p in &r.files {
            let e = open(&h, &object(&h, p).await);
            assert!(e.keys.len() <= 500);
            total += e.keys.len();
            ends.push(e.end_timestamp);
        }
        assert_eq!(total, 1200, "no padding over 1,000 keys");
        let end = (hour + 3600) as u64;
        assert_eq!(ends, [end + 1, end + 2, end + 3], "end bumped per file");
    }
}

#[tokio::test]
async fn retention_deletes_old_keys_and_files_and_rewrites_the_indexes() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let keys = h.keys(5);
        assert_eq!(h.publish_keys(keys).await, 200);
        h.clock.advance(chrono::Duration::hours(3));
        let first = h.exporter().run_cycle(TWO_HOURS).await.unwrap().files;
        assert_eq!(first.len(), 1);
        // Served once (and so held in the server's memory).
        let served = h.get(&format!("/exports/{}", first[0])).await;
        assert_eq!(served.status(), 200);

        h.clock.advance(chrono::Duration::days(14));
        let keys = h.keys(5);
        assert_eq!(h.publish_keys(keys).await, 200);
        h.clock.advance(chrono::Duration::hours(3));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(r.deleted_files, first, "{}", db.label);
        assert_eq!(r.deleted_keys, 5);
        assert_eq!(h.store.key_count().await.unwrap(), 5);
        assert!(h.storage.get(&first[0]).await.unwrap().is_none());
        assert_eq!(
            h.get(&format!("/exports/{}", first[0])).await.status(),
            404,
            "{}: a deleted file is not served from memory",
            db.label
        );
        let index = String::from_utf8(object(&h, "index.txt").await).unwrap();
        assert_eq!(index.lines().collect::<Vec<_>>(), [r.files[0].as_str()]);
        // Statistics are kept.
        let days = h.store.stats_days().await.unwrap();
        assert_eq!(days.iter().map(|d| d.registrations).sum::<u64>(), 2);
    }
}

#[tokio::test]
async fn protoc_decodes_an_export_with_a_schema_written_from_the_field_table() {
    if std::process::Command::new("protoc")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var_os("CI").is_some() {
            panic!("protoc is missing under CI: scripts/test installs protobuf-compiler");
        }
        eprintln!("SKIP protoc: install Debian's protobuf-compiler to run this test");
        return;
    }
    let db = common::backends().await.remove(0);
    let mut h = common::start(&db).await;
    let keys = h.keys(3);
    assert_eq!(h.publish_keys(keys).await, 200);
    h.clock.advance(chrono::Duration::hours(3));
    let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
    let archive = read_zip(&object(&h, &r.files[0]).await).unwrap();
    let n = TemporaryExposureKeyExport::decode(&archive.export_bin)
        .unwrap()
        .keys
        .len();

    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let decode = |message: &str, input: &[u8]| {
        use std::io::Write as _;
        let mut child = std::process::Command::new("protoc")
            .arg(format!("--proto_path={}", schema.display()))
            .arg(format!("--decode={message}"))
            .arg("export.proto")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(&archive.export_bin[..16], b"EK Export v1    ");
    let text = decode("TemporaryExposureKeyExport", &archive.export_bin[16..]);
    assert!(text.contains("region: \"440\""), "{text}");
    assert!(text.contains("batch_num: 1") && text.contains("batch_size: 1"));
    assert!(text.contains("verification_key_id: \"440\""));
    assert!(text.contains("signature_algorithm: \"1.2.840.10045.4.3.2\""));
    assert_eq!(text.matches("keys {").count(), n);
    assert_eq!(text.matches("report_type: CONFIRMED_TEST").count(), n);
    assert_eq!(text.matches("transmission_risk_level: 2").count(), n);
    assert!(!text.contains("rolling_period"), "omitted when 144");
    assert!(!text.contains("days_since_onset"));
    let sig = decode("TEKSignatureList", &archive.export_sig);
    assert_eq!(sig.matches("signatures {").count(), 1);
    assert!(sig.contains("signature: \""));
}

#[tokio::test]
async fn statistics_appear_only_above_the_threshold() {
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let stats = |h: &Harness| {
            let url = format!("{}/api/stats", h.base);
            let http = h.http.clone();
            async move {
                http.get(url)
                    .send()
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()
            }
        };
        for _ in 0..4 {
            let keys = h.keys(2);
            assert_eq!(h.publish_keys(keys).await, 200);
        }
        let s = stats(&h).await;
        assert_eq!(
            s["totalRegistrations"],
            serde_json::Value::Null,
            "{}",
            db.label
        );
        assert_eq!(s["days"], serde_json::json!([]));
        let page = h.get("/stats").await.text().await.unwrap();
        assert!(page.contains("5件に達するまで公表しません"));
        let keys = h.keys(2);
        assert_eq!(h.publish_keys(keys).await, 200);
        let s = stats(&h).await;
        assert_eq!(s["totalRegistrations"], 5);
        assert_eq!(s["totalKeys"], 10);
        assert_eq!(
            s["days"],
            serde_json::json!([{"date": "2020-12-16", "registrations": 5, "keys": 10, "cumulativeRegistrations": 5, "cumulativeKeys": 10}])
        );
        let page = h.get("/stats").await.text().await.unwrap();
        assert!(
            page.contains("陽性者登録の累計件数は12月16日10時時点で5件です。"),
            "{page}"
        );
        assert!(page.contains("<svg"));
    }
}

/// The files one export cycle writes are the contract with every phone and
/// every other server that downloads them: a snapshot of their names, the
/// indexes, each export's header, signature infos, key attributes and the
/// digests of `export.bin` and the zip. The harness's clock, keys and random
/// streams are fixed, so the files are the same bytes on every run and on
/// both backends; a changed byte shows as a snapshot diff in review
/// (`INSTA_UPDATE=always` rewrites it; CONTRIBUTING.md).
#[tokio::test]
async fn the_files_of_an_export_cycle_are_the_contract() {
    use sha2::Digest as _;
    let mut seen: Vec<(String, serde_json::Value)> = Vec::new();
    for db in common::backends().await {
        let mut h = common::start(&db).await;
        let keys = h.keys(14);
        let req = h.request(keys);
        assert_eq!(h.publish(&req).await.0, 200);
        h.clock.advance(chrono::Duration::hours(3));
        let r = h.exporter().run_cycle(TWO_HOURS).await.unwrap();
        assert_eq!(r.files.len(), 1, "{}", db.label);

        let mut files = Vec::new();
        for path in h.storage.list().await.unwrap() {
            let bytes = object(&h, &path).await;
            let about = if path.ends_with(".zip") {
                let archive = read_zip(&bytes).unwrap();
                let export = open(&h, &bytes);
                let mut attributes = std::collections::BTreeMap::<String, usize>::new();
                for k in &export.keys {
                    let a = format!(
                        "risk {:?}, {:?}, onset {:?}, period {}",
                        k.transmission_risk_level,
                        k.report_type,
                        k.days_since_onset_of_symptoms,
                        k.rolling_period
                    );
                    *attributes.entry(a).or_default() += 1;
                }
                let infos: Vec<_> = export
                    .signature_infos
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "verification_key_id": s.verification_key_id,
                            "verification_key_version": s.verification_key_version,
                            "signature_algorithm": s.signature_algorithm,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "region": export.region,
                    "batch": [export.batch_num, export.batch_size],
                    "start_timestamp": export.start_timestamp,
                    "end_timestamp": export.end_timestamp,
                    "signature_infos": infos,
                    "keys": export.keys.len(),
                    "revised_keys": export.revised_keys.len(),
                    "key_attributes": attributes,
                    "export_bin_sha256": hex::encode(sha2::Sha256::digest(&archive.export_bin)),
                    "zip_sha256": hex::encode(sha2::Sha256::digest(&bytes)),
                })
            } else {
                serde_json::Value::String(String::from_utf8(bytes).unwrap())
            };
            files.push(serde_json::json!({ "path": path, "content": about }));
        }
        seen.push((db.label.to_string(), serde_json::Value::Array(files)));
    }
    for (label, files) in &seen[1..] {
        assert_eq!(
            files, &seen[0].1,
            "{label} writes other files than {}",
            seen[0].0
        );
    }
    insta::assert_json_snapshot!(seen[0].1);
}
