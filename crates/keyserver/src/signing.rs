//! Export signing keys: loaded from configured PKCS#8 PEM files or text, or,
//! when none is configured, generated once and kept in the database so that
//! every exporter replica and `cocoa keyserver export-public-key` see the
//! same key. Every key signs every file, so keys can be rotated with an
//! overlap: add the new key, let phones learn it, then remove the old one.
//!
//! The generated key is stored sealed under the key server's secret
//! ([`store_support::sealed`]; the key id and version as associated data):
//! "signing keys … encrypted at rest under the server secret, so that a
//! copied database or backup alone is not enough" (issue 12, finding 1).
//! A key an older version stored as plain PEM is sealed at the next start.

use std::sync::Arc;

use anyhow::Context as _;
use en_protocol::export::{ExportSigner, SignatureInfo, SoftwareSigner};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use store_support::sealed::{SealingKey, is_sealed};

use crate::config::ExportConfig;
use crate::store::{SigningKeyRow, Store};

/// The purpose the sealing key of export signing keys is derived for.
const SEALING_PURPOSE: &str = "keyserver export signing key";

/// The row identity a stored key is sealed to.
fn row_id(key_id: &str, key_version: &str) -> String {
    format!("{key_id}/{key_version}")
}

fn seal(sealing: &SealingKey, pem: &str, key_id: &str, key_version: &str) -> String {
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    sealing.seal(pem.as_bytes(), &row_id(key_id, key_version), nonce)
}

/// A signer that can be shared between tasks.
pub type SharedSigner = Arc<dyn ExportSigner + Send + Sync>;

/// The signers of a configuration: the configured keys, or the generated
/// one, sealed in the database under `secret` (the key server's secret;
/// `None`: kept unsealed, see `keyserver::http::load_secret`).
pub async fn load_signers(
    config: &ExportConfig,
    store: &Store,
    now: i64,
    secret: Option<&[u8]>,
) -> anyhow::Result<Vec<SoftwareSigner>> {
    if !config.signing_keys.is_empty() {
        let mut out = Vec::with_capacity(config.signing_keys.len());
        for k in &config.signing_keys {
            let info = SignatureInfo::new(&k.key_id, &k.key_version);
            let pem = match (&k.pem_file, &k.pem) {
                (Some(f), None) => Zeroizing::new(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("reading {}", f.display()))?,
                ),
                (None, Some(p)) => Zeroizing::new(p.expose_secret().to_owned()),
                _ => anyhow::bail!("an export signing key needs exactly one of pem_file or pem"),
            };
            out.push(
                SoftwareSigner::from_pkcs8_pem(&pem, info)
                    .context("reading an export signing key")?,
            );
        }
        return Ok(out);
    }
    let sealing = secret.map(|s| SealingKey::derive(s, SEALING_PURPOSE));
    let mut rows = store.signing_keys().await?;
    for r in &rows {
        let Some(sealing) = &sealing else {
            tracing::warn!(
                key_id = %r.key_id,
                "export signing key stored unsealed: configure keyserver.secret (COCOA_KEYSERVER_SECRET, the same on every replica) to seal it"
            );
            continue;
        };
        if !is_sealed(&r.private_pkcs8_pem) {
            let sealed = seal(sealing, &r.private_pkcs8_pem, &r.key_id, &r.key_version);
            store
                .set_signing_key_private(&r.key_id, &r.key_version, &r.private_pkcs8_pem, &sealed)
                .await?;
            tracing::info!(key_id = %r.key_id, "export signing key sealed under the key server's secret");
        }
    }
    if sealing.is_some() && rows.iter().any(|r| !is_sealed(&r.private_pkcs8_pem)) {
        rows = store.signing_keys().await?;
    }
    if rows.is_empty() {
        tracing::warn!(
            "no export signing key configured: generating one and keeping it in the database"
        );
        let signer = SoftwareSigner::generate(
            &mut rand::rngs::OsRng,
            SignatureInfo::new(&config.key_id, &config.key_version),
        );
        let pem = signer
            .to_pkcs8_pem()
            .map_err(|e| anyhow::anyhow!("encoding the signing key: {e}"))?;
        rows = store
            .insert_first_signing_key(
                &SigningKeyRow {
                    key_id: config.key_id.clone(),
                    key_version: config.key_version.clone(),
                    private_pkcs8_pem: match &sealing {
                        Some(sealing) => seal(sealing, &pem, &config.key_id, &config.key_version),
                        None => pem.to_string(),
                    },
                },
                now,
            )
            .await?;
    }
    rows.iter()
        .map(|r| {
            let pem = if is_sealed(&r.private_pkcs8_pem) {
                let Some(sealing) = &sealing else {
                    anyhow::bail!(
                        "export signing key {} is sealed: configure keyserver.secret (COCOA_KEYSERVER_SECRET), the secret it was sealed under",
                        r.key_id
                    );
                };
                sealing
                    .open(&r.private_pkcs8_pem, &row_id(&r.key_id, &r.key_version))
                    .map_err(|e| anyhow::anyhow!("export signing key {}: {e}", r.key_id))?
            } else {
                // Written by an older replica meanwhile: sealed at the next start.
                Zeroizing::new(r.private_pkcs8_pem.as_bytes().to_vec())
            };
            let pem = std::str::from_utf8(&pem)
                .map_err(|_| anyhow::anyhow!("stored export signing key unusable: not text"))?;
            SoftwareSigner::from_pkcs8_pem(pem, SignatureInfo::new(&r.key_id, &r.key_version))
                .map_err(|e| anyhow::anyhow!("stored export signing key unusable: {e}"))
        })
        .collect()
}

/// The public keys of the signers, as SPKI PEM with their key id and version.
pub fn public_keys(signers: &[SoftwareSigner]) -> anyhow::Result<Vec<(SignatureInfo, String)>> {
    signers
        .iter()
        .map(|s| {
            Ok((
                s.signature_info(),
                s.public_key_pem()
                    .map_err(|e| anyhow::anyhow!("encoding the public key: {e}"))?,
            ))
        })
        .collect()
}
