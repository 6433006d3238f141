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
            .map_err(|e| DeliveryError(format!("sms: {e}")))?;
        Ok(Self { client, config })
    }

    pub(super) async fn send(&self, msg: &Message) -> Result<(), DeliveryError> {
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
        let form = [
            ("To", to.as_str()),
            ("From", self.config.from.as_str()),
            ("Body", msg.body.as_str()),
        ];
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
            .map_err(|e| DeliveryError(format!("sms gateway unreachable: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let detail: serde_json::Value = resp.json().await.unwrap_or_default();
        let message = detail
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        Err(DeliveryError(format!(
            "sms gateway answered {status}: {message}"
        )))
    }
}
