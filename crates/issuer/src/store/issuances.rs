//! Processing-number issuances (table `issuances`): one row per number sent, its
//! delivery, and the statistics staff see.

use sqlx::Row;
use store_support::unique_violation;

use super::{IssuanceStats, Store, StoreError, rows};
use crate::domain::model::{Channel, Issuance, IssuanceState, ReportType};
use crate::domain::rules;
use crate::domain::rules::Blocker;

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

impl Store {
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

    /// Withdraws the numbers whose delivery was left `pending` since before
    /// `issued_before` (a process stopped between issuing and sending): "no
    /// delivery stays pending forever" (issue 12, finding 7). Nobody can be
    /// known to have received them, so they must not stay usable; the
    /// centre sees `failed` with the reason and issues again. Returns how
    /// many.
    pub async fn fail_interrupted_deliveries(
        &self,
        issued_before: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE issuances SET delivery_status = 'failed', \
             delivery_error = 'interrupted: the server stopped before the message was sent', \
             state = CASE WHEN state = 'issued' THEN 'expired' ELSE state END, \
             expires_at = CASE WHEN state = 'issued' THEN $1 ELSE expires_at END \
             WHERE delivery_status = 'pending' AND issued_at < $2",
        )
        .bind(now)
        .bind(issued_before)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
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
}
