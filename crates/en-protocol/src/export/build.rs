//! Building signed export files, and splitting big batches into several.

use super::BuildError;
use super::archive::ExportArchive;
use super::model::{
    ECDSA_P256_SHA256_OID, ExposureKey, TekSignature, TekSignatureList, TemporaryExposureKeyExport,
};
use super::signing::{ExportSigner, is_der_signature};

/// Most keys (keys plus revised keys) in one file, as the reference server
/// does; [`split_batch`] cuts bigger batches.
pub const MAX_KEYS_PER_FILE: usize = 500_000;

/// What describes a batch besides its keys. Files are always batch 1 of 1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportMeta {
    /// First second of the batch window, UTC.
    pub start_timestamp: u64,
    /// End of the batch window, UTC seconds.
    pub end_timestamp: u64,
    /// Region, e.g. `"440"`.
    pub region: String,
}

impl ExportMeta {
    fn export(
        &self,
        keys: Vec<ExposureKey>,
        revised_keys: Vec<ExposureKey>,
    ) -> TemporaryExposureKeyExport {
        TemporaryExposureKeyExport {
            start_timestamp: self.start_timestamp,
            end_timestamp: self.end_timestamp,
            region: self.region.clone(),
            batch_num: 1,
            batch_size: 1,
            signature_infos: Vec::new(),
            keys,
            revised_keys,
        }
    }
}

/// Builds one signed export zip: sorts the keys, writes every signer's
/// signature info into `export.bin`, signs it with each signer and zips it
/// with one `TEKSignature` per signer. See [`sign_export`].
pub fn build_export(
    meta: &ExportMeta,
    keys: Vec<ExposureKey>,
    signers: &[&dyn ExportSigner],
) -> Result<Vec<u8>, BuildError> {
    sign_export(meta.export(keys, Vec::new()), signers)?.to_zip()
}

/// Signs an export: sorts its keys in place, replaces its signature infos
/// with the signers' (in the order given), encodes `export.bin`, and signs it
/// once per signer.
///
/// Refused: no signer; a signer not declaring ECDSA P-256 / SHA-256; a
/// signature that is not DER; `start_timestamp > end_timestamp`; a batch
/// other than 1 of 1; invalid keys; an `export.bin` over the size limit.
pub fn sign_export(
    mut export: TemporaryExposureKeyExport,
    signers: &[&dyn ExportSigner],
) -> Result<ExportArchive, BuildError> {
    if signers.is_empty() {
        return Err(BuildError::NoSigners);
    }
    if export.start_timestamp > export.end_timestamp {
        return Err(BuildError::StartAfterEnd {
            start: export.start_timestamp,
            end: export.end_timestamp,
        });
    }
    if (export.batch_num, export.batch_size) != (1, 1) {
        return Err(BuildError::NotOneOfOne {
            batch_num: export.batch_num,
            batch_size: export.batch_size,
        });
    }
    let infos: Vec<_> = signers.iter().map(|s| s.signature_info()).collect();
    if let Some(bad) = infos
        .iter()
        .find(|i| i.signature_algorithm != ECDSA_P256_SHA256_OID)
    {
        return Err(BuildError::UnsupportedAlgorithm {
            key_id: bad.verification_key_id.clone(),
            algorithm: bad.signature_algorithm.clone(),
        });
    }

    export.sort_keys();
    export.signature_infos = infos;
    let export_bin = export.encode()?;

    let mut signatures = Vec::with_capacity(signers.len());
    for (signer, info) in signers.iter().zip(export.signature_infos) {
        let signature = signer
            .sign(&export_bin)
            .map_err(|source| BuildError::Signing {
                key_id: info.verification_key_id.clone(),
                source,
            })?;
        if !is_der_signature(&signature) {
            return Err(BuildError::NotDer {
                key_id: info.verification_key_id,
            });
        }
        signatures.push(TekSignature {
            signature_info: info,
            batch_num: export.batch_num,
            batch_size: export.batch_size,
            signature,
        });
    }
    let export_sig = TekSignatureList { signatures }.encode();
    Ok(ExportArchive {
        export_bin,
        export_sig,
    })
}

/// Cuts a batch into files of at most `max_keys_per_file` keys (normally
/// [`MAX_KEYS_PER_FILE`]; 0 counts as 1), ready for [`sign_export`].
///
/// Like the reference server: both lists are sorted first, so each file holds
/// a contiguous run of the sorted keys; files fill with `keys` first, then
/// `revised_keys`, counting both toward the maximum. Every file is batch 1 of
/// 1 (Apple rejects others), so to keep files of one batch distinct when
/// there are several, file *i* (from 1) gets `end_timestamp + i` seconds; a
/// batch that fits one file keeps its `end_timestamp`. A batch without keys
/// gives no file.
pub fn split_batch(
    meta: &ExportMeta,
    mut keys: Vec<ExposureKey>,
    mut revised_keys: Vec<ExposureKey>,
    max_keys_per_file: usize,
) -> Vec<TemporaryExposureKeyExport> {
    let max = max_keys_per_file.max(1);
    keys.sort_unstable_by(ExposureKey::write_order);
    revised_keys.sort_unstable_by(ExposureKey::write_order);
    let total = keys.len() + revised_keys.len();
    let files = total.div_ceil(max);

    let mut out = Vec::with_capacity(files);
    let mut keys = keys.into_iter();
    let mut revised = revised_keys.into_iter();
    for i in 1..=files {
        let file_keys: Vec<_> = keys.by_ref().take(max).collect();
        let file_revised: Vec<_> = revised.by_ref().take(max - file_keys.len()).collect();
        let mut export = meta.export(file_keys, file_revised);
        if files > 1 {
            export.end_timestamp = meta.end_timestamp.saturating_add(i as u64);
        }
        out.push(export);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Tek;
    use crate::time::EnIntervalNumber;

    fn keys(n: u32, salt: u8) -> Vec<ExposureKey> {
        (0..n)
            .map(|i| {
                let mut b = [salt; 16];
                b[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                ExposureKey::new(Tek::from_bytes(b), EnIntervalNumber::new(2_650_000))
            })
            .collect()
    }

    #[test]
    fn split_fills_files_in_order_and_bumps_end() {
        let meta = ExportMeta {
            start_timestamp: 100,
            end_timestamp: 200,
            region: "440".into(),
        };
        let files = split_batch(&meta, keys(25, 1), keys(7, 2), 10);
        let sizes: Vec<_> = files
            .iter()
            .map(|f| (f.keys.len(), f.revised_keys.len()))
            .collect();
        assert_eq!(sizes, [(10, 0), (10, 0), (5, 5), (0, 2)]);
        let ends: Vec<_> = files.iter().map(|f| f.end_timestamp).collect();
        assert_eq!(ends, [201, 202, 203, 204]);
        assert!(files.iter().all(|f| (f.batch_num, f.batch_size) == (1, 1)));
        // Contiguous runs of one sorted order.
        let all: Vec<_> = files.iter().flat_map(|f| f.keys.iter()).collect();
        assert!(all.is_sorted_by(|a, b| a.write_order(b).is_le()));

        let one = split_batch(&meta, keys(10, 1), Vec::new(), 10);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].end_timestamp, 200);
        assert!(split_batch(&meta, Vec::new(), Vec::new(), 10).is_empty());
        assert_eq!(split_batch(&meta, keys(3, 1), Vec::new(), 0).len(), 3);
    }
}
