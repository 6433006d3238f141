//! The configuration of `cocoa serve` and the management commands: one typed
//! struct built in layers — defaults < TOML file (`--config` or
//! `COCOA_CONFIG`) < `COCOA_*` environment < command-line flags. A secret can
//! come from a file named by the variable with `_FILE` appended. Secrets are
//! `SecretString`s and never print.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Deserializer};

/// Roles `cocoa serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Health-centre side: processing numbers, device API, machine API.
    Issuer,
    /// Notification server: publish, exports.
    Keyserver,
    /// Export batching and publishing.
    Exporter,
    /// Every role in one process.
    All,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object a line (`timestamp`, `level`, `fields.message`, …),
    /// for a log collector.
    Json,
}

impl LogFormat {
    /// The format named by `COCOA_LOG_FORMAT` (text when unset or unknown),
    /// for commands that log before or without loading the configuration.
    pub fn from_env() -> Self {
        match std::env::var("COCOA_LOG_FORMAT").as_deref().map(str::trim) {
            Ok("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CocoaConfig {
    /// Address to listen on.
    pub listen: String,
    /// Folder of the SQLite files, the outbox and the issuer secret.
    pub data: PathBuf,
    /// Role(s) to run.
    pub role: Role,
    /// The issuer role.
    pub issuer: issuer::IssuerConfig,
    /// The keyserver and exporter roles.
    pub keyserver: keyserver::KeyserverConfig,
    /// Log lines as text or JSON.
    pub log_format: LogFormat,
    /// PEM certificate chain: with `tls_key`, the listener speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// How long a stopping server waits for requests in flight and the
    /// export cycle under way after SIGTERM or Ctrl-C (`"30s"`).
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    /// How long a stopping server keeps accepting requests while `/readyz`
    /// answers 503 `draining`, so that a load balancer takes it out of
    /// rotation before it stops listening (`"0s"`: stop at once). The
    /// grace period starts after it.
    #[serde(deserialize_with = "de_duration")]
    pub drain_delay: Duration,
    /// The limits of every connection to the listener.
    pub connections: ConnectionsConfig,
    /// When set, `/metrics` answers only to `Authorization: Bearer <token>`.
    pub metrics_token: Option<secrecy::SecretString>,
}

/// `[connections]`: "set a header-read timeout, a body timeout and a
/// per-address connection cap on every listener" (issue 12, finding 9).
/// See [`http_serve`] for what each does; the defaults are
/// [`http_serve::Limits::default`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// Time a client has to send a request's head (`"10s"`).
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body (`"30s"`).
    #[serde(deserialize_with = "de_duration")]
    pub body_timeout: Duration,
    /// Connections one address (IPv6: one /64) may hold open at once.
    pub per_address: usize,
    /// Connections the listener holds open at once, from everyone.
    pub total: usize,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        let l = http_serve::Limits::default();
        Self {
            header_read_timeout: l.header_read_timeout,
            body_timeout: l.body_timeout,
            per_address: l.per_address,
            total: l.total,
        }
    }
}

impl ConnectionsConfig {
    /// The limits, or the key that is zero (a zero limit would refuse
    /// every client).
    pub fn limits(&self) -> Result<http_serve::Limits, &'static str> {
        if self.header_read_timeout.is_zero() {
            return Err("connections.header_read_timeout");
        }
        if self.body_timeout.is_zero() {
            return Err("connections.body_timeout");
        }
        if self.per_address == 0 {
            return Err("connections.per_address");
        }
        if self.total == 0 {
            return Err("connections.total");
        }
        Ok(http_serve::Limits {
            header_read_timeout: self.header_read_timeout,
            body_timeout: self.body_timeout,
            per_address: self.per_address,
            total: self.total,
        })
    }
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
        Raw::Text(s) => keyserver::config::parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

impl Default for CocoaConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data: PathBuf::from("./data"),
            role: Role::All,
            issuer: issuer::IssuerConfig::default(),
            keyserver: keyserver::KeyserverConfig::default(),
            log_format: LogFormat::Text,
            tls_cert: None,
            tls_key: None,
            shutdown_grace: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            connections: ConnectionsConfig::default(),
            metrics_token: None,
        }
    }
}

/// Environment variables and the configuration key each sets (dotted path,
/// and whether the value is a number).
const ENV_KEYS: &[(&str, &str, bool)] = &[
    ("COCOA_LISTEN", "listen", false),
    ("COCOA_DATA", "data", false),
    ("COCOA_ROLE", "role", false),
    ("COCOA_LOG_FORMAT", "log_format", false),
    ("COCOA_TLS_CERT", "tls_cert", false),
    ("COCOA_TLS_KEY", "tls_key", false),
    ("COCOA_SHUTDOWN_GRACE", "shutdown_grace", false),
    ("COCOA_DRAIN_DELAY", "drain_delay", false),
    (
        "COCOA_HEADER_READ_TIMEOUT",
        "connections.header_read_timeout",
        false,
    ),
    ("COCOA_BODY_TIMEOUT", "connections.body_timeout", false),
    (
        "COCOA_CONNECTIONS_PER_ADDRESS",
        "connections.per_address",
        true,
    ),
    ("COCOA_MAX_CONNECTIONS", "connections.total", true),
    ("COCOA_METRICS_TOKEN", "metrics_token", false),
    ("COCOA_ISSUER_DATABASE_URL", "issuer.database_url", false),
    ("COCOA_ISSUER_SECRET", "issuer.secret", false),
    ("COCOA_LINK_HOST", "issuer.link_host", false),
    ("COCOA_HELP_PHONE", "issuer.help_phone", false),
    ("COCOA_OUTBOX", "issuer.outbox", false),
    ("COCOA_SMTP_HOST", "issuer.smtp.host", false),
    ("COCOA_SMTP_PORT", "issuer.smtp.port", true),
    ("COCOA_SMTP_TLS", "issuer.smtp.tls", false),
    ("COCOA_SMTP_USERNAME", "issuer.smtp.username", false),
    ("COCOA_SMTP_PASSWORD", "issuer.smtp.password", false),
    ("COCOA_SMTP_FROM", "issuer.smtp.from", false),
    ("COCOA_SMS_BASE_URL", "issuer.sms.base_url", false),
    ("COCOA_SMS_ACCOUNT_SID", "issuer.sms.account_sid", false),
    ("COCOA_SMS_AUTH_TOKEN", "issuer.sms.auth_token", false),
    ("COCOA_SMS_FROM", "issuer.sms.from", false),
    (
        "COCOA_CANARY_GATEWAY_AUTH_TOKEN",
        "issuer.canary.gateway.auth_token",
        false,
    ),
    (
        "COCOA_KEYSERVER_DATABASE_URL",
        "keyserver.database_url",
        false,
    ),
    ("COCOA_KEYSERVER_SECRET", "keyserver.secret", false),
    ("COCOA_EXPORT_REGION", "keyserver.export.region", false),
    (
        "COCOA_EXPORT_BATCH_PERIOD",
        "keyserver.export.batch_period",
        false,
    ),
    ("COCOA_EXPORT_MIN_AGE", "keyserver.export.min_age", false),
    (
        "COCOA_EXPORT_PUBLIC_URL",
        "keyserver.export.public_url",
        false,
    ),
    ("COCOA_EXPORT_STORAGE", "keyserver.storage.kind", false),
    ("COCOA_EXPORT_PATH", "keyserver.storage.path", false),
    ("COCOA_S3_BUCKET", "keyserver.storage.bucket", false),
    ("COCOA_S3_PREFIX", "keyserver.storage.prefix", false),
    ("COCOA_S3_ENDPOINT", "keyserver.storage.endpoint", false),
    ("COCOA_S3_REGION", "keyserver.storage.region", false),
    (
        "COCOA_S3_ACCESS_KEY_ID",
        "keyserver.storage.access_key_id",
        false,
    ),
    (
        "COCOA_S3_SECRET_ACCESS_KEY",
        "keyserver.storage.secret_access_key",
        false,
    ),
];

/// Variables that hold a file path already: `<VAR>_FILE` would put the
/// file's content (a private key) where a path belongs, so it is ignored.
const ENV_PATHS: &[&str] = &["COCOA_TLS_CERT", "COCOA_TLS_KEY"];

/// Variables read elsewhere (not configuration), never warned about;
/// those starting with [`ENV_OTHER_PREFIXES`] too.
const ENV_OTHER: &[&str] = &[
    "COCOA_CONFIG",
    "COCOA_TEST_DATABASE_URL",
    "COCOA_LOG",
    // Where the browser tests keep their screenshots.
    "COCOA_BROWSER_ARTIFACTS",
];

/// `cocoa canary`'s own variables (`COCOA_CANARY_ADMIN_API_KEY`, ...), which
/// may share an environment with `cocoa serve`.
const ENV_OTHER_PREFIXES: &[&str] = &[
    "COCOA_CANARY_ADMIN",
    "COCOA_CANARY_DEVICE",
    "COCOA_CANARY_RECEIVER",
];

/// Command-line values that override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data`.
    pub data: Option<PathBuf>,
    /// `--role`.
    pub role: Option<Role>,
    /// `--outbox`.
    pub outbox: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--shutdown-grace`.
    pub shutdown_grace: Option<String>,
    /// `--drain-delay`.
    pub drain_delay: Option<String>,
}

fn set_path(root: &mut toml::Table, dotted: &str, value: toml::Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let last = parts.pop().unwrap_or_default();
    let mut t = root;
    for p in parts {
        let entry = t
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else {
            unreachable!("just made a table")
        };
        t = next;
    }
    t.insert(last.to_owned(), value);
}

/// Loads the configuration: `file` (or `COCOA_CONFIG`), then `env`, then
/// `flags`. Returns it with warnings (unknown `COCOA_*` variables).
pub fn load(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
    flags: &Overrides,
) -> anyhow::Result<(CocoaConfig, Vec<String>)> {
    let mut warnings = Vec::new();
    let file = file
        .map(Path::to_path_buf)
        .or_else(|| env.get("COCOA_CONFIG").map(PathBuf::from));
    let mut root = match &file {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            text.parse::<toml::Table>()
                .with_context(|| format!("parsing {}", p.display()))?
        }
        None => toml::Table::new(),
    };
    for (name, value) in env {
        if !name.starts_with("COCOA_") || ENV_OTHER.contains(&name.as_str()) {
            continue;
        }
        if ENV_OTHER_PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let (var, from_file) = match name.strip_suffix("_FILE") {
            Some(base) if ENV_PATHS.contains(&base) => {
                warnings.push(format!(
                    "{name} ignored: {base} itself names the file (a path, not its content)"
                ));
                continue;
            }
            Some(base) if ENV_KEYS.iter().any(|(n, _, _)| *n == base) => (base, true),
            _ => (name.as_str(), false),
        };
        let Some((_, key, numeric)) = ENV_KEYS.iter().find(|(n, _, _)| *n == var) else {
            warnings.push(format!("unknown environment variable {name} ignored"));
            continue;
        };
        let raw = if from_file {
            std::fs::read_to_string(value)
                .with_context(|| format!("{name}: reading {value}"))?
                .trim_end_matches(['\n', '\r'])
                .to_owned()
        } else {
            value.clone()
        };
        let v = if *numeric {
            toml::Value::Integer(
                raw.parse()
                    .with_context(|| format!("{name} must be a number"))?,
            )
        } else {
            toml::Value::String(raw)
        };
        set_path(&mut root, key, v);
    }
    let s = |v: &str| toml::Value::String(v.to_owned());
    if let Some(v) = &flags.listen {
        set_path(&mut root, "listen", s(v));
    }
    if let Some(v) = &flags.data {
        set_path(&mut root, "data", s(&v.to_string_lossy()));
    }
    if let Some(v) = flags.role {
        let name = match v {
            Role::Issuer => "issuer",
            Role::Keyserver => "keyserver",
            Role::Exporter => "exporter",
            Role::All => "all",
        };
        set_path(&mut root, "role", s(name));
    }
    if let Some(v) = &flags.outbox {
        set_path(&mut root, "issuer.outbox", s(&v.to_string_lossy()));
    }
    if let Some(v) = &flags.database_url {
        set_path(&mut root, "issuer.database_url", s(v));
    }
    if let Some(v) = flags.log_format {
        let name = match v {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        set_path(&mut root, "log_format", s(name));
    }
    if let Some(v) = &flags.tls_cert {
        set_path(&mut root, "tls_cert", s(&v.to_string_lossy()));
    }
    if let Some(v) = &flags.tls_key {
        set_path(&mut root, "tls_key", s(&v.to_string_lossy()));
    }
    if let Some(v) = &flags.shutdown_grace {
        set_path(&mut root, "shutdown_grace", s(v));
    }
    if let Some(v) = &flags.drain_delay {
        set_path(&mut root, "drain_delay", s(v));
    }
    // A value of the wrong type or form, from any layer, is the user's
    // input: exit status 2 with the key named, as for any bad flag.
    let config: CocoaConfig = toml::Value::Table(root).try_into().map_err(|e| {
        crate::commands::bad_input(format!(
            "設定が正しくありません / invalid configuration: {}",
            e.to_string().trim()
        ))
    })?;
    if let Err(key) = config.connections.limits() {
        return Err(crate::commands::bad_input(format!(
            "設定が正しくありません: {key} は 0 より大きくしてください / invalid configuration: {key} must be greater than zero"
        )));
    }
    Ok((config, warnings))
}

/// The process environment as a map.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    /// Settings some keys need beside them to form a valid configuration
    /// (an SMTP relay needs a host and a sender; S3 storage a bucket).
    const COMPANIONS: [&str; 4] = [
        "[issuer.canary.gateway]\nbase_url = \"https://canary.base\"\naccount_sid = \"ACcanary\"\nfrom = \"+810001\"\n",
        "[issuer.sms]\nbase_url = \"https://sms.base\"\naccount_sid = \"ACbase\"\nauth_token = \"base-token-0123456789\"\nfrom = \"+810000\"\n",
        "[issuer.smtp]\nhost = \"smtp.base\"\nfrom = \"base@example.jp\"\n",
        "[issuer.sms]\nbase_url = \"https://sms.base\"\naccount_sid = \"ACbase\"\nfrom = \"+810000\"\n",
    ];

    /// A zero limit would refuse every client: refused at load, naming the key.
    #[test]
    fn a_zero_connection_limit_is_refused_naming_its_key() {
        for (var, value, key) in [
            (
                "COCOA_CONNECTIONS_PER_ADDRESS",
                "0",
                "connections.per_address",
            ),
            ("COCOA_MAX_CONNECTIONS", "0", "connections.total"),
            (
                "COCOA_HEADER_READ_TIMEOUT",
                "0s",
                "connections.header_read_timeout",
            ),
            ("COCOA_BODY_TIMEOUT", "0s", "connections.body_timeout"),
        ] {
            let env = BTreeMap::from([(var.to_owned(), value.to_owned())]);
            let e = load(None, &env, &Overrides::default()).unwrap_err();
            let text = format!("{e:#}");
            assert!(
                text.contains(key) && text.contains("0 より大きく"),
                "{var}: {text}"
            );
        }
        let env = BTreeMap::from([("COCOA_CONNECTIONS_PER_ADDRESS".to_owned(), "16".to_owned())]);
        let (c, _) = load(None, &env, &Overrides::default()).unwrap();
        assert_eq!(c.connections.limits().unwrap().per_address, 16);
    }

    /// Every variable of [`ENV_KEYS`] sets exactly the key it names: the
    /// configuration it gives equals the one the same value gives at that
    /// key in the file, and differs from the defaults.
    #[test]
    fn every_environment_variable_reaches_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let samples = [
            "127.0.0.1:9",
            "7s",
            "json",
            "keyserver",
            "s3",
            "starttls",
            "tls",
            "2525",
            "https://example.jp/x",
            "a@example.jp",
            "03-1234-5678",
        ];
        let long = "s".repeat(40);
        let none = BTreeMap::new();
        for (var, key, numeric) in ENV_KEYS {
            let mut reached = false;
            for base in [""].into_iter().chain(COMPANIONS) {
                for sample in samples.iter().copied().chain([long.as_str()]) {
                    let mut table: toml::Table = base.parse().unwrap();
                    let value = if *numeric {
                        match sample.parse() {
                            Ok(n) => toml::Value::Integer(n),
                            Err(_) => continue,
                        }
                    } else {
                        toml::Value::String(sample.to_owned())
                    };
                    set_path(&mut table, key, value);
                    let with_key = dir.path().join("with.toml");
                    std::fs::write(&with_key, toml::to_string(&table).unwrap()).unwrap();
                    let Ok((from_file, _)) = load(Some(&with_key), &none, &Overrides::default())
                    else {
                        continue;
                    };
                    let base_file = dir.path().join("base.toml");
                    std::fs::write(&base_file, base).unwrap();
                    // The companions alone may not be valid (an SMS gateway
                    // without its token): then the key is what completes them.
                    let without = load(Some(&base_file), &none, &Overrides::default())
                        .map(|(c, _)| format!("{c:?}"));
                    let env = BTreeMap::from([(var.to_string(), sample.to_owned())]);
                    let (from_env, warnings) = load(Some(&base_file), &env, &Overrides::default())
                        .unwrap_or_else(|e| panic!("{var}={sample}: {e:#}"));
                    assert!(warnings.is_empty(), "{var}: {warnings:?}");
                    let (f, e) = (format!("{from_file:?}"), format!("{from_env:?}"));
                    if without.as_ref().is_ok_and(|w| *w == f) {
                        // The sample is the default (or redacted alike): another one.
                        continue;
                    }
                    assert_eq!(e, f, "{var} does not set {key}");
                    reached = true;
                    break;
                }
                if reached {
                    break;
                }
            }
            assert!(
                reached,
                "no sample value of {var} forms a valid configuration at {key}"
            );
        }
    }

    /// Every `COCOA_*` variable the README and docs name is one the loader
    /// knows (a key of [`ENV_KEYS`], its `_FILE` form, or one read elsewhere).
    #[test]
    fn every_documented_variable_is_in_the_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut texts = vec![std::fs::read_to_string(root.join("README.md")).unwrap()];
        for entry in std::fs::read_dir(root.join("docs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                texts.push(std::fs::read_to_string(path).unwrap());
            }
        }
        let known = |name: &str| {
            let base = name.strip_suffix("_FILE").unwrap_or(name);
            ENV_KEYS.iter().any(|(n, _, _)| *n == base)
                || ENV_OTHER.contains(&name)
                || ENV_OTHER_PREFIXES.iter().any(|p| name.starts_with(p))
        };
        let mut unknown = std::collections::BTreeSet::new();
        let mut seen = 0;
        for text in &texts {
            for (i, _) in text.match_indices("COCOA_") {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                let name = name.trim_end_matches('_');
                // `COCOA_*`, `COCOA_<ROLE>_…`: patterns, not variables.
                if name == "COCOA" || text[i + name.len()..].starts_with(['*', '<']) {
                    continue;
                }
                seen += 1;
                if !known(name) {
                    unknown.insert(name.to_owned());
                }
            }
        }
        assert!(seen > 20, "the docs name the variables ({seen} found)");
        assert!(
            unknown.is_empty(),
            "documented but unknown to the loader: {unknown:?}"
        );
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cocoa.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:1\"\ndata = \"/file\"\n[issuer]\nlink_host = \"file.example\"\nhelp_phone = \"03-0000-0000\"\n",
        )
        .unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s".repeat(40) + "\n").unwrap();
        let env: BTreeMap<String, String> = [
            ("COCOA_DATA", "/env"),
            ("COCOA_LINK_HOST", "env.example"),
            ("COCOA_ISSUER_SECRET_FILE", secret.to_str().unwrap()),
            ("COCOA_SMTP_HOST", "smtp.example"),
            ("COCOA_SMTP_PORT", "2525"),
            ("COCOA_SMTP_FROM", "a@example.jp"),
            ("COCOA_BOGUS", "1"),
            ("PATH", "/bin"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let flags = Overrides {
            data: Some("/flag".into()),
            ..Overrides::default()
        };
        let (c, warnings) = load(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.listen, "0.0.0.0:1");
        assert_eq!(c.data, PathBuf::from("/flag"));
        assert_eq!(c.issuer.link_host, "env.example");
        assert_eq!(c.issuer.help_phone, "03-0000-0000");
        assert_eq!(
            c.issuer.secret.as_ref().unwrap().expose_secret(),
            "s".repeat(40)
        );
        let smtp = c.issuer.smtp.as_ref().unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("smtp.example", 2525));
        assert_eq!(
            warnings,
            ["unknown environment variable COCOA_BOGUS ignored"]
        );
        assert!(
            !format!("{c:?}").contains(&"s".repeat(40)),
            "secrets never print"
        );
    }

    #[test]
    fn operations_settings_layer_like_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cocoa.toml");
        std::fs::write(
            &file,
            "log_format = \"json\"\nshutdown_grace = \"2m\"\ndrain_delay = \"5s\"\ntls_cert = \"/file/cert.pem\"\n",
        )
        .unwrap();
        let (c, _) = load(Some(&file), &BTreeMap::new(), &Overrides::default()).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.shutdown_grace, Duration::from_secs(120));
        assert_eq!(c.drain_delay, Duration::from_secs(5));
        assert_eq!(c.tls_cert, Some(PathBuf::from("/file/cert.pem")));
        assert_eq!(c.tls_key, None);
        let env: BTreeMap<String, String> = [
            ("COCOA_LOG_FORMAT", "text"),
            ("COCOA_SHUTDOWN_GRACE", "5"),
            ("COCOA_DRAIN_DELAY", "10s"),
            ("COCOA_TLS_KEY", "/env/key.pem"),
            ("COCOA_TLS_KEY_FILE", "/env/key-path"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let (c, warnings) = load(Some(&file), &env, &Overrides::default()).unwrap();
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.drain_delay, Duration::from_secs(10));
        assert_eq!(c.tls_key, Some(PathBuf::from("/env/key.pem")));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("COCOA_TLS_KEY_FILE ignored"));
        let flags = Overrides {
            log_format: Some(LogFormat::Json),
            shutdown_grace: Some("0s".into()),
            drain_delay: Some("1m".into()),
            tls_cert: Some("/flag/cert.pem".into()),
            ..Overrides::default()
        };
        let (c, _) = load(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.shutdown_grace, Duration::ZERO);
        assert_eq!(c.drain_delay, Duration::from_secs(60));
        assert_eq!(c.tls_cert, Some(PathBuf::from("/flag/cert.pem")));
        let defaults = CocoaConfig::default();
        assert_eq!(defaults.log_format, LogFormat::Text);
        assert_eq!(defaults.shutdown_grace, Duration::from_secs(30));
        assert_eq!(defaults.drain_delay, Duration::ZERO);
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cocoa.toml");
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(load(Some(&file), &BTreeMap::new(), &Overrides::default()).is_err());
    }
}
