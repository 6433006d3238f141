//! The operations of the issuer. Each checks the seed's rules, touches the
//! store, and writes the audit log. HTTP handlers and the CLI call these.

mod accounts;
mod cases;
pub mod centres;
mod issuance;
mod queue;
mod verification;

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use en_protocol::time::Clock;
use tracing::warn;

use crate::delivery::Delivery;
use crate::domain::codes::{self, CodeHasher, CodeKind, SecureRng};
use crate::domain::model::Case;
use crate::error::Result;
use crate::signing::Keyring;
use crate::store::{ApiKeyRow, AuditEntry, StaffRow, Store};

pub use accounts::{MAX_DISPLAY_NAME_CHARS, StaffChange, display_name};
pub use issuance::Issued;
pub use queue::{QueuePass, run_send_queue};
pub use verification::TOKEN_LIFETIME_SECONDS;

/// Who acts, and on which centre's cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// For the audit log: `staff:<login>`, `api:<key id>`, `auto`, `cli`.
    pub name: String,
    /// The centre whose cases the actor may touch; `None`: every centre.
    pub centre_id: Option<i64>,
}

impl Actor {
    /// The actor of an admin API key.
    pub fn api(key: &ApiKeyRow) -> Self {
        Self {
            name: format!("api:{}", key.id),
            centre_id: key.centre_id,
        }
    }

    /// The actor of a signed-in staff member: their centre's cases only,
    /// every centre's for a system administrator.
    pub fn staff(staff: &StaffRow) -> Self {
        Self {
            name: format!("staff:{}", staff.login),
            centre_id: match staff.role {
                crate::domain::model::Role::System => None,
                _ => Some(staff.centre_id),
            },
        }
    }

    /// The operator at the command line (`cocoa issuer …`): every centre.
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            centre_id: None,
        }
    }

    fn may_see(&self, case: &Case) -> bool {
        self.centre_id.is_none() || self.centre_id == case.data.centre_id
    }
}

/// Settings the operations need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Host of the app link.
    pub link_host: String,
    /// `iss` of certificates.
    pub certificate_issuer: String,
    /// `aud` of certificates.
    pub certificate_audience: String,
    /// Help phone in messages.
    pub help_phone: String,
    /// Help hours in messages.
    pub help_hours: String,
}

/// The issuer: storage, keys, delivery, clock and randomness.
pub struct Issuer {
    store: Store,
    hasher: CodeHasher,
    keyring: Keyring,
    delivery: Delivery,
    clock: Arc<dyn Clock>,
    rng: Mutex<Box<dyn SecureRng>>,
    settings: Settings,
    /// When the keyring was last read from the store (unix seconds).
    keys_loaded_at: std::sync::atomic::AtomicI64,
    /// Live API keys by HMAC, with the time they were read: the device API
    /// checks a key on every request without a database read.
    api_keys: Mutex<std::collections::HashMap<String, (ApiKeyRow, i64)>>,
    /// `iss` of certificates for canary cases (set with [`Issuer::with_canary`]).
    canary_certificate_issuer: Option<String>,
    /// When the audit log was last pruned (unix seconds; `i64::MIN`: not yet).
    audit_pruned_at: std::sync::atomic::AtomicI64,
}

/// How long audit-log entries are kept: entries older than this many days
/// are deleted at the first audit write after start and then once a day.
pub const AUDIT_RETENTION_DAYS: i64 = 365;

/// How long a checked API key is trusted without reading the store again
/// (so a revocation takes effect within this many seconds).
pub const API_KEY_CACHE_SECONDS: i64 = 30;

/// Age after which an issuance whose delivery is still `pending` at start
/// was interrupted (SMTP and SMS gateway calls time out far sooner).
pub const INTERRUPTED_DELIVERY_SECONDS: i64 = 10 * 60;

/// How often certificate signing re-reads the keys, so a rotation made by
/// another process (`cocoa issuer rotate-key`) takes over within a minute.
pub const KEYRING_REFRESH_SECONDS: i64 = 60;

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("backend", &self.store.backend())
            .field("keyring", &self.keyring)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Builds the issuer; loads (or creates) the certificate keys.
    pub async fn new(
        store: Store,
        secret: &[u8],
        delivery: Delivery,
        clock: Arc<dyn Clock>,
        mut rng: Box<dyn SecureRng>,
        settings: Settings,
    ) -> Result<Self> {
        let now = clock.now().timestamp();
        let keyring = Keyring::load_or_create(&store, secret, rng.as_mut(), now).await?;
        store.seal_totp_secrets_with(secret);
        let sealed = store.seal_plain_totp_secrets().await?;
        if sealed > 0 {
            tracing::info!(
                accounts = sealed,
                "staff TOTP secrets sealed under the server secret"
            );
        }
        Ok(Self {
            store,
            hasher: CodeHasher::new(secret),
            keyring,
            delivery,
            clock,
            rng: Mutex::new(rng),
            settings,
            keys_loaded_at: std::sync::atomic::AtomicI64::new(now),
            api_keys: Mutex::new(std::collections::HashMap::new()),
            canary_certificate_issuer: None,
            audit_pruned_at: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }

    /// Accepts canary cases: their certificates name `certificate_issuer`
    /// (which the key server must trust for its canary region only). The
    /// delivery needs a canary channel too ([`Delivery::with_canary`]).
    pub fn with_canary(mut self, certificate_issuer: impl Into<String>) -> Self {
        self.canary_certificate_issuer = Some(certificate_issuer.into());
        self
    }

    /// The delivery backends.
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The certificate keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Now, unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut dyn SecureRng) -> T) -> T {
        let mut g = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        f(g.as_mut())
    }

    /// The keyed hash of a code or secret of `kind` (as stored).
    pub fn hash_code(&self, kind: CodeKind, value: &str) -> String {
        self.hasher.hash(kind, value)
    }

    /// A fresh random secret of `bytes` bytes, base64url.
    pub fn random_secret(&self, bytes: usize) -> String {
        self.with_rng(|r| codes::random_secret(r, bytes))
    }

    /// Fills `buf` from the issuer's secure random source.
    pub fn fill_random(&self, buf: &mut [u8]) {
        self.with_rng(|r| r.fill_bytes(buf));
    }

    /// Appends an entry to the audit log (never pass a code in `detail`).
    pub async fn audit(
        &self,
        actor: &Actor,
        centre_id: Option<i64>,
        case_id: Option<i64>,
        action: &str,
        outcome: &str,
        detail: String,
    ) {
        let e = AuditEntry {
            at: self.now(),
            actor: actor.name.clone(),
            centre_id,
            case_id,
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        };
        if let Err(err) = self.store.audit(&e).await {
            warn!(error = %err, action, "audit log write failed");
        }
        self.prune_audit_if_due().await;
    }

    /// Counts a refused login into the one row of `actor`, `outcome` and
    /// the current window of `window_seconds` (issue 12, finding 8: "one
    /// row per login and window with a count").
    pub async fn audit_counted(
        &self,
        actor: &Actor,
        centre_id: Option<i64>,
        action: &str,
        outcome: &str,
        window_seconds: i64,
    ) {
        let now = self.now();
        let e = AuditEntry {
            at: now,
            actor: actor.name.clone(),
            centre_id,
            case_id: None,
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            detail: String::new(),
        };
        let start = now - now.rem_euclid(window_seconds.max(1));
        if let Err(err) = self.store.audit_counted(&e, start).await {
            warn!(error = %err, action, "audit log write failed");
        }
        self.prune_audit_if_due().await;
    }

    /// Deletes audit entries older than [`AUDIT_RETENTION_DAYS`] at the first
    /// write after start, then at most once a day.
    async fn prune_audit_if_due(&self) {
        use std::sync::atomic::Ordering;
        let now = self.now();
        let last = self.audit_pruned_at.load(Ordering::SeqCst);
        if last != i64::MIN && now - last < 86_400 {
            return;
        }
        if self
            .audit_pruned_at
            .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        match self
            .store
            .prune_audit(now - AUDIT_RETENTION_DAYS * 86_400)
            .await
        {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "audit log pruned"),
            Ok(_) => {}
            Err(err) => warn!(error = %err, "audit log prune failed"),
        }
    }

    /// A short random padding for answers.
    pub fn padding(&self) -> String {
        self.with_rng(|r| {
            let n = 16 + (r.next_u32() % 32) as usize;
            codes::random_secret(r, n)
        })
    }
}

pub use en_protocol::time::jst;

/// RFC 3339 of a unix time, in JST.
pub fn rfc3339_jst(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|t| t.with_timezone(&jst()).to_rfc3339())
        .unwrap_or_default()
}
