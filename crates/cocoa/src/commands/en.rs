//! `cocoa en ...`: the command-line face of the `en-protocol` crate.

use std::path::PathBuf;

use clap::{Args, Subcommand};

mod export_file;
mod rpis;
mod score;

#[derive(Debug, Subcommand)]
pub enum EnCommand {
    /// Derive RPIK, AEMK and the RPIs (and AEMs) of a TEK.
    Rpis(RpisArgs),
    /// Decode an export file (zip or bare export.bin) and verify its signature.
    Inspect(InspectArgs),
    /// Build and sign an export zip from a JSON list of keys.
    Export(ExportArgs),
    /// Generate a P-256 signing key pair (PKCS#8 private key, SPKI public key).
    Keygen(KeygenArgs),
    /// COCOA's decision for one day: risk_calculation_configuration.json on a DailySummary
    /// and the day's ExposureWindows; prints {"risk_level": "High"|"Low", ...the five values}.
    Score(ScoreArgs),
    /// The platform's part: ExposureWindows -> DailySummaries under COCOA's configuration.json.
    DailySummaries(DailySummariesArgs),
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// risk_calculation_configuration.json (format_version 1).
    #[arg(long)]
    pub config: PathBuf,
    /// One Android DailySummary: {"daysSinceEpoch", "DaySummary": {"ScoreSum", ...}}.
    #[arg(long)]
    pub daily_summary: PathBuf,
    /// JSON array of Android ExposureWindows; those of the summary's day are used.
    #[arg(long)]
    pub exposure_windows: PathBuf,
}

#[derive(Debug, Args)]
pub struct DailySummariesArgs {
    /// COCOA's configuration.json (its google_daily_summaries_config).
    #[arg(long)]
    pub config: PathBuf,
    /// JSON array of Android ExposureWindows.
    #[arg(long)]
    pub exposure_windows: PathBuf,
    /// The day of the check, days since the epoch (for days_since_exposure_threshold);
    /// default: the latest window's day.
    #[arg(long)]
    pub today: Option<i64>,
}

#[derive(Debug, Args)]
pub struct RpisArgs {
    /// The TEK, 32 hex digits.
    #[arg(long)]
    pub tek: String,
    /// The first ENIntervalNumber.
    #[arg(long)]
    pub interval: u32,
    /// How many consecutive RPIs.
    #[arg(long, default_value_t = 144)]
    pub count: u32,
    /// BLE metadata, 8 hex digits: also print the AEMs.
    #[arg(long)]
    pub metadata: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A zip with export.bin and export.sig, or a bare export.bin.
    pub file: PathBuf,
    /// PEM public key (SPKI) to verify the signature with.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// JSON array of keys: [{"key_data": hex, "rolling_start_interval_number": n, ...}].
    #[arg(long)]
    pub keys: PathBuf,
    /// Region, e.g. "440" for Japan.
    #[arg(long)]
    pub region: String,
    /// PKCS#8 PEM private key to sign with.
    #[arg(long)]
    pub signing_key: PathBuf,
    /// verification_key_id written in the signature info.
    #[arg(long)]
    pub key_id: String,
    /// verification_key_version written in the signature info.
    #[arg(long)]
    pub key_version: String,
    /// start_timestamp, Unix seconds.
    #[arg(long)]
    pub start: u64,
    /// end_timestamp, Unix seconds.
    #[arg(long)]
    pub end: u64,
    /// Where to write the zip.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the PKCS#8 PEM private key.
    #[arg(long)]
    pub out: PathBuf,
    /// Where to write the SPKI PEM public key.
    #[arg(long)]
    pub public_out: PathBuf,
}

pub fn run(cmd: EnCommand) -> anyhow::Result<()> {
    match cmd {
        EnCommand::Rpis(a) => rpis::run(a),
        EnCommand::Inspect(a) => export_file::inspect(a),
        EnCommand::Export(a) => export_file::export(a),
        EnCommand::Keygen(a) => export_file::keygen(a),
        EnCommand::Score(a) => score::score(a),
        EnCommand::DailySummaries(a) => score::daily_summaries(a),
    }
}
