//! The key server's configuration: one typed struct, read by `cocoa` from its
//! layers (defaults < TOML file < `COCOA_*` environment < flags). Secrets are
//! [`SecretString`]s: they never print in `Debug` or logs.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// Settings of the keyserver and exporter roles.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyserverConfig {
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data>/keyserver.sqlite3?mode=rwc`.
    pub database_url: Option<String>,
    /// Database connections.
    pub max_connections: u32,
    /// Largest accepted publish body, bytes (the reference server: 64 KiB).
    pub max_body_bytes: usize,
    /// The `aud` certificates must carry.
    pub audience: String,
    /// Tolerance for `exp` and `nbf`, seconds.
    pub clock_skew_seconds: i64,
    /// Most keys in one publish.
    pub max_keys: usize,
    /// Most keys sharing one `rollingStartNumber`.
    pub max_same_start: usize,
    /// Issuers trusted besides those added with `cocoa keyserver add-issuer`.
    pub issuers: Vec<TrustedIssuerConfig>,
    /// Statistics are shown only once this many registrations exist.
    pub stats_threshold: u64,
    /// The exporter.
    pub export: ExportConfig,
    /// Where export files are written.
    pub storage: StorageConfig,
    /// The key server's secret, which seals the generated export signing
    /// key in the database (at least 32 characters; `COCOA_KEYSERVER_SECRET`
    /// or `_FILE`). Absent, one is generated into `<data>/keyserver.secret`
    /// (0600). Replicas sharing a database need the same one.
    pub secret: Option<SecretString>,
}

impl Default for KeyserverConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            max_connections: 8,
            max_body_bytes: 64 * 1024,
            audience: "cocoa-keyserver".into(),
            clock_skew_seconds: 60,
            max_keys: crate::validate::MAX_KEYS_PER_PUBLISH,
            max_same_start: crate::validate::MAX_SAME_START,
            issuers: Vec::new(),
            stats_threshold: 10,
            export: ExportConfig::default(),
            storage: StorageConfig::default(),
            secret: None,
        }
    }
}

/// One trusted certificate issuer from the configuration: its public key as
/// PEM (inline or in a file) or the URL of its JWKS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// The `healthAuthorityID` publish requests name.
    pub health_authority_id: String,
    /// The `iss` of its certificates.
    pub iss: String,
    /// SPKI PEM public key.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// File holding the SPKI PEM public key.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// Key id; computed from the key when absent (hex of the first 8 bytes of
    /// SHA-256 of its SubjectPublicKeyInfo DER, as the issuer does).
    #[serde(default)]
    pub kid: Option<String>,
    /// URL of the issuer's `/.well-known/jwks.json` instead of a PEM key.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Export region of the keys this health authority publishes (default:
    /// the main region, `export.region`); e.g. `canary`.
    #[serde(default)]
    pub region: Option<String>,
}

/// The exporter's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {
    /// Region written in files and indexes (Japan's MCC).
    pub region: String,
    /// Length of a batch window (`1h`; `0s`: one window per export cycle).
    #[serde(deserialize_with = "de_duration")]
    pub batch_period: Duration,
    /// A window is exported only this long after it closes (`2h`; `0s`
    /// closes the current window at once).
    #[serde(deserialize_with = "de_duration")]
    pub min_age: Duration,
    /// How often the exporter runs a cycle.
    #[serde(deserialize_with = "de_duration")]
    pub interval: Duration,
    /// Keys and files older than this are deleted.
    #[serde(deserialize_with = "de_duration")]
    pub retention: Duration,
    /// How long a batch lease lasts before another exporter may take over.
    #[serde(deserialize_with = "de_duration")]
    pub lease: Duration,
    /// A batch with fewer real keys is padded with fake keys up to this
    /// number plus a random jitter.
    pub pad_to: usize,
    /// The jitter: a random number below it is added to `pad_to`.
    pub pad_jitter: usize,
    /// Most keys in one file.
    pub max_keys_per_file: usize,
    /// Base of the `url` fields in `list.json` (default `/exports`, the
    /// server's own path; a CDN URL in production).
    pub public_url: String,
    /// `verification_key_id` of a generated signing key.
    pub key_id: String,
    /// `verification_key_version` of a generated signing key.
    pub key_version: String,
    /// Signing keys (PKCS#8 PEM). When empty, a key is generated once and
    /// kept in the database. Every key signs every file (rotation overlap).
    pub signing_keys: Vec<SigningKeyConfig>,
    /// Regions besides the main one, with their own window length and
    /// minimum age (e.g. a canary region exported every minute).
    pub regions: Vec<RegionConfig>,
}

/// An export region besides the main one: "Canary keys go to a canary
/// region only, so real phones never download them."
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Region name: letters, digits, `-`, `_` (a path component).
    pub name: String,
    /// Its window length (default: `batch_period`).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub batch_period: Option<Duration>,
    /// Its minimum age (default: `min_age`).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub min_age: Option<Duration>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            region: "440".into(),
            batch_period: Duration::from_secs(3600),
            min_age: Duration::from_secs(2 * 3600),
            interval: Duration::from_secs(60),
            retention: Duration::from_secs(14 * 86_400),
            lease: Duration::from_secs(600),
            pad_to: 1000,
            pad_jitter: 100,
            max_keys_per_file: en_protocol::export::MAX_KEYS_PER_FILE,
            public_url: "/exports".into(),
            key_id: "440".into(),
            key_version: "v1".into(),
            signing_keys: Vec::new(),
            regions: Vec::new(),
        }
    }
}

/// One configured export signing key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// File holding the PKCS#8 PEM private key.
    #[serde(default)]
    pub pem_file: Option<PathBuf>,
    /// The PKCS#8 PEM private key itself.
    #[serde(default)]
    pub pem: Option<SecretString>,
    /// `verification_key_id`.
    #[serde(default = "default_key_id")]
    pub key_id: String,
    /// `verification_key_version`.
    #[serde(default = "default_key_version")]
    pub key_version: String,
}

fn default_key_id() -> String {
    "440".into()
}

fn default_key_version() -> String {
    "v1".into()
}

/// Which object store holds the export files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A local folder, served by the key server at `/exports/…`.
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3,
}

/// Export storage settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `local` (default) or `s3`.
    pub kind: StorageKind,
    /// Local folder (default `<data>/exports`).
    pub path: Option<PathBuf>,
    /// S3 bucket.
    pub bucket: Option<String>,
    /// Key prefix inside the bucket.
    pub prefix: Option<String>,
    /// Endpoint of an S3-compatible service (none: AWS).
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// Access key id.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<SecretString>,
    /// Allow plain HTTP endpoints (test servers).
    pub allow_http: bool,
}

/// Parses a duration such as `0s`, `90s`, `15m`, `2h`, `14d`, or a plain
/// number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 0s, 90s, 15m, 2h, 14d"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("invalid duration unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d).map(Some)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(n) => Ok(Duration::from_secs(n)),
        Raw::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(
            parse_duration("14d").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn config_reads_durations_as_text_or_seconds() {
        let c: KeyserverConfig = serde_json::from_value(serde_json::json!({
            "export": {"batch_period": "0s", "min_age": 30}
        }))
        .unwrap();
        assert_eq!(c.export.batch_period, Duration::ZERO);
        assert_eq!(c.export.min_age, Duration::from_secs(30));
        assert_eq!(c.export.region, "440");
    }
}
