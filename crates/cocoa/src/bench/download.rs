//! `cocoa bench download`: load on whatever serves the export files — the
//! key server's `/exports/…` (file-system or S3 backend), a CDN, or a plain
//! web server holding the same files as a reference (`scripts/bench-download`
//! runs it against `cocoa serve` and nginx).
//!
//! The paths come from `--paths` (a file, one path a line, relative to
//! `--url`) or else from `{url}/index.txt`, plus `index.txt` itself: what a
//! phone fetches at each check. Requests cycle through the paths with C
//! keep-alive clients; every answer must be 200 with the length first seen
//! for its path (or 304 with `--revalidate`, which sends the `ETag` first
//! seen as `If-None-Match`, as a CDN revalidating its copy does).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::commands::{bad_input, print_json};

/// `cocoa bench download` flags.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Base URL of the files, e.g. http://127.0.0.1:8080/exports.
    #[arg(long)]
    pub url: String,
    /// File listing the paths to fetch (one a line, relative to --url);
    /// default: index.txt and every path it lists.
    #[arg(long)]
    pub paths: Option<PathBuf>,
    /// Number of requests.
    #[arg(long, default_value_t = 10_000)]
    pub requests: usize,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Send `If-None-Match` with each path's ETag (expects 304s).
    #[arg(long)]
    pub revalidate: bool,
    /// PEM certificate to trust for an https:// URL (a self-signed
    /// `cocoa serve --tls-cert`).
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Output {
    url: String,
    paths: usize,
    requests: usize,
    concurrency: usize,
    revalidate: bool,
    seconds: f64,
    requests_per_sec: f64,
    megabytes_per_sec: f64,
    bytes: u64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

/// What the first fetch of a path returned.
#[derive(Debug, Clone)]
struct Expected {
    len: usize,
    etag: Option<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// The paths to fetch: `--paths`, or `index.txt` and what it lists.
async fn paths(
    a: &DownloadArgs,
    http: &reqwest::Client,
    base: &str,
) -> anyhow::Result<Vec<String>> {
    let text = match &a.paths {
        Some(f) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        None => {
            let url = format!("{base}/index.txt");
            let r = http
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
            format!("index.txt\n{}", r.text().await?)
        }
    };
    let paths: Vec<String> = text
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if paths.is_empty() {
        return Err(bad_input("no paths to fetch"));
    }
    Ok(paths)
}

pub fn run(a: DownloadArgs) -> anyhow::Result<()> {
    if a.requests == 0 || a.concurrency == 0 {
        return Err(bad_input("--requests and --concurrency must be at least 1"));
    }
    let builder = super::http_client(a.concurrency, a.ca_cert.as_deref())?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let http = builder.timeout(Duration::from_secs(30)).build()?;
        let base = a.url.trim_end_matches('/').to_owned();
        let paths = paths(&a, &http, &base).await?;
        // Each path once, untimed: its length and ETag.
        let mut expected = HashMap::new();
        for p in &paths {
            let url = format!("{base}/{p}");
            let r = http
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
            let etag = r
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let len = r.bytes().await?.len();
            expected.insert(p.clone(), Expected { len, etag });
        }
        if a.revalidate && expected.values().any(|e| e.etag.is_none()) {
            anyhow::bail!("--revalidate: the server sends no ETag for some paths");
        }
        let urls: Arc<Vec<(String, Expected)>> = Arc::new(
            paths
                .iter()
                .map(|p| (format!("{base}/{p}"), expected[p].clone()))
                .collect(),
        );

        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency {
            let (http, urls, next) = (http.clone(), urls.clone(), next.clone());
            let (n, revalidate) = (a.requests, a.revalidate);
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break out;
                    }
                    let (url, want) = &urls[i % urls.len()];
                    let t = Instant::now();
                    let mut req = http.get(url);
                    if revalidate && let Some(tag) = &want.etag {
                        req = req.header("if-none-match", tag);
                    }
                    let (ok, bytes) = match req.send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            match r.bytes().await {
                                Ok(b) if revalidate => (status == 304, b.len()),
                                Ok(b) => (status == 200 && b.len() == want.len, b.len()),
                                Err(_) => (false, 0),
                            }
                        }
                        Err(_) => (false, 0),
                    };
                    out.push((t.elapsed().as_secs_f64() * 1000.0, ok, bytes as u64));
                }
            }));
        }
        let mut results = Vec::with_capacity(a.requests);
        for t in tasks {
            results.extend(t.await?);
        }
        let seconds = started.elapsed().as_secs_f64();
        let errors = results.iter().filter(|(_, ok, _)| !ok).count();
        let bytes: u64 = results.iter().map(|(_, _, b)| b).sum();
        let mut ms: Vec<f64> = results.iter().map(|(m, _, _)| *m).collect();
        ms.sort_by(f64::total_cmp);
        let round = |x: f64| (x * 100.0).round() / 100.0;
        print_json(&Output {
            url: base,
            paths: urls.len(),
            requests: results.len(),
            concurrency: a.concurrency,
            revalidate: a.revalidate,
            seconds: round(seconds),
            requests_per_sec: round(results.len() as f64 / seconds),
            megabytes_per_sec: round(bytes as f64 / seconds / 1e6),
            bytes,
            p50_ms: round(percentile(&ms, 0.50)),
            p99_ms: round(percentile(&ms, 0.99)),
            errors,
        })
    })
}
