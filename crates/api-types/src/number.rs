//! The processing number (処理番号) and the app link's long code as people
//! type them: one definition for the phone, which refuses bad input before
//! sending anything, and for the issuer, which reads what it receives — so
//! that whatever the phone accepts, the issuer reads as the same code.
//!
//! The seed's support note asks staff to check that the number was typed
//! 「正しく半角で」: people failed by typing full-width digits, which COCOA's
//! `^[0-9]{8}$` refused. Here full-width digits, spaces and hyphens are
//! accepted and normalised; anything else is refused.

/// Digits in a processing number (PROTOCOLS.md §4: `^[0-9]{8}$`).
pub const NUMBER_DIGITS: usize = 8;
/// Symbols of the app link's long code: 20 symbols = 100 bits.
pub const LINK_CODE_LEN: usize = 20;
/// The alphabet of link codes: Crockford's base32 (no I, L, O, U).
pub const LINK_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// What one typed character is, inside a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// A digit, as its ASCII form (full-width ０-９ included).
    Digit(char),
    /// A space or hyphen people put between the digits; dropped.
    Separator,
    /// Anything else: the input is not a number.
    Other(char),
}

/// Classifies a typed character.
pub fn classify(c: char) -> Typed {
    match c {
        '0'..='9' => Typed::Digit(c),
        // Full-width digits ０..９ (U+FF10..U+FF19).
        '\u{FF10}'..='\u{FF19}' => Typed::Digit(char::from(b'0' + (c as u32 - 0xFF10) as u8)),
        // Spaces: ASCII, tab, no-break (a number copied from an SMS or a web
        // page may carry one), ideographic (全角スペース).
        ' ' | '\t' | '\u{00A0}' | '\u{3000}' => Typed::Separator,
        // Hyphens and what keyboards put in their place: ASCII hyphen-minus,
        // full-width hyphen-minus, the Unicode hyphens and dashes, minus, and
        // the prolonged sound marks an IME gives for "-" in kana mode.
        '-' | '\u{FF0D}' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF70}' => {
            Typed::Separator
        }
        other => Typed::Other(other),
    }
}

/// One typed symbol of a link code, as stored: upper case, with Crockford's
/// look-alikes read for what they look like (I and L as 1, O as 0); `None`
/// outside the alphabet. Separators are the caller's to drop.
pub fn link_symbol(c: char) -> Option<char> {
    let c = match c.to_ascii_uppercase() {
        'I' | 'L' => '1',
        'O' => '0',
        c => c,
    };
    (c.is_ascii() && LINK_ALPHABET.contains(&(c as u8))).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_separators_and_the_rest() {
        assert_eq!(classify('7'), Typed::Digit('7'));
        assert_eq!(classify('７'), Typed::Digit('7'));
        for sep in [
            ' ', '\t', '\u{a0}', '\u{3000}', '-', '－', '‐', '—', '−', 'ー', 'ｰ',
        ] {
            assert_eq!(classify(sep), Typed::Separator, "{sep:?}");
        }
        for other in ['a', '٣', '𝟑', '③', '\u{200b}', '\n'] {
            assert_eq!(classify(other), Typed::Other(other), "{other:?}");
        }
    }

    #[test]
    fn link_symbols_read_look_alikes() {
        assert_eq!(link_symbol('a'), Some('A'));
        assert_eq!(link_symbol('i'), Some('1'));
        assert_eq!(link_symbol('L'), Some('1'));
        assert_eq!(link_symbol('o'), Some('0'));
        assert_eq!(link_symbol('u'), None);
        assert_eq!(link_symbol('ａ'), None);
        assert_eq!(LINK_ALPHABET.len(), 32);
    }
}
