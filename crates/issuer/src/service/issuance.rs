//! Issuing a processing number (「処理番号発行」): draw, store, send.

use tracing::{info, instrument, warn};

use super::queue::Outcome;
use super::{Actor, Issuer};
use crate::delivery::{CLAIM_LEASE_SECONDS, Message, MessageContext, render, render_reminder};
use crate::domain::codes::{CodeKind, LinkCode, ProcessingNumber};
use crate::domain::model::{Centre, Channel, Issuance};
use crate::domain::rules;
use crate::domain::rules::Blocker;
use crate::error::{Error, Result};
use crate::store::{HeldMessage, IssueError, MessageKind, NewIssuance};

/// A sent number as the caller may see it: never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Issuance id.
    pub issuance_id: i64,
    /// Channel used.
    pub channel: Channel,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// Whether the case had a number before (a 再発行: the earlier one no
    /// longer works).
    pub reissue: bool,
    /// The gateway could not take the message yet: it waits in the send
    /// queue, which retries with backoff; the number is live and its
    /// validity starts when it is sent (`expires_at` is the ceiling until
    /// then).
    pub queued: bool,
}

impl Issuer {
    /// The case's latest issuance and how many came before it (expiry
    /// applied), for `GET /api/v1/cases/{id}/processing-number`: never the
    /// number, which is not stored.
    pub async fn number_status(
        &self,
        actor: &Actor,
        case_id: i64,
    ) -> Result<(Option<Issuance>, u32)> {
        self.case_for(actor, case_id).await?;
        let mut history = self.store.issuance_history(case_id, self.now()).await?;
        let earlier = u32::try_from(history.len().saturating_sub(1)).unwrap_or(u32::MAX);
        // Newest first.
        let latest = if history.is_empty() {
            None
        } else {
            Some(history.swap_remove(0))
        };
        Ok((latest, earlier))
    }

    /// Ends the case's live number at once (issue 13: "for a number sent to
    /// the wrong person"); a registration with it is then answered as
    /// expired. Audited as `expire_number`; [`Error::NoLiveNumber`] when
    /// there is none, and nothing changes.
    #[instrument(skip_all, fields(actor = %actor.name, case_id))]
    pub async fn expire_number(&self, actor: &Actor, case_id: i64) -> Result<()> {
        let case = self.case_for(actor, case_id).await?;
        let ended = self.store.expire_live_number(case_id, self.now()).await?;
        let (outcome, detail) = match ended {
            Some(id) => ("ok", format!("issuance_id={id}")),
            None => ("no_live_number", String::new()),
        };
        self.audit(
            actor,
            case.data.centre_id,
            Some(case_id),
            "expire_number",
            outcome,
            detail,
        )
        .await;
        match ended {
            Some(id) => {
                info!(case_id, issuance_id = id, "processing number ended");
                Ok(())
            }
            None => Err(Error::NoLiveNumber),
        }
    }

    /// Issues (or reissues) a processing number for a case and sends it
    /// through the send queue: the issuance and its sealed message (with
    /// the centre's fallback and reminder, held) commit together, then this
    /// request makes the first attempt. Checks
    /// [`rules::issuance_prerequisites`] and [`rules::reissue_allowed`]; the
    /// previous live number stops working at once. A gateway that is down
    /// or slow leaves the number live and queued ([`Issued::queued`]); a
    /// refusal for good withdraws it and the error says why — unless the
    /// centre falls back to e-mail, which is then sent with the same number.
    #[instrument(skip_all, fields(actor = %actor.name, case_id))]
    pub async fn issue(&self, actor: &Actor, case_id: i64) -> Result<Issued> {
        let r = self.issue_inner(actor, case_id).await;
        let (outcome, detail) = match &r {
            // A number waiting in the send queue is live: audited as
            // `queued`, so the log says it was not sent yet.
            Ok(i) => (
                if i.queued { "queued" } else { "ok" }.to_owned(),
                format!("channel={} expires_at={}", i.channel.as_str(), i.expires_at),
            ),
            Err(Error::Blocked(b)) => (
                b.first().map_or("blocked", |b| b.code()).to_owned(),
                b.iter().map(|b| b.code()).collect::<Vec<_>>().join(","),
            ),
            Err(Error::DeliveryFailed(reason)) => ("delivery_failed".to_owned(), reason.clone()),
            Err(Error::CaseNotFound) => ("case_not_found".to_owned(), String::new()),
            Err(_) => ("internal_error".to_owned(), String::new()),
        };
        let centre = match &r {
            Err(Error::CaseNotFound) => actor.centre_id,
            _ => self
                .store
                .case(case_id)
                .await
                .ok()
                .flatten()
                .and_then(|c| c.data.centre_id),
        };
        // The audit log says 再発行 for a reissue (issue 13).
        let action = match &r {
            Ok(i) if i.reissue => "reissue_number",
            _ => "issue_number",
        };
        self.audit(actor, centre, Some(case_id), action, &outcome, detail)
            .await;
        r
    }

    async fn issue_inner(&self, actor: &Actor, case_id: i64) -> Result<Issued> {
        let case = self.case_for(actor, case_id).await?;
        let centre: Option<Centre> = match case.data.centre_id {
            Some(c) => self.store.centre(c).await?,
            None => None,
        };
        let report_type =
            rules::issuance_prerequisites(&case.data, centre.as_ref()).map_err(Error::Blocked)?;
        let centre = centre.ok_or(Error::Blocked(vec![Blocker::MissingCentre]))?;
        let now = self.now();
        let history = self.store.issuance_history(case_id, now).await?;
        let states: Vec<_> = history.iter().map(|i| i.state).collect();
        let reissue = !history.is_empty();
        rules::reissue_allowed(&states).map_err(|b| Error::Blocked(vec![b]))?;
        let (channel, to) = match (&case.data.mobile, &case.data.email) {
            _ if case.canary => (Channel::Canary, format!("canary-case-{case_id}")),
            (Some(m), _) => (Channel::Sms, m.clone()),
            (None, Some(e)) => (Channel::Email, e.clone()),
            (None, None) => return Err(Error::Blocked(vec![Blocker::MissingContact])),
        };
        let validity = rules::expires_at(now, &centre) - now;
        // Until the message is handed off (or, with receipts, delivered)
        // the number's expiry is the in-transit ceiling: "a gateway backlog
        // never expires a number in transit".
        let expires_at = rules::expires_in_transit(now, validity);
        let validity_hours = (validity + 1800) / 3600;
        let mut attempt = 0;
        let id = loop {
            attempt += 1;
            let (number, link) =
                self.with_rng(|r| (ProcessingNumber::generate(r), LinkCode::generate(r)));
            let ctx = MessageContext {
                number: &number,
                link: &link,
                link_host: &self.settings.link_host,
                expires_at: now + validity,
                validity_hours,
                help_phone: &self.settings.help_phone,
                help_hours: &self.settings.help_hours,
            };
            let (subject, body) = render(channel, &ctx);
            let msg = Message {
                channel,
                to: to.clone(),
                subject,
                body,
            };
            // The messages that may carry the number later are written now,
            // sealed: the number is not stored anywhere after this.
            let mut held = Vec::new();
            if centre.delivery_fallback
                && channel == Channel::Sms
                && let Some(email) = &case.data.email
            {
                let (subject, body) = render(Channel::Email, &ctx);
                held.push(HeldMessage {
                    kind: MessageKind::Fallback,
                    message: Message {
                        channel: Channel::Email,
                        to: email.clone(),
                        subject,
                        body,
                    },
                    delay_seconds: 0,
                });
            }
            if let Some(h) = centre.reminder_after_hours
                && channel != Channel::Canary
            {
                let (subject, body) = render_reminder(channel, &ctx);
                held.push(HeldMessage {
                    kind: MessageKind::Reminder,
                    message: Message {
                        channel,
                        to: to.clone(),
                        subject,
                        body,
                    },
                    delay_seconds: i64::from(h) * 3600,
                });
            }
            let n = NewIssuance {
                case_id,
                number_hmac: &self.hasher.hash(CodeKind::Number, number.expose()),
                link_hmac: &self.hasher.hash(CodeKind::Link, link.expose()),
                report_type,
                channel,
                issued_by: &actor.name,
                issued_at: now,
                expires_at,
            };
            match self
                .store
                .insert_issuance_with_held(&n, validity, &msg, &held)
                .await
            {
                Ok(id) => break id,
                Err(IssueError::Collision) if attempt < 20 => continue,
                Err(IssueError::Collision) => {
                    return Err(
                        anyhow::anyhow!("no free processing number after {attempt} draws").into(),
                    );
                }
                Err(IssueError::Refused(b)) => return Err(Error::Blocked(vec![b])),
                Err(IssueError::Store(e)) => return Err(e.into()),
            }
        };
        // The request makes the first attempt itself; the send queue makes
        // the rest (and the first, should this process stop right here).
        let claimed = self
            .store
            .claim_message(id, MessageKind::Number, now, CLAIM_LEASE_SECONDS)
            .await?;
        let outcome = match claimed {
            Some(c) => self.send_claimed(c).await?,
            // A worker took it first: it is on its way.
            None => Outcome::Retried("claimed by the send queue".into()),
        };
        let done = |channel: Channel, queued: bool| async move {
            let expires_at = self
                .store
                .issuance_history(case_id, self.now())
                .await?
                .into_iter()
                .find(|i| i.id == id)
                .map_or(expires_at, |i| i.expires_at);
            Ok::<_, Error>(Issued {
                issuance_id: id,
                channel,
                expires_at,
                reissue,
                queued,
            })
        };
        match outcome {
            Outcome::Sent => {
                info!(
                    case_id,
                    issuance_id = id,
                    channel = channel.as_str(),
                    "processing number sent"
                );
                done(channel, false).await
            }
            Outcome::FellBack(reason) => {
                // The fallback is due now: send it within this request too.
                warn!(case_id, issuance_id = id, reason = %reason, "number message refused; sending the e-mail fallback");
                let claimed = self
                    .store
                    .claim_message(id, MessageKind::Fallback, self.now(), CLAIM_LEASE_SECONDS)
                    .await?;
                let outcome = match claimed {
                    Some(c) => self.send_claimed(c).await?,
                    None => Outcome::Retried("claimed by the send queue".into()),
                };
                match outcome {
                    Outcome::Sent => done(Channel::Email, false).await,
                    Outcome::Retried(_) => done(Channel::Email, true).await,
                    Outcome::Dead(r) => Err(Error::DeliveryFailed(format!("{reason}; {r}"))),
                    Outcome::FellBack(r) => Err(Error::DeliveryFailed(r)),
                    Outcome::Cancelled => Err(Error::DeliveryFailed(reason)),
                }
            }
            Outcome::Retried(reason) => {
                warn!(case_id, issuance_id = id, reason = %reason, "gateway not reachable yet; the number waits in the send queue");
                done(channel, true).await
            }
            Outcome::Dead(reason) => {
                warn!(case_id, issuance_id = id, reason = %reason, "delivery failed; number withdrawn");
                Err(Error::DeliveryFailed(reason))
            }
            Outcome::Cancelled => Err(Error::DeliveryFailed(
                "the number was replaced before it was sent".into(),
            )),
        }
    }
}
