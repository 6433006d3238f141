//! `cocoa bench match`: streams random diagnosis keys through the matcher
//! against a random 14-day sighting log with some planted matches.
//!
//! The clock times the matching only: the random keys are generated before
//! it starts, into a pool of at most [`POOL`] keys that is cycled when more
//! keys are asked for. The matcher does all its work for every key it is
//! given (HKDF, 144 AES blocks, the lookups) and keeps nothing from one key
//! to the next, so a repeated key costs what a new one does.

use std::time::Instant;

use en_protocol::matcher::{Sighting, SightingIndex};
use en_protocol::{Aem, BluetoothMetadata, EnIntervalNumber, Rpi, TEK_ROLLING_PERIOD, Tek};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::MatchArgs;
use crate::commands::{bad_input, print_json};

/// Most random keys generated before timing (24 MB), so memory stays
/// bounded however many keys stream through.
const POOL: u64 = 1 << 20;
/// Days covered by the sighting log (devices keep 14 days).
const LOG_DAYS: u32 = 14;
/// The last day of the log: 2026-01-15 00:00 UTC (a fixed day keeps runs comparable).
const LOG_END_UNIX: i64 = 1_768_435_200;

#[derive(Serialize)]
struct Output {
    keys: u64,
    sightings: u64,
    threads: usize,
    seconds: f64,
    keys_per_sec: f64,
    /// CPU time of all matching threads (honest on a busy machine, where
    /// wall time also counts waiting for a core); `keys_per_cpu_sec` is the
    /// throughput of one core.
    cpu_seconds: f64,
    keys_per_cpu_sec: f64,
    planted: u64,
    found: u64,
    unexpected: u64,
    index_bytes: usize,
    /// Distinct random keys generated before the clock started (cycled
    /// when `keys` is larger).
    keys_pregenerated: u64,
}

type Key = (Tek, EnIntervalNumber, u32);

struct Plan {
    index: SightingIndex,
    /// Planted keys sit at stream positions `i * stride`.
    planted: Vec<Key>,
    stride: u64,
    /// The random keys, generated before timing.
    pool: Vec<Key>,
}

impl Plan {
    /// The key at stream position `i`, and whether it is a planted one.
    fn key(&self, i: u64) -> (&Key, bool) {
        let planted = i
            .is_multiple_of(self.stride)
            .then(|| self.planted.get((i / self.stride) as usize))
            .flatten();
        match planted {
            Some(k) => (k, true),
            None => (&self.pool[(i % self.pool.len() as u64) as usize], false),
        }
    }
}

fn plan(a: &MatchArgs) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let last_day = EnIntervalNumber::from_unix_seconds(LOG_END_UNIX)
        .expect("fixed time in range")
        .get();
    let first_day = last_day - LOG_DAYS * TEK_ROLLING_PERIOD;
    let planted_n = a.keys.min(100).min(a.sightings / 3);
    let stride = a.keys.checked_div(planted_n).unwrap_or(u64::MAX);

    let mut sightings = Vec::with_capacity(a.sightings as usize);
    let mut planted = Vec::with_capacity(planted_n as usize);
    for _ in 0..planted_n {
        let tek = Tek::generate(&mut rng);
        let start =
            EnIntervalNumber::new(first_day + TEK_ROLLING_PERIOD * rng.gen_range(0..LOG_DAYS));
        let (rpik, aemk) = tek.rpik_and_aemk();
        for _ in 0..3 {
            let j = EnIntervalNumber::new(start.get() + rng.gen_range(0..TEK_ROLLING_PERIOD));
            let rpi = rpik.rpi(j);
            sightings.push(Sighting {
                rpi,
                aem: aemk.encrypt(&rpi, BluetoothMetadata::v1(-8)),
                rssi: -60,
                at: j.to_unix_seconds() + rng.gen_range(0..600),
                seconds: 240,
            });
        }
        planted.push((tek, start, TEK_ROLLING_PERIOD));
    }
    while (sightings.len() as u64) < a.sightings {
        let mut rpi = [0u8; 16];
        rng.fill_bytes(&mut rpi);
        let mut aem = [0u8; 4];
        rng.fill_bytes(&mut aem);
        sightings.push(Sighting {
            rpi: Rpi(rpi),
            aem: Aem(aem),
            rssi: rng.gen_range(-100..-30),
            at: i64::from(first_day) * 600
                + rng.gen_range(0..i64::from(LOG_DAYS * TEK_ROLLING_PERIOD) * 600),
            seconds: 240,
        });
    }
    let pool = (0..a.keys.clamp(1, POOL))
        .map(|_| {
            let day = first_day + TEK_ROLLING_PERIOD * rng.gen_range(0..LOG_DAYS);
            (
                Tek::generate(&mut rng),
                EnIntervalNumber::new(day),
                TEK_ROLLING_PERIOD,
            )
        })
        .collect();
    Plan {
        index: SightingIndex::new(sightings),
        planted,
        stride,
        pool,
    }
}

/// Matches the keys at stream positions `range`; returns (planted found, unexpected).
fn worker(p: &Plan, range: std::ops::Range<u64>) -> (u64, u64) {
    let keys = range.clone().map(|i| p.key(i).0);
    let (mut found, mut unexpected) = (0, 0);
    for m in p.index.match_keys(keys, range.start as usize) {
        if p.key(m.key_index as u64).1 {
            found += 1;
        } else {
            unexpected += 1;
        }
    }
    (found, unexpected)
}

pub fn run(a: MatchArgs) -> anyhow::Result<()> {
    if a.threads == 0 || a.threads > 256 {
        return Err(bad_input("--threads must be between 1 and 256"));
    }
    if a.sightings == 0 || a.sightings > 50_000_000 {
        return Err(bad_input("--sightings must be between 1 and 50,000,000"));
    }
    let p = plan(&a);
    let cpu_started = process_cpu_seconds();
    let started = Instant::now();
    let per = a.keys.div_ceil(a.threads as u64);
    let (found, unexpected) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads as u64)
            .map(|t| {
                let range = (t * per).min(a.keys)..((t + 1) * per).min(a.keys);
                let p = &p;
                s.spawn(move || worker(p, range))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .fold((0, 0), |(f, u), (f2, u2)| (f + f2, u + u2))
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_started;
    let planted = p.planted.len() as u64;
    print_json(&Output {
        keys: a.keys,
        sightings: a.sightings,
        threads: a.threads,
        seconds,
        keys_per_sec: a.keys as f64 / seconds,
        cpu_seconds,
        keys_per_cpu_sec: a.keys as f64 / cpu_seconds.max(1e-9),
        planted,
        found,
        unexpected,
        index_bytes: p.index.memory_bytes(),
        keys_pregenerated: p.pool.len() as u64,
    })?;
    if found != planted || unexpected != 0 {
        anyhow::bail!(
            "matcher missed planted keys: planted {planted}, found {found}, unexpected {unexpected}"
        );
    }
    Ok(())
}

/// User + system CPU time of this process so far, from `/proc/self/stat`
/// (Linux; 0 elsewhere, which makes `keys_per_cpu_sec` meaningless there).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}
