//! Signing and verifying `export.bin`: ECDSA P-256 with SHA-256, signatures
//! ASN.1 DER (X9.62), over the whole of `export.bin`, header included.

use std::fmt;

use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::model::{SignatureInfo, TekSignatureList};

/// What a signer may fail with: anything (a KMS call can fail in many ways).
pub type SignError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Something that signs export files: a PEM key in memory
/// ([`SoftwareSigner`]) or a KMS.
pub trait ExportSigner {
    /// The signature info written in `export.bin` and `export.sig` for this
    /// key. Its `signature_algorithm` must be
    /// [`ECDSA_P256_SHA256_OID`](super::ECDSA_P256_SHA256_OID).
    fn signature_info(&self) -> SignatureInfo;

    /// ECDSA P-256 signature of SHA-256(`export_bin`), ASN.1 DER encoded.
    fn sign(&self, export_bin: &[u8]) -> Result<Vec<u8>, SignError>;
}

/// A malformed or unusable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a PKCS#8 PEM P-256 private key.
    #[error("not a PKCS#8 PEM P-256 private key: {0}")]
    PrivateKey(String),
    /// Not an SPKI PEM (or DER) P-256 public key.
    #[error("not an SPKI P-256 public key: {0}")]
    PublicKey(String),
    /// The key could not be encoded.
    #[error("encoding the key failed: {0}")]
    Encode(String),
}

/// A P-256 signing key held in memory, read from or written to PKCS#8 PEM.
/// Signatures are deterministic (RFC 6979), so a rebuilt file is identical.
/// The key is wiped when dropped and never printed.
#[derive(Clone)]
pub struct SoftwareSigner {
    key: SigningKey,
    info: SignatureInfo,
}

impl SoftwareSigner {
    /// A fresh key from a cryptographically secure RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R, info: SignatureInfo) -> Self {
        Self {
            key: SigningKey::random(rng),
            info,
        }
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str, info: SignatureInfo) -> Result<Self, KeyError> {
        let key =
            SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::PrivateKey(e.to_string()))?;
        Ok(Self { key, info })
    }

    /// The private key as PKCS#8 PEM. Secret: the string is wiped when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// The public key that verifies this signer's files.
    pub fn public_key(&self) -> VerificationKey {
        VerificationKey(*self.key.verifying_key())
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form
    /// Apple and Google ask health authorities for.
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        self.public_key().to_public_key_pem()
    }
}

impl fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl ExportSigner for SoftwareSigner {
    fn signature_info(&self) -> SignatureInfo {
        self.info.clone()
    }

    fn sign(&self, export_bin: &[u8]) -> Result<Vec<u8>, SignError> {
        let sig: DerSignature = self.key.try_sign(export_bin)?;
        Ok(sig.as_bytes().to_vec())
    }
}

/// A public key that verifies export files.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerificationKey(VerifyingKey);

impl VerificationKey {
    /// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_public_key_pem(pem: &str) -> Result<Self, KeyError> {
        VerifyingKey::from_public_key_pem(pem)
            .map(Self)
            .map_err(|e| KeyError::PublicKey(e.to_string()))
    }

    /// Reads an SPKI DER public key (what the Apple/Google portals show in
    /// base64).
    pub fn from_public_key_der(der: &[u8]) -> Result<Self, KeyError> {
        VerifyingKey::from_public_key_der(der)
            .map(Self)
            .map_err(|e| KeyError::PublicKey(e.to_string()))
    }

    /// The key as SPKI PEM.
    pub fn to_public_key_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// Whether `der` is a valid signature of `export_bin` by this key.
    pub fn verifies(&self, export_bin: &[u8], der: &[u8]) -> bool {
        let digest = Sha256::digest(export_bin);
        Signature::from_der(der).is_ok_and(|sig| self.0.verify_prehash(&digest, &sig).is_ok())
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let point = self.0.to_encoded_point(true);
        write!(f, "VerificationKey(")?;
        point
            .as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, ")")
    }
}

/// Which signature of `export.sig` verified, with which of the given keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureMatch {
    /// Index in `TekSignatureList::signatures`.
    pub signature_index: usize,
    /// Index in the keys given to [`verify`].
    pub key_index: usize,
}

/// Checks `export_bin` against its signatures: the first signature that
/// verifies with one of `keys`, or `None`.
///
/// The public key decides: `signature_info` is not consulted, so old files
/// whose `signature_algorithm` is free text still verify, and a file cannot
/// pick its own key. Signatures that are not DER are skipped. SHA-256 is
/// computed once, however many signatures and keys there are.
pub fn verify(
    export_bin: &[u8],
    signatures: &TekSignatureList,
    keys: &[VerificationKey],
) -> Option<SignatureMatch> {
    if signatures.signatures.is_empty() || keys.is_empty() {
        return None;
    }
    let digest = Sha256::digest(export_bin);
    signatures
        .signatures
        .iter()
        .enumerate()
        .find_map(|(signature_index, s)| {
            let sig = Signature::from_der(&s.signature).ok()?;
            let key_index = keys
                .iter()
                .position(|k| k.0.verify_prehash(&digest, &sig).is_ok())?;
            Some(SignatureMatch {
                signature_index,
                key_index,
            })
        })
}

/// Whether `der` parses as a DER ECDSA P-256 signature.
pub(crate) fn is_der_signature(der: &[u8]) -> bool {
    Signature::from_der(der).is_ok()
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;

    #[test]
    fn pem_round_trip_and_sign_verify() {
        let signer = SoftwareSigner::generate(&mut OsRng, SignatureInfo::new("440", "v1"));
        let pem = signer.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SoftwareSigner::from_pkcs8_pem(&pem, SignatureInfo::new("440", "v1")).unwrap();
        assert_eq!(again.public_key(), signer.public_key());

        let public =
            VerificationKey::from_public_key_pem(&signer.public_key_pem().unwrap()).unwrap();
        let sig = signer.sign(b"EK Export v1    hello").unwrap();
        assert!(public.verifies(b"EK Export v1    hello", &sig));
        assert!(!public.verifies(b"EK Export v1    hellO", &sig));
        assert!(!public.verifies(b"EK Export v1    hello", &sig[1..]));
    }

    #[test]
    fn private_key_never_prints() {
        let signer = SoftwareSigner::generate(&mut OsRng, SignatureInfo::new("440", "v1"));
        let shown = format!("{signer:?}");
        assert!(shown.contains("440") && !shown.contains("key:"), "{shown}");
    }

    #[test]
    fn garbage_keys_are_refused() {
        assert!(matches!(
            SoftwareSigner::from_pkcs8_pem("nope", SignatureInfo::default()),
            Err(KeyError::PrivateKey(_))
        ));
        assert!(matches!(
            VerificationKey::from_public_key_pem(
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            ),
            Err(KeyError::PublicKey(_))
        ));
    }
}
