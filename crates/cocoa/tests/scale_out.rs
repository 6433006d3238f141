//! The production shape, with the real binary: two key server replicas and
//! two exporter replicas as separate `cocoa serve` processes on one
//! PostgreSQL database and one S3-compatible bucket (moto's server mode).
//! Publishes alternate between the replicas; then every accepted key is in
//! exactly one export file, no batch is recorded twice or cut over another's
//! window, and the index lists exactly the files in the bucket.
//!
//! Needs `COCOA_TEST_DATABASE_URL` (`scripts/with-postgres`) and
//! `python3 -m moto.server`; skipped without them, failing under CI.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyserver::store::Store;
use support::{Moto, Outcome, Server};

const PUBLISHES: usize = 300;
const KEYS: u32 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_keyservers_and_two_exporters_share_one_database_and_one_bucket() {
    let took = Instant::now();
    let Some(db) = support::fresh_postgres("scale_out").await else {
        return;
    };
    let Some(moto) = Moto::start("cocoa-exports").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let minter = support::trust_bench_issuer(&db, dir.path());
    let export_key = support::export_public_key(&db, dir.path());
    let storage = format!(
        "kind = \"s3\"\nbucket = \"{}\"\nprefix = \"c19r\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\nallow_http = true",
        moto.bucket, moto.endpoint
    );
    // A cycle every second, each cutting one window up to a second ago
    // (`batch_period = 0`), so that both exporters race to cut and build.
    let config = support::write_config(
        dir.path(),
        "cocoa.toml",
        &db,
        "batch_period = \"0s\"\nmin_age = \"1s\"\ninterval = \"1s\"",
        &storage,
    );
    // Every process starts at once, as an orchestrator would start them.
    let spawned: Vec<_> = [
        ("keyserver-1", "keyserver"),
        ("keyserver-2", "keyserver"),
        ("exporter-1", "exporter"),
        ("exporter-2", "exporter"),
    ]
    .into_iter()
    .map(|(name, role)| support::spawn(name, role, &config, &dir.path().join(name)))
    .collect();
    let mut servers: Vec<Server> = spawned.into_iter().map(|s| s.ready()).collect();
    let (keyservers, exporters) = servers.split_at_mut(2);
    let http = reqwest::Client::new();

    // Publishes alternate between the replicas, 8 at a time, paced over
    // about 4 s so that they land in several windows.
    let prepared = Arc::new(support::prepare(&minter, PUBLISHES, KEYS));
    let bases: Arc<Vec<String>> = Arc::new(keyservers.iter().map(|s| s.url("")).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (http, prepared, bases) = (http.clone(), prepared.clone(), bases.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (worker..PUBLISHES).step_by(8) {
                let at = started + Duration::from_millis(i as u64 * 4000 / PUBLISHES as u64);
                tokio::time::sleep_until(at.into()).await;
                let outcome = support::publish(&http, &bases[i % 2], &prepared[i].body).await;
                out.push((i, outcome));
            }
            out
        }));
    }
    let mut accepted = BTreeSet::new();
    let mut per_replica = [0.0; 2];
    for t in tasks {
        for (i, outcome) in t.await.unwrap() {
            assert_eq!(
                outcome,
                Outcome::Answered(200, u64::from(KEYS)),
                "publish {i} to replica {}",
                i % 2
            );
            accepted.extend(prepared[i].keys.iter().copied());
            per_replica[i % 2] += 1.0;
        }
    }
    assert_eq!(accepted.len(), PUBLISHES * KEYS as usize);
    for (s, n) in keyservers.iter().zip(per_replica) {
        let m = s.metrics(&http).await;
        assert_eq!(
            m.get("keyserver_publish_total{outcome=\"stored\"}"),
            Some(&n),
            "{}: each replica stored what it acknowledged",
            s.name
        );
    }

    // Wait until the bucket's index lists files holding every accepted key.
    let mut seen = BTreeSet::new();
    let mut fetched = BTreeSet::new();
    let waiting = Instant::now();
    while !accepted.is_subset(&seen) {
        assert!(
            waiting.elapsed() < Duration::from_secs(40),
            "{} of {} accepted keys exported after 40 s",
            accepted.intersection(&seen).count(),
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Some(index) = moto.get(&http, "c19r/index.txt").await else {
            continue;
        };
        for path in String::from_utf8(index).unwrap().lines() {
            if fetched.insert(path.to_owned()) {
                let zip = moto.get(&http, &format!("c19r/{path}")).await.unwrap();
                seen.extend(support::decode(path, &zip, &export_key).keys);
            }
        }
    }

    // Two more cycles, then the exporters stop (gracefully) so that the
    // bucket holds still for the final count. What each built is read from
    // its log after it stopped (its metrics could not count a cycle that
    // ran between the scrape and the stop).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut built = 0;
    let mut files_written = 0;
    for e in exporters.iter_mut() {
        let scraped = e.metrics(&http).await["keyserver_export_batches_total"];
        e.terminate();
        let log = e.stderr();
        let exported: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("batch exported"))
            .collect();
        let files: usize = exported
            .iter()
            .map(|l| {
                let (_, rest) = l.split_once(" files=").expect("files= in the log line");
                rest.split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        eprintln!("{}: {} batches, {files} files", e.name, exported.len());
        assert!(
            scraped <= exported.len() as f64,
            "{}: the metric counted {scraped} batches, the log {}",
            e.name,
            exported.len()
        );
        built += exported.len();
        files_written += files;
        for duplicate_work in ["lease lost", "padded by another exporter"] {
            assert!(!log.contains(duplicate_work), "{}: {log}", e.name);
        }
    }

    // The bucket, through the S3 API.
    let objects: BTreeSet<String> = moto.list(&http, "c19r/").await.into_iter().collect();
    let index = String::from_utf8(moto.get(&http, "c19r/index.txt").await.unwrap()).unwrap();
    let listed: Vec<String> = index.lines().map(|p| format!("c19r/{p}")).collect();
    let zips: BTreeSet<String> = objects
        .iter()
        .filter(|k| k.ends_with(".zip"))
        .cloned()
        .collect();
    assert_eq!(
        listed.iter().cloned().collect::<BTreeSet<_>>(),
        zips,
        "index.txt lists exactly the zips in the bucket"
    );
    assert_eq!(listed.len(), zips.len(), "no path listed twice");
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "oldest first");
    assert_eq!(
        objects.len(),
        zips.len() + 2,
        "besides the zips only index.txt and 440/list.json: {objects:?}"
    );
    let list: serde_json::Value =
        serde_json::from_slice(&moto.get(&http, "c19r/440/list.json").await.unwrap()).unwrap();
    let list_paths: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap().trim_start_matches("/exports/"))
        .collect();
    assert_eq!(
        list_paths,
        index.lines().collect::<Vec<_>>(),
        "list.json lists the same files"
    );
    // Each key server replica serves the bucket's index.
    for s in keyservers.iter() {
        let served = http
            .get(s.url("/exports/index.txt"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(served, index, "{}", s.name);
    }

    // Every file verifies; every accepted key is in exactly one of them.
    let mut files = Vec::new();
    for key in &listed {
        let zip = moto.get(&http, key).await.unwrap();
        files.push(support::decode(key, &zip, &export_key));
    }
    assert!(files.iter().all(|f| f.region == "440"));
    let in_files = support::check_exactly_once(&files, &accepted);
    assert_eq!(files_written, files.len(), "each file written once");

    // The database agrees: every stored key is an accepted one, the rest of
    // the files are the batches' fakes, each batch was recorded once.
    let store = Store::connect(&db, 1).await.unwrap();
    assert_eq!(store.key_count().await.unwrap(), accepted.len() as u64);
    assert_eq!(
        store.fake_count().await.unwrap() as usize,
        in_files - accepted.len(),
        "every key in the files that was not published is a stored fake"
    );
    let batches = store.batches("440").await.unwrap();
    assert!(batches.iter().all(|b| b.status == "done"), "{batches:?}");
    assert_eq!(
        built,
        batches.len(),
        "the exporters recorded each batch exactly once between them"
    );
    let recorded: Vec<String> = store
        .export_files("440")
        .await
        .unwrap()
        .into_iter()
        .map(|f| format!("c19r/{}", f.path))
        .collect();
    assert_eq!(recorded, listed);
    store.close().await;
    eprintln!(
        "{} publishes, {} keys, {} files, {} batches, in {:.1} s",
        PUBLISHES,
        accepted.len(),
        files.len(),
        batches.len(),
        took.elapsed().as_secs_f64()
    );
}
