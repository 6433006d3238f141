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
    /// The database cannot be reached (down, restarting, pool exhausted):
    /// 503 with `Retry-After`, so a phone retries instead of giving up.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected; its detail goes to the log only.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Error {
    /// An unexpected error, unless somewhere in its chain the database
    /// could not be reached ([`Error::Unavailable`]).
    fn from(e: anyhow::Error) -> Self {
        use crate::store::StoreError;
        let down = e.chain().find_map(|c| {
            if let Some(StoreError::Unavailable(why)) = c.downcast_ref::<StoreError>() {
                return Some(why.clone());
            }
            c.downcast_ref::<sqlx::Error>()
                .or_else(|| match c.downcast_ref::<StoreError>() {
                    Some(StoreError::Db(db)) => Some(db),
                    _ => None,
                })
                .filter(|db| store_support::unavailable(db))
                .map(ToString::to_string)
        });
        match down {
            Some(why) => Self::Unavailable(why),
            None => Self::Internal(e),
        }
    }
}

/// Seconds a client should wait before retrying after [`Error::Unavailable`].
pub const RETRY_AFTER_SECONDS: u32 = 5;

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
            Self::Unavailable(_) => codes::UNAVAILABLE,
            Self::Internal(_) => codes::INTERNAL_ERROR,
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match &e {
            StoreError::Db(db) if store_support::unavailable(db) => {
                Self::Unavailable(db.to_string())
            }
            StoreError::Unavailable(why) => Self::Unavailable(why.clone()),
            _ => Self::Internal(e.into()),
        }
        // (`anyhow` errors carrying a store error go through the same test.)
    }
}

/// Result with the key server's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
