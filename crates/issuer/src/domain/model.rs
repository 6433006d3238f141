//! The records of the health-centre side: centres, staff, confirmed cases,
//! issuances of processing numbers.

use api_types::cases::{Classification, Sex};
use chrono::NaiveDate;

/// A health centre (保健所) and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Centre {
    /// Id.
    pub id: i64,
    /// Name, e.g. 「みなと保健所」.
    pub name: String,
    /// Prefecture code (JIS X 0401, "01".."47").
    pub prefecture: String,
    /// Name of the consultation centre (受診・相談センター) shown to notified
    /// phones of the prefecture; empty: the phones keep their built-in entry.
    pub consultation_name: String,
    /// Phone of the consultation centre shown to notified users.
    pub consultation_phone: String,
    /// Web page of the consultation centre.
    pub consultation_url: String,
    /// Opening hours of the consultation centre, as people read them.
    pub consultation_hours: String,
    /// How long a processing number stays valid, in seconds (default 24 h).
    pub validity_seconds: i64,
    /// Issue and send automatically when a case qualifies (COCOA from Dec 2021).
    pub auto_issue: bool,
    /// Allow numbers for clinical diagnoses (report type `likely`).
    pub allow_clinical: bool,
    /// "Optional fallback to the other channel when one fails (per
    /// centre)": a number whose SMS is refused for good goes by e-mail when
    /// the case has an address. Off by default.
    pub delivery_fallback: bool,
    /// "Reminder (per centre, off by default): when a number is still
    /// unused N hours after delivery, one reminder with the same link,
    /// never more." `None`: no reminder.
    pub reminder_after_hours: Option<u32>,
}

/// Default validity of a processing number: 24 hours (PROTOCOLS.md §4).
pub const DEFAULT_VALIDITY_SECONDS: i64 = 24 * 3600;

/// Role of a staff account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Acts on the cases of their centre.
    Staff,
    /// Also manages the centre's settings and accounts.
    Admin,
    /// Acts on every centre.
    System,
}

impl Role {
    /// Stable name (`staff`, `admin`, `system`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Admin => "admin",
            Self::System => "system",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "staff" => Some(Self::Staff),
            "admin" => Some(Self::Admin),
            "system" => Some(Self::System),
            _ => None,
        }
    }
}

/// The report type a case's number certifies (the certificate's `reportType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportType {
    /// A positive test: 確定例 or 無症状病原体保有者.
    Confirmed,
    /// A clinical diagnosis.
    Likely,
}

impl ReportType {
    /// `confirmed` or `likely`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => api_types::verify::TEST_TYPE_CONFIRMED,
            Self::Likely => api_types::verify::TEST_TYPE_LIKELY,
        }
    }

    /// Parses `confirmed` / `likely`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confirmed" => Some(Self::Confirmed),
            "likely" => Some(Self::Likely),
            _ => None,
        }
    }
}

/// Stable name of a sex.
pub fn sex_str(s: Sex) -> &'static str {
    match s {
        Sex::Male => "male",
        Sex::Female => "female",
        Sex::Other => "other",
    }
}

/// Parses a stable sex name.
pub fn parse_sex(s: &str) -> Option<Sex> {
    match s {
        "male" => Some(Sex::Male),
        "female" => Some(Sex::Female),
        "other" => Some(Sex::Other),
        _ => None,
    }
}

/// Stable name of a classification.
pub fn classification_str(c: Classification) -> &'static str {
    match c {
        Classification::Confirmed => "confirmed",
        Classification::Asymptomatic => "asymptomatic",
        Classification::Clinical => "clinical",
    }
}

/// Parses a stable classification name.
pub fn parse_classification(s: &str) -> Option<Classification> {
    match s {
        "confirmed" => Some(Classification::Confirmed),
        "asymptomatic" => Some(Classification::Asymptomatic),
        "clinical" => Some(Classification::Clinical),
        _ => None,
    }
}

/// A case's data, validated, as it is stored (without id and timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseData {
    /// Responsible centre (担当保健所).
    pub centre_id: Option<i64>,
    /// 氏名 (may be empty while unknown).
    pub name_kanji: String,
    /// フリガナ (may be empty while unknown).
    pub name_kana: String,
    /// 生年月日.
    pub birth_date: NaiveDate,
    /// 性別.
    pub sex: Sex,
    /// Mobile number, 11 national digits.
    pub mobile: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// 発生届 ① 外来機関 (may be empty while unknown).
    pub outpatient_facility: String,
    /// 発生届 ② 検査陽性.
    pub test_positive: bool,
    /// 発生届 ③ 確定例 / 無症状病原体保有者 / 臨床診断.
    pub classification: Classification,
    /// 発生届 ④ 診断年月日.
    pub diagnosis_date: Option<NaiveDate>,
    /// Whether the 発生届 was reported (「報告」ボタン).
    pub reported: bool,
    /// The patient uses the app and wants to register.
    pub uses_app: bool,
}

/// A stored case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Id (HER-SYS ID).
    pub id: i64,
    /// The data.
    pub data: CaseData,
    /// Created (unix seconds).
    pub created_at: i64,
    /// A synthetic case of the production canary (`POST /api/v1/canary-cases`).
    pub canary: bool,
}

/// State of one issuance of a processing number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuanceState {
    /// Sent (or being sent) and usable until it expires.
    Issued,
    /// Replaced by a reissue; stopped working at once.
    Superseded,
    /// Claimed by a registration.
    Used,
    /// Past its validity, or withdrawn because its message was not delivered.
    Expired,
}

impl IssuanceState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Superseded => "superseded",
            Self::Used => "used",
            Self::Expired => "expired",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "issued" => Some(Self::Issued),
            "superseded" => Some(Self::Superseded),
            "used" => Some(Self::Used),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// Delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// SMS to the mobile number.
    Sms,
    /// E-mail.
    Email,
    /// The production canary's own receiver (canary cases only): the number
    /// goes to `cocoa canary`, never to a person.
    Canary,
}

impl Channel {
    /// `sms`, `email` or `canary`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Canary => "canary",
        }
    }

    /// Parses `sms` / `email` / `canary`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sms" => Some(Self::Sms),
            "email" => Some(Self::Email),
            "canary" => Some(Self::Canary),
            _ => None,
        }
    }
}

/// One issuance as staff may see it: never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    /// Id.
    pub id: i64,
    /// The case.
    pub case_id: i64,
    /// State, with expiry applied at read time.
    pub state: IssuanceState,
    /// Report type certified.
    pub report_type: ReportType,
    /// Channel.
    pub channel: Channel,
    /// `pending` (queued), `sent` (handed to the gateway or accepted by the
    /// mail relay), `delivered` (the gateway's receipt), `failed` or
    /// `undelivered` (with [`delivery_error`](Self::delivery_error)). Never
    /// moves backwards.
    pub delivery_status: String,
    /// Why the delivery failed.
    pub delivery_error: Option<String>,
    /// Who issued it (`staff:<login>`, `api:<key id>`, `auto`).
    pub issued_by: String,
    /// Issued (unix seconds).
    pub issued_at: i64,
    /// Expires (unix seconds).
    pub expires_at: i64,
    /// Used (unix seconds).
    pub used_at: Option<i64>,
    /// Handed to the gateway or relay (unix seconds).
    pub sent_at: Option<i64>,
    /// Delivered: the gateway's delivered receipt, or sending where the
    /// channel gives no receipts (unix seconds).
    pub delivered_at: Option<i64>,
}
