//! The exporter: cuts batch windows, pads small batches with fake keys,
//! builds and signs one zip per batch (several when a batch is over 500,000
//! keys), writes them to the object store with `index.txt` and
//! `{region}/list.json`, and deletes what is older than the retention.
//!
//! Every region is exported on its own ("Canary keys go to a canary region
//! only, so real phones never download them"): its own batches, files and
//! indexes, and optionally its own window length and minimum age. The main
//! region keeps the paths phones already read (`index.txt`,
//! `440/list.json`); another region's index is `{region}/index.txt`.
//!
//! Several exporters may run against one database: a batch is cut once (a
//! unique window start), built once (a lease per batch), padded once (a flag
//! set with the fakes), and recorded once (completion checks the lease).
//! Building is deterministic, so even a build repeated after a lost lease
//! writes the very same bytes.

mod build;
mod index;
mod windows;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use en_protocol::export::SoftwareSigner;
use en_protocol::time::Clock;
use rand::RngCore;
use tracing::{info, warn};

use crate::config::ExportConfig;
use crate::storage::ExportStorage;
use crate::store::{BatchRow, NewFile, Store};

pub use build::{BuiltFile, build_batch, fake_keys};
pub use index::{index_txt, list_json};
pub use windows::windows;

/// A region's own window length and minimum age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSettings {
    /// Region name.
    pub name: String,
    /// Window length, seconds (none: the main setting).
    pub batch_period: Option<i64>,
    /// Minimum age of a closed window, seconds (none: the cycle's).
    pub min_age: Option<i64>,
}

/// What the exporter needs besides the store.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// The main region (Japan's MCC, "440"): its index keeps the paths
    /// `index.txt` and `440/list.json`.
    pub region: String,
    /// Other regions to export even before they have keys, and the regions'
    /// own settings. Regions with keys are exported whether listed or not.
    pub regions: Vec<RegionSettings>,
    /// Window length, seconds (0: one window per cycle).
    pub batch_period: i64,
    /// Minimum age of a closed window, seconds.
    pub min_age: i64,
    /// Retention, seconds.
    pub retention: i64,
    /// Lease length, seconds.
    pub lease: i64,
    /// Pad small batches up to this many keys...
    pub pad_to: usize,
    /// ...plus a random number below this.
    pub pad_jitter: usize,
    /// Most keys per file.
    pub max_keys_per_file: usize,
    /// Base of list.json URLs.
    pub public_url: String,
}

impl From<&ExportConfig> for ExportSettings {
    fn from(c: &ExportConfig) -> Self {
        Self {
            region: c.region.clone(),
            regions: c
                .regions
                .iter()
                .map(|r| RegionSettings {
                    name: r.name.clone(),
                    batch_period: r.batch_period.map(|d| d.as_secs() as i64),
                    min_age: r.min_age.map(|d| d.as_secs() as i64),
                })
                .collect(),
            batch_period: c.batch_period.as_secs() as i64,
            min_age: c.min_age.as_secs() as i64,
            retention: c.retention.as_secs() as i64,
            lease: c.lease.as_secs().max(1) as i64,
            pad_to: c.pad_to,
            pad_jitter: c.pad_jitter,
            max_keys_per_file: c.max_keys_per_file,
            public_url: c.public_url.clone(),
        }
    }
}

/// Options of one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleOptions {
    /// Minimum age of a closed window, seconds, for regions without their
    /// own. 0 closes the current window of every region at once (the embargo
    /// of still-valid keys holds regardless).
    pub min_age: i64,
}

impl ExportSettings {
    /// The settings of one region.
    pub fn region_settings(&self, region: &str) -> Option<&RegionSettings> {
        self.regions.iter().find(|r| r.name == region)
    }

    /// A region's window length, seconds.
    pub fn batch_period_of(&self, region: &str) -> i64 {
        self.region_settings(region)
            .and_then(|r| r.batch_period)
            .unwrap_or(self.batch_period)
    }

    /// A region's minimum age in a cycle run with `cycle_min_age`: its own
    /// when it has one, except that 0 (`export-now --min-age 0s`) closes
    /// every region's window.
    pub fn min_age_of(&self, region: &str, cycle_min_age: i64) -> i64 {
        if cycle_min_age <= 0 {
            return 0;
        }
        self.region_settings(region)
            .and_then(|r| r.min_age)
            .unwrap_or(cycle_min_age)
    }

    /// Path of a region's `index.txt`: the main region's stays at the root.
    pub fn index_path(&self, region: &str) -> String {
        if region == self.region {
            crate::storage::INDEX_TXT.to_owned()
        } else {
            format!("{region}/{}", crate::storage::INDEX_TXT)
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    /// Windows cut into batches by this exporter.
    pub cut: Vec<i64>,
    /// Batches built by this exporter.
    pub built: Vec<i64>,
    /// Files written by this exporter.
    pub files: Vec<String>,
    /// Export files deleted by retention.
    pub deleted_files: Vec<String>,
    /// Keys deleted by retention.
    pub deleted_keys: u64,
    /// Whether the indexes were rewritten.
    pub indexes_written: bool,
    /// Keys (real and fake) in the files written by this exporter.
    pub keys: u64,
}

/// Registers the exporter's metrics (at 0) in the process's registry, so
/// a scrape before the first cycle shows them; done when the export loop
/// starts ([`Exporter::run`]), so a process that only serves does not show
/// them.
pub fn register_metrics() {
    telemetry::install();
    metrics::describe_counter!("keyserver_export_batches_total", "Export batches built.");
    metrics::describe_counter!("keyserver_export_files_total", "Export files written.");
    metrics::describe_counter!(
        "keyserver_export_failures_total",
        "Export cycles that failed."
    );
    metrics::describe_counter!(
        "keyserver_export_keys_total",
        "Keys (real and fake) in the export files written."
    );
    metrics::describe_gauge!(
        "keyserver_export_last_cycle_seconds",
        "Unix time of the end of the last successful export cycle (0: none yet)."
    );
    metrics::describe_gauge!(
        "keyserver_export_last_cycle_duration_seconds",
        "How long the last export cycle took."
    );
    for name in [
        "keyserver_export_batches_total",
        "keyserver_export_files_total",
        "keyserver_export_failures_total",
        "keyserver_export_keys_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for name in [
        "keyserver_export_last_cycle_seconds",
        "keyserver_export_last_cycle_duration_seconds",
    ] {
        metrics::gauge!(name).increment(0.0);
    }
}

/// The exporter.
pub struct Exporter {
    store: Store,
    storage: ExportStorage,
    signers: Arc<Vec<SoftwareSigner>>,
    settings: ExportSettings,
    clock: Arc<dyn Clock>,
    rng: Mutex<Box<dyn RngCore + Send>>,
    /// This exporter's name in batch and index leases.
    owner: String,
    /// One cycle at a time per exporter: a batch whose lease this exporter
    /// already holds is then one a failed earlier cycle left behind, and is
    /// taken up again at once rather than after the lease expires.
    cycle_turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("owner", &self.owner)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The object path of file `num` of a batch.
pub fn file_path(batch: &BatchRow, num: usize) -> String {
    format!(
        "{}/{}-{}-{:05}.zip",
        batch.region, batch.start_timestamp, batch.end_timestamp, num
    )
}

impl Exporter {
    /// An exporter. `rng` draws fake keys and their number; it must be
    /// cryptographically secure in production (fakes must look real).
    pub fn new(
        store: Store,
        storage: ExportStorage,
        signers: Vec<SoftwareSigner>,
        settings: ExportSettings,
        clock: Arc<dyn Clock>,
        rng: Box<dyn RngCore + Send>,
    ) -> Self {
        Self {
            store,
            storage,
            signers: Arc::new(signers),
            settings,
            clock,
            rng: Mutex::new(rng),
            owner: format!("{:016x}", rand::random::<u64>()),
            cycle_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ExportSettings {
        &self.settings
    }

    /// The object store.
    pub fn storage(&self) -> &ExportStorage {
        &self.storage
    }

    /// The signers.
    pub fn signers(&self) -> &[SoftwareSigner] {
        &self.signers
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// Runs one cycle: cutting closed windows, retention, building every
    /// pending batch, rewriting the indexes when anything changed.
    pub async fn run_cycle(&self, opts: CycleOptions) -> anyhow::Result<CycleReport> {
        let _turn = self.cycle_turn.lock().await;
        let started = std::time::Instant::now();
        let result = self.cycle(opts).await;
        metrics::gauge!("keyserver_export_last_cycle_duration_seconds")
            .set(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => metrics::gauge!("keyserver_export_last_cycle_seconds").set(self.now() as f64),
            Err(_) => metrics::counter!("keyserver_export_failures_total").increment(1),
        }
        result
    }

    /// Every region to export: the main one, those configured, and those
    /// with keys or batches.
    pub async fn regions(&self) -> anyhow::Result<Vec<String>> {
        let mut regions = vec![self.settings.region.clone()];
        regions.extend(self.settings.regions.iter().map(|r| r.name.clone()));
        regions.extend(self.store.regions().await?);
        let main = self.settings.region.clone();
        regions.sort_by(|a, b| (a != &main, a).cmp(&(b != &main, b)));
        regions.dedup();
        Ok(regions)
    }

    async fn cycle(&self, opts: CycleOptions) -> anyhow::Result<CycleReport> {
        let mut report = CycleReport::default();
        for region in self.regions().await? {
            if !crate::store::valid_region(&region) {
                warn!(region = %region, "region name unusable in a path; not exported");
                continue;
            }
            let r = self.region_cycle(&region, opts).await?;
            report.cut.extend(r.cut);
            report.built.extend(r.built);
            report.files.extend(r.files);
            report.deleted_files.extend(r.deleted_files);
            report.deleted_keys += r.deleted_keys;
            report.indexes_written |= r.indexes_written;
            report.keys += r.keys;
        }
        Ok(report)
    }

    async fn region_cycle(&self, region: &str, opts: CycleOptions) -> anyhow::Result<CycleReport> {
        let mut report = CycleReport::default();
        let now = self.now();
        let min_age = self.settings.min_age_of(region, opts.min_age);

        let cutoff = now - min_age.max(0);
        let last_end = self.store.last_batch_end(region).await?;
        let earliest = if last_end.is_none() {
            self.store.earliest_unbatched(region).await?
        } else {
            None
        };
        for (start, end) in windows(
            last_end,
            earliest,
            cutoff,
            self.settings.batch_period_of(region),
            min_age <= 0,
            now - self.settings.retention,
        ) {
            if let Some(id) = self.store.cut_batch(region, start, end, now).await? {
                report.cut.push(id);
            }
        }

        let retention = self
            .store
            .apply_retention(region, now - self.settings.retention)
            .await?;
        for path in &retention.files {
            self.storage.delete(path).await?;
        }
        report.deleted_keys = retention.keys;
        report.deleted_files = retention.files;

        loop {
            let now = self.now();
            let candidates = self
                .store
                .claimable_batches(region, &self.owner, now, 16)
                .await?;
            if candidates.is_empty() {
                break;
            }
            let mut claimed = None;
            for id in candidates {
                if let Some(b) = self
                    .store
                    .claim_batch(id, &self.owner, now + self.settings.lease, now)
                    .await?
                {
                    claimed = Some(b);
                    break;
                }
            }
            let Some(batch) = claimed else {
                // Every candidate was taken by another exporter meanwhile.
                continue;
            };
            if let Some((files, keys)) = self.build_and_store(&batch).await? {
                report.built.push(batch.id);
                report.files.extend(files);
                report.keys += keys;
            }
        }

        if !report.files.is_empty() || !report.deleted_files.is_empty() || !report.cut.is_empty() {
            report.indexes_written = self.write_region_indexes(region).await?;
        }
        Ok(report)
    }

    /// The batch's keys with its fakes, padding it first when it needs it.
    async fn keys_with_fakes(
        &self,
        batch: &BatchRow,
    ) -> anyhow::Result<(Vec<crate::store::KeyRow>, Vec<crate::store::KeyRow>)> {
        let real = self.store.batch_keys(batch.id).await?;
        let mut fakes = self.store.batch_fakes(batch.id).await?;
        if fakes.is_empty() && !real.is_empty() && real.len() < self.settings.pad_to {
            let new = {
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                fake_keys(
                    &real,
                    self.settings.pad_to,
                    self.settings.pad_jitter,
                    &mut **rng,
                )
            };
            if !self.store.store_fakes(batch.id, &self.owner, &new).await? {
                warn!(batch = batch.id, "batch padded by another exporter");
            }
            fakes = self.store.batch_fakes(batch.id).await?;
        }
        Ok((real, fakes))
    }

    /// Builds a claimed batch, writes its files and records them. `None`
    /// when the lease was lost meanwhile (another exporter records it).
    async fn build_and_store(
        &self,
        batch: &BatchRow,
    ) -> anyhow::Result<Option<(Vec<String>, u64)>> {
        let built = self.build(batch).await?;
        let keys = built.iter().map(|f| f.key_count as u64).sum();
        let mut paths = Vec::with_capacity(built.len());
        let mut records = Vec::with_capacity(built.len());
        for f in built {
            self.storage.put(&f.path, f.zip).await?;
            records.push(NewFile {
                path: f.path.clone(),
                file_num: f.file_num as i64,
                key_count: f.key_count as i64,
            });
            paths.push(f.path);
        }
        let created_ms = self.clock.now().timestamp_millis();
        if self
            .store
            .complete_batch(batch, &self.owner, &records, created_ms)
            .await?
        {
            // Counted here, so that a cycle failing later still counts
            // the batches it completed.
            metrics::counter!("keyserver_export_keys_total").increment(keys);
            metrics::counter!("keyserver_export_batches_total").increment(1);
            metrics::counter!("keyserver_export_files_total").increment(paths.len() as u64);
            info!(
                batch = batch.id,
                files = paths.len(),
                keys,
                "batch exported"
            );
            Ok(Some((paths, keys)))
        } else {
            warn!(
                batch = batch.id,
                "lease lost while building; another exporter records it"
            );
            Ok(None)
        }
    }

    /// Builds a batch's files without writing them (the same bytes every
    /// time for the same stored keys and fakes).
    pub async fn build(&self, batch: &BatchRow) -> anyhow::Result<Vec<BuiltFile>> {
        let (real, fakes) = self.keys_with_fakes(batch).await?;
        let signers = self.signers.clone();
        let batch = batch.clone();
        let max = self.settings.max_keys_per_file;
        tokio::task::spawn_blocking(move || build_batch(&batch, real, fakes, &signers, max))
            .await
            .context("export build task")?
    }

    /// Rewrites the indexes of every region (see [`Self::write_region_indexes`]);
    /// whether this exporter wrote them all.
    pub async fn write_indexes(&self) -> anyhow::Result<bool> {
        let mut all = true;
        for region in self.regions().await? {
            if crate::store::valid_region(&region) {
                all &= self.write_region_indexes(&region).await?;
            }
        }
        Ok(all)
    }

    /// Rewrites a region's `index.txt` (the main region's at the root,
    /// another's at `{region}/index.txt`) and `{region}/list.json` from the
    /// recorded files, under a lease so that two exporters do not
    /// interleave. Returns whether this exporter wrote them.
    pub async fn write_region_indexes(&self, region: &str) -> anyhow::Result<bool> {
        let index_path = self.settings.index_path(region);
        let lease = format!("index:{region}");
        for _ in 0..100 {
            let now = self.now();
            if self
                .store
                .acquire_lease(&lease, &self.owner, now + 60, now)
                .await?
            {
                let result = async {
                    loop {
                        let files = self.store.export_files(region).await?;
                        self.storage.put(&index_path, index_txt(&files)).await?;
                        self.storage
                            .put(
                                &format!("{region}/list.json"),
                                list_json(&files, &self.settings.public_url),
                            )
                            .await?;
                        // Files recorded meanwhile by another exporter that
                        // found the lease taken: write again.
                        if self.store.export_files(region).await? == files {
                            break;
                        }
                    }
                    anyhow::Ok(())
                }
                .await;
                self.store.release_lease(&lease, &self.owner).await?;
                result?;
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        warn!("index lease busy; the holder writes the indexes");
        Ok(false)
    }

    /// Runs a cycle every `interval` until `shutdown` resolves.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        min_age: i64,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        register_metrics();
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.run_cycle(CycleOptions { min_age }).await {
                warn!(error = format!("{e:#}"), "export cycle failed");
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(interval.max(Duration::from_millis(100))) => {}
            }
        }
    }
}
