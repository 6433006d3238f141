//! `cocoa bench check`: one phone's exposure check of a day of exports at
//! Japan's peak (about 260,000 new positives a day, 14 keys each: 3.6
//! million keys, in files of at most 500,000) against a 14-day log of
//! 100,000 sightings, through the device's real check path (index, files
//! read, signatures verified, keys streamed, matched, scored, stored).
//!
//! The files are built first with `en_protocol::export::build_export` into a
//! temporary folder and read through a `file://` index; the peak resident
//! memory is reset (`/proc/self/clear_refs`) after building, so
//! `peak_rss_mb` (VmHWM) is the check's own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use clap::Args;
use device::{Phone, Settings};
use en_protocol::export::{
    ExportMeta, ExposureKey, ReportType, SignatureInfo, SoftwareSigner, build_export,
};
use en_protocol::matcher::Sighting;
use en_protocol::time::{EnIntervalNumber, FixedClock, TEK_ROLLING_PERIOD};
use en_protocol::{Aem, BluetoothMetadata, Rpi, Tek};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::commands::{bad_input, print_json};

/// `cocoa bench check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Diagnosis keys in the day's exports.
    #[arg(long, default_value_t = 3_600_000)]
    pub keys: u64,
    /// Most keys in one export file.
    #[arg(long, default_value_t = 500_000)]
    pub max_keys_per_file: usize,
    /// Sightings in the phone's 14-day log.
    #[arg(long, default_value_t = 100_000)]
    pub sightings: u64,
    /// Contacts planted (one positive met for 20 minutes at 1 m, each on its own day).
    #[arg(long, default_value_t = 3)]
    pub contacts: u32,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder for the files and the phone (a temporary folder when absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run the check as the phone's screens do (`cocoa app ui`: 「今すぐ確認」
    /// posted to the real router, the check in the background) and load the
    /// home screen every `--ui-every` while it runs: the page times say
    /// whether the screen stays responsive.
    #[arg(long)]
    pub ui: bool,
    /// With `--ui`: the pause between two loads of the home screen, ms.
    #[arg(long, default_value_t = 50)]
    pub ui_every_ms: u64,
}

/// With `--ui`: the home screen's render times while the check ran.
#[derive(Debug, Serialize)]
struct UiOutput {
    /// Home screens loaded while the check ran.
    pages: usize,
    /// Of them, the ones that showed the progress indicator.
    pages_with_progress: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Output {
    keys: u64,
    files: usize,
    sightings: u64,
    seconds: f64,
    keys_per_sec: f64,
    peak_rss_mb: f64,
    contacts: usize,
    expected_contacts: u32,
    fetch_seconds: f64,
    verify_seconds: f64,
    match_seconds: f64,
    build_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ui: Option<UiOutput>,
}

/// The phone's "now": 2026-01-15 12:00 UTC (a fixed day keeps runs comparable).
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_768_478_400, 0).unwrap_or_default()
}

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A positive person met for 20 minutes at 1 m on `day` (UTC day start):
/// their 14 daily keys, and the 5 sightings the phone made of them.
fn planted(rng: &mut ChaCha20Rng, today: u32, day: u32) -> (Vec<ExposureKey>, Vec<Sighting>) {
    let mut keys = Vec::new();
    let mut sightings = Vec::new();
    for d in 0..14 {
        let start = today - d * TEK_ROLLING_PERIOD;
        let tek = Tek::generate(rng);
        if start == day {
            let (rpik, aemk) = tek.rpik_and_aemk();
            for scan in 0..5u32 {
                // 10:00 UTC plus 4 minutes per scan.
                let at = i64::from(start) * 600 + 36_000 + i64::from(scan) * 240;
                let rpi = rpik.rpi(EnIntervalNumber::new((at / 600) as u32));
                sightings.push(Sighting {
                    rpi,
                    aem: aemk.encrypt(&rpi, BluetoothMetadata::v1(-8)),
                    rssi: -63,
                    at,
                    seconds: 240,
                });
            }
        }
        let mut k = ExposureKey::new(tek, EnIntervalNumber::new(start));
        k.report_type = Some(ReportType::CONFIRMED_TEST);
        keys.push(k);
    }
    (keys, sightings)
}

fn random_key(rng: &mut ChaCha20Rng, today: u32) -> ExposureKey {
    let day = rng.gen_range(0..14u32);
    let mut k = ExposureKey::new(
        Tek::generate(rng),
        EnIntervalNumber::new(today - day * TEK_ROLLING_PERIOD),
    );
    k.report_type = Some(ReportType::CONFIRMED_TEST);
    k
}

/// Writes the day's files under `exports/` and its `index.txt`; returns the
/// number of files.
fn build_files(
    a: &CheckArgs,
    exports: &Path,
    rng: &mut ChaCha20Rng,
    signer: &SoftwareSigner,
    planted_keys: Vec<ExposureKey>,
) -> anyhow::Result<usize> {
    let today = EnIntervalNumber::from_datetime(now())?.day_start().get();
    let files = (a.keys as usize).div_ceil(a.max_keys_per_file);
    let folder = exports.join("c19r").join("440");
    std::fs::create_dir_all(&folder)?;
    let mut index = String::new();
    let mut planted_keys = Some(planted_keys);
    let mut left = a.keys as usize;
    for n in 1..=files {
        let count = left.min(a.max_keys_per_file);
        left -= count;
        let mut keys = planted_keys.take().unwrap_or_default();
        keys.truncate(count);
        while keys.len() < count {
            keys.push(random_key(rng, today));
        }
        let end = now().timestamp() as u64 - 7200 + n as u64;
        let meta = ExportMeta {
            start_timestamp: end - 86_400,
            end_timestamp: end,
            region: "440".into(),
        };
        let zip = build_export(&meta, keys, &[signer])?;
        let name = format!("c19r/440/{end}.zip");
        std::fs::write(exports.join(&name), zip)?;
        index.push_str(&name);
        index.push('\n');
    }
    std::fs::write(exports.join("index.txt"), index)?;
    Ok(files)
}

pub fn run(a: CheckArgs) -> anyhow::Result<()> {
    if a.keys == 0 || a.max_keys_per_file == 0 {
        return Err(bad_input(
            "--keys and --max-keys-per-file must be at least 1",
        ));
    }
    if a.contacts > 13 || u64::from(a.contacts) * 14 > a.keys {
        return Err(bad_input("--contacts must be at most 13 and fit in --keys"));
    }
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let exports = dir.join("exports");
    let home = dir.join("phone");
    let mut rng = ChaCha20Rng::seed_from_u64(a.seed);
    let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
    let today = EnIntervalNumber::from_datetime(now())?.day_start().get();

    let built = Instant::now();
    // The planted contacts: 2, 4, 6 ... days ago.
    let mut planted_keys = Vec::new();
    let mut sightings = Vec::with_capacity(a.sightings as usize);
    for c in 0..a.contacts {
        let (k, s) = planted(&mut rng, today, today - (2 + 2 * c) * TEK_ROLLING_PERIOD);
        planted_keys.extend(k);
        sightings.extend(s);
    }
    let log_start = now() - Duration::days(14);
    while (sightings.len() as u64) < a.sightings {
        let mut rpi = [0u8; 16];
        rng.fill_bytes(&mut rpi);
        let mut aem = [0u8; 4];
        rng.fill_bytes(&mut aem);
        sightings.push(Sighting {
            rpi: Rpi(rpi),
            aem: Aem(aem),
            rssi: rng.gen_range(-100..-30),
            at: log_start.timestamp() + rng.gen_range(0..14 * 86_400),
            seconds: 240,
        });
    }
    let files = build_files(&a, &exports, &mut rng, &signer, planted_keys)?;

    let clock = Arc::new(FixedClock::new(log_start));
    let settings = Settings {
        prefecture: Some("13".into()),
        exports: Some(
            device::settings::file_url(&exports.join("index.txt"))
                .map_err(|e| anyhow::anyhow!(e.to_string()))?,
        ),
        export_public_keys: vec![signer.public_key_pem()?],
        ..Settings::default()
    };
    let mut phone = Phone::init(&home, settings, clock.clone(), Box::new(rand::rngs::OsRng))
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    phone
        .store_mut()
        .insert_sightings(&sightings)
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    clock.set(now());
    drop(sightings);
    drop(phone);
    let build_seconds = built.elapsed().as_secs_f64();

    // From here on, memory and time are the phone's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (seconds, check, contacts, ui) = if a.ui {
        // As `cocoa app ui` runs: tokio's multi-threaded runtime.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let started = Instant::now();
        let ui = rt.block_on(check_through_the_screens(
            &home,
            clock.clone(),
            a.ui_every_ms,
        ))?;
        let seconds = started.elapsed().as_secs_f64();
        let mut phone = Phone::open(&home, clock, Box::new(rand::rngs::OsRng))
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
        let check: device::CheckRecord = phone
            .store_mut()
            .last_check()
            .map_err(|e| anyhow::anyhow!(e.to_string()))?
            .ok_or_else(|| anyhow::anyhow!("the screens' check left no record"))?;
        let contacts = phone
            .status()
            .map_err(|e| anyhow::anyhow!(e.to_string()))?
            .contacts;
        (seconds, check, contacts, Some(ui))
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let started = Instant::now();
        let mut phone = Phone::open(&home, clock, Box::new(rand::rngs::OsRng))
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
        let report = rt
            .block_on(phone.check())
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
        (
            started.elapsed().as_secs_f64(),
            report.check,
            report.notification.contacts,
            None,
        )
    };
    let peak_rss_mb = vm_hwm_mb();

    print_json(&Output {
        keys: check.keys,
        files,
        sightings: a.sightings,
        seconds,
        keys_per_sec: check.keys as f64 / seconds,
        peak_rss_mb,
        contacts,
        expected_contacts: a.contacts,
        fetch_seconds: check.fetch_seconds,
        verify_seconds: check.verify_seconds,
        match_seconds: check.match_seconds,
        build_seconds,
        ui,
    })?;
    if contacts != a.contacts as usize || check.keys != a.keys {
        anyhow::bail!(
            "the check found {contacts} contacts in {} keys; planted {} in {}",
            check.keys,
            a.contacts,
            a.keys
        );
    }
    Ok(())
}

/// 「今すぐ確認」 on the phone's home screen through the real router
/// (`phone_ui`, as `cocoa app ui` serves it), then the home screen loaded
/// every `every_ms` until the check is over: each load's time, and whether
/// it showed the progress indicator (`id="checking"`).
async fn check_through_the_screens(
    home: &Path,
    clock: Arc<FixedClock>,
    every_ms: u64,
) -> anyhow::Result<UiOutput> {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt as _;

    let config = phone_ui::Config {
        check_every: None,
        ..phone_ui::Config::new(vec![home.to_owned()], clock)
    };
    let router = phone_ui::router(config).map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let load = |router: axum::Router| async move {
        let started = Instant::now();
        let resp = router
            .oneshot(Request::get("/p/0/").body(Body::empty())?)
            .await?;
        anyhow::ensure!(
            resp.status() == 200,
            "the home screen answered {}",
            resp.status()
        );
        let html = axum::body::to_bytes(resp.into_body(), 4 << 20).await?;
        Ok::<_, anyhow::Error>((
            started.elapsed(),
            String::from_utf8_lossy(&html).into_owned(),
        ))
    };
    let (_, html) = load(router.clone()).await?;
    let token = html
        .split("name=\"form\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("the home screen has no form token"))?
        .to_owned();
    let resp = router
        .clone()
        .oneshot(
            Request::post("/p/0/check")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("form={token}")))?,
        )
        .await?;
    anyhow::ensure!(
        resp.status().is_redirection(),
        "今すぐ確認 answered {}",
        resp.status()
    );
    let mut times = Vec::new();
    let mut with_progress = 0;
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let (took, html) = load(router.clone()).await?;
        times.push(took);
        if html.contains("id=\"checking\"") {
            with_progress += 1;
        } else {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the check did not end in 10 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(every_ms)).await;
    }
    times.sort();
    let at = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1000.0
    };
    Ok(UiOutput {
        pages: times.len(),
        pages_with_progress: with_progress,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}
