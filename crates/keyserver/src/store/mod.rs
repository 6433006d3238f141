//! Storage: SQLite (default, one file) or PostgreSQL, chosen from the URL
//! scheme. Both run the same SQL through sqlx's `Any` driver with `$1`
//! placeholders; only the migrations differ, one folder per backend. The
//! shared behaviour suite (`tests/`) runs on both.
//!
//! Every write transaction starts with a write, so that SQLite takes its
//! write lock at once (waiting up to the busy timeout) instead of failing
//! when a reader tries to upgrade.

mod bulk;
mod configurations;
mod export;
mod writer;

use std::time::Duration;

use sqlx::{AnyPool, Row};

pub use bulk::valid_region;
pub use configurations::ConfigurationRow;
pub use export::{BatchRow, FileRow, KeyRow, NewFile, RetentionReport, decode_fakes, encode_fakes};

pub use store_support::{Backend, SQLITE_BUSY_TIMEOUT_MS};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Opening the database: unknown URL scheme, connection, migrations.
    #[error(transparent)]
    Setup(#[from] store_support::SetupError),
    /// A database error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// The database could not be reached for a batch of publishes (the
    /// group-commit writer's error, shared by every publish of the batch).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// One key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The TEK.
    pub key_data: [u8; 16],
    /// First interval.
    pub rolling_start: i64,
    /// Intervals.
    pub rolling_period: i64,
    /// Set by the server from the certificate.
    pub transmission_risk: i64,
    /// Set by the server from the certificate.
    pub report_type: i64,
    /// Upload hour.
    pub created_at: i64,
    /// End of the embargo.
    pub available_at: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("rolling_start", &self.rolling_start)
            .field("available_at", &self.available_at)
            .finish_non_exhaustive()
    }
}

/// A publish to record.
#[derive(Debug, Clone)]
pub struct NewPublish<'a> {
    /// Hex SHA-256 of the certificate's signed part.
    pub cert_digest: &'a str,
    /// Hex SHA-256 of the canonical key message.
    pub keys_digest: &'a str,
    /// The valid keys.
    pub keys: &'a [StoredKey],
    /// Warnings of dropped keys.
    pub warnings: &'a [String],
    /// Upload hour.
    pub created_at: i64,
    /// Day of the public statistics (JST `YYYY-MM-DD`); `None` for a
    /// publish the statistics must not count (another region than the main
    /// one: the canary's, whose every run would otherwise add a
    /// "registration").
    pub day: Option<&'a str>,
    /// Export region of the keys: the region of the publishing health
    /// authority ("Canary keys go to a canary region only").
    pub region: &'a str,
}

/// A publish recorded before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorPublish {
    /// Hex SHA-256 of its key message.
    pub keys_digest: String,
    /// Keys it inserted.
    pub inserted: u32,
    /// Its warnings.
    pub warnings: Vec<String>,
}

/// What [`Store::record_publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now; this many keys were new.
    New {
        /// New keys.
        inserted: u32,
    },
    /// The certificate was used before (a retry or a race).
    Prior(PriorPublish),
}

/// A trusted issuer key stored by `cocoa keyserver add-issuer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRow {
    /// Health authority id.
    pub health_authority_id: String,
    /// `iss`.
    pub iss: String,
    /// Key id.
    pub kid: String,
    /// SPKI PEM.
    pub public_key_pem: String,
    /// Export region of the health authority's keys (none: the main region).
    pub region: Option<String>,
}

/// A generated export signing key.
#[derive(Clone)]
pub struct SigningKeyRow {
    /// `verification_key_id`.
    pub key_id: String,
    /// `verification_key_version`.
    pub key_version: String,
    /// PKCS#8 PEM, sealed under the key server's secret (`sealed:v1:…`,
    /// `store_support::sealed`); an older version's rows hold the PEM
    /// itself until the next start seals them.
    pub private_pkcs8_pem: String,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("key_id", &self.key_id)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

/// One day of statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// `YYYY-MM-DD` (JST).
    pub day: String,
    /// Publishes that stored at least one key.
    pub registrations: u64,
    /// Keys stored.
    pub keys: u64,
}

/// The key server's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL it was opened with (the bulk paths open their own connection).
    url: String,
    /// SQLite takes one writer at a time; writers of this process queue here
    /// instead of sleeping in SQLite's busy handler (which backs off up to
    /// 100 ms and ruins tail latency). Other processes still wait on the
    /// busy timeout.
    writer: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// The group-commit task of publishes, started at the first one.
    publisher: std::sync::Arc<tokio::sync::OnceCell<tokio::sync::mpsc::Sender<writer::Job>>>,
}

pub(crate) use store_support::unique_violation;

impl Store {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`), sets
    /// SQLite's WAL journal and busy timeout on every connection, and runs
    /// the backend's migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let migrations = store_support::migrations!();
        let (pool, backend) = store_support::connect(url, max_connections, &[], migrations).await?;
        let writer = (backend == Backend::Sqlite).then(Default::default);
        Ok(Self {
            pool,
            backend,
            url: url.to_owned(),
            writer,
            publisher: Default::default(),
        })
    }

    /// Holds this process's SQLite write turn (nothing on PostgreSQL).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.writer {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        }
    }

    /// The SQLite URL of a file, created when missing.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        store_support::sqlite_url(path)
    }

    /// The database URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
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

    // ---- publish --------------------------------------------------------------

    /// A publish recorded before with this certificate.
    pub async fn prior_publish(
        &self,
        cert_digest: &str,
    ) -> Result<Option<PriorPublish>, StoreError> {
        let row = sqlx::query(
            "SELECT keys_digest, inserted, warnings FROM publishes WHERE cert_digest = $1",
        )
        .bind(cert_digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| prior_of(&r)).transpose()
    }

    /// Records a publish and its keys in one transaction: once per
    /// certificate (a second call with the same certificate stores nothing
    /// and returns the first one), keys already stored are skipped, and the
    /// day's statistics count it when at least one key is new.
    pub async fn record_publish(&self, p: &NewPublish<'_>) -> Result<Recorded, StoreError> {
        let sender = self
            .publisher
            .get_or_init(|| async { writer::spawn(self.pool.clone(), self.writer.clone()) })
            .await;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = writer::Job {
            cert_digest: p.cert_digest.to_owned(),
            keys_digest: p.keys_digest.to_owned(),
            keys: p.keys.to_vec(),
            warnings: serde_json::to_string(p.warnings).unwrap_or_else(|_| "[]".into()),
            created_at: p.created_at,
            day: p.day.map(str::to_owned),
            region: p.region.to_owned(),
            reply,
        };
        let closed = || StoreError::Db(sqlx::Error::PoolClosed);
        sender.send(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Number of stored keys (tests and metrics).
    pub async fn key_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM exposures")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n as u64)
    }

    /// Number of recorded publishes (tests).
    pub async fn publish_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM publishes")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n as u64)
    }

    /// Every day of statistics, oldest first.
    pub async fn stats_days(&self) -> Result<Vec<DayCount>, StoreError> {
        let rows = sqlx::query("SELECT day, registrations, keys FROM stats_daily ORDER BY day")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DayCount {
                    day: r.try_get("day")?,
                    registrations: r.try_get::<i64, _>("registrations")? as u64,
                    keys: r.try_get::<i64, _>("keys")? as u64,
                })
            })
            .collect()
    }

    // ---- trusted issuers --------------------------------------------------------

    /// Trusts an issuer key; `false` when this health authority already has
    /// a key with this id.
    pub async fn add_trusted_issuer(&self, r: &IssuerRow, now: i64) -> Result<bool, StoreError> {
        let res = sqlx::query(
            "INSERT INTO trusted_issuers (health_authority_id, iss, kid, public_key_pem, created_at, region) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.health_authority_id)
        .bind(&r.iss)
        .bind(&r.kid)
        .bind(&r.public_key_pem)
        .bind(now)
        .bind(r.region.as_deref())
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every stored issuer key.
    pub async fn trusted_issuers(&self) -> Result<Vec<IssuerRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT health_authority_id, iss, kid, public_key_pem, region FROM trusted_issuers ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IssuerRow {
                    health_authority_id: r.try_get("health_authority_id")?,
                    iss: r.try_get("iss")?,
                    kid: r.try_get("kid")?,
                    public_key_pem: r.try_get("public_key_pem")?,
                    region: r.try_get("region")?,
                })
            })
            .collect()
    }

    // ---- export signing keys ------------------------------------------------------

    /// Generated export signing keys, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, key_version, private_pkcs8_pem FROM export_signing_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRow {
                    key_id: r.try_get("key_id")?,
                    key_version: r.try_get("key_version")?,
                    private_pkcs8_pem: r.try_get("private_pkcs8_pem")?,
                })
            })
            .collect()
    }

    /// Replaces the stored private key of (`key_id`, `key_version`) when it
    /// is still `old` (another process sealing it meanwhile wins).
    pub async fn set_signing_key_private(
        &self,
        key_id: &str,
        key_version: &str,
        old: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE export_signing_keys SET private_pkcs8_pem = $1 \
             WHERE key_id = $2 AND key_version = $3 AND private_pkcs8_pem = $4",
        )
        .bind(new)
        .bind(key_id)
        .bind(key_version)
        .bind(old)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a generated signing key unless one exists already (another
    /// process may have won the race); returns the keys after the call.
    pub async fn insert_first_signing_key(
        &self,
        k: &SigningKeyRow,
        now: i64,
    ) -> Result<Vec<SigningKeyRow>, StoreError> {
        let lease = "export-signing-key";
        let owner = format!("{:016x}", rand::random::<u64>());
        // A lease keeps two processes from generating a key each.
        for _ in 0..50 {
            if self.acquire_lease(lease, &owner, now + 60, now).await? {
                if self.signing_keys().await?.is_empty() {
                    sqlx::query(
                        "INSERT INTO export_signing_keys (key_id, key_version, private_pkcs8_pem, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&k.key_id)
                    .bind(&k.key_version)
                    .bind(&k.private_pkcs8_pem)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                }
                self.release_lease(lease, &owner).await?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.signing_keys().await
    }

    // ---- leases ------------------------------------------------------------------

    /// Takes or renews the named lease until `until` when it is free, expired
    /// or already ours.
    pub async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE leases.expires_at < $4 OR leases.owner = excluded.owner",
        )
        .bind(name)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives the lease up if it is ours.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn prior_of(r: &sqlx::any::AnyRow) -> Result<PriorPublish, StoreError> {
    let warnings: String = r.try_get("warnings")?;
    Ok(PriorPublish {
        keys_digest: r.try_get("keys_digest")?,
        inserted: r.try_get::<i64, _>("inserted")? as u32,
        warnings: serde_json::from_str(&warnings).unwrap_or_default(),
    })
}

/// Inserts keys, skipping those stored already; returns how many were new.
async fn insert_keys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    region: &str,
    keys: &[StoredKey],
) -> Result<u32, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let mut sql = String::from(
        "INSERT INTO exposures (key_data, rolling_start, rolling_period, transmission_risk, \
         report_type, created_at, available_at, region) VALUES ",
    );
    for i in 0..keys.len() {
        let b = i * 7 + 1;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, $1)",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7
        ));
    }
    sql.push_str(" ON CONFLICT (key_data) DO NOTHING");
    let mut q = sqlx::query(&sql).bind(region);
    for k in keys {
        q = q
            .bind(k.key_data.to_vec())
            .bind(k.rolling_start)
            .bind(k.rolling_period)
            .bind(k.transmission_risk)
            .bind(k.report_type)
            .bind(k.created_at)
            .bind(k.available_at);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected() as u32)
}
