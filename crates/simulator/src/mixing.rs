//! One day of mixing: who meets whom, where, for how long and how close.
//!
//! | place | when | who | distance |
//! |---|---|---|---|
//! | home | 06:30, evenings, daytime for whoever stays in | household pairs | 1–4 m |
//! | home at night | 23:00–06:30 | household pairs | couples 0.8–1.5 m, others 3–7 m |
//! | school | weekdays 08:30–15:00 | classmates within 6 m of each other's seat | seat grid 1.2 × 1.0 m |
//! | work | weekdays 09:00–17:30 | team members within 6 m | desk grid 1.6 × 1.4 m |
//! | meeting, lunch, break | weekdays | team and workplace colleagues | 0.7–2 m |
//! | train | weekday rush hours | riders of one line and departure slot | 0.3–2 m |
//! | shop | daily | shoppers of one shop and hour | 0.8–3 m |
//! | social | evenings and weekends | groups of 2–6 from anywhere | 0.6–1.5 m |
//!
//! People who isolate (after a positive result, or after symptoms for some)
//! stay home: only household encounters remain.

use crate::config::SimConfig;
use crate::encounters::{Encounter, Place};
use crate::population::{EVENING_SLOTS, GroupKind, MORNING_SLOTS, Population, Role};
use crate::rng::{Purpose, Rng};
use crate::time::{DAY, HOUR, MINUTE, SimTime};

/// Bluetooth range that counts as an encounter in a room, metres.
pub const ROOM_RANGE_M: f64 = 6.0;

/// One day's generator.
struct Day<'a> {
    pop: &'a Population,
    base: SimTime,
    /// Time from which each person stays home.
    isolated_from: &'a [SimTime],
    out: Vec<Encounter>,
}

impl Day<'_> {
    fn free(&self, p: u32, at: SimTime) -> bool {
        at < self.isolated_from[p as usize]
    }

    fn push(&mut self, a: u32, b: u32, start: SimTime, seconds: i64, d: f64, place: Place) {
        if let Some(e) = Encounter::new(a, b, start, seconds, d, place) {
            self.out.push(e);
        }
    }

    fn at(&self, hours: f64) -> SimTime {
        self.base + (hours * HOUR as f64) as i64
    }
}

/// The encounters of day `day` (0-based), given who isolates from when.
pub fn day_encounters(
    pop: &Population,
    config: &SimConfig,
    day: i64,
    weekday: u32,
    isolated_from: &[SimTime],
) -> Vec<Encounter> {
    let mut rng = Rng::new(config.seed, Purpose::Day, &[day as u64]);
    let mut d = Day {
        pop,
        base: day * DAY,
        isolated_from,
        out: Vec::with_capacity(pop.len() * 12),
    };
    let weekend = weekday >= 5;
    homes(&mut d, &mut rng, weekend);
    if !weekend {
        classes(&mut d, &mut rng);
        teams(&mut d, &mut rng, 1.0);
        trains(&mut d, &mut rng, 1.0);
    } else if weekday == 5 {
        teams(&mut d, &mut rng, 0.1);
        trains(&mut d, &mut rng, 0.2);
    }
    shops(&mut d, &mut rng, weekend);
    social(&mut d, &mut rng, weekday);
    d.out
}

/// When a person comes home on a weekday (hours after midnight).
fn home_from(role: Role, rng: &mut Rng) -> f64 {
    match role {
        Role::Worker => 18.0 + rng.uniform(0.0, 2.5),
        Role::Student => 16.0 + rng.uniform(0.0, 3.0),
        Role::Child => 15.5 + rng.uniform(0.0, 1.0),
        Role::Retiree => 8.0,
    }
}

fn homes(d: &mut Day<'_>, rng: &mut Rng, weekend: bool) {
    let pop = d.pop;
    for h in 0..pop.households.len() as u32 {
        let members = pop.household_members(h);
        if members.len() < 2 {
            continue;
        }
        let noon = d.at(12.0);
        let arrive: Vec<f64> = members
            .clone()
            .map(|p| {
                let person = &pop.people[p as usize];
                if weekend || !d.free(p, noon) {
                    8.0
                } else {
                    home_from(person.role, rng)
                }
            })
            .collect();
        let first = members.start;
        for a in members.clone() {
            for b in a + 1..members.end {
                let (ia, ib) = ((a - first) as usize, (b - first) as usize);
                let couple = ia == 0 && ib == 1;
                // Breakfast.
                let start = d.at(6.5) + rng.below(30) as i64 * MINUTE;
                d.push(
                    a,
                    b,
                    start,
                    rng.between(20, 50) as i64 * MINUTE,
                    rng.uniform(1.0, 3.0),
                    Place::Home,
                );
                // Daytime for those both at home.
                let both_in = arrive[ia] <= 8.0 && arrive[ib] <= 8.0;
                if both_in {
                    let hours = rng.uniform(3.0, 8.0);
                    d.push(
                        a,
                        b,
                        d.at(9.0),
                        (hours * HOUR as f64) as i64,
                        rng.uniform(1.0, 4.0),
                        Place::Home,
                    );
                }
                // Evening, from the later arrival to 23:00.
                let from = arrive[ia].max(arrive[ib]).max(17.0);
                if from < 23.0 {
                    let start = d.at(from);
                    d.push(
                        a,
                        b,
                        start,
                        d.at(23.0) - start,
                        rng.uniform(1.0, 4.0),
                        Place::Home,
                    );
                }
                // Night.
                let dist = if couple {
                    rng.uniform(0.8, 1.5)
                } else {
                    rng.uniform(3.0, 7.0)
                };
                d.push(
                    a,
                    b,
                    d.at(23.0),
                    (7.5 * HOUR as f64) as i64,
                    dist,
                    Place::HomeNight,
                );
            }
        }
    }
}

/// Distance between two seats of a grid `columns` wide.
fn grid_distance(a: u16, b: u16, columns: u16, dx: f64, dy: f64) -> f64 {
    let (ra, ca) = (f64::from(a / columns), f64::from(a % columns));
    let (rb, cb) = (f64::from(b / columns), f64::from(b % columns));
    (((ca - cb) * dx).powi(2) + ((ra - rb) * dy).powi(2)).sqrt()
}

fn classes(d: &mut Day<'_>, rng: &mut Rng) {
    let pop = d.pop;
    let start = d.at(8.5);
    for group in pop.groups.iter().filter(|g| g.kind == GroupKind::Class) {
        let present: Vec<u32> = group
            .members
            .iter()
            .copied()
            .filter(|&p| d.free(p, start))
            .collect();
        for (i, &a) in present.iter().enumerate() {
            for &b in &present[i + 1..] {
                let (sa, sb) = (pop.people[a as usize].seat, pop.people[b as usize].seat);
                let dist = grid_distance(sa, sb, 6, 1.2, 1.0) + rng.uniform(-0.15, 0.15);
                if dist <= ROOM_RANGE_M {
                    d.push(
                        a,
                        b,
                        start,
                        (6.5 * HOUR as f64) as i64,
                        dist.max(0.4),
                        Place::School,
                    );
                }
            }
        }
        // Break time with a friend.
        for &a in &present {
            if present.len() > 1 && rng.chance(0.4) {
                let b = present[rng.below(present.len() as u64) as usize];
                let t = d.at(12.5) + rng.below(30) as i64 * MINUTE;
                d.push(
                    a,
                    b,
                    t,
                    rng.between(10, 40) as i64 * MINUTE,
                    rng.uniform(0.4, 1.2),
                    Place::School,
                );
            }
        }
    }
}

fn teams(d: &mut Day<'_>, rng: &mut Rng, share_working: f64) {
    let pop = d.pop;
    let nine = d.at(9.0);
    let mut present_by_site: Vec<Vec<u32>> = vec![Vec::new(); pop.workplaces.len()];
    for group in pop.groups.iter().filter(|g| g.kind == GroupKind::Team) {
        if share_working < 1.0 && !rng.chance(share_working) {
            continue;
        }
        let present: Vec<u32> = group
            .members
            .iter()
            .copied()
            .filter(|&p| d.free(p, nine))
            .collect();
        let arrive = nine + rng.below(60) as i64 * MINUTE - 30 * MINUTE;
        for (i, &a) in present.iter().enumerate() {
            for &b in &present[i + 1..] {
                let (sa, sb) = (pop.people[a as usize].seat, pop.people[b as usize].seat);
                let dist = grid_distance(sa, sb, 4, 1.6, 1.4) + rng.uniform(-0.2, 0.2);
                if dist <= ROOM_RANGE_M {
                    d.push(
                        a,
                        b,
                        arrive,
                        (8.5 * HOUR as f64) as i64,
                        dist.max(0.5),
                        Place::Work,
                    );
                }
            }
        }
        // A meeting.
        if present.len() >= 3 && rng.chance(0.4) {
            let mut who = present.clone();
            rng.shuffle(&mut who);
            who.truncate(rng.between(3, 6) as usize);
            let t = d.at(10.0) + rng.below(6 * 6) as i64 * 10 * MINUTE;
            let len = rng.between(30, 90) as i64 * MINUTE;
            for (i, &a) in who.iter().enumerate() {
                for &b in &who[i + 1..] {
                    d.push(a, b, t, len, rng.uniform(1.0, 2.0), Place::Meeting);
                }
            }
        }
        present_by_site[group.site as usize].extend(present);
    }
    for present in &mut present_by_site {
        if present.len() < 2 {
            continue;
        }
        // Lunch tables of 2-4.
        let mut lunch: Vec<u32> = present
            .iter()
            .copied()
            .filter(|_| rng.chance(0.3))
            .collect();
        rng.shuffle(&mut lunch);
        let mut rest = lunch.as_slice();
        while rest.len() >= 2 {
            let size = (rng.between(2, 4) as usize).min(rest.len());
            let (table, tail) = rest.split_at(size);
            rest = tail;
            let t = d.at(12.0) + rng.below(30) as i64 * MINUTE;
            let len = rng.between(30, 50) as i64 * MINUTE;
            for (i, &a) in table.iter().enumerate() {
                for &b in &table[i + 1..] {
                    d.push(a, b, t, len, rng.uniform(0.7, 1.2), Place::Lunch);
                }
            }
        }
        // The break room.
        for i in 0..present.len() {
            if rng.chance(0.4) {
                let a = present[i];
                let b = present[rng.below(present.len() as u64) as usize];
                let t = d.at(13.0) + rng.below(4 * 60) as i64 * MINUTE;
                d.push(
                    a,
                    b,
                    t,
                    rng.between(5, 20) as i64 * MINUTE,
                    rng.uniform(1.0, 2.0),
                    Place::Work,
                );
            }
        }
    }
}

/// Riders grouped by (line, slot), cut into cars; in a car each rider
/// stands near the next three.
fn trains(d: &mut Day<'_>, rng: &mut Rng, share_riding: f64) {
    let pop = d.pop;
    for evening in [false, true] {
        let mut riders: Vec<(u64, u32)> = Vec::new();
        for (p, person) in pop.people.iter().enumerate() {
            let Some(c) = person.commute else { continue };
            let slot = if evening { c.back_slot } else { c.out_slot };
            let t = if evening {
                d.at(17.0) + i64::from(slot) * 10 * MINUTE
            } else {
                d.at(7.0) + i64::from(slot) * 10 * MINUTE
            };
            if !d.free(p as u32, t) || (share_riding < 1.0 && !rng.chance(share_riding)) {
                continue;
            }
            let slots = if evening {
                EVENING_SLOTS
            } else {
                MORNING_SLOTS
            };
            riders.push((u64::from(c.line) * slots + u64::from(slot), p as u32));
        }
        riders.sort_unstable();
        let mut i = 0;
        while i < riders.len() {
            let key = riders[i].0;
            let mut j = i;
            while j < riders.len() && riders[j].0 == key {
                j += 1;
            }
            let mut train: Vec<u32> = riders[i..j].iter().map(|r| r.1).collect();
            rng.shuffle(&mut train);
            let slots = if evening {
                EVENING_SLOTS
            } else {
                MORNING_SLOTS
            };
            let slot = (key % slots) as i64;
            let depart = if evening { d.at(17.0) } else { d.at(7.0) } + slot * 10 * MINUTE;
            for car in train.chunks(12) {
                for (x, &a) in car.iter().enumerate() {
                    for &b in car.iter().skip(x + 1).take(3) {
                        let (ma, mb) = (
                            pop.people[a as usize].commute.map_or(0, |c| c.minutes),
                            pop.people[b as usize].commute.map_or(0, |c| c.minutes),
                        );
                        let together = f64::from(ma.min(mb)) * rng.uniform(0.3, 1.0);
                        let t = depart + rng.below(5) as i64 * MINUTE;
                        d.push(
                            a,
                            b,
                            t,
                            (together * 60.0) as i64,
                            rng.uniform(0.3, 2.0),
                            Place::Train,
                        );
                    }
                }
            }
            i = j;
        }
    }
}

fn shops(d: &mut Day<'_>, rng: &mut Rng, weekend: bool) {
    let pop = d.pop;
    let mut visits: Vec<(u64, u32)> = Vec::new();
    for (p, person) in pop.people.iter().enumerate() {
        let chance = match (person.role, weekend) {
            (Role::Retiree, _) => 0.6,
            (Role::Worker | Role::Student, false) => 0.3,
            (Role::Worker | Role::Student, true) => 0.6,
            (Role::Child, _) => 0.1,
        };
        if !rng.chance(chance) {
            continue;
        }
        let hour = rng.between(10, 20);
        if !d.free(p as u32, d.at(hour as f64)) {
            continue;
        }
        let shop = rng.below(u64::from(pop.shops));
        visits.push((shop * 24 + hour, p as u32));
    }
    visits.sort_unstable();
    let mut i = 0;
    while i < visits.len() {
        let key = visits[i].0;
        let mut j = i;
        while j < visits.len() && visits[j].0 == key {
            j += 1;
        }
        let mut inside: Vec<u32> = visits[i..j].iter().map(|v| v.1).collect();
        rng.shuffle(&mut inside);
        let hour = (key % 24) as f64;
        for x in 0..inside.len() {
            let near = if rng.chance(0.5) { 2 } else { 1 };
            for &b in inside.iter().skip(x + 1).take(near) {
                let t = d.at(hour) + rng.below(45) as i64 * MINUTE;
                d.push(
                    inside[x],
                    b,
                    t,
                    rng.between(3, 15) as i64 * MINUTE,
                    rng.uniform(0.8, 3.0),
                    Place::Shop,
                );
            }
        }
        i = j;
    }
}

fn social(d: &mut Day<'_>, rng: &mut Rng, weekday: u32) {
    let pop = d.pop;
    let chance = match weekday {
        4 => 0.12,
        5 | 6 => 0.2,
        _ => 0.05,
    };
    let start_hour = if weekday >= 5 && rng.chance(0.5) {
        12.0
    } else {
        19.0
    };
    let start = d.at(start_hour);
    let mut out: Vec<u32> = (0..pop.len() as u32)
        .filter(|&p| pop.people[p as usize].role != Role::Child && d.free(p, start))
        .filter(|_| rng.chance(chance))
        .collect();
    rng.shuffle(&mut out);
    let mut rest = out.as_slice();
    while rest.len() >= 2 {
        let size = (rng.between(2, 6) as usize).min(rest.len());
        let (table, tail) = rest.split_at(size);
        rest = tail;
        let t = start + rng.below(60) as i64 * MINUTE;
        let len = (rng.uniform(1.5, 3.0) * HOUR as f64) as i64;
        for (i, &a) in table.iter().enumerate() {
            for &b in &table[i + 1..] {
                if pop.people[a as usize].household != pop.people[b as usize].household {
                    d.push(a, b, t, len, rng.uniform(0.6, 1.5), Place::Social);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weekday_has_every_kind_of_place_and_isolation_empties_it() {
        let config = SimConfig {
            people: 3_000,
            ..SimConfig::default()
        };
        let pop = Population::generate(&config);
        let free = vec![SimTime::MAX; pop.len()];
        let es = day_encounters(&pop, &config, 4, 4, &free);
        for place in [
            Place::Home,
            Place::HomeNight,
            Place::School,
            Place::Work,
            Place::Train,
            Place::Shop,
            Place::Social,
        ] {
            assert!(es.iter().any(|e| e.place == place), "{place:?}");
        }
        let per_person = es.len() as f64 * 2.0 / pop.len() as f64;
        assert!((5.0..60.0).contains(&per_person), "{per_person}");
        assert!(es.iter().all(|e| e.start() >= 4 * DAY && e.a != e.b));
        // Everyone isolated: only households meet.
        let home = vec![0; pop.len()];
        let es = day_encounters(&pop, &config, 4, 4, &home);
        assert!(
            es.iter()
                .all(|e| matches!(e.place, Place::Home | Place::HomeNight))
        );
        assert!(
            es.iter()
                .all(|e| pop.people[e.a as usize].household == pop.people[e.b as usize].household)
        );
        // Deterministic.
        assert_eq!(day_encounters(&pop, &config, 4, 4, &home), es);
    }

    #[test]
    fn seat_grids() {
        assert_eq!(grid_distance(0, 1, 6, 1.2, 1.0), 1.2);
        assert_eq!(grid_distance(0, 6, 6, 1.2, 1.0), 1.0);
        assert!((grid_distance(0, 7, 6, 1.2, 1.0) - 1.2f64.hypot(1.0)).abs() < 1e-12);
    }
}
