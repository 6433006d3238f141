//! `cocoa bench verify`: load on a running issuer's device API.
//!
//! First it files N cases and issues N processing numbers through the
//! machine API, and reads the numbers back from the server's outbox folder
//! (`--outbox`, the development delivery backend: the numbers never travel
//! through a special server path, so the server needs no benchmark mode).
//! Then it times N `POST /api/verify` + `POST /api/certificate` pairs with
//! C concurrent clients, as fast as possible or paced at `--rate` pairs per
//! second (latency then counts from each pair's scheduled start, so a
//! server that falls behind is charged for the queueing too).
//!
//! `--server` given several times (issuer replicas on one database, with
//! one `issuer.secret`) spreads the timed pairs round-robin: pair `i` goes
//! to server `i mod n`, both of its requests. The numbers are issued
//! through the first server, whose `--outbox` they arrive in.
//!
//! The server's device-API rate limit must be off for this
//! (`[issuer.limits] requests_per_minute = 0`): every request comes from
//! one address.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use clap::Args;
use serde::Serialize;

use crate::commands::{bad_input, print_json};

/// `cocoa bench verify` flags.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Base URL of the running issuer, e.g. http://127.0.0.1:8080; repeat
    /// it for replicas (pairs go round-robin; numbers are issued through
    /// the first).
    #[arg(long, required = true)]
    pub server: Vec<String>,
    /// A device API key (`cocoa issuer create-api-key --kind device`).
    #[arg(long)]
    pub api_key: String,
    /// An admin API key bound to a centre (`--kind admin --centre <id>`).
    #[arg(long)]
    pub admin_key: String,
    /// The server's outbox folder, where the issued numbers arrive.
    #[arg(long)]
    pub outbox: PathBuf,
    /// Number of verify+certificate pairs.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Pairs per second to pace at (open loop); unlimited when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Process whose CPU time during the timed pairs to report (repeatable):
    /// each server, and the PostgreSQL postmaster (see `bench publish`).
    #[arg(long)]
    pub cpu_pid: Vec<u32>,
}

#[derive(Debug, Serialize)]
struct Output {
    requests: usize,
    concurrency: usize,
    servers: usize,
    rate: Option<f64>,
    seconds: f64,
    pairs_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<super::publish::cpu::Usage>,
}

fn case_json(i: usize) -> serde_json::Value {
    serde_json::json!({
        "name_kanji": "性能 試験",
        "name_kana": "セイノウ シケン",
        "birth_date": "1990-01-01",
        "sex": "other",
        "mobile": format!("090{:08}", i % 100_000_000),
        "outpatient_facility": "ベンチマーク外来",
        "test_positive": true,
        "classification": "confirmed",
        "diagnosis_date": "2020-12-15",
        "reported": true,
        "uses_app": true
    })
}

fn outbox_names(dir: &Path) -> anyhow::Result<HashSet<String>> {
    if !dir.exists() {
        return Ok(HashSet::new());
    }
    let mut names = HashSet::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            names.insert(name);
        }
    }
    Ok(names)
}

/// The 8-digit number in an outbox message body.
fn number_in(body: &str) -> Option<String> {
    let rest = body.split("処理番号: ").nth(1)?;
    let n: String = rest.chars().take(8).collect();
    (n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// Runs `f(i)` for `i` in `0..n` with `c` tasks at once.
async fn run_all<F, Fut, T>(n: usize, c: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = T> + Send,
    T: Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c.max(1) {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break out;
                }
                out.push(f(i).await);
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(v) = t.await {
            all.extend(v);
        }
    }
    all
}

async fn post(
    http: &reqwest::Client,
    url: String,
    key: &str,
    idem: Option<String>,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut r = http.post(url).header("x-api-key", key).json(body);
    if let Some(i) = idem {
        r = r.header("idempotency-key", i);
    }
    let resp = r.send().await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    anyhow::ensure!(status.is_success(), "HTTP {status}: {v}");
    Ok(v)
}

/// Issues `n` numbers and reads them from the outbox.
async fn issue_numbers(a: &VerifyArgs, http: &reqwest::Client) -> anyhow::Result<Vec<String>> {
    let before = outbox_names(&a.outbox)?;
    let base = a.server[0].trim_end_matches('/').to_owned();
    let (http2, key) = (http.clone(), a.admin_key.clone());
    let results = run_all(a.requests, a.concurrency, move |i| {
        let (http, key, base) = (http2.clone(), key.clone(), base.clone());
        async move {
            let created = post(
                &http,
                format!("{base}/api/v1/cases"),
                &key,
                None,
                &case_json(i),
            )
            .await?;
            let id = created["case_id"].as_i64().context("no case_id")?;
            post(
                &http,
                format!("{base}/api/v1/cases/{id}/processing-number"),
                &key,
                Some(format!("bench-{id}")),
                &serde_json::Value::Null,
            )
            .await?;
            anyhow::Ok(())
        }
    })
    .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e.context("issuing numbers through the machine API"));
    }
    let mut numbers = Vec::new();
    for name in outbox_names(&a.outbox)?.difference(&before) {
        let text = std::fs::read_to_string(a.outbox.join(name))?;
        let msg: serde_json::Value = serde_json::from_str(&text)?;
        if let Some(n) = msg["body"].as_str().and_then(number_in) {
            numbers.push(n);
        }
    }
    anyhow::ensure!(
        numbers.len() >= a.requests,
        "found {} new numbers in {} (expected {}): is --outbox the server's outbox?",
        numbers.len(),
        a.outbox.display(),
        a.requests
    );
    numbers.truncate(a.requests);
    Ok(numbers)
}

async fn pair(http: &reqwest::Client, base: &str, key: &str, number: &str, hmac: &str) -> bool {
    let Ok(v) = post(
        http,
        format!("{base}/api/verify"),
        key,
        None,
        &serde_json::json!({"code": number}),
    )
    .await
    else {
        return false;
    };
    let Some(token) = v["token"].as_str() else {
        return false;
    };
    post(
        http,
        format!("{base}/api/certificate"),
        key,
        None,
        &serde_json::json!({"token": token, "ekeyhmac": hmac}),
    )
    .await
    .is_ok_and(|c| c["certificate"].is_string())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub fn run(a: VerifyArgs) -> anyhow::Result<()> {
    if a.requests == 0 || a.concurrency == 0 {
        return Err(bad_input("--requests and --concurrency must be at least 1"));
    }
    if a.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(bad_input("--rate must be a positive number"));
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(a.concurrency)
            .timeout(Duration::from_secs(30))
            .build()?;
        let issuing = Instant::now();
        let numbers = Arc::new(issue_numbers(&a, &http).await?);
        eprintln!(
            "issued {} numbers in {:.1} s; timing {} verify+certificate pairs",
            numbers.len(),
            issuing.elapsed().as_secs_f64(),
            a.requests
        );
        let mut mac = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut mac);
        let hmac = base64::engine::general_purpose::STANDARD.encode(mac);
        let bases: Arc<Vec<String>> = Arc::new(
            a.server
                .iter()
                .map(|s| s.trim_end_matches('/').to_owned())
                .collect(),
        );
        let key = a.api_key.clone();
        let rate = a.rate;
        let cpu_before = super::publish::cpu::Snapshot::take(&a.cpu_pid)?;
        let start = Instant::now();
        let results = run_all(a.requests, a.concurrency, move |i| {
            let (http, base, key, hmac, numbers) = (
                http.clone(),
                bases[i % bases.len()].clone(),
                key.clone(),
                hmac.clone(),
                numbers.clone(),
            );
            async move {
                let scheduled = match rate {
                    Some(r) => {
                        let at = start + Duration::from_secs_f64(i as f64 / r);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => Instant::now(),
                };
                let ok = pair(&http, &base, &key, &numbers[i], &hmac).await;
                (ok, scheduled.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .await;
        let seconds = start.elapsed().as_secs_f64();
        let cpu = super::publish::cpu::Snapshot::take(&a.cpu_pid)?.since(&cpu_before, seconds);
        let errors = results.iter().filter(|(ok, _)| !ok).count();
        let mut ms: Vec<f64> = results.iter().map(|(_, m)| *m).collect();
        ms.sort_by(f64::total_cmp);
        let round = |x: f64| (x * 100.0).round() / 100.0;
        print_json(&Output {
            requests: a.requests,
            concurrency: a.concurrency,
            servers: a.server.len(),
            rate: a.rate,
            seconds: round(seconds),
            pairs_per_sec: round(a.requests as f64 / seconds),
            p50_ms: round(percentile(&ms, 0.50)),
            p99_ms: round(percentile(&ms, 0.99)),
            errors,
            cpu,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_message_bodies() {
        assert_eq!(
            number_in("【HER-SYS】…\n\n処理番号: 01234567\n\n次の").as_deref(),
            Some("01234567")
        );
        assert_eq!(number_in("処理番号: 0123"), None);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.99), 4.0);
    }
}
