//! The phones' decision in the simulator, on COCOA's two published formats:
//! `configuration.json` (ENv2 daily summaries: exposure windows → daily
//! summaries) and `risk_calculation_configuration.json` (COCOA's thresholds on a
//! day).
//!
//! Rule (COCOA): "the day is High iff every threshold that is not `NOP` passes
//! (AND); all `NOP` is Low". The functions are en-protocol's, the ones
//! `cocoa en daily-summaries` and `cocoa en score` run:
//! [`DailySummariesConfig::daily_summaries`], [`DayValues::compute`] over the
//! day's scan instances (as `cocoa en score` takes them: the windows whose day
//! is the summary's) and [`RiskCalculationConfiguration::decide`].

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use en_protocol::exposure_configuration::{
    DailySummariesConfig, ExposureConfiguration, ExposureWindow,
};
use en_protocol::risk_calculation::{DayValues, RiskCalculationConfiguration, RiskLevel};
use serde::{Deserialize, Serialize};

/// Why a configuration given to the simulator was refused: a stable code, a
/// plain Japanese message and the English one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {en}")]
pub struct ScoringFileError {
    /// Stable code (en-protocol's for a bad document, `SIM_CONFIG_UNREADABLE` for a missing file).
    pub code: String,
    /// Japanese message.
    pub ja: String,
    /// English message.
    pub en: String,
}

/// The two documents a phone decides with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    /// `configuration.json`.
    pub exposure: ExposureConfiguration,
    /// `risk_calculation_configuration.json`.
    pub risk: RiskCalculationConfiguration,
}

impl Default for Scoring {
    /// COCOA's published values.
    fn default() -> Self {
        Self::cocoa()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ScoringFileError> {
    std::fs::read(path).map_err(|e| ScoringFileError {
        code: "SIM_CONFIG_UNREADABLE".into(),
        ja: format!("ファイル {} を読めません", path.display()),
        en: format!("cannot read {}: {e}", path.display()),
    })
}

/// Days since 1970-01-01 of a calendar date.
pub fn day_number(d: NaiveDate) -> i64 {
    (d - NaiveDate::default()).num_days()
}

impl Scoring {
    /// COCOA's published values: thresholds 46 / 60 / 65 dB, weights 1.0 / 2.5 /
    /// 1.3 / 0.01; ScoreSum >= 1350 and SecondsSinceLastScanSum >= 900.
    pub fn cocoa() -> Self {
        Self {
            exposure: ExposureConfiguration {
                google_daily_summaries_config: DailySummariesConfig::cocoa(),
                other: BTreeMap::new(),
            },
            risk: RiskCalculationConfiguration::cocoa(),
        }
    }

    /// `--config <configuration.json> --risk <risk_calculation_configuration.json>`;
    /// a missing one is COCOA's. Nothing is returned on any fault.
    pub fn from_files(
        config: Option<&Path>,
        risk: Option<&Path>,
    ) -> Result<Self, ScoringFileError> {
        let mut s = Self::cocoa();
        if let Some(p) = config {
            s.exposure =
                ExposureConfiguration::from_json(&read(p)?).map_err(|e| ScoringFileError {
                    code: e.code().into(),
                    ja: format!("{}: {}", p.display(), e.message_ja()),
                    en: format!("{}: {e}", p.display()),
                })?;
        }
        if let Some(p) = risk {
            s.risk = RiskCalculationConfiguration::from_json(&read(p)?).map_err(|e| {
                ScoringFileError {
                    code: e.code().into(),
                    ja: format!("{}: {}", p.display(), e.message_ja()),
                    en: format!("{}: {e}", p.display()),
                }
            })?;
        }
        Ok(s)
    }

    /// A directory holding `configuration.json` and `risk_calculation_configuration.json`.
    pub fn from_dir(dir: &Path) -> Result<Self, ScoringFileError> {
        Self::from_files(
            Some(&dir.join("configuration.json")),
            Some(&dir.join("risk_calculation_configuration.json")),
        )
    }

    /// Both documents valid.
    pub fn validate(&self) -> Result<(), String> {
        self.exposure
            .google_daily_summaries_config
            .validate()
            .map_err(|e| e.to_string())?;
        self.risk.validate().map_err(|e| e.to_string())
    }

    /// The daily summaries configuration.
    pub fn daily(&self) -> &DailySummariesConfig {
        &self.exposure.google_daily_summaries_config
    }

    /// The bucket thresholds, dB.
    pub fn thresholds(&self) -> [u8; 3] {
        self.daily().attenuation_bucket_threshold_db
    }

    /// COCOA's decision on each day of `windows` from `oldest` on (`today`: the
    /// day of the check, for `days_since_exposure_threshold`): the days whose
    /// risk level is High.
    pub fn contact_days(
        &self,
        windows: &[ExposureWindow],
        oldest: NaiveDate,
        today: NaiveDate,
    ) -> Vec<NaiveDate> {
        let oldest = day_number(oldest);
        let recent: Vec<&ExposureWindow> = windows
            .iter()
            .filter(|w| w.days_since_epoch() >= oldest)
            .collect();
        let owned: Vec<ExposureWindow> = recent.iter().map(|w| (*w).clone()).collect();
        self.daily()
            .daily_summaries(&owned, day_number(today))
            .into_iter()
            .filter(|summary| {
                let scans: Vec<(u8, u32)> = owned
                    .iter()
                    .filter(|w| w.days_since_epoch() == summary.days_since_epoch)
                    .flat_map(|w| &w.scan_instances)
                    .map(|s| (s.typical_attenuation_db, s.seconds_since_last_scan))
                    .collect();
                let values = DayValues::compute(
                    summary.day_summary.score_sum,
                    summary.day_summary.weighted_duration_sum,
                    &scans,
                );
                self.risk.decide(&values) == RiskLevel::High
            })
            .map(|s| NaiveDate::default() + chrono::Duration::days(s.days_since_epoch))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use en_protocol::exposure_configuration::{
        Infectiousness, MILLIS_PER_DAY, ReportType, ScanInstance,
    };
    use en_protocol::risk_calculation::{Op, Threshold};

    use super::*;

    fn window(day: u32, minutes: u32, att: u8) -> ExposureWindow {
        ExposureWindow {
            date_millis_since_epoch: day_number(NaiveDate::from_ymd_opt(2020, 12, day).unwrap())
                * MILLIS_PER_DAY,
            report_type: ReportType::ConfirmedTest,
            infectiousness: Infectiousness::Standard,
            calibration_confidence: 0,
            scan_instances: vec![
                ScanInstance {
                    min_attenuation_db: att,
                    typical_attenuation_db: att,
                    seconds_since_last_scan: 240,
                };
                (minutes / 4) as usize
            ],
        }
    }

    #[test]
    fn cocoas_rule_on_cocoas_formats() {
        let s = Scoring::cocoa();
        let d = |x| NaiveDate::from_ymd_opt(2020, 12, x).unwrap();
        // 20 min at 55 dB: 1,200 s × 2.5 = 3,000 >= 1,350 and 1,200 s >= 900.
        // 12 min: 720 s < 900. 20 min at 63 dB: 1,560 and 1,200 s. 20 min at 70 dB: 12.
        let w = [
            window(1, 20, 55),
            window(2, 12, 55),
            window(3, 20, 63),
            window(4, 20, 70),
        ];
        assert_eq!(s.contact_days(&w, d(1), d(5)), [d(1), d(3)]);
        assert_eq!(s.contact_days(&w, d(2), d(5)), [d(3)]);
        // The AND: with a TypicalAttenuationDb_Max <= 60 the 63 dB day fails too.
        let mut strict = s.clone();
        strict.risk.typical_attenuation_db_max = Threshold {
            op: Op::Le,
            value: 60.0,
        };
        assert_eq!(strict.contact_days(&w, d(1), d(5)), [d(1)]);
        // All NOP: Low.
        let mut nop = s.clone();
        let n = Threshold {
            op: Op::Nop,
            value: 0.0,
        };
        nop.risk.score_sum = n;
        nop.risk.seconds_since_last_scan_sum = n;
        assert!(nop.contact_days(&w, d(1), d(5)).is_empty());
    }

    #[test]
    fn bad_files_are_refused_with_a_code() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("risk.json");
        std::fs::write(&p, br#"{"format_version": 2}"#).unwrap();
        let e = Scoring::from_files(None, Some(&p)).unwrap_err();
        assert!(e.code.starts_with("RISK_CONFIG"), "{e:?}");
        let e = Scoring::from_files(Some(&dir.path().join("missing.json")), None).unwrap_err();
        assert_eq!(e.code, "SIM_CONFIG_UNREADABLE");
        assert!(e.ja.contains("読めません"));
        let c = dir.path().join("configuration.json");
        std::fs::write(&c, serde_json::to_vec(&Scoring::cocoa().exposure).unwrap()).unwrap();
        assert_eq!(
            Scoring::from_files(Some(&c), None).unwrap(),
            Scoring::cocoa()
        );
    }
}
