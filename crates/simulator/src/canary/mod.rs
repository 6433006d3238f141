//! The production canary (`cocoa canary`): the seed's whole flow, run
//! against a live deployment again and again, so that a silent break — like
//! the four and a half months in which COCOA notified no Android user — is
//! seen within minutes.
//!
//! One run ([`run_once`]):
//!
//! 1. `case`: creates a synthetic canary case through the issuer's machine
//!    API (`POST /api/v1/canary-cases`).
//! 2. `issue`: asks for its processing number
//!    (`POST /api/v1/cases/{id}/processing-number`).
//! 3. `delivery`: receives the message on the canary's own channel
//!    ([`inbox`], a Twilio-compatible receiver the issuer sends to) and reads
//!    the app link from it.
//! 4. `meet`: two synthetic phones (the real `device` code, each in a
//!    throwaway home) spend 20 minutes at 1 m of each other at 12:00 UTC the
//!    day before, so that the registering phone's key of that day has ended
//!    and is published without embargo.
//! 5. `register`: phone A registers positive (symptoms since the day of the
//!    meeting) through verify → certificate → publish, under the canary's
//!    health authority. The issuer signs canary certificates with the canary
//!    `iss`, which the key server trusts for the canary region only: real
//!    phones never download these keys.
//! 6. `notify`: phone B checks the canary region's exports until it is told
//!    of one contact on the day of the meeting (or the export timeout passes).
//!
//! [`record_metrics`] keeps the outcome in the process's registry for Prometheus; docs/simulator.md and
//! the README say how to alert on it.

pub mod inbox;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, NaiveTime, Utc};
use device::{Phone, RegistrationInput, Settings};
use en_protocol::time::{Clock, FixedClock};
use serde::Serialize;

pub use inbox::{Inbox, InboxAuth};

/// What the canary talks to.
#[derive(Clone)]
pub struct CanaryConfig {
    /// Base URL of the issuer (machine API and device API).
    pub issuer: reqwest::Url,
    /// Base URL of the key server (`/v1/publish`).
    pub keyserver: reqwest::Url,
    /// The canary region's export index; default
    /// `{keyserver}/exports/{region}/list.json` (COCOA's index, whose URLs
    /// do not depend on where the index lies).
    pub exports: Option<reqwest::Url>,
    /// Admin API key of the machine API.
    pub admin_api_key: String,
    /// Device API key (`X-API-Key` of `/api/verify`), when the issuer wants one.
    pub device_api_key: Option<String>,
    /// Centre of the canary cases, for an admin key not bound to one.
    pub centre_id: Option<i64>,
    /// SPKI PEM public keys the canary region's exports are signed with.
    pub export_public_keys: Vec<String>,
    /// `healthAuthorityID` of the canary's publishes.
    pub health_authority_id: String,
    /// The canary region (never a region real phones download).
    pub region: String,
    /// Prefecture of the synthetic phones (for the consultation centre).
    pub prefecture: String,
    /// How long to wait for the message.
    pub delivery_timeout: Duration,
    /// How long to wait for the export and the notification.
    pub export_timeout: Duration,
    /// How often phone B checks while waiting.
    pub poll: Duration,
}

impl std::fmt::Debug for CanaryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryConfig")
            .field("issuer", &self.issuer.as_str())
            .field("keyserver", &self.keyserver.as_str())
            .field("exports", &self.exports.as_ref().map(reqwest::Url::as_str))
            .field("admin_api_key", &"<redacted>")
            .field(
                "device_api_key",
                &self.device_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("centre_id", &self.centre_id)
            .field("health_authority_id", &self.health_authority_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl CanaryConfig {
    /// The export index phone B reads.
    pub fn exports_url(&self) -> Result<reqwest::Url, String> {
        if let Some(u) = &self.exports {
            return Ok(u.clone());
        }
        self.keyserver
            .join(&format!("exports/{}/list.json", self.region))
            .map_err(|e| format!("keyserver URL: {e}"))
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// `case`, `issue`, `delivery`, `meet`, `register` or `notify`.
    pub step: &'static str,
    /// Whether it did what it should.
    pub ok: bool,
    /// How long it took.
    pub seconds: f64,
    /// What was checked, or why it failed.
    pub detail: String,
}

/// The steps of a run, in order.
pub const STEPS: [&str; 6] = ["case", "issue", "delivery", "meet", "register", "notify"];

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryReport {
    /// Every step did what it should.
    pub ok: bool,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub seconds: f64,
    /// The steps run (a failed step ends the run).
    pub steps: Vec<StepReport>,
    /// The date phone B must be notified of (UTC date of the meeting).
    pub expected_date: NaiveDate,
    /// The dates it was notified of.
    pub notified_dates: Vec<String>,
    /// From the registration's success to phone B's notification.
    pub registration_to_notification_seconds: Option<f64>,
}

impl CanaryReport {
    /// The failed step, if any.
    pub fn failure(&self) -> Option<&StepReport> {
        self.steps.iter().find(|s| !s.ok)
    }
}

struct Run {
    started: Instant,
    steps: Vec<StepReport>,
}

impl Run {
    /// Times `work`; records its outcome as step `step`.
    async fn step<T>(
        &mut self,
        step: &'static str,
        work: impl Future<Output = Result<(T, String), String>>,
    ) -> Option<T> {
        let t = Instant::now();
        let r = work.await;
        let seconds = t.elapsed().as_secs_f64();
        match r {
            Ok((v, detail)) => {
                self.steps.push(StepReport {
                    step,
                    ok: true,
                    seconds,
                    detail,
                });
                Some(v)
            }
            Err(detail) => {
                tracing::warn!(step, %detail, "canary step failed");
                self.steps.push(StepReport {
                    step,
                    ok: false,
                    seconds,
                    detail,
                });
                None
            }
        }
    }
}

async fn post_json(
    http: &reqwest::Client,
    url: reqwest::Url,
    api_key: &str,
    idempotency_key: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let resp = http
        .post(url.clone())
        .header("X-API-Key", api_key)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{}: {}", url.path(), e.without_url()))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "{} answered {status}: {}",
            url.path(),
            body.get("errorCode")
                .or_else(|| body.get("error"))
                .unwrap_or(&serde_json::Value::Null)
        ));
    }
    Ok(body)
}

fn url(base: &reqwest::Url, path: &str) -> Result<reqwest::Url, String> {
    base.join(path).map_err(|e| format!("{base}: {e}"))
}

/// The app link in a message (the SMS of the seed: `https://<host>/cocoa/a/?pn=…`).
fn app_link(body: &str) -> Option<&str> {
    body.split_whitespace()
        .find(|w| w.starts_with("https://") && w.contains("/cocoa/a/"))
}

/// Runs the canary once. `real` is the clock of the deployment (the system
/// clock in production); the phones get their own clock, moved from the
/// meeting to `real`'s time.
pub async fn run_once(config: &CanaryConfig, inbox: &Inbox, real: &dyn Clock) -> CanaryReport {
    let started_at = real.now();
    let mut run = Run {
        started: Instant::now(),
        steps: Vec::new(),
    };
    let midnight = started_at.date_naive().and_time(NaiveTime::MIN).and_utc();
    let met_at = midnight - ChronoDuration::hours(12);
    let expected_date = met_at.date_naive();
    let mut report = CanaryReport {
        ok: false,
        started_at,
        seconds: 0.0,
        steps: Vec::new(),
        expected_date,
        notified_dates: Vec::new(),
        registration_to_notification_seconds: None,
    };
    let outcome = drive(config, inbox, real, &mut run, met_at, &mut report).await;
    report.ok = outcome.is_some() && run.steps.iter().all(|s| s.ok);
    report.steps = run.steps;
    report.seconds = run.started.elapsed().as_secs_f64();
    // A number that arrived after its run gave up is never kept.
    inbox.clear();
    report
}

async fn drive(
    config: &CanaryConfig,
    inbox: &Inbox,
    real: &dyn Clock,
    run: &mut Run,
    met_at: DateTime<Utc>,
    report: &mut CanaryReport,
) -> Option<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .ok()?;
    let nonce = hex::encode(rand::random::<[u8; 8]>());

    let case_id: i64 = run
        .step("case", async {
            let body = post_json(
                &http,
                url(&config.issuer, "api/v1/canary-cases")?,
                &config.admin_api_key,
                &format!("canary-case-{nonce}"),
                &match config.centre_id {
                    Some(c) => serde_json::json!({ "centre_id": c }),
                    None => serde_json::json!({}),
                },
            )
            .await?;
            let id = body["case_id"]
                .as_i64()
                .ok_or_else(|| format!("no case_id in {body}"))?;
            Ok((id, format!("canary case {id}")))
        })
        .await?;

    run.step("issue", async {
        let body = post_json(
            &http,
            url(
                &config.issuer,
                &format!("api/v1/cases/{case_id}/processing-number"),
            )?,
            &config.admin_api_key,
            &format!("canary-issue-{nonce}"),
            &serde_json::json!({}),
        )
        .await?;
        if body["channel"] != "canary" {
            return Err(format!(
                "sent through {} instead of the canary channel",
                body["channel"]
            ));
        }
        Ok(((), format!("sent, valid until {}", body["expires_at"])))
    })
    .await?;

    let code = run
        .step("delivery", async {
            let to = format!("canary-case-{case_id}");
            let body = inbox
                .take(&to, config.delivery_timeout)
                .await
                .ok_or_else(|| {
                    format!(
                        "no message to {to} within {} s",
                        config.delivery_timeout.as_secs()
                    )
                })?;
            let link = app_link(&body).ok_or("the message holds no app link")?;
            let code = device::parse_app_link(link).map_err(|e| e.to_string())?;
            Ok((code, "message received; app link read".to_owned()))
        })
        .await?;

    let dir = tempfile::tempdir().ok()?;
    // The phones are set up and meet "yesterday": their clock stands just
    // after the meeting (a phone refuses sightings from its future).
    let phone_clock = Arc::new(FixedClock::new(met_at + ChronoDuration::minutes(30)));
    let (mut a, mut b) = run
        .step("meet", async {
            let settings = Settings {
                prefecture: Some(config.prefecture.clone()),
                server: Some(config.issuer.to_string()),
                api_key: config.device_api_key.clone(),
                keyserver: Some(config.keyserver.to_string()),
                exports: Some(config.exports_url()?.to_string()),
                export_public_keys: config.export_public_keys.clone(),
                health_authority_id: config.health_authority_id.clone(),
                region: config.region.clone(),
                ..Settings::default()
            };
            let open = |name: &str| {
                Phone::init(
                    &dir.path().join(name),
                    settings.clone(),
                    phone_clock.clone(),
                    Box::new(rand_core::OsRng),
                )
                .map_err(|e| format!("phone {name}: {e}"))
            };
            let (mut a, mut b) = (open("a")?, open("b")?);
            let met = device::meet(&mut a, &mut b, met_at, 20, 1.0).map_err(|e| e.to_string())?;
            Ok((
                (a, b),
                format!(
                    "20 minutes at 1 m on {} ({} scans, {} dB)",
                    met_at.format("%Y-%m-%d %H:%M UTC"),
                    met.scans,
                    met.attenuation_db
                ),
            ))
        })
        .await?;

    phone_clock.set(real.now());
    let onset = met_at.with_timezone(&device::window::jst()).date_naive();
    let registered = run
        .step("register", async {
            let input = RegistrationInput {
                symptoms: true,
                date: onset,
                code,
            };
            let outcome = a
                .register(Some(&input))
                .await
                .map_err(|e| format!("{} ({e})", e.text().en))?;
            if outcome.inserted == 0 {
                return Err(format!(
                    "the key server stored no key ({} sent)",
                    outcome.keys
                ));
            }
            Ok((
                Instant::now(),
                format!("{} keys sent, {} stored", outcome.keys, outcome.inserted),
            ))
        })
        .await?;

    let expected = report.expected_date;
    let dates = run
        .step("notify", async {
            let deadline = Instant::now() + config.export_timeout;
            loop {
                phone_clock.set(real.now());
                let checked = b.check().await.map_err(|e| e.to_string())?;
                let dates = checked.notification.dates.clone();
                if !dates.is_empty() {
                    if dates != [expected.to_string()] {
                        return Err(format!("notified of {dates:?}, expected [{expected}]"));
                    }
                    let detail = format!(
                        "1 contact on {expected}; {} files, {} keys checked",
                        checked.check.files_new, checked.check.keys
                    );
                    return Ok((dates, detail));
                }
                if !checked.check.failed.is_empty() {
                    return Err(format!(
                        "export files refused: {}",
                        checked
                            .check
                            .failed
                            .iter()
                            .map(|r| format!("{} ({})", r.url, r.reason))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "not notified within {} s ({} files, {} keys checked)",
                        config.export_timeout.as_secs(),
                        checked.check.files_listed,
                        checked.check.keys
                    ));
                }
                tokio::time::sleep(config.poll).await;
            }
        })
        .await?;
    report.registration_to_notification_seconds = Some(registered.elapsed().as_secs_f64());
    report.notified_dates = dates;
    Some(())
}

/// Registers the canary's metrics in the process's registry (`telemetry`),
/// so a scrape before the first run shows the run counters at 0 and
/// `cocoa_canary_up 0`.
pub fn register_metrics() {
    telemetry::install();
    metrics::describe_counter!("cocoa_canary_runs_total", "Canary runs by outcome.");
    metrics::describe_gauge!(
        "cocoa_canary_up",
        "Whether the last run went from issuance to notification."
    );
    metrics::describe_gauge!(
        "cocoa_canary_last_success_timestamp_seconds",
        "End of the last successful run."
    );
    metrics::describe_gauge!(
        "cocoa_canary_registration_to_notification_seconds",
        "From registration to notification, last successful run."
    );
    metrics::describe_gauge!(
        "cocoa_canary_step_seconds",
        "Duration of each step of the last run (0: not reached)."
    );
    metrics::describe_gauge!(
        "cocoa_canary_step_ok",
        "Whether each step of the last run succeeded (0: failed or not reached; the first 0 in the order of the steps is where it broke)."
    );
    for outcome in ["success", "failure"] {
        metrics::counter!("cocoa_canary_runs_total", "outcome" => outcome).increment(0);
    }
    metrics::gauge!("cocoa_canary_up").set(0.0);
}

/// Records a run in the process's registry: its outcome, and the steps of
/// this run (every step of [`STEPS`]; those not reached at 0).
pub fn record_metrics(r: &CanaryReport) {
    let outcome = if r.ok { "success" } else { "failure" };
    metrics::counter!("cocoa_canary_runs_total", "outcome" => outcome).increment(1);
    metrics::gauge!("cocoa_canary_up").set(if r.ok { 1.0 } else { 0.0 });
    if r.ok {
        let end = r.started_at.timestamp() + r.seconds.round() as i64;
        metrics::gauge!("cocoa_canary_last_success_timestamp_seconds").set(end as f64);
        if let Some(secs) = r.registration_to_notification_seconds {
            metrics::gauge!("cocoa_canary_registration_to_notification_seconds").set(secs);
        }
    }
    for step in STEPS {
        let reached = r.steps.iter().find(|s| s.step == step);
        let (ok, seconds) = reached.map_or((0.0, 0.0), |s| (f64::from(u8::from(s.ok)), s.seconds));
        metrics::gauge!("cocoa_canary_step_ok", "step" => step).set(ok);
        metrics::gauge!("cocoa_canary_step_seconds", "step" => step).set(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_link_is_found_in_the_message() {
        let body = "処理番号: 12345678\n\n次のリンクを開くと…\nhttps://cocoa.example.jp/cocoa/a/?pn=ABCDEFGHJKLMNPQRSTUV\n\n有効期限";
        assert_eq!(
            app_link(body),
            Some("https://cocoa.example.jp/cocoa/a/?pn=ABCDEFGHJKLMNPQRSTUV")
        );
        assert_eq!(app_link("処理番号: 12345678"), None);
    }

    #[test]
    fn metrics_count_runs_and_show_the_last_steps() {
        register_metrics();
        let runs = |outcome: &str| {
            telemetry::current(&format!("cocoa_canary_runs_total{{outcome=\"{outcome}\"}}"))
                .unwrap_or_default()
        };
        let (successes, failures) = (runs("success"), runs("failure"));
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let step = |step, ok| StepReport {
            step,
            ok,
            seconds: 0.25,
            detail: String::new(),
        };
        let mut r = CanaryReport {
            ok: true,
            started_at: t,
            seconds: 2.0,
            steps: STEPS.iter().map(|s| step(s, true)).collect(),
            expected_date: t.date_naive(),
            notified_dates: vec![t.date_naive().to_string()],
            registration_to_notification_seconds: Some(1.5),
        };
        record_metrics(&r);
        assert_eq!(telemetry::current("cocoa_canary_up"), Some(1.0));
        assert_eq!(
            telemetry::current("cocoa_canary_step_ok{step=\"notify\"}"),
            Some(1.0)
        );
        r.ok = false;
        r.steps = vec![step("case", true), step("issue", false)];
        record_metrics(&r);
        assert_eq!(runs("success") - successes, 1.0);
        assert_eq!(runs("failure") - failures, 1.0);
        let text = telemetry::render();
        let value = |series: &str| telemetry::sample(&text, series);
        assert_eq!(value("cocoa_canary_up"), Some(0.0), "{text}");
        assert_eq!(
            value("cocoa_canary_last_success_timestamp_seconds"),
            Some(1_700_000_002.0)
        );
        assert_eq!(
            value("cocoa_canary_registration_to_notification_seconds"),
            Some(1.5)
        );
        assert_eq!(value("cocoa_canary_step_ok{step=\"case\"}"), Some(1.0));
        assert_eq!(value("cocoa_canary_step_ok{step=\"issue\"}"), Some(0.0));
        // A step the last run did not reach no longer shows the earlier run's success.
        assert_eq!(value("cocoa_canary_step_ok{step=\"notify\"}"), Some(0.0));
        assert_eq!(
            value("cocoa_canary_step_seconds{step=\"notify\"}"),
            Some(0.0)
        );
        assert_eq!(
            value("cocoa_canary_step_seconds{step=\"issue\"}"),
            Some(0.25)
        );
    }
}
