//! `cocoa serve`: runs one role or all of them in one process, on one
//! listener. Each role contributes an `axum::Router`; they are merged and
//! served until Ctrl-C or SIGTERM.

pub mod config;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
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
}

/// Installs the log subscriber (`COCOA_LOG` or `RUST_LOG`, default `info`).
pub fn init_logging() {
    let filter = std::env::var("COCOA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The router of the issuer role.
async fn issuer_router(c: &CocoaConfig, clock: Arc<dyn Clock>) -> anyhow::Result<axum::Router> {
    if c.issuer.sms.is_none() || c.issuer.smtp.is_none() {
        tracing::warn!(
            outbox = %c.issuer.outbox.clone().unwrap_or_else(|| c.data.join("outbox")).display(),
            "no SMS gateway or SMTP server configured: messages go to the outbox folder"
        );
    }
    let app = issuer::http::build(&c.issuer, &c.data, clock)
        .await
        .context("starting the issuer role")?;
    Ok(issuer::router(app, c.issuer.max_body_bytes))
}

/// Builds the merged router of the configured role(s).
pub async fn build_router(c: &CocoaConfig, clock: Arc<dyn Clock>) -> anyhow::Result<axum::Router> {
    let mut router = axum::Router::new();
    let wants = |r: Role| c.role == r || c.role == Role::All;
    if wants(Role::Issuer) {
        router = router.merge(issuer_router(c, clock.clone()).await?);
    }
    // The keyserver and exporter roles are added here when their crates
    // provide a router (see docs/issuer.md, "Composing roles").
    if c.role == Role::Keyserver || c.role == Role::Exporter {
        anyhow::bail!("the {:?} role is not available in this build yet", c.role);
    }
    Ok(router)
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
    let flags = Overrides {
        listen: args.listen,
        data: args.data,
        role: args.role,
        outbox: args.outbox,
        database_url: None,
    };
    let (c, warnings) = config::load(args.config.as_deref(), &config::process_env(), &flags)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let router = build_router(&c, Arc::new(SystemClock)).await?;
        let listener = tokio::net::TcpListener::bind(&c.listen)
            .await
            .with_context(|| format!("listening on {}", c.listen))?;
        let addr = listener.local_addr()?;
        // Scripts and tests read this line to learn the port.
        println!("listening on http://{addr}");
        tracing::info!(%addr, role = ?c.role, "serving");
        issuer::http::serve_router(router, listener, shutdown_signal()).await
    })
}
