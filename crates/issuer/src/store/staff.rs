//! Staff accounts with their TOTP secrets, and API keys (tables `staff` and
//! `api_keys`).

use sqlx::Row;
use store_support::unique_violation;

use super::{ApiKeyKind, ApiKeyRow, StaffRow, Store, StoreError, rows};
use crate::domain::model::Role;

impl Store {
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
        row.map(|r| self.staff_row(&r)).transpose()
    }

    /// A staff row with its TOTP secret opened.
    fn staff_row(&self, r: &sqlx::any::AnyRow) -> Result<StaffRow, StoreError> {
        let mut s = rows::staff(r)?;
        s.totp_secret = self.open_totp(s.totp_secret.take(), &format!("staff:{}", s.id))?;
        Ok(s)
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

    /// A staff account by id.
    pub async fn staff(&self, id: i64) -> Result<Option<StaffRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, centre_id, login, password_hash, role, totp_secret, disabled_at FROM staff WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.staff_row(&r)).transpose()
    }

    /// Enables (or, with `None`, disables) TOTP for an account; the secret
    /// is stored sealed under the server secret.
    pub async fn set_totp_secret(
        &self,
        staff_id: i64,
        secret: Option<&str>,
    ) -> Result<(), StoreError> {
        let sealed = secret
            .map(|s| self.seal_totp(s, &format!("staff:{staff_id}")))
            .transpose()?;
        sqlx::query("UPDATE staff SET totp_secret = $1, totp_last_step = 0 WHERE id = $2")
            .bind(sealed)
            .bind(staff_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Spends TOTP time step `step` for an account: `false` when that step
    /// (or a later one) was already used, so a code works only once.
    pub async fn use_totp_step(&self, staff_id: i64, step: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE staff SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(staff_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

/// A staff account as the administration page lists it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffListing {
    /// Id.
    pub id: i64,
    /// Centre.
    pub centre_id: i64,
    /// Login id.
    pub login: String,
    /// Display name (empty: none set).
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Whether TOTP is on.
    pub totp: bool,
    /// Disabled since.
    pub disabled_at: Option<i64>,
}

/// An API key as the administration page lists it (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyListing {
    /// Id.
    pub id: i64,
    /// `device` or `admin`.
    pub kind: String,
    /// Centre.
    pub centre_id: Option<i64>,
    /// Label.
    pub label: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Revoked since.
    pub revoked_at: Option<i64>,
}

impl Store {
    /// The accounts of a centre (`None`: every centre), by login.
    pub async fn staff_listing(
        &self,
        centre_id: Option<i64>,
    ) -> Result<Vec<StaffListing>, StoreError> {
        let rs = sqlx::query(
            "SELECT id, centre_id, login, display_name, role, totp_secret IS NOT NULL AS totp, disabled_at \
             FROM staff WHERE ($1 = -1 OR centre_id = $1) ORDER BY login",
        )
        .bind(centre_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rs.iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                let totp: bool = match r.try_get::<bool, _>("totp") {
                    Ok(b) => b,
                    Err(_) => r.try_get::<i64, _>("totp")? != 0,
                };
                Ok(StaffListing {
                    id: r.try_get("id")?,
                    centre_id: r.try_get("centre_id")?,
                    login: r.try_get("login")?,
                    display_name: r.try_get("display_name")?,
                    role: Role::parse(&role).ok_or(StoreError::Corrupt("staff.role"))?,
                    totp,
                    disabled_at: r.try_get("disabled_at")?,
                })
            })
            .collect()
    }

    /// The API keys of a centre (`None`: every key), oldest first; never
    /// the key, only its id, kind, centre, label and times.
    pub async fn api_key_listing(
        &self,
        centre_id: Option<i64>,
    ) -> Result<Vec<ApiKeyListing>, StoreError> {
        let rs = sqlx::query(
            "SELECT id, kind, centre_id, label, created_at, revoked_at FROM api_keys \
             WHERE ($1 = -1 OR centre_id = $1) ORDER BY id",
        )
        .bind(centre_id.unwrap_or(-1))
        .fetch_all(&self.pool)
        .await?;
        rs.iter()
            .map(|r| {
                Ok(ApiKeyListing {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    centre_id: r.try_get("centre_id")?,
                    label: r.try_get("label")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Sets an API key's label (shown on the keys page and in the audit log).
    pub async fn set_api_key_label(&self, id: i64, label: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET label = $1 WHERE id = $2")
            .bind(label)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes a live API key: `false` when there is no live key `id`
    /// (unknown, or revoked already: the first revocation time stays).
    pub async fn revoke_api_key(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let r =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Display names by actor name (`staff:<login>` → name; the login
    /// when none is set), for showing who did what.
    pub async fn staff_display_names(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rs = sqlx::query("SELECT login, display_name FROM staff")
            .fetch_all(&self.pool)
            .await?;
        rs.iter()
            .map(|r| {
                let login: String = r.try_get("login")?;
                let name: String = r.try_get("display_name")?;
                let shown = if name.is_empty() { login.clone() } else { name };
                Ok((format!("staff:{login}"), shown))
            })
            .collect()
    }

    /// Sets an account's display name.
    pub async fn set_staff_display_name(&self, id: i64, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET display_name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets an account's role.
    pub async fn set_staff_role(&self, id: i64, role: Role) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Disables (`Some(now)`) or enables (`None`) an account.
    pub async fn set_staff_disabled(&self, id: i64, at: Option<i64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET disabled_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replaces an account's password hash.
    pub async fn set_staff_password(&self, id: i64, phc: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE staff SET password_hash = $1 WHERE id = $2")
            .bind(phc)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends every session of an account (after a password or TOTP reset,
    /// or when it is disabled).
    pub async fn delete_sessions_of(&self, staff_id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1")
            .bind(staff_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
