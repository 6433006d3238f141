//! The configuration the key server serves to phones (`GET /exposure_configuration/…`):
//! fetched at each check, verified, applied whole or not at all.
//!
//! Rule (issue 14): "Phones fetch it at each check, verify the signature, apply it, keep the
//! last good one, and fall back to the built-in COCOA values; an unsigned, tampered or
//! invalid configuration is refused and reported, never half-applied."
//!
//! At each check the phone GETs `bundle.json` below its key server's base URL (with
//! `If-None-Match` of the bundle it applied: 304 means nothing changed), then both documents,
//! and checks them with [`verify_served`] against the export public keys (the keys export
//! files must verify with), passing the version it applied (an older one is refused). Only
//! then are the two documents, the version and the publication time written, as one value
//! under one key of the phone's store, so a configuration is never half-applied. 404 (nothing
//! published) keeps what is applied — the built-in values (the settings' documents, COCOA's by
//! default) when nothing ever was. Any other failure keeps it too, and the check record says
//! why ([`ConfigurationState::refused`]).

use chrono::{DateTime, Utc};
use en_protocol::export::VerificationKey;
use en_protocol::exposure_configuration::ExposureConfiguration;
use en_protocol::risk_calculation::RiskCalculationConfiguration;
use en_protocol::served_configuration::{
    BUNDLE_PATH, CONFIGURATION_PATH, RISK_CALCULATION_PATH, ServedConfigError, verify_served,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::net::{MAX_CONFIGURATION_BYTES, Revalidated, fetch_optional, fetch_revalidated};
use crate::phone::Phone;
use crate::risk::RiskConfiguration;
use crate::settings::join;

/// The store key of the applied configuration (one value, written at once). Kept by
/// 「すべてのデータを削除」 like the settings: it is configuration, not a record.
pub const APPLIED_KEY: &str = "served_configuration";

/// Code of a refusal that is not the configuration's fault: the server or the network
/// failed, a document is missing or over [`MAX_CONFIGURATION_BYTES`].
pub const UNAVAILABLE: &str = "SERVED_CONFIG_UNAVAILABLE";

/// The last good served configuration, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedConfiguration {
    /// Its version.
    pub version: u64,
    /// When it was published, Unix seconds.
    pub published_at: i64,
    /// `configuration.json` as served.
    pub configuration_json: String,
    /// `risk_calculation_configuration.json` as served.
    pub risk_calculation_configuration_json: String,
    /// The bundle's entity tag (sent as `If-None-Match` at the next check).
    #[serde(default)]
    pub bundle_etag: Option<String>,
    /// When the phone applied it, Unix seconds.
    pub applied_at: i64,
}

impl AppliedConfiguration {
    /// The two documents (verified when stored; a fault here is a corrupt store).
    pub fn documents(&self) -> Result<RiskConfiguration> {
        let exposure = ExposureConfiguration::from_json(self.configuration_json.as_bytes())
            .map_err(|e| Error::Corrupt(format!("served configuration.json: {e}")))?;
        let risk = RiskCalculationConfiguration::from_json(
            self.risk_calculation_configuration_json.as_bytes(),
        )
        .map_err(|e| Error::Corrupt(format!("served risk_calculation_configuration.json: {e}")))?;
        Ok(RiskConfiguration { exposure, risk })
    }
}

/// Where the configuration the phone decides with comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigurationSource {
    /// A configuration served by the key server (verified).
    Served,
    /// The built-in values: the settings' two documents (COCOA's by default).
    #[default]
    BuiltIn,
}

/// Why the served configuration was not applied at a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigurationRefusal {
    /// A stable code: [`ServedConfigError::code`] or [`UNAVAILABLE`].
    pub code: String,
    /// Japanese.
    pub message_ja: String,
    /// English.
    pub message_en: String,
}

/// How a refusal ends when a last good configuration stays (en-protocol's Japanese).
const KEEP_LAST_JA: &str = "前回の正しい設定を使い続けます";
const KEEP_LAST_EN: &str = "The last good configuration stays in use.";

impl ConfigurationRefusal {
    /// The same refusal when no served configuration was ever applied: the built-in values stay.
    fn keeping_built_in(self) -> Self {
        Self {
            message_ja: self
                .message_ja
                .replace(KEEP_LAST_JA, "内蔵の設定（COCOAの既定値）を使い続けます"),
            message_en: self.message_en.replace(
                KEEP_LAST_EN,
                "The built-in configuration (COCOA's values) stays in use.",
            ),
            ..self
        }
    }

    fn of(e: &ServedConfigError) -> Self {
        let full = e.to_string();
        let detail = full
            .strip_prefix(e.code())
            .and_then(|r| r.strip_prefix(": "))
            .unwrap_or(&full);
        Self {
            code: e.code().to_owned(),
            message_ja: e.message_ja(),
            message_en: format!(
                "The served exposure configuration was refused ({detail}). {KEEP_LAST_EN}"
            ),
        }
    }

    fn unavailable(what: &str, e: &Error) -> Self {
        let detail = match e {
            Error::Unavailable { detail } | Error::UnexpectedAnswer { detail } => detail.clone(),
            other => other.to_string(),
        };
        Self {
            code: UNAVAILABLE.to_owned(),
            message_ja: format!(
                "配信された接触確認の設定（{what}）を取得できませんでした。{KEEP_LAST_JA}"
            ),
            message_en: format!(
                "The served exposure configuration ({what}) could not be fetched: {detail}. {KEEP_LAST_EN}"
            ),
        }
    }
}

/// The configuration a check decided with, in its record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConfigurationState {
    /// The served version applied (`None`: the built-in values).
    pub version: Option<u64>,
    /// When that version was published.
    pub published_at: Option<DateTime<Utc>>,
    /// `served` or `built_in`.
    pub source: ConfigurationSource,
    /// What this check refused (the configuration above stayed in use).
    #[serde(default)]
    pub refused: Option<ConfigurationRefusal>,
}

impl ConfigurationState {
    fn of(applied: Option<&AppliedConfiguration>, refused: Option<ConfigurationRefusal>) -> Self {
        Self {
            version: applied.map(|a| a.version),
            published_at: applied.and_then(|a| DateTime::from_timestamp(a.published_at, 0)),
            source: if applied.is_some() {
                ConfigurationSource::Served
            } else {
                ConfigurationSource::BuiltIn
            },
            refused,
        }
    }
}

impl Phone {
    /// The served configuration applied, if any.
    pub fn applied_configuration(&self) -> Result<Option<AppliedConfiguration>> {
        self.store.get(APPLIED_KEY)
    }

    /// The configuration the phone decides with now (never a refusal: see the last check).
    pub fn configuration_state(&self) -> Result<ConfigurationState> {
        Ok(ConfigurationState::of(
            self.applied_configuration()?.as_ref(),
            None,
        ))
    }

    /// Fetches, verifies and applies the served configuration (see the module): what the
    /// check decides with and what it refused. Only a failure to write the phone's own store
    /// is an error; no phone configured with a key server (file:// exports alone) fetches
    /// nothing.
    pub(crate) async fn refresh_configuration(
        &mut self,
        keys: &[VerificationKey],
    ) -> Result<ConfigurationState> {
        let applied = self.applied_configuration()?;
        let Ok(base) = self.settings.keyserver_url() else {
            return Ok(ConfigurationState::of(applied.as_ref(), None));
        };
        let now = self.now().timestamp();
        match fetch_configuration(&self.http, now, &base, keys, applied.as_ref()).await {
            Ok(Some(new)) => {
                self.store.set(APPLIED_KEY, &new)?;
                Ok(ConfigurationState::of(Some(&new), None))
            }
            Ok(None) => Ok(ConfigurationState::of(applied.as_ref(), None)),
            Err(refused) => {
                let refused = match applied {
                    Some(_) => refused,
                    None => refused.keeping_built_in(),
                };
                Ok(ConfigurationState::of(applied.as_ref(), Some(refused)))
            }
        }
    }
}

/// `Ok(None)`: nothing published (404) or nothing new (304).
async fn fetch_configuration(
    http: &reqwest::Client,
    now: i64,
    base: &reqwest::Url,
    keys: &[VerificationKey],
    applied: Option<&AppliedConfiguration>,
) -> std::result::Result<Option<AppliedConfiguration>, ConfigurationRefusal> {
    let etag = applied.and_then(|a| a.bundle_etag.as_deref());
    let (bundle, etag) = match fetch_revalidated(
        http,
        &join(base, BUNDLE_PATH),
        etag,
        MAX_CONFIGURATION_BYTES,
    )
    .await
    {
        Ok(Revalidated::NotFound | Revalidated::NotModified) => return Ok(None),
        Ok(Revalidated::Body { bytes, etag }) => (bytes, etag),
        Err(e) => return Err(ConfigurationRefusal::unavailable("bundle.json", &e)),
    };
    let configuration = document(http, base, CONFIGURATION_PATH).await?;
    let risk = document(http, base, RISK_CALCULATION_PATH).await?;
    let verified = verify_served(
        &bundle,
        &configuration,
        &risk,
        keys,
        applied.map(|a| a.version),
    )
    .map_err(|e| ConfigurationRefusal::of(&e))?;
    let text = |b: Vec<u8>| {
        String::from_utf8(b)
            .map_err(|e| ConfigurationRefusal::of(&ServedConfigError::Invalid(e.to_string())))
    };
    Ok(Some(AppliedConfiguration {
        version: verified.version,
        published_at: verified.published_at,
        configuration_json: text(configuration)?,
        risk_calculation_configuration_json: text(risk)?,
        bundle_etag: etag,
        applied_at: now,
    }))
}

async fn document(
    http: &reqwest::Client,
    base: &reqwest::Url,
    path: &str,
) -> std::result::Result<Vec<u8>, ConfigurationRefusal> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match fetch_optional(http, &join(base, path), MAX_CONFIGURATION_BYTES).await {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(ConfigurationRefusal::unavailable(
            name,
            &Error::Unavailable {
                detail: "not found (HTTP 404)".into(),
            },
        )),
        Err(e) => Err(ConfigurationRefusal::unavailable(name, &e)),
    }
}
