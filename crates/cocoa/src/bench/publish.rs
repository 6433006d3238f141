//! `cocoa bench publish`: load on a running key server's `POST /v1/publish`.
//!
//! Publishes need certificates. The benchmark mints them itself with a
//! local issuer key (`--issuer-key`, PKCS#8 PEM, created with its public key
//! beside it as `<file>.pub` when missing) that the server must trust:
//!
//! ```text
//! cocoa bench publish --issuer-key bench-issuer.pem --init-only
//! cocoa keyserver add-issuer --data ./data --iss cocoa-bench \
//!     --health-authority-id bench --public-key bench-issuer.pem.pub
//! cocoa serve --role keyserver --data ./data &
//! cocoa bench publish --server http://127.0.0.1:8080 --issuer-key bench-issuer.pem \
//!     --requests 5000 --concurrency 32
//! ```
//!
//! Every request carries `--keys` fresh random keys (one a day before today)
//! and its own certificate; all are prepared before the clock starts. With
//! `--rate` requests start on a fixed schedule (open loop) and latency counts
//! from the scheduled start, so a server that falls behind pays for the
//! queueing too. `--server` given several times spreads the requests
//! round-robin over the replicas (request `i` to server `i mod n`), as a
//! load balancer would.
//!
//! `--cpu-pid` (Linux; the server processes, and PostgreSQL's postmaster)
//! adds the CPU time they used during the timed part and the database's
//! share of it (see [`cpu`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use keyserver::testkit::{Minter, daily_keys, publish_request};
use serde::Serialize;

use crate::commands::{bad_input, print_json};

/// `cocoa bench publish` flags.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Base URL of the running key server, e.g. http://127.0.0.1:8080;
    /// repeat it for replicas (requests go round-robin).
    #[arg(long, required_unless_present = "init_only")]
    pub server: Vec<String>,
    /// The bench issuer's PKCS#8 PEM key; created (with `<file>.pub`) when missing.
    #[arg(long)]
    pub issuer_key: PathBuf,
    /// `iss` of the minted certificates.
    #[arg(long, default_value = "cocoa-bench")]
    pub iss: String,
    /// `aud` of the minted certificates (the server's `audience`).
    #[arg(long, default_value = "cocoa-keyserver")]
    pub aud: String,
    /// Health authority ID the server trusts the bench issuer under.
    #[arg(long, default_value = "bench")]
    pub health_authority_id: String,
    /// Number of publishes.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Publishes per second to pace at (open loop); unlimited when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Keys per publish.
    #[arg(long, default_value_t = 15)]
    pub keys: u32,
    /// Only create the issuer key (and print its public key), then stop.
    #[arg(long)]
    pub init_only: bool,
    /// Process whose CPU time to report (repeatable): each server, and the
    /// PostgreSQL postmaster (its backends are counted with it).
    #[arg(long)]
    pub cpu_pid: Vec<u32>,
    /// PEM certificate to trust for https:// servers (a self-signed
    /// `cocoa serve --tls-cert`).
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Output {
    requests: usize,
    concurrency: usize,
    servers: usize,
    rate: Option<f64>,
    keys_per_request: u32,
    seconds: f64,
    publishes_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<cpu::Usage>,
}

fn issuer(a: &PublishArgs) -> anyhow::Result<Minter> {
    if let Ok(pem) = std::fs::read_to_string(&a.issuer_key) {
        return Minter::from_pkcs8_pem(&pem, &a.iss, &a.aud);
    }
    let m = Minter::generate(&mut rand::rngs::OsRng, &a.iss, &a.aud);
    let path = &a.issuer_key;
    std::fs::write(path, m.to_pkcs8_pem()?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    let public = PathBuf::from(format!("{}.pub", path.display()));
    std::fs::write(&public, m.public_key_pem())
        .with_context(|| format!("writing {}", public.display()))?;
    eprintln!(
        "created the bench issuer key {}; trust it with:\n  cocoa keyserver add-issuer --iss {} --health-authority-id {} --public-key {}",
        path.display(),
        a.iss,
        a.health_authority_id,
        public.display()
    );
    Ok(m)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

pub fn run(a: PublishArgs) -> anyhow::Result<()> {
    if !(1..=30).contains(&a.keys) {
        return Err(bad_input("--keys must be 1 to 30"));
    }
    if a.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err(bad_input("--rate must be positive"));
    }
    let minter = issuer(&a)?;
    if a.init_only {
        print!("{}", minter.public_key_pem());
        return Ok(());
    }
    let urls: Vec<String> = a
        .server
        .iter()
        .map(|s| format!("{}/v1/publish", s.trim_end_matches('/')))
        .collect();
    if urls.is_empty() {
        return Err(bad_input("--server is required"));
    }

    // Every request prepared before the clock starts.
    let now = en_protocol::time::Clock::now(&en_protocol::time::SystemClock).timestamp();
    let mut rng = rand::rngs::OsRng;
    let bodies: Vec<Vec<u8>> = (0..a.requests)
        .map(|_| {
            let keys = daily_keys(&mut rng, a.keys, (now / 600) as u32);
            let req = publish_request(
                &mut rng,
                &minter,
                &a.health_authority_id,
                keys,
                "confirmed",
                now,
            );
            serde_json::to_vec(&req).map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<_>>()?;
    let bodies = Arc::new(bodies);

    let builder = super::http_client(a.concurrency, a.ca_cert.as_deref())?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let http = builder.build()?;
        // One publish to each server first, to fail early with a clear message.
        for url in &urls {
            check_trust(&http, url, &a).await?;
        }
        let urls = Arc::new(urls);

        let next = Arc::new(AtomicUsize::new(0));
        let cpu_before = cpu::Snapshot::take(&a.cpu_pid)?;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency.max(1) {
            let (http, urls, bodies, next) =
                (http.clone(), urls.clone(), bodies.clone(), next.clone());
            let rate = a.rate;
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        break out;
                    }
                    let scheduled = match rate {
                        Some(r) => {
                            let at = started + Duration::from_secs_f64(i as f64 / r);
                            tokio::time::sleep_until(at.into()).await;
                            at
                        }
                        None => Instant::now(),
                    };
                    let ok = match http
                        .post(&urls[i % urls.len()])
                        .header("content-type", "application/json")
                        .body(bodies[i].clone())
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let good = r.status().is_success();
                            let _ = r.bytes().await;
                            good
                        }
                        Err(_) => false,
                    };
                    out.push((scheduled.elapsed(), ok));
                }
            }));
        }
        let mut results = Vec::with_capacity(bodies.len());
        for t in tasks {
            results.extend(t.await?);
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu = cpu::Snapshot::take(&a.cpu_pid)?.since(&cpu_before, seconds);
        let errors = results.iter().filter(|(_, ok)| !ok).count();
        let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
        lat.sort_unstable();
        let n = results.len();
        print_json(&Output {
            requests: n,
            concurrency: a.concurrency,
            servers: a.server.len(),
            rate: a.rate,
            keys_per_request: a.keys,
            seconds,
            publishes_per_sec: (n - errors) as f64 / seconds,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
            max_ms: percentile(&lat, 1.0),
            errors,
            cpu,
        })
    })
}

/// Sends the first prepared request; explains how to trust the bench issuer
/// when the server does not.
async fn check_trust(http: &reqwest::Client, url: &str, a: &PublishArgs) -> anyhow::Result<()> {
    let m = Minter::from_pkcs8_pem(&std::fs::read_to_string(&a.issuer_key)?, &a.iss, &a.aud)?;
    let now = en_protocol::time::Clock::now(&en_protocol::time::SystemClock).timestamp();
    let mut rng = rand::rngs::OsRng;
    let keys = daily_keys(&mut rng, a.keys, (now / 600) as u32);
    let req = publish_request(&mut rng, &m, &a.health_authority_id, keys, "confirmed", now);
    let resp = http
        .post(url)
        .json(&req)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    let body: api_types::publish::PublishResponse = resp.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success(),
        "the server refused a publish ({status}, {}): does it trust the bench issuer? \
         cocoa keyserver add-issuer --iss {} --health-authority-id {} --public-key {}.pub",
        body.code.unwrap_or_default(),
        a.iss,
        a.health_authority_id,
        a.issuer_key.display()
    );
    Ok(())
}

/// CPU time of the server processes during a run, from `/proc` (Linux), and
/// the database's share of it: the "share of time spent in the database".
///
/// A process named `postgres` (the postmaster given by `--cpu-pid`) counts
/// as database with all its children, the backends (live ones through
/// their own counters, exited ones through the postmaster's counters of
/// reaped children). In any other process (a `cocoa serve`) the threads of
/// sqlx's SQLite workers (`sqlx-sqlite-worker-N`, where every SQLite call
/// runs) count as database, the rest (HTTP, JSON, certificate checks,
/// the async runtime) as server.
pub(super) mod cpu {
    use serde::Serialize;

    /// Clock ticks a second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
    const TICKS: f64 = 100.0;

    /// CPU seconds so far: (everything, database).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Snapshot {
        total: f64,
        database: f64,
        wanted: bool,
    }

    /// What a run used.
    #[derive(Debug, Serialize)]
    pub struct Usage {
        /// CPU seconds of the given processes.
        pub cpu_seconds: f64,
        /// Of which in the database (SQLite worker threads, PostgreSQL processes).
        pub database_cpu_seconds: f64,
        /// `database_cpu_seconds / cpu_seconds`.
        pub database_share: f64,
        /// CPU cores busy on average: `cpu_seconds` over the run's wall time.
        pub cores_busy: f64,
    }

    /// (name, parent, own CPU seconds, reaped children's CPU seconds).
    fn stat(path: &str) -> Option<(String, u32, f64, f64)> {
        parse(&std::fs::read_to_string(path).ok()?)
    }

    /// One `/proc/*/stat` line (the name may hold spaces and parentheses).
    fn parse(text: &str) -> Option<(String, u32, f64, f64)> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let name = text.get(open + 1..close)?.to_owned();
        let f: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        let ppid = f.get(1)?.parse().ok()?;
        Some((
            name,
            ppid,
            (n(11)? + n(12)?) / TICKS,
            (n(13)? + n(14)?) / TICKS,
        ))
    }

    impl Snapshot {
        /// Reads the counters of `pids` (nothing when empty).
        pub fn take(pids: &[u32]) -> anyhow::Result<Self> {
            let mut s = Self {
                wanted: !pids.is_empty(),
                ..Self::default()
            };
            for &pid in pids {
                let Some((name, _, own, reaped)) = stat(&format!("/proc/{pid}/stat")) else {
                    anyhow::bail!("--cpu-pid {pid}: no such process (or no /proc)");
                };
                if name == "postgres" {
                    let mut cpu = own + reaped;
                    for e in std::fs::read_dir("/proc")?.flatten() {
                        let path = format!("{}/stat", e.path().display());
                        if let Some((_, ppid, own, _)) = stat(&path)
                            && ppid == pid
                        {
                            cpu += own;
                        }
                    }
                    s.total += cpu;
                    s.database += cpu;
                    continue;
                }
                s.total += own;
                for t in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
                    let path = format!("{}/stat", t.path().display());
                    if let Some((name, _, own, _)) = stat(&path)
                        && name.starts_with("sqlx-sqlite")
                    {
                        s.database += own;
                    }
                }
            }
            Ok(s)
        }

        /// The usage between `before` and this snapshot, over `seconds`.
        pub fn since(&self, before: &Self, seconds: f64) -> Option<Usage> {
            if !self.wanted {
                return None;
            }
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            let total = self.total - before.total;
            let database = self.database - before.database;
            Some(Usage {
                cpu_seconds: round(total),
                database_cpu_seconds: round(database),
                database_share: round(if total > 0.0 { database / total } else { 0.0 }),
                cores_busy: round(total / seconds.max(1e-9)),
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_lines_are_read_after_the_name() {
            let line = "4242 (sqlx-sqlite-wor) S 7 4242 7 0 -1 4194560 1 0 0 0 250 50 30 20 20 0 3 0 1 2 3";
            assert_eq!(
                parse(line),
                Some(("sqlx-sqlite-wor".to_owned(), 7, 3.0, 0.5))
            );
            let odd = "1 (a) b (c) R 1 1 1 0 -1 0 0 0 0 0 100 0 0 0 20 0 1 0 1 2 3";
            assert_eq!(parse(odd), Some(("a) b (c".to_owned(), 1, 1.0, 0.0)));
            assert_eq!(parse("1 (x) R"), None);
        }

        #[test]
        fn usage_is_the_difference_between_snapshots() {
            let before = Snapshot {
                total: 1.0,
                database: 0.5,
                wanted: true,
            };
            let after = Snapshot {
                total: 3.0,
                database: 1.5,
                wanted: true,
            };
            let u = after.since(&before, 4.0).unwrap();
            assert_eq!(
                (
                    u.cpu_seconds,
                    u.database_cpu_seconds,
                    u.database_share,
                    u.cores_busy
                ),
                (2.0, 1.0, 0.5, 0.5)
            );
            assert!(Snapshot::default().since(&before, 1.0).is_none());
            assert!(
                Snapshot::take(&[])
                    .unwrap()
                    .since(&Snapshot::default(), 1.0)
                    .is_none()
            );
        }
    }
}
