//! Rate limits of the device API.
//!
//! Two layers: a token bucket per client address for every request
//! (governor; 60/min like the reference deployment), and a budget of
//! *failed* verifications per address, reserved before a code is evaluated
//! and given back only when it yields a token, because 8 digits can be guessed:
//! with `L` live numbers one random guess hits with probability `L / 10^8`.
//! A global guard counts failed verifications over the last hour; when they
//! rise far above normal, each failure costs double. `docs/issuer.md` has
//! the table of guessing odds under these defaults.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// Limit settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Device API requests per minute per address.
    pub requests_per_minute: u32,
    /// Failed verifications an address may make at once.
    pub failure_burst: u32,
    /// Seconds for one failed verification to be forgiven.
    pub failure_refill_seconds: u64,
    /// Failed verifications per hour (all addresses) above which each
    /// failure costs double.
    pub global_alarm_failures_per_hour: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: 60,
            failure_burst: 2,
            failure_refill_seconds: 12 * 3600,
            global_alarm_failures_per_hour: 2_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: i64,
}

/// The limits, shared by every request.
#[derive(Debug)]
pub struct Limits {
    config: LimitsConfig,
    requests: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Mutex<HashMap<IpAddr, Bucket>>,
    /// Failed verifications per minute slot over the last hour: (minute, count).
    window: Mutex<[(i64, u64); 60]>,
    failed_total: AtomicU64,
}

impl Limits {
    /// Limits with these settings (`requests_per_minute = 0` disables the
    /// request bucket, e.g. for benchmarks).
    pub fn new(config: LimitsConfig) -> Self {
        let requests = NonZeroU32::new(config.requests_per_minute)
            .map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self {
            config,
            requests,
            failures: Mutex::new(HashMap::new()),
            window: Mutex::new([(0, 0); 60]),
            failed_total: AtomicU64::new(0),
        }
    }

    /// Takes one request from `ip`'s bucket, or the seconds to wait.
    pub fn check_request(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(l) = &self.requests else {
            return Ok(());
        };
        l.check_key(&ip).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }

    fn refill(&self, b: &mut Bucket, now: i64) {
        let per = self.config.failure_refill_seconds.max(1) as f64;
        let gained = (now - b.at).max(0) as f64 / per;
        b.tokens = (b.tokens + gained).min(f64::from(self.config.failure_burst));
        b.at = now;
    }

    /// Reserves one failed verification of `ip`'s budget *before* the code
    /// is evaluated (issue 12, finding 2: "Reserve the budget atomically
    /// before evaluating"). The check and the charge happen under one lock,
    /// so however many requests arrive at once, no more than the budget are
    /// evaluated. The reservation is charged as a failure unless
    /// [`Reservation::refund`] is called (a claim that yields a token); a
    /// request dropped half-way is charged too. Else: the seconds to wait.
    pub fn reserve_failure(&self, ip: IpAddr, now: i64) -> Result<Reservation<'_>, u64> {
        let cost = if self.alarm(now) { 2.0 } else { 1.0 };
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 1_000_000 {
            map.retain(|_, b| now - b.at < self.config.failure_refill_seconds as i64 * 4);
        }
        let b = map.entry(ip).or_insert(Bucket {
            tokens: f64::from(self.config.failure_burst),
            at: now,
        });
        self.refill(b, now);
        if b.tokens < 1.0 {
            let per = self.config.failure_refill_seconds.max(1) as f64;
            return Err(((1.0 - b.tokens) * per).ceil().max(1.0) as u64);
        }
        b.tokens -= cost;
        Ok(Reservation {
            limits: self,
            ip,
            cost,
            now,
            settled: false,
        })
    }

    /// Counts a failure in the last-hour window and the metric.
    fn count_failure(&self, now: i64) {
        self.failed_total.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("issuer_verify_failed_total").increment(1);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let minute = now.div_euclid(60);
        let slot = &mut w[minute.rem_euclid(60) as usize];
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
    }

    fn give_back(&self, ip: IpAddr, cost: f64, now: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get_mut(&ip) {
            self.refill(b, now);
            b.tokens = (b.tokens + cost).min(f64::from(self.config.failure_burst));
        }
    }

    /// Failed verifications over the last hour, all addresses.
    pub fn failures_last_hour(&self, now: i64) -> u64 {
        let minute = now.div_euclid(60);
        let w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        w.iter()
            .filter(|(m, _)| minute - m < 60)
            .map(|(_, c)| c)
            .sum()
    }

    /// Whether failures are far above normal.
    pub fn alarm(&self, now: i64) -> bool {
        self.failures_last_hour(now) > self.config.global_alarm_failures_per_hour
    }

    /// Failed verifications since start (also the metric
    /// `issuer_verify_failed_total`).
    pub fn failed_total(&self) -> u64 {
        self.failed_total.load(Ordering::Relaxed)
    }
}

/// One failed verification taken from an address's budget before its code
/// is evaluated ([`Limits::reserve_failure`]). Dropped without
/// [`refund`](Self::refund), it counts as a failed verification.
#[derive(Debug)]
#[must_use = "a reservation is charged when dropped; refund it when the claim succeeds"]
pub struct Reservation<'a> {
    limits: &'a Limits,
    ip: IpAddr,
    cost: f64,
    now: i64,
    settled: bool,
}

impl Reservation<'_> {
    /// Gives the reservation back: the request yielded a token, or failed
    /// before any code was looked at (a malformed request, an outage).
    pub fn refund(mut self) {
        self.settled = true;
        self.limits.give_back(self.ip, self.cost, self.now);
    }

    /// Charges the reservation as one failed verification.
    pub fn charge(mut self) {
        self.settled = true;
        self.limits.count_failure(self.now);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.limits.count_failure(self.now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_budget_refills_slowly() {
        let l = Limits::new(LimitsConfig::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t = 1_000_000;
        l.reserve_failure(ip, t).unwrap().charge();
        l.reserve_failure(ip, t).unwrap().charge();
        let wait = l.reserve_failure(ip, t).unwrap_err();
        assert_eq!(wait, 12 * 3600);
        assert!(l.reserve_failure(other, t).is_ok());
        l.reserve_failure(ip, t + 12 * 3600)
            .expect("one failure is forgiven after 12 h")
            .refund();
        assert_eq!(
            l.failed_total(),
            3,
            "the dropped reservation of `other` counts"
        );
    }

    #[test]
    fn a_reservation_is_taken_before_evaluation_and_given_back_on_success() {
        let l = Limits::new(LimitsConfig::default());
        let ip: IpAddr = "192.0.2.3".parse().unwrap();
        let t = 2_000_000;
        let a = l.reserve_failure(ip, t).unwrap();
        let b = l.reserve_failure(ip, t).unwrap();
        assert_eq!(
            l.reserve_failure(ip, t).unwrap_err(),
            12 * 3600,
            "two held reservations spend a burst of two"
        );
        a.refund();
        let c = l
            .reserve_failure(ip, t)
            .expect("a refund gives the slot back");
        b.charge();
        drop(c);
        assert_eq!(
            l.failed_total(),
            2,
            "a charge and a drop count, a refund not"
        );
        assert!(l.reserve_failure(ip, t).is_err());
    }

    #[test]
    fn global_alarm_doubles_the_cost() {
        let l = Limits::new(LimitsConfig {
            global_alarm_failures_per_hour: 3,
            ..LimitsConfig::default()
        });
        let t = 5_000_000;
        for i in 0..4u8 {
            l.reserve_failure(IpAddr::from([10, 0, 0, i]), t)
                .unwrap()
                .charge();
        }
        assert!(l.alarm(t));
        let ip: IpAddr = "10.0.1.1".parse().unwrap();
        l.reserve_failure(ip, t).unwrap().charge();
        assert!(
            l.reserve_failure(ip, t).is_err(),
            "one failure spends the whole burst"
        );
        assert!(!l.alarm(t + 3600));
    }

    #[test]
    fn request_bucket_answers_retry_after() {
        let l = Limits::new(LimitsConfig {
            requests_per_minute: 2,
            ..LimitsConfig::default()
        });
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(l.check_request(ip).is_ok());
        assert!(l.check_request(ip).is_ok());
        assert!(l.check_request(ip).unwrap_err() >= 1);
    }
}
