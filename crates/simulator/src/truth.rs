//! Who should be warned, from the encounters alone.
//!
//! COCOA's definition of a contact — about 1 m for 15 minutes or more — with
//! a registered positive, during the seed's window: from 00:00 JST two days
//! before the onset (or test) date, never more than 14 days before the
//! registration, up to the registration. Minutes add up over the encounters
//! of one UTC day with one positive (the day a phone scores), counting only
//! the part of each encounter inside the window.

use std::collections::HashMap;

use crate::config::SimConfig;
use crate::encounters::Place;
use crate::registration::Registration;
use crate::time::SimTime;
use crate::world::World;

/// What one person's encounters with one registered positive add up to,
/// for the best UTC day of each measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRecord {
    /// The person who may be warned.
    pub person: u32,
    /// The registered positive.
    pub positive: u32,
    /// Most seconds within the distance, inside the window, in one day.
    pub close_in_window: i64,
    /// Most seconds at any distance, inside the window, in one day.
    pub any_in_window: i64,
    /// Most seconds within the distance, outside the window, in one day.
    pub close_outside_window: i64,
    /// Most seconds within the relaxed distance, inside the window, in one day.
    pub near_in_window: i64,
    /// Where most of the close seconds inside the window were spent.
    pub place: Place,
    /// The first UTC day (Unix days) with a qualifying contact.
    pub first_day: Option<i64>,
}

impl PairRecord {
    /// Whether this pair is a contact that should be warned.
    pub fn qualifies(&self, threshold_seconds: i64) -> bool {
        self.close_in_window >= threshold_seconds
    }
}

/// The ground truth of a run.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Every pair of (person, registered positive) that met, by person.
    pub pairs: Vec<PairRecord>,
    /// Per person who should be warned: the earliest positive result among
    /// the positives they had a qualifying contact with.
    pub should: HashMap<u32, SimTime>,
    /// People without the app who had a qualifying contact.
    pub should_without_app: u64,
    /// App users with such a contact within the relaxed distance.
    pub relaxed: std::collections::HashSet<u32>,
    /// Seconds that make a contact.
    pub threshold_seconds: i64,
}

#[derive(Default, Clone, Copy)]
struct DayAcc {
    close_in: i64,
    near_in: i64,
    any_in: i64,
    close_out: i64,
}

/// Computes the ground truth for the registrations of a run.
pub fn ground_truth(world: &World, config: &SimConfig, registrations: &[Registration]) -> Truth {
    let cal = &world.calendar;
    let threshold = (config.truth.minutes * 60.0).round() as i64;
    let max_dm = (config.truth.distance_m * 10.0).round() as u8;
    let near_dm = (config.truth.relaxed_distance_m * 10.0).round() as u8;
    let mut pairs = Vec::new();
    for r in registrations {
        let p = r.person;
        // (partner, UTC day) → seconds; (partner, place) → close seconds.
        let mut days: HashMap<(u32, i64), DayAcc> = HashMap::new();
        let mut places: HashMap<u32, HashMap<Place, i64>> = HashMap::new();
        for &id in world.encounters.of(p) {
            let e = world.encounters.get(id);
            let q = e.partner(p);
            let close = e.distance_dm <= max_dm;
            // Split at UTC midnights.
            let mut t = e.start();
            while t < e.end() {
                let day = cal.utc_day(t);
                let day_end = cal.utc_day_start(day + 1).min(e.end());
                let inside = (day_end.min(r.registered_at) - t.max(r.window_from)).max(0);
                let total = day_end - t;
                let acc = days.entry((q, day)).or_default();
                acc.any_in += inside;
                if e.distance_dm <= near_dm {
                    acc.near_in += inside;
                }
                if close {
                    acc.close_in += inside;
                    acc.close_out += total - inside;
                    if inside > 0 {
                        *places.entry(q).or_default().entry(e.place).or_default() += inside;
                    }
                }
                t = day_end;
            }
        }
        let mut by_partner: HashMap<u32, PairRecord> = HashMap::new();
        let mut sorted: Vec<_> = days.into_iter().collect();
        sorted.sort_unstable_by_key(|((q, d), _)| (*q, *d));
        for ((q, day), acc) in sorted {
            let rec = by_partner.entry(q).or_insert_with(|| PairRecord {
                person: q,
                positive: p,
                close_in_window: 0,
                any_in_window: 0,
                close_outside_window: 0,
                near_in_window: 0,
                place: Place::Home,
                first_day: None,
            });
            rec.close_in_window = rec.close_in_window.max(acc.close_in);
            rec.any_in_window = rec.any_in_window.max(acc.any_in);
            rec.close_outside_window = rec.close_outside_window.max(acc.close_out);
            rec.near_in_window = rec.near_in_window.max(acc.near_in);
            if acc.close_in >= threshold && rec.first_day.is_none() {
                rec.first_day = Some(day);
            }
        }
        for (q, rec) in &mut by_partner {
            if let Some(ps) = places.get(q) {
                let mut best: Vec<(&Place, &i64)> = ps.iter().collect();
                best.sort_unstable_by_key(|(place, s)| (std::cmp::Reverse(**s), **place));
                rec.place = *best[0].0;
            }
        }
        pairs.extend(by_partner.into_values());
    }
    pairs.sort_unstable_by_key(|r| (r.person, r.positive));

    let diagnosed: HashMap<u32, SimTime> = registrations
        .iter()
        .map(|r| (r.person, r.diagnosed_at))
        .collect();
    let mut should: HashMap<u32, SimTime> = HashMap::new();
    let mut without_app = std::collections::HashSet::new();
    let relaxed = pairs
        .iter()
        .filter(|r| r.near_in_window >= threshold)
        .filter(|r| world.population.people[r.person as usize].phone.is_some())
        .map(|r| r.person)
        .collect();
    for rec in pairs.iter().filter(|r| r.qualifies(threshold)) {
        if world.population.people[rec.person as usize].phone.is_some() {
            let d = diagnosed[&rec.positive];
            let e = should.entry(rec.person).or_insert(d);
            *e = (*e).min(d);
        } else {
            without_app.insert(rec.person);
        }
    }
    Truth {
        pairs,
        should,
        should_without_app: without_app.len() as u64,
        relaxed,
        threshold_seconds: threshold,
    }
}

/// Why a notified phone was not one that should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FalseReason {
    /// A close, long contact, but before the window (the key of day D−3
    /// starts 15 hours before it).
    OutsideWindow,
    /// Long enough, but farther than the distance.
    TooFar,
    /// Close, but shorter than 15 minutes.
    TooShort,
    /// Several positives or nothing that explains it.
    Other,
}

impl Truth {
    /// Why `person`, notified, was not in the truth.
    pub fn false_reason(&self, person: u32) -> FalseReason {
        let from = self.pairs.partition_point(|r| r.person < person);
        let mine = self.pairs[from..].iter().take_while(|r| r.person == person);
        let mut reason = FalseReason::Other;
        for r in mine {
            let this = if r.close_outside_window >= self.threshold_seconds {
                FalseReason::OutsideWindow
            } else if r.any_in_window >= self.threshold_seconds {
                FalseReason::TooFar
            } else if r.close_in_window > 0 {
                FalseReason::TooShort
            } else {
                FalseReason::Other
            };
            reason = reason.min(this);
        }
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY;
    use crate::world::Scenario;

    fn registration(person: u32, from: SimTime, at: SimTime) -> Registration {
        Registration {
            person,
            diagnosed_at: at - 3600,
            issued_at: at - 600,
            registered_at: at,
            window_from: from,
            keys_sent: 5,
            keys_stored: 5,
            numbers: 1,
        }
    }

    #[test]
    fn fifteen_close_minutes_in_the_window_make_a_contact() {
        let mut s = Scenario::new(SimConfig {
            days: 6,
            ..SimConfig::default()
        });
        let p = s.person(Some(0));
        let near = s.person(Some(0));
        let short = s.person(Some(0));
        let far = s.person(Some(0));
        let early = s.person(Some(0));
        let no_app = s.person(None);
        let t = 3 * DAY + 3 * 3600; // 03:00 JST = 18:00 UTC of the day before
        s.meet(p, near, t, 10.0, 1.0);
        s.meet(p, near, t + 3600, 6.0, 0.8); // same UTC day: 16 minutes
        s.meet(p, short, t, 14.0, 0.5);
        s.meet(p, far, t, 60.0, 1.5);
        s.meet(p, early, DAY, 60.0, 1.0);
        s.meet(p, no_app, t, 30.0, 1.0);
        let (config, world) = s.build();
        let truth = ground_truth(&world, &config, &[registration(p, 2 * DAY, 5 * DAY)]);
        assert_eq!(truth.should.len(), 1);
        assert!(truth.should.contains_key(&near));
        assert_eq!(truth.should_without_app, 1);
        assert_eq!(truth.false_reason(short), FalseReason::TooShort);
        assert_eq!(truth.false_reason(far), FalseReason::TooFar);
        assert_eq!(truth.false_reason(early), FalseReason::OutsideWindow);
        let rec = truth.pairs.iter().find(|r| r.person == near).unwrap();
        assert_eq!(rec.close_in_window, 16 * 60);
        assert_eq!(rec.place, Place::Social);
    }
}
