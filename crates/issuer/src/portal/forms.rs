//! The case form: parsing what staff typed, checking every field (all
//! messages at once, each beside its field), and turning it into the
//! machine API's request so both paths share the service's validation.

use api_types::cases::{Classification, CreateCaseRequest, Sex};
use chrono::NaiveDate;
use serde::Deserialize;

use super::i18n::Lang;
use super::views::CaseFormValues;
use crate::domain::model::{Case, classification_str, sex_str};
use crate::domain::validate::{self, FieldError};
use crate::store::CaseExtra;

/// The posted case form (checkboxes are absent when unticked).
#[derive(Debug, Default, Deserialize)]
pub struct CaseForm {
    #[serde(default)]
    pub name_kanji: String,
    #[serde(default)]
    pub name_kana: String,
    #[serde(default)]
    pub birth_date: String,
    #[serde(default)]
    pub sex: String,
    #[serde(default)]
    pub mobile: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub residence: String,
    #[serde(default)]
    pub symptoms: String,
    #[serde(default)]
    pub outpatient_facility: String,
    pub test_positive: Option<String>,
    #[serde(default)]
    pub classification: String,
    #[serde(default)]
    pub diagnosis_date: String,
    pub reported: Option<String>,
    pub uses_app: Option<String>,
    #[serde(default)]
    pub centre_id: String,
}

/// Longest value kept for redisplay, characters (longer ones are refused
/// by validation anyway).
const REDISPLAY_CHARS: usize = 400;

fn keep(s: &str) -> String {
    s.chars().take(REDISPLAY_CHARS).collect()
}

impl CaseForm {
    /// The values to show again in the form.
    pub fn values(&self) -> CaseFormValues {
        CaseFormValues {
            name_kanji: keep(&self.name_kanji),
            name_kana: keep(&self.name_kana),
            birth_date: keep(&self.birth_date),
            sex: keep(&self.sex),
            mobile: keep(&self.mobile),
            email: keep(&self.email),
            residence: keep(&self.residence),
            symptoms: keep(&self.symptoms),
            outpatient_facility: keep(&self.outpatient_facility),
            test_positive: self.test_positive.is_some(),
            classification: keep(&self.classification),
            diagnosis_date: keep(&self.diagnosis_date),
            reported: self.reported.is_some(),
            uses_app: self.uses_app.is_some(),
            centre_id: keep(&self.centre_id),
        }
    }
}

/// Field errors, in the page's language.
pub type Errors = Vec<(&'static str, String)>;

/// The message of a field error in `lang`.
pub fn message(lang: Lang, e: &FieldError) -> String {
    lang.pick(&e.message_ja, &e.message_en).to_owned()
}

/// A Japan calendar date as typed, `2026-12-01` or `2026/12/01` (the
/// case systems' export form), as `YYYY-MM-DD`; anything else trimmed and
/// unchanged (validation then names it).
pub fn ymd(s: &str) -> String {
    let s = s.trim();
    if s.contains('/')
        && let Ok(d) = NaiveDate::parse_from_str(s, "%Y/%m/%d")
    {
        return d.format("%Y-%m-%d").to_string();
    }
    s.to_owned()
}

/// Checks every field; returns the request and the header fields, or every
/// field's message. `today` is in JST; `centres` is the choice of a system
/// administrator (empty for centre staff).
pub fn check(
    lang: Lang,
    f: &CaseForm,
    today: NaiveDate,
    centres: &[i64],
) -> Result<(CreateCaseRequest, CaseExtra), Errors> {
    let mut errors: Errors = Vec::new();
    let mut note = |r: Result<String, FieldError>| match r {
        Ok(v) => v,
        Err(e) => {
            errors.push((e.field, message(lang, &e)));
            String::new()
        }
    };
    // Issue 13: "氏名 and フリガナ required" in the portal (the machine API
    // may create a case without them; issuance then names what is missing).
    let name_kanji = note(
        validate::name_kanji(&f.name_kanji)
            .and_then(|s| required(s, "name_kanji", "氏名を入力してください", "enter the name")),
    );
    let name_kana = note(validate::name_kana(&f.name_kana).and_then(|s| {
        required(
            s,
            "name_kana",
            "フリガナを全角カタカナで入力してください",
            "enter the furigana in full-width katakana",
        )
    }));
    let birth_date = ymd(&f.birth_date);
    let birth_date =
        note(validate::past_date("birth_date", &birth_date, today).map(|_| birth_date));
    let mobile = note(if f.mobile.trim().is_empty() {
        Ok(String::new())
    } else {
        validate::mobile(&f.mobile)
    });
    let email = note(if f.email.trim().is_empty() {
        Ok(String::new())
    } else {
        validate::email(&f.email)
    });
    let residence = note(validate::text("residence", &f.residence));
    let outpatient_facility = note(validate::text(
        "outpatient_facility",
        &f.outpatient_facility,
    ));
    let diagnosis_date = ymd(&f.diagnosis_date);
    let diagnosis_date = note(if diagnosis_date.is_empty() {
        Ok(String::new())
    } else {
        validate::past_date("diagnosis_date", &diagnosis_date, today).map(|_| diagnosis_date)
    });
    let choice = |field: &'static str| FieldError {
        field,
        message_ja: "選択肢から選んでください".into(),
        message_en: "choose one of the options".into(),
    };
    let sex = match f.sex.as_str() {
        "male" => Some(Sex::Male),
        "female" => Some(Sex::Female),
        "other" => Some(Sex::Other),
        _ => None,
    };
    let classification = match f.classification.as_str() {
        "confirmed" => Some(Classification::Confirmed),
        "asymptomatic" => Some(Classification::Asymptomatic),
        "clinical" => Some(Classification::Clinical),
        _ => None,
    };
    if sex.is_none() {
        errors.push(("sex", message(lang, &choice("sex"))));
    }
    if classification.is_none() {
        errors.push(("classification", message(lang, &choice("classification"))));
    }
    if !matches!(f.symptoms.as_str(), "" | "yes" | "no") {
        errors.push(("symptoms", message(lang, &choice("symptoms"))));
    }
    let centre_id = if centres.is_empty() {
        None
    } else {
        match f.centre_id.trim().parse::<i64>() {
            Ok(c) if centres.contains(&c) => Some(c),
            _ => {
                errors.push(("centre_id", message(lang, &choice("centre_id"))));
                None
            }
        }
    };
    let (Some(sex), Some(classification), true) = (sex, classification, errors.is_empty()) else {
        return Err(errors);
    };
    let opt = |s: String| if s.is_empty() { None } else { Some(s) };
    Ok((
        CreateCaseRequest {
            name_kanji,
            name_kana,
            birth_date,
            sex,
            mobile: opt(mobile),
            email: opt(email),
            outpatient_facility,
            test_positive: f.test_positive.is_some(),
            classification,
            diagnosis_date,
            reported: f.reported.is_some(),
            uses_app: f.uses_app.is_some(),
            centre_id,
        },
        CaseExtra {
            symptoms: f.symptoms.clone(),
            residence,
        },
    ))
}

/// `s` unless it is empty.
fn required(s: String, field: &'static str, ja: &str, en: &str) -> Result<String, FieldError> {
    if s.is_empty() {
        Err(FieldError {
            field,
            message_ja: ja.into(),
            message_en: en.into(),
        })
    } else {
        Ok(s)
    }
}

/// The form's values of a stored case.
pub fn values_of(c: &Case, extra: &CaseExtra) -> CaseFormValues {
    let d = &c.data;
    CaseFormValues {
        name_kanji: d.name_kanji.clone(),
        name_kana: d.name_kana.clone(),
        birth_date: d.birth_date.format("%Y-%m-%d").to_string(),
        sex: sex_str(d.sex).to_owned(),
        mobile: d.mobile.clone().unwrap_or_default(),
        email: d.email.clone().unwrap_or_default(),
        residence: extra.residence.clone(),
        symptoms: extra.symptoms.clone(),
        outpatient_facility: d.outpatient_facility.clone(),
        test_positive: d.test_positive,
        classification: classification_str(d.classification).to_owned(),
        diagnosis_date: d
            .diagnosis_date
            .map(|x| x.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        reported: d.reported,
        uses_app: d.uses_app,
        centre_id: d.centre_id.map(|x| x.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> CaseForm {
        CaseForm {
            name_kanji: "横口 健太".into(),
            name_kana: "ヨコグチ ケンタ".into(),
            birth_date: "1998-09-09".into(),
            sex: "male".into(),
            mobile: "090-1234-5678".into(),
            outpatient_facility: "港区帰国者・接触者外来".into(),
            test_positive: Some("on".into()),
            classification: "confirmed".into(),
            diagnosis_date: "2020-12-15".into(),
            reported: Some("on".into()),
            uses_app: Some("on".into()),
            ..CaseForm::default()
        }
    }

    #[test]
    fn the_portal_requires_name_and_furigana() {
        let today = NaiveDate::from_ymd_opt(2020, 12, 16).unwrap();
        let mut f = form();
        f.name_kanji = "  ".into();
        f.name_kana = String::new();
        let errors = check(Lang::Ja, &f, today, &[]).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["name_kanji", "name_kana"]);
        assert_eq!(errors[0].1, "氏名を入力してください");
    }

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let today = NaiveDate::from_ymd_opt(2020, 12, 16).unwrap();
        assert!(check(Lang::Ja, &form(), today, &[]).is_ok());
        let mut f = form();
        f.name_kana = "よこぐち".into();
        f.mobile = "03-1234-5678".into();
        f.residence = "あ".repeat(201);
        f.sex = "x".into();
        let e = check(Lang::Ja, &f, today, &[]).unwrap_err();
        let fields: Vec<_> = e.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["name_kana", "mobile", "residence", "sex"]);
        assert!(e[0].1.contains("全角カタカナ"));
        let e = check(Lang::En, &f, today, &[]).unwrap_err();
        assert!(e[0].1.contains("katakana"));
    }

    #[test]
    fn dates_are_taken_with_dashes_or_slashes() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let mut f = form();
        f.birth_date = "1998/9/09".into();
        f.diagnosis_date = " 2026/12/01 ".into();
        let (req, _) = check(Lang::Ja, &f, today, &[]).unwrap();
        assert_eq!(
            (req.birth_date.as_str(), req.diagnosis_date.as_str()),
            ("1998-09-09", "2026-12-01")
        );
        f.birth_date = "1998.09.09".into();
        let e = check(Lang::Ja, &f, today, &[]).unwrap_err();
        assert_eq!(e[0].0, "birth_date");
    }
}
