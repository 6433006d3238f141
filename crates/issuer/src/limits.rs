//! Rate limits of the device API.
//!
//! Three layers:
//! - a token bucket per client address for every request (governor; 60/min like the
//!   reference deployment);
//! - a budget of *failed* verifications of typed 8-digit numbers per address (20 at once, one
//!   more an hour), reserved before a number is evaluated and given back only when it yields
//!   a token. It is generous because Japanese carriers put many phones behind one IPv4
//!   address (issue 12, finding 3: "10 wrong numbers from an address do not stop a valid
//!   number from that address");
//! - the **guessing ledger**, which keeps the bound whatever the number of addresses. With
//!   `L` live numbers one random guess hits with probability `L / 10^8`; every evaluated
//!   typed number adds that probability to a ledger of the last 24 hours, and while the
//!   ledger holds `guessed_numbers_per_day` (0.5 by default) typed numbers are paused for
//!   everyone. The app link's code (100 bits) never touches the ledger, so the link in the
//!   SMS or e-mail keeps working while typed numbers are paused. The allowance is therefore
//!   sized to the live numbers, i.e. to the day's issuance: about 2,500 failed numbers a day
//!   at 20,000 live numbers, 50,000 at 1,000. `docs/issuer.md` has the odds table.
//!
//! The ledger is per process: with `R` replicas behind one balancer, set
//! `guessed_numbers_per_day` to the bound divided by `R`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

/// Limit settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Device API requests per minute per address.
    pub requests_per_minute: u32,
    /// Failed verifications of typed numbers an address may make at once.
    pub failure_burst: u32,
    /// Seconds for one failed verification of an address to be forgiven.
    pub failure_refill_seconds: u64,
    /// The guessing bound: the expected number of live numbers that random guesses may find
    /// in any 24 hours, all addresses together (see the module documentation).
    pub guessed_numbers_per_day: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: 60,
            failure_burst: 20,
            failure_refill_seconds: 3600,
            guessed_numbers_per_day: 0.5,
        }
    }
}

/// The possible numbers: 8 digits.
const NUMBER_SPACE: f64 = 100_000_000.0;

/// Hours the guessing ledger looks back over.
const LEDGER_HOURS: usize = 24;

/// Why a typed number was not evaluated (`Retry-After`: `retry_after` seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This address's failed-verification budget is spent.
    Address {
        /// Seconds until one more attempt is allowed.
        retry_after: u64,
    },
    /// The guessing ledger is full: typed numbers are paused for every address.
    Paused {
        /// Seconds until the ledger has room again.
        retry_after: u64,
    },
}

impl Refusal {
    /// Seconds to wait.
    pub fn retry_after(self) -> u64 {
        match self {
            Self::Address { retry_after } | Self::Paused { retry_after } => retry_after,
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
    /// The guessing ledger: per hour slot of the last 24, (hour, sum of the hit
    /// probabilities of the typed numbers evaluated or being evaluated).
    ledger: Mutex<[(i64, f64); LEDGER_HOURS]>,
    /// Live numbers (`L`) and when they were counted ([`Limits::set_live_numbers`]).
    live: AtomicU64,
    live_at: AtomicI64,
    failed_total: AtomicU64,
}

impl Limits {
    /// Limits with these settings (`requests_per_minute = 0` disables the
    /// request bucket, e.g. for benchmarks). Until [`Limits::set_live_numbers`] is called
    /// the ledger assumes no live number.
    pub fn new(config: LimitsConfig) -> Self {
        let requests = NonZeroU32::new(config.requests_per_minute)
            .map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self {
            config,
            requests,
            failures: Mutex::new(HashMap::new()),
            window: Mutex::new([(0, 0); 60]),
            ledger: Mutex::new([(i64::MIN, 0.0); LEDGER_HOURS]),
            live: AtomicU64::new(0),
            live_at: AtomicI64::new(i64::MIN),
            failed_total: AtomicU64::new(0),
        }
    }

    /// Records the count of live numbers `L` at `now` (the device API recounts at most once a
    /// minute, [`Limits::claim_live_recount`]).
    pub fn set_live_numbers(&self, live: u64, now: i64) {
        self.live.store(live, Ordering::Relaxed);
        self.live_at.store(now, Ordering::Relaxed);
        metrics::gauge!("issuer_live_numbers").set(live as f64);
    }

    /// Whether the caller should recount the live numbers: true for one caller once the
    /// count is a minute old (the others go on with the last count).
    pub fn claim_live_recount(&self, now: i64) -> bool {
        let at = self.live_at.load(Ordering::Relaxed);
        now.saturating_sub(at) >= 60
            && self
                .live_at
                .compare_exchange(at, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The live numbers last counted.
    pub fn live_numbers(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// The chance that one random typed number hits a live one now: `L / 10^8`.
    pub fn hit_probability(&self) -> f64 {
        (self.live_numbers() as f64 / NUMBER_SPACE).min(1.0)
    }

    /// The guessing ledger's sum over the last 24 hours at `now`: the expected number of
    /// live numbers the typed numbers evaluated in that time could have found.
    pub fn guessing_risk(&self, now: i64) -> f64 {
        let ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        live_slots(&ledger, now).map(|(_, p)| p).sum()
    }

    /// Failed verifications of typed numbers an address may make in its first 24 hours,
    /// and how many the guessing ledger admits in a day at `live` numbers (all addresses).
    pub fn allowance(&self, live: u64) -> (u64, f64) {
        let per_address = u64::from(self.config.failure_burst)
            + 86_400 / self.config.failure_refill_seconds.max(1);
        let global = if live == 0 {
            f64::INFINITY
        } else {
            self.config.guessed_numbers_per_day * NUMBER_SPACE / live as f64
        };
        (per_address, global)
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

    /// Reserves one failed verification of `ip`'s budget, and its hit probability in the
    /// guessing ledger, *before* the typed number is evaluated (issue 12, finding 2:
    /// "Reserve the budget atomically before evaluating"). Both checks and charges happen
    /// under the locks, so however many requests arrive at once, no more than the budget are
    /// evaluated. The reservation is charged as a failure unless [`Reservation::refund`] is
    /// called (a claim that yields a token); a request dropped half-way is charged too.
    pub fn reserve_failure(&self, ip: IpAddr, now: i64) -> Result<Reservation<'_>, Refusal> {
        let p = self.hit_probability();
        let hour = now.div_euclid(3600);
        // Lock order: the ledger, then the addresses.
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let risk: f64 = live_slots(&ledger, now).map(|(_, q)| q).sum();
        if p > 0.0 && risk + p > self.config.guessed_numbers_per_day {
            return Err(Refusal::Paused {
                retry_after: ledger_wait(&ledger, now, p, self.config.guessed_numbers_per_day),
            });
        }
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
            return Err(Refusal::Address {
                retry_after: ((1.0 - b.tokens) * per).ceil().max(1.0) as u64,
            });
        }
        b.tokens -= 1.0;
        let slot = &mut ledger[hour.rem_euclid(LEDGER_HOURS as i64) as usize];
        if slot.0 != hour {
            *slot = (hour, 0.0);
        }
        slot.1 += p;
        Ok(Reservation {
            limits: self,
            ip,
            p,
            hour,
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

    fn give_back(&self, ip: IpAddr, p: f64, hour: i64, now: i64) {
        {
            let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
            let slot = &mut ledger[hour.rem_euclid(LEDGER_HOURS as i64) as usize];
            if slot.0 == hour {
                slot.1 = (slot.1 - p).max(0.0);
            }
        }
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get_mut(&ip) {
            self.refill(b, now);
            b.tokens = (b.tokens + 1.0).min(f64::from(self.config.failure_burst));
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
    p: f64,
    hour: i64,
    now: i64,
    settled: bool,
}

impl Reservation<'_> {
    /// Gives the reservation back: the request yielded a token, or failed
    /// before any code was looked at (a malformed request, an outage).
    pub fn refund(mut self) {
        self.settled = true;
        self.limits.give_back(self.ip, self.p, self.hour, self.now);
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

/// The ledger's slots of the 24 hours up to `now`.
fn live_slots(ledger: &[(i64, f64); LEDGER_HOURS], now: i64) -> impl Iterator<Item = &(i64, f64)> {
    let hour = now.div_euclid(3600);
    ledger
        .iter()
        .filter(move |(h, _)| *h > hour - LEDGER_HOURS as i64 && *h <= hour)
}

/// Seconds until the ledger has room for `p` more under `bound`: the oldest hours leave it
/// first, each 24 hours after it began.
fn ledger_wait(ledger: &[(i64, f64); LEDGER_HOURS], now: i64, p: f64, bound: f64) -> u64 {
    let mut slots: Vec<(i64, f64)> = live_slots(ledger, now).copied().collect();
    slots.sort_by_key(|(h, _)| *h);
    let mut risk: f64 = slots.iter().map(|(_, q)| q).sum();
    for (h, q) in slots {
        risk -= q;
        if risk + p <= bound {
            let leaves = (h + LEDGER_HOURS as i64) * 3600;
            return u64::try_from(leaves - now).unwrap_or(1).max(1);
        }
    }
    // `p` alone is above the bound: typed numbers stay paused while that many numbers
    // are live; an hour is as good a time as any to look again.
    3600
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn an_address_has_twenty_failures_and_one_more_an_hour() {
        let l = Limits::new(LimitsConfig::default());
        let (a, other) = (ip(1), ip(2));
        let t = 1_000_000;
        for _ in 0..20 {
            l.reserve_failure(a, t).unwrap().charge();
        }
        assert_eq!(
            l.reserve_failure(a, t).unwrap_err(),
            Refusal::Address { retry_after: 3600 }
        );
        assert!(l.reserve_failure(other, t).is_ok());
        l.reserve_failure(a, t + 3600)
            .expect("one failure is forgiven after an hour")
            .refund();
        assert_eq!(
            l.failed_total(),
            21,
            "the dropped reservation of `other` counts"
        );
    }

    #[test]
    fn a_reservation_is_taken_before_evaluation_and_given_back_on_success() {
        let l = Limits::new(LimitsConfig {
            failure_burst: 2,
            ..LimitsConfig::default()
        });
        l.set_live_numbers(20_000, 0);
        let a_ip = ip(3);
        let t = 2_000_000;
        let a = l.reserve_failure(a_ip, t).unwrap();
        let b = l.reserve_failure(a_ip, t).unwrap();
        assert!(
            matches!(l.reserve_failure(a_ip, t), Err(Refusal::Address { .. })),
            "two held reservations spend a burst of two"
        );
        assert!((l.guessing_risk(t) - 2.0 * 0.0002).abs() < 1e-12);
        a.refund();
        assert!(
            (l.guessing_risk(t) - 0.0002).abs() < 1e-12,
            "a refund gives the ledger back too"
        );
        let c = l
            .reserve_failure(a_ip, t)
            .expect("a refund gives the slot back");
        b.charge();
        drop(c);
        assert_eq!(
            l.failed_total(),
            2,
            "a charge and a drop count, a refund not"
        );
        assert!(l.reserve_failure(a_ip, t).is_err());
    }

    /// The bound holds against any number of addresses: at 20,000 live numbers one guess
    /// hits with 1 in 5,000, so 0.5 a day admits 2,500 failed numbers, then typed numbers
    /// are paused for everyone until the oldest hour leaves the ledger.
    #[test]
    fn the_guessing_ledger_pauses_typed_numbers_at_the_bound_from_any_number_of_addresses() {
        let l = Limits::new(LimitsConfig::default());
        let t0 = 36_000_000; // at the start of an hour
        l.set_live_numbers(20_000, t0);
        assert_eq!(l.allowance(20_000), (20 + 24, 2_500.0));
        // 1,000 in the first hour, 1,500 two hours later, each from its own address.
        for n in 0..1_000 {
            l.reserve_failure(ip(n), t0).unwrap().charge();
        }
        let t2 = t0 + 2 * 3600;
        let mut admitted = 0;
        let refusal = loop {
            match l.reserve_failure(ip(10_000 + admitted), t2) {
                Ok(r) => {
                    r.charge();
                    admitted += 1;
                }
                Err(e) => break e,
            }
        };
        // Floating-point sums may leave one guess either side of 2,500.
        assert!((1_499..=1_500).contains(&admitted), "{admitted}");
        assert!((l.guessing_risk(t2) - 0.5).abs() < 0.001);
        // The first hour's thousand leave the ledger 24 h after it began: 22 h from now.
        assert_eq!(
            refusal,
            Refusal::Paused {
                retry_after: 22 * 3600
            }
        );
        assert!(
            matches!(
                l.reserve_failure(ip(99_999), t2),
                Err(Refusal::Paused { .. })
            ),
            "a fresh address is paused too"
        );
        assert!(l.reserve_failure(ip(99_999), t0 + 24 * 3600).is_ok());
        // With no live number there is nothing to guess: nothing is paused.
        l.set_live_numbers(0, t2);
        assert!(l.reserve_failure(ip(99_998), t2).is_ok());
    }

    #[test]
    fn a_concurrent_burst_from_many_addresses_gets_no_more_than_the_ledger_admits() {
        let l = Limits::new(LimitsConfig {
            guessed_numbers_per_day: 0.01,
            ..LimitsConfig::default()
        });
        let t = 50_000_000;
        l.set_live_numbers(1_000_000, t); // 1 in 100: 0.01 admits one guess
        let admitted = AtomicU64::new(0);
        std::thread::scope(|s| {
            for n in 0..64 {
                let (l, admitted) = (&l, &admitted);
                s.spawn(move || {
                    if let Ok(r) = l.reserve_failure(ip(n), t) {
                        admitted.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        r.charge();
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_live_count_is_claimed_by_one_caller_a_minute() {
        let l = Limits::new(LimitsConfig::default());
        assert!(l.claim_live_recount(1_000));
        assert!(!l.claim_live_recount(1_000), "one caller recounts");
        l.set_live_numbers(5, 1_000);
        assert!(!l.claim_live_recount(1_059));
        assert!(l.claim_live_recount(1_060));
        assert_eq!(l.live_numbers(), 5);
    }

    #[test]
    fn request_bucket_answers_retry_after() {
        let l = Limits::new(LimitsConfig {
            requests_per_minute: 2,
            ..LimitsConfig::default()
        });
        let a = ip(9);
        assert!(l.check_request(a).is_ok());
        assert!(l.check_request(a).is_ok());
        assert!(l.check_request(a).unwrap_err() >= 1);
    }
}
