//! The one error type of the device core. Every variant has a stable code
//! (for programs and tests) and a message for the user in Japanese and
//! English ([`Error::text`]); `Display` shows both.

use chrono::NaiveDate;

use crate::text::{Text, ja_date};

/// Result of the device core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the user's input (the CLI exits with status 2) ----
    /// Nothing was typed as the processing number.
    #[error("{}", self.text())]
    NumberEmpty,
    /// The processing number does not have 8 digits.
    #[error("{}", self.text())]
    NumberLength {
        /// How many digits were typed.
        digits: usize,
    },
    /// The processing number holds a character that is neither a digit, a
    /// space nor a hyphen.
    #[error("{}", self.text())]
    NumberCharacter {
        /// The first such character.
        found: char,
    },
    /// The app link is not `https://<host>/cocoa/a/?pn=<code>`.
    #[error("{}", self.text())]
    LinkMalformed {
        /// What is wrong with it (English, for logs and tests).
        reason: &'static str,
    },
    /// A date that is not `YYYY-MM-DD`.
    #[error("{}", self.text())]
    DateMalformed {
        /// What was given.
        input: String,
    },
    /// The onset or test date is after today (Japan time).
    #[error("{}", self.text())]
    DateInFuture {
        /// The date given.
        date: NaiveDate,
    },
    /// The onset or test date is more than 14 days ago.
    #[error("{}", self.text())]
    DateTooOld {
        /// The date given.
        date: NaiveDate,
        /// The oldest date accepted.
        earliest: NaiveDate,
    },
    /// Not a prefecture code (01–47) or name.
    #[error("{}", self.text())]
    UnknownPrefecture {
        /// What was given.
        input: String,
    },
    /// An RSSI outside −127..=20 dBm (the range Bluetooth reports).
    #[error("{}", self.text())]
    RssiOutOfRange {
        /// The value given.
        rssi: i64,
    },
    /// A transmit power outside −127..=20 dBm.
    #[error("{}", self.text())]
    TxPowerOutOfRange {
        /// The value given.
        tx_power: i64,
    },
    /// An RPI that is not 32 hex digits.
    #[error("{}", self.text())]
    RpiMalformed {
        /// What was given.
        input: String,
    },
    /// An AEM that is not 8 hex digits.
    #[error("{}", self.text())]
    AemMalformed {
        /// What was given.
        input: String,
    },
    /// Seconds of a sighting outside 1..=3600.
    #[error("{}", self.text())]
    SecondsOutOfRange {
        /// The value given.
        seconds: i64,
    },
    /// A moment this phone cannot have lived: before it was set up, more
    /// than 14 days ago, or later than now.
    #[error("{}", self.text())]
    TimeOutOfRange {
        /// The moment given (RFC 3339).
        at: String,
        /// Why (English).
        reason: &'static str,
    },
    /// A meeting that cannot be simulated (same phone twice, no time, a
    /// distance outside 0.1–100 m...).
    #[error("{}", self.text())]
    MeetInvalid {
        /// Why (English).
        reason: &'static str,
    },
    /// `register` without its three inputs and no registration to resume.
    #[error("{}", self.text())]
    RegistrationInputMissing,
    /// A URL or public key in the settings that cannot be used.
    #[error("{}", self.text())]
    SettingInvalid {
        /// Which setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },

    // ---- the phone's state ----
    /// `--home` holds no phone: run `init` first.
    #[error("{}", self.text())]
    NotInitialised {
        /// The folder.
        home: String,
    },
    /// `init` on a folder that already holds a phone.
    #[error("{}", self.text())]
    AlreadyInitialised {
        /// The folder.
        home: String,
    },
    /// A setting the operation needs is missing.
    #[error("{}", self.text())]
    NotConfigured {
        /// Which one (`server`, `keyserver`, `export public key`...).
        setting: &'static str,
    },

    // ---- registration ----
    /// The phone holds no key from the period before and on the date: it was
    /// installed after it (the seed's FAQ 問4). Nothing was sent; the number
    /// is still unused.
    #[error("{}", self.text())]
    NoKeysInWindow {
        /// The onset or test date.
        date: NaiveDate,
    },
    /// The number is wrong, or was used already (the server gives one answer
    /// for both).
    #[error("{}", self.text())]
    CodeInvalid {
        /// An earlier attempt of this registration sent the number and its
        /// answer was lost: that attempt may have used it.
        maybe_used_by_lost_attempt: bool,
    },
    /// The number has expired.
    #[error("{}", self.text())]
    CodeExpired,
    /// The number is for a test type this app does not register.
    #[error("{}", self.text())]
    InvalidTestType,
    /// The verification token is no longer accepted: this registration
    /// cannot go on and needs a new number.
    #[error("{}", self.text())]
    TokenRejected {
        /// The server's error code.
        code: String,
    },
    /// The key server refused the certificate (expired, or not trusted).
    #[error("{}", self.text())]
    CertificateRejected {
        /// The server's error code.
        code: String,
    },
    /// The key server refused the keys.
    #[error("{}", self.text())]
    PublishRejected {
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The app's API key was refused: the app is misconfigured.
    #[error("{}", self.text())]
    Unauthorized,
    /// Too many requests; try again later. The registration resumes.
    #[error("{}", self.text())]
    RateLimited {
        /// Seconds the server asked to wait.
        retry_after: Option<u64>,
    },
    /// The issuer refused to look at a typed processing number for a while (issue 12,
    /// finding 3): too many wrong numbers from this phone's address, which others behind the
    /// carrier's NAT share (`everywhere` false), or from everywhere, to stop guessing
    /// (`everywhere` true). The number was not used; the link in the SMS or e-mail works now.
    #[error("{}", self.text())]
    NumberEntryPaused {
        /// Seconds the server asked to wait.
        retry_after: Option<u64>,
        /// Paused for every phone (the guessing bound), not only this address.
        everywhere: bool,
    },
    /// The server could not be reached or failed; try again later. A
    /// registration resumes where it stopped.
    #[error("{}", self.text())]
    Unavailable {
        /// What failed (English, for logs).
        detail: String,
    },
    /// The export index is not there (404): the exports URL is wrong, or
    /// the key server does not serve it. The check did nothing.
    #[error("{}", self.text())]
    IndexNotFound {
        /// The index URL.
        url: String,
    },
    /// The server answered something this app does not understand.
    #[error("{}", self.text())]
    UnexpectedAnswer {
        /// What (English).
        detail: String,
    },

    // ---- internal ----
    /// The local database failed.
    #[error("local storage failed: {0}")]
    Storage(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data that cannot be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

const ASK_NEW_NUMBER_JA: &str = "お手数ですが、保健所に新しい処理番号の発行を依頼してください。";
const ASK_NEW_NUMBER_EN: &str = "Please ask your health centre to issue a new processing number.";

impl Error {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NumberEmpty => "number_empty",
            Self::NumberLength { .. } => "number_length",
            Self::NumberCharacter { .. } => "number_character",
            Self::LinkMalformed { .. } => "link_malformed",
            Self::DateMalformed { .. } => "date_malformed",
            Self::DateInFuture { .. } => "date_in_future",
            Self::DateTooOld { .. } => "date_too_old",
            Self::UnknownPrefecture { .. } => "unknown_prefecture",
            Self::RssiOutOfRange { .. } => "rssi_out_of_range",
            Self::TxPowerOutOfRange { .. } => "tx_power_out_of_range",
            Self::RpiMalformed { .. } => "rpi_malformed",
            Self::AemMalformed { .. } => "aem_malformed",
            Self::SecondsOutOfRange { .. } => "seconds_out_of_range",
            Self::TimeOutOfRange { .. } => "time_out_of_range",
            Self::MeetInvalid { .. } => "meet_invalid",
            Self::RegistrationInputMissing => "registration_input_missing",
            Self::SettingInvalid { .. } => "setting_invalid",
            Self::NotInitialised { .. } => "not_initialised",
            Self::AlreadyInitialised { .. } => "already_initialised",
            Self::NotConfigured { .. } => "not_configured",
            Self::NoKeysInWindow { .. } => "no_keys_in_window",
            Self::CodeInvalid { .. } => "code_invalid",
            Self::CodeExpired => "code_expired",
            Self::InvalidTestType => "invalid_test_type",
            Self::TokenRejected { .. } => "token_rejected",
            Self::CertificateRejected { .. } => "certificate_rejected",
            Self::PublishRejected { .. } => "publish_rejected",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited { .. } => "rate_limited",
            Self::NumberEntryPaused { .. } => "number_entry_paused",
            Self::Unavailable { .. } => "unavailable",
            Self::IndexNotFound { .. } => "index_not_found",
            Self::UnexpectedAnswer { .. } => "unexpected_answer",
            Self::Storage(_) => "storage",
            Self::Io(_) => "io",
            Self::Corrupt(_) => "corrupt",
        }
    }

    /// Whether the error is the user's input (exit status 2 in the CLI).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::NumberEmpty
                | Self::NumberLength { .. }
                | Self::NumberCharacter { .. }
                | Self::LinkMalformed { .. }
                | Self::DateMalformed { .. }
                | Self::DateInFuture { .. }
                | Self::DateTooOld { .. }
                | Self::UnknownPrefecture { .. }
                | Self::RssiOutOfRange { .. }
                | Self::TxPowerOutOfRange { .. }
                | Self::RpiMalformed { .. }
                | Self::AemMalformed { .. }
                | Self::SecondsOutOfRange { .. }
                | Self::TimeOutOfRange { .. }
                | Self::MeetInvalid { .. }
                | Self::RegistrationInputMissing
                | Self::SettingInvalid { .. }
        )
    }

    /// Whether trying again later can succeed (the registration state is kept).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::NumberEntryPaused { .. } | Self::Unavailable { .. }
        )
    }

    /// The message for the user when an exposure check (接触確認) failed:
    /// the same as [`Error::text`] except where that one speaks of a
    /// registration (the number, what was entered).
    pub fn check_text(&self) -> Text {
        const NOT_CHECKED_JA: &str = "接触確認はできていません。";
        const NOT_CHECKED_EN: &str = "No exposure check was done.";
        match self {
            Self::Unavailable { detail } => Text::new(
                format!(
                    "サーバーに接続できませんでした。{NOT_CHECKED_JA}通信環境の良いところで、もう一度お試しください。"
                ),
                format!(
                    "Could not reach the server ({detail}). {NOT_CHECKED_EN} Please try again with a better connection."
                ),
            ),
            Self::RateLimited { retry_after } => Text::new(
                format!(
                    "ただいま混み合っています。{NOT_CHECKED_JA}{}後でもう一度お試しください。",
                    retry_after
                        .map(|s| format!("{}分ほど", s.div_ceil(60)))
                        .unwrap_or_default()
                ),
                format!(
                    "The server is busy. {NOT_CHECKED_EN} Please try again{}.",
                    retry_after
                        .map(|s| format!(" in about {} min", s.div_ceil(60)))
                        .unwrap_or_default()
                ),
            ),
            Self::UnexpectedAnswer { detail } => Text::new(
                format!(
                    "サーバーから予期しない応答がありました。{NOT_CHECKED_JA}時間をおいてもう一度お試しください。"
                ),
                format!(
                    "The server gave an unexpected answer ({detail}). {NOT_CHECKED_EN} Please try again later."
                ),
            ),
            other => other.text(),
        }
    }

    /// The message for the user.
    pub fn text(&self) -> Text {
        match self {
            Self::NumberEmpty => Text::new(
                "処理番号を入力してください。SMSまたはメールで届いた8桁の数字です。",
                "Enter the processing number: the 8 digits you received by SMS or e-mail.",
            ),
            Self::NumberLength { digits } => Text::new(
                format!(
                    "処理番号は8桁の数字です。入力された番号は{digits}桁です。SMSまたはメールで届いた番号をもう一度ご確認ください。"
                ),
                format!(
                    "The processing number has 8 digits; you entered {digits}. Please check the number in the SMS or e-mail again."
                ),
            ),
            Self::NumberCharacter { found } => Text::new(
                format!(
                    "処理番号に使えない文字「{found}」が含まれています。処理番号は8桁の数字です（全角の数字、空白、ハイフンはそのまま入力できます）。"
                ),
                format!(
                    "The processing number cannot contain {found:?}. It is 8 digits (full-width digits, spaces and hyphens are fine)."
                ),
            ),
            Self::LinkMalformed { reason } => Text::new(
                "このリンクは処理番号のリンクではありません。SMSまたはメールに記載の「https://…/cocoa/a/?pn=…」のリンクを開くか、8桁の処理番号を入力してください。",
                format!(
                    "This is not a processing-number link ({reason}). Open the https://…/cocoa/a/?pn=… link of the SMS or e-mail, or enter the 8-digit number."
                ),
            ),
            Self::DateMalformed { input } => Text::new(
                format!("日付「{input}」を読み取れません。「2020-12-14」の形で入力してください。"),
                format!("Cannot read the date {input:?}; use the form 2020-12-14."),
            ),
            Self::DateInFuture { date } => Text::new(
                format!(
                    "{}は未来の日付です。症状が始まった日（症状がない場合は検査を受けた日）は今日以前の日付を入力してください。",
                    ja_date(*date)
                ),
                format!(
                    "{date} is in the future. Enter the day your symptoms began (or you were tested): today or earlier."
                ),
            ),
            Self::DateTooOld { date, earliest } => Text::new(
                format!(
                    "{}は14日より前の日付です。{}以降の日付を入力してください（症状がそれより前に始まった場合は{}を選んでください）。陽性登録から遡って14日間より前の接触について通知されることはありません。",
                    ja_date(*date),
                    ja_date(*earliest),
                    ja_date(*earliest)
                ),
                format!(
                    "{date} is more than 14 days ago. Enter {earliest} or later (choose {earliest} if your symptoms began earlier): contacts more than 14 days before registration are never notified."
                ),
            ),
            Self::UnknownPrefecture { input } => Text::new(
                format!(
                    "都道府県「{input}」が分かりません。都道府県コード（01〜47、例: 東京都は13）または都道府県名を指定してください。"
                ),
                format!(
                    "Unknown prefecture {input:?}: give a prefecture code 01-47 (Tokyo is 13) or its name."
                ),
            ),
            Self::RssiOutOfRange { rssi } => Text::new(
                format!(
                    "受信信号強度（RSSI）{rssi} dBm は範囲外です。−127〜20 dBm の値を指定してください。"
                ),
                format!("RSSI {rssi} dBm is out of range: give a value from -127 to 20 dBm."),
            ),
            Self::TxPowerOutOfRange { tx_power } => Text::new(
                format!(
                    "送信出力 {tx_power} dBm は範囲外です。−127〜20 dBm の値を指定してください。"
                ),
                format!(
                    "TX power {tx_power} dBm is out of range: give a value from -127 to 20 dBm."
                ),
            ),
            Self::RpiMalformed { input } => Text::new(
                format!("RPI「{input}」が正しくありません。RPIは16バイト（16進数32桁）です。"),
                format!("RPI {input:?} is malformed: it is 16 bytes (32 hex digits)."),
            ),
            Self::AemMalformed { input } => Text::new(
                format!("AEM「{input}」が正しくありません。AEMは4バイト（16進数8桁）です。"),
                format!("AEM {input:?} is malformed: it is 4 bytes (8 hex digits)."),
            ),
            Self::SecondsOutOfRange { seconds } => Text::new(
                format!("接触の秒数 {seconds} は範囲外です。1〜3600秒で指定してください。"),
                format!("{seconds} seconds is out of range: give 1 to 3600."),
            ),
            Self::TimeOutOfRange { at, reason } => Text::new(
                format!(
                    "日時 {at} は使えません（{}）。",
                    match *reason {
                        "before setup" => "このスマートフォンでアプリを使い始める前の日時です",
                        "older than 14 days" => "14日より前の記録は保存しません",
                        "in the future" => "未来の日時です",
                        _ => "範囲外です",
                    }
                ),
                format!("The time {at} cannot be used: {reason}."),
            ),
            Self::MeetInvalid { reason } => Text::new(
                format!(
                    "接触の条件が正しくありません（{}）。",
                    match *reason {
                        "two different homes are needed" =>
                            "異なる2台のスマートフォンを指定してください",
                        "minutes must be 1 to 1440" => "時間は1〜1440分で指定してください",
                        "distance must be 0.1 to 100 m" => "距離は0.1〜100 mで指定してください",
                        _ => "範囲外です",
                    }
                ),
                format!("Cannot simulate this meeting: {reason}."),
            ),
            Self::RegistrationInputMissing => Text::new(
                "症状の有無、症状が始まった日（または検査日）、処理番号（またはリンク）を入力してください。",
                "Enter whether you have symptoms, the date they began (or of your test), and the processing number (or link).",
            ),
            Self::SettingInvalid { setting, reason } => Text::new(
                format!("設定「{setting}」が正しくありません: {reason}"),
                format!("Setting {setting} is invalid: {reason}"),
            ),
            Self::NotInitialised { home } => Text::new(
                format!(
                    "{home} にはアプリのデータがありません。先に「cocoa app --home {home} init」を実行してください。"
                ),
                format!("{home} holds no phone: run `cocoa app --home {home} init` first."),
            ),
            Self::AlreadyInitialised { home } => Text::new(
                format!("{home} にはすでにアプリのデータがあります。"),
                format!("{home} already holds a phone."),
            ),
            Self::NotConfigured { setting } => {
                // The phone exists (init ran): what is missing is set with
                // `configure`, never a second `init` (which is refused).
                let how = match *setting {
                    "server" | "keyserver" => "cocoa app configure --server URL",
                    "export public key" => "cocoa app configure --export-public-key PEMファイル",
                    _ => "cocoa app configure",
                };
                let how_en = how.replace("PEMファイル", "PEM_FILE");
                Text::new(
                    format!("「{setting}」が設定されていません。「{how}」で設定してください。"),
                    format!("{setting} is not configured: set it with `{how_en}`."),
                )
            }
            Self::NoKeysInWindow { date } => Text::new(
                format!(
                    "このスマートフォンには、{}の2日前から{}までの接触確認の記録（接触確認のための鍵）がありません。アプリを使い始める前（または接触確認を使っていなかった期間）のため、陽性登録をしても、過去に接触した可能性のある方への通知を行うことはできません（よくある質問 問4）。処理番号は使われていません。",
                    ja_date(*date),
                    ja_date(*date)
                ),
                format!(
                    "This phone holds no keys from 2 days before {date} to {date}: the app was not running then (installed later, or exposure notification was off), so registering cannot notify anyone you met (FAQ Q4). The processing number was not used."
                ),
            ),
            Self::CodeInvalid {
                maybe_used_by_lost_attempt,
            } => {
                let (ja_extra, en_extra) = if *maybe_used_by_lost_attempt {
                    (
                        "前回の送信の応答が届かなかったため、その送信で処理番号が使われた可能性があります。",
                        " An earlier attempt whose answer was lost may have used it.",
                    )
                } else {
                    ("", "")
                };
                Text::new(
                    format!(
                        "処理番号が正しくないか、すでに使用されています。{ja_extra}入力した番号が正しい場合は、{ASK_NEW_NUMBER_JA}"
                    ),
                    format!(
                        "The processing number is wrong or was already used.{en_extra} If you typed it correctly, {}",
                        ASK_NEW_NUMBER_EN.to_lowercase()
                    ),
                )
            }
            Self::CodeExpired => Text::new(
                format!("処理番号の有効期限が切れています。{ASK_NEW_NUMBER_JA}"),
                format!("The processing number has expired. {ASK_NEW_NUMBER_EN}"),
            ),
            Self::InvalidTestType => Text::new(
                format!("この処理番号ではこのアプリに登録できません。{ASK_NEW_NUMBER_JA}"),
                format!(
                    "This processing number cannot be registered with this app. {ASK_NEW_NUMBER_EN}"
                ),
            ),
            Self::TokenRejected { code } => Text::new(
                format!(
                    "登録の手続きの有効期限が切れたため、登録を続けられません。{ASK_NEW_NUMBER_JA}"
                ),
                format!(
                    "The registration can no longer be completed ({code}). {ASK_NEW_NUMBER_EN}"
                ),
            ),
            Self::CertificateRejected { code } => Text::new(
                format!(
                    "通知サーバーが登録の証明を受け付けませんでした。登録を続けられません。{ASK_NEW_NUMBER_JA}"
                ),
                format!(
                    "The notification server refused the registration's certificate ({code}). {ASK_NEW_NUMBER_EN}"
                ),
            ),
            Self::PublishRejected { code, message } => Text::new(
                format!("通知サーバーが登録を受け付けませんでした（{code}）。"),
                format!("The notification server refused the keys ({code}: {message})."),
            ),
            Self::Unauthorized => Text::new(
                "アプリの設定に誤りがあり、サーバーに接続できません（APIキー）。",
                "The app is misconfigured: the server refused its API key.",
            ),
            Self::RateLimited { retry_after } => Text::new(
                format!(
                    "ただいま混み合っています。{}後でもう一度お試しください。入力した内容は保存されています。",
                    retry_after
                        .map(|s| format!("{}分ほど", s.div_ceil(60)))
                        .unwrap_or_default()
                ),
                format!(
                    "The server is busy; please try again{}. What you entered is saved.",
                    retry_after
                        .map(|s| format!(" in about {} min", s.div_ceil(60)))
                        .unwrap_or_default()
                ),
            ),
            Self::NumberEntryPaused {
                retry_after,
                everywhere,
            } => {
                let (when_ja, when_en) = match retry_after {
                    Some(s) if *s >= 3600 => (
                        format!("（約{}時間後から再び入力できます）", (s + 1799) / 3600),
                        format!(" (again in about {} h)", (s + 1799) / 3600),
                    ),
                    Some(s) => (
                        format!("（約{}分後から再び入力できます）", s.div_ceil(60)),
                        format!(" (again in about {} min)", s.div_ceil(60)),
                    ),
                    None => (String::new(), String::new()),
                };
                if *everywhere {
                    Text::new(
                        format!(
                            "誤った処理番号の入力が全国的に多いため、推測による不正な登録を防ぐ目的で、処理番号の入力による登録が一時停止されています{when_ja}。SMS・メールに記載のリンクを開けば、今すぐ登録できます。処理番号は使われていません。"
                        ),
                        format!(
                            "So many wrong processing numbers are being typed that typed numbers are paused for everyone, to stop guessing{when_en}. Open the link in the SMS or e-mail to register now. The number was not used."
                        ),
                    )
                } else {
                    Text::new(
                        format!(
                            "この回線（同じ接続元を使う他の方を含みます）から誤った処理番号が続けて入力されたため、処理番号の入力をしばらく受け付けられません{when_ja}。SMS・メールに記載のリンクを開けば、今すぐ登録できます。処理番号は使われていません。"
                        ),
                        format!(
                            "Too many wrong processing numbers were typed from this network address (other people on it count too), so typed numbers are refused for a while{when_en}. Open the link in the SMS or e-mail to register now. The number was not used."
                        ),
                    )
                }
            }
            Self::Unavailable { detail } => Text::new(
                "サーバーに接続できませんでした。通信環境の良いところで、もう一度お試しください。登録は途中から再開され、処理番号が無駄になることはありません。",
                format!(
                    "Could not reach the server ({detail}). Please try again with a better connection: the registration resumes where it stopped without wasting the number."
                ),
            ),
            Self::IndexNotFound { url } => Text::new(
                format!(
                    "接触確認のための一覧（{url}）が見つかりません（HTTP 404）。接触確認はできていません。設定の exports のURLが正しいか確認してください。"
                ),
                format!(
                    "The export index {url} was not found (HTTP 404): no exposure check was done. Check the exports URL in the settings."
                ),
            ),
            Self::UnexpectedAnswer { detail } => Text::new(
                "サーバーから予期しない応答がありました。時間をおいてもう一度お試しください。",
                format!("The server gave an unexpected answer ({detail}); please try again later."),
            ),
            Self::Storage(e) => Text::new(
                "スマートフォン内のデータを読み書きできませんでした。",
                format!("Local storage failed: {e}"),
            ),
            Self::Io(e) => Text::new(
                "ファイルを読み書きできませんでした。",
                format!("File error: {e}"),
            ),
            Self::Corrupt(e) => Text::new(
                "スマートフォン内のデータが壊れています。",
                format!("Stored data is corrupt: {e}"),
            ),
        }
    }
}
