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

/// What claiming a portal form's once-only token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormClaim {
    /// First post of this token: do the work, then `finish_form`.
    New,
    /// Posted before (by `staff_id`, for `case_id`); `location` is where
    /// the first post sent its browser, `None` while it still runs.
    Taken {
        /// Who claimed it.
        staff_id: i64,
        /// For which case.
        case_id: i64,
        /// The first post's answer.
        location: Option<String>,
    },
}

/// How long a form token is remembered, seconds.
pub const FORM_RETENTION_SECONDS: i64 = 24 * 3600;

impl Store {
    /// Claims a form's once-only token (table `portal_forms`): exactly one
    /// of several concurrent posts of the same form gets [`FormClaim::New`].
    /// Tokens older than [`FORM_RETENTION_SECONDS`] are swept on the way.
    pub async fn claim_form(
        &self,
        token_hash: &str,
        staff_id: i64,
        case_id: i64,
        now: i64,
    ) -> Result<FormClaim, StoreError> {
        sqlx::query("DELETE FROM portal_forms WHERE created_at < $1")
            .bind(now - FORM_RETENTION_SECONDS)
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "INSERT INTO portal_forms (token_hash, staff_id, case_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(staff_id)
        .bind(case_id)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => return Ok(FormClaim::New),
            Err(e) if store_support::unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.form(token_hash)
            .await?
            .ok_or(StoreError::Corrupt("portal_forms: claimed row vanished"))
    }

    /// A claimed form token.
    pub async fn form(&self, token_hash: &str) -> Result<Option<FormClaim>, StoreError> {
        let row = sqlx::query(
            "SELECT staff_id, case_id, location FROM portal_forms WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(FormClaim::Taken {
                staff_id: r.try_get("staff_id")?,
                case_id: r.try_get("case_id")?,
                location: r.try_get("location")?,
            })
        })
        .transpose()
    }

    /// Records where the first post of a form token sent its browser.
    pub async fn finish_form(&self, token_hash: &str, location: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_forms SET location = $1 WHERE token_hash = $2")
            .bind(location)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
