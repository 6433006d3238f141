//! The send-queue worker (issue 13, "Delivery lifecycle"): claims due
//! messages, sends them, and records the outcome — sent, retried later
//! with backoff, or dead-lettered.

use tracing::{info, warn};

use super::Issuer;
use crate::delivery::{CLAIM_LEASE_SECONDS, MAX_ATTEMPTS, backoff_seconds};
use crate::error::Result;
use crate::store::{ClaimedMessage, MessageKind};

/// What one pass of [`Issuer::process_send_queue`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuePass {
    /// Messages handed to a gateway.
    pub sent: usize,
    /// Messages put back for a later attempt.
    pub retried: usize,
    /// Messages given up.
    pub dead: usize,
    /// Messages not needed any more (their number stopped working), not sent.
    pub cancelled: usize,
}

/// What became of one claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Handed to the gateway.
    Sent,
    /// Failed for now; due again later. The reason of the attempt.
    Retried(String),
    /// Failed for good; the number goes on by e-mail (the held fallback,
    /// released). The reason of the failure.
    FellBack(String),
    /// Given up (dead-letter). The reason.
    Dead(String),
    /// Not sent: its number stopped working while it waited.
    Cancelled,
}

/// Messages one pass claims at most.
const BATCH: i64 = 50;

impl Issuer {
    /// One pass of the worker: cancels what dead numbers would still send
    /// (see [`crate::store::Store::cancel_messages_of_dead_numbers`]), then
    /// claims the due messages one by one and sends each once.
    /// "Transient gateway errors (5xx, timeouts, connection refused) retry;
    /// permanent ones (4xx such as invalid number) go straight to
    /// dead-letter", and so does a message after [`MAX_ATTEMPTS`]. A dead
    /// number message withdraws its number (nobody received it), unless
    /// the centre falls back to e-mail.
    pub async fn process_send_queue(&self) -> Result<QueuePass> {
        let mut pass = QueuePass::default();
        pass.cancelled += usize::try_from(
            self.store
                .cancel_messages_of_dead_numbers(self.now())
                .await?,
        )
        .unwrap_or(usize::MAX);
        // One claim per message, just before it is sent: a batch claimed at
        // once could outlive its lease behind slow gateway calls (20 s
        // timeout each) and be taken — and sent — by another worker.
        for _ in 0..BATCH {
            let claimed = self
                .store
                .claim_due_messages(self.now(), CLAIM_LEASE_SECONDS, 1)
                .await?;
            let Some(c) = claimed.into_iter().next() else {
                break;
            };
            match self.send_claimed(c).await? {
                Outcome::Sent | Outcome::FellBack(_) => pass.sent += 1,
                Outcome::Retried(_) => pass.retried += 1,
                Outcome::Dead(_) => pass.dead += 1,
                Outcome::Cancelled => pass.cancelled += 1,
            }
        }
        Ok(pass)
    }

    /// Sends one claimed message and records what became of it. Used by
    /// the worker and by the request that issues a number (its first
    /// attempt).
    pub(crate) async fn send_claimed(&self, c: ClaimedMessage) -> Result<Outcome> {
        // A number replaced by a reissue, ended or expired while its message
        // waited is not sent: it would not work.
        if !self.issuance_live(c.issuance_id).await? {
            let reason = "the number is no longer valid (reissued, ended or expired)";
            let now = self.now();
            if c.kind == MessageKind::Reminder {
                self.store
                    .cancel_claimed_message(c.id, &c.token, reason, now)
                    .await?;
                return Ok(Outcome::Cancelled);
            }
            self.store
                .dead_letter_message(c.id, &c.token, reason, now)
                .await?;
            return Ok(Outcome::Dead(reason.into()));
        }
        let r = self.delivery.send(&c.message, self.now()).await;
        let now = self.now();
        match r {
            Ok(sent) => {
                if !self
                    .store
                    .complete_message(c.id, &c.token, sent.message_sid.as_deref(), now)
                    .await?
                {
                    warn!(
                        queue_id = c.id,
                        "claim lost before the outcome was recorded"
                    );
                }
                if c.kind.carries_number() {
                    let validity = self.validity_of(c.issuance_id).await?;
                    match (&sent.message_sid, sent.receipts, validity) {
                        (Some(sid), true, Some(v)) => {
                            // The reminder and the fallback wait for the
                            // receipt.
                            self.store
                                .mark_sent_awaiting_receipt(c.issuance_id, sid, v, now)
                                .await?;
                        }
                        _ => {
                            self.store.mark_delivered(c.issuance_id, now).await?;
                            // Handed off without receipts: the fallback is
                            // not needed, the reminder's hours start now.
                            self.store
                                .cancel_message(
                                    c.issuance_id,
                                    MessageKind::Fallback,
                                    "not needed: the number message was sent",
                                    now,
                                )
                                .await?;
                            self.store
                                .release_held(c.issuance_id, MessageKind::Reminder, now)
                                .await?;
                        }
                    }
                }
                info!(
                    queue_id = c.id,
                    issuance_id = c.issuance_id,
                    kind = c.kind.as_str(),
                    attempts = c.attempts,
                    "queued message sent"
                );
                Ok(Outcome::Sent)
            }
            Err(e) if !e.is_permanent() && c.attempts < MAX_ATTEMPTS => {
                let due = now + backoff_seconds(c.attempts);
                self.store
                    .retry_message_later(c.id, &c.token, &e.reason, due)
                    .await?;
                warn!(queue_id = c.id, attempts = c.attempts, reason = %e.reason, retry_at = due, "delivery failed; will retry");
                Ok(Outcome::Retried(e.reason))
            }
            Err(e) => {
                self.store
                    .dead_letter_message(c.id, &c.token, &e.reason, now)
                    .await?;
                warn!(queue_id = c.id, attempts = c.attempts, reason = %e.reason, "delivery given up (dead-letter)");
                if c.kind == MessageKind::Number
                    && self
                        .store
                        .release_held(c.issuance_id, MessageKind::Fallback, now)
                        .await?
                {
                    // "Optional fallback to the other channel when one
                    // fails (per centre)": the same number by e-mail.
                    self.store
                        .note_fallback(c.issuance_id, &e.reason, now)
                        .await?;
                    info!(
                        issuance_id = c.issuance_id,
                        "number message failed; falling back to e-mail"
                    );
                    return Ok(Outcome::FellBack(e.reason));
                }
                if c.kind.carries_number() {
                    self.store
                        .mark_delivery_failed(c.issuance_id, &e.reason, now)
                        .await?;
                }
                Ok(Outcome::Dead(e.reason))
            }
        }
    }

    /// Whether the issuance's number is still live (issued, not expired).
    async fn issuance_live(&self, issuance_id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM issuances WHERE id = $1 AND state = 'issued' AND expires_at > $2",
        )
        .bind(issuance_id)
        .bind(self.now())
        .fetch_one(self.store.pool())
        .await
        .map_err(crate::store::StoreError::from)?;
        Ok(n > 0)
    }

    /// The validity (seconds) an issuance was issued with.
    async fn validity_of(&self, issuance_id: i64) -> Result<Option<i64>> {
        use sqlx::Row as _;
        let r = sqlx::query(
            "SELECT issued_at, expires_at, validity_seconds FROM issuances WHERE id = $1",
        )
        .bind(issuance_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(crate::store::StoreError::from)?;
        Ok(match r {
            Some(r) => {
                let a: i64 = r
                    .try_get("issued_at")
                    .map_err(crate::store::StoreError::from)?;
                let b: i64 = r
                    .try_get("expires_at")
                    .map_err(crate::store::StoreError::from)?;
                let v: Option<i64> = r
                    .try_get("validity_seconds")
                    .map_err(crate::store::StoreError::from)?;
                // Recorded at issue for numbers issued through the queue;
                // else the expiry set at issue tells it.
                Some(v.unwrap_or(b - a))
            }
            None => None,
        })
    }
}

/// Runs [`Issuer::process_send_queue`] every `every` until `stop` turns
/// true (the server's shutdown).
pub async fn run_send_queue(
    issuer: &Issuer,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        if let Err(e) = issuer.process_send_queue().await {
            warn!(error = %e, "send queue pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}
