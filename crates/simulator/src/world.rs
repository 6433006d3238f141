//! The physical world of a run: the people, every encounter and every
//! infection, independent of any app. Generated day by day (who isolates
//! depends on who fell ill), or built by hand for tests with known answers.

use crate::config::SimConfig;
use crate::encounters::{Encounter, EncounterLog, Place};
use crate::illness::{Course, infection_probability};
use crate::mixing::day_encounters;
use crate::population::{Person, Population, Role};
use crate::progress::Progress;
use crate::rng::{Purpose, Rng};
use crate::time::{Calendar, DAY, SimTime};

/// People, encounters and infections.
#[derive(Debug, Clone)]
pub struct World {
    /// The calendar.
    pub calendar: Calendar,
    /// Everyone.
    pub population: Population,
    /// Every encounter.
    pub encounters: EncounterLog,
    /// The infection of each person, if they were infected.
    pub courses: Vec<Option<Course>>,
    /// Days of mixing.
    pub days: u32,
}

impl World {
    /// Generates the world of `config`: the population, then each day's
    /// encounters and the infections they pass on.
    pub fn generate(config: &SimConfig, progress: &dyn Progress) -> Self {
        let calendar = Calendar::new(config.start_date);
        progress.phase("days of mixing", u64::from(config.days));
        let population = Population::generate(config);
        let n = population.len();
        let mut courses: Vec<Option<Course>> = vec![None; n];
        let mut isolated_from = vec![SimTime::MAX; n];

        // Infections already under way at the start.
        let mut rng = Rng::new(config.seed, Purpose::Course, &[u64::MAX]);
        let seeds = (n as f64 * config.epidemic.initial_infected_share).round() as usize;
        let mut order: Vec<u32> = (0..n as u32).collect();
        rng.shuffle(&mut order);
        for &p in order.iter().take(seeds) {
            let at = -(rng.uniform(0.0, config.epidemic.seed_days) * DAY as f64) as i64;
            let c = Course::draw(config, p, at, None, None);
            isolated_from[p as usize] = c.isolates_at;
            courses[p as usize] = Some(c);
        }

        let mut all: Vec<Encounter> = Vec::new();
        for day in 0..i64::from(config.days) {
            let weekday = calendar.weekday(day);
            let today = day_encounters(&population, config, day, weekday, &isolated_from);
            let first_id = all.len() as u64;
            for (i, e) in today.iter().enumerate() {
                for (dir, (src, dst)) in [(e.a, e.b), (e.b, e.a)].into_iter().enumerate() {
                    let (Some(course), None) = (&courses[src as usize], &courses[dst as usize])
                    else {
                        continue;
                    };
                    let p = infection_probability(config, course, e);
                    if p <= 0.0 {
                        continue;
                    }
                    let mut r = Rng::new(
                        config.seed,
                        Purpose::Infection,
                        &[first_id + i as u64, dir as u64],
                    );
                    if r.chance(p) {
                        let at = e.start() + r.below(u64::from(e.seconds)) as i64;
                        let c = Course::draw(config, dst, at, Some(src), Some(e.place));
                        isolated_from[dst as usize] = c.isolates_at;
                        courses[dst as usize] = Some(c);
                    }
                }
            }
            all.extend(today);
            progress.inc(1);
        }
        all.shrink_to_fit();
        let encounters = EncounterLog::new(all, n);
        Self {
            calendar,
            population,
            encounters,
            courses,
            days: config.days,
        }
    }

    /// End of the last day of mixing.
    pub fn end(&self) -> SimTime {
        i64::from(self.days) * DAY
    }
}

/// A world written by hand: given people, encounters and infections, for
/// tests whose answer is known in advance.
#[derive(Debug, Clone)]
pub struct Scenario {
    config: SimConfig,
    people: Vec<Person>,
    encounters: Vec<Encounter>,
    courses: Vec<Option<Course>>,
}

impl Scenario {
    /// An empty scenario under `config` (its `people` is ignored).
    pub fn new(config: SimConfig) -> Self {
        Self {
            config,
            people: Vec::new(),
            encounters: Vec::new(),
            courses: Vec::new(),
        }
    }

    /// Adds a person living alone, with the app on phone model `phone` (or
    /// without it), and returns their id.
    pub fn person(&mut self, phone: Option<u8>) -> u32 {
        let id = self.people.len() as u32;
        let mut rng = Rng::new(self.config.seed, Purpose::Rhythm, &[u64::from(id)]);
        let period = rng.uniform(
            self.config.server.check_min_hours * 3600.0,
            self.config.server.check_max_hours * 3600.0 + 1.0,
        );
        self.people.push(Person {
            household: id,
            role: Role::Retiree,
            group: crate::population::NONE,
            seat: 0,
            commute: None,
            phone,
            scan_phase: rng.below(u64::from(self.config.radio.scan.interval_seconds)) as u16,
            check_period: period as u32,
            check_phase: rng.uniform(0.0, period) as u32,
        });
        self.courses.push(None);
        id
    }

    /// `a` and `b` meet from `start` for `minutes` at `distance_m`.
    pub fn meet(&mut self, a: u32, b: u32, start: SimTime, minutes: f64, distance_m: f64) {
        if let Some(e) = Encounter::new(
            a,
            b,
            start,
            (minutes * 60.0) as i64,
            distance_m,
            Place::Social,
        ) {
            self.encounters.push(e);
        }
    }

    /// `p` falls ill with symptoms from `onset` and learns the positive
    /// result at `diagnosed_at` (tested half a day before).
    pub fn case(&mut self, p: u32, onset: SimTime, diagnosed_at: SimTime) {
        self.courses[p as usize] = Some(Course {
            infected_at: onset - 4 * DAY,
            source: None,
            place: None,
            symptomatic: true,
            onset,
            infectious_from: onset - 2 * DAY,
            infectious_until: onset + 8 * DAY,
            peak: 1.0,
            test_at: Some(diagnosed_at - DAY / 2),
            diagnosed_at: Some(diagnosed_at),
            isolates_at: diagnosed_at,
        });
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The world.
    pub fn build(self) -> (SimConfig, World) {
        let n = self.people.len();
        let households = (0..n as u32).map(|p| (p, 1u8)).collect();
        let population = Population {
            people: self.people,
            households,
            groups: Vec::new(),
            workplaces: Vec::new(),
            lines: 1,
            shops: 1,
        };
        let world = World {
            calendar: Calendar::new(self.config.start_date),
            population,
            encounters: EncounterLog::new(self.encounters, n),
            courses: self.courses,
            days: self.config.days,
        };
        let mut config = self.config;
        config.people = n as u32;
        (config, world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn an_epidemic_spreads_and_is_reproducible() {
        let config = SimConfig {
            people: 4_000,
            days: 10,
            seed: 5,
            ..SimConfig::default()
        };
        let w = World::generate(&config, &NoProgress);
        let infected = w.courses.iter().flatten().count();
        let seeds = w
            .courses
            .iter()
            .flatten()
            .filter(|c| c.source.is_none())
            .count();
        assert_eq!(seeds, 12);
        assert!(infected > seeds, "{infected} infections from {seeds} seeds");
        assert!(w.encounters.len() > 100_000);
        let again = World::generate(&config, &NoProgress);
        assert_eq!(again.courses, w.courses);
        assert_eq!(again.encounters.all(), w.encounters.all());
        // From the day after isolating, people meet only their household.
        for e in w.encounters.all() {
            for p in [e.a, e.b] {
                if let Some(c) = &w.courses[p as usize]
                    && e.start() >= c.isolates_at.saturating_add(DAY)
                {
                    let same_home = w.population.people[e.a as usize].household
                        == w.population.people[e.b as usize].household;
                    assert!(same_home, "{e:?}");
                }
            }
        }
    }
}
