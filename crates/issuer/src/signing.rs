//! Certificate signing keys (ECDSA P-256) and the certificate itself: an
//! ES256 JWT with `kid`, bound to the device's key HMAC (PROTOCOLS.md §3).
//!
//! Keys are generated and stored by the server. Rotation makes a new key the
//! signing key at once and keeps the old ones in the JWKS for an overlap, so
//! certificates signed just before the rotation still verify.

use std::sync::RwLock;

use api_types::verify::{CertificateClaims, JwkSet};
use certificate::CertificateSigner;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

use crate::domain::codes::SecureRng;
use crate::store::{SigningKeyRow, Store, StoreError};

/// Lifetime of a certificate: 15 minutes.
pub const CERTIFICATE_LIFETIME_SECONDS: i64 = 15 * 60;
/// How long a rotated-out key stays in the JWKS: one day, far longer than a
/// certificate lives.
pub const ROTATION_OVERLAP_SECONDS: i64 = 24 * 3600;

/// One loaded key.
struct LoadedKey {
    signer: CertificateSigner,
    public_pem: String,
}

/// The server's certificate keys, cached from the store.
pub struct Keyring {
    keys: RwLock<Vec<LoadedKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self
            .read()
            .iter()
            .map(|k| k.signer.kid().to_owned())
            .collect();
        f.debug_struct("Keyring").field("kids", &kids).finish()
    }
}

/// The key id of a public key (the one rule, in crate `certificate`).
fn key_id(vk: &VerifyingKey) -> Result<String, SigningError> {
    certificate::key_id(vk).map_err(|_| SigningError::Encoding)
}

/// Signing failures.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be encoded or decoded.
    #[error("signing key encoding failed")]
    Encoding,
    /// No key is loaded.
    #[error("no certificate signing key")]
    NoKey,
}

impl Keyring {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<LoadedKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the live keys, generating a first one when there is none.
    pub async fn load_or_create(
        store: &Store,
        rng: &mut dyn SecureRng,
        now: i64,
    ) -> Result<Self, SigningError> {
        let ring = Self {
            keys: RwLock::new(Vec::new()),
        };
        if store.signing_keys(now).await?.is_empty() {
            Self::generate(store, rng, now).await?;
        }
        ring.reload(store, now).await?;
        Ok(ring)
    }

    async fn generate(
        store: &Store,
        rng: &mut dyn SecureRng,
        now: i64,
    ) -> Result<String, SigningError> {
        let sk = SigningKey::random(&mut RngAdapter(rng));
        let vk = VerifyingKey::from(&sk);
        let kid = key_id(&vk)?;
        let der = sk.to_pkcs8_der().map_err(|_| SigningError::Encoding)?;
        let pem = vk
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| SigningError::Encoding)?;
        store
            .insert_signing_key(&SigningKeyRow {
                kid: kid.clone(),
                private_pkcs8_hex: hex::encode(der.as_bytes()),
                public_pem: pem,
                created_at: now,
                retire_at: None,
            })
            .await?;
        Ok(kid)
    }

    /// Re-reads the live keys from the store (after a rotation by another
    /// process).
    pub async fn reload(&self, store: &Store, now: i64) -> Result<(), SigningError> {
        let rows = store.signing_keys(now).await?;
        let mut loaded = Vec::with_capacity(rows.len());
        for r in rows {
            let der = hex::decode(&r.private_pkcs8_hex).map_err(|_| SigningError::Encoding)?;
            let signing = SigningKey::from_pkcs8_der(&der).map_err(|_| SigningError::Encoding)?;
            let signer = CertificateSigner::new(signing).map_err(|_| SigningError::Encoding)?;
            if signer.kid() != r.kid {
                // The stored id is not the key's: refuse rather than sign
                // certificates no verifier would match.
                return Err(SigningError::Encoding);
            }
            loaded.push(LoadedKey {
                signer,
                public_pem: r.public_pem,
            });
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// Makes a new key the signing key; older keys leave the JWKS after
    /// [`ROTATION_OVERLAP_SECONDS`]. Returns the new key id.
    pub async fn rotate(
        &self,
        store: &Store,
        rng: &mut dyn SecureRng,
        now: i64,
    ) -> Result<String, SigningError> {
        let kid = Self::generate(store, rng, now).await?;
        store
            .retire_signing_keys_except(&kid, now + ROTATION_OVERLAP_SECONDS)
            .await?;
        self.reload(store, now).await?;
        Ok(kid)
    }

    /// The public keys as a JWK set, signing key first.
    pub fn jwks(&self) -> JwkSet {
        let keys = self.read().iter().map(|k| k.signer.jwk()).collect();
        JwkSet { keys }
    }

    /// The public keys as PEM, signing key first, with their key ids.
    pub fn public_pems(&self) -> Vec<(String, String)> {
        self.read()
            .iter()
            .map(|k| (k.signer.kid().to_owned(), k.public_pem.clone()))
            .collect()
    }

    /// Signs `claims` as an ES256 JWT with the newest key.
    pub fn sign(&self, claims: &CertificateClaims) -> Result<String, SigningError> {
        let keys = self.read();
        let key = keys.first().ok_or(SigningError::NoKey)?;
        key.signer.sign(claims).map_err(|_| SigningError::Encoding)
    }
}

/// Verifies an ES256 certificate against a JWK set and returns its key id and
/// claims (no time or audience checks: those belong to the verifier's
/// policy). Used by tests; the key server checks with the same crate.
pub fn decode_certificate(jwt: &str, jwks: &JwkSet) -> Option<(String, CertificateClaims)> {
    certificate::decode(jwt, jwks).ok()
}

/// Lets a `&mut dyn SecureRng` be used where a sized `CryptoRngCore` is wanted.
struct RngAdapter<'a>(&'a mut dyn SecureRng);

impl rand::RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl rand::CryptoRng for RngAdapter<'_> {}
