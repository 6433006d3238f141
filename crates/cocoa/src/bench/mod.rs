//! `cocoa bench ...`: benchmarks of the hot paths, each printing one JSON object.

use clap::{Args, Subcommand};

mod check;
mod download;
mod export;
mod exporter;
mod issuer_local;
mod matcher;
mod publish;
mod verify;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Stream random diagnosis keys through the matcher against a random sighting log.
    Match(MatchArgs),
    /// Build, sign and zip one export of N random keys.
    Export(ExportArgs),
    /// One phone's exposure check of a day of exports at Japan's peak.
    Check(check::CheckArgs),
    /// Time verify+certificate pairs against a running issuer.
    Verify(verify::VerifyArgs),
    /// Time verified publishes against a running key server.
    Publish(publish::PublishArgs),
    /// Fill a fresh key server database with N keys and time one export cycle.
    Exporter(exporter::ExporterArgs),
    /// Time downloads of export files (index.txt and zips) from a server.
    Download(download::DownloadArgs),
    /// Time the staff portal's case list of a centre with N cases (issue 13).
    CaseList(issuer_local::CaseListArgs),
    /// Time the issuer's send queue over N queued messages (issue 13).
    SendQueue(issuer_local::SendQueueArgs),
}

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// Number of diagnosis keys to stream.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Number of sightings in the log (spread over 14 days).
    #[arg(long, default_value_t = 100_000)]
    pub sightings: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Number of keys in the export.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The benches' HTTP client: `pool` keep-alive connections per server, and
/// the certificate(s) of `--ca-cert` trusted besides the usual roots (a
/// server started with a self-signed `--tls-cert`).
fn http_client(
    pool: usize,
    ca_cert: Option<&std::path::Path>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    use anyhow::Context as _;
    let mut b = reqwest::Client::builder().pool_max_idle_per_host(pool.max(1));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).map_err(|e| {
            crate::commands::bad_input(format!(
                "--ca-cert {} を読めません: {e} / cannot read --ca-cert {}: {e}",
                path.display(),
                path.display()
            ))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("--ca-cert {}", path.display()))?;
        if certs.is_empty() {
            return Err(crate::commands::bad_input(format!(
                "--ca-cert {} に証明書がありません / no certificate in --ca-cert {}",
                path.display(),
                path.display()
            )));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Match(a) => matcher::run(a),
        BenchCommand::Export(a) => export::run(a),
        BenchCommand::Check(a) => check::run(a),
        BenchCommand::Verify(a) => verify::run(a),
        BenchCommand::Publish(a) => publish::run(a),
        BenchCommand::Exporter(a) => exporter::run(a),
        BenchCommand::Download(a) => download::run(a),
        BenchCommand::CaseList(a) => issuer_local::case_list(a),
        BenchCommand::SendQueue(a) => issuer_local::send_queue(a),
    }
}
