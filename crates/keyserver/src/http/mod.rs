//! The key server's HTTP side: `POST /v1/publish`, `GET /exports/…`,
//! `GET /exposure_configuration/…` (the phones' configuration, signed),
//! `GET /api/stats`, the public page `GET /stats`; `/healthz` and `/metrics`
//! for a standalone process. [`router`] gives the routes so `cocoa serve`
//! can merge roles on one listener; [`serve`] runs them until `shutdown`.
//!
//! No handler reads the client's address, and the request log holds the
//! method and path only.

mod configuration;
mod error;
mod exports;
mod publish;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use en_protocol::time::Clock;
use rand::RngCore;
use rand::SeedableRng as _;
use tower_http::trace::TraceLayer;

use crate::config::KeyserverConfig;
use crate::export::{ExportSettings, Exporter};
use crate::publish::{Keyserver, Settings};
use crate::storage::ExportStorage;
use crate::store::Store;
use crate::trust::{Policy, Trust, TrustedIssuer};
use crate::validate::KeyLimits;

/// Shared state of every request.
pub struct App {
    /// The publish operation.
    pub keyserver: Keyserver,
    /// The export object store.
    pub storage: ExportStorage,
    /// The exporter (for its metrics; the loop runs elsewhere).
    pub exporter: Arc<Exporter>,
    /// k-anonymity threshold of the statistics.
    pub stats_threshold: u64,
    /// Largest publish body.
    pub max_body_bytes: usize,
    rng: Mutex<Box<dyn RngCore + Send>>,
    latencies: Mutex<publish::Latencies>,
    /// Export objects served lately: their version, content tag and bytes
    /// (`exports::ServedObjects`).
    pub(crate) served: exports::ServedObjects,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("keyserver", &self.keyserver)
            .field("exporter", &self.exporter)
            .finish_non_exhaustive()
    }
}

impl App {
    /// State over its parts. `rng` draws padding and chaff delays.
    pub fn new(
        keyserver: Keyserver,
        storage: ExportStorage,
        exporter: Arc<Exporter>,
        stats_threshold: u64,
        max_body_bytes: usize,
        rng: Box<dyn RngCore + Send>,
    ) -> Self {
        Self {
            keyserver,
            storage,
            exporter,
            stats_threshold,
            max_body_bytes,
            rng: Mutex::new(rng),
            latencies: Mutex::new(publish::Latencies::default()),
            served: exports::ServedObjects::default(),
        }
    }
}

/// The routes of the keyserver role, with their state: `/v1/publish`,
/// `/exports/…`, `/api/stats`, `/stats`.
pub fn router(app: Arc<App>) -> Router {
    crate::publish::register_metrics();
    let max_body = app.max_body_bytes;
    Router::new()
        .route(
            "/v1/publish",
            post(publish::publish).layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/exports/{*path}", get(exports::get_export))
        .route(
            "/exposure_configuration/configuration.json",
            get(configuration::configuration),
        )
        .route(
            "/exposure_configuration/risk_calculation_configuration.json",
            get(configuration::risk_calculation),
        )
        .route(
            "/exposure_configuration/bundle.json",
            get(configuration::bundle),
        )
        .route("/api/stats", get(stats_json))
        .route("/stats", get(stats_page))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(app)
}

/// `/healthz` and `/metrics`, for a process that runs no issuer (which
/// serves them in the all-in-one process).
pub fn ops_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// The process's registry (the key server's and the exporter's counters
/// among them).
async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        telemetry::render(),
    )
}

async fn stats_of(app: &App) -> Result<api_types::stats::StatsResponse, crate::Error> {
    let days = app.keyserver.store().stats_days().await?;
    Ok(crate::stats::compute(
        &days,
        app.stats_threshold,
        app.keyserver.now(),
    ))
}

async fn stats_json(State(app): State<Arc<App>>) -> Response {
    match stats_of(&app).await {
        Ok(s) => ([(header::CACHE_CONTROL, "no-cache")], axum::Json(s)).into_response(),
        Err(e) => error_page(&e),
    }
}

async fn stats_page(State(app): State<Arc<App>>) -> Response {
    match stats_of(&app).await {
        Ok(s) => (
            [(header::CACHE_CONTROL, "no-cache")],
            Html(crate::stats::page_html(&s)),
        )
            .into_response(),
        Err(e) => error_page(&e),
    }
}

fn error_page(e: &crate::Error) -> Response {
    e.log_if_internal();
    let (status, message) = e.status_and_message();
    (
        status,
        axum::Json(api_types::error::ErrorResponse {
            error: message,
            error_code: e.code().to_owned(),
        }),
    )
        .into_response()
}

/// The key server's secret, which seals the generated export signing key
/// at rest: the configured one; else, for the default SQLite database in
/// `data_dir`, the one kept beside it in `<data>/keyserver.secret`
/// (generated on first start, mode 0600). `None` for another database
/// without a configured secret: replicas sharing a PostgreSQL database each
/// have their own data folder, and a secret generated in one would lock the
/// others out of the key, so there the key stays unsealed (with a warning)
/// until `keyserver.secret` is configured.
pub fn load_secret(
    config: &KeyserverConfig,
    data_dir: &Path,
) -> anyhow::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    use secrecy::ExposeSecret as _;
    let configured = config.secret.as_ref().map(|s| s.expose_secret());
    if configured.is_none() {
        if config.database_url.is_some() {
            return Ok(None);
        }
        store_support::private::create_private_dir(data_dir)?;
    }
    Ok(Some(store_support::sealed::server_secret(
        configured,
        "the key server secret",
        &data_dir.join("keyserver.secret"),
        &mut |b| RngCore::fill_bytes(&mut rand::rngs::OsRng, b),
    )?))
}

/// The database URL of a configuration (default: SQLite under `data_dir`).
pub fn database_url(config: &KeyserverConfig, data_dir: &Path) -> String {
    config
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&data_dir.join("keyserver.sqlite3")))
}

/// Builds the key server of a configuration: store, trusted issuers (the
/// configured ones, those in the database, and `extra`), object store,
/// signing keys, exporter.
pub async fn build(
    config: &KeyserverConfig,
    data_dir: &Path,
    clock: Arc<dyn Clock>,
    extra: Vec<TrustedIssuer>,
) -> anyhow::Result<Arc<App>> {
    // 0700 whatever the umask (issue 12, finding 1).
    store_support::private::create_private_dir(data_dir)?;
    for region in
        std::iter::once(&config.export.region).chain(config.export.regions.iter().map(|r| &r.name))
    {
        anyhow::ensure!(
            crate::store::valid_region(region),
            "export region {region:?} must be 1-32 letters, digits, - or _"
        );
    }
    let store = Store::connect(&database_url(config, data_dir), config.max_connections).await?;
    let mut issuers = extra;
    for c in &config.issuers {
        issuers.push(TrustedIssuer::from_config(c)?);
    }
    let now = clock.now().timestamp();
    let trust = Trust::new(issuers);
    trust.reload(&store, now).await?;
    let storage = ExportStorage::from_config(&config.storage, data_dir)?;
    let secret = load_secret(config, data_dir)?;
    let signers = crate::signing::load_signers(
        &config.export,
        &store,
        now,
        secret.as_deref().map(|s| s.as_slice()),
    )
    .await?;
    let exporter = Arc::new(Exporter::new(
        store.clone(),
        storage.clone(),
        signers,
        ExportSettings::from(&config.export),
        clock.clone(),
        Box::new(rand::rngs::StdRng::from_entropy()),
    ));
    let keyserver = Keyserver::new(
        store,
        trust,
        clock,
        Settings {
            policy: Policy {
                audience: config.audience.clone(),
                skew_seconds: config.clock_skew_seconds,
            },
            limits: KeyLimits {
                max_keys: config.max_keys,
                max_same_start: config.max_same_start,
            },
            region: config.export.region.clone(),
        },
    );
    Ok(Arc::new(App::new(
        keyserver,
        storage,
        exporter,
        config.stats_threshold,
        config.max_body_bytes,
        Box::new(rand::rngs::StdRng::from_entropy()),
    )))
}

/// Runs the keyserver role (with `/healthz` and `/metrics`) on `listener`
/// until `shutdown` completes. The exporter loop is not started; see
/// [`Exporter::run`].
pub async fn serve(
    config: &KeyserverConfig,
    data_dir: &Path,
    clock: Arc<dyn Clock>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = build(config, data_dir, clock, Vec::new()).await?;
    let router = router(app.clone()).merge(ops_router(app));
    // No rate limits here: client addresses are forgotten at accept.
    http_serve::serve(
        listener,
        router,
        http_serve::Limits::default(),
        http_serve::Addresses::Forget,
        shutdown,
    )
    .await;
    Ok(())
}
