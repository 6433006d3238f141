//! Building a batch's files: real keys and stored fakes, sorted, split at
//! 500,000 keys, signed by every signer, zipped. Pure and deterministic: the
//! same stored keys give the same bytes (sorted keys, RFC 6979 signatures,
//! zip entries dated at the zip epoch).

use en_protocol::export::{
    ExportMeta, ExportSigner, ExposureKey, ReportType, SoftwareSigner, sign_export, split_batch,
};
use en_protocol::{EnIntervalNumber, Tek};
use rand::RngCore;

use super::file_path;
use crate::store::{BatchRow, KeyRow};

/// One file of a batch, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFile {
    /// Object path.
    pub path: String,
    /// Number within the batch, from 1.
    pub file_num: usize,
    /// Keys in it, fakes included.
    pub key_count: usize,
    /// The zip.
    pub zip: Vec<u8>,
}

/// Fake keys for a batch of `real` keys (none when it has `pad_to` or more):
/// random key bytes, each copying the metadata of a randomly chosen real key,
/// so that a fake cannot be told from a real key. The batch then holds
/// `pad_to + random(0..jitter)` keys.
pub fn fake_keys(
    real: &[KeyRow],
    pad_to: usize,
    jitter: usize,
    rng: &mut dyn RngCore,
) -> Vec<KeyRow> {
    if real.is_empty() || real.len() >= pad_to {
        return Vec::new();
    }
    let extra = if jitter > 0 {
        (rng.next_u64() % jitter as u64) as usize
    } else {
        0
    };
    let n = pad_to + extra - real.len();
    (0..n)
        .map(|_| {
            let model = &real[(rng.next_u64() % real.len() as u64) as usize];
            let mut key_data = [0u8; 16];
            rng.fill_bytes(&mut key_data);
            KeyRow {
                key_data,
                ..model.clone()
            }
        })
        .collect()
}

fn exposure_key(k: &KeyRow) -> anyhow::Result<ExposureKey> {
    let start = u32::try_from(k.rolling_start)?;
    let mut e = ExposureKey::new(Tek::from_bytes(k.key_data), EnIntervalNumber::new(start));
    e.rolling_period = u32::try_from(k.rolling_period)?;
    e.transmission_risk_level = Some(i32::try_from(k.transmission_risk)?);
    e.report_type = Some(ReportType(i32::try_from(k.report_type)?));
    Ok(e)
}

/// Builds every file of a batch (none for a batch without real keys).
pub fn build_batch(
    batch: &BatchRow,
    real: Vec<KeyRow>,
    fakes: Vec<KeyRow>,
    signers: &[SoftwareSigner],
    max_keys_per_file: usize,
) -> anyhow::Result<Vec<BuiltFile>> {
    if real.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys = Vec::with_capacity(real.len() + fakes.len());
    for k in real.iter().chain(fakes.iter()) {
        keys.push(exposure_key(k)?);
    }
    drop((real, fakes));
    let meta = ExportMeta {
        start_timestamp: u64::try_from(batch.start_timestamp)?,
        end_timestamp: u64::try_from(batch.end_timestamp)?,
        region: batch.region.clone(),
    };
    let signers: Vec<&dyn ExportSigner> = signers.iter().map(|s| s as &dyn ExportSigner).collect();
    split_batch(&meta, keys, Vec::new(), max_keys_per_file)
        .into_iter()
        .enumerate()
        .map(|(i, export)| {
            let key_count = export.keys.len() + export.revised_keys.len();
            let zip = sign_export(export, &signers)?.to_zip()?;
            Ok(BuiltFile {
                path: file_path(batch, i + 1),
                file_num: i + 1,
                key_count,
                zip,
            })
        })
        .collect()
}
