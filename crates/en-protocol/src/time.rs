//! Exposure Notification time: 10-minute intervals since the Unix epoch, and
//! the injected clock every part of cocoa-rs reads time from.

use std::fmt;
use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Length of one `ENIntervalNumber` in seconds (spec: "10 minutes").
pub const EN_INTERVAL_SECONDS: i64 = 600;

/// `TEKRollingPeriod`: a key is valid for 144 intervals (24 hours).
pub const TEK_ROLLING_PERIOD: u32 = 144;

/// Matching tolerance: a sighting of `RPI(j)` counts when it was seen within
/// ±2 hours (12 intervals) of interval `j` (PROTOCOLS.md §1).
pub const MATCH_TOLERANCE_INTERVALS: u32 = 12;

/// `ENIntervalNumber(t) = floor(unix_seconds / 600)`, an unsigned 32-bit number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnIntervalNumber(u32);

/// A time that has no `ENIntervalNumber`: before 1970 or after the year 83,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time {unix_seconds} s is outside the range of ENIntervalNumber")]
pub struct TimeOutOfRange {
    /// The offending time.
    pub unix_seconds: i64,
}

impl EnIntervalNumber {
    /// The interval with this number.
    pub const fn new(n: u32) -> Self {
        Self(n)
    }

    /// The raw number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The interval that contains `unix_seconds`.
    pub fn from_unix_seconds(unix_seconds: i64) -> Result<Self, TimeOutOfRange> {
        if unix_seconds < 0 {
            return Err(TimeOutOfRange { unix_seconds });
        }
        u32::try_from(unix_seconds / EN_INTERVAL_SECONDS)
            .map(Self)
            .map_err(|_| TimeOutOfRange { unix_seconds })
    }

    /// The interval that contains `t`.
    pub fn from_datetime(t: DateTime<Utc>) -> Result<Self, TimeOutOfRange> {
        Self::from_unix_seconds(t.timestamp())
    }

    /// The first second of this interval.
    pub const fn to_unix_seconds(self) -> i64 {
        self.0 as i64 * EN_INTERVAL_SECONDS
    }

    /// The first instant of this interval.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.to_unix_seconds(), 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The start of the UTC day holding this interval: devices start keys at
    /// UTC midnight, so this is the `rolling_start` of the day's key.
    pub const fn day_start(self) -> Self {
        Self(self.0 - self.0 % TEK_ROLLING_PERIOD)
    }

    /// `self + n`, or `None` past `u32::MAX`.
    pub const fn checked_add(self, n: u32) -> Option<Self> {
        match self.0.checked_add(n) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// `self - n`, stopping at interval 0.
    pub const fn saturating_sub(self, n: u32) -> Self {
        Self(self.0.saturating_sub(n))
    }
}

impl fmt::Debug for EnIntervalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnIntervalNumber({})", self.0)
    }
}

impl fmt::Display for EnIntervalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for EnIntervalNumber {
    fn from(n: u32) -> Self {
        Self(n)
    }
}

/// Japan Standard Time: UTC+9, no daylight saving. "Dates shown to people are
/// Japan's calendar dates": every date a person reads (a contact's day, an
/// expiry, a statistic's period) is taken in this offset. The one definition.
pub fn jst() -> FixedOffset {
    // 9 h is within ±24 h, so `east_opt` cannot fail; UTC is never reached.
    FixedOffset::east_opt(9 * 3600)
        .unwrap_or(FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()))
}

/// Japan's calendar date at `t`.
pub fn japan_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&jst()).date_naive()
}

/// Where every part of cocoa-rs reads the time from. Production uses
/// [`SystemClock`]; tests and demos use [`FixedClock`] so that a story of
/// several days runs in seconds.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system time
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    /// A clock showing `t`.
    pub fn new(t: DateTime<Utc>) -> Self {
        Self(Mutex::new(t))
    }

    /// Sets the time to `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += d;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japan_date_turns_at_midnight_jst_which_is_15_utc() {
        let before = Utc.with_ymd_and_hms(2021, 3, 1, 14, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2021, 3, 1, 15, 0, 0).unwrap();
        assert_eq!(
            japan_date(before),
            NaiveDate::from_ymd_opt(2021, 3, 1).unwrap()
        );
        assert_eq!(
            japan_date(after),
            NaiveDate::from_ymd_opt(2021, 3, 2).unwrap()
        );
        assert_eq!(jst().local_minus_utc(), 9 * 3600);
    }

    #[test]
    fn interval_of_spec_example() {
        // The test vectors' key was generated at 1585785600 (2020-04-02 00:00 UTC).
        let i = EnIntervalNumber::from_unix_seconds(1_585_785_600).unwrap();
        assert_eq!(i.get(), 2_642_976);
        assert_eq!(i.day_start(), i);
        assert_eq!(i.to_unix_seconds(), 1_585_785_600);
        let later = EnIntervalNumber::from_unix_seconds(1_585_785_600 + 599).unwrap();
        assert_eq!(later, i);
        let next = EnIntervalNumber::from_unix_seconds(1_585_785_600 + 600).unwrap();
        assert_eq!(next.get(), 2_642_977);
        assert_eq!(EnIntervalNumber::new(2_642_976 + 143).day_start(), i);
    }

    #[test]
    fn out_of_range_times_are_errors() {
        assert!(EnIntervalNumber::from_unix_seconds(-1).is_err());
        assert!(EnIntervalNumber::from_unix_seconds(i64::MAX).is_err());
        assert!(EnIntervalNumber::from_unix_seconds(u32::MAX as i64 * 600).is_ok());
        assert!(EnIntervalNumber::from_unix_seconds((u32::MAX as i64 + 1) * 600).is_err());
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let t0 = Utc.with_ymd_and_hms(2020, 12, 16, 0, 0, 0).unwrap();
        let c = FixedClock::new(t0);
        assert_eq!(c.now(), t0);
        c.advance(chrono::Duration::hours(25));
        assert_eq!(c.now(), t0 + chrono::Duration::hours(25));
    }
}
