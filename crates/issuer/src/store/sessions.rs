//! Portal sessions (table `sessions`): only the hash of a session id is stored.

use sqlx::Row;

use super::{Store, StoreError};

/// A stored portal session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The signed-in account; `None` for the anonymous session of the login form.
    pub staff_id: Option<i64>,
    /// `anon` (login form), `totp` (password checked, code pending) or `full`.
    pub stage: String,
    /// The synchronizer CSRF token of this session.
    pub csrf_token: String,
    /// A TOTP secret being enrolled (base32).
    pub totp_pending: Option<String>,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Last request (unix seconds).
    pub last_seen_at: i64,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRow")
            .field("staff_id", &self.staff_id)
            .field("stage", &self.stage)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores a new session.
    pub async fn create_session(
        &self,
        id_hash: &str,
        staff_id: Option<i64>,
        stage: &str,
        csrf_token: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO staff_sessions (id_hash, staff_id, stage, csrf_token, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(id_hash)
        .bind(staff_id)
        .bind(stage)
        .bind(csrf_token)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A session by the hash of its id.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT staff_id, stage, csrf_token, totp_pending, created_at, last_seen_at \
             FROM staff_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                staff_id: r.try_get("staff_id")?,
                stage: r.try_get("stage")?,
                csrf_token: r.try_get("csrf_token")?,
                totp_pending: self
                    .open_totp(r.try_get("totp_pending")?, &format!("session:{id_hash}"))?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
            })
        })
        .transpose()
    }

    /// Records activity on a session.
    pub async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps (or clears) a TOTP secret being enrolled in the session,
    /// sealed under the server secret.
    pub async fn set_session_totp_pending(
        &self,
        id_hash: &str,
        secret: Option<&str>,
    ) -> Result<(), StoreError> {
        let sealed = secret
            .map(|s| self.seal_totp(s, &format!("session:{id_hash}")))
            .transpose()?;
        sqlx::query("UPDATE staff_sessions SET totp_pending = $1 WHERE id_hash = $2")
            .bind(sealed)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM staff_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes sessions idle since `idle_before` or created before `created_before`.
    pub async fn sweep_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> Result<u64, StoreError> {
        let r =
            sqlx::query("DELETE FROM staff_sessions WHERE last_seen_at < $1 OR created_at < $2")
                .bind(idle_before)
                .bind(created_before)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected())
    }
}
