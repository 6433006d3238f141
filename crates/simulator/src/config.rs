//! Every parameter of a run, with its default and where the default comes
//! from. The whole configuration is echoed in the summary, so a number in a
//! report can always be traced back to what produced it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::phones::{PhoneModel, default_models};
pub use crate::radio_model::RadioParams;
use crate::scoring::Scoring;

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid simulation setting: {0}")]
pub struct ConfigError(pub String);

/// How phones find the published keys in their sighting logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matching {
    /// Every published key's RPIs are looked up once in a directory of what
    /// every phone broadcast; only the phones that met a broadcaster of a
    /// published key run the matcher, on those keys. Same answers as
    /// `exhaustive` (tested), at city scale.
    #[default]
    Inverted,
    /// Every app user streams every key of every file it downloads through
    /// its own matcher, as a phone does. For small populations.
    Exhaustive,
}

/// What a sweep varies. Scoring sweeps reuse one population and one set of
/// matches: only the day decision differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepParameter {
    /// The value of `DailySummary_DaySummary_ScoreSum` (COCOA: `>=` 1,350).
    Threshold,
    /// The value of `ExposureWindow_ScanInstance_SecondsSinceLastScanSum` (COCOA: `>=` 900).
    Seconds,
}

impl SweepParameter {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Threshold => "threshold",
            Self::Seconds => "seconds",
        }
    }

    /// `config` with this parameter set to `value`.
    /// (the operator stays what the risk configuration says).
    pub fn apply(self, config: &Scoring, value: f64) -> Scoring {
        let mut c = config.clone();
        match self {
            Self::Threshold => c.risk.score_sum.value = value,
            Self::Seconds => c.risk.seconds_since_last_scan_sum.value = value.max(0.0),
        }
        c
    }
}

/// `--sweep name=v1,v2,...`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// What varies.
    pub parameter: SweepParameter,
    /// Its values.
    pub values: Vec<f64>,
}

impl std::str::FromStr for Sweep {
    type Err = ConfigError;

    /// Parses `threshold=900,1350,1800` or `seconds=600,900`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, values) = s
            .split_once('=')
            .ok_or_else(|| ConfigError(format!("sweep {s:?}: expected name=v1,v2,...")))?;
        let parameter = match name.trim() {
            "threshold" => SweepParameter::Threshold,
            "seconds" => SweepParameter::Seconds,
            other => {
                return Err(ConfigError(format!(
                    "sweep parameter {other:?}: expected threshold or seconds"
                )));
            }
        };
        let values = values
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| ConfigError(format!("sweep value {v:?} is not a number >= 0")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if values.is_empty() {
            return Err(ConfigError("sweep without values".into()));
        }
        Ok(Self { parameter, values })
    }
}

/// The disease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpidemicParams {
    /// Share of people already infected at the start (their infections fall
    /// in the `seed_days` before day 0).
    pub initial_infected_share: f64,
    /// Days before day 0 over which the initial infections are spread.
    pub seed_days: f64,
    /// Hazard of infection per minute at 1 m or closer from a person at peak
    /// infectiousness; beyond 1 m it falls with the square of the distance.
    pub transmissibility_per_minute: f64,
    /// Share of infections with symptoms.
    pub symptomatic_share: f64,
    /// Relative infectiousness of infections without symptoms.
    pub asymptomatic_infectiousness: f64,
    /// Median incubation period, days (log-normal).
    pub incubation_median_days: f64,
    /// Log-scale spread of the incubation period.
    pub incubation_sigma: f64,
    /// Infectiousness starts this many days before onset...
    pub infectious_before_onset_days: f64,
    /// ...and ends this many days after it.
    pub infectious_after_onset_days: f64,
}

impl Default for EpidemicParams {
    fn default() -> Self {
        Self {
            initial_infected_share: 0.003,
            seed_days: 7.0,
            transmissibility_per_minute: 0.0005,
            symptomatic_share: 0.65,
            asymptomatic_infectiousness: 0.5,
            incubation_median_days: 4.6,
            incubation_sigma: 0.45,
            infectious_before_onset_days: 2.5,
            infectious_after_onset_days: 8.0,
        }
    }
}

/// Testing, the health centre and the patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthParams {
    /// Share of symptomatic infections that get tested.
    pub test_share_symptomatic: f64,
    /// Share of asymptomatic infections found by testing (contact tracing).
    pub test_share_asymptomatic: f64,
    /// Mean days from onset to the test, beyond a first half day (exponential).
    pub test_delay_mean_days: f64,
    /// The result comes this many days after the test, at least...
    pub result_delay_min_days: f64,
    /// ...and at most.
    pub result_delay_max_days: f64,
    /// Share of symptomatic people who stay home from the day after onset.
    pub self_isolation_share: f64,
    /// Median hours from the positive result to the processing number
    /// (the health centre's call and 処理番号発行), log-normal.
    pub issuance_delay_median_hours: f64,
    /// Log-scale spread of the issuance delay.
    pub issuance_delay_sigma: f64,
    /// Numbers are issued automatically when the case is reported (COCOA
    /// from December 2021): minutes instead of hours.
    pub auto_issue: bool,
    /// How long a number stays valid, seconds (the issuer's default, 24 h).
    pub validity_seconds: i64,
    /// Median hours from receiving the number to typing it, log-normal.
    pub entry_delay_median_hours: f64,
    /// Log-scale spread of the entry delay (a long tail misses the validity).
    pub entry_delay_sigma: f64,
    /// Share of patients whose number expired who ask for a new one.
    pub reissue_share: f64,
    /// Most reissues per patient.
    pub max_reissues: u32,
    /// Share of patients who type the number in full-width digits (the
    /// device normalises them).
    pub full_width_share: f64,
}

impl Default for HealthParams {
    fn default() -> Self {
        Self {
            test_share_symptomatic: 0.8,
            test_share_asymptomatic: 0.15,
            test_delay_mean_days: 1.5,
            result_delay_min_days: 0.5,
            result_delay_max_days: 1.5,
            self_isolation_share: 0.5,
            issuance_delay_median_hours: 18.0,
            issuance_delay_sigma: 0.6,
            auto_issue: false,
            validity_seconds: issuer::domain::model::DEFAULT_VALIDITY_SECONDS,
            entry_delay_median_hours: 2.0,
            entry_delay_sigma: 1.3,
            reissue_share: 0.5,
            max_reissues: 2,
            full_width_share: 0.1,
        }
    }
}

/// The key server and the phones' download rhythm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerParams {
    /// Export batch window, seconds (the key server's default, 1 h).
    pub batch_period_seconds: i64,
    /// A window is exported this long after it closes (default 2 h).
    pub min_age_seconds: i64,
    /// Small batches are padded with fake keys up to this many (1,000)...
    pub pad_to: usize,
    /// ...plus a random number below this (100).
    pub pad_jitter: usize,
    /// Files and keys are kept this long, seconds (14 days).
    pub retention_seconds: i64,
    /// Each phone checks every `check_min_hours` to `check_max_hours`
    /// (COCOA: every 4 to 6 hours), with its own phase.
    pub check_min_hours: f64,
    /// See `check_min_hours`.
    pub check_max_hours: f64,
}

impl Default for ServerParams {
    fn default() -> Self {
        let export = keyserver::config::ExportConfig::default();
        Self {
            batch_period_seconds: export.batch_period.as_secs() as i64,
            min_age_seconds: export.min_age.as_secs() as i64,
            pad_to: export.pad_to,
            pad_jitter: export.pad_jitter,
            retention_seconds: export.retention.as_secs() as i64,
            check_min_hours: 4.0,
            check_max_hours: 6.0,
        }
    }
}

/// Who should be warned: COCOA's definition of a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthParams {
    /// Within this distance, metres ("about 1 m")...
    pub distance_m: f64,
    /// ...for at least this many minutes in one UTC day with one registered
    /// positive, inside the positive's registration window.
    pub minutes: f64,
    /// A looser distance for context: the summary also reports how many
    /// notified phones had such a contact within it (`precision_relaxed`).
    pub relaxed_distance_m: f64,
}

impl Default for TruthParams {
    fn default() -> Self {
        Self {
            distance_m: 1.0,
            minutes: 15.0,
            relaxed_distance_m: 2.0,
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// People simulated (`--devices`); app users are `adoption` of them.
    pub people: u32,
    /// Days of mixing (`--days`).
    pub days: u32,
    /// The seed (`--seed`): the same seed gives the same summary.
    pub seed: u64,
    /// Share of people with the app (`--adoption`; COCOA reached 41 M
    /// downloads for 126 M people).
    pub adoption: f64,
    /// Share of app-using patients who register (`--registration-rate`;
    /// COCOA saw a few percent before automatic issuance, far more after).
    pub registration_rate: f64,
    /// Days after the last day of mixing during which exports and checks go
    /// on, so that registrations of the last day can still reach phones.
    pub follow_up_days: u32,
    /// Japan date of day 0 (days run from 00:00 JST).
    pub start_date: NaiveDate,
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// How phones find published keys.
    pub matching: Matching,
    /// The phones' scoring: `configuration.json` and
    /// `risk_calculation_configuration.json` (COCOA's by default).
    pub scoring: Scoring,
    /// Scoring variants to compare on the same population.
    pub sweep: Option<Sweep>,
    /// `--compare`: the candidate configuration, scored on the same
    /// population beside `scoring` (the current one); the last variant.
    #[serde(default)]
    pub candidate: Option<Scoring>,
    /// The disease.
    pub epidemic: EpidemicParams,
    /// Testing, issuance and registration.
    pub health: HealthParams,
    /// The radio.
    pub radio: RadioParams,
    /// Phone models of app users.
    pub phone_models: Vec<PhoneModel>,
    /// Key server and downloads.
    pub server: ServerParams,
    /// Ground truth.
    pub truth: TruthParams,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            people: 10_000,
            days: 14,
            seed: 1,
            adoption: 0.3,
            registration_rate: 0.4,
            follow_up_days: 2,
            start_date: NaiveDate::from_ymd_opt(2020, 12, 1).unwrap_or_default(),
            threads: 0,
            matching: Matching::Inverted,
            scoring: Scoring::cocoa(),
            sweep: None,
            candidate: None,
            epidemic: EpidemicParams::default(),
            health: HealthParams::default(),
            radio: RadioParams::default(),
            phone_models: default_models(),
            server: ServerParams::default(),
            truth: TruthParams::default(),
        }
    }
}

fn share(name: &str, v: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{name} must be between 0 and 1, got {v}"
        )))
    }
}

impl SimConfig {
    /// Checks that the run makes sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.people == 0 || self.people > 10_000_000 {
            return Err(ConfigError("people must be 1 to 10,000,000".into()));
        }
        if !(1..=60).contains(&self.days) {
            return Err(ConfigError("days must be 1 to 60".into()));
        }
        if self.follow_up_days > 14 {
            return Err(ConfigError("follow-up days must be at most 14".into()));
        }
        share("adoption", self.adoption)?;
        share("registration rate", self.registration_rate)?;
        share(
            "initial infected share",
            self.epidemic.initial_infected_share,
        )?;
        share("symptomatic share", self.epidemic.symptomatic_share)?;
        self.scoring
            .validate()
            .map_err(|e| ConfigError(format!("scoring: {e}")))?;
        if let Some(c) = &self.candidate {
            if self.sweep.is_some() {
                return Err(ConfigError(
                    "--compare and --sweep cannot be used together".into(),
                ));
            }
            c.validate()
                .map_err(|e| ConfigError(format!("candidate scoring: {e}")))?;
        }
        crate::radio_model::RadioModelFile {
            source: self.radio.source.clone(),
            attenuation: self.radio.attenuation.clone(),
            scan: self.radio.scan.clone(),
            placement: self.radio.placement.clone(),
            place: self.radio.place.clone(),
            identifier: self.radio.identifier.clone(),
            models: self.phone_models.clone(),
        }
        .validate()
        .map_err(|e| ConfigError(format!("{}: {}", e.code, e.en)))?;
        let s = &self.server;
        if s.batch_period_seconds <= 0 || s.min_age_seconds < 0 {
            return Err(ConfigError("batch period must be positive".into()));
        }
        if !(s.check_min_hours > 0.0 && s.check_min_hours <= s.check_max_hours) {
            return Err(ConfigError(
                "check interval must be positive and ordered".into(),
            ));
        }
        Ok(())
    }

    /// The scoring configurations evaluated: COCOA's (or the configured one)
    /// first, then each sweep value, then the `--compare` candidate.
    pub fn scoring_variants(&self) -> Vec<Scoring> {
        let mut out = vec![self.scoring.clone()];
        if let Some(sweep) = &self.sweep {
            out.extend(
                sweep
                    .values
                    .iter()
                    .map(|v| sweep.parameter.apply(&self.scoring, *v)),
            );
        }
        out.extend(self.candidate.iter().cloned());
        out
    }

    /// Worker threads to use.
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_parse_and_apply() {
        let s: Sweep = "threshold=900,1350,1800".parse().unwrap();
        assert_eq!(s.parameter, SweepParameter::Threshold);
        assert_eq!(s.values, [900.0, 1350.0, 1800.0]);
        let c = SimConfig {
            sweep: Some(s),
            ..SimConfig::default()
        };
        let v = c.scoring_variants();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], Scoring::cocoa());
        assert_eq!(v[1].risk.score_sum.value, 900.0);
        assert!("volume=1".parse::<Sweep>().is_err());
        assert!("threshold=".parse::<Sweep>().is_err());
        assert!("threshold=-3".parse::<Sweep>().is_err());
        let secs: Sweep = "seconds=600".parse().unwrap();
        assert_eq!(
            secs.parameter
                .apply(&Scoring::cocoa(), 600.0)
                .risk
                .seconds_since_last_scan_sum
                .value,
            600.0
        );
    }

    #[test]
    fn defaults_are_valid_and_bad_values_refused() {
        SimConfig::default().validate().unwrap();
        let bad = SimConfig {
            adoption: 1.5,
            ..SimConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = SimConfig {
            people: 0,
            ..SimConfig::default()
        };
        assert!(bad.validate().is_err());
        assert_eq!(ServerParams::default().pad_to, 1000);
        assert_eq!(RadioParams::default().scan.interval_seconds, 240);
    }
}
