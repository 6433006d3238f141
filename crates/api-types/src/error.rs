//! The error body every cocoa-rs JSON API answers with: `{"error", "errorCode"}`
//! (the Google verification server's shape, PROTOCOLS.md §3).

use serde::{Deserialize, Serialize};

/// An error answer. `error_code` is stable (snake_case) and meant for
/// programs; `error` is a plain message meant for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Human-readable message (Japanese first, English after ` / `).
    pub error: String,
    /// Stable machine-readable code.
    #[serde(rename = "errorCode")]
    pub error_code: String,
}
