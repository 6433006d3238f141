//! Machine API of the issuer, for HER-SYS or any case system:
//! `POST /api/v1/cases` and `POST /api/v1/cases/{case_id}/processing-number`
//! (admin API key in `X-API-Key`, `Idempotency-Key` header).

use serde::{Deserialize, Serialize};

/// Error codes of the machine API (besides those of [`crate::verify::codes`]).
pub mod codes {
    /// Malformed JSON, unknown field or wrong type.
    pub const UNPARSABLE_REQUEST: &str = crate::verify::codes::UNPARSABLE_REQUEST;
    /// A field failed validation; the message names it.
    pub const INVALID_FIELD: &str = "invalid_field";
    /// Missing or wrong API key.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The case does not exist or belongs to another centre.
    pub const CASE_NOT_FOUND: &str = "case_not_found";
    /// A registration already succeeded with this case's number.
    pub const ALREADY_REGISTERED: &str = "already_registered";
    /// The case has neither a mobile number nor an e-mail address.
    pub const MISSING_CONTACT: &str = "missing_contact";
    /// The case is not reported as a confirmed case.
    pub const NOT_CONFIRMED: &str = "not_confirmed";
    /// The 発生届 lacks its outpatient facility (外来機関).
    pub const MISSING_OUTPATIENT_FACILITY: &str = "missing_outpatient_facility";
    /// The 発生届 does not record a positive test (検査陽性).
    pub const MISSING_POSITIVE_TEST: &str = "missing_positive_test";
    /// The 発生届 lacks the diagnosis date (診断年月日).
    pub const MISSING_DIAGNOSIS_DATE: &str = "missing_diagnosis_date";
    /// The 発生届 has not been reported (報告).
    pub const NOT_REPORTED: &str = "not_reported";
    /// The name in kanji is missing.
    pub const MISSING_NAME_KANJI: &str = "missing_name_kanji";
    /// The name in katakana (フリガナ) is missing.
    pub const MISSING_NAME_KANA: &str = "missing_name_kana";
    /// The case has no responsible health centre.
    pub const MISSING_CENTRE: &str = "missing_centre";
    /// The message could not be delivered; the number was withdrawn.
    pub const DELIVERY_FAILED: &str = "delivery_failed";
    /// `Idempotency-Key` header missing or malformed.
    pub const MISSING_IDEMPOTENCY_KEY: &str = "missing_idempotency_key";
    /// The same `Idempotency-Key` was used with a different request.
    pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";
    /// A request with this `Idempotency-Key` is still being processed.
    pub const REQUEST_IN_PROGRESS: &str = "request_in_progress";
    /// `POST /api/v1/canary-cases`, but the issuer has no canary channel.
    pub const CANARY_NOT_CONFIGURED: &str = "canary_not_configured";
    /// The request body is too large.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// A delivery receipt whose `X-Twilio-Signature` does not verify with
    /// the gateway's auth token (or no receipts are configured).
    pub const RECEIPT_SIGNATURE_INVALID: &str = "receipt_signature_invalid";
    /// A delivery receipt for a message this issuer never sent.
    pub const MESSAGE_UNKNOWN: &str = "message_unknown";
    /// `POST …/processing-number/expire`, but the case has no live number.
    pub const NO_LIVE_NUMBER: &str = "no_live_number";
    /// `POST /api/v1/processing-numbers:batch` with no case, more than
    /// [`super::MAX_BATCH`], or one case twice.
    pub const INVALID_BATCH: &str = "invalid_batch";
    /// Unexpected server error (details are in the server log only).
    pub const INTERNAL_ERROR: &str = "internal_error";
}

/// Sex as HER-SYS records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// 男性
    Male,
    /// 女性
    Female,
    /// その他
    Other,
}

/// Case classification of the 発生届.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// 患者（確定例）
    Confirmed,
    /// 無症状病原体保有者
    Asymptomatic,
    /// 疑似症患者 / 臨床診断 (a separate report type, `likely`)
    Clinical,
}

/// `POST /api/v1/cases` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCaseRequest {
    /// 氏名 (kanji).
    pub name_kanji: String,
    /// フリガナ (full-width katakana).
    pub name_kana: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// Sex.
    pub sex: Sex,
    /// Japanese mobile number (070/080/090, `+81` accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// 外来機関.
    pub outpatient_facility: String,
    /// 検査陽性.
    pub test_positive: bool,
    /// 確定例 / 無症状病原体保有者 / 臨床診断.
    pub classification: Classification,
    /// 診断年月日, `YYYY-MM-DD`.
    pub diagnosis_date: String,
    /// Whether the 発生届 has been reported (報告).
    pub reported: bool,
    /// Whether the patient uses COCOA and wants to register.
    pub uses_app: bool,
    /// Responsible centre; only for keys not bound to one centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centre_id: Option<i64>,
}

/// `POST /api/v1/canary-cases` request: a synthetic case for the production
/// canary (`cocoa canary`); its numbers go to the canary's own receiver and
/// its keys to the canary region only. Answered with [`CreateCaseResponse`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCanaryCaseRequest {
    /// Responsible centre; only for keys not bound to one centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub centre_id: Option<i64>,
}

/// `POST /api/v1/cases` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCaseResponse {
    /// The new case's id.
    pub case_id: i64,
}

/// `POST /api/v1/cases/{case_id}/processing-number` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueResponse {
    /// `sent` (200): handed to the gateway; `queued` (202): the gateway
    /// could not take it yet, the send queue retries with backoff and the
    /// number's validity starts when it is sent (`expires_at` is the
    /// ceiling until then).
    pub status: String,
    /// `sms` or `email`.
    pub channel: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
}

/// The most cases one `POST /api/v1/processing-numbers:batch` may name.
pub const MAX_BATCH: usize = 100;

/// `GET /api/v1/cases/{case_id}/processing-number`: the case's latest number
/// as the case system may see it — never the number or its link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberStatusResponse {
    /// The case.
    pub case_id: i64,
    /// `none` (never issued), `issued` (live), `used` (registered),
    /// `expired` (past its validity, ended, or withdrawn because it was not
    /// delivered) or `superseded` (a reissue replaced it).
    pub state: String,
    /// `sms` or `email` (absent when `none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `pending`, `sent`, `delivered`, `failed` or `undelivered`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<String>,
    /// Why the delivery failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_error: Option<String>,
    /// How many numbers the case had before this one (再発行).
    pub reissues: u32,
    /// Issued, RFC 3339 (JST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    /// Handed to the gateway or relay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// Delivered (the gateway's receipt, or sending where there are none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    /// Expires (or expired, or was ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Used by a registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used_at: Option<String>,
}

/// `POST /api/v1/processing-numbers:batch` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchIssueRequest {
    /// 1 to [`MAX_BATCH`] distinct case ids.
    pub case_ids: Vec<i64>,
}

/// One case's result in a batch: the issuance, or the error the single
/// `POST …/processing-number` would have answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchIssueResult {
    /// The case.
    pub case_id: i64,
    /// `sent`, `queued` (see [`IssueResponse::status`]) or `error`.
    pub status: String,
    /// `sms` or `email` when sent or queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Expiry, RFC 3339, when sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The error's stable code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The error's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /api/v1/processing-numbers:batch` answer: one result per case, in
/// the order asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchIssueResponse {
    /// One per case id.
    pub results: Vec<BatchIssueResult>,
}
