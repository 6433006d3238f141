//! Storage: SQLite (default, one file) or PostgreSQL, chosen from the URL
//! scheme. Both run the same SQL through sqlx's `Any` driver with `$1`
//! placeholders (SQLite accepts `$N`); only the migrations differ, one folder
//! per backend. The shared behaviour suite (`tests/store.rs`) runs on both.

mod audit;
mod cases;
mod centres;
mod claims;
mod idempotency;
mod imports;
mod issuances;
mod queue;
mod rows;
mod sessions;
mod signing_keys;
mod staff;

use sqlx::AnyPool;

pub use audit::{AuditFilter, AuditLine};
pub use cases::{CaseExtra, ListPage, ListState};
pub use claims::{Claim, CodeColumn, Redeem};
pub use idempotency::IdempotencyBegin;
pub use imports::{IMPORT_RESULT_SECONDS, ImportRow};
pub use issuances::{AnomalySignals, CentreDay, IssueError, NewIssuance, Receipt};
pub use queue::{
    ClaimedMessage, DeadLetter, DeliverySettings, HeldMessage, MessageKind, QueueState,
};
pub use rows::{ApiKeyKind, ApiKeyRow, AuditEntry, IssuanceStats, SigningKeyRow, StaffRow};
pub use sessions::{FORM_RETENTION_SECONDS, FormClaim, SessionRow};
pub use staff::{ApiKeyListing, StaffListing};

pub use store_support::{Backend, SQLITE_BUSY_TIMEOUT_MS};

/// SQLite settings of the issuer besides WAL and the busy timeout.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA foreign_keys = ON",
    // Read pages through a memory map (no read() copy per page) and keep
    // 16 MiB of them cached.
    "PRAGMA mmap_size = 268435456",
    "PRAGMA cache_size = -16384",
];

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names a backend cocoa-rs does not have.
    #[error("unsupported database URL scheme {0:?}: use sqlite: or postgres:")]
    UnknownScheme(String),
    /// Connecting or migrating failed.
    #[error(transparent)]
    Setup(store_support::SetupError),
    /// A database error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored value could not be read back (corrupt row).
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    /// A TOTP secret did not open (another server secret), or there is no
    /// sealing key (the store was opened without the server secret).
    #[error("staff TOTP secret: {0}")]
    Sealed(#[from] store_support::sealed::SealError),
    /// A TOTP secret was to be written or read without the sealing key.
    #[error("staff TOTP secrets need the server secret: open the store through the issuer")]
    NoSealingKey,
}

impl From<store_support::SetupError> for StoreError {
    fn from(e: store_support::SetupError) -> Self {
        match e {
            store_support::SetupError::UnknownScheme(s) => Self::UnknownScheme(s),
            other => Self::Setup(other),
        }
    }
}

/// The issuer's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time; writers of the hot path queue
    /// here instead of in SQLite's busy handler, whose sleeps (1 ms, 2 ms,
    /// 5 ms, … growing) would show up as latency spikes under load.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Seals staff TOTP secrets at rest: "TOTP secrets encrypted at rest
    /// under the server secret" (issue 12, finding 1). Set once, by the
    /// issuer, from the server secret ([`Store::seal_totp_secrets_with`]).
    totp_sealing: std::sync::Arc<std::sync::OnceLock<store_support::sealed::SealingKey>>,
    /// Seals queued messages at rest (they hold the processing number),
    /// set with the TOTP key from the same server secret.
    message_sealing: std::sync::Arc<std::sync::OnceLock<store_support::sealed::SealingKey>>,
}

/// The purpose the TOTP sealing key is derived for.
const TOTP_SEALING_PURPOSE: &str = "issuer staff TOTP secret";

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`), sets
    /// SQLite's WAL journal and busy timeout on every connection, and runs
    /// the backend's migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let migrations = store_support::migrations!();
        let (pool, backend) =
            store_support::connect(url, max_connections, SQLITE_PRAGMAS, migrations).await?;
        Ok(Self {
            pool,
            backend,
            write_gate: std::sync::Arc::new(tokio::sync::Mutex::new(())),
            totp_sealing: std::sync::Arc::default(),
            message_sealing: std::sync::Arc::default(),
        })
    }

    /// Seals staff TOTP secrets and queued messages under `secret` (the
    /// server secret) from now on, in this store and its clones; a second call changes nothing.
    pub fn seal_totp_secrets_with(&self, secret: &[u8]) {
        let _ = self
            .totp_sealing
            .set(store_support::sealed::SealingKey::derive(
                secret,
                TOTP_SEALING_PURPOSE,
            ));
        let _ = self
            .message_sealing
            .set(store_support::sealed::SealingKey::derive(
                secret,
                queue::MESSAGE_SEALING_PURPOSE,
            ));
    }

    /// `plain` sealed for `row` (`staff:<id>`, `session:<hash>`).
    fn seal_totp(&self, plain: &str, row: &str) -> Result<String, StoreError> {
        let key = self.totp_sealing.get().ok_or(StoreError::NoSealingKey)?;
        let mut nonce = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        Ok(key.seal(plain.as_bytes(), row, nonce))
    }

    /// A stored TOTP secret opened; a plain one (an older version's row,
    /// sealed at the next start) as it is.
    fn open_totp(&self, stored: Option<String>, row: &str) -> Result<Option<String>, StoreError> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        if !store_support::sealed::is_sealed(&stored) {
            return Ok(Some(stored));
        }
        let key = self.totp_sealing.get().ok_or(StoreError::NoSealingKey)?;
        let plain = key.open(&stored, row)?;
        String::from_utf8(plain.to_vec())
            .map(Some)
            .map_err(|_| StoreError::Corrupt("staff.totp_secret"))
    }

    /// Seals the TOTP secrets an older version stored in plain text, and
    /// drops plain enrolments in progress (the user starts the QR step
    /// again). Returns how many accounts were sealed.
    pub async fn seal_plain_totp_secrets(&self) -> Result<usize, StoreError> {
        use sqlx::Row as _;
        let plain = sqlx::query(
            "SELECT id, totp_secret FROM staff WHERE totp_secret IS NOT NULL AND totp_secret NOT LIKE 'sealed:v1:%'",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in &plain {
            let id: i64 = r.try_get("id")?;
            let old: String = r.try_get("totp_secret")?;
            let new = self.seal_totp(&old, &format!("staff:{id}"))?;
            sqlx::query("UPDATE staff SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3")
                .bind(&new)
                .bind(id)
                .bind(&old)
                .execute(&self.pool)
                .await?;
        }
        sqlx::query(
            "UPDATE staff_sessions SET totp_pending = NULL WHERE totp_pending IS NOT NULL AND totp_pending NOT LIKE 'sealed:v1:%'",
        )
        .execute(&self.pool)
        .await?;
        Ok(plain.len())
    }

    /// Takes the in-process write turn on SQLite (nothing on PostgreSQL).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.lock().await),
            Backend::Postgres => None,
        }
    }

    /// The SQLite URL of a file, created when missing.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        store_support::sqlite_url(path)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (tests read raw rows through it).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
