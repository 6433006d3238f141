//! From a positive result to keys on the server: the health centre issues a
//! processing number (after its own delay), the patient types it (after
//! theirs, perhaps in full-width digits, perhaps too late), the phone picks
//! the keys of the seed's window and registers; the exporter runs all along.
//!
//! Events are processed in time order, interleaved with the exporter's
//! cycles, against a [`Backend`]. Only registrations up to the end of the
//! last day of mixing count; exports and checks go on for the follow-up days.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::backend::{Backend, BackendError, RegisterError};
use crate::config::SimConfig;
use crate::device_adapter::keys_held;
use crate::progress::Progress;
use crate::rng::{Purpose, Rng};
use crate::time::{DAY, HOUR, SimTime};
use crate::world::World;

/// A patient registered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registration {
    /// Who.
    pub person: u32,
    /// Positive result.
    pub diagnosed_at: SimTime,
    /// Number issued (the one that worked).
    pub issued_at: SimTime,
    /// Registered.
    pub registered_at: SimTime,
    /// Contacts from this moment on are in the seed's window: 00:00 JST two
    /// days before the date typed, and never more than 14 days before
    /// registration (the device's `KeyWindow`).
    pub window_from: SimTime,
    /// Keys sent.
    pub keys_sent: usize,
    /// Keys the server stored.
    pub keys_stored: usize,
    /// Numbers issued to this patient (1 + reissues).
    pub numbers: u32,
}

/// What happened to patients on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PatientStats {
    /// Diagnosed app users (up to the end of mixing).
    pub diagnosed_app_users: u64,
    /// Of them, wanting to register.
    pub wanting: u64,
    /// Attempts refused because the number had expired.
    pub expired_attempts: u64,
    /// Numbers reissued after an expiry.
    pub reissued: u64,
    /// Patients who gave up after an expiry.
    pub gave_up: u64,
    /// Patients whose number or attempt fell after the end of mixing.
    pub beyond_horizon: u64,
    /// Numbers typed in full-width digits (normalised by the device).
    pub full_width_typed: u64,
    /// Registrations refused for another reason (by code).
    pub other_failures: Vec<(String, u64)>,
    /// Registrations that went through.
    pub registered: u64,
}

/// Every registration and how the patients fared.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Registrations, in time order.
    pub registrations: Vec<Registration>,
    /// Patients.
    pub patients: PatientStats,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The health centre issues a number (attempt n).
    Issue { person: u32, attempt: u32 },
    /// The patient types it.
    Enter {
        person: u32,
        attempt: u32,
        number: String,
        issued_at: SimTime,
    },
}

/// Full-width digits, as an input method may type them.
fn full_width(number: &str) -> String {
    number
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0xFF10 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}

fn issuance_delay(config: &SimConfig, rng: &mut Rng) -> SimTime {
    let h = &config.health;
    let hours = if h.auto_issue {
        rng.uniform(0.05, 0.5)
    } else {
        rng.lognormal(h.issuance_delay_median_hours, h.issuance_delay_sigma)
    };
    (hours * HOUR as f64) as i64
}

/// The moments the exporter runs: every hour plus a minute, until `end`.
pub fn export_times(end: SimTime) -> impl Iterator<Item = SimTime> {
    (0..).map(|h| h * HOUR + 60).take_while(move |&t| t <= end)
}

/// Runs registrations and exports from day 0 to the end of the follow-up.
pub fn run_timeline(
    world: &World,
    config: &SimConfig,
    backend: &mut dyn Backend,
    progress: &dyn Progress,
) -> Result<Timeline, BackendError> {
    let end_of_mixing = world.end();
    let horizon = end_of_mixing + i64::from(config.follow_up_days) * DAY;
    let mut stats = PatientStats::default();
    let mut rngs: Vec<Option<Rng>> = vec![None; world.population.len()];
    let mut queue: BinaryHeap<Reverse<(SimTime, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BinaryHeap<_>, at: SimTime, e: Event| {
        seq += 1;
        queue.push(Reverse((at, seq, e)));
    };
    for (p, course) in world.courses.iter().enumerate() {
        let Some(diagnosed) = course.and_then(|c| c.diagnosed_at) else {
            continue;
        };
        if world.population.people[p].phone.is_none() || diagnosed > end_of_mixing {
            continue;
        }
        stats.diagnosed_app_users += 1;
        let mut rng = Rng::new(config.seed, Purpose::Registration, &[p as u64]);
        if !rng.chance(config.registration_rate) {
            continue;
        }
        stats.wanting += 1;
        let at = diagnosed.max(0) + issuance_delay(config, &mut rng);
        rngs[p] = Some(rng);
        if at > end_of_mixing {
            stats.beyond_horizon += 1;
            continue;
        }
        push(
            &mut queue,
            at,
            Event::Issue {
                person: p as u32,
                attempt: 0,
            },
        );
    }

    let mut timeline = Timeline::default();
    let mut other: std::collections::BTreeMap<String, u64> = Default::default();
    let hours: Vec<SimTime> = export_times(horizon).collect();
    progress.phase("registrations and exports", hours.len() as u64);
    for cycle in hours {
        while let Some(Reverse((at, _, _))) = queue.peek() {
            if *at > cycle {
                break;
            }
            let Some(Reverse((at, _, event))) = queue.pop() else {
                break;
            };
            match event {
                Event::Issue { person, attempt } => {
                    let issued = backend.issue_number(at)?;
                    let Some(rng) = rngs[person as usize].as_mut() else {
                        continue;
                    };
                    let h = &config.health;
                    let delay = rng.lognormal(h.entry_delay_median_hours, h.entry_delay_sigma);
                    let enter = at + (delay * HOUR as f64) as i64;
                    if enter > end_of_mixing {
                        stats.beyond_horizon += 1;
                        continue;
                    }
                    push(
                        &mut queue,
                        enter,
                        Event::Enter {
                            person,
                            attempt,
                            number: issued.number,
                            issued_at: at,
                        },
                    );
                }
                Event::Enter {
                    person,
                    attempt,
                    number,
                    issued_at,
                } => {
                    let outcome = enter(
                        world,
                        config,
                        backend,
                        person,
                        &number,
                        at,
                        &mut stats,
                        rngs[person as usize].as_mut(),
                    );
                    match outcome {
                        Ok(mut r) => {
                            r.issued_at = issued_at;
                            r.numbers = attempt + 1;
                            stats.registered += 1;
                            timeline.registrations.push(r);
                        }
                        Err(RegisterError::Issuer(code))
                            if code == api_types::verify::codes::CODE_EXPIRED =>
                        {
                            stats.expired_attempts += 1;
                            let Some(rng) = rngs[person as usize].as_mut() else {
                                continue;
                            };
                            if attempt < config.health.max_reissues
                                && rng.chance(config.health.reissue_share)
                            {
                                let again = at + issuance_delay(config, rng);
                                if again > end_of_mixing {
                                    stats.beyond_horizon += 1;
                                } else {
                                    stats.reissued += 1;
                                    push(
                                        &mut queue,
                                        again,
                                        Event::Issue {
                                            person,
                                            attempt: attempt + 1,
                                        },
                                    );
                                }
                            } else {
                                stats.gave_up += 1;
                            }
                        }
                        Err(e) => *other.entry(e.code().to_owned()).or_default() += 1,
                    }
                }
            }
        }
        backend.export_cycle(cycle)?;
        progress.inc(1);
    }
    stats.other_failures = other.into_iter().collect();
    timeline.patients = stats;
    Ok(timeline)
}

/// The patient types the number into the phone, which picks its keys and
/// registers.
#[allow(clippy::too_many_arguments)]
fn enter(
    world: &World,
    config: &SimConfig,
    backend: &mut dyn Backend,
    person: u32,
    number: &str,
    at: SimTime,
    stats: &mut PatientStats,
    rng: Option<&mut Rng>,
) -> Result<Registration, RegisterError> {
    let cal = &world.calendar;
    let course =
        world.courses[person as usize].ok_or_else(|| RegisterError::Issuer("not a case".into()))?;
    let typed = if rng.is_some_and(|r| r.chance(config.health.full_width_share)) {
        stats.full_width_typed += 1;
        full_width(number)
    } else {
        number.to_owned()
    };
    let code = device::normalise_number(&typed)
        .map_err(|e| RegisterError::Issuer(format!("typed number refused: {}", e.code())))?;
    let now = cal.datetime(at);
    let mut date = cal.jst_date(course.registration_date_time().min(at));
    // The date screen refuses a date older than 14 days and asks for the
    // oldest one allowed.
    if let Err(device::Error::DateTooOld { earliest, .. }) =
        device::window::check_registration_date(date, now)
    {
        date = earliest;
    }
    let keys = keys_held(config.seed, person, cal.utc_day(0), cal.utc_day(at));
    let selection = device::window::registration_keys(&keys, date, now)
        .map_err(|e| RegisterError::Issuer(format!("date refused: {}", e.code())))?;
    let publish: Vec<_> = selection
        .keys
        .iter()
        .map(device::register::publish_key)
        .collect();
    let stored = backend.register(code.as_str(), &publish, at)?;
    let window = &selection.window;
    let window_from = cal
        .sim(window.contacts_from.timestamp())
        .max(cal.sim(window.oldest_key_start.to_unix_seconds()));
    Ok(Registration {
        person,
        diagnosed_at: course.diagnosed_at.unwrap_or(at),
        issued_at: at,
        registered_at: at,
        window_from,
        keys_sent: publish.len(),
        keys_stored: stored.inserted,
        numbers: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_numbers_are_what_the_device_normalises() {
        let fw = full_width("01234567");
        assert_eq!(fw, "０１２３４５６７");
        let code = device::normalise_number(&fw).unwrap();
        assert_eq!(code.as_str(), "01234567");
    }

    #[test]
    fn exports_run_hourly_plus_a_minute() {
        let t: Vec<_> = export_times(2 * HOUR + 60).collect();
        assert_eq!(t, [60, HOUR + 60, 2 * HOUR + 60]);
    }
}
