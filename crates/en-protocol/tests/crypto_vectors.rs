//! The Apple/Google Exposure Notification crypto test vectors
//! (`tests/vectors/gaen-crypto-vectors.json`, copied into the repository; provenance in `tests/vectors/README.md`), loaded through serde: every
//! derived key and every one of the 144 RPIs and AEMs must match.

use std::path::PathBuf;

use en_protocol::crypto::{AesBlock, RpiCipher, padded_data};
use en_protocol::{BluetoothMetadata, EnIntervalNumber, Rpi, Tek};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Vectors {
    key_generation_unix_seconds: i64,
    en_interval_number_of_key: u32,
    tek_rolling_period: u32,
    rpik_hkdf_info: String,
    aemk_hkdf_info: String,
    tek: String,
    rpik: String,
    aemk: String,
    ble_metadata: String,
    intervals: Vec<IntervalVector>,
}

#[derive(Debug, Deserialize)]
struct IntervalVector {
    index: u32,
    en_interval_number: u32,
    padded_data: String,
    rpi: String,
    aem: String,
}

fn vectors() -> Vectors {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/gaen-crypto-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("vector file parses")
}

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).expect("hex").try_into().expect("length")
}

#[test]
fn derived_keys_match() {
    let v = vectors();
    assert_eq!(v.rpik_hkdf_info, "EN-RPIK");
    assert_eq!(v.aemk_hkdf_info, "EN-AEMK");
    let tek = Tek::from_bytes(h(&v.tek));
    assert_eq!(tek.rpik().as_bytes(), &h::<16>(&v.rpik));
    assert_eq!(tek.aemk().as_bytes(), &h::<16>(&v.aemk));
    let start = EnIntervalNumber::from_unix_seconds(v.key_generation_unix_seconds).unwrap();
    assert_eq!(start.get(), v.en_interval_number_of_key);
}

#[test]
fn all_144_rpis_and_aems_match() {
    let v = vectors();
    assert_eq!(v.intervals.len(), v.tek_rolling_period as usize);
    let tek = Tek::from_bytes(h(&v.tek));
    let (rpik, aemk) = tek.rpik_and_aemk();
    let metadata = BluetoothMetadata::from_bytes(h(&v.ble_metadata));
    assert_eq!(metadata, BluetoothMetadata::v1(8));
    let start = EnIntervalNumber::new(v.en_interval_number_of_key);
    let batch = rpik.all_rpis(start);
    for (i, iv) in v.intervals.iter().enumerate() {
        assert_eq!(iv.index as usize, i);
        let j = EnIntervalNumber::new(iv.en_interval_number);
        assert_eq!(j.get(), start.get() + i as u32);
        assert_eq!(padded_data(j), h::<16>(&iv.padded_data), "padded data {i}");
        let rpi = Rpi(h(&iv.rpi));
        assert_eq!(rpik.rpi(j), rpi, "single RPI {i}");
        assert_eq!(batch[i], rpi, "batch RPI {i}");
        let aem = aemk.encrypt(&rpi, metadata);
        assert_eq!(aem.0, h::<4>(&iv.aem), "AEM {i}");
        assert_eq!(aemk.decrypt(&rpi, &aem), metadata, "AEM {i} decrypts");
    }
}

#[test]
fn batch_api_matches_vectors_at_any_offset() {
    let v = vectors();
    let rpik = Tek::from_bytes(h(&v.tek)).rpik();
    let cipher = RpiCipher::new(&rpik);
    let mut blocks = vec![AesBlock::default(); 37];
    cipher.rpis_into(
        EnIntervalNumber::new(v.en_interval_number_of_key + 100),
        &mut blocks,
    );
    for (b, iv) in blocks.iter().zip(&v.intervals[100..]) {
        let got: [u8; 16] = (*b).into();
        assert_eq!(got, h::<16>(&iv.rpi));
    }
}

proptest! {
    #[test]
    fn aem_round_trips(tek in any::<[u8; 16]>(), j in any::<u32>(), meta in any::<[u8; 4]>()) {
        let tek = Tek::from_bytes(tek);
        let (rpik, aemk) = tek.rpik_and_aemk();
        let rpi = rpik.rpi(EnIntervalNumber::new(j));
        let m = BluetoothMetadata::from_bytes(meta);
        prop_assert_eq!(m.to_bytes(), meta);
        let aem = aemk.encrypt(&rpi, m);
        prop_assert_eq!(aemk.decrypt(&rpi, &aem), m);
    }

    #[test]
    fn interval_time_round_trips(n in any::<u32>()) {
        let j = EnIntervalNumber::new(n);
        prop_assert_eq!(EnIntervalNumber::from_unix_seconds(j.to_unix_seconds()).unwrap(), j);
        prop_assert_eq!(EnIntervalNumber::from_datetime(j.to_datetime()).unwrap(), j);
        prop_assert_eq!(EnIntervalNumber::from_unix_seconds(j.to_unix_seconds() + 599).unwrap(), j);
    }

    #[test]
    fn distinct_intervals_give_distinct_rpis(tek in any::<[u8; 16]>(), j in 0u32..u32::MAX) {
        let rpik = Tek::from_bytes(tek).rpik();
        prop_assert_ne!(rpik.rpi(EnIntervalNumber::new(j)), rpik.rpi(EnIntervalNumber::new(j + 1)));
    }
}
