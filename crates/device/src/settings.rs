//! The phone's settings: where the servers are, the key that signs export
//! files, the prefecture, the transmit power and the two documents the phone
//! decides with (COCOA's `configuration.json` and `risk_calculation_configuration.json`).

use std::fmt;

use en_protocol::export::VerificationKey;
use en_protocol::exposure_configuration::ExposureConfiguration;
use en_protocol::risk_calculation::RiskCalculationConfiguration;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::prefecture::{ParsePrefecture, Prefecture};
use crate::text::Lang;

/// Default transmit power advertised in the metadata, dBm.
pub const DEFAULT_TX_POWER: i8 = -8;
/// Default `healthAuthorityID` of publish requests (the one the all-in-one
/// `cocoa serve` trusts its own issuer under).
pub const DEFAULT_HEALTH_AUTHORITY_ID: &str = "cocoa";
/// Japan's region in export files (its MCC).
pub const DEFAULT_REGION: &str = "440";

/// Everything the phone is configured with. Stored as JSON in the phone's
/// database; the API key never prints.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Prefecture code, "01".."47" (JIS X 0401), for the consultation centre.
    pub prefecture: Option<String>,
    /// Base URL of the issuer's device API (`/api/verify`, `/api/certificate`).
    pub server: Option<String>,
    /// `X-API-Key` of the device API.
    pub api_key: Option<String>,
    /// Base URL of the key server (`/v1/publish`); the issuer's when absent.
    pub keyserver: Option<String>,
    /// URL of the export index: `…/index.txt` (one object path a line) or
    /// `…/list.json` (COCOA's); `http(s)://` or `file://`. Default
    /// `<keyserver>/exports/index.txt`.
    pub exports: Option<String>,
    /// SPKI PEM public keys that export files must be signed with (several
    /// during a key rotation).
    pub export_public_keys: Vec<String>,
    /// `healthAuthorityID` sent with publish requests.
    pub health_authority_id: String,
    /// Region export files must be for.
    pub region: String,
    /// TX power advertised in the metadata, dBm.
    pub tx_power: i8,
    /// Language of messages.
    pub lang: Lang,
    /// `configuration.json` in COCOA's format (COCOA's published file by default).
    pub exposure_configuration: ExposureConfiguration,
    /// `risk_calculation_configuration.json` in COCOA's format (COCOA's by default).
    pub risk_calculation_configuration: RiskCalculationConfiguration,
    /// What phones stored before they kept COCOA's two documents (an older scoring document: always
    /// COCOA's values, no command set it): read and dropped, never written.
    #[serde(rename = "scoring", skip_serializing)]
    pub older_scoring: Option<serde::de::IgnoredAny>,
    /// URL of a JSON list of consultation centres that overrides the
    /// built-in table (`[{"prefecture","name","phone","url","hours"}]`).
    pub consultation_centres_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            prefecture: None,
            server: None,
            api_key: None,
            keyserver: None,
            exports: None,
            export_public_keys: Vec::new(),
            health_authority_id: DEFAULT_HEALTH_AUTHORITY_ID.into(),
            region: DEFAULT_REGION.into(),
            tx_power: DEFAULT_TX_POWER,
            lang: Lang::Ja,
            exposure_configuration: ExposureConfiguration::cocoa(),
            risk_calculation_configuration: RiskCalculationConfiguration::cocoa(),
            older_scoring: None,
            consultation_centres_url: None,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("prefecture", &self.prefecture)
            .field("server", &self.server)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("keyserver", &self.keyserver)
            .field("exports", &self.exports)
            .field("export_public_keys", &self.export_public_keys.len())
            .field("health_authority_id", &self.health_authority_id)
            .field("region", &self.region)
            .field("tx_power", &self.tx_power)
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> Error {
    Error::SettingInvalid {
        setting,
        reason: reason.into(),
    }
}

/// Parses an `http(s)://` URL setting.
pub(crate) fn http_url(setting: &'static str, s: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| invalid(setting, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            setting,
            "the URL must start with http:// or https://",
        ));
    }
    Ok(url)
}

/// `base` joined with `path`, keeping any path prefix of `base`.
pub(crate) fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut u = base.clone();
    let trimmed = u.path().trim_end_matches('/').to_owned();
    u.set_path(&format!("{trimmed}/{}", path.trim_start_matches('/')));
    u
}

/// The `file://` URL of a local export index (absolute or relative path).
pub fn file_url(path: &std::path::Path) -> Result<String> {
    let abs = std::path::absolute(path)?;
    reqwest::Url::from_file_path(&abs)
        .map(String::from)
        .map_err(|()| invalid("exports", format!("{} is not a local path", abs.display())))
}

/// Reads every `-----BEGIN PUBLIC KEY-----` block of a PEM text.
pub fn parse_public_keys(pem: &str) -> Result<Vec<VerificationKey>> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let mut keys = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start..];
        let end = after
            .find(END)
            .ok_or_else(|| invalid("export public key", "a PEM block is not closed"))?;
        let block = &after[..end + END.len()];
        keys.push(
            VerificationKey::from_public_key_pem(block)
                .map_err(|e| invalid("export public key", e.to_string()))?,
        );
        rest = &after[end + END.len()..];
    }
    if keys.is_empty() {
        return Err(invalid(
            "export public key",
            "no -----BEGIN PUBLIC KEY----- block",
        ));
    }
    Ok(keys)
}

impl Settings {
    /// Checks every setting, normalising the prefecture to its code.
    pub fn validate(&mut self) -> Result<()> {
        if let Some(p) = &self.prefecture {
            self.prefecture = Some(Prefecture::parse(p)?.code.to_owned());
        }
        if let Some(s) = &self.server {
            http_url("server", s)?;
        }
        if let Some(s) = &self.keyserver {
            http_url("keyserver", s)?;
        }
        if let Some(s) = &self.consultation_centres_url {
            http_url("consultation centres URL", s)?;
        }
        if let Some(s) = &self.exports {
            let url = reqwest::Url::parse(s).map_err(|e| invalid("exports", e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https" | "file") {
                return Err(invalid(
                    "exports",
                    "the URL must start with http://, https:// or file://",
                ));
            }
        }
        for pem in &self.export_public_keys {
            parse_public_keys(pem)?;
        }
        if self.health_authority_id.trim().is_empty() {
            return Err(invalid("health authority id", "must not be empty"));
        }
        self.older_scoring = None;
        self.validate_scoring()
    }

    /// Checks the two scoring documents as `cocoa keyserver publish-config` does (ranges,
    /// ordered thresholds, format_version); run on every load of the phone too.
    pub fn validate_scoring(&self) -> Result<()> {
        self.exposure_configuration
            .google_daily_summaries_config
            .validate()
            .map_err(|e| invalid("configuration.json", format!("{}: {e}", e.code())))?;
        self.risk_calculation_configuration
            .validate()
            .map_err(|e| {
                invalid(
                    "risk_calculation_configuration.json",
                    format!("{}: {e}", e.code()),
                )
            })?;
        Ok(())
    }

    /// The issuer's base URL.
    pub fn server_url(&self) -> Result<reqwest::Url> {
        let s = self
            .server
            .as_deref()
            .ok_or(Error::NotConfigured { setting: "server" })?;
        http_url("server", s)
    }

    /// The key server's base URL (the issuer's when not set: the all-in-one
    /// server serves both).
    pub fn keyserver_url(&self) -> Result<reqwest::Url> {
        match self.keyserver.as_deref() {
            Some(s) => http_url("keyserver", s),
            None => self.server_url().map_err(|_| Error::NotConfigured {
                setting: "keyserver",
            }),
        }
    }

    /// The export index URL.
    pub fn exports_url(&self) -> Result<reqwest::Url> {
        match self.exports.as_deref() {
            Some(s) => reqwest::Url::parse(s).map_err(|e| invalid("exports", e.to_string())),
            None => Ok(join(&self.keyserver_url()?, "exports/index.txt")),
        }
    }

    /// The keys export files must verify with.
    pub fn verification_keys(&self) -> Result<Vec<VerificationKey>> {
        if self.export_public_keys.is_empty() {
            return Err(Error::NotConfigured {
                setting: "export public key",
            });
        }
        let mut out = Vec::new();
        for pem in &self.export_public_keys {
            out.extend(parse_public_keys(pem)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_default_from_the_server() {
        let s = Settings {
            server: Some("http://127.0.0.1:8080/".into()),
            ..Settings::default()
        };
        assert_eq!(
            s.keyserver_url().unwrap().as_str(),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            s.exports_url().unwrap().as_str(),
            "http://127.0.0.1:8080/exports/index.txt"
        );
        let none = Settings::default();
        assert!(matches!(
            none.exports_url(),
            Err(Error::NotConfigured {
                setting: "keyserver"
            })
        ));
        let prefixed = http_url("x", "https://h.example/base").unwrap();
        assert_eq!(
            join(&prefixed, "/api/verify").as_str(),
            "https://h.example/base/api/verify"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut s = Settings {
            server: Some("ftp://x".into()),
            ..Settings::default()
        };
        assert!(matches!(s.validate(), Err(Error::SettingInvalid { .. })));
        let mut s = Settings {
            prefecture: Some("99".into()),
            ..Settings::default()
        };
        assert!(matches!(s.validate(), Err(Error::UnknownPrefecture { .. })));
        let mut s = Settings {
            prefecture: Some("東京都".into()),
            ..Settings::default()
        };
        s.validate().unwrap();
        assert_eq!(s.prefecture.as_deref(), Some("13"));
        assert!(parse_public_keys("nothing").is_err());
    }

    #[test]
    fn settings_stored_by_older_phones_load_with_cocoas_documents() {
        let older = r#"{"prefecture":"13","scoring":{"attenuation_bucket_thresholds_db":[46,60,65],
            "attenuation_bucket_weights":[1.0,2.5,1.3,0.01],"report_type_weights":[1.0,1.0,1.0,1.0],
            "report_type_when_missing":1,"infectiousness_weights":[1.0,1.0],"minimum_window_score":0.0,
            "minimum_daily_score_sum":1350.0,"minimum_daily_observed_seconds":900}}"#;
        let mut s: Settings = serde_json::from_str(older).unwrap();
        s.validate().unwrap();
        assert_eq!(s.exposure_configuration, ExposureConfiguration::cocoa());
        assert_eq!(
            s.risk_calculation_configuration,
            RiskCalculationConfiguration::cocoa()
        );
        let again = serde_json::to_string(&s).unwrap();
        assert!(!again.contains("\"scoring\""), "{again}");
        assert!(again.contains("google_daily_summaries_config"));
        assert!(again.contains("DailySummary_DaySummary_ScoreSum"));
    }

    #[test]
    fn nonsense_scoring_documents_are_refused() {
        let mut s = Settings::default();
        s.exposure_configuration
            .google_daily_summaries_config
            .attenuation_bucket_threshold_db = [60, 46, 65];
        let e = s.validate().unwrap_err();
        assert!(e.to_string().contains("EXPOSURE_CONFIG_THRESHOLDS"), "{e}");
        let mut s = Settings::default();
        s.risk_calculation_configuration.format_version = 2;
        assert!(matches!(s.validate(), Err(Error::SettingInvalid { .. })));
    }

    #[test]
    fn api_key_never_prints() {
        let s = Settings {
            api_key: Some("super-secret".into()),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("super-secret"));
    }
}
