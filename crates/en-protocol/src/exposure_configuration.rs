//! COCOA's `configuration.json` (its `google_daily_summaries_config`) and the
//! platform's part of ENv2 scoring: exposure windows → daily summaries, on the
//! Android Exposure Notification API's shapes, so that a phone's decision can be
//! replayed from what it recorded.
//!
//! Rule (ENv2 `DailySummariesConfig`, as COCOA configures it): each scan instance
//! falls in the immediate / near / medium / other bucket by its
//! `typicalAttenuationDb` (`<=` the first, second, third threshold, else other);
//! its `secondsSinceLastScan` is multiplied by the bucket's weight; the window's
//! score is that sum × the infectiousness weight × the report-type weight;
//! windows scoring below `minimum_window_score` are dropped; per day
//! `ScoreSum` is the sum of the window scores, `MaximumScore` the largest and
//! `WeightedDurationSum` the sum of the attenuation-weighted seconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::matcher::MatchedSighting;

/// Milliseconds in one UTC day.
pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// A window of an exposure lasts at most 30 minutes (ENv2).
pub const MAX_WINDOW_SECONDS: i64 = 30 * 60;

/// ENv2 bounds every weight to `0..=2.5`.
pub const MAX_WEIGHT: f64 = 2.5;

/// `google_daily_summaries_config.infectiousness_weights`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfectiousnessWeights {
    /// Weight of `Infectiousness.HIGH` (2).
    #[serde(rename = "High")]
    pub high: f64,
    /// Weight of `Infectiousness.STANDARD` (1).
    #[serde(rename = "Standard")]
    pub standard: f64,
}

/// `google_daily_summaries_config.report_type_weights`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportTypeWeights {
    /// `ReportType.CONFIRMED_CLINICAL_DIAGNOSIS` (2).
    #[serde(rename = "ConfirmedClinicalDiagnosis")]
    pub confirmed_clinical_diagnosis: f64,
    /// `ReportType.CONFIRMED_TEST` (1).
    #[serde(rename = "ConfirmedTest")]
    pub confirmed_test: f64,
    /// `ReportType.SELF_REPORT` (3).
    #[serde(rename = "SelfReport")]
    pub self_report: f64,
    /// `ReportType.RECURSIVE` (4).
    #[serde(rename = "Recursive")]
    pub recursive: f64,
}

/// `google_daily_summaries_config` of COCOA's `configuration.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailySummariesConfig {
    /// Upper bounds (inclusive) of the immediate, near and medium buckets, dB; strictly rising.
    pub attenuation_bucket_threshold_db: [u8; 3],
    /// Weights of the immediate, near, medium and other buckets.
    pub attenuation_bucket_weights: [f64; 4],
    /// Windows more than this many days before the day of the check are left out; 0: none are.
    pub days_since_exposure_threshold: u32,
    /// Weights of the sender's infectiousness.
    pub infectiousness_weights: InfectiousnessWeights,
    /// Windows scoring below this are dropped.
    pub minimum_window_score: f64,
    /// Weights of the key's report type.
    pub report_type_weights: ReportTypeWeights,
}

/// COCOA's `configuration.json`. Only `google_daily_summaries_config` takes part in
/// scoring; the other sections (ENv1, Apple, key data mapping) are kept as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExposureConfiguration {
    /// The ENv2 daily summaries configuration.
    pub google_daily_summaries_config: DailySummariesConfig,
    /// Every other section, untouched.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Why a `configuration.json` was refused; each has a stable code and a Japanese message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExposureConfigError {
    /// Not JSON of the expected shape (truncated, wrong type, wrong length, unknown field).
    #[error("EXPOSURE_CONFIG_PARSE: {path}: {message}")]
    Parse {
        /// The field at fault, e.g. `google_daily_summaries_config.attenuation_bucket_weights`.
        path: String,
        /// serde's description.
        message: String,
    },
    /// The three bucket thresholds do not rise strictly.
    #[error(
        "EXPOSURE_CONFIG_THRESHOLDS: google_daily_summaries_config.attenuation_bucket_threshold_db must rise strictly"
    )]
    Thresholds,
    /// A weight outside `0..=2.5` or not finite.
    #[error("EXPOSURE_CONFIG_WEIGHT: {0} must be a finite number between 0 and 2.5")]
    Weight(String),
    /// `minimum_window_score` negative or not finite.
    #[error(
        "EXPOSURE_CONFIG_MINIMUM_WINDOW_SCORE: google_daily_summaries_config.minimum_window_score must be a finite number >= 0"
    )]
    MinimumWindowScore,
}

impl ExposureConfigError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Parse { .. } => "EXPOSURE_CONFIG_PARSE",
            Self::Thresholds => "EXPOSURE_CONFIG_THRESHOLDS",
            Self::Weight(_) => "EXPOSURE_CONFIG_WEIGHT",
            Self::MinimumWindowScore => "EXPOSURE_CONFIG_MINIMUM_WINDOW_SCORE",
        }
    }

    /// Plain Japanese message.
    pub fn message_ja(&self) -> String {
        match self {
            Self::Parse { path, .. } => format!("接触確認の設定を読めません（項目: {path}）"),
            Self::Thresholds => "接触確認の設定の attenuation_bucket_threshold_db は小さい順に並べてください（同じ値は不可）".to_owned(),
            Self::Weight(f) => format!("接触確認の設定の {f} は 0 以上 2.5 以下の数でなければなりません"),
            Self::MinimumWindowScore => "接触確認の設定の minimum_window_score は 0 以上の数でなければなりません".to_owned(),
        }
    }
}

impl DailySummariesConfig {
    /// COCOA's published values (cocoa-mhlw/cocoa `configuration.json`):
    /// thresholds 46 / 60 / 65 dB, weights 1.0 / 2.5 / 1.3 / 0.01, all other weights 1.0,
    /// `days_since_exposure_threshold` 0, `minimum_window_score` 0.
    pub fn cocoa() -> Self {
        Self {
            attenuation_bucket_threshold_db: [46, 60, 65],
            attenuation_bucket_weights: [1.0, 2.5, 1.3, 0.01],
            days_since_exposure_threshold: 0,
            infectiousness_weights: InfectiousnessWeights {
                high: 1.0,
                standard: 1.0,
            },
            minimum_window_score: 0.0,
            report_type_weights: ReportTypeWeights {
                confirmed_clinical_diagnosis: 1.0,
                confirmed_test: 1.0,
                self_report: 1.0,
                recursive: 1.0,
            },
        }
    }

    /// Ordered thresholds, weights in `0..=2.5`, a finite non-negative minimum score.
    pub fn validate(&self) -> Result<(), ExposureConfigError> {
        let [a, b, c] = self.attenuation_bucket_threshold_db;
        if !(a < b && b < c) {
            return Err(ExposureConfigError::Thresholds);
        }
        let p = "google_daily_summaries_config";
        let mut weights: Vec<(String, f64)> = self
            .attenuation_bucket_weights
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("{p}.attenuation_bucket_weights[{i}]"), *w))
            .collect();
        let i = &self.infectiousness_weights;
        let r = &self.report_type_weights;
        for (name, w) in [
            ("infectiousness_weights.High", i.high),
            ("infectiousness_weights.Standard", i.standard),
            (
                "report_type_weights.ConfirmedClinicalDiagnosis",
                r.confirmed_clinical_diagnosis,
            ),
            ("report_type_weights.ConfirmedTest", r.confirmed_test),
            ("report_type_weights.SelfReport", r.self_report),
            ("report_type_weights.Recursive", r.recursive),
        ] {
            weights.push((format!("{p}.{name}"), w));
        }
        if let Some((name, _)) = weights
            .into_iter()
            .find(|(_, w)| !w.is_finite() || !(0.0..=MAX_WEIGHT).contains(w))
        {
            return Err(ExposureConfigError::Weight(name));
        }
        if !self.minimum_window_score.is_finite() || self.minimum_window_score < 0.0 {
            return Err(ExposureConfigError::MinimumWindowScore);
        }
        Ok(())
    }

    /// The weight of the bucket a typical attenuation falls in (`<=` threshold).
    pub fn attenuation_weight(&self, typical_attenuation_db: u8) -> f64 {
        let t = self.attenuation_bucket_threshold_db;
        let w = self.attenuation_bucket_weights;
        if typical_attenuation_db <= t[0] {
            w[0]
        } else if typical_attenuation_db <= t[1] {
            w[1]
        } else if typical_attenuation_db <= t[2] {
            w[2]
        } else {
            w[3]
        }
    }

    /// The weight of a window's `reportType`; UNKNOWN (0) and REVOKED (5) weigh 0.
    pub fn report_type_weight(&self, report_type: ReportType) -> f64 {
        let r = &self.report_type_weights;
        match report_type {
            ReportType::ConfirmedTest => r.confirmed_test,
            ReportType::ConfirmedClinicalDiagnosis => r.confirmed_clinical_diagnosis,
            ReportType::SelfReport => r.self_report,
            ReportType::Recursive => r.recursive,
            ReportType::Unknown | ReportType::Revoked => 0.0,
        }
    }

    /// The weight of a window's `infectiousness`; NONE weighs 0.
    pub fn infectiousness_weight(&self, i: Infectiousness) -> f64 {
        match i {
            Infectiousness::None => 0.0,
            Infectiousness::Standard => self.infectiousness_weights.standard,
            Infectiousness::High => self.infectiousness_weights.high,
        }
    }

    /// `Σ secondsSinceLastScan × bucket weight` of one window.
    pub fn weighted_duration(&self, w: &ExposureWindow) -> f64 {
        w.scan_instances
            .iter()
            .map(|s| {
                f64::from(s.seconds_since_last_scan)
                    * self.attenuation_weight(s.typical_attenuation_db)
            })
            .sum()
    }

    /// The window's score: weighted duration × infectiousness weight × report-type weight.
    pub fn window_score(&self, w: &ExposureWindow) -> f64 {
        self.weighted_duration(w)
            * self.infectiousness_weight(w.infectiousness)
            * self.report_type_weight(w.report_type)
    }

    /// Windows → one `DailySummary` per UTC day, in day order. Windows scoring below
    /// `minimum_window_score` (or 0) are dropped; with `days_since_exposure_threshold` > 0,
    /// windows more than that many days before `today` (days since epoch) are too.
    pub fn daily_summaries(&self, windows: &[ExposureWindow], today: i64) -> Vec<DailySummary> {
        let mut days: BTreeMap<i64, DaySummary> = BTreeMap::new();
        for w in windows {
            let day = w.days_since_epoch();
            if self.days_since_exposure_threshold > 0
                && today - day > i64::from(self.days_since_exposure_threshold)
            {
                continue;
            }
            let score = self.window_score(w);
            if score <= 0.0 || score < self.minimum_window_score {
                continue;
            }
            let d = days.entry(day).or_insert(DaySummary {
                maximum_score: 0.0,
                score_sum: 0.0,
                weighted_duration_sum: 0.0,
            });
            d.maximum_score = d.maximum_score.max(score);
            d.score_sum += score;
            d.weighted_duration_sum += self.weighted_duration(w);
        }
        days.into_iter()
            .map(|(day, s)| DailySummary {
                days_since_epoch: day,
                date_millis_since_epoch: Some(day * MILLIS_PER_DAY),
                day_summary: s,
            })
            .collect()
    }
}

/// COCOA's published `configuration.json` (cocoa-mhlw/cocoa
/// `documents/static/exposure_configuration/configuration.json`, commit 1419e919), byte for byte.
pub const COCOA_CONFIGURATION_JSON: &str =
    include_str!("../tests/vectors/cocoa/configuration.json");

impl ExposureConfiguration {
    /// COCOA's published configuration ([`COCOA_CONFIGURATION_JSON`]): the built-in values.
    pub fn cocoa() -> Self {
        Self::from_json(COCOA_CONFIGURATION_JSON.as_bytes())
            .expect("COCOA's configuration.json is valid (tested)")
    }

    /// The report type a key without one is given: ENv2 `DiagnosisKeysDataMapping`
    /// `google_diagnosis_keys_data_mapping_config.report_type_when_missing` (COCOA: 1,
    /// ConfirmedTest); ConfirmedTest when the section or the field is absent or not 1..=4.
    pub fn report_type_when_missing(&self) -> ReportType {
        self.other
            .get("google_diagnosis_keys_data_mapping_config")
            .and_then(|m| m.get("report_type_when_missing"))
            .and_then(serde_json::Value::as_i64)
            .and_then(|v| i32::try_from(v).ok())
            .and_then(|v| ReportType::try_from(v).ok())
            .filter(|r| !matches!(r, ReportType::Unknown | ReportType::Revoked))
            .unwrap_or(ReportType::ConfirmedTest)
    }

    /// Parses and validates `configuration.json`; nothing is returned on any fault.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ExposureConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let config: Self =
            serde_path_to_error::deserialize(de).map_err(|e| ExposureConfigError::Parse {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        config.google_daily_summaries_config.validate()?;
        Ok(config)
    }
}

/// Android `ReportType` (export wire values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub enum ReportType {
    /// 0
    Unknown,
    /// 1
    ConfirmedTest,
    /// 2
    ConfirmedClinicalDiagnosis,
    /// 3
    SelfReport,
    /// 4
    Recursive,
    /// 5
    Revoked,
}

impl TryFrom<i32> for ReportType {
    type Error = String;
    fn try_from(v: i32) -> Result<Self, String> {
        Ok(match v {
            0 => Self::Unknown,
            1 => Self::ConfirmedTest,
            2 => Self::ConfirmedClinicalDiagnosis,
            3 => Self::SelfReport,
            4 => Self::Recursive,
            5 => Self::Revoked,
            _ => return Err(format!("reportType {v} is not 0..=5")),
        })
    }
}

impl From<ReportType> for i32 {
    fn from(r: ReportType) -> i32 {
        match r {
            ReportType::Unknown => 0,
            ReportType::ConfirmedTest => 1,
            ReportType::ConfirmedClinicalDiagnosis => 2,
            ReportType::SelfReport => 3,
            ReportType::Recursive => 4,
            ReportType::Revoked => 5,
        }
    }
}

/// Android `Infectiousness`: 0 NONE, 1 STANDARD, 2 HIGH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub enum Infectiousness {
    /// 0: the window scores 0.
    None,
    /// 1
    Standard,
    /// 2
    High,
}

impl TryFrom<i32> for Infectiousness {
    type Error = String;
    fn try_from(v: i32) -> Result<Self, String> {
        Ok(match v {
            0 => Self::None,
            1 => Self::Standard,
            2 => Self::High,
            _ => return Err(format!("infectiousness {v} is not 0..=2")),
        })
    }
}

impl From<Infectiousness> for i32 {
    fn from(i: Infectiousness) -> i32 {
        match i {
            Infectiousness::None => 0,
            Infectiousness::Standard => 1,
            Infectiousness::High => 2,
        }
    }
}

/// Splits the matched sightings of one key into exposure windows of at most
/// [`MAX_WINDOW_SECONDS`] (ENv2: "a window of an exposure lasts at most 30 minutes"), one
/// scan instance per sighting (typical = minimum attenuation: one sample), each window dated
/// by the UTC day of its first sighting.
pub fn exposure_windows_of_sightings(
    sightings: &[MatchedSighting],
    report_type: ReportType,
    infectiousness: Infectiousness,
) -> Vec<ExposureWindow> {
    let mut sorted: Vec<&MatchedSighting> = sightings.iter().collect();
    sorted.sort_by_key(|m| m.sighting.at);
    let mut windows: Vec<(i64, ExposureWindow)> = Vec::new();
    for m in sorted {
        let scan = ScanInstance {
            min_attenuation_db: m.attenuation_db,
            typical_attenuation_db: m.attenuation_db,
            seconds_since_last_scan: m.sighting.seconds,
        };
        match windows.last_mut() {
            Some((start, w)) if m.sighting.at - *start < MAX_WINDOW_SECONDS => {
                w.scan_instances.push(scan)
            }
            _ => windows.push((
                m.sighting.at,
                ExposureWindow {
                    date_millis_since_epoch: m.sighting.at.div_euclid(86_400) * MILLIS_PER_DAY,
                    report_type,
                    infectiousness,
                    calibration_confidence: 0,
                    scan_instances: vec![scan],
                },
            )),
        }
    }
    windows.into_iter().map(|(_, w)| w).collect()
}

/// Android `ScanInstance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScanInstance {
    /// Minimum attenuation during the scan, dB.
    pub min_attenuation_db: u8,
    /// Typical attenuation during the scan, dB: what the bucket is chosen by.
    pub typical_attenuation_db: u8,
    /// Seconds since the previous scan: how long this scan stands for.
    pub seconds_since_last_scan: u32,
}

/// Android `ExposureWindow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExposureWindow {
    /// Midnight UTC of the window's day, milliseconds since the epoch.
    pub date_millis_since_epoch: i64,
    /// The key's report type.
    pub report_type: ReportType,
    /// The sender's infectiousness on that day.
    pub infectiousness: Infectiousness,
    /// Android `CalibrationConfidence` 0..=3 (not used in scoring).
    #[serde(default)]
    pub calibration_confidence: u8,
    /// The scans, in time order.
    pub scan_instances: Vec<ScanInstance>,
}

impl ExposureWindow {
    /// The UTC day of the window, days since the epoch.
    pub fn days_since_epoch(&self) -> i64 {
        self.date_millis_since_epoch.div_euclid(MILLIS_PER_DAY)
    }
}

/// Android `DailySummary.ExposureSummaryData`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaySummary {
    /// The largest window score of the day.
    #[serde(rename = "MaximumScore", alias = "maximumScore")]
    pub maximum_score: f64,
    /// The sum of the window scores of the day.
    #[serde(rename = "ScoreSum", alias = "scoreSum")]
    pub score_sum: f64,
    /// The sum of the windows' attenuation-weighted seconds.
    #[serde(rename = "WeightedDurationSum", alias = "weightedDurationSum")]
    pub weighted_duration_sum: f64,
}

/// Android `DailySummary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DailySummary {
    /// The UTC day, days since the epoch.
    pub days_since_epoch: i64,
    /// Midnight UTC of that day in milliseconds (optional on input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_millis_since_epoch: Option<i64>,
    /// The day's sums.
    #[serde(rename = "DaySummary", alias = "daySummary")]
    pub day_summary: DaySummary,
}

/// Why exposure windows could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("EXPOSURE_WINDOWS_PARSE: {path}: {message}")]
pub struct ExposureWindowsError {
    /// The field at fault, e.g. `[0].scanInstances[2].typicalAttenuationDb`.
    pub path: String,
    /// serde's description.
    pub message: String,
}

impl ExposureWindowsError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "EXPOSURE_WINDOWS_PARSE"
    }

    /// Plain Japanese message.
    pub fn message_ja(&self) -> String {
        format!(
            "接触の記録（ExposureWindow）を読めません（項目: {}）",
            self.path
        )
    }
}

/// Parses a JSON array of Android `ExposureWindow`s.
pub fn exposure_windows_from_json(
    bytes: &[u8],
) -> Result<Vec<ExposureWindow>, ExposureWindowsError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| ExposureWindowsError {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// Why a daily summary could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("DAILY_SUMMARY_PARSE: {path}: {message}")]
pub struct DailySummaryError {
    /// The field at fault, e.g. `DaySummary.ScoreSum`.
    pub path: String,
    /// serde's description.
    pub message: String,
}

impl DailySummaryError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "DAILY_SUMMARY_PARSE"
    }

    /// Plain Japanese message.
    pub fn message_ja(&self) -> String {
        format!(
            "日ごとの集計（DailySummary）を読めません（項目: {}）",
            self.path
        )
    }
}

/// Parses one Android `DailySummary`.
pub fn daily_summary_from_json(bytes: &[u8]) -> Result<DailySummary, DailySummaryError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| DailySummaryError {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}
