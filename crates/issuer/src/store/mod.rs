//! Storage: SQLite (default, one file) or PostgreSQL, chosen from the URL
//! scheme. Both run the same SQL through sqlx's `Any` driver with `$1`
//! placeholders (SQLite accepts `$N`); only the migrations differ, one folder
//! per backend. The shared behaviour suite (`tests/store.rs`) runs on both.

mod audit;
mod cases;
mod centres;
mod claims;
mod idempotency;
mod issuances;
mod rows;
mod sessions;
mod signing_keys;
mod staff;

use sqlx::AnyPool;

pub use audit::{AuditFilter, AuditLine};
pub use cases::CaseExtra;
pub use claims::{Claim, CodeColumn, Redeem};
pub use idempotency::IdempotencyBegin;
pub use issuances::{IssueError, NewIssuance};
pub use rows::{ApiKeyKind, ApiKeyRow, AuditEntry, IssuanceStats, SigningKeyRow, StaffRow};
pub use sessions::SessionRow;

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
}

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
        })
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
