//! Faults, with the real binary on PostgreSQL:
//!
//! - a key server replica killed (SIGKILL) during a publish load: every
//!   publish answered 200 is exported, and the phones' retries of the
//!   unanswered ones (same bodies) succeed and store nothing twice;
//! - PostgreSQL killed and started again under a publish load: the key
//!   server and the exporter recover on their own and lose nothing they
//!   acknowledged;
//! - an exporter killed while it builds a large batch: another exporter
//!   rebuilds it after the lease expires, byte-identical to a clean build
//!   of the same database.
//!
//! Needs `COCOA_TEST_DATABASE_URL` (`scripts/with-postgres`), and for the
//! restart test PostgreSQL's binaries (the test runs its own cluster so it
//! can stop it); skipped without them, failing under CI.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use en_protocol::export::VerificationKey;
use keyserver::store::Store;
use sqlx::Connection as _;
use support::{File, Outcome, Prepared, Server};

const KEYS: u32 = 10;

/// A cycle every second, each cutting one window up to a second ago
/// (`batch_period = 0`: no pile of empty fixed windows since the hour the
/// keys' upload time is truncated to), files in a folder every process
/// shares.
fn quick_exports(dir: &Path, db: &str) -> std::path::PathBuf {
    support::write_config(
        dir,
        "cocoa.toml",
        db,
        "batch_period = \"0s\"\nmin_age = \"1s\"\ninterval = \"1s\"",
        &format!(
            "kind = \"local\"\npath = \"{}\"",
            dir.join("exports").display()
        ),
    )
}

/// The files `index.txt` lists in a local export folder, decoded.
fn local_exports(exports: &Path, key: &VerificationKey) -> Vec<File> {
    let Ok(index) = std::fs::read_to_string(exports.join("index.txt")) else {
        return Vec::new();
    };
    index
        .lines()
        .map(|p| support::decode(p, &std::fs::read(exports.join(p)).unwrap(), key))
        .collect()
}

/// Waits until the exports hold every key of `keys`, then checks each is
/// in exactly one file.
async fn wait_exported(exports: &Path, key: &VerificationKey, keys: &BTreeSet<[u8; 16]>) {
    let t = Instant::now();
    loop {
        let files = local_exports(exports, key);
        let seen: BTreeSet<[u8; 16]> = files.iter().flat_map(|f| f.keys.clone()).collect();
        if keys.is_subset(&seen) {
            support::check_exactly_once(&files, keys);
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "{} of {} acknowledged keys exported after 90 s",
            keys.intersection(&seen).count(),
            keys.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Sends `prepared` with `workers` clients, request `i` to `targets(i)` at
/// `i / rate` seconds; returns each request's outcome.
async fn load(
    http: &reqwest::Client,
    prepared: &Arc<Vec<Prepared>>,
    workers: usize,
    rate: f64,
    target: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Vec<Outcome> {
    let started = Instant::now();
    let n = prepared.len();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, prepared, target) = (http.clone(), prepared.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (w..n).step_by(workers) {
                let at = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                out.push((
                    i,
                    support::publish(&http, &target(i), &prepared[i].body).await,
                ));
            }
            out
        }));
    }
    let mut outcomes = vec![Outcome::Unanswered(String::new()); n];
    for t in tasks {
        for (i, o) in t.await.unwrap() {
            outcomes[i] = o;
        }
    }
    outcomes
}

fn kill9(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_keyserver_loses_no_acknowledged_publish_and_retries_store_nothing_twice() {
    let took = Instant::now();
    let Some(db) = support::fresh_postgres("fault_ks").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let minter = support::trust_bench_issuer(&db, dir.path());
    let export_key = support::export_public_key(&db, dir.path());
    let config = quick_exports(dir.path(), &db);
    let a = support::spawn("keyserver-a", "keyserver", &config, &dir.path().join("a"));
    let b = support::spawn("keyserver-b", "keyserver", &config, &dir.path().join("b"));
    let e = support::spawn("exporter", "exporter", &config, &dir.path().join("e"));
    let (mut a, b, _e) = (a.ready(), b.ready(), e.ready());
    let http = reqwest::Client::new();

    // 400 publishes at 200/s alternating between the replicas; replica A is
    // killed 1 s in, in the middle of the load.
    let prepared = Arc::new(support::prepare(&minter, 400, KEYS));
    let (url_a, url_b) = (a.url(""), b.url(""));
    let pid_a = a.child.id();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        kill9(pid_a);
    });
    let outcomes = load(
        &http,
        &prepared,
        16,
        200.0,
        Arc::new(move |i| {
            if i % 2 == 0 {
                url_a.clone()
            } else {
                url_b.clone()
            }
        }),
    )
    .await;
    killer.await.unwrap();
    let _ = a.child.wait();

    let mut acknowledged = BTreeSet::new();
    let mut unanswered = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Outcome::Answered(200, n) => {
                assert_eq!(*n, u64::from(KEYS), "publish {i}");
                acknowledged.extend(prepared[i].keys.iter().copied());
            }
            Outcome::Unanswered(_) => {
                assert_eq!(i % 2, 0, "only replica A's publishes go unanswered: {o:?}");
                unanswered.push(i);
            }
            other => panic!("publish {i}: {other:?}"),
        }
    }
    assert!(
        !unanswered.is_empty() && unanswered.len() <= 200,
        "the kill fell inside the load: {} unanswered",
        unanswered.len()
    );

    // Every acknowledged publish is exported, while A is still down.
    wait_exported(&dir.path().join("exports"), &export_key, &acknowledged).await;

    // A comes back (a new process on the same database); the phones retry
    // what went unanswered, the same bodies, half on A and half on B.
    let a = Server::start("keyserver-a2", "keyserver", &config, &dir.path().join("a"));
    let mut retried = 0;
    for (n, &i) in unanswered.iter().enumerate() {
        let target = if n % 2 == 0 { a.url("") } else { b.url("") };
        let o = support::publish(&http, &target, &prepared[i].body).await;
        assert_eq!(o, Outcome::Answered(200, u64::from(KEYS)), "retry of {i}");
        retried += 1;
    }
    // A phone whose answer from A was lost on the way (stored, never
    // received) retries on B: the first answer again, nothing stored.
    let answered_by_a: Vec<usize> = (0..prepared.len())
        .step_by(2)
        .filter(|i| !unanswered.contains(i))
        .take(20)
        .collect();
    assert!(!answered_by_a.is_empty());
    for &i in &answered_by_a {
        let o = support::publish(&http, &b.url(""), &prepared[i].body).await;
        assert_eq!(o, Outcome::Answered(200, u64::from(KEYS)), "repeat of {i}");
    }
    let m = b.metrics(&http).await;
    assert!(
        m["keyserver_publish_total{outcome=\"repeat\"}"] >= answered_by_a.len() as f64,
        "{m:?}"
    );
    let everything: BTreeSet<[u8; 16]> = prepared.iter().flat_map(|p| p.keys.clone()).collect();
    wait_exported(&dir.path().join("exports"), &export_key, &everything).await;

    // Stored once: as many keys and publish records as were sent.
    let store = Store::connect(&db, 1).await.unwrap();
    assert_eq!(store.key_count().await.unwrap(), everything.len() as u64);
    assert_eq!(store.publish_count().await.unwrap(), prepared.len() as u64);
    store.close().await;
    let mut repeats = 0.0;
    for s in [&a, &b] {
        repeats += s
            .metrics(&http)
            .await
            .get("keyserver_publish_total{outcome=\"repeat\"}")
            .copied()
            .unwrap_or(0.0);
    }
    eprintln!(
        "{} acknowledged before the kill, {} unanswered and retried, {} answered repeats ({} of them lost answers re-sent on purpose), in {:.1} s",
        acknowledged.len() / KEYS as usize,
        retried,
        repeats,
        answered_by_a.len(),
        took.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_recover_from_a_postgres_restart_and_lose_nothing_acknowledged() {
    let took = Instant::now();
    let Some(pg) = support::OwnPostgres::start() else {
        return;
    };
    let db = support::create_database(&pg.admin_url(), "fault_pg").await;
    let dir = tempfile::tempdir().unwrap();
    let minter = support::trust_bench_issuer(&db, dir.path());
    let export_key = support::export_public_key(&db, dir.path());
    let config = quick_exports(dir.path(), &db);
    let k = support::spawn("keyserver", "keyserver", &config, &dir.path().join("k"));
    let e = support::spawn("exporter", "exporter", &config, &dir.path().join("e"));
    let (k, e) = (k.ready(), e.ready());
    let http = reqwest::Client::new();

    // 400 publishes at 80/s (5 s); PostgreSQL is killed 1.5 s in and
    // started again 2 s later.
    let prepared = Arc::new(support::prepare(&minter, 400, KEYS));
    let url = k.url("");
    let restarter = {
        let pg = &pg;
        async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let down = Instant::now();
            tokio::task::block_in_place(|| pg.down("immediate"));
            tokio::time::sleep(Duration::from_secs(2)).await;
            tokio::task::block_in_place(|| pg.up());
            down.elapsed()
        }
    };
    let (outcomes, outage) = tokio::join!(
        load(&http, &prepared, 16, 80.0, Arc::new(move |_| url.clone())),
        restarter
    );
    let mut acknowledged = BTreeSet::new();
    let mut failed = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        match o {
            Outcome::Answered(200, n) => {
                assert_eq!(*n, u64::from(KEYS), "publish {i}");
                acknowledged.extend(prepared[i].keys.iter().copied());
            }
            _ => failed.push(i),
        }
    }
    let statuses: BTreeSet<String> = failed
        .iter()
        .map(|&i| match &outcomes[i] {
            Outcome::Answered(s, _) => s.to_string(),
            Outcome::Unanswered(e) => e.clone(),
        })
        .collect();
    // Publishes during the outage either waited for a connection (the pool
    // retries for up to 30 s) or failed with an error status; none may be
    // acknowledged and lost (checked below).
    assert!(
        failed
            .iter()
            .all(|&i| matches!(outcomes[i], Outcome::Answered(500..=599, _))),
        "failures are error answers, not dropped connections: {statuses:?}"
    );
    // Publishes after the restart succeeded without anyone touching the
    // server: the last ones were answered 200.
    let last = outcomes.len() - 1;
    assert_eq!(
        outcomes[last],
        Outcome::Answered(200, u64::from(KEYS)),
        "the key server serves again after the restart"
    );
    let ready = http.get(k.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Nothing acknowledged is lost; the exporter picked up again.
    wait_exported(&dir.path().join("exports"), &export_key, &acknowledged).await;
    // The phones retry the publishes that failed: stored once each.
    for &i in &failed {
        let o = support::publish(&http, &k.url(""), &prepared[i].body).await;
        assert_eq!(o, Outcome::Answered(200, u64::from(KEYS)), "retry of {i}");
    }
    let everything: BTreeSet<[u8; 16]> = prepared.iter().flat_map(|p| p.keys.clone()).collect();
    wait_exported(&dir.path().join("exports"), &export_key, &everything).await;
    let store = Store::connect(&db, 1).await.unwrap();
    assert_eq!(store.key_count().await.unwrap(), everything.len() as u64);
    assert_eq!(store.publish_count().await.unwrap(), prepared.len() as u64);
    store.close().await;
    let m = e.metrics(&http).await;
    eprintln!(
        "outage {:.1} s: {} publishes failed ({statuses:?}) and were retried; exporter: {} failed cycles, {} batches; {:.1} s",
        outage.as_secs_f64(),
        failed.len(),
        m["keyserver_export_failures_total"],
        m["keyserver_export_batches_total"],
        took.elapsed().as_secs_f64()
    );
}

/// Keys of one past hour in the batch the exporter is killed building.
const BIG_BATCH: usize = 300_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_exporter_was_killed_is_rebuilt_byte_identically() {
    let took = Instant::now();
    let Ok(admin) = std::env::var("COCOA_TEST_DATABASE_URL") else {
        support::missing::<()>(
            "COCOA_TEST_DATABASE_URL not set (run through scripts/with-postgres)",
        );
        return;
    };
    let db = support::create_database(&admin, "fault_ex").await;
    let dir = tempfile::tempdir().unwrap();
    let export_key = support::export_public_key(&db, dir.path());

    // 300,000 keys uploaded three hours ago, filled as `cocoa bench
    // exporter` does: one batch, [hour, hour + 1 h), with no fakes.
    let now = en_protocol::time::Clock::now(&en_protocol::time::SystemClock).timestamp();
    let uploaded = now - 3 * 3600;
    let hour = uploaded - uploaded.rem_euclid(3600);
    let mut rng = rand::rngs::OsRng;
    let keys = keyserver::testkit::stored_keys(&mut rng, BIG_BATCH, uploaded);
    let inserted: BTreeSet<[u8; 16]> = keys.iter().map(|k| k.key_data).collect();
    let store = Store::connect(&db, 1).await.unwrap();
    store.bulk_insert_keys("440", &keys).await.unwrap();
    store.close().await;
    drop(keys);

    // A copy of the database (signing key included) for the reference:
    // a clean build that nobody interrupted.
    let reference_db = {
        let name = format!("fault_ex_ref_{:016x}", rand::random::<u64>());
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        let (_, orig) = db.rsplit_once('/').unwrap();
        sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {orig}"))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    };
    // Hour windows, exported an hour after they close; three files of
    // 100,000 keys; a lease of 4 s.
    let export = "batch_period = \"1h\"\nmin_age = \"1h\"\ninterval = \"1s\"\nlease = \"4s\"\nmax_keys_per_file = 100000";
    let config = support::write_config(
        dir.path(),
        "cocoa.toml",
        &db,
        export,
        &format!(
            "kind = \"local\"\npath = \"{}\"",
            dir.path().join("exports").display()
        ),
    );
    let reference_config = support::write_config(
        dir.path(),
        "reference.toml",
        &reference_db,
        export,
        &format!(
            "kind = \"local\"\npath = \"{}\"",
            dir.path().join("reference").display()
        ),
    );
    let out = support::cocoa()
        .args(["keyserver", "export-now", "--config"])
        .arg(&reference_config)
        .arg("--data")
        .arg(dir.path().join("cli-data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reference: Vec<String> = std::fs::read_dir(dir.path().join("reference/440"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".zip"))
        .collect();
    reference.sort();
    assert_eq!(
        reference,
        (1..=3)
            .map(|n| format!("{hour}-{}-{n:05}.zip", hour + 3600))
            .collect::<Vec<_>>()
    );

    // Exporter 1 takes the batch; it is killed as soon as its lease shows.
    let mut watch = sqlx::PgConnection::connect(&db).await.unwrap();
    let mut e1 = support::spawn("exporter-1", "exporter", &config, &dir.path().join("e1")).ready();
    let lease_seen = loop {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT status, lease_owner FROM export_batches WHERE region = '440' AND start_timestamp = $1",
        )
        .bind(hour)
        .fetch_optional(&mut watch)
        .await
        .unwrap();
        if let Some((status, owner)) = row {
            assert_eq!(
                status, "pending",
                "exporter 1 finished before it could be killed"
            );
            if owner.is_some() {
                e1.kill9();
                break Instant::now();
            }
        }
        assert!(took.elapsed() < Duration::from_secs(50), "no lease taken");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let (status, owner): (String, Option<String>) = sqlx::query_as(
        "SELECT status, lease_owner FROM export_batches WHERE region = '440' AND start_timestamp = $1",
    )
    .bind(hour)
    .fetch_one(&mut watch)
    .await
    .unwrap();
    assert_eq!(status, "pending", "killed mid-batch");
    assert!(owner.is_some(), "the dead exporter's lease is still there");
    let written_by_e1 = std::fs::read_dir(dir.path().join("exports/440"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        !dir.path().join("exports/index.txt").exists(),
        "nothing was published by the killed exporter"
    );

    // Exporter 2 completes it once the lease has expired.
    let e2 = support::spawn("exporter-2", "exporter", &config, &dir.path().join("e2")).ready();
    let t = Instant::now();
    loop {
        let (status,): (String,) = sqlx::query_as(
            "SELECT status FROM export_batches WHERE region = '440' AND start_timestamp = $1",
        )
        .bind(hour)
        .fetch_one(&mut watch)
        .await
        .unwrap();
        // The batch is recorded done before the cycle writes the index.
        if status == "done" && dir.path().join("exports/index.txt").exists() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "exporter 2 never completed the batch and its index: {}",
            e2.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after_kill = lease_seen.elapsed();
    watch.close().await.unwrap();
    assert!(
        after_kill >= Duration::from_secs(3),
        "taken over only after the 4 s lease expired ({after_kill:?})"
    );

    // The same files, byte for byte, as the clean build; signed, each key once.
    let index = std::fs::read_to_string(dir.path().join("exports/index.txt")).unwrap();
    let listed: Vec<&str> = index.lines().collect();
    assert_eq!(
        listed,
        reference
            .iter()
            .map(|n| format!("440/{n}"))
            .collect::<Vec<_>>()
    );
    let mut files = Vec::new();
    for path in &listed {
        let rebuilt = std::fs::read(dir.path().join("exports").join(path)).unwrap();
        let clean = std::fs::read(dir.path().join("reference").join(path)).unwrap();
        assert!(rebuilt == clean, "{path} differs from the clean build");
        files.push(support::decode(path, &rebuilt, &export_key));
    }
    assert_eq!(
        support::check_exactly_once(&files, &inserted),
        BIG_BATCH,
        "no fakes in a batch this large"
    );
    eprintln!(
        "exporter 1 killed holding the lease ({written_by_e1} files written by then); exporter 2 finished {:.1} s later; {} files byte-identical to the clean build; {:.1} s",
        after_kill.as_secs_f64(),
        listed.len(),
        took.elapsed().as_secs_f64()
    );
}
