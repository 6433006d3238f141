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

impl Store {
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
}
