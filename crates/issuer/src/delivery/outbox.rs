//! The outbox backend: one JSON file per message,
//! `{"channel": "sms"|"email", "to", "subject"?, "body", "sent_at"}`.

use std::path::Path;

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{DeliveryError, Message};

/// One outbox file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// `sms` or `email`.
    pub channel: String,
    /// Recipient.
    pub to: String,
    /// Subject (e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Text.
    pub body: String,
    /// RFC 3339.
    pub sent_at: String,
}

pub(super) async fn write(dir: &Path, msg: &Message, sent_at: i64) -> Result<(), DeliveryError> {
    let file = OutboxMessage {
        channel: msg.channel.as_str().to_owned(),
        to: msg.to.clone(),
        subject: msg.subject.clone(),
        body: msg.body.clone(),
        sent_at: Utc
            .timestamp_opt(sent_at, 0)
            .single()
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| DeliveryError::transient(format!("outbox: {e}")))?;
    // Messages hold names and phone numbers: the folder 0700, the files
    // 0600 whatever the umask (issue 12, finding 1).
    store_support::private::create_private_dir(dir)
        .map_err(|e| DeliveryError::transient(format!("outbox: {e}")))?;
    let name = format!(
        "{sent_at}-{}-{:016x}.json",
        msg.channel.as_str(),
        rand::random::<u64>()
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    write_private(&tmp, &json)
        .await
        .map_err(|e| DeliveryError::transient(format!("outbox {}: {e}", dir.display())))?;
    tokio::fs::rename(&tmp, dir.join(&name))
        .await
        .map_err(|e| DeliveryError::transient(format!("outbox {}: {e}", dir.display())))?;
    Ok(())
}

/// Writes a new file 0600 whatever the umask.
async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    o.mode(0o600);
    let mut f = o.open(path).await?;
    f.write_all(bytes).await?;
    f.flush().await
}
