//! The optimised matcher against a brute-force reference on random logs:
//! every (key, interval, sighting) triple the reference finds, the matcher
//! finds, and nothing else — including keys that do not start at UTC
//! midnight, short rolling periods, sightings at the edges of the ±2 h
//! tolerance and of UTC days, and repeated RPIs.

use en_protocol::matcher::{Sighting, SightingIndex};
use en_protocol::{Aem, BluetoothMetadata, EnIntervalNumber, Rpi, Tek};
use proptest::prelude::*;

const BASE: u32 = 2_948_832; // 2026-01-01 00:00 UTC

type Key = (Tek, EnIntervalNumber, u32);

/// All (key index, interval, sighting position in `log`) the spec calls a match.
fn reference(keys: &[Key], log: &[Sighting]) -> Vec<(usize, u32, i64, [u8; 16])> {
    let mut out = Vec::new();
    for (ki, (tek, start, period)) in keys.iter().enumerate() {
        let rpik = tek.rpik();
        for j in start.get()..start.get() + period {
            let rpi = rpik.rpi(EnIntervalNumber::new(j));
            for s in log {
                let seen = (s.at / 600) as u32;
                if s.rpi == rpi && seen.abs_diff(j) <= 12 {
                    out.push((ki, j, s.at, s.rpi.0));
                }
            }
        }
    }
    out.sort();
    out
}

fn optimised(keys: &[Key], log: &[Sighting], threads: usize) -> Vec<(usize, u32, i64, [u8; 16])> {
    let index = SightingIndex::new(log.to_vec());
    let mut out: Vec<_> = index
        .match_keys_parallel(keys, threads)
        .into_iter()
        .flat_map(|m| {
            let idx = &index;
            m.hits.into_iter().map(move |h| {
                let s = idx.sightings()[h.sighting];
                (m.key_index, h.interval.get(), s.at, s.rpi.0)
            })
        })
        .collect();
    out.sort();
    out
}

fn scenario() -> impl Strategy<Value = (Vec<Key>, Vec<Sighting>)> {
    let key = (any::<[u8; 16]>(), 0u32..5 * 144, 1u32..=144).prop_map(|(k, off, period)| {
        (
            Tek::from_bytes(k),
            EnIntervalNumber::new(BASE + off),
            period,
        )
    });
    prop::collection::vec(key, 1..12)
        .prop_flat_map(|keys| {
            let n = keys.len();
            // Each planted sighting: which key, which interval offset in its
            // period, how far from that interval it was heard (beyond ±12 too).
            let planted = prop::collection::vec((0..n, 0u32..144, -14i64..=14, 0i64..600), 0..30);
            let noise = prop::collection::vec((any::<[u8; 16]>(), 0i64..5 * 86_400), 0..60);
            (Just(keys), planted, noise)
        })
        .prop_map(|(keys, planted, noise)| {
            let mut log = Vec::new();
            for (ki, off, shift, secs) in planted {
                let (tek, start, period) = &keys[ki];
                let j = start.get() + off % period;
                let (rpik, aemk) = tek.rpik_and_aemk();
                let rpi = rpik.rpi(EnIntervalNumber::new(j));
                let at = (i64::from(j) + shift) * 600 + secs;
                log.push(Sighting {
                    rpi,
                    aem: aemk.encrypt(&rpi, BluetoothMetadata::v1(-5)),
                    rssi: -55,
                    at,
                    seconds: 240,
                });
            }
            for (rpi, t) in noise {
                log.push(Sighting {
                    rpi: Rpi(rpi),
                    aem: Aem([0; 4]),
                    rssi: -70,
                    at: i64::from(BASE) * 600 + t,
                    seconds: 240,
                });
            }
            (keys, log)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matcher_equals_brute_force((keys, log) in scenario()) {
        let expected = reference(&keys, &log);
        prop_assert_eq!(&optimised(&keys, &log, 1), &expected);
        prop_assert_eq!(&optimised(&keys, &log, 3), &expected);
    }
}

#[test]
fn matched_metadata_decrypts_to_what_was_sent() {
    let tek = Tek::from_bytes([42; 16]);
    let key = (tek.clone(), EnIntervalNumber::new(BASE + 144), 144);
    let (rpik, aemk) = tek.rpik_and_aemk();
    let j = EnIntervalNumber::new(BASE + 200);
    let rpi = rpik.rpi(j);
    let sent = BluetoothMetadata::v1(-17);
    let index = SightingIndex::new(vec![Sighting {
        rpi,
        aem: aemk.encrypt(&rpi, sent),
        rssi: -80,
        at: j.to_unix_seconds() + 10,
        seconds: 200,
    }]);
    let m = index.match_keys([&key], 0);
    assert_eq!(m.len(), 1);
    let d = index.decrypt_hits(&tek, &m[0]);
    assert_eq!(d[0].metadata, sent);
    assert_eq!(d[0].attenuation_db, 63); // -17 - (-80)
}
