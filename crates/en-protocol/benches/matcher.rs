//! Criterion benches of the matcher's hot path: the per-key derivation and a
//! stream of keys against a 100,000-sighting log.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use en_protocol::matcher::{Sighting, SightingIndex};
use en_protocol::{Aem, EnIntervalNumber, Rpi, TEK_ROLLING_PERIOD, Tek};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FIRST_DAY: u32 = 2_948_832; // 2026-01-01 00:00 UTC, a multiple of 144

fn log(rng: &mut ChaCha8Rng, n: usize) -> SightingIndex {
    let sightings = (0..n)
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
    SightingIndex::new(sightings)
}

fn keys(rng: &mut ChaCha8Rng, n: usize) -> Vec<(Tek, EnIntervalNumber, u32)> {
    (0..n)
        .map(|_| {
            let day = FIRST_DAY + TEK_ROLLING_PERIOD * rng.gen_range(0..14);
            (
                Tek::generate(rng),
                EnIntervalNumber::new(day),
                TEK_ROLLING_PERIOD,
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let tek = Tek::generate(&mut rng);
    c.bench_function("rpik (HKDF)", |b| {
        b.iter(|| std::hint::black_box(&tek).rpik())
    });
    let rpik = tek.rpik();
    c.bench_function("144 RPIs (batch AES)", |b| {
        b.iter(|| std::hint::black_box(&rpik).all_rpis(EnIntervalNumber::new(FIRST_DAY)))
    });

    let index = log(&mut rng, 100_000);
    let ks = keys(&mut rng, 10_000);
    let mut g = c.benchmark_group("match");
    g.throughput(Throughput::Elements(ks.len() as u64));
    g.bench_function("10k keys vs 100k sightings, 1 thread", |b| {
        b.iter(|| index.match_keys(std::hint::black_box(&ks), 0))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
