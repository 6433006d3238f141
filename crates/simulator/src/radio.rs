//! Bluetooth as phones do it: what one phone hears of another during an
//! encounter.
//!
//! # Advertising
//!
//! A phone broadcasts `RPI(j)` and the AEM of its current Temporary Exposure
//! Key, where `j` is the 10-minute interval in which it last changed its
//! identifier. It changes identifier every 10 to 20 minutes (about every 15,
//! as the Bluetooth address rotates) and always at 00:00 UTC, when the key
//! changes. The RPI heard at any moment is therefore that of the current or
//! the previous interval — well inside the matcher's ±2 hour tolerance.
//!
//! # Scanning
//!
//! A phone scans every 4 minutes (240 s, the device's
//! `SCAN_INTERVAL_SECONDS`) at a phase of its own; each scan that hears a
//! phone records one sighting standing for the 240 s since the last scan.
//! A scan misses a phone in range with the model's `scan_miss` probability.
//!
//! # Signal
//!
//! ```text
//! path loss(d)  = 55 dB + 20·log10(d / 1 m)          (device::meet::attenuation_db)
//!               + place offset                        (train −4 dB: the metal car reflects;
//!                                                      home at night +6 dB: walls; shop +2 dB)
//!               + body shadow                         (probability 0.3 per 10-minute stretch,
//!                                                      4 to 14 dB)
//! RSSI          = advertised TX + tx_error(sender) − path loss + rx_error(receiver)
//!               + N(0, 3 dB) per scan
//! heard when RSSI ≥ the receiver's sensitivity, and the scan did not miss
//! ```
//!
//! The receiver's estimate of the attenuation is `advertised TX − RSSI` (the
//! matcher computes it from the decrypted metadata). For a pair of the same
//! model, no shadow and no noise this gives the device's table:
//!
//! | distance | 0.5 m | 1 m | 2 m | 4 m | 8 m |
//! |---|---|---|---|---|---|
//! | attenuation | 49 dB | 55 dB | 61 dB | 67 dB | 73 dB |
//! | COCOA bucket (46 / 60 / 65) | near ×2.5 | near ×2.5 | medium ×1.3 | other ×0.01 | other ×0.01 |
//! | 20 minutes (5 scans, 1,200 s) scores | 3,000 | 3,000 | 1,560 | 12 | 12 |
//!
//! so with COCOA's day rule (score ≥ 1,350 and ≥ 900 s seen) 20 minutes at
//! 1 m is a contact and 20 minutes at 4 m is not (tested below, and with
//! noise in the scenario tests).

use std::collections::HashMap;

use en_protocol::crypto::RpiCipher;
use en_protocol::keys::{Aemk, BluetoothMetadata};
use en_protocol::matcher::Sighting;
use en_protocol::time::{EN_INTERVAL_SECONDS, EnIntervalNumber, TEK_ROLLING_PERIOD};

use crate::config::{RadioParams, SimConfig};
use crate::device_adapter::{daily_key, sighting};
use crate::encounters::{Encounter, Place};
use crate::phones::PhoneModel;
use crate::rng::{Purpose, Rng};
use crate::time::{Calendar, DAY};

/// Radio offset of a place, dB added to the path loss.
pub fn place_offset_db(place: Place) -> f64 {
    match place {
        Place::Train => -4.0,
        Place::HomeNight => 6.0,
        Place::Shop => 2.0,
        _ => 0.0,
    }
}

/// Path loss at `distance_m` for the reference pair: the device's
/// log-distance model.
pub fn path_loss_db(distance_m: f64) -> f64 {
    device::meet::attenuation_db(distance_m) as f64
}

/// Mean RSSI a `receiver` measures from a `sender` at `distance_m` in
/// `place`, before shadow and noise.
pub fn mean_rssi(sender: &PhoneModel, receiver: &PhoneModel, distance_m: f64, place: Place) -> f64 {
    f64::from(sender.advertised_tx_dbm) + sender.tx_error_db
        - (path_loss_db(distance_m) + place_offset_db(place))
        + receiver.rx_error_db
}

/// When a phone changes identifier during UTC day `day` (Unix days): Unix
/// seconds of each change, from 00:00 UTC, every 10 to 20 minutes.
pub fn rotation_starts(seed: u64, phone: u32, day: i64, params: &RadioParams) -> Vec<i64> {
    let mut rng = Rng::new(seed, Purpose::Rotation, &[u64::from(phone), day as u64]);
    let mut out = Vec::with_capacity(100);
    let end = (day + 1) * DAY;
    let mut t = day * DAY;
    while t < end {
        out.push(t);
        t += rng.between(
            u64::from(params.rotation_min_seconds),
            u64::from(params.rotation_max_seconds),
        ) as i64;
    }
    out
}

/// One phone's broadcasts on one UTC day, as far as they were needed.
struct SenderDay {
    rotations: Vec<i64>,
    rpi: RpiCipher,
    aemk: Aemk,
    tx: i8,
}

/// What senders broadcast, derived once per sender and day for one
/// receiver's log.
pub struct Broadcasts<'a> {
    config: &'a SimConfig,
    days: HashMap<(u32, i64), SenderDay>,
}

impl std::fmt::Debug for Broadcasts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broadcasts")
            .field("days", &self.days.len())
            .finish()
    }
}

impl<'a> Broadcasts<'a> {
    /// An empty cache.
    pub fn new(config: &'a SimConfig) -> Self {
        Self {
            config,
            days: HashMap::new(),
        }
    }

    /// What `phone` (advertising `tx`) broadcast at Unix second `t`: the
    /// RPI of the interval of its last rotation, and the AEM of its metadata.
    pub fn at(&mut self, phone: u32, tx: i8, t: i64) -> (en_protocol::Rpi, en_protocol::Aem) {
        let day = t.div_euclid(DAY);
        let config = self.config;
        let sd = self.days.entry((phone, day)).or_insert_with(|| {
            let key = daily_key(config.seed, phone, day);
            let (rpik, aemk) = key.tek.rpik_and_aemk();
            SenderDay {
                rotations: rotation_starts(config.seed, phone, day, &config.radio),
                rpi: RpiCipher::new(&rpik),
                aemk,
                tx,
            }
        });
        let i = sd.rotations.partition_point(|&r| r <= t).saturating_sub(1);
        let started = sd.rotations.get(i).copied().unwrap_or(day * DAY);
        let j = EnIntervalNumber::new((started / EN_INTERVAL_SECONDS) as u32);
        let rpi = sd.rpi.rpi(j);
        let aem = sd.aemk.encrypt(&rpi, BluetoothMetadata::v1(sd.tx));
        (rpi, aem)
    }

    /// Sender-days derived so far.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Whether nothing was derived.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
}

/// Estimated attenuation against true distance, in whole dB (integers, so
/// that sums are the same whatever order threads add them in).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttenuationBin {
    /// Sightings.
    pub count: u64,
    /// Sum of estimated attenuations, dB.
    pub sum_db: i64,
    /// Sum of squares, dB².
    pub sum_sq_db: i64,
    /// Sightings per COCOA bucket: immediate, near, medium, other.
    pub buckets: [u64; 4],
}

/// Upper bounds of the distance bins of [`AttenuationBin`]s, metres.
pub const DISTANCE_BINS_M: [f64; 8] = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, f64::INFINITY];

/// The bin of a distance.
pub fn distance_bin(distance_m: f64) -> usize {
    DISTANCE_BINS_M
        .iter()
        .position(|&b| distance_m <= b)
        .unwrap_or(DISTANCE_BINS_M.len() - 1)
}

impl AttenuationBin {
    /// Adds one estimate.
    pub fn add(&mut self, attenuation_db: i64, thresholds: [u8; 3]) {
        self.count += 1;
        self.sum_db += attenuation_db;
        self.sum_sq_db += attenuation_db * attenuation_db;
        let b = thresholds
            .iter()
            .position(|&t| attenuation_db <= i64::from(t))
            .unwrap_or(3);
        self.buckets[b] += 1;
    }

    /// Adds another bin.
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum_db += other.sum_db;
        self.sum_sq_db += other.sum_sq_db;
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }

    /// Mean, dB.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_db as f64 / self.count as f64)
    }

    /// Standard deviation, dB.
    pub fn sd(&self) -> Option<f64> {
        let m = self.mean()?;
        Some(
            (self.sum_sq_db as f64 / self.count as f64 - m * m)
                .max(0.0)
                .sqrt(),
        )
    }
}

/// Everything needed to hear an encounter.
#[derive(Debug, Clone, Copy)]
pub struct Ear<'a> {
    /// The run.
    pub config: &'a SimConfig,
    /// Its calendar.
    pub calendar: &'a Calendar,
}

impl Ear<'_> {
    /// The sightings `receiver` (model `rx`, scanning at `scan_phase`)
    /// records of `sender` (model `tx`) during encounter `id`, appended to
    /// `out`; the estimated attenuations are added to `stats` by distance.
    #[allow(clippy::too_many_arguments)]
    pub fn hear(
        &self,
        id: u32,
        e: &Encounter,
        receiver: u32,
        rx: &PhoneModel,
        scan_phase: u16,
        sender: u32,
        tx: &PhoneModel,
        broadcasts: &mut Broadcasts<'_>,
        out: &mut Vec<Sighting>,
        stats: Option<&mut [AttenuationBin]>,
    ) {
        let radio = &self.config.radio;
        let interval = i64::from(radio.scan_interval_seconds);
        let direction = u64::from(receiver == e.b);
        let mut rng = Rng::new(
            self.config.seed,
            Purpose::Radio,
            &[u64::from(id), direction],
        );
        let start = self.calendar.unix(e.start());
        let end = self.calendar.unix(e.end());
        let phase = i64::from(scan_phase) % interval;
        // First scan at or after the start: t ≡ phase (mod interval).
        let mut t = start + (phase - start).rem_euclid(interval);
        let mean = mean_rssi(tx, rx, e.distance_m(), e.place);
        let mut slot = i64::MIN;
        let mut shadow = 0.0;
        let thresholds = self.config.scoring.thresholds();
        let mut stats = stats;
        let bin = distance_bin(e.distance_m());
        while t < end {
            let this_slot = (t - start) / EN_INTERVAL_SECONDS;
            if this_slot != slot {
                slot = this_slot;
                shadow = if rng.chance(radio.shadow_probability) {
                    rng.uniform(radio.shadow_min_db, radio.shadow_max_db)
                } else {
                    0.0
                };
            }
            let missed = rng.chance(rx.scan_miss);
            let rssi = mean - shadow + radio.noise_sd_db * rng.normal();
            if !missed && rssi >= rx.sensitivity_dbm {
                let (rpi, aem) = broadcasts.at(sender, tx.advertised_tx_dbm, t);
                let s = sighting(rpi, aem, rssi.round() as i64, t, interval);
                out.push(s);
                if let Some(stats) = stats.as_deref_mut() {
                    let att = i64::from(tx.advertised_tx_dbm) - i64::from(s.rssi);
                    stats[bin].add(att, thresholds);
                }
            }
            t += interval;
        }
    }
}

/// First interval of UTC day `day` (Unix days).
pub fn day_interval(day: i64) -> EnIntervalNumber {
    EnIntervalNumber::new((day as u32).saturating_mul(TEK_ROLLING_PERIOD))
}

#[cfg(test)]
mod tests {
    use crate::scoring::{Scoring, android_window};
    use en_protocol::matcher::SightingIndex;

    use super::*;
    use crate::phones::default_models;

    #[test]
    fn the_documented_attenuations() {
        let m = &default_models()[0];
        let att = |d: f64| f64::from(m.advertised_tx_dbm) - mean_rssi(m, m, d, Place::Social);
        let got: Vec<f64> = [0.5, 1.0, 2.0, 4.0, 8.0].iter().map(|&d| att(d)).collect();
        assert_eq!(got, [49.0, 55.0, 61.0, 67.0, 73.0]);
        assert_eq!(
            att(1.0) - 4.0,
            f64::from(m.advertised_tx_dbm) - mean_rssi(m, m, 1.0, Place::Train)
        );
    }

    #[test]
    fn rotations_cover_the_day_every_10_to_20_minutes() {
        let p = RadioParams::default();
        let r = rotation_starts(7, 3, 18_600, &p);
        assert_eq!(r[0], 18_600 * DAY);
        assert!(r.windows(2).all(|w| (600..=1200).contains(&(w[1] - w[0]))));
        assert!(*r.last().unwrap() < 18_601 * DAY);
        assert_eq!(r, rotation_starts(7, 3, 18_600, &p));
    }

    /// The decision on one encounter between two phones of one model,
    /// through the real matcher and scoring.
    fn decide(minutes: f64, distance_m: f64, noise: bool) -> bool {
        let mut config = SimConfig::default();
        config.radio.shadow_probability = 0.0;
        let mut model = default_models()[1].clone();
        model.scan_miss = 0.0;
        if !noise {
            config.radio.noise_sd_db = 0.0;
        }
        let calendar = Calendar::new(config.start_date);
        let e = Encounter::new(
            0,
            1,
            2 * DAY + 3 * 3600,
            (minutes * 60.0) as i64,
            distance_m,
            Place::Social,
        )
        .unwrap();
        let ear = Ear {
            config: &config,
            calendar: &calendar,
        };
        let mut b = Broadcasts::new(&config);
        let mut log = Vec::new();
        ear.hear(0, &e, 1, &model, 17, 0, &model, &mut b, &mut log, None);
        let index = SightingIndex::new(log);
        let day = calendar.utc_day(e.start());
        let key = daily_key(config.seed, 0, day);
        let k = (key.tek.clone(), key.rolling_start, key.rolling_period);
        let Some(m) = index.match_key(&k, 0) else {
            return false;
        };
        let matched = index.decrypt_hits(&key.tek, &m);
        let w: Vec<_> = device::check::japan_day_windows(matched, 1)
            .iter()
            .map(android_window)
            .collect();
        !Scoring::cocoa()
            .contact_days(&w, chrono::NaiveDate::MIN, chrono::NaiveDate::MAX)
            .is_empty()
    }

    #[test]
    fn twenty_minutes_at_1_m_is_a_contact_at_4_m_is_not() {
        assert!(decide(20.0, 1.0, false));
        assert!(decide(20.0, 0.5, false));
        assert!(!decide(20.0, 4.0, false));
        assert!(!decide(10.0, 1.0, false), "3 scans, 720 s < 900 s");
        assert!(!decide(120.0, 8.0, false));
        // With the per-scan noise too.
        assert!(decide(20.0, 1.0, true));
        assert!(!decide(20.0, 4.0, true));
    }

    #[test]
    fn broadcasts_are_the_devices_advertisements() {
        let config = SimConfig::default();
        let mut b = Broadcasts::new(&config);
        let t = 18_600 * DAY + 5000;
        let (rpi, aem) = b.at(4, -8, t);
        let key = daily_key(config.seed, 4, 18_600);
        let rotations = rotation_starts(config.seed, 4, 18_600, &config.radio);
        let started = *rotations.iter().rfind(|&&r| r <= t).unwrap();
        let beacon = key.advertisement(EnIntervalNumber::new((started / 600) as u32), -8);
        assert_eq!((rpi, aem), (beacon.rpi, beacon.aem));
    }
}
