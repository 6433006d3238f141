//! Device API of the issuer (PROTOCOLS.md §3, compatible with the Google
//! verification server): `POST /api/verify` and `POST /api/certificate`, and
//! the claims of the certificate the key server checks.

use serde::{Deserialize, Serialize};

/// Test type `confirmed`: a positive test (確定例 or 無症状病原体保有者).
pub const TEST_TYPE_CONFIRMED: &str = "confirmed";
/// Test type `likely`: a clinical diagnosis (臨床診断).
pub const TEST_TYPE_LIKELY: &str = "likely";
/// Test type `negative` (never issued by cocoa-rs; accepted in `accept`).
pub const TEST_TYPE_NEGATIVE: &str = "negative";

/// Error codes of the device API.
pub mod codes {
    /// The body is not the expected JSON.
    pub const UNPARSABLE_REQUEST: &str = "unparsable_request";
    /// Unknown, malformed or already used processing number (one answer for
    /// all, so the existence of a number is not revealed).
    pub const CODE_INVALID: &str = "code_invalid";
    /// The processing number has expired.
    pub const CODE_EXPIRED: &str = "code_expired";
    /// The number's test type is not in `accept`.
    pub const INVALID_TEST_TYPE: &str = "invalid_test_type";
    /// The server is refusing work for a while; retry later (429).
    pub const MAINTENANCE_MODE: &str = "maintenance_mode";
    /// Too many requests from this client; retry after `Retry-After` (429).
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    /// Too many wrong typed numbers from this client address (which many phones may share
    /// behind a carrier's NAT): typed numbers are refused until `Retry-After`; the app link's
    /// code is still accepted (429).
    pub const NUMBER_ATTEMPTS_EXHAUSTED: &str = "number_attempts_exhausted";
    /// Wrong typed numbers from everywhere reached the guessing bound: typed numbers are
    /// paused for every client until `Retry-After`; the app link's code is still accepted (429).
    pub const TYPED_NUMBERS_PAUSED: &str = "typed_numbers_paused";
    /// Unknown, malformed or already used verification token.
    pub const TOKEN_INVALID: &str = "token_invalid";
    /// The verification token has expired.
    pub const TOKEN_EXPIRED: &str = "token_expired";
    /// `ekeyhmac` is not the base64 of 32 bytes.
    pub const HMAC_INVALID: &str = "hmac_invalid";
    /// Missing or unknown `X-API-Key`.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// An `Idempotency-Key` header that is not 16 to 128 printable ASCII
    /// characters (nothing was done; send the request without one or with
    /// a well-formed one).
    pub const INVALID_IDEMPOTENCY_KEY: &str = "invalid_idempotency_key";
}

/// `POST /api/verify` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The processing number (8 digits; full-width digits, spaces and
    /// hyphens are accepted) or the long code of the app link.
    pub code: String,
    /// Test types the app accepts; `["confirmed"]` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Vec<String>>,
    /// Random padding so that requests all look alike on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<String>,
}

/// `POST /api/verify` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResponse {
    /// `confirmed` or `likely`.
    pub testtype: String,
    /// Never sent by cocoa-rs (the onset date stays on the phone).
    #[serde(
        rename = "symptomDate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub symptom_date: Option<String>,
    /// Never sent by cocoa-rs.
    #[serde(rename = "testDate", default, skip_serializing_if = "Option::is_none")]
    pub test_date: Option<String>,
    /// Single-use token for `/api/certificate`, valid 24 h.
    pub token: String,
    /// Random padding.
    #[serde(default)]
    pub padding: String,
}

/// `POST /api/certificate` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// The token from `/api/verify`.
    pub token: String,
    /// Base64 of the 32-byte HMAC-SHA256 of the keys (PROTOCOLS.md §3).
    pub ekeyhmac: String,
    /// Random padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<String>,
}

/// `POST /api/certificate` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateResponse {
    /// The ES256 JWT the key server verifies.
    pub certificate: String,
    /// Random padding.
    #[serde(default)]
    pub padding: String,
}

/// Claims of the verification certificate (an ES256 JWT with `kid` in its
/// header). There is deliberately no symptom-onset claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateClaims {
    /// Issuer, e.g. `cocoa-issuer`.
    pub iss: String,
    /// Audience, e.g. `cocoa-keyserver`.
    pub aud: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Not before (unix seconds).
    pub nbf: i64,
    /// Expiry (unix seconds), 15 minutes after `iat`.
    pub exp: i64,
    /// Base64 of the 32-byte key HMAC the certificate is bound to.
    pub tekmac: String,
    /// `confirmed` or `likely`.
    #[serde(rename = "reportType")]
    pub report_type: String,
}

/// One public key of `GET /.well-known/jwks.json` (RFC 7517, EC P-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `EC`.
    pub kty: String,
    /// Always `P-256`.
    pub crv: String,
    /// Base64url (no padding) of the 32-byte X coordinate.
    pub x: String,
    /// Base64url (no padding) of the 32-byte Y coordinate.
    pub y: String,
    /// Key id, matched against the certificate header's `kid`.
    pub kid: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Always `ES256`.
    pub alg: String,
}

/// `GET /.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// Every key a certificate still valid may have been signed with.
    pub keys: Vec<Jwk>,
}
