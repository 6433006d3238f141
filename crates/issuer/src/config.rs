//! The issuer's configuration: one typed struct, read by `cocoa` from its
//! layers (defaults < TOML file < `COCOA_*` environment < flags). Secrets are
//! [`SecretString`]s: they never print in `Debug` or logs.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::delivery::{SmtpConfig, TwilioConfig};
use crate::limits::LimitsConfig;
use crate::state::PortalConfig;

/// Settings of the issuer role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data>/issuer.sqlite3?mode=rwc`.
    pub database_url: Option<String>,
    /// Server secret for the HMACs of codes (at least 32 characters). When
    /// absent, `cocoa` keeps a generated one in `<data>/issuer.secret`.
    pub secret: Option<SecretString>,
    /// Host of the app link `https://<host>/cocoa/a/?pn=…`.
    pub link_host: String,
    /// `iss` of certificates.
    pub certificate_issuer: String,
    /// `aud` of certificates.
    pub certificate_audience: String,
    /// Phone number in messages for people whose registration fails.
    pub help_phone: String,
    /// Opening hours of that phone.
    pub help_hours: String,
    /// Folder for messages when no gateway is configured.
    pub outbox: Option<PathBuf>,
    /// SMS gateway.
    pub sms: Option<TwilioConfig>,
    /// SMTP server.
    pub smtp: Option<SmtpConfig>,
    /// The production canary's channel (`[issuer.canary]`): where canary
    /// cases' numbers go, and the `iss` of their certificates.
    pub canary: Option<CanaryConfig>,
    /// Rate limits of the device API.
    pub limits: LimitsConfig,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Database connections.
    pub max_connections: u32,
    /// The staff portal (`[issuer.portal]`).
    pub portal: PortalConfig,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For`
    /// header gives the client address; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
}

/// The canary channel: `cocoa canary` serves a Twilio-compatible receiver
/// (`POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json`);
/// canary cases' numbers go there and nowhere else.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// The receiver, as an SMS gateway.
    pub gateway: TwilioConfig,
    /// `iss` of canary certificates; the key server trusts it for the
    /// canary region only. Default `cocoa-canary`.
    #[serde(default = "default_canary_issuer")]
    pub certificate_issuer: String,
}

fn default_canary_issuer() -> String {
    "cocoa-canary".into()
}

/// The issuer's texts and certificate names, as configured.
impl From<&IssuerConfig> for crate::service::Settings {
    fn from(config: &IssuerConfig) -> Self {
        Self {
            link_host: config.link_host.clone(),
            certificate_issuer: config.certificate_issuer.clone(),
            certificate_audience: config.certificate_audience.clone(),
            help_phone: config.help_phone.clone(),
            help_hours: config.help_hours.clone(),
        }
    }
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            secret: None,
            link_host: "localhost".into(),
            certificate_issuer: "cocoa-issuer".into(),
            certificate_audience: "cocoa-keyserver".into(),
            help_phone: "0120-565653".into(),
            help_hours: "9:00～21:00".into(),
            outbox: None,
            sms: None,
            smtp: None,
            canary: None,
            limits: LimitsConfig::default(),
            max_body_bytes: 64 * 1024,
            max_connections: 8,
            portal: PortalConfig::default(),
            trusted_proxies: Vec::new(),
        }
    }
}
