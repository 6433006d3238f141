//! Idempotent machine-API requests (table `idempotency_keys`).

use sqlx::Row;
use store_support::unique_violation;

use super::{Store, StoreError};

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

/// How long a request may stay in progress before its key is taken over
/// by a retry. The work runs detached from the connection and finishes in
/// seconds; a row older than this was left by a process that stopped
/// mid-way (a crash, a kill), and would otherwise answer 409 for ever.
pub const IN_PROGRESS_EXPIRY_SECONDS: i64 = 120;

impl Store {
    /// Starts an idempotent request; takes over a key left in progress for
    /// longer than [`IN_PROGRESS_EXPIRY_SECONDS`].
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
            "SELECT request_hash, status, body, created_at FROM idempotency WHERE api_key_id = $1 AND idem_key = $2",
        )
        .bind(api_key_id)
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let hash: String = row.try_get("request_hash")?;
        let status: Option<i64> = row.try_get("status")?;
        let body: Option<String> = row.try_get("body")?;
        let created_at: i64 = row.try_get("created_at")?;
        Ok(match (hash == request_hash, status, body) {
            (false, _, _) => IdempotencyBegin::Mismatch,
            (true, Some(s), Some(b)) => IdempotencyBegin::Done {
                status: u16::try_from(s).map_err(|_| StoreError::Corrupt("idempotency.status"))?,
                body: b,
            },
            _ if now - created_at > IN_PROGRESS_EXPIRY_SECONDS => {
                // Left by a stopped process: one retry takes it over (the
                // `created_at` guard lets only one of several win).
                let took = sqlx::query(
                    "UPDATE idempotency SET created_at = $1 WHERE api_key_id = $2 AND idem_key = $3 \
                     AND status IS NULL AND created_at = $4",
                )
                .bind(now)
                .bind(api_key_id)
                .bind(key)
                .bind(created_at)
                .execute(&self.pool)
                .await?;
                if took.rows_affected() == 1 {
                    IdempotencyBegin::New
                } else {
                    IdempotencyBegin::InProgress
                }
            }
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
}
