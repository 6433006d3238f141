//! The send queue (table `send_queue`, migration 0009) and the per-centre
//! delivery settings (issue 13, "Delivery lifecycle").
//!
//! A message is a row; a worker claims due rows with an atomic conditional
//! `UPDATE` (only one claimer's `UPDATE` matches a row on either backend:
//! PostgreSQL re-checks the `WHERE` after waiting for the row lock, SQLite
//! has one writer), sends, and records the outcome. A claim is a lease: a
//! row claimed by a process that crashed is due again once `claimed_until`
//! has passed. The message text is sealed under the server secret and
//! cleared once the row is sent or dead-lettered: "the processing number
//! never appears in a database, log or screen after it is sent".

use sqlx::Row;

use super::{Receipt, Store, StoreError};
use crate::delivery::Message;
use crate::domain::model::Channel;

/// The purpose the message sealing key is derived for.
pub(super) const MESSAGE_SEALING_PURPOSE: &str = "issuer queued message";

/// A centre's delivery settings (both off by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliverySettings {
    /// When a message fails permanently, send it through the case's other
    /// channel (SMS → e-mail, e-mail → SMS) if the case has one.
    pub fallback: bool,
    /// Send ONE reminder when the number is still unused this many hours
    /// after delivery; `None`: no reminder.
    pub reminder_after_hours: Option<u32>,
}

/// What a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// The message that carries the processing number.
    Number,
    /// The one reminder of an unused number.
    Reminder,
    /// The same number through the case's other channel (e-mail), sent
    /// only when the number message fails for good.
    Fallback,
}

impl MessageKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Reminder => "reminder",
            Self::Fallback => "fallback",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "number" => Some(Self::Number),
            "reminder" => Some(Self::Reminder),
            "fallback" => Some(Self::Fallback),
            _ => None,
        }
    }

    /// Whether the message is how the number reaches its owner (the number
    /// message, or its fallback): its hand-off and receipts start the
    /// number's validity, and its failure withdraws the number.
    pub fn carries_number(self) -> bool {
        matches!(self, Self::Number | Self::Fallback)
    }
}

/// A message written with the issuance but held back until released
/// ([`Store::release_held`]): the fallback and the reminder.
#[derive(Debug)]
pub struct HeldMessage {
    /// Fallback or reminder.
    pub kind: MessageKind,
    /// The message (sealed when stored).
    pub message: Message,
    /// Seconds from its release to when it is due (the reminder's N hours).
    pub delay_seconds: i64,
}

/// Where a number's own message stands in the queue, for the case page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    /// `queued`, `sending`, `sent`, `dead`, `held` or `cancelled`.
    pub status: String,
    /// The last failed attempt's reason.
    pub last_error: Option<String>,
    /// Gateway calls so far.
    pub attempts: u32,
    /// When the next attempt is due (unix seconds).
    pub due_at: i64,
    /// When it was sent, given up or cancelled (unix seconds).
    pub finished_at: Option<i64>,
    /// The gateway's last receipt for it (`sent`, `delivered`, `failed`,
    /// `undelivered`); `None` before any, and for e-mail.
    pub receipt_status: Option<String>,
}

/// A row claimed by [`Store::claim_due_messages`], its message opened.
#[derive(Debug)]
pub struct ClaimedMessage {
    /// Queue row id.
    pub id: i64,
    /// The issuance it belongs to.
    pub issuance_id: i64,
    /// Number or reminder.
    pub kind: MessageKind,
    /// Gateway calls so far, this one included.
    pub attempts: u32,
    /// The claim's token: the outcome is recorded only with it.
    pub token: String,
    /// The message (never printed: see [`Message`]'s `Debug`).
    pub message: Message,
}

/// A dead-lettered message, as staff see it: never the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Queue row id.
    pub id: i64,
    /// The issuance.
    pub issuance_id: i64,
    /// Number or reminder.
    pub kind: MessageKind,
    /// SMS or e-mail.
    pub channel: Channel,
    /// Gateway calls made.
    pub attempts: u32,
    /// The last reason.
    pub reason: String,
    /// When it was given up (unix seconds).
    pub at: i64,
}

/// The wire form of a sealed message.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedForm {
    subject: Option<String>,
    body: String,
}

/// A row a worker may claim at `$1`: queued and due, or claimed by a
/// worker whose lease ran out.
const DUE: &str = "((status = 'queued' AND due_at <= $1) \
                   OR (status = 'sending' AND claimed_until <= $1))";

fn row_label(issuance_id: i64, kind: MessageKind) -> String {
    format!("send_queue:{issuance_id}:{}", kind.as_str())
}

impl Store {
    /// Saves a centre's delivery settings: `fallback` to the other channel
    /// on a permanent failure, and a reminder `reminder_after_hours` after
    /// delivery (`None`: none). Both are off for a new centre. Returns
    /// whether the centre exists.
    pub async fn set_centre_delivery_settings(
        &self,
        centre_id: i64,
        fallback: bool,
        reminder_after_hours: Option<u32>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE centres SET delivery_fallback = $1, reminder_after_hours = $2 WHERE id = $3",
        )
        .bind(i64::from(fallback))
        .bind(reminder_after_hours.map(i64::from))
        .bind(centre_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// A centre's delivery settings; `None` for an unknown centre.
    pub async fn centre_delivery_settings(
        &self,
        centre_id: i64,
    ) -> Result<Option<DeliverySettings>, StoreError> {
        let r = sqlx::query(
            "SELECT delivery_fallback, reminder_after_hours FROM centres WHERE id = $1",
        )
        .bind(centre_id)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            let f: i64 = r.try_get("delivery_fallback")?;
            let h: Option<i64> = r.try_get("reminder_after_hours")?;
            Ok(DeliverySettings {
                fallback: f != 0,
                reminder_after_hours: h
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| StoreError::Corrupt("centres.reminder_after_hours"))?,
            })
        })
        .transpose()
    }

    fn seal_message(&self, msg: &Message, label: &str) -> Result<String, StoreError> {
        let key = self.message_sealing.get().ok_or(StoreError::NoSealingKey)?;
        let plain = serde_json::to_vec(&SealedForm {
            subject: msg.subject.clone(),
            body: msg.body.clone(),
        })
        .map_err(|_| StoreError::Corrupt("send_queue.sealed_message"))?;
        let plain = zeroize::Zeroizing::new(plain);
        let mut nonce = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        Ok(key.seal(&plain, label, nonce))
    }

    /// Inserts a queue row (in `tx`): due at `now`, or held back until
    /// released when `held_delay` is given (then due that many seconds
    /// after its release).
    pub(super) async fn insert_queue_row(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        issuance_id: i64,
        kind: MessageKind,
        msg: &Message,
        now: i64,
        held_delay: Option<i64>,
    ) -> Result<(), StoreError> {
        let sealed = self.seal_message(msg, &row_label(issuance_id, kind))?;
        sqlx::query(
            "INSERT INTO send_queue (issuance_id, kind, channel, recipient, sealed_message, \
             status, attempts, due_at, created_at, release_delay_seconds) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $8)",
        )
        .bind(issuance_id)
        .bind(kind.as_str())
        .bind(msg.channel.as_str())
        .bind(&msg.to)
        .bind(sealed)
        .bind(if held_delay.is_some() {
            "held"
        } else {
            "queued"
        })
        .bind(now)
        .bind(held_delay)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Releases the issuance's held message of `kind`: due
    /// `release_delay_seconds` after `now`. Returns whether one was held.
    pub async fn release_held(
        &self,
        issuance_id: i64,
        kind: MessageKind,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE send_queue SET status = 'queued', \
             due_at = $1 + COALESCE(release_delay_seconds, 0) \
             WHERE issuance_id = $2 AND kind = $3 AND status = 'held'",
        )
        .bind(now)
        .bind(issuance_id)
        .bind(kind.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Cancels the issuance's unsent message of `kind` (held or queued, not
    /// claimed) and clears its text. Returns whether there was one.
    pub async fn cancel_message(
        &self,
        issuance_id: i64,
        kind: MessageKind,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE send_queue SET status = 'cancelled', sealed_message = NULL, \
             last_error = $1, finished_at = $2 \
             WHERE issuance_id = $3 AND kind = $4 AND status IN ('held', 'queued')",
        )
        .bind(reason)
        .bind(now)
        .bind(issuance_id)
        .bind(kind.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Cancels a claimed row (its number stopped working while it waited)
    /// and clears its text.
    pub async fn cancel_claimed_message(
        &self,
        id: i64,
        token: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE send_queue SET status = 'cancelled', sealed_message = NULL, \
             claim_token = NULL, claimed_until = NULL, last_error = $1, finished_at = $2 \
             WHERE id = $3 AND claim_token = $4 AND status = 'sending'",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Cancels the held messages, and the queued reminders, of numbers that
    /// no longer work (used, reissued, ended, withdrawn or expired at
    /// `now`): a reminder "never more" than once, and never for a number
    /// that cannot be used. Returns how many.
    pub async fn cancel_messages_of_dead_numbers(&self, now: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE send_queue SET status = 'cancelled', sealed_message = NULL, \
             last_error = 'the number no longer works (used, reissued, ended or expired)', \
             finished_at = $1 \
             WHERE (status = 'held' OR (status = 'queued' AND kind = 'reminder')) \
             AND issuance_id IN (SELECT id FROM issuances \
             WHERE state <> 'issued' OR expires_at <= $1)",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Where the issuance's message of `kind` stands; `None` when it has
    /// none.
    pub async fn message_state(
        &self,
        issuance_id: i64,
        kind: MessageKind,
    ) -> Result<Option<QueueState>, StoreError> {
        let r = sqlx::query(
            "SELECT status, last_error, attempts, due_at, finished_at, receipt_status \
             FROM send_queue WHERE issuance_id = $1 AND kind = $2",
        )
        .bind(issuance_id)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            Ok(QueueState {
                status: r.try_get("status")?,
                last_error: r.try_get("last_error")?,
                attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
                due_at: r.try_get("due_at")?,
                finished_at: r.try_get("finished_at")?,
                receipt_status: r.try_get("receipt_status")?,
            })
        })
        .transpose()
    }

    /// Queues a message of `kind` for an issuance, due at `now`. At most one
    /// row of each kind per issuance: returns `false` (and queues nothing)
    /// when there is one already, so a reminder is queued once, ever.
    pub async fn enqueue_message(
        &self,
        issuance_id: i64,
        kind: MessageKind,
        msg: &Message,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        match self
            .insert_queue_row(&mut tx, issuance_id, kind, msg, now, None)
            .await
        {
            Ok(()) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(StoreError::Db(e)) if store_support::unique_violation(&e) => {
                tx.rollback().await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Claims up to `limit` due rows for `lease_seconds`: queued rows due at
    /// `now`, and rows whose earlier claim's lease has run out (a crashed
    /// worker's). Each claim is one conditional `UPDATE`, so two workers
    /// never claim one row at once. Counts the attempt.
    pub async fn claim_due_messages(
        &self,
        now: i64,
        lease_seconds: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMessage>, StoreError> {
        let ids: Vec<i64> = sqlx::query(&format!(
            "SELECT id FROM send_queue WHERE {DUE} ORDER BY due_at, id LIMIT $2"
        ))
        .bind(now)
        // A few more candidates than wanted: another worker may take some.
        .bind(limit + 16)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for id in ids {
            if out.len() as i64 >= limit {
                break;
            }
            if let Some(c) = self.claim_row(id, now, lease_seconds).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Claims the issuance's message of `kind` if it is due (the request
    /// that issues a number makes the first attempt itself; the worker
    /// makes the rest). `None` when it is not due or another worker has it.
    pub async fn claim_message(
        &self,
        issuance_id: i64,
        kind: MessageKind,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM send_queue WHERE issuance_id = $1 AND kind = $2")
                .bind(issuance_id)
                .bind(kind.as_str())
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some(id) => self.claim_row(id, now, lease_seconds).await,
            None => Ok(None),
        }
    }

    /// One conditional `UPDATE` claims row `id` if it is due; then its
    /// message is opened.
    async fn claim_row(
        &self,
        id: i64,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Option<ClaimedMessage>, StoreError> {
        let mut t = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut t);
        let token: String = t.iter().map(|b| format!("{b:02x}")).collect();
        let claimed = {
            let _turn = self.write_turn().await;
            sqlx::query(&format!(
                "UPDATE send_queue SET status = 'sending', claim_token = $2, \
                 claimed_until = $3, attempts = attempts + 1 WHERE id = $4 AND {DUE}"
            ))
            .bind(now)
            .bind(&token)
            .bind(now + lease_seconds)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1
        };
        if !claimed {
            return Ok(None);
        }
        let r = sqlx::query(
            "SELECT issuance_id, kind, channel, recipient, sealed_message, attempts \
             FROM send_queue WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        let issuance_id: i64 = r.try_get("issuance_id")?;
        let kind = MessageKind::parse(&r.try_get::<String, _>("kind")?)
            .ok_or(StoreError::Corrupt("send_queue.kind"))?;
        let channel = Channel::parse(&r.try_get::<String, _>("channel")?)
            .ok_or(StoreError::Corrupt("send_queue.channel"))?;
        let sealed: Option<String> = r.try_get("sealed_message")?;
        let Some(sealed) = sealed else {
            // Nothing left to send (cleared): give the row up.
            self.dead_letter_message(id, &token, "message text no longer stored", now)
                .await?;
            return Ok(None);
        };
        let key = self.message_sealing.get().ok_or(StoreError::NoSealingKey)?;
        let plain = key.open(&sealed, &row_label(issuance_id, kind))?;
        let form: SealedForm = serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Corrupt("send_queue.sealed_message"))?;
        let attempts: i64 = r.try_get("attempts")?;
        Ok(Some(ClaimedMessage {
            id,
            issuance_id,
            kind,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            token,
            message: Message {
                channel,
                to: r.try_get("recipient")?,
                subject: form.subject,
                body: form.body,
            },
        }))
    }

    /// Records a claimed row as sent and clears its text, keeping the
    /// gateway's `MessageSid` (when it gave one) so that the message's
    /// receipts find it ([`Store::apply_message_receipt`]). Returns `false`
    /// when the claim was lost (its lease ran out and another worker took
    /// the row).
    pub async fn complete_message(
        &self,
        id: i64,
        token: &str,
        message_sid: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE send_queue SET status = 'sent', sealed_message = NULL, claim_token = NULL, \
             claimed_until = NULL, last_error = NULL, finished_at = $1, message_sid = $4 \
             WHERE id = $2 AND claim_token = $3 AND status = 'sending'",
        )
        .bind(now)
        .bind(id)
        .bind(token)
        .bind(message_sid)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a delivery receipt for a queued message that is not a
    /// number's own SMS (whose receipts go to its issuance,
    /// [`Store::apply_receipt`]): the reminder. Issue 13: "states queued →
    /// sent → delivered / failed / undelivered"; they only move forward,
    /// so receipts in any order and duplicates change nothing. A failed
    /// reminder is not sent again ("one reminder …, never more"). Returns
    /// `None` when no queued message has `message_sid`, else whether the
    /// state moved.
    pub async fn apply_message_receipt(
        &self,
        message_sid: &str,
        receipt: Receipt,
        reason: Option<&str>,
    ) -> Result<Option<bool>, StoreError> {
        let rank = |r: Receipt| match r {
            Receipt::Sent => 1,
            Receipt::Delivered | Receipt::Failed | Receipt::Undelivered => 2,
        };
        let reason: Option<String> = match receipt {
            Receipt::Failed | Receipt::Undelivered => Some(receipt.stored_reason(reason)),
            Receipt::Sent | Receipt::Delivered => None,
        };
        let _turn = self.write_turn().await;
        let moved = sqlx::query(
            "UPDATE send_queue SET receipt_status = $1, last_error = COALESCE($2, last_error) \
             WHERE message_sid = $3 AND (CASE WHEN receipt_status IS NULL THEN 0 \
             WHEN receipt_status = 'sent' THEN 1 ELSE 2 END) < $4",
        )
        .bind(receipt.as_str())
        .bind(reason)
        .bind(message_sid)
        .bind(rank(receipt))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if moved > 0 {
            return Ok(Some(true));
        }
        let known: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM send_queue WHERE message_sid = $1")
                .bind(message_sid)
                .fetch_one(&self.pool)
                .await?;
        Ok((known > 0).then_some(false))
    }

    /// Puts a claimed row back, due at `due_at`, with the reason of the
    /// failed attempt.
    pub async fn retry_message_later(
        &self,
        id: i64,
        token: &str,
        reason: &str,
        due_at: i64,
    ) -> Result<bool, StoreError> {
        let reason: String = reason.chars().take(500).collect();
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE send_queue SET status = 'queued', claim_token = NULL, claimed_until = NULL, \
             last_error = $1, due_at = $2 WHERE id = $3 AND claim_token = $4 AND status = 'sending'",
        )
        .bind(reason)
        .bind(due_at)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Gives a claimed row up (dead-letter) with the reason, and clears its
    /// text.
    pub async fn dead_letter_message(
        &self,
        id: i64,
        token: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let reason: String = reason.chars().take(500).collect();
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE send_queue SET status = 'dead', sealed_message = NULL, claim_token = NULL, \
             claimed_until = NULL, last_error = $1, finished_at = $2 \
             WHERE id = $3 AND claim_token = $4 AND status = 'sending'",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The dead-lettered messages of a case, newest first.
    pub async fn dead_letters(&self, case_id: i64) -> Result<Vec<DeadLetter>, StoreError> {
        let rs = sqlx::query(
            "SELECT q.id, q.issuance_id, q.kind, q.channel, q.attempts, q.last_error, q.finished_at \
             FROM send_queue q JOIN issuances i ON i.id = q.issuance_id \
             WHERE i.case_id = $1 AND q.status = 'dead' ORDER BY q.id DESC",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rs.iter()
            .map(|r| {
                Ok(DeadLetter {
                    id: r.try_get("id")?,
                    issuance_id: r.try_get("issuance_id")?,
                    kind: MessageKind::parse(&r.try_get::<String, _>("kind")?)
                        .ok_or(StoreError::Corrupt("send_queue.kind"))?,
                    channel: Channel::parse(&r.try_get::<String, _>("channel")?)
                        .ok_or(StoreError::Corrupt("send_queue.channel"))?,
                    attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
                    reason: r
                        .try_get::<Option<String>, _>("last_error")?
                        .unwrap_or_default(),
                    at: r.try_get::<Option<i64>, _>("finished_at")?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// How many messages are dead-lettered (the `issuer_delivery_dead_letters` gauge).
    pub async fn dead_letter_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM send_queue WHERE status = 'dead'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Since when the longest-waiting message has waited at `now`: its
    /// creation, or for a released reminder the time it fell due (a
    /// reminder is not late while its N hours run; held rows are not
    /// waiting).
    pub async fn oldest_queued(&self, now: i64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(CASE WHEN kind = 'reminder' THEN due_at ELSE created_at END) \
             FROM send_queue WHERE status IN ('queued', 'sending') \
             AND NOT (kind = 'reminder' AND due_at > $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }
}
