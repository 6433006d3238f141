//! The issuer's HTTP server: device API, machine API, JWKS, health and
//! metrics. [`router`] gives the routes so `cocoa serve` can merge roles on
//! one listener; [`serve`] runs them on a listener until `shutdown`.

mod device;
mod error;
mod machine;
mod receipts;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use en_protocol::time::Clock;
use secrecy::ExposeSecret;
use tower_http::trace::TraceLayer;

use crate::config::IssuerConfig;
use crate::delivery::{Delivery, Sender, SmtpSender, TwilioSender};
use crate::limits::Limits;
use crate::service::{Issuer, Settings};
use crate::store::Store;

pub use crate::state::{ApiKeyHeader, App, ClientIp, JsonBody, TrustedProxies, client_key, proxy};
pub use receipts::TWILIO_STATUS_PATH;

/// The routes of the issuer role, with their state.
pub fn router(app: Arc<App>, max_body_bytes: usize) -> Router {
    register_metrics();
    let portal = crate::portal::layer(crate::portal::router(), app.clone());
    // A token or a certificate must never sit in a cache (issue 12, finding 12).
    let device_api = Router::new()
        .route("/api/verify", post(device::verify))
        .route("/api/certificate", post(device::certificate))
        .layer(axum::middleware::map_response(no_store));
    Router::new()
        .merge(device_api)
        .route("/.well-known/jwks.json", get(device::jwks))
        .route(
            "/api/v1/consultation-centres",
            get(device::consultation_centres),
        )
        .route("/api/v1/cases", post(machine::create_case))
        .route("/api/v1/cases/{case_id}", patch(machine::update_case))
        .route("/api/v1/canary-cases", post(machine::create_canary_case))
        .route(
            "/api/v1/cases/{case_id}/processing-number",
            post(machine::issue).get(machine::number_status),
        )
        .route(
            "/api/v1/cases/{case_id}/processing-number/expire",
            post(machine::expire),
        )
        .route("/api/v1/processing-numbers:batch", post(machine::issue_batch))
        .route(TWILIO_STATUS_PATH, post(receipts::twilio_status))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(portal)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(
            // Log method and path only: a query string could hold a link code.
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(app)
}

/// `Cache-Control: no-store` on an answer (errors included).
async fn no_store(mut resp: axum::response::Response) -> axum::response::Response {
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// `/readyz`: ready when the database answers (a load balancer sends no
/// traffic to a replica that cannot reach it); `/healthz` only says the
/// process runs.
async fn readyz(State(app): State<Arc<App>>) -> (axum::http::StatusCode, &'static str) {
    let ping = sqlx::query("SELECT 1").execute(app.issuer.store().pool());
    match tokio::time::timeout(std::time::Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (axum::http::StatusCode::OK, "ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: database");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
            )
        }
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "database timed out",
        ),
    }
}

/// Registers the issuer's metrics (at 0) in the process's registry, so a
/// scrape before the first event shows them.
pub fn register_metrics() {
    telemetry::install();
    metrics::describe_counter!(
        "issuer_verify_failed_total",
        "Verifications of a processing number that failed (wrong, expired or used number)."
    );
    metrics::describe_gauge!(
        "issuer_verify_failed_last_hour",
        "Failed verifications in the last hour, all addresses."
    );
    metrics::describe_gauge!(
        "issuer_verify_guessing_risk",
        "The guessing ledger: expected live numbers the typed numbers evaluated in the last 24 h could have found; typed numbers pause at issuer.limits.guessed_numbers_per_day."
    );
    metrics::describe_gauge!(
        "issuer_live_numbers",
        "Live processing numbers as last counted for the guessing ledger (L of the odds)."
    );
    metrics::gauge!("issuer_verify_guessing_risk").set(0.0);
    metrics::counter!("issuer_verify_failed_total").increment(0);
    metrics::gauge!("issuer_verify_failed_last_hour").set(0.0);
    metrics::describe_gauge!(
        "issuer_login_hashes_in_flight",
        "Staff-login argon2id hashes running now (at most the cores)."
    );
    metrics::describe_counter!(
        "issuer_login_hash_refused_total",
        "Staff logins refused with 503 because every core was hashing and the queue was full."
    );
    metrics::gauge!("issuer_login_hashes_in_flight").set(0.0);
    metrics::counter!("issuer_login_hash_refused_total").increment(0);
    for (name, help) in [
        (
            "issuer_numbers_issued_24h",
            "Processing numbers issued in the last 24 h, per centre (canary cases not counted).",
        ),
        (
            "issuer_registrations_24h",
            "Registrations (numbers used) in the last 24 h, per centre.",
        ),
        (
            "issuer_registration_ratio_24h",
            "Registrations per number issued over the last 24 h, per centre (0 when none was issued).",
        ),
        (
            "issuer_messages_last_hour",
            "Processing-number messages issued in the last hour.",
        ),
        (
            "issuer_delivery_failure_ratio_last_hour",
            "Of the messages issued in the last hour, the share that failed or were undelivered.",
        ),
        (
            "issuer_delivery_oldest_pending_seconds",
            "Age of the oldest message not yet handed to a gateway, the send queue's included (0 when none).",
        ),
        (
            "issuer_delivery_dead_letters",
            "Messages of the send queue given up (dead-letter) and not retried.",
        ),
        (
            "issuer_delivery_oldest_awaiting_receipt_seconds",
            "Age of the oldest message handed to the SMS gateway and still without its delivered receipt (0 when none).",
        ),
    ] {
        metrics::describe_gauge!(name, help);
    }
}

/// Brings the anomaly gauges (issue 13) up to date: per centre the numbers
/// issued, registrations and their ratio over the last 24 h (every centre
/// is set, so one that goes quiet drops to 0 rather than keeping its last
/// value), the delivery failure ratio of the last hour and the age of the
/// oldest message waiting. Alert rules: docs/production.md.
async fn refresh_anomaly_gauges(app: &App, now: i64) -> Result<(), crate::store::StoreError> {
    let store = app.issuer.store();
    let signals = store.anomaly_signals(now).await?;
    for c in store.centres().await? {
        let day = signals.centres.iter().find(|d| d.centre_id == c.id);
        let (issued, registered) = day.map_or((0, 0), |d| (d.issued_24h, d.registered_24h));
        let centre = c.id.to_string();
        metrics::gauge!("issuer_numbers_issued_24h", "centre" => centre.clone()).set(issued as f64);
        metrics::gauge!("issuer_registrations_24h", "centre" => centre.clone())
            .set(registered as f64);
        let ratio = if issued > 0 {
            registered as f64 / issued as f64
        } else {
            0.0
        };
        metrics::gauge!("issuer_registration_ratio_24h", "centre" => centre).set(ratio);
    }
    metrics::gauge!("issuer_messages_last_hour").set(signals.messages_last_hour as f64);
    let failure = if signals.messages_last_hour > 0 {
        signals.failed_last_hour as f64 / signals.messages_last_hour as f64
    } else {
        0.0
    };
    metrics::gauge!("issuer_delivery_failure_ratio_last_hour").set(failure);
    let age = |t: Option<i64>| t.map_or(0.0, |t| (now - t).max(0) as f64);
    // The send queue's rows (retries waiting for their backoff, released reminders)
    // count as pending too.
    let oldest_pending = match (signals.oldest_pending, store.oldest_queued(now).await?) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    metrics::gauge!("issuer_delivery_oldest_pending_seconds").set(age(oldest_pending));
    metrics::gauge!("issuer_delivery_dead_letters").set(store.dead_letter_count().await? as f64);
    metrics::gauge!("issuer_delivery_oldest_awaiting_receipt_seconds")
        .set(age(signals.oldest_awaiting_receipt));
    Ok(())
}

/// The process's registry. The last-hour gauge depends on the time of the
/// scrape, so it is brought up to date first; `cocoa serve`'s own
/// `/metrics` asks this route for that reason.
async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let now = app.issuer.now();
    metrics::gauge!("issuer_verify_failed_last_hour")
        .set(app.limits.failures_last_hour(now) as f64);
    metrics::gauge!("issuer_verify_guessing_risk").set(app.limits.guessing_risk(now));
    match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        refresh_anomaly_gauges(&app, now),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "anomaly gauges not refreshed"),
        Err(_) => tracing::warn!("anomaly gauges not refreshed: the database took over 2 s"),
    }
    (
        [(axum::http::header::CONTENT_TYPE, telemetry::CONTENT_TYPE)],
        telemetry::render(),
    )
}

/// The delivery backends of a configuration: the gateways when configured,
/// else the outbox folder (`<data>/outbox` unless set).
pub fn delivery_from_config(config: &IssuerConfig, data_dir: &Path) -> anyhow::Result<Delivery> {
    let outbox = Sender::Outbox(
        config
            .outbox
            .clone()
            .unwrap_or_else(|| data_dir.join("outbox")),
    );
    let sms = match &config.sms {
        Some(c) => Sender::Twilio(Arc::new(TwilioSender::new(c.clone())?)),
        None => outbox.clone(),
    };
    let email = match &config.smtp {
        Some(c) => Sender::Smtp(Arc::new(SmtpSender::new(c)?)),
        None => outbox,
    };
    let canary = match &config.canary {
        Some(c) => Some(Sender::Twilio(Arc::new(TwilioSender::new(
            c.gateway.clone(),
        )?))),
        None => None,
    };
    Ok(Delivery { sms, email, canary })
}

/// The server secret: configured, or kept in `<data>/issuer.secret`
/// (generated on first start, mode 0600). It keys the HMACs of numbers and
/// API keys and seals the signing keys at rest.
pub fn load_secret(config: &IssuerConfig, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let configured = config.secret.as_ref().map(|s| s.expose_secret());
    if configured.is_none() {
        store_support::private::create_private_dir(data_dir)?;
    }
    let secret = store_support::sealed::server_secret(
        configured,
        "the issuer secret",
        &data_dir.join("issuer.secret"),
        &mut |b| rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, b),
    )?;
    Ok(secret.to_vec())
}

/// The database URL of a configuration (default: SQLite under `data_dir`).
pub fn database_url(config: &IssuerConfig, data_dir: &Path) -> String {
    config
        .database_url
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&data_dir.join("issuer.sqlite3")))
}

/// Builds the issuer of a configuration: store, secret, keys, delivery.
pub async fn build(
    config: &IssuerConfig,
    data_dir: &Path,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<App>> {
    // 0700 whatever the umask (issue 12, finding 1).
    store_support::private::create_private_dir(data_dir)?;
    let store = Store::connect(&database_url(config, data_dir), config.max_connections).await?;
    let secret = load_secret(config, data_dir)?;
    let delivery = delivery_from_config(config, data_dir)?;
    let settings = Settings::from(config);
    let issuer = Issuer::new(
        store,
        &secret,
        delivery,
        clock,
        Box::new(rand::rngs::OsRng),
        settings,
    )
    .await?;
    let issuer = match &config.canary {
        Some(c) => issuer.with_canary(c.certificate_issuer.clone()),
        None => issuer,
    };
    let proxies = TrustedProxies::parse(&config.trusted_proxies).map_err(anyhow::Error::msg)?;
    Ok(Arc::new(App::new(
        issuer,
        Limits::new(config.limits.clone()),
        config.portal.clone(),
        proxies,
    )))
}

/// Runs the issuer role on `listener` until `shutdown` completes.
pub async fn serve(
    config: &IssuerConfig,
    data_dir: &Path,
    clock: Arc<dyn Clock>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = build(config, data_dir, clock).await?;
    // The send-queue worker runs beside the listener and stops with it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker_app = app.clone();
    let worker = tokio::spawn(async move {
        crate::service::run_send_queue(
            &worker_app.issuer,
            std::time::Duration::from_secs(1),
            stop_rx,
        )
        .await;
    });
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let r = serve_router(router(app, config.max_body_bytes), listener, shutdown).await;
    let _ = worker.await;
    r
}

/// Serves any router (one role or several merged) with client addresses,
/// under the listener limits of [`http_serve`] (header and body timeouts,
/// connections per address).
pub async fn serve_router(
    router: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    http_serve::serve(
        listener,
        router,
        http_serve::Limits::default(),
        http_serve::Addresses::Keep,
        shutdown,
    )
    .await;
    Ok(())
}
