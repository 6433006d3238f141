//! The state every request of the issuer role shares: the operations, the
//! rate limits, the portal's settings and login throttle, and the proxies
//! whose `X-Forwarded-For` is believed; with the extractors that read a
//! request against it. Both the machine API ([`crate::http`]) and the staff
//! portal ([`crate::portal`]) depend on this module, and it on neither.

mod extract;
pub mod proxy;
pub mod throttle;

use serde::Deserialize;

use crate::limits::Limits;
use crate::service::Issuer;
use throttle::{LoginThrottle, ThrottleConfig};

pub use extract::{ApiKeyHeader, ClientIp, JsonBody, client_key};
pub use proxy::TrustedProxies;

/// Shared state of every request.
#[derive(Debug)]
pub struct App {
    /// The operations.
    pub issuer: Issuer,
    /// Rate limits.
    pub limits: Limits,
    /// The staff portal.
    pub portal: Portal,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub proxies: TrustedProxies,
}

impl App {
    /// The state of an issuer with these limits, portal settings and proxies.
    pub fn new(
        issuer: Issuer,
        limits: Limits,
        portal: PortalConfig,
        proxies: TrustedProxies,
    ) -> Self {
        Self {
            issuer,
            limits,
            portal: Portal::new(portal),
            proxies,
        }
    }
}

/// Portal settings (`[issuer.portal]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// The portal's public URL (e.g. `https://her-sys.example.jp`). When it
    /// is `https`, cookies are `Secure` unless `secure_cookies` says otherwise.
    pub public_url: Option<String>,
    /// `Secure` cookies: on when set to `true`, or by default when
    /// `public_url` is `https`. Turn off only for plain-HTTP localhost.
    pub secure_cookies: Option<bool>,
    /// A session ends after this many seconds without a request.
    pub idle_timeout_seconds: i64,
    /// A session ends this many seconds after login, active or not.
    pub absolute_timeout_seconds: i64,
    /// Login throttling.
    pub throttle: ThrottleConfig,
}

impl Default for PortalConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            secure_cookies: None,
            idle_timeout_seconds: 30 * 60,
            absolute_timeout_seconds: 12 * 3600,
            throttle: ThrottleConfig::default(),
        }
    }
}

impl PortalConfig {
    /// Whether cookies carry `Secure`.
    pub fn secure(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| {
            self.public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        })
    }
}

/// The portal's state.
#[derive(Debug)]
pub struct Portal {
    /// Settings.
    pub config: PortalConfig,
    /// Failed-login counters.
    pub throttle: LoginThrottle,
}

impl Portal {
    /// The portal with these settings.
    pub fn new(config: PortalConfig) -> Self {
        Self {
            throttle: LoginThrottle::new(config.throttle.clone()),
            config,
        }
    }
}
