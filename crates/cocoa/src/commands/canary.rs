//! `cocoa canary`: the seed's whole flow against a live deployment, every
//! `--interval` or once (`--once`), with Prometheus metrics
//! (`simulator::canary`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use axum::routing::get;
use clap::Args;
use en_protocol::time::SystemClock;
use simulator::canary::{CanaryConfig, CanaryReport, Inbox, InboxAuth, run_once};

use super::{bad_input, print_json};

/// `cocoa canary` options.
#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Base URL of the issuer (machine and device APIs).
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// Base URL of the key server (`/v1/publish`, `/exports/...`).
    #[arg(long, value_name = "URL")]
    pub keyserver: String,
    /// The canary region's export index (default
    /// `<keyserver>/exports/<region>/list.json`).
    #[arg(long, value_name = "URL")]
    pub exports: Option<String>,
    /// Admin API key of the machine API (or `COCOA_CANARY_ADMIN_API_KEY`,
    /// or a file named by `COCOA_CANARY_ADMIN_API_KEY_FILE`).
    #[arg(long, env = "COCOA_CANARY_ADMIN_API_KEY", hide_env_values = true)]
    pub admin_api_key: Option<String>,
    /// Device API key for `/api/verify` (or `COCOA_CANARY_DEVICE_API_KEY[_FILE]`).
    #[arg(long, env = "COCOA_CANARY_DEVICE_API_KEY", hide_env_values = true)]
    pub device_api_key: Option<String>,
    /// Centre of the canary cases, for an admin key not bound to one.
    #[arg(long)]
    pub centre: Option<i64>,
    /// PEM file of the export signing public key(s) the phones trust.
    #[arg(long, value_name = "PEM")]
    pub export_public_key: PathBuf,
    /// `healthAuthorityID` of the canary's publishes.
    #[arg(long, default_value = "cocoa-canary")]
    pub health_authority_id: String,
    /// The canary region (real phones never download it).
    #[arg(long, default_value = "canary")]
    pub region: String,
    /// Prefecture code of the synthetic phones.
    #[arg(long, default_value = "13")]
    pub prefecture: String,
    /// Where the canary listens: its message receiver (the issuer's
    /// `[issuer.canary.gateway] base_url` points here) and `/metrics`.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,
    /// Account SID the issuer presents to the receiver.
    #[arg(long, default_value = "canary")]
    pub account_sid: String,
    /// Auth token the issuer presents (or `COCOA_CANARY_RECEIVER_TOKEN[_FILE]`).
    #[arg(long, env = "COCOA_CANARY_RECEIVER_TOKEN", hide_env_values = true)]
    pub receiver_token: Option<String>,
    /// Time between runs.
    #[arg(long, default_value = "5m", value_parser = keyserver::config::parse_duration)]
    pub interval: Duration,
    /// Run once, print the report as JSON and exit non-zero on any failure.
    #[arg(long)]
    pub once: bool,
    /// How long to wait for the message.
    #[arg(long, default_value = "2m", value_parser = keyserver::config::parse_duration)]
    pub delivery_timeout: Duration,
    /// How long to wait for the export and the notification.
    #[arg(long, default_value = "3h", value_parser = keyserver::config::parse_duration)]
    pub export_timeout: Duration,
    /// How often the notified phone checks while waiting.
    #[arg(long, default_value = "30s", value_parser = keyserver::config::parse_duration)]
    pub poll: Duration,
}

/// A secret from its flag or variable, else from the file `<var>_FILE` names.
fn secret(value: Option<String>, var: &str) -> anyhow::Result<Option<String>> {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        return Ok(Some(v));
    }
    match std::env::var_os(format!("{var}_FILE")) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()))
            .with_context(|| format!("reading {var}_FILE ({})", PathBuf::from(path).display())),
        None => Ok(None),
    }
}

fn parse_url(flag: &str, s: &str) -> anyhow::Result<reqwest::Url> {
    let mut u = reqwest::Url::parse(s).map_err(|e| bad_input(format!("--{flag} {s:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad_input(format!("--{flag} must be an http(s) URL")));
    }
    // Joined with relative paths: a base URL ends with a slash.
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// Runs `cocoa canary`.
pub fn run(args: CanaryArgs) -> anyhow::Result<()> {
    crate::server::init_logging();
    let admin_api_key = secret(args.admin_api_key.clone(), "COCOA_CANARY_ADMIN_API_KEY")?
        .ok_or_else(|| bad_input("--admin-api-key (or COCOA_CANARY_ADMIN_API_KEY) is required"))?;
    let device_api_key = secret(args.device_api_key.clone(), "COCOA_CANARY_DEVICE_API_KEY")?;
    let receiver_token = secret(args.receiver_token.clone(), "COCOA_CANARY_RECEIVER_TOKEN")?
        .ok_or_else(|| {
            bad_input("--receiver-token (or COCOA_CANARY_RECEIVER_TOKEN) is required")
        })?;
    let pem = std::fs::read_to_string(&args.export_public_key)
        .with_context(|| format!("reading {}", args.export_public_key.display()))
        .map_err(bad_input)?;
    device::settings::parse_public_keys(&pem).map_err(bad_input)?;
    if args.region.is_empty() || args.region == device::settings::DEFAULT_REGION {
        return Err(bad_input(format!(
            "--region {:?}: the canary must use a region of its own, never the one real phones download",
            args.region
        )));
    }
    let config = CanaryConfig {
        issuer: parse_url("issuer", &args.issuer)?,
        keyserver: parse_url("keyserver", &args.keyserver)?,
        exports: args
            .exports
            .as_deref()
            .map(|e| reqwest::Url::parse(e).map_err(|err| bad_input(format!("--exports: {err}"))))
            .transpose()?,
        admin_api_key,
        device_api_key,
        centre_id: args.centre,
        export_public_keys: vec![pem],
        health_authority_id: args.health_authority_id.clone(),
        region: args.region.clone(),
        prefecture: args.prefecture.clone(),
        delivery_timeout: args.delivery_timeout,
        export_timeout: args.export_timeout,
        poll: args.poll,
    };
    let inbox = Inbox::new(InboxAuth {
        account_sid: args.account_sid.clone(),
        auth_token: receiver_token,
    });
    simulator::canary::register_metrics();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let app = inbox
            .router()
            .route(
                "/metrics",
                get(|| async {
                    (
                        [(axum::http::header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
                        telemetry::render(),
                    )
                }),
            )
            .route("/healthz", get(|| async { "ok" }));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "canary listener stopped");
            }
        });
        eprintln!("canary: receiver and /metrics on http://{addr}");
        let clock = SystemClock;
        if args.once {
            let report = run_once(&config, &inbox, &clock).await;
            simulator::canary::record_metrics(&report);
            print_json(&report)?;
            return match report.failure() {
                None => Ok(()),
                Some(f) => anyhow::bail!("canary failed at step {}: {}", f.step, f.detail),
            };
        }
        loop {
            let report = run_once(&config, &inbox, &clock).await;
            simulator::canary::record_metrics(&report);
            log_report(&report);
            tokio::select! {
                () = tokio::time::sleep(args.interval) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    })
}

fn log_report(r: &CanaryReport) {
    match r.failure() {
        None => tracing::info!(
            seconds = r.seconds,
            registration_to_notification = r.registration_to_notification_seconds,
            "canary run succeeded"
        ),
        Some(f) => tracing::error!(step = f.step, detail = %f.detail, "canary run failed"),
    }
}
