//! `cocoa serve`: the flags, layered over the file and the environment
//! ([`crate::server::config`]), then [`crate::server::serve`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;
use en_protocol::time::{Clock, SystemClock};

use crate::server::config::{LogFormat, Overrides, Role};
use crate::server::{self, OffsetClock, Shutdown};

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
    /// Log lines as text (default) or one JSON object a line.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// PEM certificate chain; with --tls-key the listener speaks HTTPS.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// After SIGTERM or Ctrl-C, how long to wait for requests in flight and
    /// the export cycle under way (`30s` by default).
    #[arg(long, value_name = "DURATION")]
    pub shutdown_grace: Option<String>,
    /// After SIGTERM or Ctrl-C, how long to keep accepting requests while
    /// `/readyz` answers 503 `draining` (`0s` by default), for a load
    /// balancer to stop sending new ones; the grace period follows.
    #[arg(long, value_name = "DURATION")]
    pub drain_delay: Option<String>,
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

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = match &args.now {
        Some(s) => Arc::new(OffsetClock::starting_at(
            DateTime::parse_from_rfc3339(s.trim())
                .map_err(|_| {
                    crate::commands::bad_input(format!(
                        "--now の日時「{s}」を読み取れません（RFC 3339）。 / Cannot read --now {s:?} (RFC 3339)."
                    ))
                })?
                .with_timezone(&Utc),
        )),
        None => Arc::new(SystemClock),
    };
    if args.demo && args.role.is_some_and(|r| r != Role::All) {
        return Err(crate::commands::bad_input(
            "--demo は全ての役割を1つのプロセスで動かします（--role all）。 / --demo runs every role in one process (--role all).",
        ));
    }
    let flags = Overrides {
        listen: args.listen,
        data: args.data,
        role: args.role,
        outbox: args.outbox,
        database_url: None,
        log_format: args.log_format,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        shutdown_grace: args.shutdown_grace,
        drain_delay: args.drain_delay,
    };
    let (mut c, warnings) = server::config::load(
        args.config.as_deref(),
        &server::config::process_env(),
        &flags,
    )?;
    server::init_logging_as(c.log_format);
    for w in warnings {
        tracing::warn!("{w}");
    }
    if args.demo {
        server::demo::apply_settings(&mut c);
    }
    let tls = match (&c.tls_cert, &c.tls_key) {
        (Some(cert), Some(key)) => Some(server::tls::server_config(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(crate::commands::bad_input(
                "TLS には tls_cert と tls_key の両方が必要です。 / TLS needs both tls_cert and tls_key (--tls-cert, --tls-key).",
            ));
        }
    };
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        let shutdown = Shutdown::on_signals().context("installing the signal handlers")?;
        let listener = match tokio::net::TcpListener::bind(&c.listen).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(anyhow::anyhow!(address_in_use(&c.listen)));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("listening on {}", c.listen)));
            }
        };
        server::serve(c, clock, tls, args.demo, listener, shutdown).await
    });
    // Connections still open after the grace period end here.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// What a second `cocoa serve` on a busy address says (issue 15: "say in
/// Japanese and English that another server is running and how to choose
/// `--listen`"), instead of the system's English-only "Address already in use".
pub fn address_in_use(listen: &str) -> String {
    let other = other_port(listen);
    format!(
        "{listen} はすでに別のサーバーが使っています（cocoa serve がもう動いていませんか？）。そのサーバーを止めるか、--listen {other} のように別のアドレスを指定してください。 / Another server is already listening on {listen} (is a cocoa serve already running?): stop it, or choose another address with --listen {other}."
    )
}

/// `listen` with the next port (`127.0.0.1:8080` -> `127.0.0.1:8081`).
fn other_port(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(p) => format!("{host}:{}", p.checked_add(1).unwrap_or(8081)),
            Err(_) => "127.0.0.1:8081".to_owned(),
        },
        None => "127.0.0.1:8081".to_owned(),
    }
}
