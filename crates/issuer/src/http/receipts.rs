//! Delivery receipts: the SMS gateway's status callback,
//! `POST /api/v1/delivery/twilio/status` (Twilio-compatible
//! `StatusCallback`: form fields `MessageSid`, `MessageStatus`, `ErrorCode`).
//!
//! Issue 13: "the `X-Twilio-Signature` HMAC-SHA1 verified with the auth
//! token; refused otherwise" — 403 `receipt_signature_invalid`, nothing
//! changed. Receipts for a number's SMS move its issuance's delivery
//! state; receipts for a reminder by SMS are kept on its queue row. A
//! receipt for a message this issuer never sent is 404 `message_unknown`.
//! States never move backwards, so receipts in any order and duplicates
//! are harmless (200 either way).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tracing::{info, instrument};

use crate::error::Error;
use crate::state::App;
use crate::store::Receipt;

/// The path of the receipt endpoint (documented in docs/issuer.md).
pub const TWILIO_STATUS_PATH: &str = "/api/v1/delivery/twilio/status";

/// `POST /api/v1/delivery/twilio/status`.
#[instrument(skip_all)]
pub(super) async fn twilio_status(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match receipt(&app, &uri, &headers, &body).await {
        Ok(()) => (StatusCode::OK, "").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn receipt(app: &App, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    let Some(gateway) = app.issuer.delivery().receipt_gateway() else {
        return Err(Error::ReceiptSignatureInvalid);
    };
    let params: Vec<(String, String)> = form_urlencoded_pairs(body);
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !gateway.verify_receipt(uri.query(), &params, signature) {
        metrics::counter!("issuer_delivery_receipts_total", "outcome" => "bad_signature")
            .increment(1);
        return Err(Error::ReceiptSignatureInvalid);
    }
    let field = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let sid = field("MessageSid")
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .ok_or_else(|| Error::Unparsable("MessageSid".into()))?;
    let status = field("MessageStatus").unwrap_or("");
    let Some(state) = Receipt::parse(status) else {
        // `read`, `scheduled`, `canceled`…: nothing about delivery.
        return Ok(());
    };
    let reason = match (state, field("ErrorCode").filter(|c| !c.is_empty())) {
        (Receipt::Failed | Receipt::Undelivered, Some(code)) => {
            Some(format!("{}: ErrorCode {code}", state.as_str()))
        }
        _ => None,
    };
    let now = app.issuer.now();
    let store = app.issuer.store();
    // A number's own SMS is found on its issuance; a reminder by SMS on its
    // queue row.
    let applied = match store
        .apply_receipt(sid, state, reason.as_deref(), now)
        .await?
    {
        Some(moved) => Some(moved),
        None => {
            store
                .apply_message_receipt(sid, state, reason.as_deref())
                .await?
        }
    };
    match applied {
        None => {
            metrics::counter!("issuer_delivery_receipts_total", "outcome" => "unknown")
                .increment(1);
            Err(Error::MessageUnknown)
        }
        Some(moved) => {
            metrics::counter!("issuer_delivery_receipts_total",
                "outcome" => if moved { state.as_str() } else { "ignored" })
            .increment(1);
            info!(status = state.as_str(), moved, "delivery receipt");
            Ok(())
        }
    }
}

/// The pairs of an `application/x-www-form-urlencoded` body, decoded.
fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}
