//! The disease: who infects whom at an encounter, and the course of an
//! infection — onset, infectiousness, test, result, isolation.
//!
//! - Infection: a hazard per minute of `transmissibility × closeness(d) ×
//!   infectiousness(t)`, with `closeness(d) = 1` within 1 m and `1/d²`
//!   beyond (droplets and aerosol thin out with distance).
//! - Incubation: log-normal, median 4.6 days.
//! - Infectiousness: from 2.5 days before onset (never before a day after
//!   infection), rising to a peak at onset, falling to zero 8 days after;
//!   half as much without symptoms.
//! - Test: most symptomatic people, a half day plus an exponential delay
//!   after onset; a few asymptomatic ones, 3 to 10 days after infection.
//!   The result (the diagnosis, 陽性判明) comes half a day to a day and a
//!   half later.
//! - Isolation: from the result; half of the symptomatic already from the
//!   day after onset.

use crate::config::SimConfig;
use crate::encounters::{Encounter, Place};
use crate::rng::{Purpose, Rng};
use crate::time::{DAY, SimTime};

/// The course of one infection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Course {
    /// When the person was infected.
    pub infected_at: SimTime,
    /// Who infected them (none for the initial infections).
    pub source: Option<u32>,
    /// Where.
    pub place: Option<Place>,
    /// With symptoms.
    pub symptomatic: bool,
    /// Symptom onset (for asymptomatic infections, when it would have been).
    pub onset: SimTime,
    /// Infectious from...
    pub infectious_from: SimTime,
    /// ...until.
    pub infectious_until: SimTime,
    /// Relative infectiousness at the peak.
    pub peak: f64,
    /// When tested, if ever.
    pub test_at: Option<SimTime>,
    /// When the positive result was known (陽性判明), if ever.
    pub diagnosed_at: Option<SimTime>,
    /// From when the person stays home ([`SimTime::MAX`]: never).
    pub isolates_at: SimTime,
}

impl Course {
    /// Draws the course of `person`'s infection at `infected_at`.
    pub fn draw(
        config: &SimConfig,
        person: u32,
        infected_at: SimTime,
        source: Option<u32>,
        place: Option<Place>,
    ) -> Self {
        let e = &config.epidemic;
        let h = &config.health;
        let mut rng = Rng::new(config.seed, Purpose::Course, &[u64::from(person)]);
        let symptomatic = rng.chance(e.symptomatic_share);
        let incubation = rng.lognormal(e.incubation_median_days, e.incubation_sigma);
        let onset = infected_at + (incubation * DAY as f64) as i64;
        let infectious_from =
            (onset - (e.infectious_before_onset_days * DAY as f64) as i64).max(infected_at + DAY);
        let infectious_until = onset + (e.infectious_after_onset_days * DAY as f64) as i64;
        let test_at = if symptomatic {
            rng.chance(h.test_share_symptomatic).then(|| {
                onset + DAY / 2 + (rng.exponential(h.test_delay_mean_days) * DAY as f64) as i64
            })
        } else {
            rng.chance(h.test_share_asymptomatic)
                .then(|| infected_at + (rng.uniform(3.0, 10.0) * DAY as f64) as i64)
        };
        let diagnosed_at = test_at.map(|t| {
            t + (rng.uniform(h.result_delay_min_days, h.result_delay_max_days) * DAY as f64) as i64
        });
        let self_isolates = symptomatic && rng.chance(h.self_isolation_share);
        let isolates_at = diagnosed_at.unwrap_or(SimTime::MAX).min(if self_isolates {
            onset + DAY
        } else {
            SimTime::MAX
        });
        Self {
            infected_at,
            source,
            place,
            symptomatic,
            onset,
            infectious_from,
            infectious_until,
            peak: if symptomatic {
                1.0
            } else {
                e.asymptomatic_infectiousness
            },
            test_at,
            diagnosed_at,
            isolates_at,
        }
    }

    /// Relative infectiousness at `t`, 0 to 1.
    pub fn infectiousness(&self, t: SimTime) -> f64 {
        if t < self.infectious_from || t >= self.infectious_until {
            return 0.0;
        }
        let shape = if t < self.onset {
            let rise = (self.onset - self.infectious_from).max(1) as f64;
            1.0 - (self.onset - t) as f64 / rise * 0.9
        } else {
            let fall = (self.infectious_until - self.onset).max(1) as f64;
            1.0 - (t - self.onset) as f64 / fall
        };
        self.peak * shape.clamp(0.0, 1.0)
    }

    /// The date the patient types on the registration screen: the onset
    /// date, or the test date when there are no symptoms (a simulated time;
    /// the caller turns it into a Japan date).
    pub fn registration_date_time(&self) -> SimTime {
        if self.symptomatic {
            self.onset
        } else {
            self.test_at.unwrap_or(self.onset)
        }
    }
}

/// How much of the hazard reaches a person at `distance_m`.
pub fn closeness(distance_m: f64) -> f64 {
    if distance_m <= 1.0 {
        1.0
    } else {
        1.0 / (distance_m * distance_m)
    }
}

/// Probability that `source` (with course `course`) infects the other
/// person of `e`.
pub fn infection_probability(config: &SimConfig, course: &Course, e: &Encounter) -> f64 {
    let mid = e.start() + i64::from(e.seconds) / 2;
    let inf = course.infectiousness(mid);
    if inf <= 0.0 {
        return 0.0;
    }
    let minutes = f64::from(e.seconds) / 60.0;
    let hazard =
        config.epidemic.transmissibility_per_minute * closeness(e.distance_m()) * minutes * inf;
    1.0 - (-hazard).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infectiousness_peaks_at_onset_and_ends() {
        let config = SimConfig::default();
        let c = (0..50)
            .map(|p| Course::draw(&config, p, 0, None, None))
            .find(|c| c.symptomatic)
            .unwrap();
        assert!(c.infectious_from >= DAY);
        assert_eq!(c.infectiousness(c.onset), 1.0);
        assert!(c.infectiousness(c.onset - DAY) < 1.0);
        assert!(c.infectiousness(c.onset + 2 * DAY) < 1.0);
        assert_eq!(c.infectiousness(c.infectious_until), 0.0);
        assert_eq!(c.infectiousness(c.infectious_from - 1), 0.0);
        if let Some(d) = c.diagnosed_at {
            assert!(d > c.test_at.unwrap() && c.isolates_at <= d);
        }
    }

    #[test]
    fn closer_and_longer_is_riskier() {
        let config = SimConfig::default();
        let c = Course {
            infected_at: 0,
            source: None,
            place: None,
            symptomatic: true,
            onset: 5 * DAY,
            infectious_from: 3 * DAY,
            infectious_until: 12 * DAY,
            peak: 1.0,
            test_at: None,
            diagnosed_at: None,
            isolates_at: SimTime::MAX,
        };
        let e = |minutes: i64, d: f64| {
            Encounter::new(0, 1, 5 * DAY, minutes * 60, d, Place::Social).unwrap()
        };
        let p15 = infection_probability(&config, &c, &e(15, 1.0));
        assert!(p15 > 0.0 && p15 < infection_probability(&config, &c, &e(60, 1.0)));
        assert!(infection_probability(&config, &c, &e(15, 3.0)) < p15);
        assert_eq!(closeness(0.5), 1.0);
        assert_eq!(closeness(2.0), 0.25);
    }
}
