//! Storage: SQLite (default, one file) or PostgreSQL, chosen from the URL
//! scheme. Both run the same SQL through sqlx's `Any` driver with `$1`
//! placeholders (SQLite accepts `$N`); only the migrations differ, one folder
//! per backend. The shared behaviour suite (`tests/store.rs`) runs on both.

mod portal;
mod rows;

use sqlx::{AnyPool, Row};

use crate::domain::model::{
    Case, CaseData, Centre, Channel, Issuance, IssuanceState, ReportType, Role,
};
use crate::domain::rules::{self, Blocker};

pub use portal::{CaseExtra, SessionRow};
pub use rows::{ApiKeyKind, ApiKeyRow, AuditEntry, IssuanceStats, SigningKeyRow, StaffRow};

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

/// The outcome of an atomic claim of a processing number or link code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed: the token was stored.
    Claimed {
        /// The issuance.
        issuance_id: i64,
        /// Its report type.
        report_type: ReportType,
    },
    /// Unknown, used, superseded, or lost the race.
    Invalid,
    /// Past its validity.
    Expired,
    /// Its report type is not accepted by the app.
    WrongTestType,
}

/// The outcome of redeeming a verification token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    /// Redeemed once, now spent.
    Redeemed {
        /// The report type of the number.
        report_type: ReportType,
        /// Whether the number was a canary case's.
        canary: bool,
    },
    /// Unknown or already used.
    Invalid,
    /// Past its 24 h.
    Expired,
}

/// Which column a claim looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeColumn {
    /// The 8-digit number's HMAC.
    Number,
    /// The link code's HMAC.
    Link,
}

/// A new issuance, as the service hands it to storage.
#[derive(Debug, Clone)]
pub struct NewIssuance<'a> {
    /// The case.
    pub case_id: i64,
    /// HMAC of the number.
    pub number_hmac: &'a str,
    /// HMAC of the link code.
    pub link_hmac: &'a str,
    /// Report type.
    pub report_type: ReportType,
    /// Channel.
    pub channel: Channel,
    /// Who.
    pub issued_by: &'a str,
    /// When.
    pub issued_at: i64,
    /// Until.
    pub expires_at: i64,
}

/// Why [`Store::insert_issuance`] did not insert.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The number collides with a live one: draw another.
    #[error("number collides with a live number")]
    Collision,
    /// A registration already succeeded for the case.
    #[error("already registered")]
    Refused(Blocker),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// State of an idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First time: go ahead, then call `finish_idempotent`.
    New,
    /// Done before: answer this again.
    Done {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: String,
    },
    /// Another request with this key is running.
    InProgress,
    /// The key was used with a different request.
    Mismatch,
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

use store_support::unique_violation;

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

    // ---- centres ------------------------------------------------------------

    /// Creates a centre with default settings; returns its id.
    pub async fn create_centre(
        &self,
        name: &str,
        prefecture: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO centres (name, prefecture, validity_seconds, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(prefecture)
        .bind(crate::domain::model::DEFAULT_VALIDITY_SECONDS)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Saves a centre's settings.
    pub async fn update_centre(&self, c: &Centre) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE centres SET name = $1, prefecture = $2, consultation_phone = $3, consultation_url = $4, \
             validity_seconds = $5, auto_issue = $6, allow_clinical = $7 WHERE id = $8",
        )
        .bind(&c.name)
        .bind(&c.prefecture)
        .bind(&c.consultation_phone)
        .bind(&c.consultation_url)
        .bind(c.validity_seconds)
        .bind(i64::from(c.auto_issue))
        .bind(i64::from(c.allow_clinical))
        .bind(c.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A centre by id.
    pub async fn centre(&self, id: i64) -> Result<Option<Centre>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM centres WHERE id = $1",
            rows::CENTRE_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::centre(&r)).transpose()
    }

    /// Every centre.
    pub async fn centres(&self) -> Result<Vec<Centre>, StoreError> {
        let rs = sqlx::query(&format!(
            "SELECT {} FROM centres ORDER BY id",
            rows::CENTRE_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(rows::centre).collect()
    }

    // ---- staff and API keys ---------------------------------------------------

    /// Creates a staff account; `None` when the login is taken.
    pub async fn create_staff(
        &self,
        centre_id: i64,
        login: &str,
        password_hash: &str,
        role: Role,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query(
            "INSERT INTO staff (centre_id, login, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(centre_id)
        .bind(login)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        match r {
            Ok(row) => Ok(Some(row.try_get("id")?)),
            Err(e) if unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A staff account by login.
    pub async fn staff_by_login(&self, login: &str) -> Result<Option<StaffRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, centre_id, login, password_hash, role, totp_secret, disabled_at FROM staff WHERE login = $1",
        )
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::staff(&r)).transpose()
    }

    /// Stores an API key (its HMAC only); returns its id.
    pub async fn create_api_key(
        &self,
        key_hmac: &str,
        kind: ApiKeyKind,
        centre_id: Option<i64>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO api_keys (key_hmac, kind, centre_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(key_hmac)
        .bind(kind.as_str())
        .bind(centre_id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// A live API key by its HMAC.
    pub async fn api_key(&self, key_hmac: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, kind, centre_id FROM api_keys WHERE key_hmac = $1 AND revoked_at IS NULL",
        )
        .bind(key_hmac)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::api_key(&r)).transpose()
    }

    // ---- cases --------------------------------------------------------------------

    /// Stores a new case; returns its id.
    pub async fn insert_case(&self, c: &CaseData, now: i64) -> Result<i64, StoreError> {
        self.insert_case_of_kind(c, false, now).await
    }

    /// Stores a new case, a canary case when `canary`; returns its id.
    pub async fn insert_case_of_kind(
        &self,
        c: &CaseData,
        canary: bool,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO cases (centre_id, name_kanji, name_kana, birth_date, sex, mobile, email, \
             outpatient_facility, test_positive, classification, diagnosis_date, reported, uses_app, \
             created_at, updated_at, canary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) RETURNING id",
        );
        let row = rows::bind_case(row, c)
            .bind(now)
            .bind(i64::from(canary))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Replaces a case's data.
    pub async fn update_case(&self, id: i64, c: &CaseData, now: i64) -> Result<(), StoreError> {
        let q = sqlx::query(
            "UPDATE cases SET centre_id = $1, name_kanji = $2, name_kana = $3, birth_date = $4, sex = $5, \
             mobile = $6, email = $7, outpatient_facility = $8, test_positive = $9, classification = $10, \
             diagnosis_date = $11, reported = $12, uses_app = $13, updated_at = $14 WHERE id = $15",
        );
        rows::bind_case(q, c)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A case by id.
    pub async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM cases WHERE id = $1",
            rows::CASE_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::case(&r)).transpose()
    }

    /// Cases of a centre (every centre when `None`), newest first, optionally
    /// filtered by a substring of the name (kanji or kana) or the exact id.
    pub async fn list_cases(
        &self,
        centre_id: Option<i64>,
        search: &str,
        limit: i64,
    ) -> Result<Vec<Case>, StoreError> {
        let pattern = format!("%{}%", search.replace(['%', '_'], ""));
        let id: i64 = search.trim().parse().unwrap_or(-1);
        let rs = sqlx::query(&format!(
            "SELECT {} FROM cases WHERE ($1 = -1 OR centre_id = $1) \
             AND ($2 = '%%' OR name_kanji LIKE $2 OR name_kana LIKE $2 OR id = $3) \
             ORDER BY id DESC LIMIT $4",
            rows::CASE_COLUMNS
        ))
        .bind(centre_id.unwrap_or(-1))
        .bind(pattern)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(rows::case).collect()
    }

    // ---- issuances ------------------------------------------------------------------

    /// States of every issuance of a case, expiry applied.
    pub async fn issuance_history(
        &self,
        case_id: i64,
        now: i64,
    ) -> Result<Vec<Issuance>, StoreError> {
        let rs = sqlx::query(&format!(
            "SELECT {} FROM issuances WHERE case_id = $1 ORDER BY id DESC",
            rows::ISSUANCE_COLUMNS
        ))
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(|r| rows::issuance(r, now)).collect()
    }

    /// Atomically: marks expired numbers, supersedes the case's live number,
    /// refuses when a registration already succeeded
    /// ([`rules::reissue_allowed`]), and inserts the new issuance.
    pub async fn insert_issuance(&self, n: &NewIssuance<'_>) -> Result<i64, IssueError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        // First statement writes: serialises issuances of this case (a row
        // lock on PostgreSQL, the write lock on SQLite).
        sqlx::query("UPDATE cases SET updated_at = updated_at WHERE id = $1")
            .bind(n.case_id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query(
            "UPDATE issuances SET state = 'expired' WHERE state = 'issued' AND expires_at <= $1",
        )
        .bind(n.issued_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        sqlx::query(
            "UPDATE issuances SET state = 'superseded' WHERE case_id = $1 AND state = 'issued'",
        )
        .bind(n.case_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
        // Read after the writes, so a claim that committed meanwhile is seen.
        let states: Vec<IssuanceState> =
            sqlx::query("SELECT state FROM issuances WHERE case_id = $1")
                .bind(n.case_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::from)?
                .iter()
                .map(|r| {
                    let s: String = r.try_get("state")?;
                    IssuanceState::parse(&s).ok_or(StoreError::Corrupt("issuances.state"))
                })
                .collect::<Result<_, StoreError>>()?;
        if let Err(b) = rules::reissue_allowed(&states) {
            tx.rollback().await.map_err(StoreError::from)?;
            return Err(IssueError::Refused(b));
        }
        let r = sqlx::query(
            "INSERT INTO issuances (case_id, number_hmac, link_hmac, report_type, state, channel, \
             delivery_status, issued_by, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, 'issued', $5, 'pending', $6, $7, $8) RETURNING id",
        )
        .bind(n.case_id)
        .bind(n.number_hmac)
        .bind(n.link_hmac)
        .bind(n.report_type.as_str())
        .bind(n.channel.as_str())
        .bind(n.issued_by)
        .bind(n.issued_at)
        .bind(n.expires_at)
        .fetch_one(&mut *tx)
        .await;
        match r {
            Ok(row) => {
                let id: i64 = row.try_get("id").map_err(StoreError::from)?;
                tx.commit().await.map_err(StoreError::from)?;
                Ok(id)
            }
            Err(e) if unique_violation(&e) => {
                tx.rollback().await.map_err(StoreError::from)?;
                Err(IssueError::Collision)
            }
            Err(e) => Err(StoreError::from(e).into()),
        }
    }

    /// Records a successful delivery.
    pub async fn mark_delivered(&self, issuance_id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE issuances SET delivery_status = 'sent', delivered_at = $1, delivery_error = NULL WHERE id = $2")
            .bind(now)
            .bind(issuance_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed delivery and withdraws the number: nobody received
    /// it, so it must not stay usable.
    pub async fn mark_delivery_failed(
        &self,
        issuance_id: i64,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let reason: String = reason.chars().take(500).collect();
        sqlx::query(
            "UPDATE issuances SET delivery_status = 'failed', delivery_error = $1, \
             state = CASE WHEN state = 'issued' THEN 'expired' ELSE state END, expires_at = $2 WHERE id = $3",
        )
        .bind(reason)
        .bind(now)
        .bind(issuance_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Atomically claims the live issuance whose number (or link code) hashes
    /// to `code_hmac` and stores the verification token: of two concurrent
    /// claims exactly one wins. Claiming by either code ends both.
    pub async fn claim(
        &self,
        column: CodeColumn,
        code_hmac: &str,
        accept: &[ReportType],
        token_hmac: &str,
        token_expires_at: i64,
        now: i64,
    ) -> Result<Claim, StoreError> {
        self.claim_or_replay(
            column,
            code_hmac,
            accept,
            token_hmac,
            token_expires_at,
            None,
            now,
        )
        .await
    }

    /// [`claim`](Self::claim), remembering `retry_hmac` (the HMAC of the
    /// device's `Idempotency-Key`): a later call with the same code and the
    /// same key, while the token is unspent and within its lifetime, is the
    /// retry of a lost answer and gets `token_hmac` as the new token (the
    /// lost one stops working) instead of `Invalid`.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_or_replay(
        &self,
        column: CodeColumn,
        code_hmac: &str,
        accept: &[ReportType],
        token_hmac: &str,
        token_expires_at: i64,
        retry_hmac: Option<&str>,
        now: i64,
    ) -> Result<Claim, StoreError> {
        let col = match column {
            CodeColumn::Number => "number_hmac",
            CodeColumn::Link => "link_hmac",
        };
        // One conditional UPDATE claims a live number of an accepted type
        // and stores the token with it: atomic without a transaction.
        let accepted = |t: ReportType| accept.contains(&t).then_some(t.as_str());
        let (a1, a2) = (
            accepted(ReportType::Confirmed).unwrap_or(""),
            accepted(ReportType::Likely).unwrap_or(""),
        );
        let won = {
            let _turn = self.write_turn().await;
            sqlx::query(&format!(
                "UPDATE issuances SET state = 'used', used_at = $1, token_hmac = $5, token_expires_at = $6, \
                 claim_key_hmac = $7 \
                 WHERE {col} = $2 AND state = 'issued' AND expires_at > $1 \
                 AND (report_type = $3 OR report_type = $4) RETURNING id, report_type"
            ))
            .bind(now)
            .bind(code_hmac)
            .bind(a1)
            .bind(a2)
            .bind(token_hmac)
            .bind(token_expires_at)
            .bind(retry_hmac)
            .fetch_optional(&self.pool)
            .await?
        };
        let won = match (won, retry_hmac) {
            (Some(row), _) => Some(row),
            // The retry of a claim whose answer was lost: same code, same
            // key, token not yet spent and still within its lifetime.
            (None, Some(retry)) => {
                let _turn = self.write_turn().await;
                sqlx::query(&format!(
                    "UPDATE issuances SET token_hmac = $3, token_expires_at = $4 \
                     WHERE {col} = $2 AND state = 'used' AND claim_key_hmac = $5 \
                     AND token_used_at IS NULL AND token_expires_at > $1 \
                     AND (report_type = $6 OR report_type = $7) RETURNING id, report_type"
                ))
                .bind(now)
                .bind(code_hmac)
                .bind(token_hmac)
                .bind(token_expires_at)
                .bind(retry)
                .bind(a1)
                .bind(a2)
                .fetch_optional(&self.pool)
                .await?
            }
            (None, None) => None,
        };
        if let Some(row) = won {
            let id: i64 = row.try_get("id")?;
            let rt: String = row.try_get("report_type")?;
            let report_type =
                ReportType::parse(&rt).ok_or(StoreError::Corrupt("issuances.report_type"))?;
            return Ok(Claim::Claimed {
                issuance_id: id,
                report_type,
            });
        }
        // Not claimed: say why (unknown, used or superseded, expired, type).
        let row = sqlx::query(&format!(
            "SELECT state, expires_at, report_type FROM issuances WHERE {col} = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(code_hmac)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Claim::Invalid);
        };
        let state: String = row.try_get("state")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let rt: String = row.try_get("report_type")?;
        let report_type =
            ReportType::parse(&rt).ok_or(StoreError::Corrupt("issuances.report_type"))?;
        Ok(match state.as_str() {
            "issued" if expires_at <= now => Claim::Expired,
            "expired" => Claim::Expired,
            "issued" if !accept.contains(&report_type) => Claim::WrongTestType,
            _ => Claim::Invalid,
        })
    }

    /// Spends a verification token (single use, 24 h).
    pub async fn redeem_token(&self, token_hmac: &str, now: i64) -> Result<Redeem, StoreError> {
        self.redeem_or_replay(token_hmac, None, now).await
    }

    /// [`redeem_token`](Self::redeem_token), remembering `retry_hmac` (the
    /// HMAC of the device's `Idempotency-Key` and the key HMAC it sent): a
    /// later call with the same token and the same `retry_hmac`, within the
    /// token's lifetime, is the retry of a lost answer and redeems again
    /// (a certificate for the same keys) instead of `Invalid`.
    pub async fn redeem_or_replay(
        &self,
        token_hmac: &str,
        retry_hmac: Option<&str>,
        now: i64,
    ) -> Result<Redeem, StoreError> {
        let row = {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE issuances SET token_used_at = $1, certificate_key_hmac = $3 \
                 WHERE token_hmac = $2 AND token_used_at IS NULL \
                 AND token_expires_at > $1 RETURNING report_type, channel",
            )
            .bind(now)
            .bind(token_hmac)
            .bind(retry_hmac)
            .fetch_optional(&self.pool)
            .await?
        };
        let row = match (row, retry_hmac) {
            (Some(row), _) => Some(row),
            (None, Some(retry)) => {
                sqlx::query(
                    "SELECT report_type, channel FROM issuances WHERE token_hmac = $1 \
                     AND token_used_at IS NOT NULL AND certificate_key_hmac = $2 \
                     AND token_expires_at > $3",
                )
                .bind(token_hmac)
                .bind(retry)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
            }
            (None, None) => None,
        };
        if let Some(row) = row {
            let rt: String = row.try_get("report_type")?;
            let channel: String = row.try_get("channel")?;
            return ReportType::parse(&rt)
                .map(|report_type| Redeem::Redeemed {
                    report_type,
                    canary: channel == Channel::Canary.as_str(),
                })
                .ok_or(StoreError::Corrupt("issuances.report_type"));
        }
        let row = sqlx::query(
            "SELECT token_expires_at, token_used_at FROM issuances WHERE token_hmac = $1",
        )
        .bind(token_hmac)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = row {
            let used: Option<i64> = r.try_get("token_used_at")?;
            let exp: Option<i64> = r.try_get("token_expires_at")?;
            return Ok(if used.is_none() && exp.is_some_and(|e| e <= now) {
                Redeem::Expired
            } else {
                Redeem::Invalid
            });
        }
        self.redeem_legacy_token(token_hmac, now).await
    }

    /// A token stored by a server before migration 0002 (in `tokens`).
    async fn redeem_legacy_token(&self, token_hmac: &str, now: i64) -> Result<Redeem, StoreError> {
        let row = {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE tokens SET used_at = $1 WHERE token_hmac = $2 AND used_at IS NULL AND expires_at > $1 RETURNING report_type",
            )
            .bind(now)
            .bind(token_hmac)
            .fetch_optional(&self.pool)
            .await?
        };
        if let Some(row) = row {
            let rt: String = row.try_get("report_type")?;
            return ReportType::parse(&rt)
                .map(|report_type| Redeem::Redeemed {
                    report_type,
                    canary: false,
                })
                .ok_or(StoreError::Corrupt("tokens.report_type"));
        }
        let row = sqlx::query("SELECT expires_at, used_at FROM tokens WHERE token_hmac = $1")
            .bind(token_hmac)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => {
                let used: Option<i64> = r.try_get("used_at")?;
                let exp: i64 = r.try_get("expires_at")?;
                if used.is_none() && exp <= now {
                    Redeem::Expired
                } else {
                    Redeem::Invalid
                }
            }
            None => Redeem::Invalid,
        })
    }

    /// Counts of issuances by state and delivery, for a centre or nationally,
    /// and the median seconds from issue to registration.
    pub async fn stats(
        &self,
        centre_id: Option<i64>,
        now: i64,
    ) -> Result<IssuanceStats, StoreError> {
        let rs = sqlx::query(
            "SELECT i.state, i.delivery_status, i.expires_at, i.issued_at, i.used_at FROM issuances i \
             JOIN cases c ON c.id = i.case_id WHERE ($1 = -1 OR c.centre_id = $1)",
        )
        .bind(centre_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rows::stats(&rs, now)
    }

    // ---- audit ------------------------------------------------------------------------

    /// Appends one entry to the audit log. Never pass a code in `detail`.
    pub async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, centre_id, case_id, action, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(e.centre_id)
        .bind(e.case_id)
        .bind(&e.action)
        .bind(&e.outcome)
        .bind(&e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest audit entries of a centre (all when `None`).
    pub async fn audit_log(
        &self,
        centre_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rs = sqlx::query(
            "SELECT at, actor, centre_id, case_id, action, outcome, detail FROM audit_log \
             WHERE ($1 = -1 OR centre_id = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(centre_id.unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(rows::audit).collect()
    }

    // ---- idempotency -------------------------------------------------------------------

    /// Starts an idempotent request.
    pub async fn begin_idempotent(
        &self,
        api_key_id: i64,
        key: &str,
        request_hash: &str,
        now: i64,
    ) -> Result<IdempotencyBegin, StoreError> {
        let r = sqlx::query(
            "INSERT INTO idempotency (api_key_id, idem_key, request_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(api_key_id)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => return Ok(IdempotencyBegin::New),
            Err(e) if unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM idempotency WHERE api_key_id = $1 AND idem_key = $2",
        )
        .bind(api_key_id)
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let hash: String = row.try_get("request_hash")?;
        let status: Option<i64> = row.try_get("status")?;
        let body: Option<String> = row.try_get("body")?;
        Ok(match (hash == request_hash, status, body) {
            (false, _, _) => IdempotencyBegin::Mismatch,
            (true, Some(s), Some(b)) => IdempotencyBegin::Done {
                status: u16::try_from(s).map_err(|_| StoreError::Corrupt("idempotency.status"))?,
                body: b,
            },
            _ => IdempotencyBegin::InProgress,
        })
    }

    /// Stores the answer of an idempotent request.
    pub async fn finish_idempotent(
        &self,
        api_key_id: i64,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency SET status = $1, body = $2 WHERE api_key_id = $3 AND idem_key = $4",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(api_key_id)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets an idempotent request that failed unexpectedly, so a retry runs again.
    pub async fn abandon_idempotent(&self, api_key_id: i64, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency WHERE api_key_id = $1 AND idem_key = $2 AND status IS NULL",
        )
        .bind(api_key_id)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- signing keys --------------------------------------------------------------------

    /// Stores a new certificate signing key.
    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_pkcs8_hex, public_pem, created_at, retire_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&k.kid)
        .bind(&k.private_pkcs8_hex)
        .bind(&k.public_pem)
        .bind(k.created_at)
        .bind(k.retire_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keys not yet retired at `now`, newest first.
    pub async fn signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRow>, StoreError> {
        let rs = sqlx::query(
            "SELECT kid, private_pkcs8_hex, public_pem, created_at, retire_at FROM signing_keys \
             WHERE retire_at IS NULL OR retire_at > $1 ORDER BY id DESC",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(rows::signing_key).collect()
    }

    /// Schedules the retirement of every key but `keep` at `retire_at`.
    pub async fn retire_signing_keys_except(
        &self,
        keep: &str,
        retire_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE signing_keys SET retire_at = $1 WHERE kid <> $2 AND (retire_at IS NULL OR retire_at > $1)")
            .bind(retire_at)
            .bind(keep)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
