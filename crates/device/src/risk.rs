//! The phone's own decision, on COCOA's two published formats: `configuration.json` (the
//! ENv2 daily-summaries configuration, the platform's part: exposure windows → daily
//! summaries) and `risk_calculation_configuration.json` (COCOA's thresholds on a day).
//!
//! Rule (COCOA): "the day is High iff every threshold that is not `NOP` passes (AND)". The
//! phone decides with the very functions `cocoa en daily-summaries` and `cocoa en score` run
//! ([`en_protocol::risk_calculation::score_days`]), on the same JSON shapes, so that a
//! phone's decision can be replayed from the windows it recorded ([`Phone::exposure_windows`]).
//!
//! One difference from the platform, by rule: 「日付は日本の暦日」. A window's
//! `dateMillisSinceEpoch` is midnight UTC of the *Japan* calendar date of its sightings
//! (the sightings are cut at 00:00 JST first), so a day of the summaries is a Japan day.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use en_protocol::exposure_configuration::{
    ExposureConfiguration, ExposureWindow, Infectiousness, MILLIS_PER_DAY, ReportType,
    ScanInstance, exposure_windows_of_sightings,
};
use en_protocol::matcher::MatchedSighting;
use en_protocol::risk_calculation::{
    RiskCalculationConfiguration, RiskLevel, ScoredDay, score_days,
};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::phone::{Phone, RETENTION_DAYS};

/// Days since 1970-01-01 of a calendar date (how a window's day is numbered).
pub fn day_number(d: NaiveDate) -> i64 {
    (d - NaiveDate::default()).num_days()
}

/// The calendar date of a day number.
pub fn date_of_day(n: i64) -> NaiveDate {
    NaiveDate::default() + Duration::days(n)
}

/// The calendar date of a window (Japan's, on the phone).
pub fn window_date(w: &ExposureWindow) -> NaiveDate {
    date_of_day(w.days_since_epoch())
}

/// The whole minutes the phone was within Bluetooth range of the keys of `date`'s windows:
/// the sum of their scans' `secondsSinceLastScan`, rounded down. The notification screen may
/// show it (「1日あたりの接触時間（分）」, never the time of day): it says how long, and
/// nothing of when.
pub fn minutes_on(windows: &[ExposureWindow], date: NaiveDate) -> u32 {
    let seconds: u64 = windows
        .iter()
        .filter(|w| window_date(w) == date)
        .flat_map(|w| &w.scan_instances)
        .map(|s| u64::from(s.seconds_since_last_scan))
        .sum();
    u32::try_from(seconds / 60).unwrap_or(u32::MAX)
}

/// The exposure windows of a key's matched sightings, dated by Japan's calendar date of
/// their sightings (「日付は日本の暦日」: a contact at 01:53 JST on 12月1日 is a contact on
/// 12月1日, not on 11月30日 as its UTC day would say). The sightings are cut at 00:00 JST
/// first, so a window never spans two Japan days and each day's summary holds exactly that
/// day's sightings. Infectiousness is STANDARD: export files here carry no
/// days-since-onset to map.
pub fn japan_day_windows(
    mut matched: Vec<MatchedSighting>,
    report_type: ReportType,
) -> Vec<ExposureWindow> {
    matched.sort_by_key(|m| m.sighting.at);
    let day_of = |m: &MatchedSighting| {
        DateTime::<Utc>::from_timestamp(m.sighting.at, 0).map(en_protocol::time::japan_date)
    };
    matched
        .chunk_by(|a, b| day_of(a) == day_of(b))
        .flat_map(|day| {
            let date = day_of(&day[0]);
            let mut windows =
                exposure_windows_of_sightings(day, report_type, Infectiousness::Standard);
            if let Some(date) = date {
                for w in &mut windows {
                    w.date_millis_since_epoch = day_number(date) * MILLIS_PER_DAY;
                }
            }
            windows
        })
        .collect()
}

/// The two documents the phone decides with.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskConfiguration {
    /// `configuration.json`.
    pub exposure: ExposureConfiguration,
    /// `risk_calculation_configuration.json`.
    pub risk: RiskCalculationConfiguration,
}

impl RiskConfiguration {
    /// COCOA's published values.
    pub fn cocoa() -> Self {
        Self {
            exposure: ExposureConfiguration::cocoa(),
            risk: RiskCalculationConfiguration::cocoa(),
        }
    }

    /// The report type a window of a key with report type `wire` (export value, 0 when
    /// absent) gets: the key's, or `report_type_when_missing` of the configuration's
    /// diagnosis keys data mapping for 0 (ENv2 `DiagnosisKeysDataMapping`); a value outside
    /// 0..=5 is UNKNOWN and weighs 0.
    pub fn window_report_type(&self, wire: i32) -> ReportType {
        match ReportType::try_from(wire) {
            Ok(ReportType::Unknown) => self.exposure.report_type_when_missing(),
            Ok(r) => r,
            Err(_) => ReportType::Unknown,
        }
    }

    /// Every day of `windows` from `oldest` on, with its daily summary and COCOA's decision
    /// (`today`: the day of the check, for `days_since_exposure_threshold`).
    pub fn scored_days(
        &self,
        windows: &[ExposureWindow],
        oldest: NaiveDate,
        today: NaiveDate,
    ) -> Vec<ScoredDay> {
        let recent: Vec<ExposureWindow> = windows
            .iter()
            .filter(|w| window_date(w) >= oldest)
            .cloned()
            .collect();
        score_days(
            &self.exposure.google_daily_summaries_config,
            &self.risk,
            &recent,
            day_number(today),
        )
    }

    /// The days of [`RiskConfiguration::scored_days`] whose risk level is High: the contacts.
    pub fn contact_days(
        &self,
        windows: &[ExposureWindow],
        oldest: NaiveDate,
        today: NaiveDate,
    ) -> Vec<NaiveDate> {
        self.scored_days(windows, oldest, today)
            .iter()
            .filter(|d| d.decision.risk_level == RiskLevel::High)
            .map(|d| date_of_day(d.daily_summary.days_since_epoch))
            .collect()
    }
}

/// A window as phones stored it before they kept Android's shape (read, never written).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OlderWindow {
    date: NaiveDate,
    report_type: i32,
    infectiousness: String,
    scan_instances: Vec<OlderScan>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OlderScan {
    typical_attenuation_db: u8,
    min_attenuation_db: u8,
    seconds_since_last_scan: u32,
}

/// Reads a matched key's stored windows: Android `ExposureWindow` JSON, or the shape phones
/// stored before (`date`, `scan_instances` in snake case), converted.
pub fn stored_windows(json: &str) -> std::result::Result<Vec<ExposureWindow>, String> {
    let current = match serde_json::from_str::<Vec<ExposureWindow>>(json) {
        Ok(w) => return Ok(w),
        Err(e) => e.to_string(),
    };
    let older: Vec<OlderWindow> = serde_json::from_str(json).map_err(|_| current)?;
    older
        .into_iter()
        .map(|w| {
            Ok(ExposureWindow {
                date_millis_since_epoch: day_number(w.date) * MILLIS_PER_DAY,
                report_type: ReportType::try_from(w.report_type).unwrap_or(ReportType::Unknown),
                infectiousness: match w.infectiousness.as_str() {
                    "none" => Infectiousness::None,
                    "standard" => Infectiousness::Standard,
                    "high" => Infectiousness::High,
                    other => return Err(format!("infectiousness {other:?}")),
                },
                calibration_confidence: 0,
                scan_instances: w
                    .scan_instances
                    .into_iter()
                    .map(|s| ScanInstance {
                        min_attenuation_db: s.min_attenuation_db,
                        typical_attenuation_db: s.typical_attenuation_db,
                        seconds_since_last_scan: s.seconds_since_last_scan,
                    })
                    .collect(),
            })
        })
        .collect()
}

impl Phone {
    /// The configuration the phone decides with: the last good one the key server served
    /// ([`crate::served`]), else the built-in values (its settings' two documents, COCOA's by
    /// default).
    pub fn risk_configuration(&self) -> Result<RiskConfiguration> {
        match self.applied_configuration()? {
            Some(applied) => applied.documents(),
            None => Ok(RiskConfiguration {
                exposure: self.settings().exposure_configuration.clone(),
                risk: self.settings().risk_calculation_configuration.clone(),
            }),
        }
    }

    /// Every exposure window the phone has recorded (within 14 days), in Android's shape,
    /// with each key's current report type (revisions applied): what
    /// `cocoa en daily-summaries` takes to replay the phone's decision.
    pub fn exposure_windows(&self) -> Result<Vec<ExposureWindow>> {
        let config = self.risk_configuration()?;
        let mut windows: Vec<ExposureWindow> = Vec::new();
        for e in self.store.exposures()? {
            let mut w = stored_windows(&e.windows_json).map_err(Error::Corrupt)?;
            let report_type = config.window_report_type(e.report_type);
            for win in &mut w {
                win.report_type = report_type;
            }
            windows.extend(w);
        }
        Ok(windows)
    }

    /// The days of the phone's exposures within 14 days, each with its daily summary and
    /// COCOA's decision (Japan's calendar days).
    pub fn scored_days(&self) -> Result<Vec<ScoredDay>> {
        let today = en_protocol::time::japan_date(self.now());
        let oldest = en_protocol::time::japan_date(self.now() - Duration::days(RETENTION_DAYS));
        Ok(self
            .risk_configuration()?
            .scored_days(&self.exposure_windows()?, oldest, today))
    }

    /// Days with a contact (risk level High) within 14 days.
    pub(crate) fn contact_days(&self) -> Result<Vec<NaiveDate>> {
        Ok(self
            .scored_days()?
            .iter()
            .filter(|d| d.decision.risk_level == RiskLevel::High)
            .map(|d| date_of_day(d.daily_summary.days_since_epoch))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use en_protocol::matcher::Sighting;
    use en_protocol::time::EnIntervalNumber;
    use en_protocol::{Aem, BluetoothMetadata, Rpi};

    // 2020-12-01 00:00 JST = 2020-11-30 15:00 UTC.
    const MIDNIGHT_JST: i64 = 1_606_748_400;

    fn seen(at: i64, attenuation_db: u8) -> MatchedSighting {
        MatchedSighting {
            sighting: Sighting {
                rpi: Rpi([0; 16]),
                aem: Aem([0; 4]),
                rssi: -50,
                at,
                seconds: 240,
            },
            interval: EnIntervalNumber::new((at / 600) as u32),
            metadata: BluetoothMetadata::v1(0),
            attenuation_db,
        }
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, m, d).unwrap_or_default()
    }

    #[test]
    fn contact_dates_are_japan_calendar_dates_at_the_midnight_jst_edges() {
        let dates = |ats: &[i64]| -> Vec<NaiveDate> {
            japan_day_windows(
                ats.iter().map(|&a| seen(a, 50)).collect(),
                ReportType::ConfirmedTest,
            )
            .iter()
            .map(window_date)
            .collect()
        };
        // 23:59 JST is still 11月30日; 00:00 and 00:01 JST are 12月1日.
        assert_eq!(dates(&[MIDNIGHT_JST - 60]), [day(11, 30)]);
        assert_eq!(dates(&[MIDNIGHT_JST]), [day(12, 1)]);
        assert_eq!(dates(&[MIDNIGHT_JST + 60]), [day(12, 1)]);
        // 01:53 JST on 12月1日 (16:53 UTC on 11月30日) is 12月1日.
        assert_eq!(dates(&[MIDNIGHT_JST + 113 * 60]), [day(12, 1)]);
        // A contact across midnight JST is cut there: one window each day.
        assert_eq!(
            dates(&[MIDNIGHT_JST - 60, MIDNIGHT_JST + 60]),
            [day(11, 30), day(12, 1)]
        );
        // And the decision uses those dates: 20 minutes from 00:01 JST on 12月1日 is a
        // contact on 12月1日.
        let w = japan_day_windows(
            (0..5)
                .map(|n| seen(MIDNIGHT_JST + 60 + n * 240, 50))
                .collect(),
            ReportType::ConfirmedTest,
        );
        let c = RiskConfiguration::cocoa();
        assert_eq!(c.contact_days(&w, day(11, 20), day(12, 1)), [day(12, 1)]);
    }

    #[test]
    fn minutes_per_day_count_that_japan_days_scans_only() {
        // 20 minutes ending at 00:08 JST: 12 before midnight (3 scans), 8 after (2 scans).
        let w = japan_day_windows(
            (0..5)
                .map(|n| seen(MIDNIGHT_JST - 12 * 60 + n * 240, 50))
                .collect(),
            ReportType::ConfirmedTest,
        );
        assert_eq!(minutes_on(&w, day(11, 30)), 12);
        assert_eq!(minutes_on(&w, day(12, 1)), 8);
        assert_eq!(minutes_on(&w, day(12, 2)), 0);
        assert_eq!(minutes_on(&[], day(12, 1)), 0);
    }

    #[test]
    fn cocoas_rule_within_the_period_fifteen_minutes_near_but_not_twelve() {
        let c = RiskConfiguration::cocoa();
        let at = |d: u32, h: i64| MIDNIGHT_JST + i64::from(d - 1) * 86_400 + h * 3600;
        let contact = |start: i64, minutes: i64, db: u8| -> Vec<ExposureWindow> {
            japan_day_windows(
                (0..minutes / 4)
                    .map(|n| seen(start + n * 240, db))
                    .collect(),
                ReportType::ConfirmedTest,
            )
        };
        let mut w = contact(at(1, 10), 20, 55);
        w.extend(contact(at(5, 10), 20, 55));
        w.extend(contact(at(6, 10), 12, 55)); // 720 s < 900 s
        w.extend(contact(at(7, 10), 120, 66)); // far: 0.01 a second
        w.extend(contact(at(8, 10), 16, 55)); // 960 s, score 2,400
        let days = c.scored_days(&w, day(12, 2), day(12, 8));
        let levels: Vec<(NaiveDate, RiskLevel)> = days
            .iter()
            .map(|d| {
                (
                    date_of_day(d.daily_summary.days_since_epoch),
                    d.decision.risk_level,
                )
            })
            .collect();
        assert_eq!(
            levels,
            [
                (day(12, 5), RiskLevel::High),
                (day(12, 6), RiskLevel::Low),
                (day(12, 7), RiskLevel::Low),
                (day(12, 8), RiskLevel::High),
            ]
        );
    }

    #[test]
    fn a_key_without_a_report_type_counts_as_cocoa_maps_it_and_revoked_keys_not_at_all() {
        let c = RiskConfiguration::cocoa();
        assert_eq!(c.window_report_type(0), ReportType::ConfirmedTest);
        assert_eq!(c.window_report_type(3), ReportType::SelfReport);
        assert_eq!(c.window_report_type(5), ReportType::Revoked);
        assert_eq!(c.window_report_type(77), ReportType::Unknown);
        let mut w = japan_day_windows(
            (0..5).map(|n| seen(MIDNIGHT_JST + n * 240, 50)).collect(),
            ReportType::ConfirmedTest,
        );
        w[0].report_type = c.window_report_type(5);
        assert!(c.scored_days(&w, day(11, 20), day(12, 1)).is_empty());
    }

    #[test]
    fn windows_stored_by_older_phones_are_read_in_androids_shape() {
        let older = r#"[{"date":"2020-12-01","report_type":1,"infectiousness":"standard",
            "scan_instances":[{"typical_attenuation_db":50,"min_attenuation_db":48,"seconds_since_last_scan":240}]}]"#;
        let w = stored_windows(older).unwrap();
        assert_eq!(window_date(&w[0]), day(12, 1));
        assert_eq!(w[0].report_type, ReportType::ConfirmedTest);
        assert_eq!(w[0].scan_instances[0].min_attenuation_db, 48);
        let again = serde_json::to_string(&w).unwrap();
        assert_eq!(stored_windows(&again).unwrap(), w);
        assert!(stored_windows("[{\"date\":1}]").is_err());
    }
}
