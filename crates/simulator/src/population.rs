//! The people: households, schools and classes, workplaces and teams, train
//! lines, who has the app and on which phone.
//!
//! Household sizes follow Japan's census shape (a third live alone); adults
//! work or are retired, children go to school (younger ones nearby, older
//! ones by train). Classes are filled in household order, so classmates live
//! near each other; workplaces are drawn across the whole population.

use crate::config::SimConfig;
use crate::rng::{Purpose, Rng};

/// No group, site or line.
pub const NONE: u32 = u32::MAX;

/// What a person does on weekdays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Goes to a school nearby.
    Child,
    /// Goes to a high school or university, usually by train.
    Student,
    /// Goes to work, often by train.
    Worker,
    /// Stays in the neighbourhood: shops and friends.
    Retiree,
}

/// A daily train ride to and from work or school.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commute {
    /// Train line.
    pub line: u32,
    /// Departure slot in the morning (10-minute slots from 07:00).
    pub out_slot: u8,
    /// Departure slot in the evening (10-minute slots from 17:00).
    pub back_slot: u8,
    /// Minutes on the train each way.
    pub minutes: u16,
}

/// One person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Person {
    /// Household.
    pub household: u32,
    /// Weekday activity.
    pub role: Role,
    /// Class or team ([`NONE`] for retirees).
    pub group: u32,
    /// Position in the group's room (seat or desk number).
    pub seat: u16,
    /// Train ride, if any.
    pub commute: Option<Commute>,
    /// Phone model index when the person has the app.
    pub phone: Option<u8>,
    /// Offset of the phone's scans within the scan interval, seconds.
    pub scan_phase: u16,
    /// Seconds between the phone's exposure checks.
    pub check_period: u32,
    /// Time of the first check after the start, seconds.
    pub check_phase: u32,
}

/// What a group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// A school class (children or students).
    Class,
    /// A team sharing desks at a workplace.
    Team,
}

/// A class or a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// What it is.
    pub kind: GroupKind,
    /// School or workplace.
    pub site: u32,
    /// Members, in seat order.
    pub members: Vec<u32>,
}

/// Everyone.
#[derive(Debug, Clone)]
pub struct Population {
    /// The people; a person's id is their index.
    pub people: Vec<Person>,
    /// Members of each household (ids are contiguous): first id and size.
    pub households: Vec<(u32, u8)>,
    /// Classes and teams.
    pub groups: Vec<Group>,
    /// Workers of each workplace (for encounters across teams).
    pub workplaces: Vec<Vec<u32>>,
    /// Number of train lines.
    pub lines: u32,
    /// Number of shops.
    pub shops: u32,
}

/// Pupils per class of children.
pub const CHILD_CLASS_SIZE: usize = 30;
/// Students per class of older students.
pub const STUDENT_CLASS_SIZE: usize = 35;
/// Desks per team.
pub const TEAM_SIZE: usize = 8;
/// Morning departure slots (07:00 to 08:50).
pub const MORNING_SLOTS: u64 = 12;
/// Evening departure slots (17:00 to 19:50).
pub const EVENING_SLOTS: u64 = 18;

impl Population {
    /// A population of `config.people` people.
    pub fn generate(config: &SimConfig) -> Self {
        let n = config.people as usize;
        let mut rng = Rng::new(config.seed, Purpose::Population, &[]);
        let mut people: Vec<Person> = Vec::with_capacity(n);
        let mut households = Vec::new();
        const SIZES: [f64; 6] = [0.35, 0.28, 0.17, 0.13, 0.05, 0.02];
        while people.len() < n {
            let size = (rng.weighted(&SIZES) + 1).min(n - people.len());
            let h = households.len() as u32;
            households.push((people.len() as u32, size as u8));
            for i in 0..size {
                let role = match (size, i) {
                    (1..=2, _) | (_, 0..=1) => {
                        let work = if size >= 3 { 0.85 } else { 0.62 };
                        if rng.chance(work) {
                            Role::Worker
                        } else {
                            Role::Retiree
                        }
                    }
                    (5.., i) if i == size - 1 && rng.chance(0.6) => Role::Retiree,
                    _ => {
                        if rng.chance(0.65) {
                            Role::Child
                        } else {
                            Role::Student
                        }
                    }
                };
                people.push(Person {
                    household: h,
                    role,
                    group: NONE,
                    seat: 0,
                    commute: None,
                    phone: None,
                    scan_phase: 0,
                    check_period: 0,
                    check_phase: 0,
                });
            }
        }

        let lines = (config.people / 1000).max(1);
        let mut groups = Vec::new();
        // Classes in household order: classmates are neighbours.
        for (role, size, per_school) in [
            (Role::Child, CHILD_CLASS_SIZE, 12),
            (Role::Student, STUDENT_CLASS_SIZE, 15),
        ] {
            let pupils: Vec<u32> = (0..n as u32)
                .filter(|&p| people[p as usize].role == role)
                .collect();
            for (c, chunk) in pupils.chunks(size).enumerate() {
                let g = groups.len() as u32;
                for (seat, &p) in chunk.iter().enumerate() {
                    let person = &mut people[p as usize];
                    person.group = g;
                    person.seat = seat as u16;
                }
                groups.push(Group {
                    kind: GroupKind::Class,
                    site: (c / per_school) as u32,
                    members: chunk.to_vec(),
                });
            }
        }
        // Workplaces across the whole population, of log-normal sizes.
        let mut workers: Vec<u32> = (0..n as u32)
            .filter(|&p| people[p as usize].role == Role::Worker)
            .collect();
        rng.shuffle(&mut workers);
        let mut workplaces = Vec::new();
        let mut rest = workers.as_slice();
        while !rest.is_empty() {
            let size = (rng.lognormal(12.0, 1.2).round() as usize).clamp(2, 500);
            let (staff, tail) = rest.split_at(size.min(rest.len()));
            rest = tail;
            let site = workplaces.len() as u32;
            for team in staff.chunks(TEAM_SIZE) {
                let g = groups.len() as u32;
                for (seat, &p) in team.iter().enumerate() {
                    let person = &mut people[p as usize];
                    person.group = g;
                    person.seat = seat as u16;
                }
                groups.push(Group {
                    kind: GroupKind::Team,
                    site,
                    members: team.to_vec(),
                });
            }
            workplaces.push(staff.to_vec());
        }
        // Trains, phones and the phones' rhythm.
        let weights: Vec<f64> = config
            .phone_models
            .iter()
            .map(|m| m.share.max(0.0))
            .collect();
        let scan = u64::from(config.radio.scan.interval_seconds);
        let (lo, hi) = (
            config.server.check_min_hours * 3600.0,
            config.server.check_max_hours * 3600.0,
        );
        for person in &mut people {
            let train_share = match person.role {
                Role::Student => 0.6,
                Role::Worker => 0.55,
                Role::Child | Role::Retiree => 0.0,
            };
            if rng.chance(train_share) {
                person.commute = Some(Commute {
                    line: rng.below(u64::from(lines)) as u32,
                    out_slot: rng.below(MORNING_SLOTS) as u8,
                    back_slot: rng.below(EVENING_SLOTS) as u8,
                    minutes: rng.between(10, 60) as u16,
                });
            }
            if rng.chance(config.adoption) {
                person.phone = Some(rng.weighted(&weights) as u8);
                person.scan_phase = rng.below(scan) as u16;
                let period = rng.uniform(lo, hi.max(lo + 1.0));
                person.check_period = period as u32;
                person.check_phase = rng.uniform(0.0, period) as u32;
            }
        }
        Self {
            people,
            households,
            groups,
            workplaces,
            lines,
            shops: (config.people / 250).max(1),
        }
    }

    /// Number of people.
    pub fn len(&self) -> usize {
        self.people.len()
    }

    /// Whether there is nobody.
    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// Ids of the members of household `h`.
    pub fn household_members(&self, h: u32) -> std::ops::Range<u32> {
        let (first, size) = self.households[h as usize];
        first..first + u32::from(size)
    }

    /// Number of app users.
    pub fn app_users(&self) -> usize {
        self.people.iter().filter(|p| p.phone.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_population_has_the_requested_size_and_shape() {
        let config = SimConfig {
            people: 5_000,
            adoption: 0.3,
            ..SimConfig::default()
        };
        let pop = Population::generate(&config);
        assert_eq!(pop.len(), 5_000);
        let users = pop.app_users() as f64 / 5_000.0;
        assert!((users - 0.3).abs() < 0.03, "{users}");
        let alone = pop.households.iter().filter(|h| h.1 == 1).count() as f64;
        assert!((alone / pop.households.len() as f64 - 0.35).abs() < 0.05);
        for (g, group) in pop.groups.iter().enumerate() {
            for (seat, &p) in group.members.iter().enumerate() {
                assert_eq!(pop.people[p as usize].group, g as u32);
                assert_eq!(pop.people[p as usize].seat, seat as u16);
            }
        }
        for (h, _) in pop.households.iter().enumerate() {
            for p in pop.household_members(h as u32) {
                assert_eq!(pop.people[p as usize].household, h as u32);
            }
        }
        assert!(
            pop.people
                .iter()
                .filter(|p| p.phone.is_some())
                .all(|p| (4 * 3600..=6 * 3600).contains(&p.check_period))
        );
        // Deterministic.
        let again = Population::generate(&config);
        assert_eq!(again.people, pop.people);
    }
}
