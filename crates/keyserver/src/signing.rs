//! Export signing keys: loaded from configured PKCS#8 PEM files or text, or,
//! when none is configured, generated once and kept in the database so that
//! every exporter replica and `cocoa keyserver export-public-key` see the
//! same key. Every key signs every file, so keys can be rotated with an
//! overlap: add the new key, let phones learn it, then remove the old one.

use std::sync::Arc;

use anyhow::Context as _;
use en_protocol::export::{ExportSigner, SignatureInfo, SoftwareSigner};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::config::ExportConfig;
use crate::store::{SigningKeyRow, Store};

/// A signer that can be shared between tasks.
pub type SharedSigner = Arc<dyn ExportSigner + Send + Sync>;

/// The signers of a configuration: the configured keys, or the generated one.
pub async fn load_signers(
    config: &ExportConfig,
    store: &Store,
    now: i64,
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
    let mut rows = store.signing_keys().await?;
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
                    private_pkcs8_pem: pem.to_string(),
                },
                now,
            )
            .await?;
    }
    rows.iter()
        .map(|r| {
            SoftwareSigner::from_pkcs8_pem(
                &r.private_pkcs8_pem,
                SignatureInfo::new(&r.key_id, &r.key_version),
            )
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
