//! Certificate signing keys (ECDSA P-256) and the certificate itself: an
//! ES256 JWT with `kid`, bound to the device's key HMAC (PROTOCOLS.md §3).
//!
//! Keys are generated and stored by the server. Rotation makes a new key the
//! signing key at once and keeps the old ones in the JWKS for an overlap, so
//! certificates signed just before the rotation still verify.
//!
//! The private keys are stored sealed under the server secret
//! ([`store_support::sealed`], AES-256-GCM under an HKDF-derived key, the key
//! id as associated data): "signing keys … encrypted at rest under the
//! server secret, so that a copied database or backup alone is not enough"
//! (issue 12, finding 1). Rows of an older database, in plain hex, are
//! sealed at the next start ([`Keyring::load_or_create`]).

use std::sync::RwLock;

use api_types::verify::{CertificateClaims, JwkSet};
use certificate::CertificateSigner;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

use store_support::sealed::{SealError, SealingKey, is_sealed};

use crate::domain::codes::SecureRng;
use crate::store::{SigningKeyRow, Store, StoreError};

/// The purpose the sealing key of certificate signing keys is derived for.
const SEALING_PURPOSE: &str = "issuer certificate signing key";

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
    sealing: SealingKey,
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
    /// A stored key does not open (another server secret, or damaged).
    #[error("certificate signing key {kid}: {source}")]
    Sealed {
        /// The key's id.
        kid: String,
        /// Why it did not open.
        source: SealError,
    },
}

impl Keyring {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<LoadedKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the live keys, sealing under `secret` those an older version
    /// stored in plain hex (retired ones too), and generating a first key
    /// when there is none.
    pub async fn load_or_create(
        store: &Store,
        secret: &[u8],
        rng: &mut dyn SecureRng,
        now: i64,
    ) -> Result<Self, SigningError> {
        let ring = Self {
            keys: RwLock::new(Vec::new()),
            sealing: SealingKey::derive(secret, SEALING_PURPOSE),
        };
        ring.seal_older_rows(store, rng).await?;
        if store.signing_keys(now).await?.is_empty() {
            ring.generate(store, rng, now).await?;
        }
        ring.reload(store, now).await?;
        Ok(ring)
    }

    /// Seals every private key still stored in plain hex.
    async fn seal_older_rows(
        &self,
        store: &Store,
        rng: &mut dyn SecureRng,
    ) -> Result<(), SigningError> {
        for (kid, stored) in store.signing_key_privates().await? {
            if is_sealed(&stored) {
                continue;
            }
            let der = zeroize::Zeroizing::new(
                hex::decode(stored.as_str()).map_err(|_| SigningError::Encoding)?,
            );
            let sealed = self.seal(&der, &kid, rng);
            store
                .set_signing_key_private(&kid, &stored, &sealed)
                .await?;
            tracing::info!(%kid, "certificate signing key sealed under the server secret");
        }
        Ok(())
    }

    fn seal(&self, der: &[u8], kid: &str, rng: &mut dyn SecureRng) -> String {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        self.sealing.seal(der, kid, nonce)
    }

    async fn generate(
        &self,
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
                private_pkcs8_hex: self.seal(der.as_bytes(), &kid, rng),
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
            let der = if is_sealed(&r.private_pkcs8_hex) {
                self.sealing
                    .open(&r.private_pkcs8_hex, &r.kid)
                    .map_err(|source| SigningError::Sealed {
                        kid: r.kid.clone(),
                        source,
                    })?
            } else {
                // Written by an older replica during a rolling upgrade:
                // usable, and sealed at this process's next start.
                tracing::warn!(kid = %r.kid, "certificate signing key stored unsealed");
                zeroize::Zeroizing::new(
                    hex::decode(&r.private_pkcs8_hex).map_err(|_| SigningError::Encoding)?,
                )
            };
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
        let kid = self.generate(store, rng, now).await?;
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
