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

/// Whether `c` is a Unicode format character (general category Cf): bidi
/// overrides and isolates (U+202A–U+202E, U+2066–U+2069), zero-width
/// characters (U+200B–U+200F, U+2060–U+2064, U+FEFF), the soft hyphen and
/// the rest of Cf. "Refuse format characters (Unicode Cf)" (issue 12, 11):
/// they make a name look like another on the staff screen, or like nothing.
/// Hand-written: the whole category is these 21 ranges (Unicode 15), not
/// worth a dependency.
pub fn is_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// Checks a name in kanji (氏名): non-blank, at most [`MAX_NAME_CHARS`], no
/// control or format characters, at least one letter. Returns it trimmed. Empty input is `Ok("")`: a case
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
    if s.chars().any(|c| c.is_control() || is_format_char(c)) {
        return Err(FieldError::new(
            "name_kanji",
            "氏名に使用できない文字（制御文字・書式文字）が含まれています",
            "name contains control or invisible format characters",
        ));
    }
    if !s.is_empty() && !s.chars().any(char::is_alphabetic) {
        return Err(FieldError::new(
            "name_kanji",
            "氏名には文字を入力してください",
            "name must contain a letter",
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
    if !s.is_empty() && !s.chars().any(|c| c.is_alphabetic()) {
        return Err(FieldError::new(
            "name_kana",
            "フリガナには文字を入力してください",
            "furigana must contain a letter",
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
/// characters, no control or format characters. Returns it trimmed.
pub fn text(field: &'static str, input: &str) -> Result<String, FieldError> {
    let s = input.trim();
    if s.chars().count() > MAX_TEXT_CHARS || s.chars().any(|c| c.is_control() || is_format_char(c))
    {
        return Err(FieldError::new(
            field,
            format!("{MAX_TEXT_CHARS}文字以内で入力してください"),
            format!(
                "must be at most {MAX_TEXT_CHARS} characters without control or format characters"
            ),
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
    fn invisible_and_letterless_names_are_refused() {
        // Bidi overrides, zero-width characters and a BOM, alone or inside a name.
        for bad in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            "山田\u{202E}郎太",
            "山\u{200B}田",
            "\u{FEFF}山田太郎",
            "山田\u{2066}太郎",
            "山田\u{00AD}太郎",
            "・・",
            "123",
            "!!",
        ] {
            assert!(name_kanji(bad).is_err(), "{bad:?}");
        }
        for good in [
            "山田太郎",
            "山田 太郎",
            "Yamada Taro",
            "ヤマダ・タロウ",
            "李 小龍",
            "",
        ] {
            assert!(name_kanji(good).is_ok(), "{good:?}");
        }
        assert!(name_kana("・").is_err());
        assert!(name_kana("ヤマダ\u{200B}").is_err());
        assert!(name_kana("ヤマダ・タロウ").is_ok());
        assert!(text("clinic", "港\u{202E}クリニック").is_err());
        assert!(text("clinic", "港区クリニック").is_ok());
        // The whole Cf category is covered: every format character of the
        // Basic Multilingual Plane that the table names is refused, and no
        // letter is taken for one.
        assert!(is_format_char('\u{E0041}'));
        assert!(!('a'..='z').any(is_format_char));
        assert!(!('\u{4E00}'..='\u{9FFF}').any(is_format_char));
    }

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
