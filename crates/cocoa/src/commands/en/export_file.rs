//! `cocoa en inspect | export | keygen`: the key export file from the shell.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use en_protocol::export::{
    ExportMeta, ExposureKey, ReadLimits, ReportType, SignatureInfo, SoftwareSigner,
    TekSignatureList, TemporaryExposureKeyExport, VerificationKey, build_export, read_zip, verify,
};
use en_protocol::{EnIntervalNumber, Tek};
use serde::{Deserialize, Serialize};

use super::{ExportArgs, InspectArgs, KeygenArgs};
use crate::commands::{bad_input, print_json};

// ---------------------------------------------------------------------------
// inspect

#[derive(Debug, Serialize)]
struct InspectOutput<'a> {
    /// Always true when printed: a file with a wrong header is refused.
    header_ok: bool,
    start_timestamp: u64,
    end_timestamp: u64,
    region: &'a str,
    batch_num: i32,
    batch_size: i32,
    signature_infos: Vec<InfoOutput<'a>>,
    keys: Vec<KeyOutput>,
    revised_keys: Vec<KeyOutput>,
    signature_verified: Option<bool>,
}

#[derive(Debug, Serialize)]
struct InfoOutput<'a> {
    verification_key_version: &'a str,
    verification_key_id: &'a str,
    signature_algorithm: &'a str,
}

#[derive(Debug, Serialize)]
struct KeyOutput {
    key_data: String,
    transmission_risk_level: Option<i32>,
    rolling_start_interval_number: u32,
    rolling_period: u32,
    report_type: Option<i32>,
    days_since_onset_of_symptoms: Option<i32>,
}

impl From<&ExposureKey> for KeyOutput {
    fn from(k: &ExposureKey) -> Self {
        Self {
            key_data: hex::encode(k.key_data.as_bytes()),
            transmission_risk_level: k.transmission_risk_level,
            rolling_start_interval_number: k.rolling_start_interval_number.get(),
            rolling_period: k.rolling_period,
            report_type: k.report_type.map(|r| r.0),
            days_since_onset_of_symptoms: k.days_since_onset_of_symptoms,
        }
    }
}

pub fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    let public_key = a
        .public_key
        .as_deref()
        .map(|path| {
            let pem = read_text(path)?;
            VerificationKey::from_public_key_pem(&pem)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))
        })
        .transpose()?;

    let bytes = read_limited(&a.file, ReadLimits::default().max_zip)?;
    let malformed =
        |e: en_protocol::export::DecodeError| bad_input(format!("{}: {e}", a.file.display()));
    // A zip starts with a local file header (or, when empty, the end record).
    let (bin, sig) = if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        let archive = read_zip(&bytes).map_err(malformed)?;
        (archive.export_bin, Some(archive.export_sig))
    } else {
        (bytes, None)
    };
    let export = TemporaryExposureKeyExport::decode(&bin).map_err(malformed)?;
    let signatures = match &sig {
        Some(sig) => TekSignatureList::decode(sig).map_err(malformed)?,
        None => TekSignatureList::default(),
    };
    let signature_verified = match public_key {
        Some(key) if !signatures.signatures.is_empty() => {
            Some(verify(&bin, &signatures, &[key]).is_some())
        }
        _ => None,
    };

    print_json(&InspectOutput {
        header_ok: true,
        start_timestamp: export.start_timestamp,
        end_timestamp: export.end_timestamp,
        region: &export.region,
        batch_num: export.batch_num,
        batch_size: export.batch_size,
        signature_infos: export
            .signature_infos
            .iter()
            .map(|i| InfoOutput {
                verification_key_version: &i.verification_key_version,
                verification_key_id: &i.verification_key_id,
                signature_algorithm: &i.signature_algorithm,
            })
            .collect(),
        keys: export.keys.iter().map(KeyOutput::from).collect(),
        revised_keys: export.revised_keys.iter().map(KeyOutput::from).collect(),
        signature_verified,
    })
}

/// Reads a file, refusing (as malformed input) one over `limit` bytes
/// before reading it.
fn read_limited(path: &Path, limit: usize) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > limit as u64 {
        return Err(bad_input(format!(
            "{}: {len} bytes, over the limit of {limit}",
            path.display()
        )));
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads a small text file (a PEM key).
fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = read_limited(path, 1 << 20)?;
    String::from_utf8(bytes).map_err(|_| bad_input(format!("{}: not UTF-8 text", path.display())))
}

// ---------------------------------------------------------------------------
// export

/// One entry of the `--keys` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyInput {
    key_data: String,
    rolling_start_interval_number: u32,
    rolling_period: Option<u32>,
    transmission_risk_level: Option<i32>,
    report_type: Option<i32>,
    days_since_onset_of_symptoms: Option<i32>,
}

impl KeyInput {
    fn into_key(self, index: usize) -> anyhow::Result<ExposureKey> {
        let bad = |what: &str| bad_input(format!("keys[{index}].{what}"));
        let bytes = match hex::decode(&self.key_data) {
            Ok(b) if self.key_data.len() == 32 => b,
            _ => return Err(bad("key_data: must be 32 hex digits")),
        };
        let key_data = Tek::try_from_slice(&bytes).map_err(|e| bad(&format!("key_data: {e}")))?;
        let mut key = ExposureKey::new(
            key_data,
            EnIntervalNumber::new(self.rolling_start_interval_number),
        );
        if let Some(p) = self.rolling_period {
            if !(1..=144).contains(&p) {
                return Err(bad(&format!("rolling_period: {p} is outside 1..=144")));
            }
            key.rolling_period = p;
        }
        key.transmission_risk_level = self.transmission_risk_level;
        key.report_type = self.report_type.map(ReportType);
        key.days_since_onset_of_symptoms = self.days_since_onset_of_symptoms;
        if let Some(problem) = key.problem() {
            return Err(bad(problem));
        }
        Ok(key)
    }
}

#[derive(Debug, Serialize)]
struct ExportOutput<'a> {
    out: &'a Path,
    keys: usize,
    bytes: usize,
}

pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    if a.start > a.end {
        return Err(bad_input(format!(
            "--start {} is after --end {}",
            a.start, a.end
        )));
    }
    let json = read_text(&a.keys)?;
    let inputs: Vec<KeyInput> =
        serde_json::from_str(&json).map_err(|e| bad_input(format!("{}: {e}", a.keys.display())))?;
    let keys = inputs
        .into_iter()
        .enumerate()
        .map(|(i, k)| k.into_key(i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key_count = keys.len();

    let pem = read_text(&a.signing_key)?;
    let signer = SoftwareSigner::from_pkcs8_pem(&pem, SignatureInfo::new(a.key_id, a.key_version))
        .map_err(|e| bad_input(format!("{}: {e}", a.signing_key.display())))?;
    let meta = ExportMeta {
        start_timestamp: a.start,
        end_timestamp: a.end,
        region: a.region,
    };
    let zip = build_export(&meta, keys, &[&signer]).map_err(|e| match e {
        en_protocol::export::BuildError::TooLarge { .. } => bad_input(e),
        other => anyhow::Error::new(other),
    })?;
    write_atomically(&a.out, &zip, false, 0o644)?;
    print_json(&ExportOutput {
        out: &a.out,
        keys: key_count,
        bytes: zip.len(),
    })
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, and renames
/// it over `path` (or, with `no_clobber`, links it there only if nothing is
/// there yet), so `path` never holds a partial file.
fn write_atomically(path: &Path, bytes: &[u8], no_clobber: bool, mode: u32) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    set_mode(tmp.as_file(), mode)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    let persisted = if no_clobber {
        tmp.persist_noclobber(path)
    } else {
        tmp.persist(path)
    };
    match persisted {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Err(bad_input(format!(
            "{} already exists; refusing to overwrite it",
            path.display()
        ))),
        Err(e) => Err(anyhow::Error::new(e.error).context(format!("writing {}", path.display()))),
    }
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .context("setting file permissions")
}

#[cfg(not(unix))]
fn set_mode(_file: &std::fs::File, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

// ---------------------------------------------------------------------------
// keygen

#[derive(Debug, Serialize)]
struct KeygenOutput<'a> {
    private_key: &'a Path,
    public_key: &'a Path,
}

pub fn keygen(a: KeygenArgs) -> anyhow::Result<()> {
    if a.out == a.public_out {
        return Err(bad_input("--out and --public-out must be different files"));
    }
    for path in [&a.out, &a.public_out] {
        if path.exists() {
            return Err(bad_input(format!(
                "{} already exists; refusing to overwrite it",
                path.display()
            )));
        }
    }
    // The signature info is not stored in the key files.
    let signer = SoftwareSigner::generate(&mut rand::rngs::OsRng, SignatureInfo::default());
    let private_pem = signer.to_pkcs8_pem()?;
    let public_pem = signer.public_key_pem()?;

    write_atomically(&a.out, private_pem.as_bytes(), true, 0o600)?;
    if let Err(e) = write_atomically(&a.public_out, public_pem.as_bytes(), true, 0o644) {
        // Leave nothing half-done: a private key without its public key.
        remove_quietly(&a.out);
        return Err(e);
    }
    print_json(&KeygenOutput {
        private_key: &a.out,
        public_key: &a.public_out,
    })
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        eprintln!("warning: could not remove {}: {e}", path.display());
    }
}
