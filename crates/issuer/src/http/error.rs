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
            Self::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                vc::QUOTA_EXCEEDED,
                m(
                    &format!(
                        "この接続元からのリクエストが多すぎます。{}にもう一度お試しください",
                        wait_ja(*retry_after)
                    ),
                    &format!(
                        "too many requests from this address; try again in {}",
                        wait_en(*retry_after)
                    ),
                ),
            ),
            Self::NumberAttemptsExhausted { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                vc::NUMBER_ATTEMPTS_EXHAUSTED,
                m(
                    &format!(
                        "この接続元（同じ回線を使う他の方を含みます）から誤った処理番号が続けて入力されたため、処理番号の入力をしばらく受け付けられません（{}から再び入力できます）。SMS・メールに記載のリンクからなら、今すぐ登録できます",
                        wait_ja(*retry_after)
                    ),
                    &format!(
                        "too many wrong processing numbers were typed from this address (other people on the same network count too); typed numbers are accepted again in {}. The link in the SMS or e-mail registers now",
                        wait_en(*retry_after)
                    ),
                ),
            ),
            Self::TypedNumbersPaused { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                vc::TYPED_NUMBERS_PAUSED,
                m(
                    &format!(
                        "誤った処理番号の入力が全国的に多いため、推測による不正な登録を防ぐ目的で、処理番号の入力による登録を一時停止しています（{}に再開します）。SMS・メールに記載のリンクからなら、今すぐ登録できます",
                        wait_ja(*retry_after)
                    ),
                    &format!(
                        "so many wrong processing numbers are being typed that typed numbers are paused for everyone, to stop guessing (again in {}). The link in the SMS or e-mail registers now",
                        wait_en(*retry_after)
                    ),
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
            Self::NoLiveNumber => (
                StatusCode::CONFLICT,
                cc::NO_LIVE_NUMBER,
                m(
                    "この事例には有効な処理番号がありません（未発行、登録済み、期限切れ、または無効化済み）",
                    "this case has no live processing number (none issued, already used, expired or ended)",
                ),
            ),
            Self::InvalidBatch(why) => (StatusCode::BAD_REQUEST, cc::INVALID_BATCH, {
                let (ja, en) = batch_why(why);
                m(
                    &format!("一括発行の指定が正しくありません: {ja}"),
                    &format!("invalid batch: {en}"),
                )
            }),
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

/// An [`Error::InvalidBatch`] reason (`empty`, `too_many`, `duplicate:<id>`)
/// in Japanese and in English.
fn batch_why(why: &str) -> (String, String) {
    let max = api_types::cases::MAX_BATCH;
    match why {
        "empty" => (
            "事例IDを1件以上指定してください".into(),
            "name at least one case id".into(),
        ),
        "too_many" => (
            format!("一度に指定できる事例は{max}件までです"),
            format!("at most {max} cases in one batch"),
        ),
        w => match w.strip_prefix("duplicate:") {
            Some(id) => (
                format!("同じ事例ID（{id}）が2回以上指定されています"),
                format!("case {id} is named more than once"),
            ),
            None => (w.into(), w.into()),
        },
    }
}

/// A wait as people say it: 「約5分後」, 「約3時間後」.
fn wait_ja(seconds: u64) -> String {
    match seconds {
        0..=60 => "1分後".into(),
        61..=3599 => format!("約{}分後", seconds.div_ceil(60)),
        _ => format!("約{}時間後", (seconds + 1799) / 3600),
    }
}

/// A wait in English: "a minute", "about 5 minutes", "about 3 hours".
fn wait_en(seconds: u64) -> String {
    match seconds {
        0..=60 => "a minute".into(),
        61..=3599 => format!("about {} minutes", seconds.div_ceil(60)),
        3600..=5399 => "about an hour".into(),
        _ => format!("about {} hours", (seconds + 1799) / 3600),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "unexpected error");
        }
        let (status, body) = self.to_body();
        let mut resp = (status, axum::Json(body)).into_response();
        if let Self::RateLimited { retry_after }
        | Self::NumberAttemptsExhausted { retry_after }
        | Self::TypedNumbersPaused { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The error bodies are a contract with phones and case systems: a snapshot of
/// every answer, so that a changed status, code or message shows in review
/// (`INSTA_UPDATE=always` rewrites the snapshots; CONTRIBUTING.md).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rules::Blocker;
    use crate::domain::validate::FieldError;

    /// One value of every variant. The `match` below has no wildcard, so a new
    /// variant does not compile until it is added here (and to the snapshot).
    fn every_error() -> Vec<Error> {
        let all = vec![
            Error::Unparsable("expected `,` at line 1 column 9".into()),
            Error::Field(FieldError {
                field: "name_kana",
                message_ja: "フリガナはカタカナで入力してください".into(),
                message_en: "name_kana must be katakana".into(),
            }),
            Error::Blocked(vec![
                Blocker::MissingOutpatientFacility,
                Blocker::NotReported,
            ]),
            Error::Blocked(vec![Blocker::AlreadyRegistered]),
            Error::CaseNotFound,
            Error::Unauthorized,
            Error::CodeInvalid,
            Error::CodeExpired,
            Error::InvalidTestType,
            Error::TokenInvalid,
            Error::TokenExpired,
            Error::HmacInvalid,
            Error::RateLimited { retry_after: 600 },
            Error::NumberAttemptsExhausted { retry_after: 3600 },
            Error::TypedNumbersPaused {
                retry_after: 22 * 3600,
            },
            Error::DeliveryFailed("宛先の電話番号が存在しません".into()),
            Error::MissingIdempotencyKey,
            Error::InvalidRetryKey,
            Error::IdempotencyKeyReused,
            Error::RequestInProgress,
            Error::CanaryNotConfigured,
            Error::ReceiptSignatureInvalid,
            Error::MessageUnknown,
            Error::NoLiveNumber,
            Error::InvalidBatch("too_many".into()),
            Error::PayloadTooLarge,
            Error::Internal(anyhow::anyhow!("connection refused (os error 111)")),
        ];
        for e in &all {
            match e {
                Error::Unparsable(_)
                | Error::Field(_)
                | Error::Blocked(_)
                | Error::CaseNotFound
                | Error::Unauthorized
                | Error::CodeInvalid
                | Error::CodeExpired
                | Error::InvalidTestType
                | Error::TokenInvalid
                | Error::TokenExpired
                | Error::HmacInvalid
                | Error::RateLimited { .. }
                | Error::NumberAttemptsExhausted { .. }
                | Error::TypedNumbersPaused { .. }
                | Error::DeliveryFailed(_)
                | Error::MissingIdempotencyKey
                | Error::InvalidRetryKey
                | Error::IdempotencyKeyReused
                | Error::RequestInProgress
                | Error::CanaryNotConfigured
                | Error::ReceiptSignatureInvalid
                | Error::MessageUnknown
                | Error::NoLiveNumber
                | Error::InvalidBatch(_)
                | Error::PayloadTooLarge
                | Error::Internal(_) => {}
            }
        }
        all
    }

    fn answer(e: Error) -> serde_json::Value {
        let variant = format!("{e:?}");
        let variant = variant
            .split(['(', ' ', '{'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let resp = e.into_response();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = futures_body(resp);
        serde_json::json!({
            "variant": variant,
            "status": status,
            "retry_after": retry_after,
            "body": body,
        })
    }

    fn futures_body(resp: Response) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = rt
            .block_on(axum::body::to_bytes(resp.into_body(), 1 << 16))
            .expect("body");
        serde_json::from_slice(&bytes).expect("the body is JSON")
    }

    #[test]
    fn issuer_error_bodies() {
        let answers: Vec<_> = every_error().into_iter().map(answer).collect();
        insta::assert_json_snapshot!(answers);
    }

    /// Each prerequisite of an issuance, alone: its code, and the message that
    /// names what staff must do.
    #[test]
    fn issuer_blocker_bodies() {
        let all = [
            Blocker::NotConfirmed,
            Blocker::MissingOutpatientFacility,
            Blocker::MissingPositiveTest,
            Blocker::MissingDiagnosisDate,
            Blocker::NotReported,
            Blocker::MissingNameKanji,
            Blocker::MissingNameKana,
            Blocker::MissingContact,
            Blocker::MissingCentre,
            Blocker::AlreadyRegistered,
        ];
        let answers: Vec<_> = all
            .into_iter()
            .map(|b| answer(Error::Blocked(vec![b])))
            .collect();
        insta::assert_json_snapshot!(answers);
    }

    /// An unexpected error's detail goes to the log, never to the client.
    #[test]
    fn an_unexpected_error_says_nothing_of_its_detail() {
        let detail = "password authentication failed for user \"issuer\"";
        let a = answer(Error::Internal(anyhow::anyhow!(detail)));
        let text = a.to_string();
        assert!(!text.contains("password"), "{text}");
        assert_eq!(a["status"], 500);
        assert_eq!(a["body"]["errorCode"], cc::INTERNAL_ERROR);
    }
}
