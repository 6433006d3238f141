//! Delivery of processing numbers: SMS through a Twilio-compatible HTTP
//! gateway, e-mail through SMTP, or — for development — an outbox folder with
//! one JSON file per message. Tests use the in-memory backend.

mod outbox;
mod smtp;
mod template;
mod twilio;

use std::sync::{Arc, Mutex};

use crate::domain::model::Channel;

pub use outbox::OutboxMessage;
pub use smtp::{SmtpConfig, SmtpSender, SmtpTls};
pub use template::{MessageContext, render, render_reminder};
pub use twilio::{TwilioConfig, TwilioSender};

/// One message to send. Its body holds the processing number, so it never
/// prints in `Debug`.
#[derive(Clone)]
pub struct Message {
    /// SMS or e-mail.
    pub channel: Channel,
    /// Phone number (11 national digits) or e-mail address.
    pub to: String,
    /// E-mail subject.
    pub subject: Option<String>,
    /// Text.
    pub body: String,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// Why a message was not delivered (shown to staff; never holds the body),
/// and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    /// The reason, in the gateway's words.
    pub reason: String,
    /// The gateway refused the message for good (an invalid number, a
    /// mailbox that does not exist): retrying cannot help.
    pub permanent: bool,
}

impl DeliveryError {
    /// A failure that may pass (5xx, timeouts, connection refused).
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: false,
        }
    }

    /// A refusal for good.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            permanent: true,
        }
    }

    /// Whether the gateway refused the message for good: "permanent ones
    /// (4xx such as invalid number) go straight to dead-letter"; everything
    /// else (5xx, timeouts, connection refused) is retried. Which answers
    /// are permanent is decided where the answer is read: Twilio 4xx except
    /// 408 and 429, SMTP 5xx replies, an address that cannot be parsed.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

/// A message handed over: the gateway's id of it, and whether receipts
/// will follow (then a number's validity waits for the delivered receipt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The gateway's message id (`MessageSid`), when it gave one.
    pub message_sid: Option<String>,
    /// The gateway sends delivery receipts for it.
    pub receipts: bool,
}

/// A delivery backend.
#[derive(Debug, Clone)]
pub enum Sender {
    /// JSON files in a folder (development; `cocoa serve` without a gateway).
    Outbox(std::path::PathBuf),
    /// SMTP (e-mail only).
    Smtp(Arc<SmtpSender>),
    /// Twilio-compatible Messages API (SMS only).
    Twilio(Arc<TwilioSender>),
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<Message>>>),
    /// Always fails with this reason (tests of failure handling).
    Failing(String),
}

impl Sender {
    /// Sends one message.
    /// E-mail: accepted by the relay = sent (no receipts).
    pub async fn send(&self, msg: &Message, sent_at: i64) -> Result<Sent, DeliveryError> {
        match self {
            Self::Outbox(dir) => outbox::write(dir, msg, sent_at)
                .await
                .map(|()| Sent::default()),
            Self::Smtp(s) => s.send(msg).await.map(|()| Sent::default()),
            Self::Twilio(t) => {
                let message_sid = t.send(msg).await?;
                Ok(Sent {
                    receipts: t.receipts() && message_sid.is_some(),
                    message_sid,
                })
            }
            Self::Memory(v) => {
                v.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(msg.clone());
                Ok(Sent::default())
            }
            // "answered 4xx" in the reason makes the failure permanent, as
            // a gateway's 4xx would.
            Self::Failing(reason) => Err(DeliveryError {
                reason: reason.clone(),
                permanent: reason.contains("answered 4"),
            }),
        }
    }

    /// Whether this is a development or test backend (refused in production).
    pub fn is_fake(&self) -> bool {
        matches!(self, Self::Outbox(_) | Self::Memory(_) | Self::Failing(_))
    }
}

/// The backends per channel.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// For SMS.
    pub sms: Sender,
    /// For e-mail.
    pub email: Sender,
    /// For the canary's cases: the receiver of `cocoa canary` (a
    /// Twilio-compatible endpoint it serves). `None`: canary cases are refused.
    pub canary: Option<Sender>,
}

impl Delivery {
    /// SMS and e-mail to one backend; no canary channel.
    pub fn uniform(s: Sender) -> Self {
        Self {
            sms: s.clone(),
            email: s,
            canary: None,
        }
    }

    /// The same, with a canary channel.
    pub fn with_canary(mut self, canary: Sender) -> Self {
        self.canary = Some(canary);
        self
    }

    /// The SMS gateway that sends receipts to this issuer, if any.
    pub fn receipt_gateway(&self) -> Option<&TwilioSender> {
        match &self.sms {
            Sender::Twilio(t) if t.receipts() => Some(t),
            _ => None,
        }
    }

    /// Sends through the channel's backend.
    pub async fn send(&self, msg: &Message, sent_at: i64) -> Result<Sent, DeliveryError> {
        match msg.channel {
            Channel::Sms => self.sms.send(msg, sent_at).await,
            Channel::Email => self.email.send(msg, sent_at).await,
            Channel::Canary => match &self.canary {
                Some(s) => s.send(msg, sent_at).await,
                None => Err(DeliveryError::permanent("no canary channel is configured")),
            },
        }
    }
}

/// The send queue's retry policy (issue 13): attempt `n` failed with a
/// transient error is retried after `BACKOFF_FIRST_SECONDS · 2^(n-1)`,
/// capped at [`BACKOFF_CAP_SECONDS`]; after [`MAX_ATTEMPTS`] the message
/// is dead-lettered.
pub const BACKOFF_FIRST_SECONDS: i64 = 30;
/// The backoff's cap (15 minutes).
pub const BACKOFF_CAP_SECONDS: i64 = 15 * 60;
/// Gateway calls before a message is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 8;
/// How long a claimed message is held by its worker: a claim abandoned by
/// a crash is due again after this.
pub const CLAIM_LEASE_SECONDS: i64 = 120;

/// Seconds to wait after the failed attempt `attempt` (1-based).
pub fn backoff_seconds(attempt: u32) -> i64 {
    let shift = attempt.saturating_sub(1).min(20);
    (BACKOFF_FIRST_SECONDS << shift).min(BACKOFF_CAP_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let v: Vec<i64> = (1..=8).map(backoff_seconds).collect();
        assert_eq!(v, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(backoff_seconds(u32::MAX), BACKOFF_CAP_SECONDS);
    }
}
