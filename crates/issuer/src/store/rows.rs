//! Row types and the mapping between rows and domain records.

use api_types::cases::Classification;
use chrono::NaiveDate;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use super::StoreError;
use crate::domain::model::{
    self, Case, CaseData, Centre, Channel, Issuance, IssuanceState, ReportType, Role,
};

pub(super) const CENTRE_COLUMNS: &str = "id, name, prefecture, consultation_name, consultation_phone, consultation_url, consultation_hours, validity_seconds, auto_issue, allow_clinical, delivery_fallback, reminder_after_hours";

pub(super) const CASE_COLUMNS: &str = "id, centre_id, name_kanji, name_kana, birth_date, sex, mobile, email, \
     outpatient_facility, test_positive, classification, diagnosis_date, reported, uses_app, created_at, canary";

pub(super) const ISSUANCE_COLUMNS: &str = "id, case_id, state, report_type, channel, delivery_status, \
     delivery_error, issued_by, issued_at, expires_at, used_at, sent_at, delivered_at";

/// A staff account row.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffRow {
    /// Id.
    pub id: i64,
    /// Centre.
    pub centre_id: i64,
    /// Login id.
    pub login: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Base32 TOTP secret when enabled.
    pub totp_secret: Option<String>,
    /// Disabled since.
    pub disabled_at: Option<i64>,
}

impl std::fmt::Debug for StaffRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffRow")
            .field("id", &self.id)
            .field("centre_id", &self.centre_id)
            .field("login", &self.login)
            .field("role", &self.role)
            .field("totp", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// Kind of API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyKind {
    /// The app's key for `/api/verify` and `/api/certificate`.
    Device,
    /// A case system's key for the machine API.
    Admin,
}

impl ApiKeyKind {
    /// `device` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::Admin => "admin",
        }
    }

    /// Parses `device` / `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(Self::Device),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A live API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: ApiKeyKind,
    /// Centre the key acts for (`None`: every centre).
    pub centre_id: Option<i64>,
}

/// One audit-log entry: who, when, which case, what, outcome. Never a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (unix seconds).
    pub at: i64,
    /// `staff:<login>`, `api:<key id>`, `system`.
    pub actor: String,
    /// Centre.
    pub centre_id: Option<i64>,
    /// Case.
    pub case_id: Option<i64>,
    /// What, e.g. `issue_number`.
    pub action: String,
    /// `ok` or an error code.
    pub outcome: String,
    /// Free detail (never a code).
    pub detail: String,
}

/// A stored certificate signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// Key id.
    pub kid: String,
    /// PKCS#8 DER of the private key, sealed under the server secret
    /// (`sealed:v1:…`, `store_support::sealed`); rows of an older version
    /// hold plain hex until the next start seals them. (The column keeps
    /// its first name: migrations are append-only.)
    pub private_pkcs8_hex: String,
    /// SPKI PEM of the public key.
    pub public_pem: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Leaves the JWKS at (unix seconds).
    pub retire_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retire_at", &self.retire_at)
            .finish_non_exhaustive()
    }
}

/// Issuance statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IssuanceStats {
    /// Numbers issued.
    pub issued: i64,
    /// Messages delivered.
    pub delivered: i64,
    /// Deliveries that failed.
    pub delivery_failed: i64,
    /// Numbers used for a registration.
    pub used: i64,
    /// Numbers expired unused.
    pub expired: i64,
    /// Numbers superseded by a reissue.
    pub superseded: i64,
    /// Numbers live now.
    pub live: i64,
    /// Median seconds from issue to registration.
    pub median_seconds_to_registration: Option<i64>,
}

fn corrupt<T>(what: &'static str) -> impl FnOnce() -> Result<T, StoreError> {
    move || Err(StoreError::Corrupt(what))
}

fn flag(r: &AnyRow, col: &str) -> Result<bool, StoreError> {
    Ok(r.try_get::<i64, _>(col)? != 0)
}

fn date(s: &str, what: &'static str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| StoreError::Corrupt(what))
}

pub(super) fn centre(r: &AnyRow) -> Result<Centre, StoreError> {
    Ok(Centre {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefecture: r.try_get("prefecture")?,
        consultation_name: r.try_get("consultation_name")?,
        consultation_phone: r.try_get("consultation_phone")?,
        consultation_url: r.try_get("consultation_url")?,
        consultation_hours: r.try_get("consultation_hours")?,
        validity_seconds: r.try_get("validity_seconds")?,
        auto_issue: flag(r, "auto_issue")?,
        allow_clinical: flag(r, "allow_clinical")?,
        delivery_fallback: flag(r, "delivery_fallback")?,
        reminder_after_hours: r
            .try_get::<Option<i64>, _>("reminder_after_hours")?
            .map(u32::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt("centres.reminder_after_hours"))?,
    })
}

pub(super) fn staff(r: &AnyRow) -> Result<StaffRow, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(StaffRow {
        id: r.try_get("id")?,
        centre_id: r.try_get("centre_id")?,
        login: r.try_get("login")?,
        password_hash: r.try_get("password_hash")?,
        role: Role::parse(&role).map_or_else(corrupt("staff.role"), Ok)?,
        totp_secret: r.try_get("totp_secret")?,
        disabled_at: r.try_get("disabled_at")?,
    })
}

pub(super) fn api_key(r: &AnyRow) -> Result<ApiKeyRow, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        kind: ApiKeyKind::parse(&kind).map_or_else(corrupt("api_keys.kind"), Ok)?,
        centre_id: r.try_get("centre_id")?,
    })
}

pub(super) fn bind_case<'q>(
    q: Query<'q, Any, AnyArguments<'q>>,
    c: &CaseData,
) -> Query<'q, Any, AnyArguments<'q>> {
    q.bind(c.centre_id)
        .bind(c.name_kanji.clone())
        .bind(c.name_kana.clone())
        .bind(c.birth_date.format("%Y-%m-%d").to_string())
        .bind(model::sex_str(c.sex))
        .bind(c.mobile.clone())
        .bind(c.email.clone())
        .bind(c.outpatient_facility.clone())
        .bind(i64::from(c.test_positive))
        .bind(model::classification_str(c.classification))
        .bind(c.diagnosis_date.map(|d| d.format("%Y-%m-%d").to_string()))
        .bind(i64::from(c.reported))
        .bind(i64::from(c.uses_app))
}

pub(super) fn case(r: &AnyRow) -> Result<Case, StoreError> {
    let sex: String = r.try_get("sex")?;
    let class: String = r.try_get("classification")?;
    let birth: String = r.try_get("birth_date")?;
    let diag: Option<String> = r.try_get("diagnosis_date")?;
    let classification: Classification =
        model::parse_classification(&class).map_or_else(corrupt("cases.classification"), Ok)?;
    Ok(Case {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        canary: flag(r, "canary")?,
        data: CaseData {
            centre_id: r.try_get("centre_id")?,
            name_kanji: r.try_get("name_kanji")?,
            name_kana: r.try_get("name_kana")?,
            birth_date: date(&birth, "cases.birth_date")?,
            sex: model::parse_sex(&sex).map_or_else(corrupt("cases.sex"), Ok)?,
            mobile: r.try_get("mobile")?,
            email: r.try_get("email")?,
            outpatient_facility: r.try_get("outpatient_facility")?,
            test_positive: flag(r, "test_positive")?,
            classification,
            diagnosis_date: diag.map(|d| date(&d, "cases.diagnosis_date")).transpose()?,
            reported: flag(r, "reported")?,
            uses_app: flag(r, "uses_app")?,
        },
    })
}

pub(super) fn issuance(r: &AnyRow, now: i64) -> Result<Issuance, StoreError> {
    let state: String = r.try_get("state")?;
    let rt: String = r.try_get("report_type")?;
    let ch: String = r.try_get("channel")?;
    let expires_at: i64 = r.try_get("expires_at")?;
    let mut state = IssuanceState::parse(&state).map_or_else(corrupt("issuances.state"), Ok)?;
    if state == IssuanceState::Issued && expires_at <= now {
        state = IssuanceState::Expired;
    }
    Ok(Issuance {
        id: r.try_get("id")?,
        case_id: r.try_get("case_id")?,
        state,
        report_type: ReportType::parse(&rt).map_or_else(corrupt("issuances.report_type"), Ok)?,
        channel: Channel::parse(&ch).map_or_else(corrupt("issuances.channel"), Ok)?,
        delivery_status: r.try_get("delivery_status")?,
        delivery_error: r.try_get("delivery_error")?,
        issued_by: r.try_get("issued_by")?,
        issued_at: r.try_get("issued_at")?,
        expires_at,
        used_at: r.try_get("used_at")?,
        sent_at: r.try_get("sent_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

pub(super) fn audit(r: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        centre_id: r.try_get("centre_id")?,
        case_id: r.try_get("case_id")?,
        action: r.try_get("action")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
    })
}

pub(super) fn signing_key(r: &AnyRow) -> Result<SigningKeyRow, StoreError> {
    Ok(SigningKeyRow {
        kid: r.try_get("kid")?,
        private_pkcs8_hex: r.try_get("private_pkcs8_hex")?,
        public_pem: r.try_get("public_pem")?,
        created_at: r.try_get("created_at")?,
        retire_at: r.try_get("retire_at")?,
    })
}

pub(super) fn stats(rs: &[AnyRow], now: i64) -> Result<IssuanceStats, StoreError> {
    let mut s = IssuanceStats::default();
    let mut durations = Vec::new();
    for r in rs {
        let state: String = r.try_get("state")?;
        let delivery: String = r.try_get("delivery_status")?;
        let expires_at: i64 = r.try_get("expires_at")?;
        let issued_at: i64 = r.try_get("issued_at")?;
        let used_at: Option<i64> = r.try_get("used_at")?;
        s.issued += 1;
        match delivery.as_str() {
            "sent" | "delivered" => s.delivered += 1,
            "failed" | "undelivered" => s.delivery_failed += 1,
            _ => {}
        }
        match state.as_str() {
            "used" => s.used += 1,
            "superseded" => s.superseded += 1,
            "issued" if expires_at > now => s.live += 1,
            _ => s.expired += 1,
        }
        if let Some(u) = used_at {
            durations.push(u - issued_at);
        }
    }
    durations.sort_unstable();
    s.median_seconds_to_registration = durations.get(durations.len() / 2).copied();
    Ok(s)
}
