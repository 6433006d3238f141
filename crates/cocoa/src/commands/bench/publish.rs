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
//! queueing too.

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
    /// Base URL of the running key server, e.g. http://127.0.0.1:8080.
    #[arg(long, required_unless_present = "init_only")]
    pub server: Option<String>,
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
}

#[derive(Debug, Serialize)]
struct Output {
    requests: usize,
    concurrency: usize,
    keys_per_request: u32,
    seconds: f64,
    publishes_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: usize,
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
    let base = a
        .server
        .clone()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    let url = format!("{base}/v1/publish");

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

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(a.concurrency.max(1))
            .build()?;
        // One publish first, to fail early with a clear message.
        check_trust(&http, &url, &a).await?;

        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency.max(1) {
            let (http, url, bodies, next) =
                (http.clone(), url.clone(), bodies.clone(), next.clone());
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
                        .post(&url)
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
        let errors = results.iter().filter(|(_, ok)| !ok).count();
        let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
        lat.sort_unstable();
        let n = results.len();
        print_json(&Output {
            requests: n,
            concurrency: a.concurrency,
            keys_per_request: a.keys,
            seconds,
            publishes_per_sec: (n - errors) as f64 / seconds,
            p50_ms: percentile(&lat, 0.50),
            p99_ms: percentile(&lat, 0.99),
            max_ms: percentile(&lat, 1.0),
            errors,
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
