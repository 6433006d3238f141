//! Export file benchmarks: build + sign + zip 100,000 keys (what a key server
//! does per batch), and the phone's side: read the zip, verify, stream keys.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use en_protocol::export::{
    ExportMeta, ExposureKey, ReportType, SignatureInfo, SoftwareSigner, TekSignatureList,
    build_export, export_keys, read_zip, verify,
};
use en_protocol::{EnIntervalNumber, Tek};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

const KEYS: usize = 100_000;

fn random_keys(n: usize, seed: u64) -> Vec<ExposureKey> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let day = 2_690_000 - 144 * (i as u32 % 14);
            let mut k = ExposureKey::new(Tek::generate(&mut rng), EnIntervalNumber::new(day));
            k.transmission_risk_level = Some((i % 8) as i32);
            k.report_type = Some(ReportType::CONFIRMED_TEST);
            k
        })
        .collect()
}

fn meta() -> ExportMeta {
    ExportMeta {
        start_timestamp: 1_614_000_000,
        end_timestamp: 1_614_086_400,
        region: "440".into(),
    }
}

fn bench_export(c: &mut Criterion) {
    let signer = SoftwareSigner::generate(
        &mut ChaCha20Rng::seed_from_u64(1),
        SignatureInfo::new("440", "v1"),
    );
    let keys = random_keys(KEYS, 2);

    let mut group = c.benchmark_group("export");
    group.throughput(Throughput::Elements(KEYS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("build_sign_zip_100k", |b| {
        b.iter_batched(
            || keys.clone(),
            |keys| build_export(&meta(), keys, &[&signer]).expect("build"),
            BatchSize::LargeInput,
        );
    });

    let zip = build_export(&meta(), keys, &[&signer]).expect("build");
    let public = signer.public_key();
    group.bench_function("read_verify_stream_100k", |b| {
        b.iter(|| {
            let archive = read_zip(black_box(&zip)).expect("zip");
            let sigs = TekSignatureList::decode(&archive.export_sig).expect("sig");
            assert!(verify(&archive.export_bin, &sigs, &[public]).is_some());
            export_keys(&archive.export_bin)
                .map(|k| k.expect("key").rolling_period)
                .sum::<u32>()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_export);
criterion_main!(benches);
