//! `cocoa bench export`: builds, signs and zips one export of N random keys,
//! as a key server does for a batch, and reports the throughput.

use std::hint::black_box;
use std::time::Instant;

use en_protocol::export::{
    ExposureKey, ReportType, SignatureInfo, SoftwareSigner, TemporaryExposureKeyExport, sign_export,
};
use en_protocol::{EnIntervalNumber, TEK_ROLLING_PERIOD, Tek};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use super::ExportArgs;
use crate::commands::{bad_input, print_json};

#[derive(Debug, Serialize)]
struct Output {
    keys: u64,
    seconds: f64,
    keys_per_sec: f64,
    bytes_per_key: f64,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    if a.keys == 0 {
        return Err(bad_input("--keys must be at least 1"));
    }
    let n = usize::try_from(a.keys).map_err(bad_input)?;
    let mut rng = ChaCha20Rng::seed_from_u64(a.seed);
    let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));

    // Keys of the last 14 days, as a batch of real uploads would hold.
    let today = 2_690_000 - 2_690_000 % TEK_ROLLING_PERIOD;
    let keys: Vec<ExposureKey> = (0..n)
        .map(|_| {
            let day = rng.gen_range(0..14u32);
            let mut k = ExposureKey::new(
                Tek::generate(&mut rng),
                EnIntervalNumber::new(today - day * TEK_ROLLING_PERIOD),
            );
            k.transmission_risk_level = Some(rng.gen_range(0..=8));
            k.report_type = Some(ReportType::CONFIRMED_TEST);
            k
        })
        .collect();
    let export = TemporaryExposureKeyExport {
        start_timestamp: 1_614_000_000,
        end_timestamp: 1_614_086_400,
        region: "440".into(),
        batch_num: 1,
        batch_size: 1,
        keys,
        ..TemporaryExposureKeyExport::default()
    };

    // What `build_export` does, in two steps so export.bin can be measured.
    let started = Instant::now();
    let archive = sign_export(export, &[&signer])?;
    let zip = archive.to_zip()?;
    let seconds = started.elapsed().as_secs_f64();
    black_box(&zip);

    print_json(&Output {
        keys: a.keys,
        seconds,
        keys_per_sec: n as f64 / seconds,
        bytes_per_key: archive.export_bin.len() as f64 / n as f64,
    })
}
