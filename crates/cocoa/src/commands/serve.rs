//! `cocoa serve`: runs one role or all of them in one process, on one
//! listener. Each role contributes an `axum::Router`; they are merged and
//! served until Ctrl-C or SIGTERM.

pub mod config;
pub mod demo;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use en_protocol::time::{Clock, SystemClock};

use config::{CocoaConfig, Overrides, Role};

/// `cocoa serve` flags (each overrides the file and the environment).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Role(s) to run.
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// Address to listen on (`127.0.0.1:8080` by default; port 0 picks one).
    #[arg(long)]
    pub listen: Option<String>,
    /// Data folder (`./data` by default).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folder for SMS and e-mail when no gateway is configured.
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Demo: every role on SQLite under the data folder, a demo health
    /// centre, a staff login and a few confirmed cases (idempotent), short
    /// export batches; prints the portal URL, the login and the next
    /// commands. For local demos only.
    #[arg(long)]
    pub demo: bool,
    /// Starts the server's clock at this instant (RFC 3339); it then runs at
    /// real speed. For demos and tests: the system clock when absent.
    #[arg(long, value_name = "RFC 3339")]
    pub now: Option<String>,
}

/// A clock running at real speed from a chosen start: the system time plus
/// a fixed offset (`cocoa serve --now`).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset: chrono::Duration,
}

impl OffsetClock {
    /// A clock that shows `start` now and then runs on.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            offset: start - SystemClock.now(),
        }
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + self.offset
    }
}

/// Installs the log subscriber (`COCOA_LOG` or `RUST_LOG`, default `info`).
pub fn init_logging() {
    let filter = std::env::var("COCOA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    // axum's accept loop logs each client's address at trace level: never.
    let filter = format!("{filter},axum::serve=off");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The issuer role's state.
async fn issuer_app(
    c: &CocoaConfig,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<issuer::http::App>> {
    if c.issuer.sms.is_none() || c.issuer.smtp.is_none() {
        tracing::warn!(
            outbox = %c.issuer.outbox.clone().unwrap_or_else(|| c.data.join("outbox")).display(),
            "no SMS gateway or SMTP server configured: messages go to the outbox folder"
        );
    }
    issuer::http::build(&c.issuer, &c.data, clock)
        .await
        .context("starting the issuer role")
}

/// Health authority ID under which the all-in-one process trusts its own issuer.
pub const OWN_HEALTH_AUTHORITY_ID: &str = "cocoa";

/// What the configured role(s) run: one merged router, and the exporter loop
/// to run beside it.
pub struct Roles {
    /// Every route of the roles.
    pub router: axum::Router,
    /// The exporter, for the `exporter` and `all` roles.
    pub exporter: Option<Arc<keyserver::export::Exporter>>,
    /// The issuer's state, for the `issuer` and `all` roles.
    pub issuer: Option<Arc<issuer::http::App>>,
}

/// Builds the roles of the configuration. In the all-in-one process the key
/// server trusts the issuer's current public keys, read in process, under
/// the health authority ID [`OWN_HEALTH_AUTHORITY_ID`].
pub async fn build_roles(c: &CocoaConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Roles> {
    let mut router = axum::Router::new();
    let wants = |r: Role| c.role == r || c.role == Role::All;
    let mut own_issuer = Vec::new();
    let mut issuer_state = None;
    if wants(Role::Issuer) {
        let app = issuer_app(c, clock.clone()).await?;
        issuer_state = Some(app.clone());
        let keys = app.clone();
        own_issuer.push(keyserver::trust::TrustedIssuer::in_process(
            OWN_HEALTH_AUTHORITY_ID,
            &c.issuer.certificate_issuer,
            Arc::new(move || keys.issuer.keyring().jwks()),
        ));
        router = router.merge(issuer::router(app, c.issuer.max_body_bytes));
    }
    let mut exporter = None;
    if c.role != Role::Issuer {
        let ks = keyserver::http::build(&c.keyserver, &c.data, clock, own_issuer)
            .await
            .context("starting the keyserver role")?;
        if wants(Role::Keyserver) {
            router = router.merge(keyserver::router(ks.clone()));
        }
        if c.role != Role::All {
            // Without the issuer, the key server serves /healthz and /metrics.
            router = router.merge(keyserver::http::ops_router(ks.clone()));
        }
        if wants(Role::Exporter) {
            exporter = Some(ks.exporter.clone());
        }
    }
    Ok(Roles {
        router,
        exporter,
        issuer: issuer_state,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let clock: Arc<dyn Clock> = match &args.now {
        Some(s) => Arc::new(OffsetClock::starting_at(
            DateTime::parse_from_rfc3339(s.trim())
                .map_err(|_| {
                    super::bad_input(format!(
                        "--now の日時「{s}」を読み取れません（RFC 3339）。 / Cannot read --now {s:?} (RFC 3339)."
                    ))
                })?
                .with_timezone(&Utc),
        )),
        None => Arc::new(SystemClock),
    };
    if args.demo && args.role.is_some_and(|r| r != Role::All) {
        return Err(super::bad_input(
            "--demo は全ての役割を1つのプロセスで動かします（--role all）。 / --demo runs every role in one process (--role all).",
        ));
    }
    let flags = Overrides {
        listen: args.listen,
        data: args.data,
        role: args.role,
        outbox: args.outbox,
        database_url: None,
    };
    let (mut c, warnings) = config::load(args.config.as_deref(), &config::process_env(), &flags)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if args.demo {
        demo::apply_settings(&mut c);
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let roles = build_roles(&c, clock.clone()).await?;
        let demo_info = if args.demo {
            Some(demo::seed(&c, &roles).await?)
        } else {
            None
        };
        if let Some(exporter) = roles.exporter {
            let e = &c.keyserver.export;
            tokio::spawn(exporter.run(
                e.interval,
                e.min_age.as_secs() as i64,
                std::future::pending(),
            ));
        }
        let router = roles.router;
        let listener = tokio::net::TcpListener::bind(&c.listen)
            .await
            .with_context(|| format!("listening on {}", c.listen))?;
        let addr = listener.local_addr()?;
        // Scripts and tests read this line to learn the port.
        println!("listening on http://{addr}");
        if let Some(info) = &demo_info {
            println!(
                "{}",
                demo::banner(info, &format!("http://{addr}"), clock.now())
            );
        }
        tracing::info!(%addr, role = ?c.role, "serving");
        if c.role == Role::Keyserver || c.role == Role::Exporter {
            // No issuer to rate-limit clients: forget their addresses at accept.
            axum::serve(keyserver::http::AnonymousListener(listener), router)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
            return Ok(());
        }
        issuer::http::serve_router(router, listener, shutdown_signal()).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    #[tokio::test]
    async fn the_all_in_one_process_trusts_its_own_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let c = CocoaConfig {
            data: dir.path().join("data"),
            ..CocoaConfig::default()
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let roles = build_roles(&c, clock.clone()).await.unwrap();
        assert!(roles.exporter.is_some(), "all runs the exporter");
        // A second handle on the issuer's state signs with the same key.
        let own = issuer::http::build(&c.issuer, &c.data, clock.clone())
            .await
            .unwrap();
        let now = clock.now().timestamp();
        let mut rng = rand::rngs::OsRng;
        let keys = keyserver::testkit::daily_keys(&mut rng, 3, (now / 600) as u32);
        let hmac_key: [u8; 32] = rand::random();
        let mac = keyserver::testkit::key_hmac(&hmac_key, &keys);
        let cert = own
            .issuer
            .keyring()
            .sign(&api_types::verify::CertificateClaims {
                iss: c.issuer.certificate_issuer.clone(),
                aud: c.issuer.certificate_audience.clone(),
                iat: now,
                nbf: now - 60,
                exp: now + 900,
                tekmac: STANDARD.encode(mac),
                report_type: "confirmed".into(),
            })
            .unwrap();
        let req = api_types::publish::PublishRequest {
            keys,
            health_authority_id: OWN_HEALTH_AUTHORITY_ID.into(),
            verification_payload: cert,
            hmac_key: STANDARD.encode(hmac_key),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(issuer::http::serve_router(
            roles.router,
            listener,
            std::future::pending(),
        ));
        let resp = reqwest::Client::new()
            .post(format!("http://{addr}/v1/publish"))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: api_types::publish::PublishResponse = resp.json().await.unwrap();
        assert_eq!(body.inserted_exposures, 3);
        // Both roles answer on the one listener.
        let jwks = reqwest::get(format!("http://{addr}/.well-known/jwks.json"))
            .await
            .unwrap();
        assert_eq!(jwks.status(), 200);
        let stats = reqwest::get(format!("http://{addr}/api/stats"))
            .await
            .unwrap();
        assert_eq!(stats.status(), 200);
    }
}
