//! Certificate signing keys (ECDSA P-256) and the certificate itself: an
//! ES256 JWT with `kid`, bound to the device's key HMAC (PROTOCOLS.md §3).
//!
//! Keys are generated and stored by the server. Rotation makes a new key the
//! signing key at once and keeps the old ones in the JWKS for an overlap, so
//! certificates signed just before the rotation still verify.

use std::sync::RwLock;

use api_types::verify::{CertificateClaims, Jwk, JwkSet};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use crate::domain::codes::SecureRng;
use crate::store::{SigningKeyRow, Store, StoreError};

/// Lifetime of a certificate: 15 minutes.
pub const CERTIFICATE_LIFETIME_SECONDS: i64 = 15 * 60;
/// How long a rotated-out key stays in the JWKS: one day, far longer than a
/// certificate lives.
pub const ROTATION_OVERLAP_SECONDS: i64 = 24 * 3600;

/// One loaded key.
struct LoadedKey {
    kid: String,
    signing: SigningKey,
    /// The same key for `ring`, whose assembly P-256 signs several times
    /// faster than the pure-Rust `p256` (the certificate is on the hot path
    /// of every registration); `p256` signs when `ring` refuses the key.
    fast: Option<ring::signature::EcdsaKeyPair>,
    public_pem: String,
}

/// The key in `ring`'s form, from its scalar and public point.
fn ring_key(sk: &SigningKey) -> Option<ring::signature::EcdsaKeyPair> {
    let public = VerifyingKey::from(sk).to_encoded_point(false);
    ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &sk.to_bytes(),
        public.as_bytes(),
        &ring::rand::SystemRandom::new(),
    )
    .ok()
}

/// The server's certificate keys, cached from the store.
pub struct Keyring {
    keys: RwLock<Vec<LoadedKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<String> = self.read().iter().map(|k| k.kid.clone()).collect();
        f.debug_struct("Keyring").field("kids", &kids).finish()
    }
}

/// The key id of a public key: hex of the first 8 bytes of SHA-256 of its
/// SubjectPublicKeyInfo DER.
fn key_id(vk: &VerifyingKey) -> Result<String, SigningError> {
    let der = vk.to_public_key_der().map_err(|_| SigningError::Encoding)?;
    Ok(hex::encode(&Sha256::digest(der.as_bytes())[..8]))
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
            loaded.push(LoadedKey {
                kid: r.kid,
                fast: ring_key(&signing),
                signing,
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
        let keys = self
            .read()
            .iter()
            .map(|k| {
                let p = VerifyingKey::from(&k.signing).to_encoded_point(false);
                Jwk {
                    kty: "EC".into(),
                    crv: "P-256".into(),
                    x: URL_SAFE_NO_PAD.encode(p.x().map(|x| x.to_vec()).unwrap_or_default()),
                    y: URL_SAFE_NO_PAD.encode(p.y().map(|y| y.to_vec()).unwrap_or_default()),
                    kid: k.kid.clone(),
                    use_: "sig".into(),
                    alg: "ES256".into(),
                }
            })
            .collect();
        JwkSet { keys }
    }

    /// The public keys as PEM, signing key first, with their key ids.
    pub fn public_pems(&self) -> Vec<(String, String)> {
        self.read()
            .iter()
            .map(|k| (k.kid.clone(), k.public_pem.clone()))
            .collect()
    }

    /// Signs `claims` as an ES256 JWT with the newest key.
    pub fn sign(&self, claims: &CertificateClaims) -> Result<String, SigningError> {
        let keys = self.read();
        let key = keys.first().ok_or(SigningError::NoKey)?;
        let header = serde_json::json!({"alg": "ES256", "kid": key.kid, "typ": "JWT"});
        let h = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&header).map_err(|_| SigningError::Encoding)?);
        let c =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|_| SigningError::Encoding)?);
        let input = format!("{h}.{c}");
        let fast = key.fast.as_ref().and_then(|k| {
            k.sign(&ring::rand::SystemRandom::new(), input.as_bytes())
                .ok()
        });
        let sig: Vec<u8> = match fast {
            Some(s) => s.as_ref().to_vec(),
            None => {
                let sig: Signature = key.signing.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// Verifies an ES256 certificate against a JWK set and returns its claims
/// (no time or audience checks: those belong to the verifier's policy).
/// Used by tests here; the key server has its own verifier.
pub fn decode_certificate(jwt: &str, jwks: &JwkSet) -> Option<(String, CertificateClaims)> {
    use p256::ecdsa::signature::Verifier as _;
    let mut parts = jwt.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "ES256" {
        return None;
    }
    let kid = header.get("kid")?.as_str()?.to_owned();
    let jwk = jwks.keys.iter().find(|k| k.kid == kid)?;
    let mut sec1 = vec![4u8];
    sec1.extend(URL_SAFE_NO_PAD.decode(&jwk.x).ok()?);
    sec1.extend(URL_SAFE_NO_PAD.decode(&jwk.y).ok()?);
    let vk = VerifyingKey::from_sec1_bytes(&sec1).ok()?;
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    vk.verify(format!("{h}.{c}").as_bytes(), &sig).ok()?;
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    Some((kid, claims))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ring_signs_what_p256_verifies() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let sk = SigningKey::random(&mut RngAdapter(&mut rng));
        let fast = ring_key(&sk).expect("ring takes a p256 key");
        let msg = b"header.claims";
        let sig = fast
            .sign(&ring::rand::SystemRandom::new(), msg)
            .expect("signs");
        let sig = Signature::from_slice(sig.as_ref()).expect("64-byte r||s");
        use p256::ecdsa::signature::Verifier as _;
        assert!(VerifyingKey::from(&sk).verify(msg, &sig).is_ok());
    }
}
