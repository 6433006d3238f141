//! Issuing a processing number (「処理番号発行」): draw, store, send.

use tracing::{info, instrument, warn};

use super::{Actor, Issuer};
use crate::delivery::{Message, MessageContext, render};
use crate::domain::codes::{CodeKind, LinkCode, ProcessingNumber};
use crate::domain::model::{Centre, Channel, Issuance};
use crate::domain::rules;
use crate::domain::rules::Blocker;
use crate::error::{Error, Result};
use crate::store::{IssueError, NewIssuance};

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

    /// Issues (or reissues) a processing number for a case and sends it.
    /// Checks [`rules::issuance_prerequisites`] and [`rules::reissue_allowed`];
    /// the previous live number stops working at once. If the message cannot
    /// be delivered, the new number is withdrawn and the error says why.
    #[instrument(skip_all, fields(actor = %actor.name, case_id))]
    pub async fn issue(&self, actor: &Actor, case_id: i64) -> Result<Issued> {
        let r = self.issue_inner(actor, case_id).await;
        let (outcome, detail) = match &r {
            Ok(i) => (
                "ok".to_owned(),
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
        let issued_at = now;
        let expires_at = rules::expires_at(now, &centre);
        let mut attempt = 0;
        let (id, number, link) = loop {
            attempt += 1;
            let (number, link) =
                self.with_rng(|r| (ProcessingNumber::generate(r), LinkCode::generate(r)));
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
            match self.store.insert_issuance(&n).await {
                Ok(id) => break (id, number, link),
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
        let ctx = MessageContext {
            number: &number,
            link: &link,
            link_host: &self.settings.link_host,
            expires_at,
            validity_hours: (expires_at - now + 1800) / 3600,
            help_phone: &self.settings.help_phone,
            help_hours: &self.settings.help_hours,
        };
        let (subject, body) = render(channel, &ctx);
        let msg = Message {
            channel,
            to,
            subject,
            body,
        };
        match self.delivery.send(&msg, now).await {
            Ok(sent) => {
                let now = self.now();
                // Validity from delivery where the gateway sends receipts
                // (issue 13), from sending otherwise.
                let expires_at = match (&sent.message_sid, sent.receipts) {
                    (Some(sid), true) => {
                        let validity = expires_at - issued_at;
                        self.store
                            .mark_sent_awaiting_receipt(id, sid, validity, now)
                            .await?;
                        rules::expires_in_transit(now, validity)
                    }
                    _ => {
                        self.store.mark_delivered(id, now).await?;
                        expires_at
                    }
                };
                info!(
                    case_id,
                    issuance_id = id,
                    channel = channel.as_str(),
                    "processing number sent"
                );
                Ok(Issued {
                    issuance_id: id,
                    channel,
                    expires_at,
                    reissue,
                })
            }
            Err(e) => {
                self.store
                    .mark_delivery_failed(id, &e.0, self.now())
                    .await?;
                warn!(case_id, issuance_id = id, reason = %e.0, "delivery failed; number withdrawn");
                Err(Error::DeliveryFailed(e.0))
            }
        }
    }
}
