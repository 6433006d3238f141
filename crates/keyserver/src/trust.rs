//! Trusted certificate issuers and the check of their certificates: ES256
//! JWTs with a `kid` (PROTOCOLS.md §3), verified offline with the issuer's
//! public key. The key server never talks to the issuer for a publish, except
//! to refresh a JWKS it was told to trust.
//!
//! Issuers come from three places, all keyed by health authority id:
//! the configuration (PEM or JWKS URL), the database (`cocoa keyserver
//! add-issuer`), and, in the all-in-one process, the issuer's keyring read in
//! process.

use std::sync::{Arc, RwLock};

use api_types::verify::{CertificateClaims, JwkSet, TEST_TYPE_CONFIRMED, TEST_TYPE_LIKELY};
use base64::Engine as _;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};

use crate::config::TrustedIssuerConfig;
use crate::error::Error;
use crate::store::Store;

/// How long a fetched JWKS is used before it is fetched again.
pub const JWKS_TTL_SECONDS: i64 = 300;
/// How often an unknown `kid` may trigger a refresh (JWKS or database).
pub const REFRESH_MIN_SECONDS: i64 = 10;

/// The key id of a public key: hex of the first 8 bytes of SHA-256 of its
/// SubjectPublicKeyInfo DER (the one rule, in crate `certificate`).
pub fn key_id(vk: &VerifyingKey) -> anyhow::Result<String> {
    certificate::key_id(vk).map_err(|e| anyhow::anyhow!("encoding public key: {e}"))
}

/// Reads an SPKI PEM P-256 public key.
pub fn parse_public_key_pem(pem: &str) -> anyhow::Result<VerifyingKey> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| anyhow::anyhow!("not an SPKI PEM P-256 public key: {e}"))
}

pub use certificate::keys_of_jwks;

/// Keys with their ids, and when they were fetched.
pub type KeyCache = RwLock<(Vec<(String, VerifyingKey)>, Option<i64>)>;

/// A function giving an issuer's current public keys (the all-in-one
/// process hands the issuer's keyring this way).
pub type JwksFn = Arc<dyn Fn() -> JwkSet + Send + Sync>;

/// Where an issuer's keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// Fixed keys (PEM from configuration or database), with their ids.
    Static(Vec<(String, VerifyingKey)>),
    /// A JWKS URL, fetched and cached.
    Jwks {
        /// The URL.
        url: String,
        /// Keys and when they were fetched.
        cache: Arc<KeyCache>,
    },
    /// Read in process at every check.
    InProcess(JwksFn),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(keys) => {
                let kids: Vec<_> = keys.iter().map(|(k, _)| k.as_str()).collect();
                f.debug_tuple("Static").field(&kids).finish()
            }
            Self::Jwks { url, .. } => f.debug_struct("Jwks").field("url", url).finish(),
            Self::InProcess(_) => f.write_str("InProcess"),
        }
    }
}

/// One trusted issuer.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The `healthAuthorityID` of publish requests.
    pub health_authority_id: String,
    /// The `iss` of its certificates.
    pub iss: String,
    /// Its keys.
    pub keys: KeySource,
    /// Export region of what its health authority publishes (none: the
    /// main region).
    pub region: Option<String>,
}

impl TrustedIssuer {
    /// An issuer with one PEM key; `kid` is computed when absent.
    pub fn from_pem(
        health_authority_id: &str,
        iss: &str,
        pem: &str,
        kid: Option<&str>,
    ) -> anyhow::Result<Self> {
        let vk = parse_public_key_pem(pem)?;
        let kid = match kid {
            Some(k) => k.to_owned(),
            None => key_id(&vk)?,
        };
        Ok(Self {
            health_authority_id: health_authority_id.to_owned(),
            iss: iss.to_owned(),
            keys: KeySource::Static(vec![(kid, vk)]),
            region: None,
        })
    }

    /// An issuer from its configuration entry.
    pub fn from_config(c: &TrustedIssuerConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !c.health_authority_id.is_empty() && !c.iss.is_empty(),
            "a trusted issuer needs health_authority_id and iss"
        );
        let pem = match (&c.public_key_pem, &c.public_key_file) {
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?,
            ),
            (None, None) => None,
            (Some(_), Some(_)) => {
                anyhow::bail!("give public_key_pem or public_key_file, not both")
            }
        };
        if let Some(r) = &c.region {
            anyhow::ensure!(
                crate::store::valid_region(r),
                "trusted issuer {:?}: region {r:?} must be 1-32 letters, digits, - or _",
                c.iss
            );
        }
        match (pem, &c.jwks_url) {
            (Some(pem), None) => {
                Self::from_pem(&c.health_authority_id, &c.iss, &pem, c.kid.as_deref())
                    .map(|i| i.with_region(c.region.clone()))
            }
            (None, Some(url)) => Ok(Self {
                health_authority_id: c.health_authority_id.clone(),
                iss: c.iss.clone(),
                keys: KeySource::Jwks {
                    url: url.clone(),
                    cache: Arc::default(),
                },
                region: c.region.clone(),
            }),
            _ => anyhow::bail!(
                "trusted issuer {:?}: give exactly one of a public key or jwks_url",
                c.iss
            ),
        }
    }

    /// An issuer whose keys are read in process (the all-in-one server).
    pub fn in_process(health_authority_id: &str, iss: &str, jwks: JwksFn) -> Self {
        Self {
            health_authority_id: health_authority_id.to_owned(),
            iss: iss.to_owned(),
            keys: KeySource::InProcess(jwks),
            region: None,
        }
    }

    /// The same issuer, its health authority's keys exported to `region`
    /// (none: the main region).
    pub fn with_region(mut self, region: Option<String>) -> Self {
        self.region = region;
        self
    }
}

/// A certificate that verified.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    /// Its claims.
    pub claims: CertificateClaims,
    /// The 32-byte HMAC it is bound to.
    pub tekmac: [u8; 32],
    /// SHA-256 of `header.claims` (the signed part): the idempotency key of
    /// a publish, immune to re-encodings of the signature.
    pub digest: [u8; 32],
}

/// What a certificate must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Required `aud`.
    pub audience: String,
    /// Tolerance on `exp` and `nbf`, seconds.
    pub skew_seconds: i64,
}

/// Every trusted issuer, by health authority id.
#[derive(Debug)]
pub struct Trust {
    fixed: Vec<TrustedIssuer>,
    stored: RwLock<(Vec<TrustedIssuer>, Option<i64>)>,
    http: reqwest::Client,
}

/// Takes a certificate apart (crate `certificate`); a refusal keeps its reason.
fn parse_jwt(jwt: &str) -> Result<certificate::ParsedCertificate<CertificateClaims>, Error> {
    certificate::parse(jwt).map_err(|e| match e {
        certificate::CertificateError::Invalid(reason) => Error::CertificateInvalid(reason),
        certificate::CertificateError::Encoding => Error::CertificateInvalid("malformed"),
    })
}

impl Trust {
    /// Trust built from fixed issuers (configuration, in process); issuers in
    /// the database are read by [`Trust::reload`].
    pub fn new(fixed: Vec<TrustedIssuer>) -> Self {
        Self {
            fixed,
            stored: RwLock::new((Vec::new(), None)),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Re-reads the issuers added with `cocoa keyserver add-issuer`.
    pub async fn reload(&self, store: &Store, now: i64) -> anyhow::Result<()> {
        let rows = store.trusted_issuers().await?;
        let mut issuers = Vec::with_capacity(rows.len());
        for r in rows {
            match TrustedIssuer::from_pem(
                &r.health_authority_id,
                &r.iss,
                &r.public_key_pem,
                Some(&r.kid),
            ) {
                Ok(i) => issuers.push(i.with_region(r.region.clone())),
                Err(e) => tracing::warn!(kid = %r.kid, error = %e, "stored issuer key unusable"),
            }
        }
        *self.stored.write().unwrap_or_else(|e| e.into_inner()) = (issuers, Some(now));
        Ok(())
    }

    fn issuers_for(&self, ha: &str) -> Vec<TrustedIssuer> {
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        self.fixed
            .iter()
            .chain(stored.0.iter())
            .filter(|i| i.health_authority_id == ha)
            .cloned()
            .collect()
    }

    /// Whether any issuer is trusted under `ha`.
    /// The export region of a health authority's keys: "Canary keys go to a
    /// canary region only, so real phones never download them." The region
    /// of its first issuer that names one; none: the main region.
    pub fn region_of(&self, ha: &str) -> Option<String> {
        self.issuers_for(ha).into_iter().find_map(|i| i.region)
    }

    pub async fn knows(&self, store: &Store, ha: &str, now: i64) -> anyhow::Result<bool> {
        if !self.issuers_for(ha).is_empty() {
            return Ok(true);
        }
        self.refresh_stored(store, now).await?;
        Ok(!self.issuers_for(ha).is_empty())
    }

    async fn refresh_stored(&self, store: &Store, now: i64) -> anyhow::Result<()> {
        let last = self.stored.read().unwrap_or_else(|e| e.into_inner()).1;
        if last.is_none_or(|t| now - t >= REFRESH_MIN_SECONDS || now < t) {
            self.reload(store, now).await?;
        }
        Ok(())
    }

    async fn fetch_jwks(&self, url: &str, cache: &KeyCache, now: i64, force: bool) {
        let last = cache.read().unwrap_or_else(|e| e.into_inner()).1;
        let due = match last {
            None => true,
            Some(t) if force => now - t >= REFRESH_MIN_SECONDS || now < t,
            Some(t) => now - t >= JWKS_TTL_SECONDS || now < t,
        };
        if !due {
            return;
        }
        let result = async {
            let resp = self.http.get(url).send().await?.error_for_status()?;
            resp.json::<JwkSet>().await
        }
        .await;
        let mut guard = cache.write().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(set) => *guard = (keys_of_jwks(&set), Some(now)),
            Err(e) => {
                tracing::warn!(%url, error = %e, "fetching the issuer's JWKS failed");
                guard.1 = Some(now);
            }
        }
    }

    async fn keys_of(
        &self,
        issuer: &TrustedIssuer,
        now: i64,
        force: bool,
    ) -> Vec<(String, VerifyingKey)> {
        match &issuer.keys {
            KeySource::Static(keys) => keys.clone(),
            KeySource::InProcess(f) => keys_of_jwks(&f()),
            KeySource::Jwks { url, cache } => {
                self.fetch_jwks(url, cache, now, force).await;
                cache.read().unwrap_or_else(|e| e.into_inner()).0.clone()
            }
        }
    }

    async fn find_key(
        &self,
        ha: &str,
        iss: &str,
        kid: &str,
        now: i64,
        force: bool,
    ) -> Option<VerifyingKey> {
        for issuer in self.issuers_for(ha).iter().filter(|i| i.iss == iss) {
            if let Some((_, vk)) = self
                .keys_of(issuer, now, force)
                .await
                .into_iter()
                .find(|(k, _)| k == kid)
            {
                return Some(vk);
            }
        }
        None
    }

    /// Verifies the signature of a certificate presented under health
    /// authority `ha`: ES256 only, `kid` required and known for the
    /// certificate's `iss`. Time and audience are checked by [`check_policy`].
    pub async fn verify_signature(
        &self,
        store: &Store,
        ha: &str,
        jwt: &str,
        now: i64,
    ) -> Result<VerifiedCertificate, Error> {
        let parsed = parse_jwt(jwt)?;
        let iss = parsed.claims.iss.as_str();
        let vk = match self.find_key(ha, iss, &parsed.kid, now, false).await {
            Some(vk) => vk,
            None => {
                // A key added or rotated since: refresh once, rate limited.
                self.refresh_stored(store, now).await?;
                self.find_key(ha, iss, &parsed.kid, now, true)
                    .await
                    .ok_or(Error::CertificateInvalid("unknown issuer or key"))?
            }
        };
        parsed
            .verify(&vk)
            .map_err(|_| Error::CertificateInvalid("bad signature"))?;
        let tekmac = base64::engine::general_purpose::STANDARD
            .decode(parsed.claims.tekmac.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or(Error::CertificateInvalid(
                "tekmac is not 32 bytes of base64",
            ))?;
        Ok(VerifiedCertificate {
            digest: Sha256::digest(&parsed.signed).into(),
            claims: parsed.claims,
            tekmac,
        })
    }
}

/// Checks audience, validity window and report type of a verified certificate.
pub fn check_policy(cert: &VerifiedCertificate, policy: &Policy, now: i64) -> Result<(), Error> {
    let c = &cert.claims;
    if c.aud != policy.audience {
        return Err(Error::CertificateAudience);
    }
    if now > c.exp.saturating_add(policy.skew_seconds)
        || now < c.nbf.saturating_sub(policy.skew_seconds)
    {
        return Err(Error::CertificateExpired);
    }
    if report_type_of(&c.report_type).is_none() {
        return Err(Error::CertificateInvalid("unsupported reportType"));
    }
    Ok(())
}

/// What the server writes for a certificate's report type: transmission
/// risk and report type, never the client's (COCOA shipped transmission risk
/// 0, which Android scored as 1, and after the minimum risk score was raised
/// no Android user was notified for four and a half months). `confirmed`:
/// CONFIRMED_TEST with risk 2; `likely`: CONFIRMED_CLINICAL_DIAGNOSIS with
/// risk 4 (the reference server's values). Others are refused.
pub fn report_type_of(report_type: &str) -> Option<(i32, en_protocol::export::ReportType)> {
    use en_protocol::export::ReportType;
    match report_type {
        TEST_TYPE_CONFIRMED => Some((2, ReportType::CONFIRMED_TEST)),
        TEST_TYPE_LIKELY => Some((4, ReportType::CONFIRMED_CLINICAL_DIAGNOSIS)),
        _ => None,
    }
}
