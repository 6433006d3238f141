//! The servers a simulated population registers with and downloads from.
//!
//! [`Backend`] is what a phone (and a health centre) sees of the system:
//! issue a processing number, register with it (verify → certificate →
//! publish), and the export files that appear over time. Two
//! implementations are planned:
//!
//! - [`InProcess`] (here): the issuer's number rules and the key server's
//!   validation, embargo, batching, padding, signing and zipping, called as
//!   the functions of the `issuer` and `keyserver` crates, with simulated
//!   time. Real export files; no sockets, no databases. For any N.
//! - [`Http`]: the same trait over the issuer's machine and device APIs and
//!   the key server's `/v1/publish` and `/exports`, against the real servers
//!   (every role, SQLite) started in process on a loopback port with a clock
//!   the simulation moves. For small N. The canary ([`crate::canary`])
//!   drives the same loop against a live deployment with two synthetic
//!   phones.

mod http;
mod in_process;

use api_types::publish::PublishKey;
use en_protocol::export::VerificationKey;
use serde::Serialize;

use crate::time::SimTime;

pub use http::Http;
pub use in_process::InProcess;

/// A processing number as the patient receives it (SMS or e-mail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedNumber {
    /// The 8 digits.
    pub number: String,
    /// When it stops being valid.
    pub expires_at: SimTime,
}

/// A registration that went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    /// Keys stored by the key server.
    pub inserted: usize,
    /// Keys it dropped (each with a warning).
    pub dropped: usize,
    /// Keys still valid at upload, held back until their period ends.
    pub embargoed: usize,
}

/// A registration that failed, with the stable code the server answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// `/api/verify` or `/api/certificate` refused (`code_invalid`,
    /// `code_expired`, ...).
    #[error("issuer refused: {0}")]
    Issuer(String),
    /// `/v1/publish` refused (`key_too_old`, `no_keys`, ...).
    #[error("key server refused: {0}")]
    Keyserver(String),
}

impl RegisterError {
    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            Self::Issuer(c) | Self::Keyserver(c) => c,
        }
    }
}

/// A server failed in a way a retry would not fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backend failure: {0}")]
pub struct BackendError(pub String);

/// One export file as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    /// Object path, as listed in `index.txt`.
    pub path: String,
    /// When it appeared in the index.
    pub published_at: SimTime,
    /// Batch window start, Unix seconds.
    pub batch_start: i64,
    /// Batch window end, Unix seconds.
    pub batch_end: i64,
    /// Keys in it, fakes included.
    pub keys: usize,
    /// Real keys in it.
    pub real_keys: usize,
    /// The signed zip.
    pub zip: Vec<u8>,
}

/// What the servers did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerWork {
    /// Processing numbers issued (reissues included).
    pub numbers_issued: u64,
    /// `/api/verify` requests.
    pub verify_requests: u64,
    /// Refused as unknown or already used.
    pub codes_invalid: u64,
    /// Refused as expired.
    pub codes_expired: u64,
    /// Certificates signed.
    pub certificates: u64,
    /// `/v1/publish` requests.
    pub publish_requests: u64,
    /// Publishes refused as a whole.
    pub publish_rejected: u64,
    /// Keys received.
    pub keys_received: u64,
    /// Keys stored.
    pub keys_accepted: u64,
    /// Keys dropped by validation.
    pub keys_dropped: u64,
    /// Keys held back until their period ended.
    pub keys_embargoed: u64,
    /// Batch windows cut.
    pub batches_cut: u64,
    /// Windows without any real key (no file).
    pub batches_empty: u64,
    /// Export files built and signed.
    pub files_built: u64,
    /// Real keys exported.
    pub real_keys_exported: u64,
    /// Fake keys padding small batches.
    pub fake_keys_exported: u64,
    /// Bytes of export files written.
    pub export_bytes: u64,
    /// ECDSA signatures made.
    pub signatures: u64,
}

/// The system as phones and health centres see it.
pub trait Backend {
    /// Which implementation.
    fn name(&self) -> &'static str;

    /// The health centre presses 処理番号発行 for a confirmed case whose
    /// patient wants to register; the number goes out by SMS.
    fn issue_number(&mut self, at: SimTime) -> Result<IssuedNumber, BackendError>;

    /// The phone registers with the (normalised) number and the keys of its
    /// window: verify, certificate, publish.
    fn register(
        &mut self,
        number: &str,
        keys: &[PublishKey],
        at: SimTime,
    ) -> Result<Registered, RegisterError>;

    /// Runs the exporter as it would have run by `at`; returns how many new
    /// files appeared.
    fn export_cycle(&mut self, at: SimTime) -> Result<usize, BackendError>;

    /// Every file published so far, in order of publication.
    fn files(&self) -> &[PublishedFile];

    /// The public keys phones verify files with.
    fn verification_keys(&self) -> Vec<VerificationKey>;

    /// The region of the files phones download.
    fn region(&self) -> &str;

    /// What the servers did.
    fn work(&self) -> ServerWork;
}
