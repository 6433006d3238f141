//! Secrets sealed at rest under the server secret.
//!
//! "Signing keys and TOTP secrets encrypted at rest under the server
//! secret, so that a copied database or backup alone is not enough"
//! (issue 12, finding 1). A [`SealingKey`] is derived from the server
//! secret with HKDF-SHA256 (RFC 5869), one key per purpose, and seals with
//! AES-256-GCM; the row's identity (a key id, an account id) is the
//! associated data, so a sealed value moved to another row does not open.
//! Both come from `ring`, already in the tree for the certificates.
//!
//! The stored form is text, `sealed:v1:<hex of nonce ‖ ciphertext ‖ tag>`,
//! so it fits the text columns the plaintext used to live in, and a value
//! without the prefix is recognisably an older row's plaintext, which the
//! owner re-seals at its next start ([`is_sealed`]).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Salt};
use zeroize::Zeroizing;

/// The prefix of every sealed value (the format's version included).
pub const PREFIX: &str = "sealed:v1:";

/// The HKDF salt: fixed, naming the scheme (RFC 5869 §3.1 allows a
/// constant salt; the secret is already uniformly random).
const SALT: &[u8] = b"cocoa-rs sealed at rest v1";

/// Why a stored value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not in the sealed form (a row written before sealing).
    #[error("the stored value is not sealed")]
    NotSealed,
    /// The sealed form is damaged (not hex, too short).
    #[error("the sealed value is damaged")]
    Malformed,
    /// The value does not open with this key: another server secret (a
    /// database copied without its secret, or replicas configured with
    /// different secrets), or another row's value.
    #[error(
        "the sealed value does not open with this server's secret: the database was copied \
         without its secret, or the secret differs between replicas"
    )]
    WrongSecret,
}

/// A key that seals values of one purpose.
pub struct SealingKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

/// HKDF output length for an AES-256 key.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// Whether `stored` is in the sealed form.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

impl SealingKey {
    /// The key of `purpose` (e.g. `"issuer certificate signing key"`) under
    /// `secret`: different purposes get independent keys.
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        let info = [purpose.as_bytes()];
        let prk = Salt::new(HKDF_SHA256, SALT).extract(secret);
        // Both only fail for an output longer than 255 hash lengths.
        let okm = prk
            .expand(&info, Len(32))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        okm.fill(bytes.as_mut())
            .expect("the buffer has the length asked for");
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes.as_ref()).expect("32 bytes is an AES-256 key");
        Self {
            key: LessSafeKey::new(unbound),
        }
    }

    /// Seals `plaintext` for the row `row` (its identity, as associated
    /// data). `nonce` must be fresh random bytes for every call (the
    /// caller's RNG: 96 random bits, safe for far more values than a
    /// server ever seals under one key).
    pub fn seal(&self, plaintext: &[u8], row: &str, nonce: [u8; NONCE_LEN]) -> String {
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(row.as_bytes()),
                &mut buf,
            )
            .expect("a value of a few kB always seals");
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", hex::encode(out))
    }

    /// Opens a value [`Self::seal`] made for `row`.
    pub fn open(&self, stored: &str, row: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let raw = hex::decode(rest).map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Malformed);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::from(row.as_bytes()), buf.as_mut_slice())
            .map_err(|_| SealError::WrongSecret)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

/// Why the server secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A configured or kept secret shorter than 32 characters.
    #[error("{0} is too short a secret: at least 32 characters")]
    TooShort(String),
    /// The secret file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// The server secret: `configured` (from the configuration, named `name`
/// in messages), else the one kept in `file`, else a new one generated
/// into `file` (32 random bytes as hex, mode 0600, created exclusively).
/// Replicas sharing a database must be configured with the same secret.
pub fn server_secret(
    configured: Option<&str>,
    name: &str,
    file: &std::path::Path,
    rng: &mut dyn FnMut(&mut [u8]),
) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let io = |source| SecretError::Io {
        path: file.display().to_string(),
        source,
    };
    if let Some(s) = configured {
        if s.len() < 32 {
            return Err(SecretError::TooShort(name.to_owned()));
        }
        return Ok(Zeroizing::new(s.as_bytes().to_vec()));
    }
    match std::fs::read_to_string(file) {
        Ok(s) => {
            let s = Zeroizing::new(s);
            let s = s.trim();
            if s.len() < 32 {
                return Err(SecretError::TooShort(file.display().to_string()));
            }
            return Ok(Zeroizing::new(s.as_bytes().to_vec()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut b = Zeroizing::new([0u8; 32]);
    rng(b.as_mut());
    let s = Zeroizing::new(hex::encode(b.as_ref()));
    crate::private::write_private_new(file, s.as_bytes()).map_err(io)?;
    Ok(Zeroizing::new(s.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; NONCE_LEN] = [9; NONCE_LEN];

    #[test]
    fn a_sealed_value_opens_with_its_secret_purpose_and_row_only() {
        let key = SealingKey::derive(b"0123456789abcdef0123456789abcdef", "signing key");
        let sealed = key.seal(b"private key bytes", "kid-1", NONCE);
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains(&hex::encode(b"private key bytes")));
        assert_eq!(
            key.open(&sealed, "kid-1").unwrap().as_slice(),
            b"private key bytes"
        );
        // Another row, another secret, another purpose: nothing opens.
        assert_eq!(key.open(&sealed, "kid-2"), Err(SealError::WrongSecret));
        let other = SealingKey::derive(b"0123456789abcdef0123456789abcdeX", "signing key");
        assert_eq!(other.open(&sealed, "kid-1"), Err(SealError::WrongSecret));
        let purpose = SealingKey::derive(b"0123456789abcdef0123456789abcdef", "totp secret");
        assert_eq!(purpose.open(&sealed, "kid-1"), Err(SealError::WrongSecret));
    }

    #[test]
    fn the_server_secret_is_configured_kept_or_generated_privately() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.secret");
        let mut fill = |b: &mut [u8]| b.fill(7);
        assert!(matches!(
            server_secret(Some("short"), "x.secret", &file, &mut fill),
            Err(SecretError::TooShort(_))
        ));
        let configured = "c".repeat(40);
        let got = server_secret(Some(&configured), "x", &file, &mut fill).unwrap();
        assert_eq!(got.as_slice(), configured.as_bytes());
        assert!(!file.exists(), "a configured secret writes no file");
        let first = server_secret(None, "x", &file, &mut fill).unwrap();
        assert_eq!(first.as_slice(), "07".repeat(32).as_bytes());
        let mut other = |b: &mut [u8]| b.fill(8);
        let again = server_secret(None, "x", &file, &mut other).unwrap();
        assert_eq!(again.as_slice(), first.as_slice(), "kept, not regenerated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn plaintext_and_damaged_values_are_told_apart() {
        let key = SealingKey::derive(&[1; 32], "p");
        assert_eq!(key.open("30818702", "r"), Err(SealError::NotSealed));
        assert_eq!(key.open("sealed:v1:zz", "r"), Err(SealError::Malformed));
        assert_eq!(key.open("sealed:v1:0011", "r"), Err(SealError::Malformed));
        let mut sealed = key.seal(b"x", "r", NONCE);
        let last = sealed.pop().unwrap();
        sealed.push(if last == '0' { '1' } else { '0' });
        assert_eq!(key.open(&sealed, "r"), Err(SealError::WrongSecret));
    }
}
