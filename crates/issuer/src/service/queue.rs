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
}

/// Messages one pass claims at most.
const BATCH: i64 = 50;

impl Issuer {
    /// One pass of the worker: claims the due messages (see
    /// [`crate::store::Store::claim_due_messages`]) and sends each once.
    /// "Transient gateway errors (5xx, timeouts, connection refused) retry;
    /// permanent ones (4xx such as invalid number) go straight to
    /// dead-letter", and so does a message after [`MAX_ATTEMPTS`]. A dead
    /// number message withdraws its number (nobody received it).
    pub async fn process_send_queue(&self) -> Result<QueuePass> {
        // One claim per message, just before it is sent: a batch claimed at
        // once could outlive its lease behind slow gateway calls (20 s
        // timeout each) and be taken — and sent — by another worker.
        let mut pass = QueuePass::default();
        for _ in 0..BATCH {
            let claimed = self
                .store
                .claim_due_messages(self.now(), CLAIM_LEASE_SECONDS, 1)
                .await?;
            let Some(c) = claimed.into_iter().next() else {
                break;
            };
            self.send_claimed(c, &mut pass).await?;
        }
        Ok(pass)
    }

    async fn send_claimed(&self, c: ClaimedMessage, pass: &mut QueuePass) -> Result<()> {
        // A number replaced by a reissue, ended or expired while its message
        // waited is not sent: it would not work.
        if !self.issuance_live(c.issuance_id).await? {
            self.store
                .dead_letter_message(
                    c.id,
                    &c.token,
                    "the number is no longer valid (reissued, ended or expired)",
                    self.now(),
                )
                .await?;
            pass.dead += 1;
            return Ok(());
        }
        let r = self.delivery.send(&c.message, self.now()).await;
        let now = self.now();
        match r {
            Ok(sent) => {
                if !self.store.complete_message(c.id, &c.token, now).await? {
                    warn!(
                        queue_id = c.id,
                        "claim lost before the outcome was recorded"
                    );
                }
                if c.kind == MessageKind::Number {
                    let validity = self.validity_of(c.issuance_id).await?;
                    match (&sent.message_sid, sent.receipts, validity) {
                        (Some(sid), true, Some(v)) => {
                            self.store
                                .mark_sent_awaiting_receipt(c.issuance_id, sid, v, now)
                                .await?;
                        }
                        _ => self.store.mark_delivered(c.issuance_id, now).await?,
                    }
                }
                info!(
                    queue_id = c.id,
                    issuance_id = c.issuance_id,
                    kind = c.kind.as_str(),
                    attempts = c.attempts,
                    "queued message sent"
                );
                pass.sent += 1;
            }
            Err(e) if !e.is_permanent() && c.attempts < MAX_ATTEMPTS => {
                let due = now + backoff_seconds(c.attempts);
                self.store
                    .retry_message_later(c.id, &c.token, &e.0, due)
                    .await?;
                warn!(queue_id = c.id, attempts = c.attempts, reason = %e.0, retry_at = due, "delivery failed; will retry");
                pass.retried += 1;
            }
            Err(e) => {
                self.store
                    .dead_letter_message(c.id, &c.token, &e.0, now)
                    .await?;
                if c.kind == MessageKind::Number {
                    self.store
                        .mark_delivery_failed(c.issuance_id, &e.0, now)
                        .await?;
                }
                warn!(queue_id = c.id, attempts = c.attempts, reason = %e.0, "delivery given up (dead-letter)");
                pass.dead += 1;
            }
        }
        Ok(())
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
        let r = sqlx::query("SELECT issued_at, expires_at FROM issuances WHERE id = $1")
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
                Some(b - a)
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
