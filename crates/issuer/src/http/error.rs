//! The one place where errors become HTTP answers. Unexpected errors give a
//! generic 500; their detail goes to the log only.

use api_types::cases::codes as cc;
use api_types::error::ErrorResponse;
use api_types::verify::codes as vc;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

impl Error {
    /// HTTP status, stable code and message (Japanese / English).
    pub fn parts(&self) -> (StatusCode, &'static str, String) {
        let m = |ja: &str, en: &str| format!("{ja} / {en}");
        match self {
            Self::Unparsable(why) => (
                StatusCode::BAD_REQUEST,
                vc::UNPARSABLE_REQUEST,
                m(
                    "リクエストの形式が正しくありません",
                    &format!("unparsable request: {why}"),
                ),
            ),
            Self::Field(f) => (
                StatusCode::BAD_REQUEST,
                cc::INVALID_FIELD,
                format!("{}: {} / {}", f.field, f.message_ja, f.message_en),
            ),
            Self::Blocked(bs) => {
                let first = bs.first().copied();
                let status = if first.map(|b| b.code()) == Some(cc::ALREADY_REGISTERED) {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                let ja: Vec<&str> = bs.iter().map(|b| b.message_ja()).collect();
                let en: Vec<&str> = bs.iter().map(|b| b.message_en()).collect();
                (
                    status,
                    first.map_or(cc::NOT_CONFIRMED, |b| b.code()),
                    m(&ja.join(""), &en.join("; ")),
                )
            }
            Self::CanaryNotConfigured => (
                StatusCode::CONFLICT,
                cc::CANARY_NOT_CONFIGURED,
                m(
                    "この発行サーバーにはカナリア（監視用）の配信先が設定されていません",
                    "this issuer has no canary delivery channel configured",
                ),
            ),
            Self::CaseNotFound => (
                StatusCode::NOT_FOUND,
                cc::CASE_NOT_FOUND,
                m("患者が見つかりません", "case not found"),
            ),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                vc::UNAUTHORIZED,
                m("APIキーが正しくありません", "missing or invalid API key"),
            ),
            Self::CodeInvalid => (
                StatusCode::BAD_REQUEST,
                vc::CODE_INVALID,
                m(
                    "処理番号が正しくないか、既に使用されています",
                    "processing number is invalid or already used",
                ),
            ),
            Self::CodeExpired => (
                StatusCode::BAD_REQUEST,
                vc::CODE_EXPIRED,
                m(
                    "処理番号の有効期限が切れています。保健所に再発行を依頼してください",
                    "processing number has expired; ask the health centre to reissue it",
                ),
            ),
            Self::InvalidTestType => (
                StatusCode::PRECONDITION_FAILED,
                vc::INVALID_TEST_TYPE,
                m(
                    "この処理番号の種別はアプリで受け付けられません",
                    "the app does not accept this test type",
                ),
            ),
            Self::TokenInvalid => (
                StatusCode::BAD_REQUEST,
                vc::TOKEN_INVALID,
                m(
                    "トークンが正しくないか、既に使用されています",
                    "token is invalid or already used",
                ),
            ),
            Self::TokenExpired => (
                StatusCode::BAD_REQUEST,
                vc::TOKEN_EXPIRED,
                m("トークンの有効期限が切れています", "token has expired"),
            ),
            Self::HmacInvalid => (
                StatusCode::BAD_REQUEST,
                vc::HMAC_INVALID,
                m(
                    "ekeyhmac が正しくありません",
                    "ekeyhmac must be the base64 of 32 bytes",
                ),
            ),
            Self::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                vc::QUOTA_EXCEEDED,
                m(
                    "この接続元からの試行が多すぎます。しばらくしてから再度お試しいただくか、SMS・メールのリンクから登録してください",
                    "too many attempts from this address; retry later, or register with the link in the SMS or e-mail",
                ),
            ),
            Self::DeliveryFailed(reason) => (
                StatusCode::BAD_GATEWAY,
                cc::DELIVERY_FAILED,
                m(
                    &format!(
                        "処理番号を送信できなかったため無効にしました（{reason}）。再発行してください"
                    ),
                    &format!(
                        "the message could not be delivered ({reason}); the number was withdrawn, issue again"
                    ),
                ),
            ),
            Self::MissingIdempotencyKey => (
                StatusCode::BAD_REQUEST,
                cc::MISSING_IDEMPOTENCY_KEY,
                m(
                    "Idempotency-Key ヘッダーが必要です",
                    "an Idempotency-Key header (1-128 visible ASCII characters) is required",
                ),
            ),
            Self::InvalidRetryKey => (
                StatusCode::BAD_REQUEST,
                vc::INVALID_IDEMPOTENCY_KEY,
                m(
                    "Idempotency-Key ヘッダーの形式が正しくありません（16〜128 文字の半角英数字・記号）",
                    "the Idempotency-Key header must be 16 to 128 printable ASCII characters",
                ),
            ),
            Self::IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                cc::IDEMPOTENCY_KEY_REUSED,
                m(
                    "この Idempotency-Key は別のリクエストで使用済みです",
                    "this Idempotency-Key was used for a different request",
                ),
            ),
            Self::RequestInProgress => (
                StatusCode::CONFLICT,
                cc::REQUEST_IN_PROGRESS,
                m(
                    "同じリクエストを処理中です",
                    "a request with this Idempotency-Key is in progress",
                ),
            ),
            Self::ReceiptSignatureInvalid => (
                StatusCode::FORBIDDEN,
                cc::RECEIPT_SIGNATURE_INVALID,
                m(
                    "配信通知の署名を確認できません",
                    "the delivery receipt's X-Twilio-Signature does not verify",
                ),
            ),
            Self::MessageUnknown => (
                StatusCode::NOT_FOUND,
                cc::MESSAGE_UNKNOWN,
                m(
                    "この配信通知のメッセージは送信されていません",
                    "no message with this MessageSid was sent",
                ),
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                cc::PAYLOAD_TOO_LARGE,
                m("リクエストが大きすぎます", "request body too large"),
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                cc::INTERNAL_ERROR,
                m("サーバーでエラーが発生しました", "internal server error"),
            ),
        }
    }

    /// The JSON body and status of this error.
    pub fn to_body(&self) -> (StatusCode, ErrorResponse) {
        let (status, code, error) = self.parts();
        (
            status,
            ErrorResponse {
                error,
                error_code: code.to_owned(),
            },
        )
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "unexpected error");
        }
        let (status, body) = self.to_body();
        let mut resp = (status, axum::Json(body)).into_response();
        if let Self::RateLimited { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
