//! `POST /v1/publish` as an operation: the health authority, the certificate,
//! the key HMAC, the key rules, the embargo, and idempotent storage.

use std::sync::Arc;

use api_types::publish::{PublishRequest, tekmac_message, tekmac_message_without_risk};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use en_protocol::time::{Clock, EN_INTERVAL_SECONDS};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tracing::{info, instrument};

use crate::error::{Error, Result};
use crate::store::{NewPublish, Recorded, Store, StoredKey};
use crate::trust::{Policy, Trust, check_policy, report_type_of};
use crate::validate::{KeyLimits, KeyRejection, available_at, truncate_to_hour, validate_keys};

/// Shortest accepted `hmacKey`: 128 bits.
pub const MIN_HMAC_KEY_BYTES: usize = 16;
/// Longest accepted `hmacKey`.
pub const MAX_HMAC_KEY_BYTES: usize = 128;

/// Settings of the publish operation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Certificate policy (audience, skew).
    pub policy: Policy,
    /// Key count limits.
    pub limits: KeyLimits,
    /// The main export region: keys of health authorities without their own.
    pub region: String,
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Keys accepted (on a repeat: those accepted the first time).
    pub inserted: u32,
    /// One warning per dropped key.
    pub warnings: Vec<String>,
    /// Whether this repeated an earlier publish with the same certificate.
    pub repeat: bool,
}

/// The publish outcomes counted in `keyserver_publish_total{outcome}`.
pub const PUBLISH_OUTCOMES: [&str; 4] = ["stored", "repeat", "refused", "chaff"];

/// Registers the key server's publish metrics (at 0) in the process's
/// registry, so a scrape before the first publish shows them; done where the
/// publish route is mounted ([`crate::http::router`]), so a process that
/// only exports does not show them.
pub fn register_metrics() {
    telemetry::install();
    metrics::describe_counter!(
        "keyserver_publish_total",
        "Publish requests by outcome (stored, repeat, refused, chaff)."
    );
    metrics::describe_counter!("keyserver_keys_stored_total", "Diagnosis keys stored.");
    for outcome in PUBLISH_OUTCOMES {
        metrics::counter!("keyserver_publish_total", "outcome" => outcome).increment(0);
    }
    metrics::counter!("keyserver_keys_stored_total").increment(0);
}

/// Counts one publish request of `outcome` (one of [`PUBLISH_OUTCOMES`]).
pub fn count_publish(outcome: &'static str) {
    metrics::counter!("keyserver_publish_total", "outcome" => outcome).increment(1);
}

/// The publish side of the key server.
#[derive(Debug)]
pub struct Keyserver {
    store: Store,
    trust: Trust,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

pub use en_protocol::time::jst;

/// The JST date (`YYYY-MM-DD`) of a unix time.
pub fn jst_day(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|t| t.with_timezone(&jst()).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn hmac_matches(key: &[u8], message: &str, expected: &[u8; 32]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(message.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(expected).is_ok()
}

impl Keyserver {
    /// The operation over a store, trusted issuers and a clock.
    pub fn new(store: Store, trust: Trust, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        Self {
            store,
            trust,
            clock,
            settings,
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The trusted issuers.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Now, unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// Publishes diagnosis keys. Keys and the HMAC key never reach a log.
    #[instrument(skip_all, fields(keys = req.keys.len()))]
    pub async fn publish(&self, req: &PublishRequest) -> Result<PublishOutcome> {
        let result = self.publish_inner(req).await;
        match &result {
            Ok(o) if o.repeat => count_publish("repeat"),
            Ok(o) => {
                metrics::counter!("keyserver_keys_stored_total").increment(u64::from(o.inserted));
                count_publish("stored");
            }
            Err(_) => count_publish("refused"),
        }
        if let Err(e) = &result {
            info!(code = e.code(), "publish refused");
        }
        result
    }

    async fn publish_inner(&self, req: &PublishRequest) -> Result<PublishOutcome> {
        let now = self.now();
        if !self
            .trust
            .knows(&self.store, &req.health_authority_id, now)
            .await?
        {
            return Err(Error::UnknownHealthAuthority);
        }
        // Counts first: cheap, and no crypto is spent on an oversized upload.
        if req.keys.is_empty() {
            return Err(KeyRejection::NoKeys.into());
        }
        if req.keys.len() > self.settings.limits.max_keys {
            return Err(KeyRejection::TooManyKeys {
                count: req.keys.len(),
                max: self.settings.limits.max_keys,
            }
            .into());
        }
        let hmac_key = STANDARD
            .decode(req.hmac_key.trim())
            .ok()
            .filter(|k| (MIN_HMAC_KEY_BYTES..=MAX_HMAC_KEY_BYTES).contains(&k.len()))
            .ok_or(Error::HmacKeyInvalid)?;
        let cert = self
            .trust
            .verify_signature(
                &self.store,
                &req.health_authority_id,
                &req.verification_payload,
                now,
            )
            .await?;
        let cert_digest = hex::encode(cert.digest);
        let message = tekmac_message(&req.keys);
        let keys_digest = hex::encode(Sha256::digest(message.as_bytes()));

        // A phone that lost the first answer retries with the same
        // certificate, perhaps after it expired: same keys, same answer.
        // (A retry with a live certificate is answered by `record_publish`.)
        if let Err(e) = check_policy(&cert, &self.settings.policy, now) {
            if matches!(e, Error::CertificateExpired)
                && let Some(prior) = self.store.prior_publish(&cert_digest).await?
                && prior.keys_digest == keys_digest
            {
                return Ok(PublishOutcome {
                    inserted: prior.inserted,
                    warnings: prior.warnings,
                    repeat: true,
                });
            }
            return Err(e);
        }
        let matches = hmac_matches(&hmac_key, &message, &cert.tekmac)
            || tekmac_message_without_risk(&req.keys)
                .is_some_and(|alt| hmac_matches(&hmac_key, &alt, &cert.tekmac));
        if !matches {
            return Err(Error::HmacMismatch);
        }

        let now_interval = u32::try_from(now / EN_INTERVAL_SECONDS)
            .map_err(|_| Error::Internal(anyhow::anyhow!("clock out of range")))?;
        let (valid, dropped) = validate_keys(&req.keys, now_interval, self.settings.limits)?;
        let (risk, report_type) = report_type_of(&cert.claims.report_type)
            .ok_or(Error::CertificateInvalid("unsupported reportType"))?;
        let hour = truncate_to_hour(now);
        let region = self
            .trust
            .region_of(&req.health_authority_id)
            .unwrap_or_else(|| self.settings.region.clone());
        let keys: Vec<StoredKey> = valid
            .iter()
            .map(|k| StoredKey {
                key_data: k.key_data,
                rolling_start: i64::from(k.rolling_start),
                rolling_period: i64::from(k.rolling_period),
                transmission_risk: i64::from(risk),
                report_type: i64::from(report_type.0),
                created_at: hour,
                available_at: available_at(k, hour),
            })
            .collect();
        let warnings: Vec<String> = dropped.iter().map(|d| d.warning()).collect();
        let recorded = self
            .store
            .record_publish(&NewPublish {
                cert_digest: &cert_digest,
                keys_digest: &keys_digest,
                keys: &keys,
                warnings: &warnings,
                created_at: hour,
                // The public statistics count the main region's
                // registrations only (never the canary's).
                day: (region == self.settings.region)
                    .then(|| jst_day(hour))
                    .as_deref(),
                region: &region,
            })
            .await?;
        match recorded {
            Recorded::New { inserted } => {
                info!(inserted, dropped = dropped.len(), "keys published");
                Ok(PublishOutcome {
                    inserted,
                    warnings,
                    repeat: false,
                })
            }
            Recorded::Prior(prior) if prior.keys_digest == keys_digest => Ok(PublishOutcome {
                inserted: prior.inserted,
                warnings: prior.warnings,
                repeat: true,
            }),
            Recorded::Prior(_) => Err(Error::CertificateInvalid(
                "certificate already used for other keys",
            )),
        }
    }
}
