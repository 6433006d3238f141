//! `/healthz`, `/readyz` and `/metrics` of `cocoa serve`, once per process
//! whatever the roles. They sit in front of the roles' routes
//! ([`with_ops`]): the issuer's router has its own three, which these
//! shadow, reusing its `/readyz` and `/metrics` answers.
//!
//! - `/healthz`: the process runs (200 `ok`).
//! - `/readyz`: every database of the roles answers `SELECT 1` within 2 s
//!   (200 `ready`, else 503 naming the one that did not); 503 `draining`
//!   once the process was told to stop.
//! - `/metrics`: the process's one registry (`telemetry`): the issuer's
//!   counters, the key server's, the exporter's, and the process's
//!   (`cocoa_build_info`, start time, uptime), each family once. With
//!   `metrics_token` set, only to `Authorization: Bearer <token>` (401
//!   otherwise): "`/metrics` can be bound to a separate listener or require
//!   a bearer token" (issue 12, finding 12). The counters tell how many
//!   numbers were issued, guessed and registered, by hour: not for anyone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use en_protocol::time::{Clock as _, SystemClock};
use tower::ServiceExt as _;

use super::config::Role;

/// How long `/readyz` waits for a database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Largest answer read back from the issuer's own `/readyz` or `/metrics`.
const INNER_BODY_LIMIT: usize = 1 << 20;

/// What the operations routes look at.
#[derive(Debug)]
pub struct Ops {
    started: Instant,
    /// The issuer's routes (for its `/readyz` and `/metrics`), when it runs.
    issuer: Option<Router>,
    /// The key server's state, for the keyserver and exporter roles.
    keyserver: Option<Arc<keyserver::http::App>>,
    /// Set at SIGTERM: `/readyz` answers 503 from then on.
    draining: std::sync::atomic::AtomicBool,
    /// When set, `/metrics` answers only to this bearer token.
    metrics_token: Option<secrecy::SecretString>,
}

impl Ops {
    /// Operations of `role`: `issuer` is the issuer's router when it runs,
    /// `keyserver` the key server's state when the key server or the
    /// exporter runs.
    pub fn new(
        role: Role,
        issuer: Option<Router>,
        keyserver: Option<Arc<keyserver::http::App>>,
    ) -> Self {
        // Wall time, not the served clock (`--now`): Prometheus compares it with its own.
        let started_unix = SystemClock.now().timestamp();
        register_process_metrics(role, started_unix);
        Self {
            started: Instant::now(),
            issuer,
            keyserver,
            draining: std::sync::atomic::AtomicBool::new(false),
            metrics_token: None,
        }
    }

    /// `/metrics` answers only to `Authorization: Bearer <token>`.
    #[must_use]
    pub fn with_metrics_token(mut self, token: Option<secrecy::SecretString>) -> Self {
        self.metrics_token = token;
        self
    }

    /// From now on `/readyz` answers 503 `draining` (the process stops soon).
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `roles` behind the operations routes: `/healthz`, `/readyz` and
/// `/metrics` answer here, every other path goes to `roles`.
pub fn with_ops(ops: &Arc<Ops>, roles: Router) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ops.clone())
        .fallback_service(roles)
}

/// GETs `path` from the issuer's own routes: (status, body).
async fn ask_issuer(issuer: &Router, path: &str) -> (StatusCode, String) {
    let req = match Request::get(path).body(Body::empty()) {
        Ok(r) => r,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
    };
    let Ok(resp) = issuer.clone().oneshot(req).await;
    let status = resp.status();
    match axum::body::to_bytes(resp.into_body(), INNER_BODY_LIMIT).await {
        Ok(b) => (status, String::from_utf8_lossy(&b).into_owned()),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
    }
}

/// Whether the key server's database answers `SELECT 1` in time.
async fn keyserver_ready(ks: &keyserver::http::App) -> Result<(), &'static str> {
    let ping = sqlx::query("SELECT 1").execute(ks.keyserver.store().pool());
    match tokio::time::timeout(READY_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: keyserver database");
            Err("keyserver database unavailable")
        }
        Err(_) => {
            tracing::warn!("not ready: keyserver database timed out");
            Err("keyserver database timed out")
        }
    }
}

async fn readyz(State(ops): State<Arc<Ops>>) -> (StatusCode, String) {
    if ops.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining".into());
    }
    let issuer = async {
        match &ops.issuer {
            // The issuer's own check pings its database with the same timeout.
            Some(r) => {
                match tokio::time::timeout(READY_TIMEOUT * 2, ask_issuer(r, "/readyz")).await {
                    Ok((StatusCode::OK, _)) => Ok(()),
                    Ok((_, body)) => Err(format!("issuer: {}", body.trim())),
                    Err(_) => Err("issuer: database timed out".to_owned()),
                }
            }
            None => Ok(()),
        }
    };
    let keyserver = async {
        match &ops.keyserver {
            Some(ks) => keyserver_ready(ks).await.map_err(str::to_owned),
            None => Ok(()),
        }
    };
    let (i, k) = tokio::join!(issuer, keyserver);
    let problems: Vec<String> = [i, k].into_iter().filter_map(Result::err).collect();
    if problems.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("; "))
    }
}

/// Registers the process's own metrics: `cocoa_build_info`,
/// `process_start_time_seconds`, `cocoa_uptime_seconds`.
fn register_process_metrics(role: Role, started_unix: i64) {
    let role = match role {
        Role::Issuer => "issuer",
        Role::Keyserver => "keyserver",
        Role::Exporter => "exporter",
        Role::All => "all",
    };
    telemetry::install();
    metrics::describe_gauge!("cocoa_build_info", "The running version and role(s).");
    metrics::describe_gauge!(
        "process_start_time_seconds",
        "Start time of the process since the unix epoch."
    );
    metrics::describe_gauge!("cocoa_uptime_seconds", "Seconds since the process started.");
    metrics::gauge!("cocoa_build_info", "version" => env!("CARGO_PKG_VERSION"), "role" => role)
        .set(1.0);
    metrics::gauge!("process_start_time_seconds").set(started_unix as f64);
    metrics::gauge!("cocoa_uptime_seconds").set(0.0);
}

/// The process's one registry: every role's counters and the process's own.
async fn metrics(State(ops): State<Arc<Ops>>, headers: HeaderMap) -> Response {
    if let Some(token) = &ops.metrics_token {
        use secrecy::ExposeSecret as _;
        use subtle::ConstantTimeEq as _;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let expected = token.expose_secret().as_bytes();
        // Equal lengths first (the length of a token is no secret), then
        // the bytes in constant time.
        if given.len() != expected.len() || !bool::from(given.as_bytes().ct_eq(expected)) {
            let body = api_types::error::ErrorResponse {
                error: "メトリクスの閲覧にはトークンが必要です / /metrics needs its bearer token"
                    .into(),
                error_code: "metrics_token_required".into(),
            };
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(body),
            )
                .into_response();
        }
    }
    if let Some(issuer) = &ops.issuer {
        // The issuer's route brings its time-dependent gauge up to date.
        let _ = ask_issuer(issuer, "/metrics").await;
    }
    metrics::gauge!("cocoa_uptime_seconds").set(ops.started.elapsed().as_secs_f64());
    (
        [(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        telemetry::render(),
    )
        .into_response()
}
