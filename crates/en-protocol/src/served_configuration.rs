//! The configuration a key server serves to phones beside the exports, and how a phone
//! checks it: COCOA's two documents as published (`configuration.json`,
//! `risk_calculation_configuration.json`) and a small signed bundle naming them.
//!
//! Rule (issue 14): "signed with the export signing key (every configured key, as for
//! exports), versioned, cacheable"; "an unsigned, tampered or invalid configuration is
//! refused and reported, never half-applied". The bundle carries the version, the
//! publication time, both documents' SHA-256 and one ECDSA P-256 signature per export
//! signing key (as `export.sig` carries one `TEKSignature` per key) over
//! [`signed_message`]. A phone applies the documents only when a signature verifies with one
//! of its export public keys, both digests match, the version is not older than the one it
//! has, and both documents validate.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::export::{ExportSigner, SignError, VerificationKey};
use crate::exposure_configuration::ExposureConfiguration;
use crate::risk_calculation::RiskCalculationConfiguration;

/// Served path of `configuration.json` (below the key server's base URL).
pub const CONFIGURATION_PATH: &str = "exposure_configuration/configuration.json";
/// Served path of `risk_calculation_configuration.json`.
pub const RISK_CALCULATION_PATH: &str =
    "exposure_configuration/risk_calculation_configuration.json";
/// Served path of the signed bundle.
pub const BUNDLE_PATH: &str = "exposure_configuration/bundle.json";
/// The bundle's `format`.
pub const BUNDLE_FORMAT: &str = "cocoa-rs exposure configuration bundle v1";

/// One signature of the bundle: by which export signing key, DER in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleSignature {
    /// The key's `verification_key_id` (as in `export.sig`).
    pub key_id: String,
    /// The key's `verification_key_version`.
    pub key_version: String,
    /// ECDSA P-256 over SHA-256 of [`signed_message`], ASN.1 DER, hex.
    pub signature: String,
}

/// `exposure_configuration/bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigurationBundle {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The published version, 1, 2, … (never reused).
    pub version: u64,
    /// Unix seconds of the publication.
    pub published_at: i64,
    /// SHA-256 of the served `configuration.json`, hex.
    pub configuration_sha256: String,
    /// SHA-256 of the served `risk_calculation_configuration.json`, hex.
    pub risk_calculation_configuration_sha256: String,
    /// One per export signing key.
    pub signatures: Vec<BundleSignature>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// SHA-256 of a document, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// What every signature covers: the format, version, time and both digests, one a line.
pub fn signed_message(
    version: u64,
    published_at: i64,
    config_sha: &str,
    risk_sha: &str,
) -> Vec<u8> {
    format!("{BUNDLE_FORMAT}\n{version}\n{published_at}\n{config_sha}\n{risk_sha}\n").into_bytes()
}

/// The bundle of a published version, signed by every signer.
pub fn sign_bundle(
    version: u64,
    published_at: i64,
    configuration: &[u8],
    risk_calculation_configuration: &[u8],
    signers: &[&dyn ExportSigner],
) -> Result<ConfigurationBundle, SignError> {
    let c = sha256_hex(configuration);
    let r = sha256_hex(risk_calculation_configuration);
    let message = signed_message(version, published_at, &c, &r);
    let mut signatures = Vec::with_capacity(signers.len());
    for s in signers {
        let info = s.signature_info();
        signatures.push(BundleSignature {
            key_id: info.verification_key_id,
            key_version: info.verification_key_version,
            signature: hex(&s.sign(&message)?),
        });
    }
    Ok(ConfigurationBundle {
        format: BUNDLE_FORMAT.to_owned(),
        version,
        published_at,
        configuration_sha256: c,
        risk_calculation_configuration_sha256: r,
        signatures,
    })
}

/// Why a served configuration was refused (the phone keeps the last good one).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ServedConfigError {
    /// The bundle is not JSON of the bundle's shape (truncated, another format).
    #[error("SERVED_CONFIG_BUNDLE: the bundle cannot be read: {0}")]
    Bundle(String),
    /// The bundle holds no signature.
    #[error("SERVED_CONFIG_UNSIGNED: the bundle holds no signature")]
    Unsigned,
    /// No signature verifies with the phone's export public keys.
    #[error("SERVED_CONFIG_SIGNATURE: no signature verifies with the export public keys")]
    Signature,
    /// A document is not the one the bundle names (tampered, truncated, or changed meanwhile).
    #[error("SERVED_CONFIG_DIGEST: {0} does not match the bundle's SHA-256")]
    Digest(&'static str),
    /// Older than the configuration the phone already applied.
    #[error("SERVED_CONFIG_VERSION: version {served} is older than version {applied}")]
    Version {
        /// The served version.
        served: u64,
        /// The version the phone has.
        applied: u64,
    },
    /// A document is signed but not valid (a stable code of en-protocol inside).
    #[error("SERVED_CONFIG_INVALID: {0}")]
    Invalid(String),
}

impl ServedConfigError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Bundle(_) => "SERVED_CONFIG_BUNDLE",
            Self::Unsigned => "SERVED_CONFIG_UNSIGNED",
            Self::Signature => "SERVED_CONFIG_SIGNATURE",
            Self::Digest(_) => "SERVED_CONFIG_DIGEST",
            Self::Version { .. } => "SERVED_CONFIG_VERSION",
            Self::Invalid(_) => "SERVED_CONFIG_INVALID",
        }
    }

    /// Plain Japanese message.
    pub fn message_ja(&self) -> String {
        let keep = "前回の正しい設定を使い続けます";
        match self {
            Self::Bundle(_) => format!("配信された接触確認の設定を読めません。{keep}"),
            Self::Unsigned => format!("配信された接触確認の設定に署名がありません。{keep}"),
            Self::Signature => {
                format!(
                    "配信された接触確認の設定の署名を確認できません（公開鍵と合いません）。{keep}"
                )
            }
            Self::Digest(f) => format!(
                "配信された {f} が署名された内容と一致しません（改ざんまたは途中で切れています）。{keep}"
            ),
            Self::Version { served, applied } => format!(
                "配信された接触確認の設定（版 {served}）は使用中の版 {applied} より古いものです。{keep}"
            ),
            Self::Invalid(e) => {
                format!("配信された接触確認の設定の値が正しくありません（{e}）。{keep}")
            }
        }
    }
}

/// A served configuration that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedConfiguration {
    /// Its version.
    pub version: u64,
    /// When it was published, Unix seconds.
    pub published_at: i64,
    /// `configuration.json`.
    pub exposure: ExposureConfiguration,
    /// `risk_calculation_configuration.json`.
    pub risk: RiskCalculationConfiguration,
}

/// Checks a served bundle and its two documents, in this order: the bundle's shape, a
/// signature by one of `keys`, both digests, the version (not older than `applied`), both
/// documents' validity. Nothing is returned unless every check passes.
pub fn verify_served(
    bundle: &[u8],
    configuration: &[u8],
    risk_calculation_configuration: &[u8],
    keys: &[VerificationKey],
    applied: Option<u64>,
) -> Result<VerifiedConfiguration, ServedConfigError> {
    let b: ConfigurationBundle =
        serde_json::from_slice(bundle).map_err(|e| ServedConfigError::Bundle(e.to_string()))?;
    if b.format != BUNDLE_FORMAT {
        return Err(ServedConfigError::Bundle(format!("format {:?}", b.format)));
    }
    if b.signatures.is_empty() {
        return Err(ServedConfigError::Unsigned);
    }
    let message = signed_message(
        b.version,
        b.published_at,
        &b.configuration_sha256,
        &b.risk_calculation_configuration_sha256,
    );
    let signed = b.signatures.iter().any(|s| {
        unhex(&s.signature).is_some_and(|der| keys.iter().any(|k| k.verifies(&message, &der)))
    });
    if !signed {
        return Err(ServedConfigError::Signature);
    }
    if sha256_hex(configuration) != b.configuration_sha256 {
        return Err(ServedConfigError::Digest("configuration.json"));
    }
    if sha256_hex(risk_calculation_configuration) != b.risk_calculation_configuration_sha256 {
        return Err(ServedConfigError::Digest(
            "risk_calculation_configuration.json",
        ));
    }
    if let Some(applied) = applied
        && b.version < applied
    {
        return Err(ServedConfigError::Version {
            served: b.version,
            applied,
        });
    }
    let exposure = ExposureConfiguration::from_json(configuration)
        .map_err(|e| ServedConfigError::Invalid(e.to_string()))?;
    let risk = RiskCalculationConfiguration::from_json(risk_calculation_configuration)
        .map_err(|e| ServedConfigError::Invalid(e.to_string()))?;
    Ok(VerifiedConfiguration {
        version: b.version,
        published_at: b.published_at,
        exposure,
        risk,
    })
}

#[cfg(test)]
mod tests {
    use rand_core::SeedableRng;

    use super::*;
    use crate::export::{SignatureInfo, SoftwareSigner};
    use crate::exposure_configuration::COCOA_CONFIGURATION_JSON;
    use crate::risk_calculation::COCOA_RISK_CALCULATION_JSON;

    fn signer(seed: u64, version: &str) -> SoftwareSigner {
        SoftwareSigner::generate(
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed),
            SignatureInfo::new("440", version),
        )
    }

    const C: &[u8] = COCOA_CONFIGURATION_JSON.as_bytes();
    const R: &[u8] = COCOA_RISK_CALCULATION_JSON.as_bytes();

    fn bundle(signers: &[&dyn ExportSigner], version: u64) -> Vec<u8> {
        serde_json::to_vec(&sign_bundle(version, 1_000, C, R, signers).unwrap()).unwrap()
    }

    #[test]
    fn every_key_signs_and_either_key_verifies_during_a_rotation() {
        let (old, new) = (signer(1, "v1"), signer(2, "v2"));
        let b = bundle(&[&old, &new], 3);
        let parsed: ConfigurationBundle = serde_json::from_slice(&b).unwrap();
        assert_eq!(parsed.signatures.len(), 2);
        for keys in [vec![old.public_key()], vec![new.public_key()]] {
            let v = verify_served(&b, C, R, &keys, Some(3)).unwrap();
            assert_eq!(v.version, 3);
        }
        let other = signer(3, "v1");
        assert_eq!(
            verify_served(&b, C, R, &[other.public_key()], None),
            Err(ServedConfigError::Signature)
        );
    }

    #[test]
    fn unsigned_tampered_truncated_older_and_invalid_are_each_refused_with_their_code() {
        let s = signer(1, "v1");
        let keys = [s.public_key()];
        let good = bundle(&[&s], 5);
        let code = |r: Result<VerifiedConfiguration, ServedConfigError>| r.unwrap_err().code();
        assert_eq!(
            code(verify_served(&bundle(&[], 5), C, R, &keys, None)),
            "SERVED_CONFIG_UNSIGNED"
        );
        assert_eq!(
            code(verify_served(&good[..good.len() / 2], C, R, &keys, None)),
            "SERVED_CONFIG_BUNDLE"
        );
        // The version raised in the bundle: the signature no longer covers it.
        let raised = String::from_utf8(good.clone())
            .unwrap()
            .replace("\"version\":5", "\"version\":9");
        assert_eq!(
            code(verify_served(raised.as_bytes(), C, R, &keys, None)),
            "SERVED_CONFIG_SIGNATURE"
        );
        let tampered = String::from_utf8(R.to_vec())
            .unwrap()
            .replace("1350.0", "13500.0");
        assert_eq!(
            code(verify_served(&good, C, tampered.as_bytes(), &keys, None)),
            "SERVED_CONFIG_DIGEST"
        );
        assert_eq!(
            code(verify_served(&good, &C[..C.len() - 10], R, &keys, None)),
            "SERVED_CONFIG_DIGEST"
        );
        assert_eq!(
            code(verify_served(&good, C, R, &keys, Some(6))),
            "SERVED_CONFIG_VERSION"
        );
        // Signed but nonsense: refused all the same.
        let wrong = String::from_utf8(R.to_vec())
            .unwrap()
            .replace("\"format_version\": 1", "\"format_version\": 2");
        let b =
            serde_json::to_vec(&sign_bundle(6, 1, C, wrong.as_bytes(), &[&s]).unwrap()).unwrap();
        let e = verify_served(&b, C, wrong.as_bytes(), &keys, None).unwrap_err();
        assert_eq!(e.code(), "SERVED_CONFIG_INVALID");
        assert!(e.to_string().contains("RISK_CONFIG_VERSION"), "{e}");
        assert!(e.message_ja().contains("前回の正しい設定"));
        assert!(verify_served(&good, C, R, &keys, Some(5)).is_ok());
    }
}
