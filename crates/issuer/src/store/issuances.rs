//! Processing-number issuances (table `issuances`): one row per number sent, its
//! delivery, and the statistics staff see.

use sqlx::Row;
use store_support::unique_violation;

use super::{IssuanceStats, Store, StoreError, rows};
use crate::domain::funnel::FunnelIssuance;
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

/// A delivery receipt's state (Twilio's `MessageStatus`, folded: `accepted`,
/// `queued`, `sending` and `sent` are all `Sent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Handed on by the gateway, not yet confirmed on the phone.
    Sent,
    /// On the phone.
    Delivered,
    /// The gateway could not send it.
    Failed,
    /// The carrier could not deliver it.
    Undelivered,
}

impl Receipt {
    /// Parses a Twilio `MessageStatus`; `None` for a status that says
    /// nothing about delivery (`read`, `scheduled`, `canceled`, unknown).
    pub fn parse(status: &str) -> Option<Self> {
        match status {
            "accepted" | "queued" | "sending" | "sent" => Some(Self::Sent),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            "undelivered" => Some(Self::Undelivered),
            _ => None,
        }
    }

    /// The reason kept with the receipt: the gateway's (at most 200
    /// characters), else the state itself.
    pub fn stored_reason(self, reason: Option<&str>) -> String {
        reason.map_or_else(
            || self.as_str().to_owned(),
            |r| r.chars().take(200).collect(),
        )
    }

    /// The stored `delivery_status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Undelivered => "undelivered",
        }
    }
}

/// One centre's last 24 hours, for the anomaly signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CentreDay {
    /// The centre.
    pub centre_id: i64,
    /// Numbers issued in the last 24 h.
    pub issued_24h: i64,
    /// Registrations (numbers used) in the last 24 h.
    pub registered_24h: i64,
}

/// What `/metrics` reports for alerting (see [`Store::anomaly_signals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnomalySignals {
    /// Centres with a number issued or used in the last 24 h.
    pub centres: Vec<CentreDay>,
    /// Numbers issued in the last hour.
    pub messages_last_hour: i64,
    /// Of them, messages that failed or were undelivered.
    pub failed_last_hour: i64,
    /// Issue time of the oldest message not yet handed to a gateway.
    pub oldest_pending: Option<i64>,
    /// Hand-off time of the oldest message still without its receipt.
    pub oldest_awaiting_receipt: Option<i64>,
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
        self.insert_issuance_with(n, None, None).await
    }

    /// [`Store::insert_issuance`] and, in the same transaction, the
    /// message that carries the number as a row of the send queue (sealed),
    /// due at once: "a message to send is a row written in the same
    /// transaction as the issuance" (issue 13).
    pub async fn insert_issuance_queued(
        &self,
        n: &NewIssuance<'_>,
        msg: &crate::delivery::Message,
    ) -> Result<i64, IssueError> {
        self.insert_issuance_with(n, None, Some((msg, &[]))).await
    }

    /// [`Store::insert_issuance_queued`], recording the validity the number
    /// was issued with (`n.expires_at` is then the in-transit ceiling,
    /// [`rules::expires_in_transit`]; hand-off or delivery sets the real
    /// expiry), and the held messages (fallback, reminder) written in the
    /// same transaction: the number is not stored, so every message that
    /// carries it is sealed now or never.
    pub async fn insert_issuance_with_held(
        &self,
        n: &NewIssuance<'_>,
        validity_seconds: i64,
        msg: &crate::delivery::Message,
        held: &[super::HeldMessage],
    ) -> Result<i64, IssueError> {
        self.insert_issuance_with(n, Some(validity_seconds), Some((msg, held)))
            .await
    }

    async fn insert_issuance_with(
        &self,
        n: &NewIssuance<'_>,
        validity_seconds: Option<i64>,
        msg: Option<(&crate::delivery::Message, &[super::HeldMessage])>,
    ) -> Result<i64, IssueError> {
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
             delivery_status, issued_by, issued_at, expires_at, validity_seconds) \
             VALUES ($1, $2, $3, $4, 'issued', $5, 'pending', $6, $7, $8, $9) RETURNING id",
        )
        .bind(n.case_id)
        .bind(n.number_hmac)
        .bind(n.link_hmac)
        .bind(n.report_type.as_str())
        .bind(n.channel.as_str())
        .bind(n.issued_by)
        .bind(n.issued_at)
        .bind(n.expires_at)
        .bind(validity_seconds)
        .fetch_one(&mut *tx)
        .await;
        match r {
            Ok(row) => {
                let id: i64 = row.try_get("id").map_err(StoreError::from)?;
                if let Some((msg, held)) = msg {
                    self.insert_queue_row(
                        &mut tx,
                        id,
                        super::MessageKind::Number,
                        msg,
                        n.issued_at,
                        None,
                    )
                    .await?;
                    for h in held {
                        self.insert_queue_row(
                            &mut tx,
                            id,
                            h.kind,
                            &h.message,
                            n.issued_at,
                            Some(h.delay_seconds),
                        )
                        .await?;
                    }
                }
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

    /// Live numbers at `now` (issued, not yet expired, used or withdrawn): the `L` of the
    /// guessing odds ([`crate::limits`]).
    pub async fn live_numbers(&self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM issuances WHERE state = 'issued' AND expires_at > $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Records a successful hand-off to a channel without receipts (e-mail:
    /// accepted by the relay = sent). A number issued through the queue
    /// (its validity recorded) is valid from now: "validity counted ... from
    /// sending otherwise". A fallback's note (`fallback to email: …`) stays
    /// for staff to see.
    pub async fn mark_delivered(&self, issuance_id: i64, now: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE issuances SET delivery_status = 'sent', delivered_at = $1, sent_at = $1, \
             delivery_updated_at = $1, \
             delivery_error = CASE WHEN delivery_error LIKE 'fallback to %' \
             THEN delivery_error ELSE NULL END, \
             expires_at = CASE WHEN state = 'issued' AND validity_seconds IS NOT NULL \
             THEN $1 + validity_seconds ELSE expires_at END WHERE id = $2",
        )
        .bind(now)
        .bind(issuance_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the hand-off of a message to a gateway that sends receipts:
    /// `sent`, its `MessageSid`, and the number's expiry while in transit
    /// ([`rules::expires_in_transit`]); `delivered_at` waits for the
    /// receipt. (A receipt that arrives before the gateway's answer is read
    /// finds no `MessageSid` yet and is answered 404 `message_unknown`.)
    pub async fn mark_sent_awaiting_receipt(
        &self,
        issuance_id: i64,
        message_sid: &str,
        validity_seconds: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE issuances SET message_sid = $1, sent_at = $2, validity_seconds = $3, \
             delivery_updated_at = $2, delivery_status = 'sent', \
             delivery_error = CASE WHEN delivery_error LIKE 'fallback to %' \
             THEN delivery_error ELSE NULL END, \
             expires_at = CASE WHEN state = 'issued' THEN $4 ELSE expires_at END \
             WHERE id = $5 AND delivery_status = 'pending'",
        )
        .bind(message_sid)
        .bind(now)
        .bind(validity_seconds)
        .bind(rules::expires_in_transit(now, validity_seconds))
        .bind(issuance_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applies a delivery receipt (the gateway's status callback) to the
    /// issuance whose SMS has `message_sid`. States only move forward
    /// — pending → sent → delivered / failed / undelivered — so receipts in
    /// any order and duplicates are harmless. `delivered` starts the
    /// number's validity (delivery + the validity it was issued with),
    /// cancels the held fallback and releases the reminder (due N hours
    /// from delivery); `failed` and `undelivered` release the held
    /// fallback (the same number by e-mail) when the centre has one, and
    /// otherwise withdraw a live number (nobody received it) with the
    /// gateway's reason. Once a number has fallen back to e-mail its SMS's
    /// receipts change nothing. Returns `None` for an unknown message,
    /// else whether the state moved.
    pub async fn apply_receipt(
        &self,
        message_sid: &str,
        receipt: Receipt,
        reason: Option<&str>,
        now: i64,
    ) -> Result<Option<bool>, StoreError> {
        let rank = "CASE delivery_status WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 ELSE 2 END";
        let reason = receipt.stored_reason(reason);
        let Some(issuance_id) =
            sqlx::query_scalar::<_, i64>("SELECT id FROM issuances WHERE message_sid = $1")
                .bind(message_sid)
                .fetch_optional(&self.pool)
                .await?
        else {
            return Ok(None);
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let held_fallback: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM send_queue WHERE issuance_id = $1 AND kind = 'fallback' \
             AND status = 'held'",
        )
        .bind(issuance_id)
        .fetch_one(&mut *tx)
        .await?;
        let moved = match receipt {
            Receipt::Sent => sqlx::query(&format!(
                "UPDATE issuances SET delivery_status = 'sent', delivery_updated_at = $1 \
                 WHERE id = $2 AND channel = 'sms' AND {rank} < 1"
            ))
            .bind(now)
            .bind(issuance_id)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            Receipt::Delivered => {
                let n = sqlx::query(&format!(
                    "UPDATE issuances SET delivery_status = 'delivered', delivery_updated_at = $1, \
                     delivered_at = $1, delivery_error = NULL, \
                     expires_at = CASE WHEN state = 'issued' AND validity_seconds IS NOT NULL \
                     THEN $1 + validity_seconds ELSE expires_at END \
                     WHERE id = $2 AND channel = 'sms' AND {rank} < 2"
                ))
                .bind(now)
                .bind(issuance_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n > 0 {
                    sqlx::query(
                        "UPDATE send_queue SET status = 'cancelled', sealed_message = NULL, \
                         last_error = 'not needed: the SMS was delivered', finished_at = $1 \
                         WHERE issuance_id = $2 AND kind = 'fallback' AND status = 'held'",
                    )
                    .bind(now)
                    .bind(issuance_id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE send_queue SET status = 'queued', \
                         due_at = $1 + COALESCE(release_delay_seconds, 0) \
                         WHERE issuance_id = $2 AND kind = 'reminder' AND status = 'held'",
                    )
                    .bind(now)
                    .bind(issuance_id)
                    .execute(&mut *tx)
                    .await?;
                }
                n
            }
            Receipt::Failed | Receipt::Undelivered if held_fallback > 0 => {
                // The same number by e-mail: its validity waits for the
                // e-mail's hand-off (the in-transit ceiling meanwhile).
                let n = sqlx::query(&format!(
                    "UPDATE issuances SET channel = 'email', delivery_status = 'pending', \
                     delivery_updated_at = $1, delivery_error = $3, \
                     expires_at = CASE WHEN validity_seconds IS NOT NULL \
                     THEN $1 + $4 + validity_seconds ELSE expires_at END \
                     WHERE id = $2 AND channel = 'sms' AND state = 'issued' AND {rank} < 2"
                ))
                .bind(now)
                .bind(issuance_id)
                .bind(format!("fallback to email: {reason}"))
                .bind(rules::MAX_TRANSIT_SECONDS)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n > 0 {
                    sqlx::query(
                        "UPDATE send_queue SET status = 'queued', due_at = $1 \
                         WHERE issuance_id = $2 AND kind = 'fallback' AND status = 'held'",
                    )
                    .bind(now)
                    .bind(issuance_id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE send_queue SET status = 'cancelled', sealed_message = NULL, \
                         last_error = 'dropped: the number fell back to e-mail', finished_at = $1 \
                         WHERE issuance_id = $2 AND kind = 'reminder' AND status IN ('held', 'queued')",
                    )
                    .bind(now)
                    .bind(issuance_id)
                    .execute(&mut *tx)
                    .await?;
                }
                n
            }
            Receipt::Failed | Receipt::Undelivered => sqlx::query(&format!(
                "UPDATE issuances SET delivery_status = $3, delivery_updated_at = $1, \
                 delivery_error = $4, \
                 expires_at = CASE WHEN state = 'issued' THEN $1 ELSE expires_at END, \
                 state = CASE WHEN state = 'issued' THEN 'expired' ELSE state END \
                 WHERE id = $2 AND channel = 'sms' AND {rank} < 2"
            ))
            .bind(now)
            .bind(issuance_id)
            .bind(receipt.as_str())
            .bind(&reason)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        tx.commit().await?;
        Ok(Some(moved > 0))
    }

    /// Records that the number message failed for good and the number goes
    /// on by e-mail (the held fallback, released by the caller): the
    /// channel becomes `email`, delivery `pending` again, and the reason is
    /// kept as `fallback to email: <reason>` for staff. The reminder (written
    /// for the SMS) is dropped.
    pub async fn note_fallback(
        &self,
        issuance_id: i64,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let reason: String = reason.chars().take(400).collect();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE issuances SET channel = 'email', delivery_status = 'pending', \
             delivery_updated_at = $1, delivery_error = $2 WHERE id = $3",
        )
        .bind(now)
        .bind(format!("fallback to email: {reason}"))
        .bind(issuance_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE send_queue SET status = 'cancelled', sealed_message = NULL, \
             last_error = 'dropped: the number fell back to e-mail', finished_at = $1 \
             WHERE issuance_id = $2 AND kind = 'reminder' AND status IN ('held', 'queued')",
        )
        .bind(now)
        .bind(issuance_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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

    /// Ends the case's live number at once (a number sent to the wrong
    /// person, issue 13): its state becomes `expired` with `expires_at` now,
    /// so verification answers it as expired from this moment. Returns the
    /// issuance id, or `None` when the case had no live number.
    pub async fn expire_live_number(
        &self,
        case_id: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE issuances SET state = 'expired', expires_at = $1 \
             WHERE case_id = $2 AND state = 'issued' AND expires_at > $1 RETURNING id",
        )
        .bind(now)
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| r.get::<i64, _>(0)))
    }

    /// Withdraws the numbers whose delivery was left `pending` since before
    /// `issued_before` (a process stopped between issuing and sending): "no
    /// delivery stays pending forever" (issue 12, finding 7). Nobody can be
    /// known to have received them, so they must not stay usable; the
    /// centre sees `failed` with the reason and issues again. A number
    /// whose message waits in the send queue is not interrupted: the queue
    /// survives the restart and sends it. Returns how many.
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
             WHERE delivery_status = 'pending' AND issued_at < $2 \
             AND id NOT IN (SELECT issuance_id FROM send_queue \
             WHERE kind IN ('number', 'fallback') AND status IN ('queued', 'sending'))",
        )
        .bind(now)
        .bind(issued_before)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Counts of the numbers issued in `[from, until)` (unix seconds) by
    /// state and delivery, for a centre or nationally, and the median
    /// seconds from issue to registration. The canary's synthetic cases are
    /// not counted.
    pub async fn stats(
        &self,
        centre_id: Option<i64>,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<IssuanceStats, StoreError> {
        let rs = sqlx::query(
            "SELECT i.state, i.delivery_status, i.expires_at, i.issued_at, i.used_at FROM issuances i \
             JOIN cases c ON c.id = i.case_id WHERE ($1 = -1 OR c.centre_id = $1) \
             AND c.canary = 0 AND i.issued_at >= $2 AND i.issued_at < $3",
        )
        .bind(centre_id.unwrap_or(-1))
        .bind(from)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rows::stats(&rs, now)
    }

    /// The anomaly signals of `now` (issue 13), canary cases left out: per
    /// centre the numbers issued and the registrations of the last 24 h;
    /// the messages issued in the last hour and how many of them failed;
    /// the oldest message not yet handed to a gateway and the oldest handed
    /// over but still without its delivered receipt (last 7 days).
    pub async fn anomaly_signals(&self, now: i64) -> Result<AnomalySignals, StoreError> {
        let day = now - 86_400;
        let per_centre = |col: &'static str| {
            format!(
                "SELECT c.centre_id AS centre, COUNT(*) AS n FROM issuances i \
                 JOIN cases c ON c.id = i.case_id \
                 WHERE c.canary = 0 AND c.centre_id IS NOT NULL AND i.{col} >= $1 \
                 GROUP BY c.centre_id"
            )
        };
        let mut centres: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
        for (i, col) in ["issued_at", "used_at"].into_iter().enumerate() {
            let rs = sqlx::query(&per_centre(col))
                .bind(day)
                .fetch_all(&self.pool)
                .await?;
            for r in rs {
                let e = centres.entry(r.try_get("centre")?).or_default();
                let n: i64 = r.try_get("n")?;
                if i == 0 {
                    e.0 = n;
                } else {
                    e.1 = n;
                }
            }
        }
        let count = |sql: &'static str| async move {
            let r = sqlx::query(sql)
                .bind(now - 3600)
                .fetch_one(&self.pool)
                .await?;
            Ok::<i64, StoreError>(r.try_get(0)?)
        };
        let messages_last_hour = count(
            "SELECT COUNT(*) FROM issuances i JOIN cases c ON c.id = i.case_id \
             WHERE c.canary = 0 AND i.issued_at >= $1",
        )
        .await?;
        let failed_last_hour = count(
            "SELECT COUNT(*) FROM issuances i JOIN cases c ON c.id = i.case_id \
             WHERE c.canary = 0 AND i.issued_at >= $1 \
             AND i.delivery_status IN ('failed', 'undelivered')",
        )
        .await?;
        let oldest = |sql: &'static str| async move {
            let r = sqlx::query(sql)
                .bind(now - 7 * 86_400)
                .fetch_one(&self.pool)
                .await?;
            Ok::<Option<i64>, StoreError>(r.try_get(0)?)
        };
        let oldest_pending = oldest(
            "SELECT MIN(issued_at) FROM issuances \
             WHERE delivery_status = 'pending' AND issued_at >= $1",
        )
        .await?;
        let oldest_awaiting_receipt = oldest(
            "SELECT MIN(sent_at) FROM issuances WHERE delivery_status = 'sent' \
             AND message_sid IS NOT NULL AND delivered_at IS NULL AND state = 'issued' \
             AND issued_at >= $1",
        )
        .await?;
        Ok(AnomalySignals {
            centres: centres
                .into_iter()
                .map(|(id, (issued, registered))| CentreDay {
                    centre_id: id,
                    issued_24h: issued,
                    registered_24h: registered,
                })
                .collect(),
            messages_last_hour,
            failed_last_hour,
            oldest_pending,
            oldest_awaiting_receipt,
        })
    }

    /// Every issuance of the people (cases) whose first number was issued
    /// in `[from, until)`, for a centre or nationally, canary cases left
    /// out: the rows of [`crate::domain::funnel::funnel`].
    pub async fn funnel_rows(
        &self,
        centre_id: Option<i64>,
        from: i64,
        until: i64,
    ) -> Result<Vec<FunnelIssuance>, StoreError> {
        let rs = sqlx::query(
            "SELECT i.case_id, c.created_at, i.issued_at, i.delivery_status, i.used_at \
             FROM issuances i JOIN cases c ON c.id = i.case_id \
             WHERE ($1 = -1 OR c.centre_id = $1) AND c.canary = 0 AND i.case_id IN \
             (SELECT case_id FROM issuances GROUP BY case_id \
              HAVING MIN(issued_at) >= $2 AND MIN(issued_at) < $3)",
        )
        .bind(centre_id.unwrap_or(-1))
        .bind(from)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        rs.iter()
            .map(|r| {
                let delivery: String = r.try_get("delivery_status")?;
                Ok(FunnelIssuance {
                    case_id: r.try_get("case_id")?,
                    case_filed_at: r.try_get("created_at")?,
                    issued_at: r.try_get("issued_at")?,
                    delivered: matches!(delivery.as_str(), "sent" | "delivered"),
                    used_at: r.try_get("used_at")?,
                })
            })
            .collect()
    }
}
