//! Tools for tests, benchmarks and demos: a local certificate issuer the
//! key server can be told to trust, complete publish requests, and moto's
//! S3-compatible server ([`MotoServer`]) for the object-store tests.
//!
//! A [`Minter`] holds a P-256 key generated on the spot and signs ES256
//! certificates exactly as the issuer does (`kid` = hex of the first 8 bytes
//! of SHA-256 of the SPKI DER, JOSE `r || s` signature: crate `certificate`). Trust it with
//! [`Minter::trusted_issuer`] in process, or give [`Minter::public_key_pem`]
//! to `cocoa keyserver add-issuer`.

use api_types::publish::{PublishKey, PublishRequest, tekmac_message};
use api_types::verify::CertificateClaims;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use certificate::CertificateSigner;
use en_protocol::time::TEK_ROLLING_PERIOD;
use hmac::{Hmac, Mac};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::{CryptoRng, RngCore};
use sha2::Sha256;

use crate::store::StoredKey;
use crate::trust::TrustedIssuer;

/// A local certificate issuer.
pub struct Minter {
    signer: CertificateSigner,
    /// `iss` of its certificates.
    pub iss: String,
    /// `aud` of its certificates.
    pub aud: String,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("kid", &self.signer.kid())
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// A fresh issuer key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R, iss: &str, aud: &str) -> Self {
        let signer = CertificateSigner::new(SigningKey::random(rng))
            .unwrap_or_else(|e| unreachable!("a generated key encodes: {e}"));
        Self {
            signer,
            iss: iss.into(),
            aud: aud.into(),
        }
    }

    /// An issuer key read from PKCS#8 PEM.
    pub fn from_pkcs8_pem(pem: &str, iss: &str, aud: &str) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("not a PKCS#8 PEM P-256 private key: {e}"))?;
        let signer = CertificateSigner::new(key)?;
        Ok(Self {
            signer,
            iss: iss.into(),
            aud: aud.into(),
        })
    }

    /// The private key as PKCS#8 PEM (secret: wiped when dropped).
    pub fn to_pkcs8_pem(&self) -> anyhow::Result<zeroize::Zeroizing<String>> {
        self.signer
            .signing_key()
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("encoding the key: {e}"))
    }

    /// Its key id.
    pub fn kid(&self) -> &str {
        self.signer.kid()
    }

    /// Its public key, SPKI PEM.
    pub fn public_key_pem(&self) -> String {
        self.signer
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The trusted issuer entry for it under `health_authority_id`.
    pub fn trusted_issuer(&self, health_authority_id: &str) -> TrustedIssuer {
        TrustedIssuer::from_pem(
            health_authority_id,
            &self.iss,
            &self.public_key_pem(),
            Some(self.signer.kid()),
        )
        .unwrap_or_else(|e| unreachable!("a generated key is valid PEM: {e}"))
    }

    /// Signs claims as an ES256 JWT with header `kid`.
    pub fn sign_claims(&self, claims: &serde_json::Value, kid: Option<&str>, alg: &str) -> String {
        let mut header = serde_json::json!({"alg": alg, "typ": "JWT"});
        if let Some(k) = kid {
            header["kid"] = k.into();
        }
        self.signer
            .sign_with_header(&header, claims)
            .unwrap_or_else(|e| unreachable!("JSON values encode: {e}"))
    }

    /// The claims the issuer would write at `iat` for `tekmac`.
    pub fn claims(&self, tekmac: &[u8], report_type: &str, iat: i64) -> CertificateClaims {
        CertificateClaims {
            iss: self.iss.clone(),
            aud: self.aud.clone(),
            iat,
            nbf: iat - 60,
            exp: iat + 900,
            tekmac: STANDARD.encode(tekmac),
            report_type: report_type.into(),
        }
    }

    /// A certificate as the issuer would sign it.
    pub fn certificate(&self, claims: &CertificateClaims) -> String {
        self.signer
            .sign(claims)
            .unwrap_or_else(|e| unreachable!("claims encode: {e}"))
    }
}

/// `HMAC-SHA256(hmac_key, tekmac_message(keys))`, what a device sends as
/// `ekeyhmac`.
pub fn key_hmac(hmac_key: &[u8], keys: &[PublishKey]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(hmac_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(tekmac_message(keys).as_bytes());
    mac.finalize().into_bytes().into()
}

/// `n` random keys of the days before `now_interval`'s day, one a day,
/// newest first (yesterday's first).
pub fn daily_keys<R: RngCore>(rng: &mut R, n: u32, now_interval: u32) -> Vec<PublishKey> {
    let today = now_interval - now_interval % TEK_ROLLING_PERIOD;
    (1..=n)
        .map(|d| {
            let mut k = [0u8; 16];
            rng.fill_bytes(&mut k);
            PublishKey {
                key: STANDARD.encode(k),
                rolling_start_number: today - d * TEK_ROLLING_PERIOD,
                rolling_period: TEK_ROLLING_PERIOD,
                transmission_risk: None,
            }
        })
        .collect()
}

/// A complete publish request for `keys` under a fresh HMAC key, with a
/// certificate from `minter` issued at `iat`.
pub fn publish_request<R: RngCore>(
    rng: &mut R,
    minter: &Minter,
    health_authority_id: &str,
    keys: Vec<PublishKey>,
    report_type: &str,
    iat: i64,
) -> PublishRequest {
    let mut hmac_key = [0u8; 32];
    rng.fill_bytes(&mut hmac_key);
    let mac = key_hmac(&hmac_key, &keys);
    let cert = minter.certificate(&minter.claims(&mac, report_type, iat));
    let mut pad = [0u8; 256];
    rng.fill_bytes(&mut pad);
    PublishRequest {
        keys,
        health_authority_id: health_authority_id.into(),
        verification_payload: cert,
        hmac_key: STANDARD.encode(hmac_key),
        padding: Some(STANDARD.encode(pad)),
        ..PublishRequest::default()
    }
}

/// `n` random keys as a publish at unix time `now` stores them: one a day
/// over the 14 days before today (already ended, so not embargoed), a
/// confirmed test's risk and report type, uploaded and available in `now`'s
/// hour. Benches fill a database with them through
/// [`Store::bulk_insert_keys`](crate::store::Store::bulk_insert_keys).
pub fn stored_keys<R: RngCore>(rng: &mut R, n: usize, now: i64) -> Vec<StoredKey> {
    let hour = now - now.rem_euclid(3600);
    let period = i64::from(TEK_ROLLING_PERIOD);
    let today = now / 600 - (now / 600).rem_euclid(period);
    (0..n)
        .map(|i| {
            let mut key_data = [0u8; 16];
            rng.fill_bytes(&mut key_data);
            StoredKey {
                key_data,
                rolling_start: today - period * (i as i64 % 14 + 1),
                rolling_period: period,
                transmission_risk: 2,
                report_type: 1,
                created_at: hour,
                available_at: hour,
            }
        })
        .collect()
}

#[cfg(feature = "moto")]
/// moto's S3-compatible server (`python3 -m moto.server`) on a free
/// loopback port, for tests of the object store; killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

#[cfg(feature = "moto")]
impl MotoServer {
    /// Starts moto and waits until it accepts connections. `Ok(None)` (a
    /// skip, with a note on stderr) when moto is not installed — except
    /// under `CI`, where `scripts/test` installs it and its absence fails.
    pub fn start() -> std::io::Result<Option<Self>> {
        use std::process::{Command, Stdio};
        let installed = Command::new("python3")
            .args(["-c", "import moto.server"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var_os("CI").is_none(),
                "moto is not installed but CI is set: scripts/test installs it"
            );
            eprintln!("SKIP: moto is not installed (pip install 'moto[server]')");
            return Ok(None);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..400 {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(Some(moto));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(std::io::Error::other(format!(
            "moto did not start on {}",
            moto.endpoint
        )))
    }
}

#[cfg(feature = "moto")]
impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
