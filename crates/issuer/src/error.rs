//! The one error type of the issuer. Every failure a request can meet is a
//! variant with a stable code; [`crate::http`] maps it to HTTP in one place.

use crate::domain::rules::Blocker;
use crate::domain::validate::FieldError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Body is not the expected JSON (malformed, unknown field, wrong type).
    #[error("unparsable request: {0}")]
    Unparsable(String),
    /// A field failed validation.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// Issuance refused: every missing prerequisite, or `already_registered`.
    #[error("issuance refused: {0:?}")]
    Blocked(Vec<Blocker>),
    /// No such case for this caller (also another centre's case).
    #[error("case not found")]
    CaseNotFound,
    /// Missing or wrong API key.
    #[error("unauthorized")]
    Unauthorized,
    /// Unknown, malformed, used or superseded processing number.
    #[error("code invalid")]
    CodeInvalid,
    /// Expired processing number.
    #[error("code expired")]
    CodeExpired,
    /// The number's test type is not accepted.
    #[error("invalid test type")]
    InvalidTestType,
    /// Unknown or spent token.
    #[error("token invalid")]
    TokenInvalid,
    /// Expired token.
    #[error("token expired")]
    TokenExpired,
    /// `ekeyhmac` is not 32 bytes of base64.
    #[error("hmac invalid")]
    HmacInvalid,
    /// Rate limited: retry after this many seconds.
    #[error("rate limited for {retry_after} s")]
    RateLimited {
        /// Seconds.
        retry_after: u64,
    },
    /// This address's wrong typed numbers used its budget (issue 12, finding 3): typed
    /// numbers from it are refused for `retry_after` seconds; the link code is accepted.
    #[error("typed numbers refused from this address for {retry_after} s")]
    NumberAttemptsExhausted {
        /// Seconds.
        retry_after: u64,
    },
    /// The guessing ledger is full: typed numbers are paused for everyone for
    /// `retry_after` seconds; the link code is accepted.
    #[error("typed numbers paused for {retry_after} s")]
    TypedNumbersPaused {
        /// Seconds.
        retry_after: u64,
    },
    /// The message was not delivered; the number was withdrawn.
    #[error("delivery failed: {0}")]
    DeliveryFailed(String),
    /// `Idempotency-Key` missing or malformed.
    #[error("missing idempotency key")]
    MissingIdempotencyKey,
    /// A device request's `Idempotency-Key` is malformed.
    #[error("malformed idempotency key")]
    InvalidRetryKey,
    /// `Idempotency-Key` reused with another request.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// The same `Idempotency-Key` is being processed.
    #[error("request in progress")]
    RequestInProgress,
    /// A canary case was asked for, but this issuer has no canary channel.
    #[error("canary not configured")]
    CanaryNotConfigured,
    /// A delivery receipt's signature does not verify.
    #[error("receipt signature invalid")]
    ReceiptSignatureInvalid,
    /// A delivery receipt for an unknown message.
    #[error("message unknown")]
    MessageUnknown,
    /// `POST …/processing-number/expire` for a case without a live number.
    #[error("no live number")]
    NoLiveNumber,
    /// A batch that names no case, more than 100, or one twice.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// Body too large.
    #[error("payload too large")]
    PayloadTooLarge,
    /// Anything unexpected; its detail goes to the log only.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<crate::signing::SigningError> for Error {
    fn from(e: crate::signing::SigningError) -> Self {
        Self::Internal(e.into())
    }
}

/// Result with the issuer's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
