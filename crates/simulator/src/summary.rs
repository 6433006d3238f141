//! The numbers of a run: recall and precision against the ground truth,
//! overall, by phone model pair, by place and by scoring variant; the delay
//! from the positive result to the notification; downloads; server work.
//! Everything here is deterministic: the same seed gives equal summaries.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::backend::{PublishedFile, ServerWork};
use crate::config::SimConfig;
use crate::encounters::Place;
use crate::fleet::{DownloadStats, FleetResult, HearerOutcome, PhoneWork};
use crate::population::GroupKind;
use crate::radio::{AttenuationBin, DISTANCE_BINS_M};
use crate::registration::{PatientStats, Timeline};
use crate::time::{DAY, HOUR, SimTime};
use crate::truth::Truth;
use crate::world::World;

/// Percentiles of a distribution (nearest rank).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Percentiles {
    /// Of `values` (any order).
    pub fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let at = |q: f64| -> Option<f64> {
            (n > 0).then(|| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1])
        };
        Self {
            count: n as u64,
            mean: (n > 0).then(|| values.iter().sum::<f64>() / n as f64),
            p50: at(0.5),
            p90: at(0.9),
            p95: at(0.95),
            max: values.last().copied(),
        }
    }
}

/// `a / b`, or nothing when `b` is 0.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Recall and precision for one (receiver model, sender model) pair,
/// counted over (person, positive) pairs: does this positive's keys alone
/// make a contact day on this person's phone?
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPairStats {
    /// Model of the phone that should be warned.
    pub receiver: String,
    /// Model of the registered positive's phone.
    pub sender: String,
    /// Contacts that should be warned.
    pub contacts: u64,
    /// Of them, detected.
    pub detected_contacts: u64,
    /// Pairs detected (contacts or not).
    pub detections: u64,
    /// detected_contacts / contacts.
    pub recall: Option<f64>,
    /// detected_contacts / detections.
    pub precision: Option<f64>,
}

/// Recall by where the contact happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaceStats {
    /// The place.
    pub place: Place,
    /// Contacts that should be warned, where most of their close time was.
    pub contacts: u64,
    /// Of them, detected.
    pub detected: u64,
    /// detected / contacts.
    pub recall: Option<f64>,
    /// Infections that happened there.
    pub infections: u64,
}

/// One scoring variant of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepRow {
    /// `threshold` or `seconds` (`cocoa` for the base configuration).
    pub parameter: String,
    /// Its value.
    pub value: f64,
    /// Phones notified.
    pub notified: u64,
    /// Of them, should have been.
    pub true_positives: u64,
    /// Recall.
    pub recall: Option<f64>,
    /// Precision.
    pub precision: Option<f64>,
    /// Median hours from the positive result to the notification.
    pub delay_p50_hours: Option<f64>,
}

/// Estimated attenuation for a band of true distances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttenuationRow {
    /// Upper bound of the band, metres (null: beyond the previous one).
    pub max_distance_m: Option<f64>,
    /// Sightings.
    pub sightings: u64,
    /// Mean estimated attenuation, dB.
    pub mean_db: Option<f64>,
    /// Its standard deviation, dB.
    pub sd_db: Option<f64>,
    /// Share of sightings in each COCOA bucket (immediate, near, medium, other).
    pub bucket_shares: [f64; 4],
}

/// One day of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayRow {
    /// Day number from 0.
    pub day: i64,
    /// Japan date.
    pub date: String,
    /// Infections.
    pub infections: u64,
    /// Positive results.
    pub diagnoses: u64,
    /// Registrations.
    pub registrations: u64,
    /// Export files published.
    pub files: u64,
    /// Real keys in them.
    pub real_keys: u64,
    /// Phones notified that should have been.
    pub notified_correctly: u64,
    /// Phones notified that should not have been.
    pub notified_wrongly: u64,
    /// Bytes downloaded per app user.
    pub bytes_per_phone: f64,
}

/// The people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PopulationStats {
    /// People.
    pub people: u64,
    /// App users.
    pub app_users: u64,
    /// App users per phone model.
    pub app_users_by_model: BTreeMap<String, u64>,
    /// Households.
    pub households: u64,
    /// School classes.
    pub classes: u64,
    /// Work teams.
    pub teams: u64,
    /// Encounters over the run.
    pub encounters: u64,
    /// Encounters per person per day.
    pub encounters_per_person_per_day: f64,
}

/// The epidemic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpidemicStats {
    /// Infected at the start.
    pub initial_infections: u64,
    /// Infected during the run.
    pub new_infections: u64,
    /// With symptoms (all infections).
    pub symptomatic: u64,
    /// Positive results up to the end of mixing.
    pub diagnosed: u64,
}

/// Medians of the steps from result to notification, hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DelayBreakdown {
    /// Positive result → processing number (the health centre), over
    /// registrations.
    pub result_to_number: Percentiles,
    /// Number → registration (the patient), over registrations.
    pub number_to_registration: Percentiles,
    /// Registration → notification, over phones notified correctly (from
    /// their earliest positive's registration).
    pub registration_to_notification: Percentiles,
}

/// The summary of a run (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Phones notified that should have been / phones that should have been.
    pub recall: Option<f64>,
    /// Phones notified that should have been / phones notified.
    pub precision: Option<f64>,
    /// Share of notified phones that had ≥ 15 minutes within the relaxed
    /// distance (2 m) of a registered positive in the window: how many of
    /// the "false" positives were near misses of the definition.
    pub precision_relaxed: Option<f64>,
    /// Phones notified (COCOA's scoring).
    pub notified: u64,
    /// App users who should have been: ≥ 15 minutes within 1 m of a
    /// registered positive in the window.
    pub should_be_notified: u64,
    /// Notified and should have been.
    pub true_positives: u64,
    /// Notified and should not have been.
    pub false_positives: u64,
    /// Should have been and were not.
    pub false_negatives: u64,
    /// Why the false positives were notified.
    pub false_positive_reasons: BTreeMap<String, u64>,
    /// People without the app who had such a contact.
    pub should_be_notified_without_app: u64,
    /// Hours from the positive result of the earliest positive the phone
    /// should be warned about to the notification, over true positives.
    /// Negative when another registered positive's keys had warned the
    /// phone already (counted in `notified_before_result`).
    pub delay_hours: Percentiles,
    /// True positives warned before that result.
    pub notified_before_result: u64,
    /// Notifications of true positives by delay: (start of a 6-hour bin,
    /// phones).
    pub delay_histogram: Vec<(f64, u64)>,
    /// The steps of the delay.
    pub delay_breakdown_hours: DelayBreakdown,
    /// Bytes each app user downloads per day (index and export files).
    pub bytes_per_phone_per_day: DownloadStats,
    /// Recall and precision by phone model pair (receiver, sender).
    pub by_model_pair: Vec<ModelPairStats>,
    /// Recall by place.
    pub by_place: Vec<PlaceStats>,
    /// The scoring variants (`--sweep`), COCOA's first.
    pub sweep: Vec<SweepRow>,
    /// `--compare`: the current and the candidate configuration side by side.
    pub comparison: Option<crate::compare::Comparison>,
    /// Estimated attenuation by true distance, over the sightings generated.
    pub attenuation_by_distance: Vec<AttenuationRow>,
    /// Registrations.
    pub registrations: u64,
    /// Mean keys per registration sent and stored.
    pub keys_per_registration: Option<f64>,
    /// The patients' way to registration.
    pub patients: PatientStats,
    /// The people.
    pub population: PopulationStats,
    /// The epidemic.
    pub epidemic: EpidemicStats,
    /// Work done by the servers.
    pub server: ServerWork,
    /// Work done by the phones, and by the simulation for them.
    pub phones: PhoneWork,
    /// Export files published.
    pub files: u64,
    /// Files refused by phones.
    pub files_refused: Vec<(String, String)>,
    /// Day by day.
    pub daily: Vec<DayRow>,
    /// The configuration that produced this.
    pub config: SimConfig,
}

/// Width of the bins of the delay histogram, hours.
pub const DELAY_BIN_HOURS: f64 = 6.0;

fn delay_histogram(delays: &[f64]) -> Vec<(f64, u64)> {
    let (Some(min), Some(max)) = (
        delays.iter().copied().reduce(f64::min),
        delays.iter().copied().reduce(f64::max),
    ) else {
        return Vec::new();
    };
    let first = (min / DELAY_BIN_HOURS).floor();
    let bins = ((max / DELAY_BIN_HOURS).floor() - first) as usize + 1;
    let mut out: Vec<(f64, u64)> = (0..bins)
        .map(|b| ((first + b as f64) * DELAY_BIN_HOURS, 0))
        .collect();
    for d in delays {
        let b = (((d / DELAY_BIN_HOURS).floor() - first) as usize).min(bins - 1);
        out[b].1 += 1;
    }
    out
}

fn hours(seconds: SimTime) -> f64 {
    seconds as f64 / HOUR as f64
}

/// Builds the summary.
pub fn summarise(
    world: &World,
    config: &SimConfig,
    timeline: &Timeline,
    truth: &Truth,
    fleet: &FleetResult,
    files: &[PublishedFile],
    server: ServerWork,
) -> Summary {
    let people = &world.population.people;
    let models = &config.phone_models;
    let model_name = |p: u32| -> String {
        people[p as usize]
            .phone
            .and_then(|m| models.get(usize::from(m)))
            .map_or_else(|| "none".to_owned(), |m| m.name.clone())
    };
    let outcomes: HashMap<u32, &HearerOutcome> =
        fleet.outcomes.iter().map(|o| (o.person, o)).collect();
    let registered: HashMap<u32, &crate::registration::Registration> = timeline
        .registrations
        .iter()
        .map(|r| (r.person, r))
        .collect();
    let variants = config.scoring_variants();
    let horizon = world.end() + i64::from(config.follow_up_days) * DAY;
    let days = (horizon / DAY + 1) as usize;

    // Phone-level results per scoring variant.
    let mut sweep = Vec::new();
    let mut first = None;
    for (v, _) in variants.iter().enumerate() {
        let mut notified = 0u64;
        let mut tp = 0u64;
        let mut near = 0u64;
        let mut delays = Vec::new();
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        let mut reg_to_notif = Vec::new();
        let mut daily_tp = vec![0u64; days];
        let mut daily_fp = vec![0u64; days];
        for o in &fleet.outcomes {
            let Some(at) = o.notified_at[v] else { continue };
            notified += 1;
            if truth.relaxed.contains(&o.person) || truth.should.contains_key(&o.person) {
                near += 1;
            }
            let day = ((at / DAY) as usize).min(days - 1);
            match truth.should.get(&o.person) {
                Some(&diagnosed) => {
                    tp += 1;
                    daily_tp[day] += 1;
                    delays.push(hours(at - diagnosed));
                    let from = truth.pairs.partition_point(|r| r.person < o.person);
                    let first_reg = truth.pairs[from..]
                        .iter()
                        .take_while(|r| r.person == o.person)
                        .filter(|r| r.person == o.person && r.qualifies(truth.threshold_seconds))
                        .filter_map(|r| registered.get(&r.positive).map(|x| x.registered_at))
                        .min();
                    if let Some(reg) = first_reg {
                        reg_to_notif.push(hours(at - reg));
                    }
                }
                None => {
                    daily_fp[day] += 1;
                    let reason = serde_json::to_value(truth.false_reason(o.person))
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    *reasons.entry(reason).or_default() += 1;
                }
            }
        }
        let should = truth.should.len() as u64;
        let histogram = delay_histogram(&delays);
        let delay = Percentiles::of(delays);
        let (parameter, value) = match (&config.sweep, v) {
            (_, 0) if config.candidate.is_some() => {
                ("current".to_owned(), variants[0].risk.score_sum.value)
            }
            (_, 0) => ("cocoa".to_owned(), variants[0].risk.score_sum.value),
            (None, v) if config.candidate.is_some() => {
                ("candidate".to_owned(), variants[v].risk.score_sum.value)
            }
            (Some(s), v) => (s.parameter.name().to_owned(), s.values[v - 1]),
            (None, _) => ("cocoa".to_owned(), 0.0),
        };
        sweep.push(SweepRow {
            parameter,
            value,
            notified,
            true_positives: tp,
            recall: ratio(tp, should),
            precision: ratio(tp, notified),
            delay_p50_hours: delay.p50,
        });
        if v == 0 {
            first = Some((
                near,
                notified,
                tp,
                reasons,
                delay,
                histogram,
                reg_to_notif,
                daily_tp,
                daily_fp,
            ));
        }
    }
    let (near, notified, tp, reasons, delay, histogram, reg_to_notif, daily_tp, daily_fp) =
        first.unwrap_or_default();
    let should = truth.should.len() as u64;

    // Model pairs and places, over (person, positive) pairs.
    let mut pair_stats: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    let mut place_stats: BTreeMap<Place, (u64, u64)> = BTreeMap::new();
    for r in &truth.pairs {
        if people[r.person as usize].phone.is_none() {
            continue;
        }
        let detected = outcomes
            .get(&r.person)
            .is_some_and(|o| o.detected_senders.binary_search(&r.positive).is_ok());
        let qualifies = r.qualifies(truth.threshold_seconds);
        let entry = pair_stats
            .entry((model_name(r.person), model_name(r.positive)))
            .or_default();
        if qualifies {
            entry.0 += 1;
            let place = place_stats.entry(r.place).or_default();
            place.0 += 1;
            if detected {
                entry.1 += 1;
                place.1 += 1;
            }
        }
        if detected {
            entry.2 += 1;
        }
    }
    let by_model_pair = pair_stats
        .into_iter()
        .map(|((receiver, sender), (c, d, n))| ModelPairStats {
            receiver,
            sender,
            contacts: c,
            detected_contacts: d,
            detections: n,
            recall: ratio(d, c),
            precision: ratio(d, n),
        })
        .collect();
    let mut infections_by_place: BTreeMap<Place, u64> = BTreeMap::new();
    for c in world.courses.iter().flatten() {
        if let Some(place) = c.place {
            *infections_by_place.entry(place).or_default() += 1;
        }
    }
    let by_place = Place::ALL
        .iter()
        .map(|&place| {
            let (c, d) = place_stats.get(&place).copied().unwrap_or_default();
            PlaceStats {
                place,
                contacts: c,
                detected: d,
                recall: ratio(d, c),
                infections: infections_by_place.get(&place).copied().unwrap_or(0),
            }
        })
        .collect();

    // Days.
    let mut daily: Vec<DayRow> = (0..days as i64)
        .map(|d| DayRow {
            day: d,
            date: world.calendar.jst_date(d * DAY).to_string(),
            ..DayRow::default()
        })
        .collect();
    let day_of = |t: SimTime| -> Option<usize> {
        (t >= 0).then_some((t / DAY) as usize).filter(|&d| d < days)
    };
    for c in world.courses.iter().flatten() {
        if c.source.is_some()
            && let Some(d) = day_of(c.infected_at)
        {
            daily[d].infections += 1;
        }
        if let Some(d) = c.diagnosed_at.and_then(day_of) {
            daily[d].diagnoses += 1;
        }
    }
    for r in &timeline.registrations {
        if let Some(d) = day_of(r.registered_at) {
            daily[d].registrations += 1;
        }
    }
    for f in files {
        if let Some(d) = day_of(f.published_at) {
            daily[d].files += 1;
            daily[d].real_keys += f.real_keys as u64;
        }
    }
    for (d, row) in daily.iter_mut().enumerate() {
        row.notified_correctly = daily_tp.get(d).copied().unwrap_or(0);
        row.notified_wrongly = daily_fp.get(d).copied().unwrap_or(0);
        row.bytes_per_phone = fleet.downloads.per_day.get(d).copied().unwrap_or(0.0);
    }

    let attenuation_by_distance = fleet
        .attenuation
        .iter()
        .zip(DISTANCE_BINS_M)
        .map(|(b, max): (&AttenuationBin, f64)| AttenuationRow {
            max_distance_m: max.is_finite().then_some(max),
            sightings: b.count,
            mean_db: b.mean(),
            sd_db: b.sd(),
            bucket_shares: b.buckets.map(|n| {
                if b.count > 0 {
                    n as f64 / b.count as f64
                } else {
                    0.0
                }
            }),
        })
        .collect();

    let mut by_model: BTreeMap<String, u64> = BTreeMap::new();
    for p in people.iter().filter(|p| p.phone.is_some()) {
        let name = p
            .phone
            .and_then(|m| models.get(usize::from(m)))
            .map_or("none", |m| m.name.as_str());
        *by_model.entry(name.to_owned()).or_default() += 1;
    }
    let groups = &world.population.groups;
    let encounters = world.encounters.len() as u64;
    let population = PopulationStats {
        people: people.len() as u64,
        app_users: world.population.app_users() as u64,
        app_users_by_model: by_model,
        households: world.population.households.len() as u64,
        classes: groups.iter().filter(|g| g.kind == GroupKind::Class).count() as u64,
        teams: groups.iter().filter(|g| g.kind == GroupKind::Team).count() as u64,
        encounters,
        encounters_per_person_per_day: 2.0 * encounters as f64
            / (people.len().max(1) as f64 * f64::from(world.days.max(1))),
    };
    let courses: Vec<_> = world.courses.iter().flatten().collect();
    let epidemic = EpidemicStats {
        initial_infections: courses.iter().filter(|c| c.source.is_none()).count() as u64,
        new_infections: courses.iter().filter(|c| c.source.is_some()).count() as u64,
        symptomatic: courses.iter().filter(|c| c.symptomatic).count() as u64,
        diagnosed: courses
            .iter()
            .filter(|c| c.diagnosed_at.is_some_and(|d| d <= world.end()))
            .count() as u64,
    };
    let regs = &timeline.registrations;
    let delay_breakdown_hours = DelayBreakdown {
        result_to_number: Percentiles::of(
            regs.iter()
                .map(|r| hours(r.issued_at - r.diagnosed_at.max(0)))
                .collect(),
        ),
        number_to_registration: Percentiles::of(
            regs.iter()
                .map(|r| hours(r.registered_at - r.issued_at))
                .collect(),
        ),
        registration_to_notification: Percentiles::of(reg_to_notif),
    };
    Summary {
        recall: ratio(tp, should),
        precision: ratio(tp, notified),
        precision_relaxed: ratio(near, notified),
        notified,
        should_be_notified: should,
        true_positives: tp,
        false_positives: notified - tp,
        false_negatives: should - tp,
        false_positive_reasons: reasons,
        should_be_notified_without_app: truth.should_without_app,
        notified_before_result: histogram
            .iter()
            .filter(|(start, _)| *start < 0.0)
            .map(|(_, n)| n)
            .sum(),
        delay_hours: delay,
        delay_histogram: histogram,
        delay_breakdown_hours,
        bytes_per_phone_per_day: fleet.downloads.clone(),
        by_model_pair,
        by_place,
        sweep,
        comparison: config
            .candidate
            .as_ref()
            .map(|c| crate::compare::compare(config, &config.scoring, c, fleet, truth)),
        attenuation_by_distance,
        registrations: regs.len() as u64,
        keys_per_registration: (!regs.is_empty())
            .then(|| regs.iter().map(|r| r.keys_stored as f64).sum::<f64>() / regs.len() as f64),
        patients: timeline.patients.clone(),
        population,
        epidemic,
        server,
        phones: fleet.work.clone(),
        files: files.len() as u64,
        files_refused: fleet.refused.clone(),
        daily,
        config: config.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (p.p50, p.p90, p.p95, p.max),
            (Some(50.0), Some(90.0), Some(95.0), Some(100.0))
        );
        assert_eq!(p.mean, Some(50.5));
        let none = Percentiles::of(Vec::new());
        assert_eq!((none.count, none.p50), (0, None));
        assert_eq!(ratio(1, 0), None);
    }
}
