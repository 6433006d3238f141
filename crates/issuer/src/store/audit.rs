//! The audit log (table `audit_log`). Never holds a code.

use super::{AuditEntry, Store, StoreError, rows};

impl Store {
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
}
