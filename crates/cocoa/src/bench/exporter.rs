//! `cocoa bench exporter`: fills a fresh key server database with N published
//! keys of one hour, then times one export cycle of the real exporter:
//! reading the batch's keys from the database, building, signing and
//! storing the files in a local folder. The target (issue 4): "The exporter
//! builds, signs and stores 1,000,000 keys in under 2 seconds."

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use en_protocol::export::{SignatureInfo, SoftwareSigner};
use en_protocol::time::{Clock, FixedClock, SystemClock};
use keyserver::config::ExportConfig;
use keyserver::export::{CycleOptions, ExportSettings, Exporter};
use keyserver::storage::ExportStorage;
use keyserver::store::Store;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::commands::{bad_input, print_json};

#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// Keys to publish and export.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// An empty database to fill (`sqlite://…` or `postgres://…`); default: a
    /// SQLite file in a temporary folder.
    #[arg(long)]
    pub database: Option<String>,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Serialize)]
struct Output {
    keys: u64,
    seconds: f64,
    keys_per_sec: f64,
    files: usize,
    bytes: u64,
    backend: &'static str,
    fill_seconds: f64,
}

pub fn run(a: ExporterArgs) -> anyhow::Result<()> {
    if a.keys == 0 {
        return Err(bad_input("--keys must be at least 1"));
    }
    let n = usize::try_from(a.keys).map_err(bad_input)?;
    let dir = tempfile::tempdir()?;
    let url = a
        .database
        .clone()
        .unwrap_or_else(|| Store::sqlite_url(&dir.path().join("keyserver.sqlite3")));
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let store = Store::connect(&url, 2).await?;
        if store.key_count().await? != 0 {
            return Err(bad_input("--database must be an empty key server database"));
        }
        let backend = match store.backend() {
            keyserver::store::Backend::Sqlite => "sqlite",
            keyserver::store::Backend::Postgres => "postgres",
        };
        let clock = Arc::new(FixedClock::new(SystemClock.now()));
        let now = clock.now().timestamp();
        let mut rng = ChaCha20Rng::seed_from_u64(a.seed);

        // Keys of the last 14 days, uploaded this hour, as publishes store them.
        let started = Instant::now();
        let keys = keyserver::testkit::stored_keys(&mut rng, n, now);
        store.bulk_insert_keys("440", &keys).await?;
        drop(keys);
        let fill_seconds = started.elapsed().as_secs_f64();

        let exports = dir.path().join("exports");
        let storage = ExportStorage::local(&exports)?;
        let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
        let exporter = Exporter::new(
            store.clone(),
            storage.clone(),
            vec![signer],
            ExportSettings::from(&ExportConfig::default()),
            clock.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(a.seed ^ 1)),
        );
        // The window of this hour closes at its end and is exported 2 h later.
        clock.advance(chrono::Duration::hours(3));
        let started = Instant::now();
        let report = exporter.run_cycle(CycleOptions { min_age: 7200 }).await?;
        let seconds = started.elapsed().as_secs_f64();

        let mut bytes = 0;
        for path in &report.files {
            if let Some(object) = storage.get(path).await? {
                bytes += object.bytes.len() as u64;
            }
        }
        store.close().await;
        print_json(&Output {
            keys: a.keys,
            seconds,
            keys_per_sec: n as f64 / seconds,
            files: report.files.len(),
            bytes,
            backend,
            fill_seconds,
        })
    })
}
