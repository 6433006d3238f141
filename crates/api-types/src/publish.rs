//! Key server publish API v1 (`POST /v1/publish`, PROTOCOLS.md §3, the Google
//! key server's v1 JSON), its stable error codes, and the one canonical
//! builder of the message the key HMAC (`ekeyhmac` / `tekmac`) is computed
//! over. Device, issuer tests, benchmarks and the key server all build that
//! message here, so they cannot disagree.

use serde::{Deserialize, Serialize};

/// Error codes of `POST /v1/publish` (the `code` field of [`PublishResponse`]).
///
/// The first four are the Google reference server's; the others name one
/// cause each so that a client can tell the user what went wrong.
pub mod codes {
    /// Malformed JSON, a missing field or a field of the wrong type.
    pub const BAD_REQUEST: &str = "bad_request";
    /// `healthAuthorityID` names no trusted health authority.
    pub const UNKNOWN_HEALTH_AUTHORITY_ID: &str = "unknown_health_authority_id";
    /// The certificate is malformed, not ES256, has no `kid`, names an unknown
    /// key or issuer, has a bad signature or an unsupported `reportType`.
    pub const CERTIFICATE_INVALID: &str = "health_authority_verification_certificate_invalid";
    /// Unexpected server error (details in the server log only).
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// The database cannot be reached for the moment: retry after the
    /// `Retry-After` seconds (nothing was stored).
    pub const UNAVAILABLE: &str = "unavailable";
    /// Some keys were dropped (see `warnings`); the others were stored.
    pub const PARTIAL_FAILURE: &str = "partial_failure";
    /// The certificate is past `exp` or before `nbf`.
    pub const CERTIFICATE_EXPIRED: &str = "certificate_expired";
    /// The certificate's `aud` is not this key server.
    pub const CERTIFICATE_AUDIENCE_INVALID: &str = "certificate_audience_invalid";
    /// `hmacKey` is not the base64 of 16 to 128 bytes.
    pub const HMAC_KEY_INVALID: &str = "hmac_key_invalid";
    /// The HMAC of the uploaded keys under `hmacKey` is not the certificate's `tekmac`.
    pub const HMAC_MISMATCH: &str = "hmac_mismatch";
    /// The request body is over the size limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// No keys in the request.
    pub const NO_KEYS: &str = "no_keys";
    /// More keys than the limit (30).
    pub const TOO_MANY_KEYS: &str = "too_many_keys";
    /// More than 3 keys share one `rollingStartNumber`.
    pub const TOO_MANY_KEYS_SAME_START: &str = "too_many_keys_same_start";
    /// A key is not the base64 of exactly 16 bytes.
    pub const KEY_INVALID_LENGTH: &str = "key_invalid_length";
    /// A key's `rollingPeriod` is outside 1..=144.
    pub const KEY_INVALID_ROLLING_PERIOD: &str = "key_invalid_rolling_period";
    /// A key's `transmissionRisk` is outside 0..=8.
    pub const KEY_INVALID_TRANSMISSION_RISK: &str = "key_invalid_transmission_risk";
    /// A key was not valid at any time in the last 15 days.
    pub const KEY_TOO_OLD: &str = "key_too_old";
    /// A key starts in the future.
    pub const KEY_IN_FUTURE: &str = "key_in_future";
    /// The same key appears twice in the request.
    pub const KEY_DUPLICATE: &str = "key_duplicate";
}

/// Header that marks a chaff request: answered like a real one, stores nothing.
pub const CHAFF_HEADER: &str = "X-Chaff";

/// One key of a publish request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishKey {
    /// Standard base64 (with padding) of the 16-byte TEK.
    pub key: String,
    /// First interval the key was valid for.
    #[serde(rename = "rollingStartNumber")]
    pub rolling_start_number: u32,
    /// Number of intervals it was valid for (1..=144).
    #[serde(rename = "rollingPeriod")]
    pub rolling_period: u32,
    /// Ignored by cocoa-rs (the server sets transmission risk from the
    /// certificate), but part of the key HMAC when present.
    #[serde(
        rename = "transmissionRisk",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transmission_risk: Option<i32>,
}

/// `POST /v1/publish` request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublishRequest {
    /// The diagnosis keys (at most 30).
    #[serde(rename = "temporaryExposureKeys")]
    pub keys: Vec<PublishKey>,
    /// Which trusted health authority issued the certificate.
    #[serde(rename = "healthAuthorityID")]
    pub health_authority_id: String,
    /// The certificate (ES256 JWT) from the issuer's `/api/certificate`.
    #[serde(rename = "verificationPayload")]
    pub verification_payload: String,
    /// Standard base64 of the device's random HMAC key.
    #[serde(rename = "hmacKey")]
    pub hmac_key: String,
    /// Accepted for compatibility and ignored: no onset date is stored.
    #[serde(
        rename = "symptomOnsetInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub symptom_onset_interval: Option<u32>,
    /// Accepted for compatibility and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traveler: Option<bool>,
    /// Accepted for compatibility and ignored (no key revisions).
    #[serde(
        rename = "revisionToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub revision_token: Option<String>,
    /// Random padding so that requests all look alike on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<String>,
}

/// `POST /v1/publish` answer, for success and failure alike.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PublishResponse {
    /// Not issued by cocoa-rs (no key revisions).
    #[serde(
        rename = "revisionToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub revision_token: Option<String>,
    /// Keys accepted by this request (also on an idempotent repeat).
    #[serde(rename = "insertedExposures", default)]
    pub inserted_exposures: u32,
    /// Message for people, on failure or partial failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Stable code ([`codes`]), on failure or partial failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Random padding so that answers all look alike on the wire.
    #[serde(default)]
    pub padding: String,
    /// Why individual keys were dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One key's segment of the key HMAC message:
/// `base64(TEK).rollingStartNumber.rollingPeriod.transmissionRisk`
/// (a missing transmission risk is written as 0, as the reference server does).
fn segment(k: &PublishKey, with_risk: bool) -> String {
    if with_risk {
        format!(
            "{}.{}.{}.{}",
            k.key,
            k.rolling_start_number,
            k.rolling_period,
            k.transmission_risk.unwrap_or(0)
        )
    } else {
        format!("{}.{}.{}", k.key, k.rolling_start_number, k.rolling_period)
    }
}

fn join_sorted(mut segments: Vec<String>) -> String {
    segments.sort_unstable();
    segments.join(",")
}

/// The message the key HMAC is computed over (PROTOCOLS.md §3): one segment
/// per key, `base64(TEK).rollingStartNumber.rollingPeriod.transmissionRisk`,
/// sorted lexicographically, joined with `,`. The device computes
/// `HMAC-SHA256(hmacKey, message)` and sends it as `ekeyhmac`; the issuer
/// puts it in the certificate as `tekmac`; the key server recomputes it.
///
/// The key strings are used exactly as sent (standard base64 with padding).
///
/// ```
/// use api_types::publish::{PublishKey, tekmac_message};
/// let k = |key: &str, start| PublishKey {
///     key: key.into(),
///     rolling_start_number: start,
///     rolling_period: 144,
///     transmission_risk: None,
/// };
/// assert_eq!(
///     tekmac_message(&[k("z", 2), k("a", 1)]),
///     "a.1.144.0,z.2.144.0"
/// );
/// ```
pub fn tekmac_message(keys: &[PublishKey]) -> String {
    join_sorted(keys.iter().map(|k| segment(k, true)).collect())
}

/// The alternative message without transmission risk
/// (`base64(TEK).rollingStartNumber.rollingPeriod`), which the reference
/// server also accepts, but only when no key carries a non-zero transmission
/// risk; `None` otherwise. Clients should use [`tekmac_message`].
pub fn tekmac_message_without_risk(keys: &[PublishKey]) -> Option<String> {
    keys.iter()
        .all(|k| k.transmission_risk.unwrap_or(0) == 0)
        .then(|| join_sorted(keys.iter().map(|k| segment(k, false)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: &str, start: u32, period: u32, risk: Option<i32>) -> PublishKey {
        PublishKey {
            key: key.into(),
            rolling_start_number: start,
            rolling_period: period,
            transmission_risk: risk,
        }
    }

    #[test]
    fn message_sorts_segments_and_writes_missing_risk_as_zero() {
        let keys = [
            key("bbbb", 2_650_032, 144, Some(3)),
            key("AAAA", 2_650_176, 100, None),
            key("bbbb", 2_650_000, 144, None),
        ];
        assert_eq!(
            tekmac_message(&keys),
            "AAAA.2650176.100.0,bbbb.2650000.144.0,bbbb.2650032.144.3"
        );
        assert_eq!(tekmac_message_without_risk(&keys), None);
        assert_eq!(
            tekmac_message_without_risk(&keys[1..]).as_deref(),
            Some("AAAA.2650176.100,bbbb.2650000.144")
        );
        assert_eq!(tekmac_message(&[]), "");
    }

    #[test]
    fn request_and_response_use_the_google_field_names() {
        let req = PublishRequest {
            keys: vec![key("k", 1, 144, None)],
            health_authority_id: "cocoa".into(),
            verification_payload: "jwt".into(),
            hmac_key: "h".into(),
            ..PublishRequest::default()
        };
        let v = serde_json::to_value(&req).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "temporaryExposureKeys": [{"key": "k", "rollingStartNumber": 1, "rollingPeriod": 144}],
                "healthAuthorityID": "cocoa",
                "verificationPayload": "jwt",
                "hmacKey": "h"
            })
        );
        let resp: PublishResponse =
            serde_json::from_str(r#"{"insertedExposures": 3, "padding": "x", "code": "partial_failure", "warnings": ["w"]}"#)
                .unwrap();
        assert_eq!(resp.inserted_exposures, 3);
        assert_eq!(resp.code.as_deref(), Some(codes::PARTIAL_FAILURE));
    }
}
