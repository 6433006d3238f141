//! SMS through a Twilio-compatible Messages API:
//! `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with form fields
//! `To`, `From`, `Body` and basic authentication.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{DeliveryError, Message};
use crate::domain::model::Channel;
use crate::domain::validate::mobile_e164;

/// Gateway settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// Base URL, `https://api.twilio.com` for Twilio itself.
    pub base_url: String,
    /// Account SID.
    pub account_sid: String,
    /// Auth token (also from `COCOA_SMS_AUTH_TOKEN_FILE`).
    pub auth_token: SecretString,
    /// Sender number or id.
    pub from: String,
    /// The full public URL of this issuer's receipt endpoint,
    /// `https://<host>/api/v1/delivery/twilio/status`, sent as each
    /// message's `StatusCallback`. Set: the gateway's receipts move the
    /// delivery state and a number's validity counts from delivery. Unset:
    /// no receipts, validity counts from sending.
    #[serde(default)]
    pub status_callback: Option<String>,
}

/// The gateway client.
#[derive(Debug)]
pub struct TwilioSender {
    client: reqwest::Client,
    config: TwilioConfig,
}

impl TwilioSender {
    /// A client with a 20 s timeout.
    pub fn new(config: TwilioConfig) -> Result<Self, DeliveryError> {
        Self::with_timeout(config, std::time::Duration::from_secs(20))
    }

    /// A client giving up on the gateway after `timeout` (the message then
    /// counts as undelivered and its number is withdrawn, even if the
    /// gateway sends it later).
    pub fn with_timeout(
        config: TwilioConfig,
        timeout: std::time::Duration,
    ) -> Result<Self, DeliveryError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| DeliveryError::permanent(format!("sms: {e}")))?;
        Ok(Self { client, config })
    }

    /// Whether the gateway sends receipts to this issuer.
    pub fn receipts(&self) -> bool {
        self.config.status_callback.is_some()
    }

    /// Verifies a receipt's `X-Twilio-Signature`: base64 of HMAC-SHA1 under
    /// the auth token of the full URL followed by every POST parameter,
    /// sorted by name, as name and value concatenated. Constant-time.
    /// `query` is the request's raw query string, if any (part of the
    /// signed URL). False when no receipts are configured.
    pub fn verify_receipt(
        &self,
        query: Option<&str>,
        params: &[(String, String)],
        signature: &str,
    ) -> bool {
        use base64::Engine as _;
        use hmac::{Hmac, Mac};
        let Some(url) = &self.config.status_callback else {
            return false;
        };
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        let Ok(mut mac) =
            Hmac::<sha1::Sha1>::new_from_slice(self.config.auth_token.expose_secret().as_bytes())
        else {
            return false;
        };
        mac.update(url.as_bytes());
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            mac.update(b"?");
            mac.update(q.as_bytes());
        }
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        for (k, v) in sorted {
            mac.update(k.as_bytes());
            mac.update(v.as_bytes());
        }
        mac.verify_slice(&given).is_ok()
    }

    /// Sends; the gateway's message id (`sid`) when it answers one.
    pub(super) async fn send(&self, msg: &Message) -> Result<Option<String>, DeliveryError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.base_url.trim_end_matches('/'),
            self.config.account_sid
        );
        // A canary message goes to the canary's own receiver, addressed by
        // the case, not to a phone number.
        let to = match msg.channel {
            Channel::Canary => msg.to.clone(),
            Channel::Sms | Channel::Email => mobile_e164(&msg.to),
        };
        let mut form = vec![
            ("To", to.as_str()),
            ("From", self.config.from.as_str()),
            ("Body", msg.body.as_str()),
        ];
        if let Some(cb) = &self.config.status_callback {
            form.push(("StatusCallback", cb.as_str()));
        }
        let resp = self
            .client
            .post(url)
            .basic_auth(
                &self.config.account_sid,
                Some(self.config.auth_token.expose_secret()),
            )
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                DeliveryError::transient(format!("sms gateway unreachable: {}", e.without_url()))
            })?;
        let status = resp.status();
        if status.is_success() {
            let answer: serde_json::Value = resp.json().await.unwrap_or_default();
            return Ok(answer
                .get("sid")
                .and_then(|s| s.as_str())
                .filter(|s| !s.is_empty() && s.len() <= 64)
                .map(str::to_owned));
        }
        let detail: serde_json::Value = resp.json().await.unwrap_or_default();
        let message = detail
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        let reason = format!("sms gateway answered {status}: {message}");
        Err(DeliveryError {
            reason,
            permanent: is_permanent_status(status.as_u16()),
        })
    }
}

/// Whether a gateway's HTTP answer refuses the message for good: a 4xx
/// (such as 400 for an invalid number), except 408 Request Timeout and 429
/// Too Many Requests, which say "later", not "never".
fn is_permanent_status(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}

#[cfg(test)]
mod permanence_tests {
    use super::is_permanent_status;

    #[test]
    fn four_hundreds_are_permanent_except_timeout_and_rate_limit() {
        assert!(is_permanent_status(400));
        assert!(is_permanent_status(404));
        assert!(!is_permanent_status(408));
        assert!(!is_permanent_status(429));
        assert!(!is_permanent_status(500));
        assert!(!is_permanent_status(503));
    }
}
