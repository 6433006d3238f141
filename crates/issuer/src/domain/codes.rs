//! Processing numbers (処理番号), app-link codes, tokens and API keys, and the
//! keyed hash under which each of them is stored: the plain values exist only
//! in the message sent (or the answer given), never in the database or a log.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::{CryptoRng, Rng, RngCore};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use super::validate::{ascii_digits, is_number_separator};

use api_types::number::link_symbol;
pub use api_types::number::{LINK_ALPHABET, LINK_CODE_LEN, NUMBER_DIGITS};

/// A random source fit for secrets, injectable so tests are deterministic.
pub trait SecureRng: RngCore + CryptoRng + Send {}
impl<T: RngCore + CryptoRng + Send> SecureRng for T {}

/// A plain processing number. It prints as `********` so it cannot reach a
/// log by accident; [`ProcessingNumber::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessingNumber(String);

impl ProcessingNumber {
    /// Draws 8 uniformly random digits.
    pub fn generate(rng: &mut dyn SecureRng) -> Self {
        let n: u32 = rng.gen_range(0..100_000_000);
        Self(format!("{n:08}"))
    }

    /// The digits, for the message and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProcessingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProcessingNumber(********)")
    }
}

/// A plain app-link code (the `pn=` of `https://<host>/cocoa/a/?pn=…`).
#[derive(Clone, PartialEq, Eq)]
pub struct LinkCode(String);

impl LinkCode {
    /// Draws [`LINK_CODE_LEN`] random symbols of [`LINK_ALPHABET`].
    pub fn generate(rng: &mut dyn SecureRng) -> Self {
        let s = (0..LINK_CODE_LEN)
            .map(|_| char::from(LINK_ALPHABET[rng.gen_range(0..32)]))
            .collect();
        Self(s)
    }

    /// The code, for the message and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LinkCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkCode(********)")
    }
}

/// What the `code` field of `/api/verify` turned out to be.
#[derive(Clone, PartialEq, Eq)]
pub enum TypedCode {
    /// The 8-digit processing number.
    Number(String),
    /// The long code of the app link.
    Link(String),
}

impl fmt::Debug for TypedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(_) => f.write_str("Number(********)"),
            Self::Link(_) => f.write_str("Link(********)"),
        }
    }
}

/// Normalises what a person typed (or the app link carried) before lookup:
/// full-width digits become ASCII (the seed: 「処理番号を正しく半角で…入力されて
/// いるかご確認ください」 — we accept both), spaces and hyphens are dropped.
/// Exactly 8 digits are a processing number; 20 symbols of the link alphabet
/// (case-insensitive, with Crockford's I/L→1, O→0) are a link code; anything
/// else (7 or 9 digits, letters) is `None`.
pub fn normalise_code(input: &str) -> Option<TypedCode> {
    if input.chars().count() > 64 {
        return None;
    }
    let s: String = input
        .chars()
        .map(ascii_digits)
        .filter(|c| !is_number_separator(*c))
        .collect();
    if s.len() == NUMBER_DIGITS && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(TypedCode::Number(s));
    }
    if s.len() == LINK_CODE_LEN {
        return s
            .chars()
            .map(link_symbol)
            .collect::<Option<String>>()
            .map(TypedCode::Link);
    }
    None
}

/// Draws an opaque secret of `bytes` random bytes, base64url without padding
/// (verification tokens, API keys).
pub fn random_secret(rng: &mut dyn SecureRng, bytes: usize) -> String {
    use base64::Engine as _;
    let mut b = vec![0u8; bytes];
    rng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The keyed hash under which codes are stored: HMAC-SHA256 under a sub-key
/// of the server secret, with a different label per kind of code, hex encoded.
pub struct CodeHasher {
    key: SecretBox<[u8; 32]>,
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHasher([REDACTED])")
    }
}

/// What a stored hash is of; part of the HMAC input so a value of one kind
/// never matches another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeKind {
    /// 8-digit processing number.
    Number,
    /// App-link code.
    Link,
    /// Verification token.
    Token,
    /// API key.
    ApiKey,
    /// Staff portal session id.
    Session,
    /// A device's `Idempotency-Key` (with what it is bound to), kept so
    /// that a retry after a lost answer is recognised.
    Retry,
    /// A portal form's token: the login form's CSRF token (no session row
    /// before login) and the 「処理番号発行」 form's once-only token.
    Form,
}

impl CodeKind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Number => b"cocoa-issuer/number\0",
            Self::Link => b"cocoa-issuer/link\0",
            Self::Token => b"cocoa-issuer/token\0",
            Self::ApiKey => b"cocoa-issuer/api-key\0",
            Self::Session => b"cocoa-issuer/session\0",
            Self::Retry => b"cocoa-issuer/retry\0",
            Self::Form => b"cocoa-issuer/form\0",
        }
    }
}

impl CodeHasher {
    /// A hasher under `secret` (at least 32 bytes of server secret).
    pub fn new(secret: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(b"cocoa-issuer code hashing key v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Self {
            key: SecretBox::new(Box::new(key)),
        }
    }

    /// `hex(HMAC-SHA256(key, label || value))`.
    pub fn hash(&self, kind: CodeKind, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(kind.label());
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn numbers_are_eight_digits_and_never_print() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let n = ProcessingNumber::generate(&mut rng);
            assert_eq!(n.expose().len(), 8);
            assert!(n.expose().bytes().all(|b| b.is_ascii_digit()));
            assert!(!format!("{n:?}").contains(n.expose()));
        }
        let l = LinkCode::generate(&mut rng);
        assert_eq!(l.expose().len(), LINK_CODE_LEN);
        assert!(!format!("{l:?}").contains(l.expose()));
    }

    #[test]
    fn typed_numbers_are_normalised() {
        let n = |s: &str| TypedCode::Number(s.to_owned());
        assert_eq!(normalise_code("12345678"), Some(n("12345678")));
        assert_eq!(normalise_code("１２３４５６７８"), Some(n("12345678")));
        assert_eq!(normalise_code("1234 5678"), Some(n("12345678")));
        assert_eq!(normalise_code("1234-5678"), Some(n("12345678")));
        assert_eq!(normalise_code(" １２３４−５６７８ "), Some(n("12345678")));
        // A no-break space, as a number copied from an SMS may carry.
        assert_eq!(normalise_code("1234\u{a0}5678"), Some(n("12345678")));
        for bad in [
            "1234567",
            "123456789",
            "1234567a",
            "abcdefgh",
            "",
            "１２３４５６７",
        ] {
            assert_eq!(normalise_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn link_codes_are_normalised() {
        assert_eq!(
            normalise_code("abcd-efgh-ijkl-mnop-qrst"),
            Some(TypedCode::Link("ABCDEFGH1JK1MN0PQRST".to_owned()))
        );
        assert_eq!(normalise_code("ABCDEFGHJKMNPQRSTVWU"), None);
    }

    #[test]
    fn hashes_depend_on_kind_and_secret() {
        let h = CodeHasher::new(&[1; 32]);
        let a = h.hash(CodeKind::Number, "12345678");
        assert_eq!(a.len(), 64);
        assert_eq!(a, h.hash(CodeKind::Number, "12345678"));
        assert_ne!(a, h.hash(CodeKind::Link, "12345678"));
        assert_ne!(
            a,
            CodeHasher::new(&[2; 32]).hash(CodeKind::Number, "12345678")
        );
        assert!(!format!("{h:?}").contains('1'));
    }
}
