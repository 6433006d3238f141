//! Two phones near each other: each records the other's advertisements at
//! the scan rhythm of real phones, with an RSSI from a path-loss model of
//! the distance.
//!
//! # The model
//!
//! Log-distance path loss, free-space exponent:
//!
//! ```text
//! attenuation(d) = 55 dB + 20 · log10(d / 1 m)        (rounded to whole dB)
//! RSSI           = TX power of the sender − attenuation(d)
//! ```
//!
//! | distance | 0.5 m | 1 m | 2 m | 4 m |
//! |---|---|---|---|---|
//! | attenuation | 49 dB | 55 dB | 61 dB | 67 dB |
//! | COCOA bucket (46 / 60 / 65 dB) | near (×2.5) | near (×2.5) | medium (×1.3) | other (×0.01) |
//!
//! Phones scan about every 4 minutes ([`SCAN_INTERVAL_SECONDS`]); a meeting
//! of `m` minutes gives a scan at 0, 4, 8 … minutes while under `m`, each
//! standing for 240 s. With COCOA's day rule (score ≥ 1,350 and ≥ 900 s):
//!
//! - 20 min at 1 m: 5 scans, 1,200 s, score 3,000: a contact;
//! - 15 min at 1 m: 4 scans, 960 s, score 2,400: a contact (the definition:
//!   about 1 m for 15 minutes or more);
//! - 10 min at 1 m: 3 scans, 720 s: not a contact (under 900 s);
//! - 20 min at 2 m: score 1,560: a contact; 15 min at 2 m: 1,248: not;
//! - 20 min at 4 m: score 12: not a contact.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::phone::{Phone, SightingInput};

/// Seconds between two scans of a real phone (about 4 minutes).
pub const SCAN_INTERVAL_SECONDS: i64 = 240;
/// Attenuation at 1 m, dB.
pub const ATTENUATION_AT_1M_DB: f64 = 55.0;
/// Path-loss exponent (free space).
pub const PATH_LOSS_EXPONENT: f64 = 2.0;

/// Attenuation at `distance_m` metres, whole dB.
pub fn attenuation_db(distance_m: f64) -> i64 {
    (ATTENUATION_AT_1M_DB + 10.0 * PATH_LOSS_EXPONENT * distance_m.log10()).round() as i64
}

/// RSSI heard from a sender of `tx_power` at `distance_m`, clamped to −127 dBm.
pub fn rssi_at(tx_power: i8, distance_m: f64) -> i64 {
    (i64::from(tx_power) - attenuation_db(distance_m)).max(-127)
}

/// What a meeting recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeetReport {
    /// Scans (sightings recorded by each phone).
    pub scans: usize,
    /// Seconds each scan stands for.
    pub seconds_per_scan: i64,
    /// Attenuation of the model at the distance, dB.
    pub attenuation_db: i64,
    /// RSSI recorded by the first phone (of the second), dBm.
    pub rssi_a: i64,
    /// RSSI recorded by the second phone (of the first), dBm.
    pub rssi_b: i64,
}

/// The scan times of a meeting of `minutes` from `at`.
pub fn scan_times(at: DateTime<Utc>, minutes: u32) -> Vec<DateTime<Utc>> {
    let total = i64::from(minutes) * 60;
    (0..)
        .map(|n| n * SCAN_INTERVAL_SECONDS)
        .take_while(|s| *s < total)
        .map(|s| at + Duration::seconds(s))
        .collect()
}

/// Phones `a` and `b` spend `minutes` from `at` at `distance_m` metres of
/// each other: each records the other's advertisement at every scan.
pub fn meet(
    a: &mut Phone,
    b: &mut Phone,
    at: DateTime<Utc>,
    minutes: u32,
    distance_m: f64,
) -> Result<MeetReport> {
    if a.home() == b.home() {
        return Err(Error::MeetInvalid {
            reason: "two different homes are needed",
        });
    }
    if !(1..=1440).contains(&minutes) {
        return Err(Error::MeetInvalid {
            reason: "minutes must be 1 to 1440",
        });
    }
    if !(0.1..=100.0).contains(&distance_m) {
        return Err(Error::MeetInvalid {
            reason: "distance must be 0.1 to 100 m",
        });
    }
    let times = scan_times(at, minutes);
    let rssi_a = rssi_at(b.settings().tx_power, distance_m);
    let rssi_b = rssi_at(a.settings().tx_power, distance_m);
    let mut heard_by_a = Vec::with_capacity(times.len());
    let mut heard_by_b = Vec::with_capacity(times.len());
    for t in &times {
        let from_b = b.beacon(*t)?;
        let from_a = a.beacon(*t)?;
        heard_by_a.push(SightingInput {
            rpi: from_b.rpi,
            aem: from_b.aem,
            rssi: rssi_a,
            at: *t,
            seconds: SCAN_INTERVAL_SECONDS,
        });
        heard_by_b.push(SightingInput {
            rpi: from_a.rpi,
            aem: from_a.aem,
            rssi: rssi_b,
            at: *t,
            seconds: SCAN_INTERVAL_SECONDS,
        });
    }
    // Check both before writing either, so a bad meeting records nothing.
    for s in &heard_by_a {
        a.check_sighting(s)?;
    }
    for s in &heard_by_b {
        b.check_sighting(s)?;
    }
    a.record_sightings(&heard_by_a)?;
    b.record_sightings(&heard_by_b)?;
    Ok(MeetReport {
        scans: times.len(),
        seconds_per_scan: SCAN_INTERVAL_SECONDS,
        attenuation_db: attenuation_db(distance_m),
        rssi_a,
        rssi_b,
    })
}

#[cfg(test)]
mod tests {
    use en_protocol::exposure_configuration::DailySummariesConfig;
    use en_protocol::risk_calculation::{DayValues, RiskCalculationConfiguration, RiskLevel};

    use super::*;

    #[test]
    fn the_documented_attenuations() {
        let got: Vec<i64> = [0.5, 1.0, 2.0, 4.0]
            .iter()
            .map(|d| attenuation_db(*d))
            .collect();
        assert_eq!(got, [49, 55, 61, 67]);
        assert_eq!(rssi_at(-8, 1.0), -63);
        assert_eq!(rssi_at(-100, 100.0), -127);
    }

    /// COCOA's day rule on a meeting, straight from the model.
    fn is_contact(minutes: u32, distance_m: f64) -> bool {
        let c = DailySummariesConfig::cocoa();
        let scans = scan_times(DateTime::UNIX_EPOCH, minutes).len();
        let db = attenuation_db(distance_m) as u8;
        let weighted = (scans as f64) * SCAN_INTERVAL_SECONDS as f64 * c.attenuation_weight(db);
        let values = DayValues::compute(
            weighted,
            weighted,
            &vec![(db, SCAN_INTERVAL_SECONDS as u32); scans],
        );
        RiskCalculationConfiguration::cocoa().decide(&values) == RiskLevel::High
    }

    #[test]
    fn cocoas_thresholds_on_the_model() {
        assert!(is_contact(20, 1.0));
        assert!(is_contact(15, 1.0));
        assert!(!is_contact(10, 1.0));
        assert!(!is_contact(20, 4.0));
        assert!(is_contact(20, 2.0));
        assert!(!is_contact(15, 2.0));
        assert!(is_contact(20, 0.5));
        assert_eq!(scan_times(DateTime::UNIX_EPOCH, 20).len(), 5);
        assert_eq!(scan_times(DateTime::UNIX_EPOCH, 10).len(), 3);
    }
}
