//! ENv2 risk scoring as pure functions: matched sightings → scan instances →
//! exposure windows → daily summaries → the decision to notify.
//!
//! The shape follows the Exposure Notifications v2 API (`ScanInstance`,
//! `ExposureWindow`, `DailySummariesConfig`, `DailySummary`); the default
//! configuration is COCOA's v2 configuration (PROTOCOLS.md §4):
//!
//! > attenuation bucket thresholds 46 / 60 / 65 dB, weights 1.0 / 2.5 / 1.3 /
//! > 0.01 (immediate / near / medium / other); a day counts as a contact when
//! > the weighted score sum is >= 1,350 and at least 900 s were observed.
//! > Definition of a contact: about 1 m for 15 minutes or more.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::matcher::MatchedSighting;

/// A window of an exposure lasts at most 30 minutes (ENv2).
pub const MAX_WINDOW_SECONDS: i64 = 30 * 60;

/// Report type values of the export format (`TemporaryExposureKey.report_type`).
pub mod report_type {
    /// Unknown / not set.
    pub const UNKNOWN: i32 = 0;
    /// Confirmed by a test.
    pub const CONFIRMED_TEST: i32 = 1;
    /// Confirmed by clinical diagnosis.
    pub const CONFIRMED_CLINICAL_DIAGNOSIS: i32 = 2;
    /// Self-reported.
    pub const SELF_REPORT: i32 = 3;
    /// Recursive (unused here).
    pub const RECURSIVE: i32 = 4;
    /// Revoked: the key must be ignored.
    pub const REVOKED: i32 = 5;
}

/// One scan during which the key was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanInstance {
    /// Typical attenuation during the scan, dB.
    pub typical_attenuation_db: u8,
    /// Minimum attenuation during the scan, dB.
    pub min_attenuation_db: u8,
    /// Seconds since the previous scan: how long this scan stands for.
    pub seconds_since_last_scan: u32,
}

/// Infectiousness of the sender on the day of the exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Infectiousness {
    /// Not infectious: the window scores 0.
    None,
    /// Standard.
    Standard,
    /// High.
    High,
}

/// Up to 30 minutes of sightings of one diagnosis key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExposureWindow {
    /// The UTC day of the window's first scan.
    pub date: NaiveDate,
    /// The key's report type (export wire value; 0 when missing).
    pub report_type: i32,
    /// The sender's infectiousness.
    pub infectiousness: Infectiousness,
    /// The scans, in time order.
    pub scan_instances: Vec<ScanInstance>,
}

/// Weights and thresholds of the daily summaries (ENv2 `DailySummariesConfig`)
/// and the day decision COCOA put on top of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// Upper bounds (inclusive) of the immediate, near and medium buckets, dB.
    pub attenuation_bucket_thresholds_db: [u8; 3],
    /// Weights of the immediate, near, medium and other buckets.
    pub attenuation_bucket_weights: [f64; 4],
    /// Weights of report types confirmed test, clinical diagnosis, self
    /// report and recursive.
    pub report_type_weights: [f64; 4],
    /// Report type assumed when a key has none.
    pub report_type_when_missing: i32,
    /// Weights of standard and high infectiousness.
    pub infectiousness_weights: [f64; 2],
    /// Windows scoring below this are dropped.
    pub minimum_window_score: f64,
    /// A day is a contact when its score sum reaches this...
    pub minimum_daily_score_sum: f64,
    /// ...and at least this many seconds were observed that day.
    pub minimum_daily_observed_seconds: u32,
}

impl Default for ScoringConfig {
    /// COCOA's v2 configuration (PROTOCOLS.md §4).
    fn default() -> Self {
        Self {
            attenuation_bucket_thresholds_db: [46, 60, 65],
            attenuation_bucket_weights: [1.0, 2.5, 1.3, 0.01],
            report_type_weights: [1.0, 1.0, 1.0, 1.0],
            report_type_when_missing: report_type::CONFIRMED_TEST,
            infectiousness_weights: [1.0, 1.0],
            minimum_window_score: 0.0,
            minimum_daily_score_sum: 1350.0,
            minimum_daily_observed_seconds: 900,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoringConfigError {
    /// Thresholds must rise strictly.
    #[error("attenuation thresholds must be strictly increasing")]
    ThresholdsNotIncreasing,
    /// ENv2 bounds weights to 0..=2.5 and finite.
    #[error("weights must be finite and between 0 and 2.5")]
    WeightOutOfRange,
}

impl ScoringConfig {
    /// Checks the configuration as the ENv2 API does.
    pub fn validate(&self) -> Result<(), ScoringConfigError> {
        let [a, b, c] = self.attenuation_bucket_thresholds_db;
        if !(a < b && b < c) {
            return Err(ScoringConfigError::ThresholdsNotIncreasing);
        }
        let weights = self
            .attenuation_bucket_weights
            .iter()
            .chain(&self.report_type_weights)
            .chain(&self.infectiousness_weights);
        if weights
            .into_iter()
            .any(|w| !w.is_finite() || !(0.0..=2.5).contains(w))
        {
            return Err(ScoringConfigError::WeightOutOfRange);
        }
        Ok(())
    }

    /// The weight of the bucket an attenuation falls in.
    pub fn attenuation_weight(&self, attenuation_db: u8) -> f64 {
        let t = self.attenuation_bucket_thresholds_db;
        let w = self.attenuation_bucket_weights;
        if attenuation_db <= t[0] {
            w[0]
        } else if attenuation_db <= t[1] {
            w[1]
        } else if attenuation_db <= t[2] {
            w[2]
        } else {
            w[3]
        }
    }

    /// The weight of a report type; revoked and unknown types weigh 0.
    pub fn report_type_weight(&self, report_type: i32) -> f64 {
        let rt = if report_type == report_type::UNKNOWN {
            self.report_type_when_missing
        } else {
            report_type
        };
        match rt {
            report_type::CONFIRMED_TEST => self.report_type_weights[0],
            report_type::CONFIRMED_CLINICAL_DIAGNOSIS => self.report_type_weights[1],
            report_type::SELF_REPORT => self.report_type_weights[2],
            report_type::RECURSIVE => self.report_type_weights[3],
            _ => 0.0,
        }
    }

    /// The weight of an infectiousness level.
    pub fn infectiousness_weight(&self, i: Infectiousness) -> f64 {
        match i {
            Infectiousness::None => 0.0,
            Infectiousness::Standard => self.infectiousness_weights[0],
            Infectiousness::High => self.infectiousness_weights[1],
        }
    }
}

/// Splits the matched sightings of one key into exposure windows of at most
/// 30 minutes, one scan instance per sighting.
pub fn exposure_windows(
    sightings: &[MatchedSighting],
    report_type: i32,
    infectiousness: Infectiousness,
) -> Vec<ExposureWindow> {
    let mut sorted: Vec<&MatchedSighting> = sightings.iter().collect();
    sorted.sort_by_key(|m| m.sighting.at);
    let mut windows: Vec<(i64, ExposureWindow)> = Vec::new();
    for m in sorted {
        let scan = ScanInstance {
            typical_attenuation_db: m.attenuation_db,
            min_attenuation_db: m.attenuation_db,
            seconds_since_last_scan: m.sighting.seconds,
        };
        match windows.last_mut() {
            Some((start, w)) if m.sighting.at - *start < MAX_WINDOW_SECONDS => {
                w.scan_instances.push(scan)
            }
            _ => windows.push((
                m.sighting.at,
                ExposureWindow {
                    date: utc_date(m.sighting.at),
                    report_type,
                    infectiousness,
                    scan_instances: vec![scan],
                },
            )),
        }
    }
    windows.into_iter().map(|(_, w)| w).collect()
}

fn utc_date(unix_seconds: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp(unix_seconds, 0)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .date_naive()
}

/// Score of one window: `Σ seconds × attenuation weight`, times the report
/// type and infectiousness weights.
pub fn window_score(w: &ExposureWindow, config: &ScoringConfig) -> f64 {
    weighted_duration(w, config)
        * config.report_type_weight(w.report_type)
        * config.infectiousness_weight(w.infectiousness)
}

/// `Σ seconds × attenuation weight` of one window.
pub fn weighted_duration(w: &ExposureWindow, config: &ScoringConfig) -> f64 {
    w.scan_instances
        .iter()
        .map(|s| {
            f64::from(s.seconds_since_last_scan)
                * config.attenuation_weight(s.typical_attenuation_db)
        })
        .sum()
}

/// What one UTC day of exposures adds up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailySummary {
    /// The UTC day.
    pub date: NaiveDate,
    /// The highest window score of the day.
    pub maximum_score: f64,
    /// The sum of the window scores of the day.
    pub score_sum: f64,
    /// The sum of the windows' weighted durations.
    pub weighted_duration_sum: f64,
    /// Seconds observed that day (unweighted scan time of counted windows).
    pub observed_seconds: u32,
    /// Number of exposure windows counted.
    pub windows: u32,
}

/// Folds windows into one summary per UTC day, in date order. Windows that
/// score below `minimum_window_score` or score 0 are not counted.
pub fn daily_summaries(windows: &[ExposureWindow], config: &ScoringConfig) -> Vec<DailySummary> {
    let mut days: BTreeMap<NaiveDate, DailySummary> = BTreeMap::new();
    for w in windows {
        let score = window_score(w, config);
        if score <= 0.0 || score < config.minimum_window_score {
            continue;
        }
        let d = days.entry(w.date).or_insert_with(|| DailySummary {
            date: w.date,
            maximum_score: 0.0,
            score_sum: 0.0,
            weighted_duration_sum: 0.0,
            observed_seconds: 0,
            windows: 0,
        });
        d.maximum_score = d.maximum_score.max(score);
        d.score_sum += score;
        d.weighted_duration_sum += weighted_duration(w, config);
        d.observed_seconds = d.observed_seconds.saturating_add(
            w.scan_instances
                .iter()
                .map(|s| s.seconds_since_last_scan)
                .sum(),
        );
        d.windows += 1;
    }
    days.into_values().collect()
}

/// COCOA's day decision: "a day counts as a contact when the weighted score
/// sum is >= 1,350 and at least 900 s were observed" (with the defaults).
pub fn is_contact_day(day: &DailySummary, config: &ScoringConfig) -> bool {
    day.score_sum >= config.minimum_daily_score_sum
        && day.observed_seconds >= config.minimum_daily_observed_seconds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Aem, BluetoothMetadata, Rpi};
    use crate::matcher::Sighting;
    use crate::time::EnIntervalNumber;

    const T0: i64 = 1_608_076_800; // 2020-12-16 00:00 UTC

    fn seen(at: i64, attenuation_db: u8, seconds: u32) -> MatchedSighting {
        MatchedSighting {
            sighting: Sighting {
                rpi: Rpi([0; 16]),
                aem: Aem([0; 4]),
                rssi: -50,
                at,
                seconds,
            },
            interval: EnIntervalNumber::new((at / 600) as u32),
            metadata: BluetoothMetadata::v1(0),
            attenuation_db,
        }
    }

    fn contact(start: i64, minutes: i64, attenuation_db: u8) -> Vec<MatchedSighting> {
        // A scan every 4 minutes, as phones do.
        (0..minutes / 4)
            .map(|n| seen(start + n * 240, attenuation_db, 240))
            .collect()
    }

    fn decide(sightings: &[MatchedSighting]) -> Vec<(NaiveDate, bool)> {
        let c = ScoringConfig::default();
        let w = exposure_windows(
            sightings,
            report_type::CONFIRMED_TEST,
            Infectiousness::Standard,
        );
        daily_summaries(&w, &c)
            .iter()
            .map(|d| (d.date, is_contact_day(d, &c)))
            .collect()
    }

    #[test]
    fn default_is_cocoas_configuration_and_valid() {
        let c = ScoringConfig::default();
        c.validate().unwrap();
        assert_eq!(c.attenuation_bucket_thresholds_db, [46, 60, 65]);
        assert_eq!(c.attenuation_weight(46), 1.0);
        assert_eq!(c.attenuation_weight(47), 2.5);
        assert_eq!(c.attenuation_weight(65), 1.3);
        assert_eq!(c.attenuation_weight(66), 0.01);
    }

    #[test]
    fn fifteen_near_minutes_are_a_contact_ten_are_not() {
        assert!(decide(&contact(T0 + 3600, 20, 55))[0].1);
        assert!(decide(&contact(T0 + 3600, 16, 55))[0].1);
        assert!(
            !decide(&contact(T0 + 3600, 12, 55))[0].1,
            "720 s observed < 900 s"
        );
    }

    #[test]
    fn far_contacts_do_not_count_however_long() {
        // Beyond the last threshold (65 dB) a second weighs 0.01: even a whole
        // day of scans stays under the threshold of a contact day.
        for attenuation in [66, 70, 75, 90] {
            for minutes in [15, 120, 600, 23 * 60] {
                let days = decide(&contact(T0, minutes, attenuation));
                assert!(!days.is_empty(), "{attenuation} dB: the day is scored");
                assert!(
                    days.iter().all(|(_, contact)| !contact),
                    "{attenuation} dB for {minutes} min is not a contact"
                );
            }
        }
        // The same long meeting at the last threshold is a contact: the
        // boundary is the attenuation, not the duration.
        assert!(decide(&contact(T0, 120, 65))[0].1);
    }

    #[test]
    fn windows_are_at_most_thirty_minutes_and_days_are_utc() {
        let s = contact(T0 + 23 * 3600, 80, 55); // 23:00 to 00:20 UTC
        let w = exposure_windows(&s, 1, Infectiousness::Standard);
        assert_eq!(w.len(), 3);
        assert!(w.iter().all(|w| w.scan_instances.len() <= 8));
        let days = daily_summaries(&w, &ScoringConfig::default());
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].date, NaiveDate::from_ymd_opt(2020, 12, 16).unwrap());
        assert_eq!(days[1].date, NaiveDate::from_ymd_opt(2020, 12, 17).unwrap());
        let total: u32 = days.iter().map(|d| d.observed_seconds).sum();
        assert_eq!(total, 20 * 240);
    }

    #[test]
    fn revoked_keys_and_no_infectiousness_score_nothing() {
        let c = ScoringConfig::default();
        let s = contact(T0, 60, 40);
        let w = exposure_windows(&s, report_type::REVOKED, Infectiousness::Standard);
        assert!(daily_summaries(&w, &c).is_empty());
        let w = exposure_windows(&s, 1, Infectiousness::None);
        assert!(daily_summaries(&w, &c).is_empty());
        let w = exposure_windows(&s, report_type::UNKNOWN, Infectiousness::Standard);
        assert_eq!(
            daily_summaries(&w, &c).len(),
            1,
            "missing report type counts as confirmed"
        );
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let c = ScoringConfig {
            attenuation_bucket_thresholds_db: [60, 46, 65],
            ..ScoringConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(ScoringConfigError::ThresholdsNotIncreasing)
        );
        let mut c = ScoringConfig::default();
        c.attenuation_bucket_weights[0] = f64::NAN;
        assert_eq!(c.validate(), Err(ScoringConfigError::WeightOutOfRange));
        c.attenuation_bucket_weights[0] = 3.0;
        assert_eq!(c.validate(), Err(ScoringConfigError::WeightOutOfRange));
    }
}
