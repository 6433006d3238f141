//! COCOA's risk decision, `risk_calculation_configuration.json` (`format_version` 1).
//!
//! Rule (COCOA): every threshold is `{op, value}` with `op` one of `NOP`, `>=`, `>`, `<=`, `<`,
//! and `">="` means *actual* `>=` *value*. When every threshold is `NOP` the day is Low; otherwise
//! the day is High iff every threshold that is not `NOP` passes (AND).

use serde::{Deserialize, Serialize};

use crate::exposure_configuration::{DailySummariesConfig, DailySummary, ExposureWindow};

/// The only `format_version` COCOA defines.
pub const FORMAT_VERSION: u32 = 1;

/// A threshold's comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// No comparison: the threshold takes no part in the decision.
    #[serde(rename = "NOP")]
    Nop,
    /// actual >= value
    #[serde(rename = ">=")]
    Ge,
    /// actual > value
    #[serde(rename = ">")]
    Gt,
    /// actual <= value
    #[serde(rename = "<=")]
    Le,
    /// actual < value
    #[serde(rename = "<")]
    Lt,
}

/// One threshold `{op, value}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The operator.
    pub op: Op,
    /// The value the actual number is compared with.
    pub value: f64,
}

impl Threshold {
    /// `None` for `NOP`, otherwise whether `actual op value` holds.
    pub fn passes(&self, actual: f64) -> Option<bool> {
        match self.op {
            Op::Nop => None,
            Op::Ge => Some(actual >= self.value),
            Op::Gt => Some(actual > self.value),
            Op::Le => Some(actual <= self.value),
            Op::Lt => Some(actual < self.value),
        }
    }
}

/// `risk_calculation_configuration.json`, field names as COCOA publishes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskCalculationConfiguration {
    /// Must be 1.
    pub format_version: u32,
    /// On the day's `ScoreSum`.
    #[serde(rename = "DailySummary_DaySummary_ScoreSum")]
    pub score_sum: Threshold,
    /// On `WeightedDurationSum / SecondsSinceLastScanSum` (0 when the sum is 0).
    #[serde(rename = "DailySummary_DaySummary_WeightedDurationAverage")]
    pub weighted_duration_average: Threshold,
    /// On the sum of `secondsSinceLastScan` over the day's scan instances.
    #[serde(rename = "ExposureWindow_ScanInstance_SecondsSinceLastScanSum")]
    pub seconds_since_last_scan_sum: Threshold,
    /// On the largest `typicalAttenuationDb` of the day's scan instances (0 if none).
    #[serde(rename = "ExposureWindow_ScanInstance_TypicalAttenuationDb_Max")]
    pub typical_attenuation_db_max: Threshold,
    /// On the smallest `typicalAttenuationDb` of the day's scan instances (0 if none).
    #[serde(rename = "ExposureWindow_ScanInstance_TypicalAttenuationDb_Min")]
    pub typical_attenuation_db_min: Threshold,
}

/// Why a risk configuration was refused; each has a stable code and a Japanese message.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RiskConfigError {
    /// Not JSON of the expected shape (truncated, wrong type, unknown operator, unknown field).
    #[error("RISK_CONFIG_PARSE: {path}: {message}")]
    Parse {
        /// The field at fault, e.g. `DailySummary_DaySummary_ScoreSum.op`.
        path: String,
        /// serde's description.
        message: String,
    },
    /// `format_version` other than 1.
    #[error("RISK_CONFIG_VERSION: format_version {0} is not 1")]
    Version(u32),
    /// A threshold value that is not a finite number >= 0.
    #[error("RISK_CONFIG_VALUE: {0}.value must be a finite number >= 0")]
    Value(&'static str),
}

impl RiskConfigError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Parse { .. } => "RISK_CONFIG_PARSE",
            Self::Version(_) => "RISK_CONFIG_VERSION",
            Self::Value(_) => "RISK_CONFIG_VALUE",
        }
    }

    /// Plain Japanese message.
    pub fn message_ja(&self) -> String {
        match self {
            Self::Parse { path, .. } => format!("リスク計算設定を読めません（項目: {path}）"),
            Self::Version(v) => {
                format!("リスク計算設定の format_version {v} は対応していません（1 のみ）")
            }
            Self::Value(f) => format!("リスク計算設定の {f} の値は 0 以上の数でなければなりません"),
        }
    }
}

/// The five numbers COCOA compares, computed for one day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DayValues {
    /// `DailySummary_DaySummary_ScoreSum`
    #[serde(rename = "DailySummary_DaySummary_ScoreSum")]
    pub score_sum: f64,
    /// `DailySummary_DaySummary_WeightedDurationAverage`
    #[serde(rename = "DailySummary_DaySummary_WeightedDurationAverage")]
    pub weighted_duration_average: f64,
    /// `ExposureWindow_ScanInstance_SecondsSinceLastScanSum`
    #[serde(rename = "ExposureWindow_ScanInstance_SecondsSinceLastScanSum")]
    pub seconds_since_last_scan_sum: f64,
    /// `ExposureWindow_ScanInstance_TypicalAttenuationDb_Max`
    #[serde(rename = "ExposureWindow_ScanInstance_TypicalAttenuationDb_Max")]
    pub typical_attenuation_db_max: f64,
    /// `ExposureWindow_ScanInstance_TypicalAttenuationDb_Min`
    #[serde(rename = "ExposureWindow_ScanInstance_TypicalAttenuationDb_Min")]
    pub typical_attenuation_db_min: f64,
}

impl DayValues {
    /// COCOA's five numbers for one day: `ScoreSum` and `WeightedDurationSum` from the day's
    /// `DailySummary`, the scan-instance numbers from the exposure windows of the same day
    /// (COCOA takes the windows whose day is the summary's; the others are ignored). The one
    /// function `cocoa en score`, the phone and the simulator all decide with.
    pub fn of_day(summary: &DailySummary, windows: &[ExposureWindow]) -> Self {
        let scans: Vec<(u8, u32)> = windows
            .iter()
            .filter(|w| w.days_since_epoch() == summary.days_since_epoch)
            .flat_map(|w| &w.scan_instances)
            .map(|s| (s.typical_attenuation_db, s.seconds_since_last_scan))
            .collect();
        Self::compute(
            summary.day_summary.score_sum,
            summary.day_summary.weighted_duration_sum,
            &scans,
        )
    }

    /// From the day's `WeightedDurationSum` and scan instances `(typicalAttenuationDb, secondsSinceLastScan)`.
    pub fn compute(score_sum: f64, weighted_duration_sum: f64, scans: &[(u8, u32)]) -> Self {
        let seconds: f64 = scans.iter().map(|s| f64::from(s.1)).sum();
        let average = if seconds == 0.0 {
            0.0
        } else {
            weighted_duration_sum / seconds
        };
        let max = scans.iter().map(|s| s.0).max().unwrap_or(0);
        let min = scans.iter().map(|s| s.0).min().unwrap_or(0);
        Self {
            score_sum,
            weighted_duration_average: average,
            seconds_since_last_scan_sum: seconds,
            typical_attenuation_db_max: f64::from(max),
            typical_attenuation_db_min: f64::from(min),
        }
    }
}

/// COCOA's two levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RiskLevel {
    /// Notify.
    High,
    /// Do not notify.
    Low,
}

/// COCOA's decision on one day: what `cocoa en score` prints, `{"risk_level", ...the five values}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DayDecision {
    /// High: notify.
    pub risk_level: RiskLevel,
    /// The numbers compared.
    #[serde(flatten)]
    pub values: DayValues,
}

/// One day of exposure: the platform's `DailySummary` and COCOA's decision on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredDay {
    /// What `cocoa en daily-summaries` prints for the day.
    pub daily_summary: DailySummary,
    /// What `cocoa en score` prints for the day.
    pub decision: DayDecision,
}

/// Windows → daily summaries (the platform's part, [`DailySummariesConfig::daily_summaries`])
/// → COCOA's decision on each day ([`DayValues::of_day`], [`RiskCalculationConfiguration::decide`]),
/// in day order. `today`: the day of the check, days since the epoch.
pub fn score_days(
    config: &DailySummariesConfig,
    risk: &RiskCalculationConfiguration,
    windows: &[ExposureWindow],
    today: i64,
) -> Vec<ScoredDay> {
    config
        .daily_summaries(windows, today)
        .into_iter()
        .map(|daily_summary| {
            let decision = risk.decide_day(&daily_summary, windows);
            ScoredDay {
                daily_summary,
                decision,
            }
        })
        .collect()
}

/// COCOA's published `risk_calculation_configuration.json` (cocoa-mhlw/cocoa
/// `documents/static/exposure_configuration/`, commit 1419e919), byte for byte.
pub const COCOA_RISK_CALCULATION_JSON: &str =
    include_str!("../tests/vectors/cocoa/risk_calculation_configuration.json");

impl RiskCalculationConfiguration {
    /// The decision on the day of `summary`, from it and the windows (those of other days ignored).
    pub fn decide_day(&self, summary: &DailySummary, windows: &[ExposureWindow]) -> DayDecision {
        let values = DayValues::of_day(summary, windows);
        DayDecision {
            risk_level: self.decide(&values),
            values,
        }
    }

    /// COCOA's published values: ScoreSum >= 1350, SecondsSinceLastScanSum >= 900, others NOP.
    pub fn cocoa() -> Self {
        let nop = Threshold {
            op: Op::Nop,
            value: 0.0,
        };
        Self {
            format_version: FORMAT_VERSION,
            score_sum: Threshold {
                op: Op::Ge,
                value: 1350.0,
            },
            weighted_duration_average: nop,
            seconds_since_last_scan_sum: Threshold {
                op: Op::Ge,
                value: 900.0,
            },
            typical_attenuation_db_max: nop,
            typical_attenuation_db_min: nop,
        }
    }

    /// Parses and validates; nothing is returned on any fault.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RiskConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let config: Self =
            serde_path_to_error::deserialize(de).map_err(|e| RiskConfigError::Parse {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// format_version 1 and finite, non-negative values.
    pub fn validate(&self) -> Result<(), RiskConfigError> {
        if self.format_version != FORMAT_VERSION {
            return Err(RiskConfigError::Version(self.format_version));
        }
        for (name, t) in self.named() {
            if !t.value.is_finite() || t.value < 0.0 {
                return Err(RiskConfigError::Value(name));
            }
        }
        Ok(())
    }

    fn named(&self) -> [(&'static str, &Threshold); 5] {
        [
            ("DailySummary_DaySummary_ScoreSum", &self.score_sum),
            (
                "DailySummary_DaySummary_WeightedDurationAverage",
                &self.weighted_duration_average,
            ),
            (
                "ExposureWindow_ScanInstance_SecondsSinceLastScanSum",
                &self.seconds_since_last_scan_sum,
            ),
            (
                "ExposureWindow_ScanInstance_TypicalAttenuationDb_Max",
                &self.typical_attenuation_db_max,
            ),
            (
                "ExposureWindow_ScanInstance_TypicalAttenuationDb_Min",
                &self.typical_attenuation_db_min,
            ),
        ]
    }

    /// All NOP -> Low; otherwise High iff every non-NOP threshold passes.
    pub fn decide(&self, v: &DayValues) -> RiskLevel {
        let results = [
            self.score_sum.passes(v.score_sum),
            self.weighted_duration_average
                .passes(v.weighted_duration_average),
            self.seconds_since_last_scan_sum
                .passes(v.seconds_since_last_scan_sum),
            self.typical_attenuation_db_max
                .passes(v.typical_attenuation_db_max),
            self.typical_attenuation_db_min
                .passes(v.typical_attenuation_db_min),
        ];
        let active: Vec<bool> = results.into_iter().flatten().collect();
        if !active.is_empty() && active.iter().all(|p| *p) {
            RiskLevel::High
        } else {
            RiskLevel::Low
        }
    }
}
