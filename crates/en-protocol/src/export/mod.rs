//! The key export file: the signed zip a key server publishes and every phone
//! downloads (PROTOCOLS.md §2, Apple/Google "Exposure Key Export File Format").
//!
//! A zip holds two entries. `export.bin` is the 16-byte header
//! [`EXPORT_BIN_HEADER`] followed by a protobuf `TemporaryExposureKeyExport`
//! ([`TemporaryExposureKeyExport`]); `export.sig` is a protobuf
//! `TEKSignatureList` ([`TekSignatureList`]) holding one ECDSA P-256 / SHA-256
//! signature (DER) of all of `export.bin` per signing key.
//!
//! # Reading (untrusted input)
//!
//! - [`read_zip`] takes the zip apart, refusing archives and entries over
//!   [`ReadLimits`] (declared and actual sizes, so a zip bomb is cut off).
//! - [`verify`] checks the signatures against the health authority's public
//!   keys; do this before trusting anything in the file.
//! - [`TemporaryExposureKeyExport::decode`] decodes the whole `export.bin`;
//!   [`read_header`] decodes everything but the keys; [`export_keys`] streams
//!   the keys one by one without allocating, and [`export_key_records`]
//!   streams them as plain [`KeyRecord`]s (no [`Tek`](crate::Tek) built and
//!   wiped per key), which is what a phone matching a file of 500,000 keys
//!   wants.
//!
//! Every decoder returns a [`DecodeError`] for malformed input and never
//! panics; no allocation is sized from a length read off the wire before that
//! length has been checked against the bytes actually present.
//!
//! # Writing
//!
//! [`build_export`] sorts the keys, encodes `export.bin`, signs it with every
//! [`ExportSigner`] (several during a key rotation) and zips the result.
//! [`split_batch`] first cuts a batch of more than [`MAX_KEYS_PER_FILE`] keys
//! into several files. [`SoftwareSigner`] signs with a PKCS#8 PEM key; a KMS
//! implements [`ExportSigner`] instead.
//!
//! # Why the protobuf codec is hand-written
//!
//! The format is five tiny messages, so a hand-written proto2 codec is a few
//! hundred lines that can be read in one sitting. It is bounds-checked on
//! untrusted input with errors that say what and where, and it offers what a
//! generated codec does not: a zero-allocation streaming iterator over the keys
//! of a file of up to 500,000 keys, and an encoder that writes a key in under
//! 30 bytes straight into a preallocated buffer.

mod archive;
mod build;
mod codec;
mod model;
mod signing;
mod wire;

pub use archive::{
    EXPORT_BIN_NAME, EXPORT_SIG_NAME, ExportArchive, ReadLimits, read_zip, read_zip_with_limits,
    write_zip,
};
pub use build::{ExportMeta, MAX_KEYS_PER_FILE, build_export, sign_export, split_batch};
pub use codec::{
    ExportHeader, KeyIter, KeyRecordIter, export_key_records, export_keys,
    export_revised_key_records, export_revised_keys, read_header,
};
pub use model::{
    ECDSA_P256_SHA256_OID, EXPORT_BIN_HEADER, ExposureKey, KeyRecord, ReportType, SignatureInfo,
    TekSignature, TekSignatureList, TemporaryExposureKeyExport,
};
pub use signing::{
    ExportSigner, KeyError, SignError, SignatureMatch, SoftwareSigner, VerificationKey, verify,
};

/// Largest `export.bin` accepted by the decoders by default: 64 MiB. A file
/// of 500,000 keys is about 15 MB; 64 MiB leaves room for 2,000,000 keys.
pub const MAX_EXPORT_BIN_LEN: usize = 64 << 20;

/// Largest `export.sig` accepted by default: 64 KiB. One signature entry is
/// about 120 bytes.
pub const MAX_EXPORT_SIG_LEN: usize = 64 << 10;

/// Malformed input: why an export file (zip, `export.bin` or `export.sig`)
/// was refused. Offsets count bytes from the start of the entry, header
/// included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than the limit for its kind.
    #[error("input is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// `export.bin` does not start with `"EK Export v1    "`.
    #[error("missing or wrong export.bin header (expected \"EK Export v1    \")")]
    BadHeader,
    /// The input ends inside a tag, varint or fixed-size field.
    #[error("truncated input at byte {offset}")]
    Truncated {
        /// Where the cut value starts.
        offset: usize,
    },
    /// A varint longer than 10 bytes or overflowing 64 bits.
    #[error("malformed varint at byte {offset}")]
    BadVarint {
        /// Where the varint starts.
        offset: usize,
    },
    /// A field tag with field number 0, a field number over 2^29 - 1, or wire
    /// type 6 or 7.
    #[error("invalid field tag at byte {offset}")]
    InvalidTag {
        /// Where the tag starts.
        offset: usize,
    },
    /// An end-group tag that closes no open group, or closes the wrong one.
    #[error("unmatched end-group tag at byte {offset}")]
    UnmatchedGroup {
        /// Where the tag starts.
        offset: usize,
    },
    /// Unknown groups nested too deeply to skip.
    #[error("groups nested too deeply at byte {offset}")]
    TooDeep {
        /// Where the innermost group starts.
        offset: usize,
    },
    /// A length-delimited field claims more bytes than remain.
    #[error("field at byte {offset} declares {len} bytes but only {remaining} remain")]
    LengthPastEnd {
        /// Where the length starts.
        offset: usize,
        /// The declared length.
        len: u64,
        /// The bytes left in the enclosing message.
        remaining: usize,
    },
    /// A known field with the wrong wire type.
    #[error("{field} has wire type {found}, expected {expected}")]
    WrongWireType {
        /// `Message.field`.
        field: &'static str,
        /// The wire type the schema requires.
        expected: u8,
        /// The wire type found.
        found: u8,
    },
    /// An int32 or sint32 field whose varint is not a 32-bit value.
    #[error("{field} is not a 32-bit value (varint {raw:#x})")]
    ValueOutOfRange {
        /// `Message.field`.
        field: &'static str,
        /// The raw varint.
        raw: u64,
    },
    /// A string field that is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// `Message.field`.
        field: &'static str,
    },
    /// `key_data` absent or not 16 bytes.
    #[error("key_data is {len} bytes, expected 16")]
    KeyDataLength {
        /// Its length (0 when absent).
        len: usize,
    },
    /// A negative `rolling_start_interval_number`.
    #[error("rolling_start_interval_number {value} is negative")]
    RollingStartOutOfRange {
        /// The value.
        value: i32,
    },
    /// A `rolling_period` outside 1..=144.
    #[error("rolling_period {value} is outside 1..=144")]
    RollingPeriodOutOfRange {
        /// The value.
        value: i32,
    },
    /// The zip archive could not be read (not a zip, corrupt, encrypted, an
    /// unsupported compression method, a CRC mismatch...).
    #[error("invalid zip archive: {0}")]
    Zip(String),
    /// The zip archive lacks `export.bin` or `export.sig`.
    #[error("zip archive has no {0} entry")]
    MissingEntry(&'static str),
    /// A zip entry over its limit, by its declared or its actual size.
    #[error("zip entry {name} is over the limit of {limit} bytes")]
    EntryTooLarge {
        /// The entry.
        name: &'static str,
        /// The limit.
        limit: u64,
    },
}

/// Why an export file could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A key that cannot be written as the format requires.
    #[error("{list}[{index}]: {problem}")]
    InvalidKey {
        /// `keys` or `revised_keys`.
        list: &'static str,
        /// Its position in the list as given.
        index: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// `start_timestamp` later than `end_timestamp`.
    #[error("start_timestamp {start} is after end_timestamp {end}")]
    StartAfterEnd {
        /// start_timestamp.
        start: u64,
        /// end_timestamp.
        end: u64,
    },
    /// `batch_num` and `batch_size` must both be 1 (Apple rejects others).
    #[error("batch_num/batch_size must be 1/1, got {batch_num}/{batch_size}")]
    NotOneOfOne {
        /// batch_num.
        batch_num: i32,
        /// batch_size.
        batch_size: i32,
    },
    /// `export.bin` would exceed [`MAX_EXPORT_BIN_LEN`], which readers refuse.
    #[error("export.bin would be {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// No signer: a file phones cannot verify is useless.
    #[error("at least one signer is required")]
    NoSigners,
    /// A signer whose signature info does not name ECDSA P-256 / SHA-256.
    #[error(
        "signer {key_id:?} declares signature algorithm {algorithm:?}, expected {ECDSA_P256_SHA256_OID}"
    )]
    UnsupportedAlgorithm {
        /// verification_key_id.
        key_id: String,
        /// signature_algorithm.
        algorithm: String,
    },
    /// The signer failed.
    #[error("signing with key {key_id:?} failed: {source}")]
    Signing {
        /// verification_key_id.
        key_id: String,
        /// The signer's error.
        source: SignError,
    },
    /// The signer returned something that is not a DER ECDSA P-256 signature
    /// (a KMS returning raw `r || s` is the usual culprit).
    #[error("signer {key_id:?} returned a signature that is not DER-encoded ECDSA P-256")]
    NotDer {
        /// verification_key_id.
        key_id: String,
    },
    /// The zip writer failed.
    #[error("writing the zip failed: {0}")]
    Zip(String),
}
