//! The certificate signing keys (table `signing_keys`).

use super::{SigningKeyRow, Store, StoreError, rows};

impl Store {
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

    /// Every key's id and stored private key, retired ones included.
    pub async fn signing_key_privates(&self) -> Result<Vec<(String, String)>, StoreError> {
        use sqlx::Row as _;
        let rs = sqlx::query("SELECT kid, private_pkcs8_hex FROM signing_keys ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rs.iter()
            .map(|r| Ok((r.try_get("kid")?, r.try_get("private_pkcs8_hex")?)))
            .collect()
    }

    /// Replaces the stored private key of `kid` when it is still `old`
    /// (another process sealing it meanwhile wins, and nothing changes).
    pub async fn set_signing_key_private(
        &self,
        kid: &str,
        old: &str,
        new: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE signing_keys SET private_pkcs8_hex = $1 WHERE kid = $2 AND private_pkcs8_hex = $3",
        )
        .bind(new)
        .bind(kid)
        .bind(old)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
