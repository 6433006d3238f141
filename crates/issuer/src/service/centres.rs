//! Centres and their settings, and API keys, as administrators change them
//! in the portal (issue 13: "Centre settings page for centre administrators
//! (system administrators: every centre): validity, automatic issuance,
//! clinical diagnoses, … the consultation centre shown to notified phones of
//! the prefecture (name, phone, URL, hours)"; "API keys: create (shown
//! once), list, revoke. System administrators: the list of centres").
//!
//! Every change is checked here, not in the page: a staff member is
//! refused, a centre administrator reaches only their own centre (another
//! centre is `not_found`, as if it did not exist), a system administrator
//! every centre. Each change is audited; the audit detail names what
//! changed, never a person.

use api_types::centres::ConsultationCentreEntry;

use super::{Actor, Issuer};
use crate::domain::model::{Centre, Role};
use crate::domain::validate::{self, FieldError};
use crate::error::{Error, Result};
use crate::store::{ApiKeyKind, ApiKeyListing, StaffRow};

/// Shortest validity staff may set: one hour.
pub const MIN_VALIDITY_HOURS: i64 = 1;
/// Longest validity staff may set: seven days (the clamp of
/// [`crate::domain::rules`]).
pub const MAX_VALIDITY_HOURS: i64 = 7 * 24;
/// Longest consultation centre name or hours text, characters.
pub const MAX_CONSULTATION_CHARS: usize = 60;
/// Longest consultation centre URL, bytes.
pub const MAX_URL_BYTES: usize = 200;
/// Longest API key label, characters.
pub const MAX_KEY_LABEL_CHARS: usize = 40;

/// The settings form of a centre, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CentreSettingsInput {
    /// Validity of a number in whole hours.
    pub validity_hours: String,
    /// Issue and send automatically when a case qualifies.
    pub auto_issue: bool,
    /// Allow numbers for clinical diagnoses (疑似症).
    pub allow_clinical: bool,
    /// The consultation centre's name; empty: phones keep their built-in entry.
    pub consultation_name: String,
    /// Its phone.
    pub consultation_phone: String,
    /// Its web page.
    pub consultation_url: String,
    /// Its hours.
    pub consultation_hours: String,
    /// Send the number by e-mail when its SMS fails for good.
    pub delivery_fallback: bool,
    /// Hours after delivery of the one reminder; empty: no reminder.
    pub reminder_hours: String,
}

impl CentreSettingsInput {
    /// The form's values of a stored centre.
    pub fn of(c: &Centre) -> Self {
        Self {
            validity_hours: (c.validity_seconds / 3600).max(1).to_string(),
            auto_issue: c.auto_issue,
            allow_clinical: c.allow_clinical,
            consultation_name: c.consultation_name.clone(),
            consultation_phone: c.consultation_phone.clone(),
            consultation_url: c.consultation_url.clone(),
            consultation_hours: c.consultation_hours.clone(),
            delivery_fallback: c.delivery_fallback,
            reminder_hours: c
                .reminder_after_hours
                .map(|h| h.to_string())
                .unwrap_or_default(),
        }
    }

    /// `centre` with these settings, or every field's error (nothing is
    /// half-applied: one bad field refuses the whole form).
    pub fn apply(&self, centre: &Centre) -> std::result::Result<Centre, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut c = centre.clone();
        match self.validity_hours.trim().parse::<i64>() {
            Ok(h) if (MIN_VALIDITY_HOURS..=MAX_VALIDITY_HOURS).contains(&h) => {
                c.validity_seconds = h * 3600;
            }
            _ => errors.push(field(
                "validity_hours",
                format!(
                    "有効期間は{MIN_VALIDITY_HOURS}～{MAX_VALIDITY_HOURS}の整数（時間）で入力してください"
                ),
                format!(
                    "validity must be a whole number of hours from {MIN_VALIDITY_HOURS} to {MAX_VALIDITY_HOURS}"
                ),
            )),
        }
        c.auto_issue = self.auto_issue;
        c.allow_clinical = self.allow_clinical;
        c.delivery_fallback = self.delivery_fallback;
        // The reminder must come while the number still works: before the
        // validity ends (counted from the same delivery).
        let validity_hours = c.validity_seconds / 3600;
        c.reminder_after_hours = match self.reminder_hours.trim() {
            "" => None,
            h => match h.parse::<u32>() {
                Ok(h) if h >= 1 && i64::from(h) < validity_hours => Some(h),
                _ => {
                    errors.push(field(
                        "reminder_hours",
                        format!(
                            "リマインダーは1以上、有効期間（{validity_hours}時間）未満の整数（時間）で入力してください。送らない場合は空欄にします"
                        ),
                        format!(
                            "the reminder must be a whole number of hours from 1 to less than the validity ({validity_hours} h); leave it empty for none"
                        ),
                    ));
                    None
                }
            },
        };
        let mut short = |name: &'static str, input: &str, ja: &str, en: &str| -> String {
            match validate::text(name, input) {
                Ok(s) if s.chars().count() <= MAX_CONSULTATION_CHARS => s,
                _ => {
                    errors.push(field(
                        name,
                        format!("{ja}は{MAX_CONSULTATION_CHARS}文字以内で入力してください（制御文字は使えません）"),
                        format!("{en} must be at most {MAX_CONSULTATION_CHARS} characters without control characters"),
                    ));
                    String::new()
                }
            }
        };
        c.consultation_name = short(
            "consultation_name",
            &self.consultation_name,
            "相談センターの名称",
            "the consultation centre's name",
        );
        c.consultation_hours = short(
            "consultation_hours",
            &self.consultation_hours,
            "受付時間",
            "the hours",
        );
        c.consultation_phone = match consultation_phone(&self.consultation_phone) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                String::new()
            }
        };
        c.consultation_url = match consultation_url(&self.consultation_url) {
            Ok(u) => u,
            Err(e) => {
                errors.push(e);
                String::new()
            }
        };
        let rest_set = !(c.consultation_phone.is_empty()
            && c.consultation_url.is_empty()
            && c.consultation_hours.is_empty());
        if c.consultation_name.is_empty()
            && rest_set
            && !errors.iter().any(|e| e.field == "consultation_name")
        {
            errors.push(field(
                "consultation_name",
                "電話番号・URL・受付時間を配信するには相談センターの名称も入力してください",
                "enter the consultation centre's name to publish its phone, URL and hours",
            ));
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors)
        }
    }
}

fn field(name: &'static str, ja: impl Into<String>, en: impl Into<String>) -> FieldError {
    FieldError {
        field: name,
        message_ja: ja.into(),
        message_en: en.into(),
    }
}

/// A consultation centre's phone as people dial it: a Japanese number of
/// 10 or 11 digits beginning with 0 (hyphens allowed: 03-5320-4592,
/// 0120-565653), or a short number such as #7119. Empty is allowed.
pub fn consultation_phone(input: &str) -> std::result::Result<String, FieldError> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let short = s.len() == 5 && s.starts_with('#') && digits == 4;
    let long = s.starts_with('0')
        && (10..=11).contains(&digits)
        && s.chars().all(|c| c.is_ascii_digit() || c == '-')
        && !s.contains("--")
        && !s.ends_with('-');
    if short || long {
        Ok(s.to_owned())
    } else {
        Err(field(
            "consultation_phone",
            "電話番号は 03-5320-4592 や 0120-565653、#7119 のように半角で入力してください",
            "phone must be like 03-5320-4592, 0120-565653 or #7119 (ASCII digits)",
        ))
    }
}

/// A consultation centre's web page: an absolute `http(s)://` URL with a
/// host, at most [`MAX_URL_BYTES`]. Phones open only these schemes.
pub fn consultation_url(input: &str) -> std::result::Result<String, FieldError> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    let ok = s.len() <= MAX_URL_BYTES
        && reqwest::Url::parse(s).is_ok_and(|u| {
            matches!(u.scheme(), "https" | "http") && u.host_str().is_some_and(|h| !h.is_empty())
        });
    if ok {
        Ok(s.to_owned())
    } else {
        Err(field(
            "consultation_url",
            format!("URLは https:// で始まる{MAX_URL_BYTES}文字以内のアドレスを入力してください"),
            format!("URL must be an https:// address of at most {MAX_URL_BYTES} characters"),
        ))
    }
}

/// The API key label as typed: 1–[`MAX_KEY_LABEL_CHARS`] characters.
pub fn key_label(input: &str) -> Result<String> {
    let s = validate::text("label", input)?;
    if s.is_empty() || s.chars().count() > MAX_KEY_LABEL_CHARS {
        return Err(field(
            "label",
            format!("名前（どの連携システムのキーか）を{MAX_KEY_LABEL_CHARS}文字以内で入力してください"),
            format!("enter a name (which system the key is for) of at most {MAX_KEY_LABEL_CHARS} characters"),
        )
        .into());
    }
    Ok(s)
}

fn refused(name: &'static str, ja: &str, en: &str) -> Error {
    field(name, ja, en).into()
}

fn not_found() -> Error {
    refused("not_found", "保健所が見つかりません", "no such centre")
}

fn admins_only() -> Error {
    refused(
        "forbidden",
        "この操作は管理者だけが行えます",
        "only administrators can do this",
    )
}

/// Field errors of a settings form, or a store error.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The form had bad fields; nothing was saved.
    #[error("{} bad field(s)", .0.len())]
    Fields(Vec<FieldError>),
    /// Refused or failed.
    #[error(transparent)]
    Other(#[from] Error),
}

impl Issuer {
    /// The centre `id` as `by` may administer it: their own (a centre
    /// administrator) or any (a system administrator).
    pub async fn administered_centre(&self, by: &StaffRow, id: i64) -> Result<Centre> {
        match by.role {
            Role::Staff => Err(admins_only()),
            Role::Admin if by.centre_id != id => Err(not_found()),
            _ => self.store.centre(id).await?.ok_or_else(not_found),
        }
    }

    /// Saves a centre's settings on behalf of `by`; audited
    /// `centre_settings` with the names of the changed settings. A form
    /// with any bad field saves nothing.
    pub async fn update_centre_settings(
        &self,
        by: &StaffRow,
        id: i64,
        input: &CentreSettingsInput,
    ) -> std::result::Result<Centre, SettingsError> {
        let before = self.administered_centre(by, id).await?;
        let after = input.apply(&before).map_err(SettingsError::Fields)?;
        let mut changed = Vec::new();
        if before.validity_seconds != after.validity_seconds {
            changed.push(format!("validity={}h", after.validity_seconds / 3600));
        }
        if before.auto_issue != after.auto_issue {
            changed.push(format!("auto_issue={}", after.auto_issue));
        }
        if before.allow_clinical != after.allow_clinical {
            changed.push(format!("allow_clinical={}", after.allow_clinical));
        }
        if before.delivery_fallback != after.delivery_fallback {
            changed.push(format!("delivery_fallback={}", after.delivery_fallback));
        }
        if before.reminder_after_hours != after.reminder_after_hours {
            changed.push(match after.reminder_after_hours {
                Some(h) => format!("reminder={h}h"),
                None => "reminder=off".into(),
            });
        }
        if (
            &before.consultation_name,
            &before.consultation_phone,
            &before.consultation_url,
            &before.consultation_hours,
        ) != (
            &after.consultation_name,
            &after.consultation_phone,
            &after.consultation_url,
            &after.consultation_hours,
        ) {
            changed.push("consultation_centre".into());
        }
        if changed.is_empty() {
            return Ok(after);
        }
        self.store
            .update_centre(&after)
            .await
            .map_err(Error::from)?;
        self.audit(
            &Actor::staff(by),
            Some(id),
            None,
            "centre_settings",
            "ok",
            changed.join(" "),
        )
        .await;
        Ok(after)
    }

    /// Creates a centre (system administrators only); audited `centre_create`.
    pub async fn create_centre_by(
        &self,
        by: &StaffRow,
        name: &str,
        prefecture: &str,
    ) -> Result<i64> {
        if by.role != Role::System {
            return Err(refused(
                "forbidden",
                "保健所の追加はシステム管理者だけが行えます",
                "only system administrators can add a centre",
            ));
        }
        let name = validate::text("name", name)?;
        if name.is_empty() || name.chars().count() > 100 {
            return Err(refused(
                "name",
                "保健所名を100文字以内で入力してください",
                "enter the centre's name (at most 100 characters)",
            ));
        }
        let prefecture = prefecture.trim();
        if !is_prefecture_code(prefecture) {
            return Err(refused(
                "prefecture",
                "都道府県は一覧から選んでください",
                "choose a prefecture from the list",
            ));
        }
        if self.store.centres().await?.iter().any(|c| c.name == name) {
            return Err(refused(
                "name",
                "同じ名前の保健所がすでにあります",
                "a centre of that name exists already",
            ));
        }
        let id = self
            .store
            .create_centre(&name, prefecture, self.now())
            .await?;
        self.audit(
            &Actor::staff(by),
            Some(id),
            None,
            "centre_create",
            "ok",
            format!("prefecture={prefecture}"),
        )
        .await;
        Ok(id)
    }

    /// The API keys `by` may see: their centre's case-system keys (a
    /// centre administrator), every key (a system administrator).
    pub async fn api_keys_for(&self, by: &StaffRow) -> Result<Vec<ApiKeyListing>> {
        match by.role {
            Role::Staff => Err(admins_only()),
            Role::Admin => Ok(self.store.api_key_listing(Some(by.centre_id)).await?),
            Role::System => Ok(self.store.api_key_listing(None).await?),
        }
    }

    /// Creates an API key from the portal; returns the plain key (shown
    /// once, only its HMAC is stored) and its id; audited `create_api_key`.
    /// A centre administrator creates case-system keys of their own
    /// centre; only a system administrator creates the app's device key
    /// (it serves every centre) or a key of another centre.
    pub async fn create_api_key_by(
        &self,
        by: &StaffRow,
        kind: ApiKeyKind,
        centre_id: i64,
        label: &str,
    ) -> Result<(String, i64)> {
        let label = key_label(label)?;
        if by.role == Role::Staff {
            return Err(admins_only());
        }
        let centre = match kind {
            ApiKeyKind::Device if by.role != Role::System => {
                return Err(refused(
                    "kind",
                    "アプリ用のキーはシステム管理者だけが作成できます",
                    "only system administrators can create the app's key",
                ));
            }
            ApiKeyKind::Device => None,
            ApiKeyKind::Admin => Some(self.administered_centre(by, centre_id).await?.id),
        };
        let (plain, id) = self.create_api_key(kind, centre).await?;
        self.store.set_api_key_label(id, &label).await?;
        self.audit(
            &Actor::staff(by),
            centre,
            None,
            "create_api_key",
            "ok",
            format!("api:{id} kind={}", kind.as_str()),
        )
        .await;
        Ok((plain, id))
    }

    /// Revokes key `id` on behalf of `by` (their centre's keys, or any for a
    /// system administrator); `not_found` when it is not one they may see
    /// or is revoked already.
    pub async fn revoke_api_key_by(&self, by: &StaffRow, id: i64) -> Result<()> {
        let visible = self.api_keys_for(by).await?;
        if !visible.iter().any(|k| k.id == id && k.revoked_at.is_none()) {
            return Err(refused(
                "not_found",
                "有効なAPIキーが見つかりません",
                "no such live API key",
            ));
        }
        self.revoke_api_key(&Actor::staff(by), id).await?;
        Ok(())
    }

    /// The consultation centres phones show (`GET
    /// /api/v1/consultation-centres`): one per prefecture whose health
    /// centre set a name; when several centres of a prefecture did, the
    /// oldest centre's entry is served (the settings page says which).
    pub async fn consultation_centres(&self) -> Result<Vec<ConsultationCentreEntry>> {
        Ok(served_consultation_centres(&self.store.centres().await?))
    }
}

/// See [`Issuer::consultation_centres`]: `centres` in id order.
pub fn served_consultation_centres(centres: &[Centre]) -> Vec<ConsultationCentreEntry> {
    let mut out: Vec<ConsultationCentreEntry> = Vec::new();
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    for c in centres {
        if c.consultation_name.is_empty() || out.iter().any(|e| e.prefecture == c.prefecture) {
            continue;
        }
        out.push(ConsultationCentreEntry {
            prefecture: c.prefecture.clone(),
            name: c.consultation_name.clone(),
            name_en: None,
            phone: opt(&c.consultation_phone),
            url: opt(&c.consultation_url),
            hours: opt(&c.consultation_hours),
        });
    }
    out.sort_by(|a, b| a.prefecture.cmp(&b.prefecture));
    out
}

/// "01".."47" (JIS X 0401).
pub fn is_prefecture_code(s: &str) -> bool {
    s.len() == 2 && s.parse::<u8>().is_ok_and(|n| (1..=47).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn centre(id: i64, pref: &str, name: &str) -> Centre {
        Centre {
            id,
            name: format!("centre {id}"),
            prefecture: pref.into(),
            consultation_name: name.into(),
            consultation_phone: String::new(),
            consultation_url: String::new(),
            consultation_hours: String::new(),
            validity_seconds: 86_400,
            auto_issue: false,
            allow_clinical: false,
            delivery_fallback: false,
            reminder_after_hours: None,
        }
    }

    fn input() -> CentreSettingsInput {
        CentreSettingsInput {
            validity_hours: "12".into(),
            auto_issue: true,
            allow_clinical: true,
            consultation_name: "東京都発熱相談センター".into(),
            consultation_phone: "03-5320-4592".into(),
            consultation_url: "https://www.fukushihoken.metro.tokyo.lg.jp/".into(),
            consultation_hours: "24時間（土日祝日も含む）".into(),
            delivery_fallback: true,
            reminder_hours: "6".into(),
        }
    }

    #[test]
    fn good_settings_apply_and_round_trip() {
        let c = input().apply(&centre(1, "13", "")).unwrap();
        assert_eq!(c.validity_seconds, 12 * 3600);
        assert!(c.auto_issue && c.allow_clinical);
        assert!(c.delivery_fallback);
        assert_eq!(c.reminder_after_hours, Some(6));
        assert_eq!(CentreSettingsInput::of(&c), input());
    }

    #[test]
    fn every_bad_field_is_named_and_nothing_applies() {
        let mut i = input();
        i.validity_hours = "0".into();
        i.consultation_phone = "090-1234-5678x".into();
        i.consultation_url = "javascript:alert(1)".into();
        i.consultation_hours = "a".repeat(61);
        let e = i.apply(&centre(1, "13", "")).unwrap_err();
        let fields: Vec<_> = e.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "validity_hours",
                "consultation_hours",
                "consultation_phone",
                "consultation_url"
            ]
        );
        for bad in ["169", "1.5", "", "二十四"] {
            let mut i = input();
            i.validity_hours = bad.into();
            assert!(i.apply(&centre(1, "13", "")).is_err(), "{bad}");
        }
        let mut i = input();
        i.consultation_name = String::new();
        let e = i.apply(&centre(1, "13", "")).unwrap_err();
        assert_eq!(e[0].field, "consultation_name");
        // The reminder: empty is off; 1 to less than the validity (12 h).
        for (h, ok) in [
            ("", true),
            ("1", true),
            ("11", true),
            ("12", false),
            ("0", false),
            ("-1", false),
            ("2.5", false),
            ("六", false),
        ] {
            let mut i = input();
            i.reminder_hours = h.into();
            let r = i.apply(&centre(1, "13", ""));
            assert_eq!(r.is_ok(), ok, "{h}");
            if let Err(e) = r {
                assert_eq!(e[0].field, "reminder_hours");
                assert!(e[0].message_ja.contains("12時間"));
            }
        }
    }

    #[test]
    fn phones_and_urls_people_can_use() {
        for ok in ["03-5320-4592", "0120-565653", "#7119", "0355551234", ""] {
            assert!(consultation_phone(ok).is_ok(), "{ok}");
        }
        for bad in [
            "5320-4592",
            "03--5320-4592",
            "#71190",
            "tel:0312345678",
            "03-1234-5678-",
        ] {
            assert!(consultation_phone(bad).is_err(), "{bad}");
        }
        assert!(consultation_url("http://example.jp/a").is_ok());
        for bad in [
            "ftp://example.jp",
            "https://",
            "example.jp",
            "data:text/html,x",
        ] {
            assert!(consultation_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_entry_per_prefecture_the_oldest_centre_wins() {
        let list = served_consultation_centres(&[
            centre(1, "13", "東京都発熱相談センター"),
            centre(2, "13", "別の名前"),
            centre(3, "01", ""),
            centre(4, "27", "大阪府新型コロナ受診相談センター"),
        ]);
        let names: Vec<_> = list
            .iter()
            .map(|e| (e.prefecture.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("13", "東京都発熱相談センター"),
                ("27", "大阪府新型コロナ受診相談センター")
            ]
        );
        assert_eq!(list[0].phone, None, "an empty phone is left out");
    }
}
