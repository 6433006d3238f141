//! `cocoa serve`: runs one role or all of them in one process, on one
//! listener. Each role contributes an `axum::Router`; they are merged behind
//! the operations routes (`/healthz`, `/readyz`, `/metrics`: [`ops`]) and
//! served, over TLS when a certificate is configured ([`tls`]), until SIGTERM
//! or Ctrl-C. Then the listener closes, requests in flight and the export
//! cycle under way finish (up to `shutdown_grace`), and the process exits 0.

pub mod config;
pub mod demo;
pub mod ops;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use chrono::{DateTime, Utc};
use en_protocol::time::{Clock, SystemClock};
use tokio::sync::watch;
use tokio::time::Instant;

use config::{CocoaConfig, LogFormat, Role};

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

/// Installs the log subscriber (`COCOA_LOG` or `RUST_LOG`, default `info`),
/// as text or JSON after `COCOA_LOG_FORMAT`.
pub fn init_logging() {
    init_logging_as(LogFormat::from_env());
}

/// Installs the log subscriber in the given format: text, or one JSON
/// object a line (`timestamp`, `level`, `target`, `fields.message`, the
/// request span's method and path).
pub fn init_logging_as(format: LogFormat) {
    let filter = std::env::var("COCOA_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    // axum's accept loop logs each client's address at trace level: never.
    let filter = format!("{filter},axum::serve=off");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
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

/// Health authority ID under which the all-in-one server trusts its own
/// issuer's canary certificates (`[issuer.canary]`), for `cocoa canary`.
pub const CANARY_HEALTH_AUTHORITY_ID: &str = "cocoa-canary";

/// The region of the canary's keys: exported on their own, never in the
/// files real phones download.
pub const CANARY_REGION: &str = "canary";

/// What the configured role(s) run: one merged router, and the exporter loop
/// to run beside it.
pub struct Roles {
    /// Every route of the roles, behind `/healthz`, `/readyz` and `/metrics`.
    pub router: axum::Router,
    /// The exporter, for the `exporter` and `all` roles.
    pub exporter: Option<Arc<keyserver::export::Exporter>>,
    /// The issuer's state, for the `issuer` and `all` roles.
    pub issuer: Option<Arc<issuer::http::App>>,
    /// The operations routes' state (draining at shutdown).
    pub ops: Arc<ops::Ops>,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles")
            .field("exporter", &self.exporter.is_some())
            .field("issuer", &self.issuer.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds the roles of the configuration. In the all-in-one process the key
/// server trusts the issuer's current public keys, read in process, under
/// the health authority ID [`OWN_HEALTH_AUTHORITY_ID`].
pub async fn build_roles(c: &CocoaConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Roles> {
    let mut router = axum::Router::new();
    let wants = |r: Role| c.role == r || c.role == Role::All;
    let mut own_issuer = Vec::new();
    let mut issuer_state = None;
    let mut issuer_router = None;
    if wants(Role::Issuer) {
        let app = issuer_app(c, clock.clone()).await?;
        issuer_state = Some(app.clone());
        let keys = app.clone();
        own_issuer.push(keyserver::trust::TrustedIssuer::in_process(
            OWN_HEALTH_AUTHORITY_ID,
            &c.issuer.certificate_issuer,
            Arc::new(move || keys.issuer.keyring().jwks()),
        ));
        if let Some(canary) = &c.issuer.canary {
            // Canary certificates carry their own `iss`: trusted under the
            // canary authority only, whose keys go to the canary region.
            let keys = app.clone();
            own_issuer.push(
                keyserver::trust::TrustedIssuer::in_process(
                    CANARY_HEALTH_AUTHORITY_ID,
                    &canary.certificate_issuer,
                    Arc::new(move || keys.issuer.keyring().jwks()),
                )
                .with_region(Some(CANARY_REGION.into())),
            );
        }
        let r = issuer::router(app, c.issuer.max_body_bytes);
        issuer_router = Some(r.clone());
        router = router.merge(r);
    }
    let mut exporter = None;
    let mut keyserver_state = None;
    if c.role != Role::Issuer {
        let mut ks_config = c.keyserver.clone();
        if c.role == Role::All
            && c.issuer.canary.is_some()
            && !ks_config
                .export
                .regions
                .iter()
                .any(|r| r.name == CANARY_REGION)
        {
            // The canary waits for its own export: every minute, at once.
            ks_config
                .export
                .regions
                .push(keyserver::config::RegionConfig {
                    name: CANARY_REGION.into(),
                    batch_period: Some(Duration::from_secs(60)),
                    min_age: Some(Duration::ZERO),
                });
        }
        let ks = keyserver::http::build(&ks_config, &c.data, clock, own_issuer)
            .await
            .context("starting the keyserver role")?;
        if wants(Role::Keyserver) {
            router = router.merge(keyserver::router(ks.clone()));
        }
        if wants(Role::Exporter) {
            keyserver::export::register_metrics();
            exporter = Some(ks.exporter.clone());
        }
        keyserver_state = Some(ks);
    }
    // One /healthz, /readyz and /metrics in front of every role's routes
    // (the issuer's own three are shadowed, their answers reused).
    let ops = Arc::new(
        ops::Ops::new(c.role, issuer_router, keyserver_state)
            .with_metrics_token(c.metrics_token.clone()),
    );
    Ok(Roles {
        router: ops::with_ops(&ops, router),
        exporter,
        issuer: issuer_state,
        ops,
    })
}

/// The stop signal and when it came: SIGTERM or SIGINT (Ctrl-C) for the
/// process ([`Shutdown::on_signals`]), any future for a test
/// ([`Shutdown::when`]).
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<Option<Instant>>);

impl Shutdown {
    /// Stops when `stop` completes (a test's trigger).
    pub fn when(stop: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            stop.await;
            tracing::info!("stopping: no new connections; finishing requests in flight");
            let _ = tx.send(Some(Instant::now()));
        });
        Self(rx)
    }

    /// Installs the signal handlers now, so that a signal that arrives
    /// while the roles start is not lost (nor kills the process outright).
    pub fn on_signals() -> std::io::Result<Self> {
        let (tx, rx) = watch::channel(None);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            let mut int = signal(SignalKind::interrupt())?;
            tokio::spawn(async move {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                tracing::info!(
                    signal = name,
                    "stopping: no new connections; finishing requests in flight and the export cycle under way"
                );
                let _ = tx.send(Some(Instant::now()));
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("stopping: no new connections; finishing requests in flight");
            let _ = tx.send(Some(Instant::now()));
        });
        Ok(Self(rx))
    }

    /// Completes at the signal; returns when it came.
    fn signalled(&self) -> impl Future<Output = Instant> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(at) => at.unwrap_or_else(Instant::now),
                // The handler is gone (the runtime is stopping): stop too.
                Err(_) => Instant::now(),
            }
        }
    }

    /// Completes `grace` after the signal.
    fn deadline(&self, grace: Duration) -> impl Future<Output = ()> + Send + 'static {
        let signalled = self.signalled();
        async move { tokio::time::sleep_until(signalled.await + grace).await }
    }
}

/// Serves `router` on `listener` until `shutdown`, then waits for the
/// connections to finish, under the listener `limits` (header and body
/// timeouts, connections per address and in all). The key server's roles
/// (without the issuer) forget client addresses at accept; the issuer's
/// get them as `ConnectInfo` for its rate limits.
async fn serve_router(
    router: axum::Router,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    anonymous: bool,
    limits: http_serve::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addresses = if anonymous {
        http_serve::Addresses::Forget
    } else {
        http_serve::Addresses::Keep
    };
    match tls {
        None => {
            let tcp = listener.tap_io(|s| {
                let _ = s.set_nodelay(true);
            });
            http_serve::serve(tcp, router, limits, addresses, shutdown).await;
        }
        Some(config) => {
            let tls = tls::TlsListener::new(listener, config, |a| a)?;
            http_serve::serve(tls, router, limits, addresses, shutdown).await;
        }
    }
    Ok(())
}

/// Runs the configured roles on `listener` until `shutdown`: builds them
/// ([`build_roles`]), seeds the demo when `demo`, starts the export loop,
/// prints `listening on <url>` (scripts and tests read it), serves, then
/// drains and waits up to the grace period for requests in flight and the
/// export cycle under way. The binary calls it with the bound `--listen`
/// and [`Shutdown::on_signals`]; tests with port 0 and [`Shutdown::when`].
pub async fn serve(
    c: CocoaConfig,
    clock: Arc<dyn Clock>,
    tls: Option<Arc<rustls::ServerConfig>>,
    demo: bool,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // "A refusal to start on a data folder others can read (as ssh does
    // for keys)" (issue 12, finding 1): created 0700, refused when open.
    store_support::private::create_private_dir(&c.data)?;
    store_support::private::check_private_dir(&c.data)
        .map_err(|e| crate::commands::bad_input(e.to_string()))?;
    let roles = build_roles(&c, clock.clone()).await?;
    let demo_info = if demo {
        Some(demo::seed(&c, &roles).await?)
    } else {
        None
    };
    // The loop checks for the signal between cycles only: a cycle under
    // way (a batch being built) finishes first.
    let exporter = roles.exporter.map(|exporter| {
        let e = &c.keyserver.export;
        let stop = shutdown.signalled();
        tokio::spawn(
            exporter.run(e.interval, e.min_age.as_secs() as i64, async move {
                stop.await;
            }),
        )
    });
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Scripts and tests read this line to learn the port.
    let mut out = format!("listening on {scheme}://{addr}\n");
    if let Some(info) = &demo_info {
        out.push_str(&demo::banner(
            info,
            &format!("{scheme}://{addr}"),
            clock.now(),
        ));
        out.push('\n');
    }
    // One write, and a reader that stops reading (closing the pipe) does
    // not stop the server (`println!` would panic on the broken pipe).
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush());
    }
    tracing::info!(%addr, role = ?c.role, tls = tls.is_some(), "serving");
    // No issuer to rate-limit clients: forget their addresses at accept.
    let anonymous = matches!(c.role, Role::Keyserver | Role::Exporter);
    // At the signal `/readyz` turns 503 at once; the listener keeps
    // accepting for `drain_delay` (for a load balancer to notice), then
    // stops, and requests in flight get the grace period.
    let stop = shutdown.signalled();
    let (ops, drain) = (roles.ops.clone(), c.drain_delay);
    let limits = c
        .connections
        .limits()
        .map_err(|key| crate::commands::bad_input(format!("{key} must be greater than zero")))?;
    let server = serve_router(roles.router, listener, tls, anonymous, limits, async move {
        stop.await;
        ops.start_draining();
        if !drain.is_zero() {
            tracing::info!(
                drain_seconds = drain.as_secs_f64(),
                "draining: /readyz answers 503; still accepting requests"
            );
            tokio::time::sleep(drain).await;
        }
    });
    let grace = c.drain_delay + c.shutdown_grace;
    tokio::select! {
        r = server => r?,
        () = shutdown.deadline(grace) => {
            tracing::warn!(
                grace_seconds = grace.as_secs_f64(),
                "grace period over: closing the connections still open"
            );
        }
    }
    if let Some(task) = exporter {
        tokio::select! {
            r = task => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "exporter task ended abnormally");
                }
            }
            () = shutdown.deadline(grace) => {
                tracing::warn!(
                    grace_seconds = grace.as_secs_f64(),
                    "grace period over: the export cycle under way is cut short; its lease lets the next exporter redo it"
                );
            }
        }
    }
    tracing::info!("stopped");
    Ok(())
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

    async fn get(router: &axum::Router, path: &str) -> (u16, String) {
        use tower::ServiceExt as _;
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_role_answers_healthz_readyz_and_metrics_once() {
        for role in [Role::Issuer, Role::Keyserver, Role::Exporter, Role::All] {
            let dir = tempfile::tempdir().unwrap();
            let c = CocoaConfig {
                data: dir.path().join("data"),
                role,
                ..CocoaConfig::default()
            };
            // Building the router panics on a duplicate route.
            let roles = build_roles(&c, Arc::new(SystemClock)).await.unwrap();
            assert_eq!(get(&roles.router, "/healthz").await, (200, "ok".into()));
            assert_eq!(
                get(&roles.router, "/readyz").await,
                (200, "ready".into()),
                "{role:?}"
            );
            let (status, metrics) = get(&roles.router, "/metrics").await;
            assert_eq!(status, 200);
            assert!(
                metrics.contains("cocoa_build_info{version=\""),
                "{role:?}: {metrics}"
            );
            assert!(metrics.contains("cocoa_uptime_seconds "), "{metrics}");
            // The families of this role are there. (The registry is the
            // process's, and this test builds every role in one process, so
            // the absence of the other roles' families is proven through the
            // real binary, one process per role: tests/operations.rs.)
            let has = |m: &str| metrics.contains(&format!("# TYPE {m} "));
            let issuer = matches!(role, Role::Issuer | Role::All);
            let keyserver = matches!(role, Role::Keyserver | Role::All);
            let exporter = matches!(role, Role::Exporter | Role::All);
            for (family, wanted) in [
                ("issuer_verify_failed_total", issuer),
                ("keyserver_publish_total", keyserver),
                ("keyserver_export_last_cycle_seconds", exporter),
            ] {
                assert!(!wanted || has(family), "{role:?} {family}: {metrics}");
            }
            // Each metric family once.
            let mut types: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("# TYPE "))
                .collect();
            let n = types.len();
            types.sort_unstable();
            types.dedup();
            assert_eq!(types.len(), n, "{metrics}");
            // The roles' own routes still answer behind the operations routes.
            let (status, _) = get(&roles.router, "/no-such-path").await;
            assert_eq!(status, 404);
            if issuer {
                assert_eq!(get(&roles.router, "/.well-known/jwks.json").await.0, 200);
            }
            if keyserver {
                assert_eq!(get(&roles.router, "/api/stats").await.0, 200);
            }
        }
    }

    #[tokio::test]
    async fn readyz_fails_when_the_keyserver_database_is_gone() {
        for role in [Role::Keyserver, Role::Exporter, Role::All] {
            let dir = tempfile::tempdir().unwrap();
            let c = CocoaConfig {
                data: dir.path().join("data"),
                role,
                ..CocoaConfig::default()
            };
            let ks = keyserver::http::build(&c.keyserver, &c.data, Arc::new(SystemClock), vec![])
                .await
                .unwrap();
            let router = ops::with_ops(
                &Arc::new(ops::Ops::new(role, None, Some(ks.clone()))),
                keyserver::router(ks.clone()),
            );
            assert_eq!(get(&router, "/readyz").await, (200, "ready".into()));
            ks.keyserver.store().close().await;
            let (status, body) = get(&router, "/readyz").await;
            assert_eq!(status, 503, "{role:?}");
            assert!(body.contains("keyserver database"), "{body}");
            assert_eq!(get(&router, "/healthz").await.0, 200);
        }
    }
}
