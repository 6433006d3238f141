//! `cocoa simulate … --compare <current>,<candidate>`: a parameter change
//! checked against a population before it ships (issue 14: "the same
//! population and encounters under both configurations; recall, precision
//! and notified counts side by side with 95 % intervals and the paired
//! difference with its interval; the trial rates at 0.5 / 1 / 1.5 / 2 / 3 m ×
//! 15 / 30 min for both").
//!
//! Both configurations are scoring variants of one run
//! ([`crate::SimConfig::scoring_variants`]): every phone hears, matches and
//! cuts windows once, and each configuration's day rule decides on the same
//! windows, so the two columns differ only by the configuration. The paired
//! differences come from a bootstrap over the people either configuration
//! notified or should have notified ([`BOOTSTRAP_RESAMPLES`] resamples,
//! seeded): each person keeps both outcomes, which is what makes the
//! interval of a difference far narrower than the two intervals side by side.

use serde::Serialize;

use crate::config::SimConfig;
use crate::fleet::FleetResult;
use crate::rng::{Purpose, Rng};
use crate::scoring::Scoring;
use crate::trial::{FEW, Rate, TrialSpec, Warning, run_trials, wilson};
use crate::truth::Truth;

/// Resamples of the paired bootstrap.
pub const BOOTSTRAP_RESAMPLES: u32 = 2_000;

/// Contacts per cell of the trial grid.
pub const GRID_TRIALS: u32 = 400;

/// The grid's distances, metres.
pub const GRID_DISTANCES_M: [f64; 5] = [0.5, 1.0, 1.5, 2.0, 3.0];

/// The grid's durations, minutes.
pub const GRID_MINUTES: [f64; 2] = [15.0, 30.0];

/// One configuration's results on the population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arm {
    /// Phones notified.
    pub notified: u64,
    /// Of them, should have been.
    pub true_positives: u64,
    /// `true_positives / should_be_notified`.
    pub recall: Option<f64>,
    /// Wilson 95 % interval of `recall`.
    pub recall_ci95: Option<[f64; 2]>,
    /// `true_positives / notified`.
    pub precision: Option<f64>,
    /// Wilson 95 % interval of `precision`.
    pub precision_ci95: Option<[f64; 2]>,
}

/// A paired difference, candidate − current.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The difference on the run.
    pub value: f64,
    /// Bootstrap 95 % percentile interval.
    pub ci95: [f64; 2],
}

/// The trial rates of one grid cell under both configurations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridCell {
    /// Distance, metres.
    pub distance_m: f64,
    /// Duration, minutes.
    pub minutes: f64,
    /// The current configuration's rate.
    pub current: Rate,
    /// The candidate's rate.
    pub candidate: Rate,
}

/// Current against candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// App users who should be notified (the same for both).
    pub should_be_notified: u64,
    /// The current configuration.
    pub current: Arm,
    /// The candidate.
    pub candidate: Arm,
    /// Candidate − current recall.
    pub recall_difference: Option<Difference>,
    /// Candidate − current precision.
    pub precision_difference: Option<Difference>,
    /// Candidate − current phones notified.
    pub notified_difference: Difference,
    /// Phones only the candidate notifies.
    pub notified_only_by_candidate: u64,
    /// Phones only the current configuration notifies.
    pub notified_only_by_current: u64,
    /// Controlled trials at 0.5–3 m × 15 / 30 min, [`GRID_TRIALS`] each.
    pub trials: Vec<GridCell>,
    /// Rates resting on fewer than 30 people.
    pub warnings: Vec<Warning>,
}

/// One person's outcomes: should be notified, notified by current, by candidate.
#[derive(Debug, Clone, Copy)]
struct Unit {
    should: bool,
    current: bool,
    candidate: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    should: u64,
    notified: [u64; 2],
    true_positives: [u64; 2],
}

impl Counts {
    fn add(&mut self, u: Unit) {
        self.should += u64::from(u.should);
        for (i, n) in [u.current, u.candidate].into_iter().enumerate() {
            self.notified[i] += u64::from(n);
            self.true_positives[i] += u64::from(n && u.should);
        }
    }

    fn recall(&self, i: usize) -> Option<f64> {
        (self.should > 0).then(|| self.true_positives[i] as f64 / self.should as f64)
    }

    fn precision(&self, i: usize) -> Option<f64> {
        (self.notified[i] > 0).then(|| self.true_positives[i] as f64 / self.notified[i] as f64)
    }
}

fn arm(c: &Counts, i: usize) -> Arm {
    let interval = |k: u64, n: u64| {
        (n > 0).then(|| {
            wilson(
                u32::try_from(k).unwrap_or(u32::MAX),
                u32::try_from(n).unwrap_or(u32::MAX),
            )
        })
    };
    Arm {
        notified: c.notified[i],
        true_positives: c.true_positives[i],
        recall: c.recall(i),
        recall_ci95: interval(c.true_positives[i], c.should),
        precision: c.precision(i),
        precision_ci95: interval(c.true_positives[i], c.notified[i]),
    }
}

/// The 2.5th and 97.5th percentiles.
fn percentile_interval(mut v: Vec<f64>) -> [f64; 2] {
    if v.is_empty() {
        return [f64::NAN, f64::NAN];
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    [at(0.025), at(0.975)]
}

/// Compares variant 0 (current) with the last variant (the candidate) of
/// `fleet` against `truth`, and runs the trial grid under both.
pub fn compare(
    config: &SimConfig,
    current: &Scoring,
    candidate: &Scoring,
    fleet: &FleetResult,
    truth: &Truth,
) -> Comparison {
    let last = config.scoring_variants().len() - 1;
    let mut units: Vec<Unit> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for o in &fleet.outcomes {
        let u = Unit {
            should: truth.should.contains_key(&o.person),
            current: o.notified_at.first().copied().flatten().is_some(),
            candidate: o.notified_at.get(last).copied().flatten().is_some(),
        };
        seen.insert(o.person);
        if u.should || u.current || u.candidate {
            units.push(u);
        }
    }
    // Should have been warned, but the phone never matched anything.
    for p in truth.should.keys() {
        if !seen.contains(p) {
            units.push(Unit {
                should: true,
                current: false,
                candidate: false,
            });
        }
    }
    let mut all = Counts::default();
    for u in &units {
        all.add(*u);
    }
    let (only_candidate, only_current) = units.iter().fold((0, 0), |(a, b), u| {
        (
            a + u64::from(u.candidate && !u.current),
            b + u64::from(u.current && !u.candidate),
        )
    });

    // The paired bootstrap.
    let mut rng = Rng::new(config.seed, Purpose::Bootstrap, &[]);
    let (mut recall, mut precision, mut notified) = (Vec::new(), Vec::new(), Vec::new());
    if !units.is_empty() {
        for _ in 0..BOOTSTRAP_RESAMPLES {
            let mut c = Counts::default();
            for _ in 0..units.len() {
                c.add(units[rng.below(units.len() as u64) as usize]);
            }
            if let (Some(a), Some(b)) = (c.recall(0), c.recall(1)) {
                recall.push(b - a);
            }
            if let (Some(a), Some(b)) = (c.precision(0), c.precision(1)) {
                precision.push(b - a);
            }
            notified.push(c.notified[1] as f64 - c.notified[0] as f64);
        }
    }
    let difference = |value: Option<f64>, samples: Vec<f64>| {
        value.map(|value| Difference {
            value,
            ci95: if samples.is_empty() {
                [value, value]
            } else {
                percentile_interval(samples)
            },
        })
    };
    let recall_difference =
        difference(all.recall(1).zip(all.recall(0)).map(|(b, a)| b - a), recall);
    let precision_difference = difference(
        all.precision(1).zip(all.precision(0)).map(|(b, a)| b - a),
        precision,
    );
    let notified_difference = difference(
        Some(all.notified[1] as f64 - all.notified[0] as f64),
        notified,
    )
    .unwrap_or(Difference {
        value: 0.0,
        ci95: [0.0, 0.0],
    });

    let mut warnings = Vec::new();
    if all.should < u64::from(FEW) {
        warnings.push(Warning {
            ja: format!(
                "再現率は通知されるべき {} 人にもとづきます（{FEW} 人未満）。人数を増やしてください",
                all.should
            ),
            en: format!(
                "recall rests on {} people who should be notified (fewer than {FEW}); simulate more people",
                all.should
            ),
        });
    }
    for (name_ja, name_en, n) in [
        ("現行", "current", all.notified[0]),
        ("候補", "candidate", all.notified[1]),
    ] {
        if n < u64::from(FEW) {
            warnings.push(Warning {
                ja: format!("{name_ja}の適合率は通知された {n} 人にもとづきます（{FEW} 人未満）"),
                en: format!(
                    "the {name_en} precision rests on {n} notified people (fewer than {FEW})"
                ),
            });
        }
    }

    let grid = |scoring: &Scoring, distance_m: f64, minutes: f64| -> Rate {
        let c = SimConfig {
            scoring: scoring.clone(),
            sweep: None,
            candidate: None,
            ..config.clone()
        };
        let spec = TrialSpec {
            distance_m,
            minutes,
            trials: GRID_TRIALS,
            pairs: Vec::new(),
            placement: None,
        };
        run_trials(&c, &spec).map_or_else(
            |_| Rate {
                trials: 0,
                detected: 0,
                rate: 0.0,
                ci95: [0.0, 1.0],
            },
            |r| Rate {
                trials: r.trials,
                detected: r.detected,
                rate: r.rate,
                ci95: r.ci95,
            },
        )
    };
    let mut trials = Vec::new();
    for minutes in GRID_MINUTES {
        for distance_m in GRID_DISTANCES_M {
            trials.push(GridCell {
                distance_m,
                minutes,
                current: grid(current, distance_m, minutes),
                candidate: grid(candidate, distance_m, minutes),
            });
        }
    }
    Comparison {
        should_be_notified: all.should,
        current: arm(&all, 0),
        candidate: arm(&all, 1),
        recall_difference,
        precision_difference,
        notified_difference,
        notified_only_by_candidate: only_candidate,
        notified_only_by_current: only_current,
        trials,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_interval_takes_the_tails() {
        let v: Vec<f64> = (0..=1000).map(f64::from).collect();
        assert_eq!(percentile_interval(v), [25.0, 975.0]);
    }

    #[test]
    fn counts_give_recall_and_precision_per_arm() {
        let mut c = Counts::default();
        for u in [
            (true, true, true),
            (true, false, true),
            (false, true, false),
            (true, false, false),
        ] {
            c.add(Unit {
                should: u.0,
                current: u.1,
                candidate: u.2,
            });
        }
        assert_eq!(c.recall(0), Some(1.0 / 3.0));
        assert_eq!(c.recall(1), Some(2.0 / 3.0));
        assert_eq!(c.precision(0), Some(0.5));
        assert_eq!(c.precision(1), Some(1.0));
    }
}
