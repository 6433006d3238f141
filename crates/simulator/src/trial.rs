//! `cocoa simulate trial`: controlled trials, the test a health authority's
//! team runs with real phones to set its parameters (issue 14: "runs k
//! contacts of exactly that distance and duration between phones of the
//! given models, through the real device, matcher and scoring code").
//!
//! One trial is one contact: phone A (the sender, later positive) and phone B
//! (the receiver) stay `distance_m` apart for `minutes`, at a start drawn
//! between 10:00 and 17:00 Japan time with B's scan phase drawn too. B hears A
//! through the radio model ([`crate::radio::Ear`], the one the population
//! simulation uses), A's daily keys are matched against B's sightings by
//! `en_protocol`'s matcher, the matches are cut into exposure windows by the
//! device ([`crate::device_adapter::windows_of`]) and the day rule of the
//! configured `configuration.json` / `risk_calculation_configuration.json`
//! decides. A trial is *detected* when that rule finds a contact day.
//!
//! Rates carry Wilson 95 % score intervals; a rate that rests on fewer than
//! [`FEW`] trials carries a warning.

use std::collections::BTreeMap;

use en_protocol::export::ExposureKey;
use en_protocol::matcher::SightingIndex;
use serde::Serialize;

use crate::config::SimConfig;
use crate::device_adapter::{contact_days, daily_key, windows_of};
use crate::encounters::{Encounter, Place};
use crate::phones::PhoneModel;
use crate::radio::{Broadcasts, Ear, Placement};
use crate::rng::{Purpose, Rng};
use crate::time::{Calendar, DAY, HOUR};

/// Below this many trials a rate gets a warning (issue 14: "a warning when a
/// rate rests on fewer than 30 people").
pub const FEW: u32 = 30;

/// Most trials of one run (a million contacts take minutes).
pub const MAX_TRIALS: u32 = 1_000_000;

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialSpec {
    /// Distance between the phones, metres (0.1 to 25.5, the encounter
    /// record's range).
    pub distance_m: f64,
    /// Duration of each contact, minutes (1 to 1,000).
    pub minutes: f64,
    /// Trials per pair (with `pairs`), or in all (models drawn by share).
    pub trials: u32,
    /// `(sender, receiver)` model names; empty: both models drawn per trial
    /// by the models' market shares.
    pub pairs: Vec<(String, String)>,
    /// Both phones' placement; `None`: drawn per trial and phone by the
    /// radio model's shares.
    pub placement: Option<Placement>,
}

/// A bad trial request: a stable code and the Japanese and English text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {en}")]
pub struct TrialError {
    /// Stable code.
    pub code: &'static str,
    /// Japanese message.
    pub ja: String,
    /// English message.
    pub en: String,
}

fn bad(code: &'static str, ja: String, en: String) -> TrialError {
    TrialError { code, ja, en }
}

/// A detection rate with its interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rate {
    /// Contacts run.
    pub trials: u32,
    /// Contacts the receiver was notified of.
    pub detected: u32,
    /// `detected / trials`.
    pub rate: f64,
    /// Wilson 95 % score interval.
    pub ci95: [f64; 2],
}

impl Rate {
    fn new(detected: u32, trials: u32) -> Self {
        Self {
            trials,
            detected,
            rate: if trials == 0 {
                0.0
            } else {
                f64::from(detected) / f64::from(trials)
            },
            ci95: wilson(detected, trials),
        }
    }
}

/// A warning in both languages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// Japanese.
    pub ja: String,
    /// English.
    pub en: String,
}

/// What a run of trials found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialReport {
    /// Contacts run.
    pub trials: u32,
    /// Contacts detected.
    pub detected: u32,
    /// `detected / trials`.
    pub rate: f64,
    /// Wilson 95 % interval of `rate`.
    pub ci95: [f64; 2],
    /// By `sender:receiver` model pair.
    pub by_pair: BTreeMap<String, Rate>,
    /// The pairs' rates weighted by how often the pair meets in the
    /// population (the product of the two models' market shares); `None`
    /// when no pair has a share.
    pub share_weighted_rate: Option<f64>,
    /// Normal-approximation 95 % interval of `share_weighted_rate` (the
    /// pairs' Wilson widths combined with the same weights).
    pub share_weighted_ci95: Option<[f64; 2]>,
    /// Distance, metres.
    pub distance_m: f64,
    /// Duration, minutes.
    pub minutes: f64,
    /// The fixed placement, or `None` when drawn per trial.
    pub placement: Option<Placement>,
    /// The seed: the same seed and arguments give the same report.
    pub seed: u64,
    /// Rates resting on fewer than [`FEW`] trials.
    pub warnings: Vec<Warning>,
}

/// The Wilson score interval at 95 % (z = 1.96) for `k` successes in `n`
/// trials; `[0, 1]` when `n` is 0. Unlike the normal interval it stays
/// inside [0, 1] and is not empty at 0 or `n` successes.
pub fn wilson(k: u32, n: u32) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = f64::from(n);
    let p = f64::from(k) / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// Parses `A:B` (sender:receiver).
pub fn parse_pair(s: &str) -> Result<(String, String), TrialError> {
    match s.split_once(':') {
        Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok((a.trim().to_owned(), b.trim().to_owned()))
        }
        _ => Err(bad(
            "TRIAL_PAIR",
            format!("機種の組 {s:?} は「送信側:受信側」の形で指定してください（例: iphone:pixel）"),
            format!("model pair {s:?}: expected sender:receiver, e.g. iphone:pixel"),
        )),
    }
}

impl TrialSpec {
    /// Checks the request against the run's models.
    pub fn validate(&self, models: &[PhoneModel]) -> Result<(), TrialError> {
        if !(0.1..=25.5).contains(&self.distance_m) {
            return Err(bad(
                "TRIAL_DISTANCE",
                format!(
                    "距離 {} m は 0.1〜25.5 m の範囲で指定してください",
                    self.distance_m
                ),
                format!(
                    "distance {} m: must be between 0.1 and 25.5 m",
                    self.distance_m
                ),
            ));
        }
        if !(1.0..=1000.0).contains(&self.minutes) {
            return Err(bad(
                "TRIAL_MINUTES",
                format!(
                    "接触時間 {} 分は 1〜1000 分の範囲で指定してください",
                    self.minutes
                ),
                format!(
                    "duration {} minutes: must be between 1 and 1000",
                    self.minutes
                ),
            ));
        }
        let runs = u64::from(self.trials) * self.pairs.len().max(1) as u64;
        if self.trials == 0 || runs > u64::from(MAX_TRIALS) {
            return Err(bad(
                "TRIAL_COUNT",
                format!("試行回数は合計 1〜{MAX_TRIALS} 回にしてください（指定: {runs}）"),
                format!("trials: 1 to {MAX_TRIALS} in all (asked for {runs})"),
            ));
        }
        for (a, b) in &self.pairs {
            for name in [a, b] {
                if !models.iter().any(|m| &m.name == name) {
                    let known: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
                    return Err(bad(
                        "TRIAL_UNKNOWN_MODEL",
                        format!(
                            "機種 {name:?} は電波モデルにありません（あるもの: {}）",
                            known.join(", ")
                        ),
                        format!(
                            "phone model {name:?} is not in the radio model (known: {})",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The model index drawn by market share.
fn draw_model(models: &[PhoneModel], rng: &mut Rng) -> usize {
    let total: f64 = models.iter().map(|m| m.share.max(0.0)).sum();
    let mut x = rng.uniform(0.0, total);
    for (i, m) in models.iter().enumerate() {
        x -= m.share.max(0.0);
        if x < 0.0 {
            return i;
        }
    }
    models.len() - 1
}

/// Whether one contact between `sender` (phone `2·i`) and `receiver` (phone
/// `2·i + 1`) is notified to the receiver.
#[allow(clippy::too_many_arguments)]
fn one_contact(
    config: &SimConfig,
    calendar: &Calendar,
    ear: &Ear<'_>,
    broadcasts: &mut Broadcasts<'_>,
    i: u32,
    start: i64,
    seconds: i64,
    distance_m: f64,
    (sender, receiver): (&PhoneModel, &PhoneModel),
    scan_phase: u16,
) -> bool {
    let (a, b) = (2 * i, 2 * i + 1);
    let Some(e) = Encounter::new(a, b, start, seconds, distance_m, Place::Social) else {
        return false;
    };
    let mut log = Vec::new();
    ear.hear(
        i, &e, b, receiver, scan_phase, a, sender, broadcasts, &mut log, None,
    );
    if log.is_empty() {
        return false;
    }
    let index = SightingIndex::new(log);
    // Every UTC day the contact touches: the sender's key of each, as the key
    // server would publish them after A registers.
    let (first, last) = (calendar.utc_day(e.start()), calendar.utc_day(e.end()));
    let mut windows = Vec::new();
    for day in first..=last {
        let k = daily_key(config.seed, a, day);
        let key = ExposureKey {
            key_data: k.tek.clone(),
            transmission_risk_level: None,
            rolling_start_interval_number: k.rolling_start,
            rolling_period: k.rolling_period,
            report_type: Some(en_protocol::export::ReportType::CONFIRMED_TEST),
            days_since_onset_of_symptoms: None,
            variant_of_concern: None,
        };
        if let Some(m) = index.match_key(&key, 0) {
            windows.extend(windows_of(&index, &key, &m));
        }
    }
    // B checks half a day after the contact ends.
    let now = calendar.datetime(e.end() + 12 * HOUR);
    !contact_days(&windows, &config.scoring, now).is_empty()
}

/// Runs the trials of `spec` under `config` (its seed, scoring, radio and
/// phone models).
pub fn run_trials(config: &SimConfig, spec: &TrialSpec) -> Result<TrialReport, TrialError> {
    spec.validate(&config.phone_models)?;
    let models = &config.phone_models;
    let calendar = Calendar::new(config.start_date);
    let ear = Ear {
        config,
        calendar: &calendar,
        placement: spec.placement,
    };
    let seconds = (spec.minutes * 60.0).round() as i64;
    let interval = u64::from(config.radio.scan.interval_seconds.max(1));
    let index_of = |name: &str| models.iter().position(|m| m.name == name).unwrap_or(0);
    let plan: Vec<Option<(usize, usize)>> = if spec.pairs.is_empty() {
        vec![None; spec.trials as usize]
    } else {
        spec.pairs
            .iter()
            .flat_map(|(a, b)| {
                std::iter::repeat_n(Some((index_of(a), index_of(b))), spec.trials as usize)
            })
            .collect()
    };
    let mut counts: BTreeMap<(usize, usize), (u32, u32)> = BTreeMap::new();
    let mut broadcasts = Broadcasts::new(config);
    for (i, pair) in plan.iter().enumerate() {
        let i = i as u32;
        let mut rng = Rng::new(config.seed, Purpose::Trial, &[u64::from(i)]);
        let (s, r) = pair.unwrap_or_else(|| {
            let s = draw_model(models, &mut rng);
            (s, draw_model(models, &mut rng))
        });
        // Day 2, 10:00 to 17:00 Japan time (01:00 to 08:00 UTC): away from
        // the UTC midnight at which keys roll, as a trial session would be.
        let start = 2 * DAY + 10 * HOUR + rng.below(7 * 3600) as i64;
        let phase = rng.below(interval) as u16;
        let detected = one_contact(
            config,
            &calendar,
            &ear,
            &mut broadcasts,
            i,
            start,
            seconds,
            spec.distance_m,
            (&models[s], &models[r]),
            phase,
        );
        let c = counts.entry((s, r)).or_default();
        c.0 += 1;
        c.1 += u32::from(detected);
        // Each trial's phones are new: forget their broadcasts.
        if broadcasts.len() > 4096 {
            broadcasts = Broadcasts::new(config);
        }
    }
    let trials: u32 = counts.values().map(|c| c.0).sum();
    let detected: u32 = counts.values().map(|c| c.1).sum();
    let share_total: f64 = models.iter().map(|m| m.share.max(0.0)).sum();
    let mut weighted = (0.0, 0.0, 0.0);
    let mut by_pair = BTreeMap::new();
    let mut warnings = Vec::new();
    for (&(s, r), &(n, k)) in &counts {
        let name = format!("{}:{}", models[s].name, models[r].name);
        let rate = Rate::new(k, n);
        if share_total > 0.0 {
            let w = models[s].share.max(0.0) * models[r].share.max(0.0) / share_total.powi(2);
            // The Wilson half-width as the pair's standard error × 1.96.
            let se = (rate.ci95[1] - rate.ci95[0]) / (2.0 * 1.96);
            weighted.0 += w * rate.rate;
            weighted.1 += w;
            weighted.2 += w * w * se * se;
        }
        if n < FEW {
            warnings.push(Warning {
                ja: format!("{name} の率は {n} 回の試行にもとづきます（{FEW} 回未満）"),
                en: format!("the rate of {name} rests on {n} trials (fewer than {FEW})"),
            });
        }
        by_pair.insert(name, rate);
    }
    let (share_weighted_rate, share_weighted_ci95) = if weighted.1 > 0.0 {
        let p = weighted.0 / weighted.1;
        let se = weighted.2.sqrt() / weighted.1;
        (
            Some(p),
            Some([(p - 1.96 * se).max(0.0), (p + 1.96 * se).min(1.0)]),
        )
    } else {
        (None, None)
    };
    if trials < FEW {
        warnings.insert(
            0,
            Warning {
                ja: format!("全体の率は {trials} 回の試行にもとづきます（{FEW} 回未満）"),
                en: format!("the overall rate rests on {trials} trials (fewer than {FEW})"),
            },
        );
    }
    let all = Rate::new(detected, trials);
    Ok(TrialReport {
        trials,
        detected,
        rate: all.rate,
        ci95: all.ci95,
        by_pair,
        share_weighted_rate,
        share_weighted_ci95,
        distance_m: spec.distance_m,
        minutes: spec.minutes,
        placement: spec.placement,
        seed: config.seed,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::Scoring;

    fn spec(distance_m: f64, minutes: f64, trials: u32) -> TrialSpec {
        TrialSpec {
            distance_m,
            minutes,
            trials,
            pairs: Vec::new(),
            placement: None,
        }
    }

    #[test]
    fn wilson_matches_the_textbook_values() {
        // 8 of 10: [0.490, 0.943] (Wilson 1927; Newcombe 1998, table I).
        let [lo, hi] = wilson(8, 10);
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
        // 0 of 10: the lower end is 0, the upper 0.2775.
        let [lo, hi] = wilson(0, 10);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.2775).abs() < 1e-3, "{hi}");
        assert_eq!(wilson(0, 0), [0.0, 1.0]);
        let [lo, hi] = wilson(10, 10);
        assert!((lo - 0.7225).abs() < 1e-3 && (hi - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_trial_at_1_m_detects_far_more_often_than_at_4_m_under_cocoas_values() {
        let config = SimConfig::default();
        // 20 minutes: 4 to 5 scans, just over COCOA's 900 s minimum. (At 30
        // minutes the log-normal fit's spread puts enough 4 m scans in the
        // near bucket that most 4 m contacts are detected too: see
        // docs/simulator.md, "Controlled trials".)
        let near = run_trials(&config, &spec(1.0, 20.0, 500)).unwrap();
        let far = run_trials(&config, &spec(4.0, 20.0, 500)).unwrap();
        assert!(
            near.rate > far.rate + 0.15,
            "1 m {} vs 4 m {}",
            near.rate,
            far.rate
        );
        // The intervals do not overlap.
        assert!(near.ci95[0] > far.ci95[1], "{:?} {:?}", near.ci95, far.ci95);
        assert_eq!(near.trials, 500);
        assert_eq!(near.by_pair.values().map(|r| r.trials).sum::<u32>(), 500);
        assert!(near.share_weighted_rate.is_some());
    }

    #[test]
    fn trials_repeat_by_seed_and_differ_across_seeds() {
        let mut config = SimConfig::default();
        let s = spec(1.5, 20.0, 200);
        let a = run_trials(&config, &s).unwrap();
        assert_eq!(a, run_trials(&config, &s).unwrap());
        config.seed = 2;
        let b = run_trials(&config, &s).unwrap();
        assert_eq!(b.seed, 2);
        assert_ne!(
            (a.detected, &a.by_pair),
            (b.detected, &b.by_pair),
            "another seed draws other contacts"
        );
    }

    #[test]
    fn named_pairs_run_k_trials_each_and_weight_by_share() {
        let config = SimConfig::default();
        let mut s = spec(1.0, 30.0, 40);
        s.pairs = vec![
            ("iphone".into(), "iphone".into()),
            ("budget".into(), "iphone".into()),
        ];
        s.placement = Some(Placement::Face);
        let r = run_trials(&config, &s).unwrap();
        assert_eq!(r.trials, 80);
        assert_eq!(r.by_pair["iphone:iphone"].trials, 40);
        assert_eq!(r.by_pair["budget:iphone"].trials, 40);
        // iphone:iphone meets 0.55² of the time, budget:iphone 0.15·0.55.
        let (a, b) = (&r.by_pair["iphone:iphone"], &r.by_pair["budget:iphone"]);
        let w = (0.55 * 0.55 * a.rate + 0.15 * 0.55 * b.rate) / (0.55 * 0.55 + 0.15 * 0.55);
        assert!((r.share_weighted_rate.unwrap() - w).abs() < 1e-12);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    #[test]
    fn a_bag_attenuates_more_than_a_face_and_fewer_contacts_are_detected() {
        // 1 m face to face lands in COCOA's "near" bucket (×2.5); two bags add
        // 16 dB and push most scans into "other" (×0.01).
        let config = SimConfig::default();
        let mut face = spec(1.0, 30.0, 200);
        face.placement = Some(Placement::Face);
        let mut bag = face.clone();
        bag.placement = Some(Placement::Bag);
        let (f, b) = (
            run_trials(&config, &face).unwrap(),
            run_trials(&config, &bag).unwrap(),
        );
        assert!(f.rate > b.rate, "face {} bag {}", f.rate, b.rate);
    }

    #[test]
    fn another_configuration_changes_the_rate() {
        // No minimum seconds and a score threshold of 1: every heard contact
        // is a contact day.
        let mut config = SimConfig::default();
        let strict = run_trials(&config, &spec(2.0, 15.0, 200)).unwrap();
        let mut loose: Scoring = Scoring::cocoa();
        let json = serde_json::to_value(&loose.risk).unwrap();
        let text = json.to_string();
        assert!(text.contains("1350"), "{text}");
        loose = Scoring {
            risk: serde_json::from_str(&text.replace("1350", "1").replace("900", "0")).unwrap(),
            ..loose
        };
        config.scoring = loose;
        let relaxed = run_trials(&config, &spec(2.0, 15.0, 200)).unwrap();
        assert!(
            relaxed.rate > strict.rate,
            "{} {}",
            relaxed.rate,
            strict.rate
        );
    }

    #[test]
    fn bad_requests_are_refused_with_their_codes() {
        let config = SimConfig::default();
        let code = |s: TrialSpec| run_trials(&config, &s).unwrap_err().code;
        assert_eq!(code(spec(0.0, 15.0, 10)), "TRIAL_DISTANCE");
        assert_eq!(code(spec(30.0, 15.0, 10)), "TRIAL_DISTANCE");
        assert_eq!(code(spec(f64::NAN, 15.0, 10)), "TRIAL_DISTANCE");
        assert_eq!(code(spec(1.0, 0.5, 10)), "TRIAL_MINUTES");
        assert_eq!(code(spec(1.0, 15.0, 0)), "TRIAL_COUNT");
        assert_eq!(code(spec(1.0, 15.0, MAX_TRIALS + 1)), "TRIAL_COUNT");
        let mut s = spec(1.0, 15.0, 10);
        s.pairs = vec![("iphone".into(), "nokia".into())];
        let e = run_trials(&config, &s).unwrap_err();
        assert_eq!(e.code, "TRIAL_UNKNOWN_MODEL");
        assert!(e.ja.contains("nokia") && e.en.contains("iphone, pixel"));
        assert_eq!(parse_pair("iphone").unwrap_err().code, "TRIAL_PAIR");
        assert_eq!(parse_pair(":x").unwrap_err().code, "TRIAL_PAIR");
        assert_eq!(
            parse_pair("iphone:pixel").unwrap(),
            ("iphone".to_owned(), "pixel".to_owned())
        );
    }
}
