//! The audit log (table `audit_log`). Never holds a code.
//!
//! Refused logins are aggregated: one row per account, outcome and window
//! with a count (`times`), so a flood of refusals cannot push the other
//! entries off the page (issue 12, finding 8). Entries older than the
//! retention are pruned ([`Store::prune_audit`]).

use sqlx::Row as _;

use super::{AuditEntry, Store, StoreError, rows};

/// One line of the audit page: an entry and how many times it happened
/// (more than once only for aggregated refusals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    /// The entry (`at`: the latest time).
    pub entry: AuditEntry,
    /// How many times, within its window.
    pub times: i64,
}

/// Which entries the audit page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries of this centre (`None`: every centre).
    pub centre_id: Option<i64>,
    /// Only this action (`login`, `issue_number`, …).
    pub action: Option<String>,
    /// Only this actor (`staff:<login>`, `api:<id>`, …).
    pub actor: Option<String>,
    /// From this time (unix seconds, inclusive).
    pub from: Option<i64>,
    /// Before this time (unix seconds, exclusive).
    pub until: Option<i64>,
}

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

    /// Counts `e` into the row of its actor, action and outcome for the
    /// window starting at `window_start` (creating it at the first one), in
    /// one statement, so simultaneous refusals add up in one row.
    pub async fn audit_counted(&self, e: &AuditEntry, window_start: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, centre_id, case_id, action, outcome, detail, times, window_start) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
             ON CONFLICT (actor, action, outcome, window_start) \
             DO UPDATE SET times = audit_log.times + 1, at = excluded.at",
        )
        .bind(e.at)
        .bind(&e.actor)
        .bind(e.centre_id)
        .bind(e.case_id)
        .bind(&e.action)
        .bind(&e.outcome)
        .bind(&e.detail)
        .bind(window_start)
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
        let f = AuditFilter {
            centre_id,
            ..AuditFilter::default()
        };
        Ok(self
            .audit_page(&f, limit, 0)
            .await?
            .into_iter()
            .map(|l| l.entry)
            .collect())
    }

    /// Up to `limit` entries matching `f`, newest first, after skipping
    /// `offset`.
    pub async fn audit_page(
        &self,
        f: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditLine>, StoreError> {
        let rs = sqlx::query(
            "SELECT at, actor, centre_id, case_id, action, outcome, detail, times FROM audit_log \
             WHERE ($1 = -1 OR centre_id = $1) AND ($2 = '' OR action = $2) \
             AND ($3 = '' OR actor = $3) AND at >= $4 AND at < $5 \
             ORDER BY at DESC, id DESC LIMIT $6 OFFSET $7",
        )
        .bind(f.centre_id.unwrap_or(-1))
        .bind(f.action.clone().unwrap_or_default())
        .bind(f.actor.clone().unwrap_or_default())
        .bind(f.from.unwrap_or(i64::MIN))
        .bind(f.until.unwrap_or(i64::MAX))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rs.iter()
            .map(|r| {
                Ok(AuditLine {
                    entry: rows::audit(r)?,
                    times: r.try_get("times")?,
                })
            })
            .collect()
    }

    /// Deletes the entries older than `before` (unix seconds); how many.
    pub async fn prune_audit(&self, before: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
