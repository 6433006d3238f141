//! The processing number (処理番号) as the user types it, and the app link of
//! the SMS that fills it in.
//!
//! The seed's support note asks staff to check that the number 「正しく半角で」
//! was typed: people failed by typing full-width digits, which COCOA's
//! `^[0-9]{8}$` refused. This app accepts what people actually type —
//! full-width digits, spaces and hyphens — and refuses everything else on the
//! phone, with a message that says what is wrong, before anything is sent.
//! Which characters are which is `api_types::number`'s, shared with the
//! issuer so that both read a number alike.

use std::fmt;

use crate::error::{Error, Result};

pub use api_types::number::{LINK_CODE_LEN, NUMBER_DIGITS};
use api_types::number::{Typed, classify, link_symbol};

/// What the user gave to register with: the 8-digit number or the long code
/// of the app link. Never printed (it is a one-time secret).
#[derive(Clone, PartialEq, Eq)]
pub enum Code {
    /// Exactly 8 ASCII digits.
    Number(String),
    /// 20 symbols of the link alphabet, upper case.
    Link(String),
}

impl Code {
    /// The code as sent to `/api/verify`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Number(s) | Self::Link(s) => s,
        }
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(_) => f.write_str("Code::Number(********)"),
            Self::Link(_) => f.write_str("Code::Link(********)"),
        }
    }
}

/// Normalises a typed processing number: full-width digits become ASCII,
/// spaces and hyphens are dropped; the result must be exactly 8 digits.
///
/// Refused with a message in Japanese and English: nothing typed
/// ([`Error::NumberEmpty`]), any other character, letters included
/// ([`Error::NumberCharacter`]), fewer or more than 8 digits
/// ([`Error::NumberLength`]).
pub fn normalise_number(input: &str) -> Result<Code> {
    let mut digits = String::with_capacity(NUMBER_DIGITS);
    for c in input.chars() {
        match classify(c) {
            Typed::Digit(d) => digits.push(d),
            Typed::Separator => {}
            Typed::Other(found) => return Err(Error::NumberCharacter { found }),
        }
    }
    match digits.len() {
        0 => Err(Error::NumberEmpty),
        NUMBER_DIGITS => Ok(Code::Number(digits)),
        n => Err(Error::NumberLength { digits: n }),
    }
}

/// Normalises the long code of an app link: case-insensitive, Crockford's
/// look-alikes (I and L read as 1, O as 0), hyphens and spaces dropped.
fn normalise_link_code(input: &str) -> Option<Code> {
    let mut out = String::with_capacity(LINK_CODE_LEN);
    for c in input.chars() {
        if c == '-' || c == ' ' {
            continue;
        }
        out.push(link_symbol(c)?);
    }
    (out.len() == LINK_CODE_LEN).then_some(Code::Link(out))
}

/// Reads the app link of the SMS, `https://<host>/cocoa/a/?pn=<code>`, where
/// the code is the 20-symbol long code or the 8-digit number. Any host is
/// accepted (the code is only ever sent to the configured server).
pub fn parse_app_link(link: &str) -> Result<Code> {
    let malformed = |reason| Error::LinkMalformed { reason };
    let url = reqwest::Url::parse(link.trim()).map_err(|_| malformed("not a URL"))?;
    if url.scheme() != "https" {
        return Err(malformed("not https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(malformed("no host"));
    }
    if !matches!(url.path(), "/cocoa/a/" | "/cocoa/a") {
        return Err(malformed("path is not /cocoa/a/"));
    }
    let mut codes = url.query_pairs().filter(|(k, _)| k == "pn").map(|(_, v)| v);
    let code = codes.next().ok_or(malformed("no pn parameter"))?;
    if codes.next().is_some() {
        return Err(malformed("pn given twice"));
    }
    parse_link_code(&code)
}

/// Reads the `pn` value of an app link alone (what a screen opened at
/// `/cocoa/a/?pn=<code>` receives): the 8-digit number (as
/// [`normalise_number`] reads it) or the 20-symbol long code. Anything else
/// is [`Error::LinkMalformed`].
pub fn parse_link_code(pn: &str) -> Result<Code> {
    if let Ok(number) = normalise_number(pn) {
        return Ok(number);
    }
    normalise_link_code(pn).ok_or(Error::LinkMalformed {
        reason: "pn is neither 8 digits nor a 20-symbol code",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> String {
        normalise_number(s).unwrap().as_str().to_owned()
    }

    #[test]
    fn accepts_what_people_type() {
        assert_eq!(number("12345678"), "12345678");
        assert_eq!(number("１２３４５６７８"), "12345678");
        assert_eq!(number("1234 5678"), "12345678");
        assert_eq!(number("1234-5678"), "12345678");
        assert_eq!(number("１２３４－５６７８"), "12345678");
        assert_eq!(number("１２３４　５６７８"), "12345678");
        assert_eq!(number(" 1234ー5678 "), "12345678");
        assert_eq!(number("12３4５678"), "12345678");
    }

    #[test]
    fn seven_or_nine_digits_are_refused_with_the_count() {
        let e = normalise_number("1234567").unwrap_err();
        assert!(matches!(e, Error::NumberLength { digits: 7 }));
        assert!(
            e.text().ja.contains("8桁") && e.text().ja.contains("7桁"),
            "{e}"
        );
        let e = normalise_number("１２３４５６７８９").unwrap_err();
        assert!(matches!(e, Error::NumberLength { digits: 9 }));
        assert!(e.is_input());
    }

    #[test]
    fn letters_and_symbols_are_refused_naming_the_character() {
        let e = normalise_number("1234567a").unwrap_err();
        assert!(matches!(e, Error::NumberCharacter { found: 'a' }));
        assert!(e.text().ja.contains("「a」"), "{e}");
        assert!(matches!(
            normalise_number("1234.5678"),
            Err(Error::NumberCharacter { found: '.' })
        ));
        assert!(matches!(
            normalise_number("一二三四五六七八"),
            Err(Error::NumberCharacter { .. })
        ));
        assert!(matches!(normalise_number(" - "), Err(Error::NumberEmpty)));
        assert!(matches!(normalise_number(""), Err(Error::NumberEmpty)));
    }

    #[test]
    fn app_links_carry_the_long_code_or_the_number() {
        let c =
            parse_app_link("https://cocoa.example.jp/cocoa/a/?pn=0123456789abcdefghjk").unwrap();
        assert_eq!(c, Code::Link("0123456789ABCDEFGHJK".into()));
        let c = parse_app_link("https://x.example/cocoa/a?pn=12345678").unwrap();
        assert_eq!(c, Code::Number("12345678".into()));
        // Crockford look-alikes.
        let c = parse_app_link("https://x.example/cocoa/a/?pn=OOOOOIIIIILLLLL22222").unwrap();
        assert_eq!(c, Code::Link("00000111111111122222".into()));
        assert_eq!(format!("{c:?}"), "Code::Link(********)");
    }

    #[test]
    fn malformed_links_are_refused() {
        for (link, why) in [
            ("cocoa.example.jp/cocoa/a/?pn=12345678", "not a URL"),
            ("http://cocoa.example.jp/cocoa/a/?pn=12345678", "not https"),
            (
                "https://cocoa.example.jp/other/?pn=12345678",
                "path is not /cocoa/a/",
            ),
            ("https://cocoa.example.jp/cocoa/a/", "no pn parameter"),
            (
                "https://cocoa.example.jp/cocoa/a/?pn=1234567",
                "pn is neither 8 digits nor a 20-symbol code",
            ),
            (
                "https://cocoa.example.jp/cocoa/a/?pn=0123456789ABCDEFGHJU",
                "pn is neither 8 digits nor a 20-symbol code",
            ),
            (
                "https://cocoa.example.jp/cocoa/a/?pn=12345678&pn=12345678",
                "pn given twice",
            ),
        ] {
            match parse_app_link(link) {
                Err(Error::LinkMalformed { reason }) => assert_eq!(reason, why, "{link}"),
                other => panic!("{link}: {other:?}"),
            }
        }
        assert_eq!(
            parse_link_code("１２３４５６７８").unwrap(),
            Code::Number("12345678".into())
        );
        for bad in ["", "abc", "1234567", "<script>"] {
            assert_eq!(parse_link_code(bad).unwrap_err().code(), "link_malformed");
        }
        let e = parse_app_link("nonsense").unwrap_err();
        assert!(e.text().ja.contains("リンク") && e.is_input());
    }
}
