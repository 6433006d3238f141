//! Prefectures (JIS X 0401 codes) and the consultation centre
//! (受診・相談センター) a notified user is told to call.
//!
//! The seed's FAQ 問2: a notified user is shown 「各地域の受診・相談センターなどの
//! 連絡先」. Each prefecture runs its own centre and its numbers change, so
//! the built-in table does not guess them: it names the prefecture's centre
//! and gives the national line of the seed (厚生労働省 0120-565653, 9:00～21:00)
//! as the number that always works. A deployment supplies the real contacts
//! of each centre (the issuer's health centres hold them) as a JSON list,
//! which overrides the built-in entry of its prefecture.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use api_types::centres::{PREFECTURES, Prefecture};

/// A prefecture from its code (`13`, `1` or `01`), its Japanese name
/// (`東京都`, or `東京` without the suffix) or its English name (any case).
pub trait ParsePrefecture {
    /// See the trait.
    fn parse(input: &str) -> Result<&'static Prefecture>;
}

impl ParsePrefecture for Prefecture {
    fn parse(input: &str) -> Result<&'static Prefecture> {
        Prefecture::find(input).ok_or_else(|| Error::UnknownPrefecture {
            input: input.to_owned(),
        })
    }
}

/// The national telephone line of the seed, for everyone.
pub const NATIONAL_LINE_NAME: &str = "厚生労働省新型コロナウイルス関連電話相談窓口";
/// Its number (free dial).
pub const NATIONAL_LINE_PHONE: &str = "0120-565653";
/// Its hours.
pub const NATIONAL_LINE_HOURS: &str = "9:00～21:00";
/// The national line's name in English.
pub const NATIONAL_LINE_NAME_EN: &str =
    "the Ministry of Health, Labour and Welfare's COVID-19 telephone line";
/// Its hours in English.
pub const NATIONAL_LINE_HOURS_EN: &str = "9:00-21:00";

/// Where a notified user should call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationCentre {
    /// Prefecture code.
    pub prefecture: String,
    /// Prefecture name (Japanese).
    pub prefecture_name: String,
    /// Name of the centre.
    pub name: String,
    /// Its name in English (English output says no Japanese name).
    #[serde(default)]
    pub name_en: String,
    /// Its telephone number, when known.
    pub phone: Option<String>,
    /// Its web page, when known.
    pub url: Option<String>,
    /// Its hours, when known.
    pub hours: Option<String>,
    /// The national line, always reachable.
    pub national_line: NationalLine,
    /// `built-in` or `server`.
    pub source: String,
}

/// The national line (see [`NATIONAL_LINE_PHONE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NationalLine {
    /// Name.
    pub name: String,
    /// Number.
    pub phone: String,
    /// Hours.
    pub hours: String,
    /// Name in English.
    #[serde(default)]
    pub name_en: String,
    /// Hours in English.
    #[serde(default)]
    pub hours_en: String,
}

impl Default for NationalLine {
    fn default() -> Self {
        Self {
            name: NATIONAL_LINE_NAME.into(),
            phone: NATIONAL_LINE_PHONE.into(),
            hours: NATIONAL_LINE_HOURS.into(),
            name_en: NATIONAL_LINE_NAME_EN.into(),
            hours_en: NATIONAL_LINE_HOURS_EN.into(),
        }
    }
}

/// One entry of a server-provided list of centres: the issuer's
/// `GET /api/v1/consultation-centres` serves a list of these.
pub use api_types::centres::ConsultationCentreEntry as CentreOverride;

/// The English name of a prefecture's consultation centre (受診・相談センター).
fn centre_name_en(pref: &Prefecture) -> String {
    format!("the {} consultation centre", pref.name_en)
}

/// The centre for `prefecture` (a code), from `overrides` when one names
/// it, else the built-in entry. `None` when no prefecture is set: then only
/// the national line is given.
pub fn consultation_centre(
    prefecture: Option<&str>,
    overrides: &[CentreOverride],
) -> ConsultationCentre {
    let pref = prefecture.and_then(|p| Prefecture::parse(p).ok());
    let Some(pref) = pref else {
        return ConsultationCentre {
            prefecture: String::new(),
            prefecture_name: String::new(),
            name: NATIONAL_LINE_NAME.into(),
            name_en: NATIONAL_LINE_NAME_EN.into(),
            phone: Some(NATIONAL_LINE_PHONE.into()),
            url: None,
            hours: Some(NATIONAL_LINE_HOURS.into()),
            national_line: NationalLine::default(),
            source: "built-in".into(),
        };
    };
    let over = overrides
        .iter()
        .find(|o| Prefecture::parse(&o.prefecture).is_ok_and(|p| p.code == pref.code));
    match over {
        Some(o) => ConsultationCentre {
            prefecture: pref.code.into(),
            prefecture_name: pref.name_ja.into(),
            name: o.name.clone(),
            name_en: o.name_en.clone().unwrap_or_else(|| centre_name_en(pref)),
            phone: o.phone.clone(),
            url: o.url.clone(),
            hours: o.hours.clone(),
            national_line: NationalLine::default(),
            source: "server".into(),
        },
        None => ConsultationCentre {
            prefecture: pref.code.into(),
            prefecture_name: pref.name_ja.into(),
            name: format!("{}の受診・相談センター", pref.name_ja),
            name_en: centre_name_en(pref),
            phone: None,
            url: None,
            hours: None,
            national_line: NationalLine::default(),
            source: "built-in".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_seven_in_code_order() {
        assert_eq!(PREFECTURES.len(), 47);
        for (i, p) in PREFECTURES.iter().enumerate() {
            assert_eq!(p.code, format!("{:02}", i + 1));
        }
    }

    #[test]
    fn parses_codes_and_names() {
        for s in ["13", "013", "東京都", "東京", "tokyo", " Tokyo "] {
            assert_eq!(Prefecture::parse(s).unwrap().code, "13", "{s}");
        }
        assert_eq!(Prefecture::parse("1").unwrap().name_ja, "北海道");
        assert_eq!(Prefecture::parse("大阪").unwrap().code, "27");
        assert_eq!(Prefecture::parse("京都").unwrap().code, "26");
        for bad in ["0", "48", "99", "Atlantis", ""] {
            let e = Prefecture::parse(bad).unwrap_err();
            assert!(e.text().ja.contains("都道府県"), "{e}");
            assert!(e.is_input());
        }
    }

    #[test]
    fn server_list_overrides_the_built_in_entry() {
        let overrides = vec![CentreOverride {
            prefecture: "13".into(),
            name: "東京都発熱相談センター".into(),
            name_en: None,
            phone: Some("03-0000-0000".into()),
            url: None,
            hours: Some("24時間".into()),
        }];
        let c = consultation_centre(Some("13"), &overrides);
        assert_eq!(
            (c.name.as_str(), c.source.as_str()),
            ("東京都発熱相談センター", "server")
        );
        let c = consultation_centre(Some("27"), &overrides);
        assert_eq!(c.name, "大阪府の受診・相談センター");
        assert_eq!(c.name_en, "the Osaka consultation centre");
        assert_eq!(c.phone, None);
        assert_eq!(c.national_line.phone, "0120-565653");
        let c = consultation_centre(None, &overrides);
        assert_eq!(c.phone.as_deref(), Some("0120-565653"));
    }
}
