//! Profiling harness: 1,000,000 random keys against 100,000 random sightings,
//! single-threaded, with CPU time measured by the OS (so a busy machine does
//! not distort it). `cargo run --release -p en-protocol --example match_perf
//! [KEYS] [REPEATS]` prints the best of REPEATS runs.

use en_protocol::matcher::{Sighting, SightingIndex};
use en_protocol::{Aem, EnIntervalNumber, Rpi, TEK_ROLLING_PERIOD, Tek};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FIRST_DAY: u32 = 2_948_832;

fn main() {
    let keys_n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let sightings = (0..100_000)
        .map(|_| {
            let mut rpi = [0u8; 16];
            rng.fill_bytes(&mut rpi);
            Sighting {
                rpi: Rpi(rpi),
                aem: Aem([0; 4]),
                rssi: -60,
                at: i64::from(FIRST_DAY) * 600 + rng.gen_range(0..14 * 86_400),
                seconds: 240,
            }
        })
        .collect();
    let index = SightingIndex::new(sightings);
    let keys: Vec<_> = (0..keys_n)
        .map(|_| {
            let day = FIRST_DAY + TEK_ROLLING_PERIOD * rng.gen_range(0..14);
            (
                Tek::generate(&mut rng),
                EnIntervalNumber::new(day),
                TEK_ROLLING_PERIOD,
            )
        })
        .collect();
    let reps: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // Best of `reps` runs, by CPU time and by wall time (a busy machine only
    // ever adds time; with short runs, the best wall time is that of a run
    // nothing interrupted).
    let (mut best_cpu, mut best_wall, mut found) = (f64::INFINITY, f64::INFINITY, 0);
    for _ in 0..reps {
        let cpu = cpu_seconds();
        let started = std::time::Instant::now();
        found = index.match_keys(&keys, 0).len();
        best_wall = best_wall.min(started.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(cpu_seconds() - cpu);
    }
    println!(
        "{keys_n} keys, best of {reps}: {:.0} ns/key CPU ({:.0} keys/s), {:.0} ns/key wall, found {found}",
        best_cpu * 1e9 / keys_n as f64,
        keys_n as f64 / best_cpu,
        best_wall * 1e9 / keys_n as f64,
    );
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let utime: f64 = fields.get(11).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (utime + stime) / 100.0
}
