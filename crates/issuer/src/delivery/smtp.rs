//! E-mail through SMTP (lettre).

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{DeliveryError, Message};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (only for a relay on localhost or in tests).
    None,
    /// STARTTLS (port 587).
    #[default]
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

/// SMTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Port (587 by default).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// User name, when the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (also from `COCOA_SMTP_PASSWORD_FILE`).
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Sender address, e.g. `HER-SYS <noreply@example.jp>`.
    pub from: String,
}

fn default_port() -> u16 {
    587
}

/// A connected SMTP transport.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Builds the transport (connections are opened per message), with a
    /// 20 s timeout.
    pub fn new(c: &SmtpConfig) -> Result<Self, DeliveryError> {
        Self::with_timeout(c, std::time::Duration::from_secs(20))
    }

    /// The same, giving up on the server after `timeout`.
    pub fn with_timeout(
        c: &SmtpConfig,
        timeout: std::time::Duration,
    ) -> Result<Self, DeliveryError> {
        let err = |e: &dyn std::fmt::Display| DeliveryError::permanent(format!("smtp: {e}"));
        let mut b = match c.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host)
                .map_err(|e| err(&e))?,
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host).map_err(|e| err(&e))?
            }
        }
        .port(c.port)
        .timeout(Some(timeout));
        if let (Some(u), Some(p)) = (&c.username, &c.password) {
            b = b.credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()));
        }
        Ok(Self {
            transport: b.build(),
            from: c.from.parse().map_err(|e| err(&e))?,
            timeout,
        })
    }

    pub(super) async fn send(&self, msg: &Message) -> Result<(), DeliveryError> {
        let to = msg
            .to
            .parse()
            .map_err(|e| DeliveryError::permanent(format!("smtp: bad recipient: {e}")))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone().unwrap_or_default())
            .header(ContentType::TEXT_PLAIN)
            .body(msg.body.clone())
            .map_err(|e| DeliveryError::permanent(format!("smtp: {e}")))?;
        // lettre's own timeout covers reads and writes once the session is
        // under way, not a server that accepts and never greets: bound the
        // whole exchange too.
        match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            // A 5xx reply (550 no such mailbox) refuses the message for
            // good; 4xx replies (451 try later), timeouts and broken
            // connections may pass.
            Ok(sent) => sent.map(|_| ()).map_err(|e| DeliveryError {
                reason: format!("smtp: {e}"),
                permanent: e.is_permanent(),
            }),
            Err(_) => Err(DeliveryError::transient(format!(
                "smtp: no answer within {} s",
                self.timeout.as_secs_f64()
            ))),
        }
    }
}
