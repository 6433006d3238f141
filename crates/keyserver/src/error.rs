//! The one error type of the key server. Every failure a request can meet is
//! a variant with a stable code; [`crate::http`] maps it to HTTP in one place.

use api_types::publish::codes;

use crate::validate::KeyRejection;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not the expected JSON. Only the class of the problem is
    /// kept: serde's message may quote the input.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Body over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// `healthAuthorityID` names no trusted issuer.
    #[error("unknown health authority")]
    UnknownHealthAuthority,
    /// The certificate is malformed, unsigned by a trusted key, or otherwise unusable.
    #[error("certificate invalid: {0}")]
    CertificateInvalid(&'static str),
    /// Outside `nbf`..`exp` (with the allowed skew).
    #[error("certificate expired or not yet valid")]
    CertificateExpired,
    /// Wrong `aud`.
    #[error("certificate audience invalid")]
    CertificateAudience,
    /// `hmacKey` is not base64 of 16..=128 bytes.
    #[error("hmac key invalid")]
    HmacKeyInvalid,
    /// The recomputed HMAC is not `tekmac`.
    #[error("hmac mismatch")]
    HmacMismatch,
    /// The keys broke a whole-upload rule.
    #[error(transparent)]
    Keys(#[from] KeyRejection),
    /// No such object.
    #[error("not found")]
    NotFound,
    /// Anything unexpected; its detail goes to the log only.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => codes::BAD_REQUEST,
            Self::PayloadTooLarge => codes::PAYLOAD_TOO_LARGE,
            Self::UnknownHealthAuthority => codes::UNKNOWN_HEALTH_AUTHORITY_ID,
            Self::CertificateInvalid(_) => codes::CERTIFICATE_INVALID,
            Self::CertificateExpired => codes::CERTIFICATE_EXPIRED,
            Self::CertificateAudience => codes::CERTIFICATE_AUDIENCE_INVALID,
            Self::HmacKeyInvalid => codes::HMAC_KEY_INVALID,
            Self::HmacMismatch => codes::HMAC_MISMATCH,
            Self::Keys(r) => r.code(),
            Self::NotFound => "not_found",
            Self::Internal(_) => codes::INTERNAL_ERROR,
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// Result with the key server's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
