//! The messages of the export file, as plain Rust values.

use std::cmp::Ordering;
use std::fmt;

use crate::keys::Tek;
use crate::time::{EnIntervalNumber, TEK_ROLLING_PERIOD};

/// The 16 bytes `export.bin` starts with: `"EK Export v1"` and four spaces.
pub const EXPORT_BIN_HEADER: &[u8; 16] = b"EK Export v1    ";

/// `signature_algorithm` of ECDSA P-256 with SHA-256 (ecdsa-with-SHA256),
/// the only algorithm of the format.
pub const ECDSA_P256_SHA256_OID: &str = "1.2.840.10045.4.3.2";

/// How the key's owner was diagnosed (`TemporaryExposureKey.report_type`).
///
/// An open enum: values this code does not know are kept as they are, so a
/// file from a newer server still decodes and re-encodes unchanged.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportType(pub i32);

impl ReportType {
    /// 0: not set by the server.
    pub const UNKNOWN: Self = Self(0);
    /// 1: a laboratory test confirmed the diagnosis.
    pub const CONFIRMED_TEST: Self = Self(1);
    /// 2: a clinician diagnosed without a test.
    pub const CONFIRMED_CLINICAL_DIAGNOSIS: Self = Self(2);
    /// 3: the user reported symptoms themselves.
    pub const SELF_REPORT: Self = Self(3);
    /// 4: reserved by the spec; servers must not send it.
    pub const RECURSIVE: Self = Self(4);
    /// 5: a key previously published and now withdrawn.
    pub const REVOKED: Self = Self(5);

    /// The protobuf enum name, or `None` for a value this code does not know.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("UNKNOWN"),
            1 => Some("CONFIRMED_TEST"),
            2 => Some("CONFIRMED_CLINICAL_DIAGNOSIS"),
            3 => Some("SELF_REPORT"),
            4 => Some("RECURSIVE"),
            5 => Some("REVOKED"),
            _ => None,
        }
    }
}

impl fmt::Debug for ReportType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "ReportType::{name}"),
            None => write!(f, "ReportType({})", self.0),
        }
    }
}

/// One diagnosis key (`TemporaryExposureKey`).
///
/// Optional fields are `None` when absent on the wire; `rolling_period` is
/// 144 when absent (the proto2 default), and the encoder leaves it out when
/// it is 144. An absent `rolling_start_interval_number` decodes as 0 (the
/// proto2 default); the encoder always writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureKey {
    /// The TEK.
    pub key_data: Tek,
    /// Deprecated risk level, 0..=8.
    pub transmission_risk_level: Option<i32>,
    /// First interval the key was valid for.
    pub rolling_start_interval_number: EnIntervalNumber,
    /// Number of intervals it was valid for, 1..=144.
    pub rolling_period: u32,
    /// How the owner was diagnosed.
    pub report_type: Option<ReportType>,
    /// Days from symptom onset to this key's day, normally -14..=14.
    pub days_since_onset_of_symptoms: Option<i32>,
    /// Server extension (field 8); kept when present, otherwise `None`.
    pub variant_of_concern: Option<i32>,
}

impl ExposureKey {
    /// A key valid for a whole day from `rolling_start_interval_number`,
    /// with every optional field absent.
    pub const fn new(key_data: Tek, rolling_start_interval_number: EnIntervalNumber) -> Self {
        Self {
            key_data,
            transmission_risk_level: None,
            rolling_start_interval_number,
            rolling_period: TEK_ROLLING_PERIOD,
            report_type: None,
            days_since_onset_of_symptoms: None,
            variant_of_concern: None,
        }
    }

    /// Why this key cannot be written, if it cannot: the encoder refuses what
    /// the decoder would refuse.
    pub fn problem(&self) -> Option<&'static str> {
        if !(1..=TEK_ROLLING_PERIOD).contains(&self.rolling_period) {
            return Some("rolling_period must be in 1..=144");
        }
        if self.rolling_start_interval_number.get() > i32::MAX as u32 {
            return Some("rolling_start_interval_number does not fit an int32");
        }
        None
    }

    /// The order keys are written in: by key bytes (so that the order reveals
    /// nothing about who uploaded what), then by the other fields so that the
    /// same set of keys always gives the same bytes.
    pub(crate) fn write_order(&self, other: &Self) -> Ordering {
        u128::from_be_bytes(*self.key_data.as_bytes())
            .cmp(&u128::from_be_bytes(*other.key_data.as_bytes()))
            .then_with(|| {
                self.rolling_start_interval_number
                    .cmp(&other.rolling_start_interval_number)
            })
            .then_with(|| self.rolling_period.cmp(&other.rolling_period))
            .then_with(|| {
                self.transmission_risk_level
                    .cmp(&other.transmission_risk_level)
            })
            .then_with(|| self.report_type.cmp(&other.report_type))
            .then_with(|| {
                self.days_since_onset_of_symptoms
                    .cmp(&other.days_since_onset_of_symptoms)
            })
            .then_with(|| self.variant_of_concern.cmp(&other.variant_of_concern))
    }
}

/// A diagnosis key as read off the wire, by value: what a phone streams
/// through the matcher without building an [`ExposureKey`] per key.
///
/// The same fields as [`ExposureKey`] with the key bytes held plainly: the
/// key of a published diagnosis key is no longer a secret, so this type is
/// `Copy` and is not wiped (unlike [`Tek`]). `Debug` still leaves the key
/// bytes out, as [`ExposureKey`]'s does. Read with
/// [`export_key_records`](super::export_key_records); convert with
/// [`ExposureKey::from`] when a key matched.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key bytes (`key_data`).
    pub key_data: [u8; 16],
    /// Deprecated risk level, 0..=8.
    pub transmission_risk_level: Option<i32>,
    /// First interval the key was valid for.
    pub rolling_start_interval_number: EnIntervalNumber,
    /// Number of intervals it was valid for, 1..=144.
    pub rolling_period: u32,
    /// How the owner was diagnosed.
    pub report_type: Option<ReportType>,
    /// Days from symptom onset to this key's day, normally -14..=14.
    pub days_since_onset_of_symptoms: Option<i32>,
    /// Server extension (field 8).
    pub variant_of_concern: Option<i32>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_data", &"<redacted>")
            .field("transmission_risk_level", &self.transmission_risk_level)
            .field(
                "rolling_start_interval_number",
                &self.rolling_start_interval_number,
            )
            .field("rolling_period", &self.rolling_period)
            .field("report_type", &self.report_type)
            .field(
                "days_since_onset_of_symptoms",
                &self.days_since_onset_of_symptoms,
            )
            .field("variant_of_concern", &self.variant_of_concern)
            .finish()
    }
}

impl From<KeyRecord> for ExposureKey {
    fn from(r: KeyRecord) -> Self {
        Self {
            key_data: Tek::from_bytes(r.key_data),
            transmission_risk_level: r.transmission_risk_level,
            rolling_start_interval_number: r.rolling_start_interval_number,
            rolling_period: r.rolling_period,
            report_type: r.report_type,
            days_since_onset_of_symptoms: r.days_since_onset_of_symptoms,
            variant_of_concern: r.variant_of_concern,
        }
    }
}

impl From<&ExposureKey> for KeyRecord {
    fn from(k: &ExposureKey) -> Self {
        Self {
            key_data: *k.key_data.as_bytes(),
            transmission_risk_level: k.transmission_risk_level,
            rolling_start_interval_number: k.rolling_start_interval_number,
            rolling_period: k.rolling_period,
            report_type: k.report_type,
            days_since_onset_of_symptoms: k.days_since_onset_of_symptoms,
            variant_of_concern: k.variant_of_concern,
        }
    }
}

/// Which key signed a file (`SignatureInfo`). The phone picks the public key
/// by `verification_key_id` and `verification_key_version`.
///
/// Absent fields decode as empty strings (the proto2 default) and empty
/// strings are not written. The legacy fields 1 (`app_bundle_id`) and 2
/// (`android_package`) are skipped when reading and never written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SignatureInfo {
    /// Key version, e.g. `"v1"`.
    pub verification_key_version: String,
    /// Key id; Apple and Google expect the region's MCC, e.g. `"440"`.
    pub verification_key_id: String,
    /// [`ECDSA_P256_SHA256_OID`] in every file we write.
    pub signature_algorithm: String,
}

impl SignatureInfo {
    /// The signature info of an ECDSA P-256 / SHA-256 key.
    pub fn new(key_id: impl Into<String>, key_version: impl Into<String>) -> Self {
        Self {
            verification_key_version: key_version.into(),
            verification_key_id: key_id.into(),
            signature_algorithm: ECDSA_P256_SHA256_OID.to_owned(),
        }
    }
}

/// The content of `export.bin` after its header.
///
/// Absent scalar fields decode as their proto2 defaults (0, empty string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemporaryExposureKeyExport {
    /// First second covered, UTC.
    pub start_timestamp: u64,
    /// End of the window covered, UTC seconds.
    pub end_timestamp: u64,
    /// Region, e.g. `"440"` (Japan's MCC).
    pub region: String,
    /// Always 1 in files we write.
    pub batch_num: i32,
    /// Always 1 in files we write.
    pub batch_size: i32,
    /// One entry per signature in `export.sig`.
    pub signature_infos: Vec<SignatureInfo>,
    /// The diagnosis keys.
    pub keys: Vec<ExposureKey>,
    /// Keys published before whose report type changed.
    pub revised_keys: Vec<ExposureKey>,
}

impl TemporaryExposureKeyExport {
    /// Sorts `keys` and `revised_keys` into the order the encoder writes them.
    pub fn sort_keys(&mut self) {
        self.keys.sort_unstable_by(ExposureKey::write_order);
        self.revised_keys.sort_unstable_by(ExposureKey::write_order);
    }
}

/// One signature of `export.bin` (`TEKSignature`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TekSignature {
    /// The key that made it.
    pub signature_info: SignatureInfo,
    /// Same as in `export.bin`.
    pub batch_num: i32,
    /// Same as in `export.bin`.
    pub batch_size: i32,
    /// ECDSA P-256 signature of SHA-256(export.bin), ASN.1 DER.
    pub signature: Vec<u8>,
}

/// The content of `export.sig` (`TEKSignatureList`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TekSignatureList {
    /// One per signing key.
    pub signatures: Vec<TekSignature>,
}
