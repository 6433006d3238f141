//! Validation and normalisation of what staff and case systems type in:
//! furigana, Japanese mobile numbers, e-mail addresses, dates.

use api_types::number::{Typed, classify};
use chrono::NaiveDate;

/// Longest name (kanji or katakana) accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest free-text field (e.g. 外来機関) accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Longest e-mail address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// A field that failed validation, with a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message_en}")]
pub struct FieldError {
    /// The field's name in the API (e.g. `name_kana`).
    pub field: &'static str,
    /// Japanese message.
    pub message_ja: String,
    /// English message.
    pub message_en: String,
}

impl FieldError {
    fn new(field: &'static str, ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            field,
            message_ja: ja.into(),
            message_en: en.into(),
        }
    }
}

/// Checks a name in kanji (氏名): non-blank, at most [`MAX_NAME_CHARS`], no
/// control characters. Returns it trimmed. Empty input is `Ok("")`: a case
/// may be saved before its name is known, issuance then refuses it.
pub fn name_kanji(input: &str) -> Result<String, FieldError> {
    let s = input.trim();
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "name_kanji",
            format!("氏名は{MAX_NAME_CHARS}文字以内で入力してください"),
            format!("name must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name_kanji",
            "氏名に使用できない文字が含まれています",
            "name contains control characters",
        ));
    }
    Ok(s.to_owned())
}

/// Whether `c` is full-width katakana (ァ..ヺ), the long vowel mark ー, the
/// middle dot ・ or a space.
fn is_furigana_char(c: char) -> bool {
    matches!(
        c,
        '\u{30A1}'..='\u{30FA}' | '\u{30FB}' | '\u{30FC}' | '\u{3000}' | ' '
    )
}

/// Checks a name in katakana (フリガナ): full-width katakana, ー, ・ and spaces
/// only. Returns it trimmed with ASCII spaces made full-width. Empty input is
/// `Ok("")` (issuance then refuses the case).
pub fn name_kana(input: &str) -> Result<String, FieldError> {
    let s = input.trim_matches(|c: char| c == ' ' || c == '\u{3000}');
    if s.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "name_kana",
            format!("フリガナは{MAX_NAME_CHARS}文字以内で入力してください"),
            format!("furigana must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if !s.chars().all(is_furigana_char) {
        return Err(FieldError::new(
            "name_kana",
            "フリガナは全角カタカナで入力してください",
            "furigana must be written in full-width katakana",
        ));
    }
    Ok(s.replace(' ', "\u{3000}"))
}

/// Maps full-width digits (０-９) to ASCII, leaves everything else.
pub fn ascii_digits(c: char) -> char {
    match classify(c) {
        Typed::Digit(d) => d,
        _ => c,
    }
}

/// Separators people type inside numbers (`api_types::number::classify`,
/// the phone's own definition): spaces (no-break and 全角 included),
/// hyphens, dashes, minus signs and the katakana long vowel mark.
pub fn is_number_separator(c: char) -> bool {
    classify(c) == Typed::Separator
}

/// Normalises a Japanese mobile phone number to its 11 national digits
/// (`09012345678`). Accepts `090-1234-5678`, `090 1234 5678`, full-width
/// digits, `(090)1234-5678`, `+81 90 1234 5678` and `+81-90-…`. Mobile
/// numbers start with 060, 070, 080 or 090.
pub fn mobile(input: &str) -> Result<String, FieldError> {
    let err = || {
        FieldError::new(
            "mobile",
            "携帯電話番号の形式が正しくありません（例: 090-1234-5678）",
            "not a Japanese mobile number (e.g. 090-1234-5678)",
        )
    };
    let mut s: String = input
        .chars()
        .map(ascii_digits)
        .filter(|c| !is_number_separator(*c) && *c != '(' && *c != ')')
        .collect();
    if s.chars().count() > 20 {
        return Err(err());
    }
    if let Some(rest) = s
        .strip_prefix("+81")
        .or_else(|| s.strip_prefix("\u{FF0B}81"))
    {
        let rest = rest.strip_prefix('0').unwrap_or(rest);
        s = format!("0{rest}");
    }
    let ok = s.len() == 11
        && s.bytes().all(|b| b.is_ascii_digit())
        && matches!(&s[..3], "060" | "070" | "080" | "090");
    if ok { Ok(s) } else { Err(err()) }
}

/// The E.164 form of a normalised mobile number (`+819012345678`), as SMS
/// gateways want it.
pub fn mobile_e164(national: &str) -> String {
    format!("+81{}", national.strip_prefix('0').unwrap_or(national))
}

/// Checks an e-mail address: one `@`, a local part of 1..=64 printable
/// ASCII characters without spaces, a domain of dot-separated labels of
/// letters, digits and hyphens with at least one dot. Returns it trimmed
/// with the domain in lower case.
pub fn email(input: &str) -> Result<String, FieldError> {
    let err = || {
        FieldError::new(
            "email",
            "メールアドレスの形式が正しくありません",
            "not a valid e-mail address",
        )
    };
    let s = input.trim();
    if s.len() > MAX_EMAIL_CHARS || !s.is_ascii() {
        return Err(err());
    }
    let (local, domain) = s.split_once('@').ok_or_else(err)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if local_ok && domain_ok {
        Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
    } else {
        Err(err())
    }
}

/// Checks a free-text field such as 外来機関: at most [`MAX_TEXT_CHARS`]
/// characters, no control characters. Returns it trimmed.
pub fn text(field: &'static str, input: &str) -> Result<String, FieldError> {
    let s = input.trim();
    if s.chars().count() > MAX_TEXT_CHARS || s.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("{MAX_TEXT_CHARS}文字以内で入力してください"),
            format!("must be at most {MAX_TEXT_CHARS} characters without control characters"),
        ));
    }
    Ok(s.to_owned())
}

/// Parses a `YYYY-MM-DD` date that must not lie after `today`.
pub fn past_date(
    field: &'static str,
    input: &str,
    today: NaiveDate,
) -> Result<NaiveDate, FieldError> {
    let d = NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d").map_err(|_| {
        FieldError::new(
            field,
            "日付は YYYY-MM-DD の形式で入力してください",
            "date must be YYYY-MM-DD",
        )
    })?;
    if d > today {
        return Err(FieldError::new(
            field,
            "未来の日付は入力できません",
            "date lies in the future",
        ));
    }
    if d < NaiveDate::from_ymd_opt(1890, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(FieldError::new(
            field,
            "日付が古すぎます",
            "date is too far in the past",
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn furigana_accepts_katakana_only() {
        assert_eq!(
            name_kana("ヨコグチ ケンタ").unwrap(),
            "ヨコグチ\u{3000}ケンタ"
        );
        assert_eq!(
            name_kana("ヴァレリー・ブルー").unwrap(),
            "ヴァレリー・ブルー"
        );
        assert_eq!(name_kana("").unwrap(), "");
        for bad in ["よこぐち", "Yokoguchi", "横口", "ﾖｺｸﾞﾁ", "ヨコグチ1"] {
            let e = name_kana(bad).unwrap_err();
            assert_eq!(e.field, "name_kana");
            assert!(e.message_ja.contains("全角カタカナ"), "{bad}");
        }
        assert!(name_kana(&"ア".repeat(101)).is_err());
    }

    #[test]
    fn mobile_numbers_are_normalised() {
        for ok in [
            "090-1234-5678",
            "09012345678",
            "090 1234 5678",
            "０９０−１２３４−５６７８",
            "(090)1234-5678",
            "+81 90 1234 5678",
            "+81-90-1234-5678",
            "+81090-1234-5678",
        ] {
            assert_eq!(mobile(ok).unwrap(), "09012345678", "{ok}");
        }
        assert_eq!(mobile("070-0000-0000").unwrap(), "07000000000");
        for bad in [
            "03-1234-5678",
            "090-1234-567",
            "090-1234-56789",
            "abc",
            "",
            "0120-565653",
        ] {
            assert!(mobile(bad).is_err(), "{bad}");
        }
        assert_eq!(mobile_e164("09012345678"), "+819012345678");
    }

    #[test]
    fn email_addresses_are_checked() {
        assert_eq!(
            email(" Taro.Y+cocoa@Example.JP ").unwrap(),
            "Taro.Y+cocoa@example.jp"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@example.jp",
            "a@@example.jp",
            "a b@example.jp",
            "a@-x.jp",
            "太郎@example.jp",
            "a..b@example.jp",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_in_the_future_are_refused() {
        let today = NaiveDate::from_ymd_opt(2020, 12, 16).unwrap();
        assert!(past_date("diagnosis_date", "2020-12-16", today).is_ok());
        assert!(past_date("diagnosis_date", "2020-12-17", today).is_err());
        assert!(past_date("diagnosis_date", "2020/12/01", today).is_err());
    }
}
