//! The registration funnel (issue 13): of the people a centre gave a number,
//! how many received it and how many registered — "4,388 registrations
//! against 20 million downloads" is the figure the seed's notice reports,
//! and the one it wants raised.
//!
//! Counted per person (case), not per number: a reissue does not count a
//! person twice. A person belongs to the Japan calendar day of their first
//! number. Pure: rows in, figures out.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};

/// One issuance as the funnel needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelIssuance {
    /// The case (person).
    pub case_id: i64,
    /// When the case was filed: the positive result entered (unix seconds).
    pub case_filed_at: i64,
    /// When this number was issued.
    pub issued_at: i64,
    /// Its message reached the gateway or relay (`sent`) or the phone
    /// (`delivered`).
    pub delivered: bool,
    /// When a registration used it.
    pub used_at: Option<i64>,
}

/// The funnel of one Japan calendar day, or of a whole period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunnelFigures {
    /// People given a number (their first number fell in the day/period).
    pub numbered: u64,
    /// Of them, people at least one of whose messages was sent or delivered.
    pub delivered: u64,
    /// Of them, people who registered.
    pub registered: u64,
    /// Median seconds from the case's filing to its first number.
    pub median_result_to_number: Option<i64>,
    /// Median seconds from the number used to its registration.
    pub median_number_to_registration: Option<i64>,
}

impl FunnelFigures {
    /// Registered people per person given a number, when there was anyone.
    pub fn registered_share(&self) -> Option<f64> {
        (self.numbered > 0).then(|| self.registered as f64 / self.numbered as f64)
    }
}

/// The funnel by day over a period, and its total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funnel {
    /// Every day of the period, in order (days with nobody included).
    pub days: Vec<(NaiveDate, FunnelFigures)>,
    /// The whole period.
    pub total: FunnelFigures,
}

/// The longest period one funnel covers.
pub const MAX_FUNNEL_DAYS: i64 = 366;

/// The Japan calendar day of a unix time.
pub fn japan_day(t: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(t + 9 * 3600, 0)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    })
}

#[derive(Default)]
struct Person {
    filed_at: i64,
    first_issued_at: i64,
    delivered: bool,
    registration: Option<i64>,
}

#[derive(Default)]
struct Acc {
    figures: FunnelFigures,
    to_number: Vec<i64>,
    to_registration: Vec<i64>,
}

impl Acc {
    fn add(&mut self, p: &Person) {
        self.figures.numbered += 1;
        self.figures.delivered += u64::from(p.delivered);
        self.to_number.push((p.first_issued_at - p.filed_at).max(0));
        if let Some(d) = p.registration {
            self.figures.registered += 1;
            self.to_registration.push(d.max(0));
        }
    }

    fn finish(self) -> FunnelFigures {
        FunnelFigures {
            median_result_to_number: median(self.to_number),
            median_number_to_registration: median(self.to_registration),
            ..self.figures
        }
    }
}

/// The funnel of the people whose first number fell on a Japan calendar day
/// from `from` to `to` (inclusive; at most [`MAX_FUNNEL_DAYS`] days, later
/// days dropped). `rows` must hold every issuance of those people (earlier
/// or later ones too: a person whose first number is before `from` is left
/// out).
pub fn funnel(rows: &[FunnelIssuance], from: NaiveDate, to: NaiveDate) -> Funnel {
    let to = to.min(from + Duration::days(MAX_FUNNEL_DAYS - 1));
    let mut people: BTreeMap<i64, Person> = BTreeMap::new();
    for r in rows {
        let p = people.entry(r.case_id).or_insert_with(|| Person {
            filed_at: r.case_filed_at,
            first_issued_at: r.issued_at,
            ..Person::default()
        });
        p.first_issued_at = p.first_issued_at.min(r.issued_at);
        p.delivered |= r.delivered;
        if let Some(u) = r.used_at {
            p.registration = Some(u - r.issued_at);
        }
    }
    let mut by_day: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for p in people.values() {
        let day = japan_day(p.first_issued_at);
        if day < from || day > to {
            continue;
        }
        by_day.entry(day).or_default().add(p);
        total.add(p);
    }
    let mut days = Vec::new();
    let mut d = from;
    while d <= to {
        let f = by_day.remove(&d).map(Acc::finish).unwrap_or_default();
        days.push((d, f));
        d += Duration::days(1);
    }
    Funnel {
        days,
        total: total.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01 00:00 JST.
    const DEC1: i64 = 1_796_050_800;

    fn row(case_id: i64, issued_at: i64, delivered: bool, used_at: Option<i64>) -> FunnelIssuance {
        FunnelIssuance {
            case_id,
            case_filed_at: DEC1,
            issued_at,
            delivered,
            used_at,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    #[test]
    fn the_test_constant_is_midnight_in_japan() {
        assert_eq!(japan_day(DEC1), day(1));
        assert_eq!(japan_day(DEC1 - 1), day(1).pred_opt().unwrap());
    }

    #[test]
    fn a_reissue_counts_the_person_once_on_the_day_of_their_first_number() {
        let h = 3600;
        let rows = [
            // Person 1: a number on the 1st, undelivered; a reissue on the
            // 2nd, delivered and used 5 h later.
            row(1, DEC1 + 2 * h, false, None),
            row(1, DEC1 + 26 * h, true, Some(DEC1 + 31 * h)),
            // Person 2: delivered on the 1st, never used.
            row(2, DEC1 + 4 * h, true, None),
            // Person 3: on the 2nd, used 1 h later.
            row(3, DEC1 + 30 * h, true, Some(DEC1 + 31 * h)),
        ];
        let f = funnel(&rows, day(1), day(3));
        assert_eq!(f.days.len(), 3);
        let d1 = &f.days[0].1;
        assert_eq!((d1.numbered, d1.delivered, d1.registered), (2, 2, 1));
        assert_eq!(d1.median_result_to_number, Some(3 * h));
        assert_eq!(d1.median_number_to_registration, Some(5 * h));
        let d2 = &f.days[1].1;
        assert_eq!((d2.numbered, d2.delivered, d2.registered), (1, 1, 1));
        assert_eq!(f.days[2].1, FunnelFigures::default());
        assert_eq!(f.total.numbered, 3);
        assert_eq!(f.total.registered, 2);
        assert_eq!(f.total.median_number_to_registration, Some(3 * h));
        assert!((f.total.registered_share().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(FunnelFigures::default().registered_share(), None);
    }

    #[test]
    fn people_whose_first_number_is_outside_the_period_are_left_out() {
        let rows = [
            row(1, DEC1 - 3600, true, None),
            row(1, DEC1 + 3600, true, Some(DEC1 + 7200)),
            row(2, DEC1 + 86_400 * 5, true, None),
        ];
        let f = funnel(&rows, day(1), day(2));
        assert_eq!(f.total.numbered, 0);
        assert!(f.days.iter().all(|(_, d)| d.numbered == 0));
    }

    #[test]
    fn a_period_is_at_most_a_year() {
        let f = funnel(&[], day(1), day(1) + Duration::days(5000));
        assert_eq!(f.days.len() as i64, MAX_FUNNEL_DAYS);
    }
}
