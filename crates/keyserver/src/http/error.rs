//! The one place where errors become HTTP answers. Unexpected errors give a
//! generic 500; their detail goes to the log only.

use axum::http::StatusCode;

use crate::error::Error;
use crate::validate::KeyRejection;

impl Error {
    /// HTTP status and message (Japanese / English) of this error.
    pub fn status_and_message(&self) -> (StatusCode, String) {
        let m = |ja: &str, en: &str| format!("{ja} / {en}");
        match self {
            Self::BadRequest(why) => (
                StatusCode::BAD_REQUEST,
                m(
                    "リクエストの形式が正しくありません",
                    &format!("bad request: {why}"),
                ),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                m("リクエストが大きすぎます", "request body too large"),
            ),
            Self::UnknownHealthAuthority => (
                StatusCode::UNAUTHORIZED,
                m(
                    "保健機関IDが登録されていません",
                    "unknown healthAuthorityID",
                ),
            ),
            Self::CertificateInvalid(why) => (
                StatusCode::UNAUTHORIZED,
                m(
                    "証明書を確認できませんでした",
                    &format!("verification certificate invalid: {why}"),
                ),
            ),
            Self::CertificateExpired => (
                StatusCode::UNAUTHORIZED,
                m(
                    "証明書の有効期限が切れています。もう一度登録してください",
                    "verification certificate expired or not yet valid",
                ),
            ),
            Self::CertificateAudience => (
                StatusCode::UNAUTHORIZED,
                m(
                    "この証明書はこのサーバー向けではありません",
                    "verification certificate is for another audience",
                ),
            ),
            Self::HmacKeyInvalid => (
                StatusCode::BAD_REQUEST,
                m(
                    "hmacKey が正しくありません",
                    "hmacKey must be the base64 of 16 to 128 bytes",
                ),
            ),
            Self::HmacMismatch => (
                StatusCode::UNAUTHORIZED,
                m(
                    "診断キーが証明書と一致しません",
                    "the keys do not match the certificate's tekmac",
                ),
            ),
            Self::Keys(r) => (
                StatusCode::BAD_REQUEST,
                match r {
                    KeyRejection::NoKeys => m("診断キーがありません", "no keys"),
                    KeyRejection::TooManyKeys { count, max } => m(
                        "診断キーが多すぎます",
                        &format!("{count} keys, at most {max} allowed"),
                    ),
                    KeyRejection::TooManySameStart { max } => m(
                        "同じ開始時刻の診断キーが多すぎます",
                        &format!("more than {max} keys share a rollingStartNumber"),
                    ),
                    KeyRejection::AllDropped { code, .. } => m(
                        "有効な診断キーがありません",
                        &format!("no valid key: {code}"),
                    ),
                },
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, m("見つかりません", "not found")),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                m(
                    "サーバーが混み合っています。しばらくしてからもう一度お試しください",
                    "the server is busy; please retry shortly",
                ),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                m("サーバーでエラーが発生しました", "internal server error"),
            ),
        }
    }

    /// Logs an unexpected error's detail (never sent to the client).
    pub fn log_if_internal(&self) {
        match self {
            Self::Internal(e) => tracing::error!(error = format!("{e:#}"), "unexpected error"),
            Self::Unavailable(e) => tracing::warn!(error = %e, "database unavailable"),
            _ => {}
        }
    }
}

/// The answers a phone gets are a contract: a snapshot of every error's
/// status, code and message, so that a change shows in review
/// (`INSTA_UPDATE=always` rewrites the snapshot; CONTRIBUTING.md).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Dropped;

    /// One value of every variant. The `match` has no wildcard: a new variant
    /// does not compile until it is listed here (and so in the snapshot).
    fn every_error() -> Vec<Error> {
        let all = vec![
            Error::BadRequest("body is not JSON"),
            Error::PayloadTooLarge,
            Error::UnknownHealthAuthority,
            Error::CertificateInvalid("signature does not verify"),
            Error::CertificateExpired,
            Error::CertificateAudience,
            Error::HmacKeyInvalid,
            Error::HmacMismatch,
            Error::Keys(KeyRejection::NoKeys),
            Error::Keys(KeyRejection::TooManyKeys { count: 31, max: 30 }),
            Error::Keys(KeyRejection::TooManySameStart { max: 3 }),
            Error::Keys(KeyRejection::AllDropped {
                code: api_types::publish::codes::KEY_INVALID_LENGTH,
                dropped: vec![Dropped {
                    index: 0,
                    code: api_types::publish::codes::KEY_INVALID_LENGTH,
                }],
            }),
            Error::NotFound,
            Error::Unavailable("pool timed out while waiting for an open connection".into()),
            Error::Internal(anyhow::anyhow!("disk full (os error 28)")),
        ];
        for e in &all {
            match e {
                Error::BadRequest(_)
                | Error::PayloadTooLarge
                | Error::UnknownHealthAuthority
                | Error::CertificateInvalid(_)
                | Error::CertificateExpired
                | Error::CertificateAudience
                | Error::HmacKeyInvalid
                | Error::HmacMismatch
                | Error::Keys(
                    KeyRejection::NoKeys
                    | KeyRejection::TooManyKeys { .. }
                    | KeyRejection::TooManySameStart { .. }
                    | KeyRejection::AllDropped { .. },
                )
                | Error::NotFound
                | Error::Unavailable(_)
                | Error::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn keyserver_error_answers() {
        let answers: Vec<_> = every_error()
            .iter()
            .map(|e| {
                let (status, message) = e.status_and_message();
                serde_json::json!({
                    "status": status.as_u16(),
                    "code": e.code(),
                    "message": message,
                })
            })
            .collect();
        insta::assert_json_snapshot!(answers);
    }

    /// What the database or the disk said stays in the log.
    #[test]
    fn unexpected_errors_say_nothing_of_their_detail() {
        for e in [
            Error::Unavailable("password authentication failed".into()),
            Error::Internal(anyhow::anyhow!("password authentication failed")),
        ] {
            let (_, message) = e.status_and_message();
            assert!(!message.contains("password"), "{message}");
        }
    }
}
