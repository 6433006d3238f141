//! The verification certificate (PROTOCOLS.md §3): "an ES256 JWT with `kid`
//! in its header", signed by the issuer with a P-256 key, checked offline by
//! the key server with the issuer's public key.
//!
//! This is the one implementation both servers (and the key server's test
//! kit) use: the key-id rule, the JWK form of a public key, signing and
//! parsing. It is small and hand-written rather than a general JWT crate
//! because the format is fixed (one algorithm, one header shape), the
//! key server must name exactly why a certificate is refused, and signing is
//! on the hot path of every registration (`ring`'s assembly P-256 signs
//! several times faster than pure Rust; see [`CertificateSigner`]).
//! Time, audience and report type are the verifier's policy, not checked here.

use api_types::verify::{Jwk, JwkSet};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::EncodePublicKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// The only algorithm: ECDSA P-256 with SHA-256, JOSE `r || s` signature.
pub const ALG: &str = "ES256";

/// Why a certificate or key was refused. The reason is a fixed text the key
/// server returns with `certificate_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The certificate is malformed or does not verify.
    #[error("{0}")]
    Invalid(&'static str),
    /// A key could not be encoded.
    #[error("key encoding failed")]
    Encoding,
}

/// The key id of a public key: hex of the first 8 bytes of SHA-256 of its
/// SubjectPublicKeyInfo DER. Issuer and key server compute it the same way,
/// so a key given as PEM without a `kid` still matches its certificates.
pub fn key_id(vk: &VerifyingKey) -> Result<String, CertificateError> {
    let der = vk
        .to_public_key_der()
        .map_err(|_| CertificateError::Encoding)?;
    Ok(hex::encode(&Sha256::digest(der.as_bytes())[..8]))
}

/// The JWK (RFC 7517, EC P-256) of a public key.
pub fn jwk(kid: &str, vk: &VerifyingKey) -> Jwk {
    let p = vk.to_encoded_point(false);
    Jwk {
        kty: "EC".into(),
        crv: "P-256".into(),
        x: URL_SAFE_NO_PAD.encode(p.x().map(|x| x.to_vec()).unwrap_or_default()),
        y: URL_SAFE_NO_PAD.encode(p.y().map(|y| y.to_vec()).unwrap_or_default()),
        kid: kid.into(),
        use_: "sig".into(),
        alg: ALG.into(),
    }
}

/// The public key of one JWK, when it is an EC P-256 key with 32-byte
/// coordinates on the curve.
pub fn key_of_jwk(k: &Jwk) -> Option<VerifyingKey> {
    if k.kty != "EC" || k.crv != "P-256" {
        return None;
    }
    let x = URL_SAFE_NO_PAD.decode(&k.x).ok()?;
    let y = URL_SAFE_NO_PAD.decode(&k.y).ok()?;
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// The P-256 keys of a JWK set with their ids; other keys are skipped.
pub fn keys_of_jwks(set: &JwkSet) -> Vec<(String, VerifyingKey)> {
    set.keys
        .iter()
        .filter_map(|k| Some((k.kid.clone(), key_of_jwk(k)?)))
        .collect()
}

/// A certificate signing key with its key id.
pub struct CertificateSigner {
    kid: String,
    key: SigningKey,
    /// The same key for `ring`, whose assembly P-256 signs several times
    /// faster than the pure-Rust `p256` (the certificate is on the hot path
    /// of every registration); `p256` signs when `ring` refuses the key.
    fast: Option<ring::signature::EcdsaKeyPair>,
}

impl std::fmt::Debug for CertificateSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl CertificateSigner {
    /// The signer of `key`, its key id computed by [`key_id`].
    pub fn new(key: SigningKey) -> Result<Self, CertificateError> {
        let kid = key_id(key.verifying_key())?;
        let public = key.verifying_key().to_encoded_point(false);
        let fast = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.to_bytes(),
            public.as_bytes(),
            &ring::rand::SystemRandom::new(),
        )
        .ok();
        Ok(Self { kid, key, fast })
    }

    /// Its key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Its public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// Its public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        jwk(&self.kid, self.verifying_key())
    }

    /// Signs `claims` as a certificate: header `{"alg":"ES256","kid":…,"typ":"JWT"}`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, CertificateError> {
        let header = serde_json::json!({"alg": ALG, "kid": self.kid, "typ": "JWT"});
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under any header (tests build refused certificates
    /// this way: another `alg`, no `kid`, a foreign `kid`). The signature is
    /// always ES256.
    pub fn sign_with_header<C: Serialize>(
        &self,
        header: &serde_json::Value,
        claims: &C,
    ) -> Result<String, CertificateError> {
        let h = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(header).map_err(|_| CertificateError::Encoding)?);
        let c = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(claims).map_err(|_| CertificateError::Encoding)?);
        let input = format!("{h}.{c}");
        let fast = self.fast.as_ref().and_then(|k| {
            k.sign(&ring::rand::SystemRandom::new(), input.as_bytes())
                .ok()
        });
        let sig: Vec<u8> = match fast {
            Some(s) => s.as_ref().to_vec(),
            None => {
                let sig: Signature = self.key.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// A certificate taken apart, before its key is looked up.
#[derive(Debug, Clone)]
pub struct ParsedCertificate<C> {
    /// The header's key id (never empty).
    pub kid: String,
    /// The claims, as the issuer wrote them.
    pub claims: C,
    /// The signed input, `header.claims` (its SHA-256 identifies the
    /// certificate).
    pub signed: Vec<u8>,
    signature: Signature,
}

#[derive(serde::Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

/// Takes a certificate apart: three base64url parts, `alg` ES256, a
/// non-empty `kid`, claims of type `C`, a 64-byte signature.
pub fn parse<C: DeserializeOwned>(jwt: &str) -> Result<ParsedCertificate<C>, CertificateError> {
    let bad = CertificateError::Invalid;
    let mut parts = jwt.trim().split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a JWT"));
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(bad("malformed header"))?;
    if header.alg.as_deref() != Some(ALG) {
        return Err(bad("algorithm is not ES256"));
    }
    let kid = header
        .kid
        .filter(|k| !k.is_empty())
        .ok_or(bad("missing kid"))?;
    let claims: C = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(bad("malformed claims"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(bad("malformed signature"))?;
    Ok(ParsedCertificate {
        kid,
        claims,
        signed: format!("{h}.{c}").into_bytes(),
        signature,
    })
}

impl<C> ParsedCertificate<C> {
    /// Checks the signature with `vk`.
    pub fn verify(&self, vk: &VerifyingKey) -> Result<(), CertificateError> {
        vk.verify(&self.signed, &self.signature)
            .map_err(|_| CertificateError::Invalid("bad signature"))
    }
}

/// Parses and verifies a certificate against a JWK set (the key named by its
/// `kid`); returns the key id and the claims.
pub fn decode<C: DeserializeOwned>(
    jwt: &str,
    jwks: &JwkSet,
) -> Result<(String, C), CertificateError> {
    let parsed = parse::<C>(jwt)?;
    let vk = jwks
        .keys
        .iter()
        .find(|k| k.kid == parsed.kid)
        .and_then(key_of_jwk)
        .ok_or(CertificateError::Invalid("unknown issuer or key"))?;
    parsed.verify(&vk)?;
    Ok((parsed.kid, parsed.claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::verify::CertificateClaims;
    use rand::SeedableRng;

    fn signer(seed: u64) -> CertificateSigner {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        CertificateSigner::new(SigningKey::random(&mut rng)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn claims() -> CertificateClaims {
        CertificateClaims {
            iss: "cocoa-issuer".into(),
            aud: "cocoa-keyserver".into(),
            iat: 1_600_000_000,
            nbf: 1_599_999_940,
            exp: 1_600_000_900,
            tekmac: "AAAA".into(),
            report_type: "confirmed".into(),
        }
    }

    fn set(s: &CertificateSigner) -> JwkSet {
        JwkSet {
            keys: vec![s.jwk()],
        }
    }

    #[test]
    fn a_signed_certificate_decodes_to_its_claims_under_its_key_id() {
        let s = signer(1);
        let jwt = s.sign(&claims()).unwrap_or_else(|e| panic!("{e}"));
        let (kid, c) =
            decode::<CertificateClaims>(&jwt, &set(&s)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((kid.as_str(), c), (s.kid(), claims()));
        assert_eq!(s.kid().len(), 16, "8 bytes of hex");
    }

    #[test]
    fn ring_signs_what_p256_verifies() {
        let s = signer(9);
        assert!(s.fast.is_some(), "ring takes a p256 key");
        let jwt = s.sign(&claims()).unwrap_or_else(|e| panic!("{e}"));
        let parsed = parse::<CertificateClaims>(&jwt).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.verify(s.verifying_key()), Ok(()));
    }

    #[test]
    fn each_malformed_or_foreign_certificate_is_refused_with_its_reason() {
        let s = signer(2);
        let other = signer(3);
        let good = s.sign(&claims()).unwrap_or_else(|e| panic!("{e}"));
        let sign_h = |h: serde_json::Value| {
            s.sign_with_header(&h, &claims())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let mut tampered: Vec<&str> = good.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&CertificateClaims {
                report_type: "likely".into(),
                ..claims()
            })
            .unwrap_or_default(),
        );
        tampered[1] = &forged_claims;
        let tampered = tampered.join(".");
        let cases = [
            ("a.b".to_owned(), "not a JWT"),
            ("a.b.c.d".to_owned(), "not a JWT"),
            (
                sign_h(serde_json::json!({"alg": "HS256", "kid": s.kid()})),
                "algorithm is not ES256",
            ),
            (
                sign_h(serde_json::json!({"alg": "none", "kid": s.kid()})),
                "algorithm is not ES256",
            ),
            (sign_h(serde_json::json!({"alg": "ES256"})), "missing kid"),
            (
                sign_h(serde_json::json!({"alg": "ES256", "kid": ""})),
                "missing kid",
            ),
            (
                format!("!!.{}", good.split('.').nth(1).unwrap_or_default()) + ".x",
                "malformed header",
            ),
            (
                sign_h(serde_json::json!({"alg": "ES256", "kid": other.kid()})),
                "unknown issuer or key",
            ),
            (tampered, "bad signature"),
        ];
        for (jwt, reason) in cases {
            assert_eq!(
                decode::<CertificateClaims>(&jwt, &set(&s)).map(|_| ()),
                Err(CertificateError::Invalid(reason)),
                "{jwt}"
            );
        }
        // Signed by another key under this key's id.
        let impostor = other
            .sign_with_header(
                &serde_json::json!({"alg": "ES256", "kid": s.kid()}),
                &claims(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            decode::<CertificateClaims>(&impostor, &set(&s)).map(|_| ()),
            Err(CertificateError::Invalid("bad signature"))
        );
    }

    #[test]
    fn a_jwk_round_trips_and_foreign_keys_are_skipped() {
        let s = signer(4);
        let mut jwks = set(&s);
        jwks.keys.push(Jwk {
            kty: "RSA".into(),
            ..s.jwk()
        });
        jwks.keys.push(Jwk {
            x: "AAAA".into(),
            ..s.jwk()
        });
        let keys = keys_of_jwks(&jwks);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0, s.kid());
        assert_eq!(&keys[0].1, s.verifying_key());
        assert_eq!(key_id(&keys[0].1), Ok(s.kid().to_owned()));
    }
}
