//! Simulated time. The simulation counts seconds from 00:00 Japan time of
//! day 0 ([`SimTime`]); the protocol counts Unix seconds and 10-minute
//! intervals. Nothing here reads a clock: time only moves as the simulation
//! moves it.

use chrono::{DateTime, NaiveDate, Utc};

/// Seconds since 00:00 JST of day 0 (negative before it).
pub type SimTime = i64;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in an hour.
pub const HOUR: i64 = 3_600;
/// Seconds in a minute.
pub const MINUTE: i64 = 60;

/// The calendar of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    /// Unix seconds of 00:00 JST on day 0.
    pub t0_unix: i64,
    /// Japan date of day 0.
    pub start_date: NaiveDate,
}

impl Calendar {
    /// The calendar starting at 00:00 JST on `start_date` (the device's own
    /// notion of a Japan day).
    pub fn new(start_date: NaiveDate) -> Self {
        Self {
            t0_unix: device::window::jst_midnight(start_date).timestamp(),
            start_date,
        }
    }

    /// Unix seconds of a simulated time.
    pub fn unix(&self, t: SimTime) -> i64 {
        self.t0_unix + t
    }

    /// Simulated time of Unix seconds.
    pub fn sim(&self, unix: i64) -> SimTime {
        unix - self.t0_unix
    }

    /// The instant of a simulated time.
    pub fn datetime(&self, t: SimTime) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(self.unix(t), 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// The Japan date of a simulated time.
    pub fn jst_date(&self, t: SimTime) -> NaiveDate {
        device::window::today_in_japan(self.datetime(t))
    }

    /// The UTC day number (Unix days) holding a simulated time: the day of
    /// the Temporary Exposure Key in use then.
    pub fn utc_day(&self, t: SimTime) -> i64 {
        self.unix(t).div_euclid(DAY)
    }

    /// Simulated time of the start (00:00 UTC) of UTC day `day`.
    pub fn utc_day_start(&self, day: i64) -> SimTime {
        self.sim(day * DAY)
    }

    /// Day of the week of simulated day `d` (0 = Monday).
    pub fn weekday(&self, d: i64) -> u32 {
        use chrono::Datelike;
        let date = self.start_date + chrono::Duration::days(d);
        date.weekday().num_days_from_monday()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_zero_starts_at_jst_midnight() {
        let c = Calendar::new(NaiveDate::from_ymd_opt(2020, 12, 1).unwrap());
        // 2020-12-01 00:00 JST = 2020-11-30 15:00 UTC.
        assert_eq!(c.t0_unix, 1_606_748_400);
        assert_eq!(c.jst_date(0), NaiveDate::from_ymd_opt(2020, 12, 1).unwrap());
        assert_eq!(
            c.jst_date(-1),
            NaiveDate::from_ymd_opt(2020, 11, 30).unwrap()
        );
        // Keys roll at 09:00 JST.
        assert_eq!(c.utc_day(9 * HOUR), c.utc_day(0) + 1);
        assert_eq!(c.utc_day_start(c.utc_day(0) + 1), 9 * HOUR);
        assert_eq!(c.weekday(0), 1, "2020-12-01 was a Tuesday");
    }
}
