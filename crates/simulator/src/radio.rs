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
//! A phone scans every `scan.interval_seconds` plus up to `scan.jitter_seconds`
//! (4 to 5 minutes) at a phase of its own; each scan that hears a phone is one
//! scan instance standing for the seconds since the previous scan
//! (`secondsSinceLastScan`). A scan misses a phone in range with the model's
//! `scan_miss` probability.
//!
//! # Signal: the log-normal fit of measured attenuation
//!
//! ```text
//! one sample      ln A ~ N(μ(d), σ²),  μ(d) = 0.21·ln d + 3.92,  σ² = 0.33
//!                 (Lovett et al., arXiv:2007.05057, MIT PACT data; A in dB, d in m)
//! + placement     of each phone: face 0 / desk +3 / bag +8 dB (assumed)
//! + place         train −4 / home at night +6 / shop +2 dB (assumed)
//! RSSI            = advertised TX + tx_error(sender) − A + rx_error(receiver)
//! heard           when RSSI ≥ the receiver's sensitivity, and the scan did not miss
//! scan instance   samples_per_scan samples; typicalAttenuationDb = the mean of the
//!                 heard samples' TX − RSSI, minAttenuationDb = their minimum
//! ```
//!
//! The parameters are in `crates/simulator/data/radio_model.toml`
//! ([`crate::radio_model`]), replaceable with an authority's own measurements.
//! The phone records one sighting per scan instance, with the RSSI of the
//! typical attenuation (the matcher computes `TX − RSSI` from the decrypted
//! metadata); COCOA's scoring uses only the typical attenuation.
//!
//! With σ² = 0, one model and no placement, 20 minutes at 1 m (50.4 dB: near,
//! ×2.5; 5 scans, 1,200 s, score 3,000) is a contact under COCOA's rule and
//! 20 minutes at 4 m (67.4 dB: other, ×0.01) is not; 20 minutes at 0.5 m
//! (43.6 dB: immediate, weighted only 1.0 by COCOA) is not either, 30 are
//! (tested below).

use std::collections::HashMap;

use en_protocol::crypto::RpiCipher;
use en_protocol::keys::{Aemk, BluetoothMetadata};
use en_protocol::matcher::Sighting;
use en_protocol::time::{EN_INTERVAL_SECONDS, EnIntervalNumber, TEK_ROLLING_PERIOD};

use crate::config::{RadioParams, SimConfig};
use crate::device_adapter::{daily_key, sighting};
use crate::encounters::{Encounter, Place};
use crate::phones::PhoneModel;
use crate::radio_model::PlacementParams;
use crate::rng::{Purpose, Rng};
use crate::time::{Calendar, DAY};

/// Where a phone is during a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// In the hand, at the face.
    Face,
    /// Flat on a desk or a table.
    Desk,
    /// In a bag or a pocket.
    Bag,
}

impl Placement {
    /// Its extra attenuation, dB.
    pub fn offset_db(self, p: &PlacementParams) -> f64 {
        match self {
            Self::Face => p.face_db,
            Self::Desk => p.desk_db,
            Self::Bag => p.bag_db,
        }
    }

    /// One drawn by the population's shares.
    pub fn draw(p: &PlacementParams, rng: &mut Rng) -> Self {
        let total = p.face_share + p.desk_share + p.bag_share;
        let x = rng.uniform(0.0, total);
        if x < p.face_share {
            Self::Face
        } else if x < p.face_share + p.desk_share {
            Self::Desk
        } else {
            Self::Bag
        }
    }
}

impl std::str::FromStr for Placement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "face" => Ok(Self::Face),
            "desk" => Ok(Self::Desk),
            "bag" => Ok(Self::Bag),
            other => Err(format!("placement {other:?}: expected face, desk or bag")),
        }
    }
}

/// Radio offset of a place, dB added to the attenuation.
pub fn place_offset_db(place: Place, radio: &RadioParams) -> f64 {
    match place {
        Place::Train => radio.place.train_db,
        Place::HomeNight => radio.place.home_night_db,
        Place::Shop => radio.place.shop_db,
        _ => 0.0,
    }
}

/// One sample's attenuation at `distance_m`, before placement and place, dB:
/// `exp(μ(d) + σ·z)` for a standard normal `z`.
pub fn sample_attenuation_db(radio: &RadioParams, distance_m: f64, z: f64) -> f64 {
    (radio.mu(distance_m) + radio.attenuation.variance.sqrt() * z).exp()
}

/// One scan instance as the EN API reports it, dB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanReading {
    /// Mean of the heard samples' estimated attenuation.
    pub typical_db: f64,
    /// Their minimum.
    pub min_db: f64,
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
            u64::from(params.identifier.rotation_min_seconds),
            u64::from(params.identifier.rotation_max_seconds),
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
    /// Both phones' placement (a trial); `None`: drawn per encounter and
    /// phone by the model's shares.
    pub placement: Option<Placement>,
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
        let interval = i64::from(radio.scan.interval_seconds);
        let jitter = u64::from(radio.scan.jitter_seconds);
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
        let (p_tx, p_rx) = match self.placement {
            Some(p) => (p, p),
            None => (
                Placement::draw(&radio.placement, &mut rng),
                Placement::draw(&radio.placement, &mut rng),
            ),
        };
        let offset = p_tx.offset_db(&radio.placement)
            + p_rx.offset_db(&radio.placement)
            + place_offset_db(e.place, radio);
        let advertised = f64::from(tx.advertised_tx_dbm);
        let calibration = tx.tx_error_db + rx.rx_error_db;
        let thresholds = self.config.scoring.thresholds();
        let mut stats = stats;
        let bin = distance_bin(e.distance_m());
        let mut previous = t - interval;
        while t < end {
            let missed = rng.chance(rx.scan_miss);
            let mut heard = 0u32;
            let mut sum = 0.0;
            let mut min = f64::INFINITY;
            for _ in 0..radio.scan.samples_per_scan {
                let a = sample_attenuation_db(radio, e.distance_m(), rng.normal()) + offset;
                let rssi = advertised + calibration - a;
                if rssi >= rx.sensitivity_dbm {
                    // What the receiver estimates: advertised TX − RSSI.
                    let estimated = advertised - rssi;
                    heard += 1;
                    sum += estimated;
                    min = min.min(estimated);
                }
            }
            if !missed && heard > 0 {
                let reading = ScanReading {
                    typical_db: sum / f64::from(heard),
                    min_db: min,
                };
                let (rpi, aem) = broadcasts.at(sender, tx.advertised_tx_dbm, t);
                let rssi = (advertised - reading.typical_db).round() as i64;
                let s = sighting(rpi, aem, rssi, t, t - previous);
                out.push(s);
                if let Some(stats) = stats.as_deref_mut() {
                    let att = i64::from(tx.advertised_tx_dbm) - i64::from(s.rssi);
                    stats[bin].add(att, thresholds);
                }
            }
            previous = t;
            t += interval + rng.below(jitter + 1) as i64;
        }
    }
}

/// First interval of UTC day `day` (Unix days).
pub fn day_interval(day: i64) -> EnIntervalNumber {
    EnIntervalNumber::new((day as u32).saturating_mul(TEK_ROLLING_PERIOD))
}

#[cfg(test)]
mod tests {
    use crate::scoring::Scoring;
    use en_protocol::matcher::SightingIndex;

    use super::*;
    use crate::phones::default_models;

    #[test]
    fn samples_follow_the_log_normal_fit() {
        let r = RadioParams::default();
        let mut rng = Rng::new(3, Purpose::Radio, &[1]);
        for d in [0.5, 1.0, 4.0] {
            let n = 20_000;
            let logs: Vec<f64> = (0..n)
                .map(|_| sample_attenuation_db(&r, d, rng.normal()).ln())
                .collect();
            let mean = logs.iter().sum::<f64>() / f64::from(n);
            let var = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(n);
            assert!(
                (mean - (0.21 * f64::ln(d) + 3.92)).abs() < 0.02,
                "{d}: {mean}"
            );
            assert!((var - 0.33).abs() < 0.02, "{d}: {var}");
        }
        assert_eq!(place_offset_db(Place::Train, &r), -4.0);
        assert_eq!(Placement::Bag.offset_db(&r.placement), 8.0);
        assert_eq!("desk".parse::<Placement>(), Ok(Placement::Desk));
        assert!("pocket".parse::<Placement>().is_err());
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
    fn decide(minutes: f64, distance_m: f64) -> bool {
        let mut config = SimConfig::default();
        config.radio.attenuation.variance = 0.0;
        config.radio.scan.jitter_seconds = 0;
        let mut model = default_models()[1].clone();
        model.scan_miss = 0.0;
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
            placement: Some(Placement::Face),
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
        let w = device::risk::japan_day_windows(
            matched,
            en_protocol::exposure_configuration::ReportType::ConfirmedTest,
        );
        !Scoring::cocoa()
            .contact_days(&w, chrono::NaiveDate::MIN, chrono::NaiveDate::MAX)
            .is_empty()
    }

    #[test]
    fn twenty_minutes_at_1_m_is_a_contact_at_4_m_is_not() {
        assert!(decide(20.0, 1.0));
        // 0.5 m is 43.6 dB, COCOA's immediate bucket, weighted 1.0 (less than
        // near's 2.5): 20 minutes score 1,200 < 1,350, 30 minutes 1,800.
        assert!(!decide(20.0, 0.5));
        assert!(decide(30.0, 0.5));
        assert!(!decide(20.0, 4.0));
        assert!(!decide(10.0, 1.0), "3 scans, 720 s < 900 s");
        assert!(!decide(120.0, 8.0));
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
