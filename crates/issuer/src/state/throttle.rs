//! Login throttling. Every login attempt (a password or a TOTP code) is
//! counted *before* the password is hashed: [`LoginThrottle::reserve`]
//! checks and takes the slot under one lock, so a burst of simultaneous
//! attempts cannot all pass the check before the first failure is written
//! (issue 12, finding 4: "Count the attempt before hashing").
//!
//! The limits (issue 12, finding 5: "Throttle per (login, address) and slow
//! down — do not lock out — the login as a whole"):
//! - per login id *and* address: past `per_login_address` attempts in the
//!   window, that address may not try that login id until the window ends;
//! - per address: past `per_address` attempts, that address may not log in;
//! - per login id from every address: past `slow_login_after` attempts,
//!   each further attempt waits (`slow_step_ms` more each time, at most
//!   `slow_max_ms`) before it is checked — slower, never refused, so
//!   guesses from elsewhere cannot lock the real user out.
//!
//! TOTP codes are limited per account across addresses (`totp_per_login`
//! wrong codes per window), and counters are cleared only when the whole
//! login (password and code) succeeds, never by the password step alone
//! (issue 12, finding 6: "Clear counters only after the whole login
//! succeeds; limit TOTP attempts per account across addresses").
//!
//! The argon2id hashes themselves are capped by [`HashGate`]: a semaphore
//! sized to the cores, a short bounded queue, and a refusal beyond it
//! ("cap concurrent hashes (a semaphore sized to the cores) and queue or
//! refuse beyond it").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits of [`LoginThrottle`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Attempts per login id from one client address within the window;
    /// then that address is refused for that login id until the window ends.
    pub per_login_address: u32,
    /// Attempts per client address within the window (any login id).
    pub per_address: u32,
    /// Window length, seconds.
    pub window_seconds: i64,
    /// Attempts of a login id (from every address) in the window after
    /// which each further attempt is slowed down.
    pub slow_login_after: u32,
    /// Extra wait per attempt past `slow_login_after`, milliseconds.
    pub slow_step_ms: u64,
    /// Longest wait of a slowed-down attempt, milliseconds.
    pub slow_max_ms: u64,
    /// TOTP codes per account (from every address) within the window;
    /// then the second step is refused until the window ends.
    pub totp_per_login: u32,
    /// Password checks that may wait for a free core (beyond the ones
    /// hashing); more are refused with 503.
    pub hash_queue: usize,
    /// How long a password check waits for a free core before it is
    /// refused with 503, milliseconds.
    pub hash_wait_ms: u64,
    /// Most keys each counter table holds (about 150 bytes each, so the
    /// four tables stay under ~150 MB at the default). A table full of
    /// live windows refuses new addresses or login ids until its oldest
    /// window ends, rather than forgetting counts an attacker could reset.
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            per_login_address: 5,
            per_address: 20,
            window_seconds: 15 * 60,
            slow_login_after: 5,
            slow_step_ms: 500,
            slow_max_ms: 5_000,
            totp_per_login: 5,
            hash_queue: 16,
            hash_wait_ms: 3_000,
            max_tracked: 250_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    attempts: u32,
}

impl Window {
    fn live(&self, window: i64, now: i64) -> bool {
        now - self.start < window
    }
}

/// One kind of counter (per pair, address, login or account), bounded:
/// ended windows are swept when the table has doubled since the last
/// sweep (so a sweep costs O(1) per insert, amortized), and a table that
/// is still full of live windows takes no new keys until its oldest
/// window ends (issue 12: bounds on the login-throttle counters — a flood
/// of new addresses or login ids must neither grow memory without limit
/// nor make every request sweep the whole table).
#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Window>,
    /// Sweep when a new key would make the table this long.
    sweep_at: usize,
    /// Full of live windows: no sweep (and no new key) before this time.
    full_until: i64,
    sweeps: u64,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep_at: 1024,
            full_until: i64::MIN,
            sweeps: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq> Table<K> {
    /// The live window of `key` (none: a fresh one), without taking room.
    fn current(&self, key: &K, window: i64, now: i64) -> Window {
        match self.map.get(key) {
            Some(w) if w.live(window, now) => *w,
            _ => Window {
                start: now,
                attempts: 0,
            },
        }
    }

    /// Whether `key` can be counted: it is tracked already, or there is
    /// room (after a sweep when due). `Err(until)`: full of live windows
    /// until then.
    fn room(&mut self, key: &K, window: i64, now: i64, cap: usize) -> Result<(), i64> {
        if self.map.contains_key(key) {
            return Ok(());
        }
        let len = self.map.len();
        if len < self.sweep_at.min(cap) {
            return Ok(());
        }
        if now < self.full_until {
            return Err(self.full_until);
        }
        self.map.retain(|_, w| w.live(window, now));
        self.sweeps += 1;
        self.sweep_at = (self.map.len() * 2).max(1024);
        if self.map.len() >= cap {
            // Every window is live: the oldest ends first.
            let oldest = self.map.values().map(|w| w.start).min().unwrap_or(now);
            self.full_until = (oldest + window).max(now + 1);
            metrics::counter!("issuer_login_throttle_full_total").increment(1);
            return Err(self.full_until);
        }
        self.full_until = i64::MIN;
        Ok(())
    }

    /// Counts one attempt of `key` (call [`Table::room`] first).
    fn take(&mut self, key: K, window: i64, now: i64) {
        let w = self.map.entry(key).or_insert(Window {
            start: now,
            attempts: 0,
        });
        if !w.live(window, now) {
            *w = Window {
                start: now,
                attempts: 0,
            };
        }
        w.attempts += 1;
    }

    fn give_back(&mut self, key: &K) {
        if let Some(w) = self.map.get_mut(key) {
            w.attempts = w.attempts.saturating_sub(1);
        }
    }

    fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }
}

#[derive(Debug, Default)]
struct Counters {
    pairs: Table<(String, IpAddr)>,
    addresses: Table<IpAddr>,
    logins: Table<String>,
    codes: Table<String>,
}

/// What reached its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// This login id from this address.
    LoginFromAddress,
    /// This address, whatever the login id.
    Address,
    /// TOTP codes of this account, from every address.
    Codes,
    /// So many addresses or login ids tried in this window that no more
    /// can be counted ([`ThrottleConfig::max_tracked`]): new ones wait
    /// until the oldest window ends.
    Crowded,
}

/// Why an attempt is refused, and until when (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// What reached its limit.
    pub limit: Limit,
    /// The attempt may be made again from this time on.
    pub until: i64,
}

/// An attempt taken: check it after `delay` (the login is being slowed
/// down when other attempts of the window failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Wait this long before checking.
    pub delay: Duration,
}

/// Login attempt counters, in memory (one process), and the hash gate.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    counters: Mutex<Counters>,
    hashes: HashGate,
}

impl LoginThrottle {
    /// Counters with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            hashes: HashGate::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
                config.hash_queue,
                Duration::from_millis(config.hash_wait_ms),
            ),
            config,
            counters: Mutex::new(Counters::default()),
        }
    }

    /// The argon2 gate.
    pub fn hashes(&self) -> &HashGate {
        &self.hashes
    }

    /// Takes one attempt for `login` from `ip` — checked and counted under
    /// one lock, before any password is hashed — or refuses it while this
    /// login id from this address, or this address, has used its attempts
    /// of the window. The login id as a whole is only slowed down.
    pub fn reserve(&self, login: &str, ip: IpAddr, now: i64) -> Result<Admission, Refusal> {
        let cfg = &self.config;
        let (win, cap) = (cfg.window_seconds, cfg.max_tracked);
        let pair = (login.to_owned(), ip);
        let login = login.to_owned();
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let p = c.pairs.current(&pair, win, now);
        let a = c.addresses.current(&ip, win, now);
        if p.attempts >= cfg.per_login_address {
            return Err(Refusal {
                limit: Limit::LoginFromAddress,
                until: p.start + win,
            });
        }
        if a.attempts >= cfg.per_address {
            return Err(Refusal {
                limit: Limit::Address,
                until: a.start + win,
            });
        }
        let room = [
            c.pairs.room(&pair, win, now, cap),
            c.addresses.room(&ip, win, now, cap),
            c.logins.room(&login, win, now, cap),
        ];
        if let Some(until) = room.iter().filter_map(|r| r.err()).max() {
            return Err(Refusal {
                limit: Limit::Crowded,
                until,
            });
        }
        let before = c.logins.current(&login, win, now).attempts;
        c.pairs.take(pair, win, now);
        c.addresses.take(ip, win, now);
        c.logins.take(login, win, now);
        let over = u64::from(before.saturating_sub(cfg.slow_login_after.saturating_sub(1)));
        let delay = (cfg.slow_step_ms.saturating_mul(over)).min(cfg.slow_max_ms);
        Ok(Admission {
            delay: Duration::from_millis(delay),
        })
    }

    /// Takes one TOTP code attempt for the account `login` from `ip`, or
    /// refuses it while the account has used its codes of the window (from
    /// any address) or the address its attempts.
    pub fn reserve_code(&self, login: &str, ip: IpAddr, now: i64) -> Result<(), Refusal> {
        let cfg = &self.config;
        let (win, cap) = (cfg.window_seconds, cfg.max_tracked);
        let login = login.to_owned();
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let k = c.codes.current(&login, win, now);
        let a = c.addresses.current(&ip, win, now);
        if k.attempts >= cfg.totp_per_login {
            return Err(Refusal {
                limit: Limit::Codes,
                until: k.start + win,
            });
        }
        if a.attempts >= cfg.per_address {
            return Err(Refusal {
                limit: Limit::Address,
                until: a.start + win,
            });
        }
        let room = [
            c.codes.room(&login, win, now, cap),
            c.addresses.room(&ip, win, now, cap),
        ];
        if let Some(until) = room.iter().filter_map(|r| r.err()).max() {
            return Err(Refusal {
                limit: Limit::Crowded,
                until,
            });
        }
        c.codes.take(login, win, now);
        c.addresses.take(ip, win, now);
        Ok(())
    }

    /// Keys tracked now, over all four tables, and sweeps so far (for
    /// tests and the gauge).
    pub fn tracked(&self) -> (usize, u64) {
        let c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        (
            c.pairs.map.len() + c.addresses.map.len() + c.logins.map.len() + c.codes.map.len(),
            c.pairs.sweeps + c.addresses.sweeps + c.logins.sweeps + c.codes.sweeps,
        )
    }

    /// Gives back an attempt that was reserved but not checked (the server
    /// was too busy to hash it).
    pub fn release(&self, login: &str, ip: IpAddr) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.pairs.give_back(&(login.to_owned(), ip));
        c.addresses.give_back(&ip);
        c.logins.give_back(&login.to_owned());
    }

    /// After a whole login succeeded (password, and the code when the
    /// account has TOTP; never after the password step alone): clears this
    /// login id's counts from this address, as a whole and of codes, and
    /// gives the address its attempt back.
    pub fn succeeded(&self, login: &str, ip: IpAddr) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let login = login.to_owned();
        c.pairs.remove(&(login.clone(), ip));
        c.logins.remove(&login);
        c.codes.remove(&login);
        c.addresses.give_back(&ip);
    }
}

/// Caps the argon2id hashes of logins running at once (each takes ~19 MiB
/// and a core): `permits` run, `queue` more wait up to `wait`, the rest
/// are refused at once. The gauge `issuer_login_hashes_in_flight` and the
/// counter `issuer_login_hash_refused_total` show it.
#[derive(Debug)]
pub struct HashGate {
    semaphore: Arc<Semaphore>,
    permits: usize,
    queue: usize,
    wait: Duration,
    waiting: AtomicUsize,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    refused: AtomicU64,
}

/// The server is too busy to check a password now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    /// Seconds to wait before trying again (`Retry-After`).
    pub retry_after: u64,
}

/// A running hash; the slot is free again when this is dropped (move it
/// into the blocking task that hashes, so an abandoned request does not
/// free the slot of a hash still running).
#[derive(Debug)]
pub struct HashPermit {
    _permit: OwnedSemaphorePermit,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for HashPermit {
    fn drop(&mut self) {
        let n = self.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("issuer_login_hashes_in_flight").set(n as f64);
    }
}

impl HashGate {
    /// A gate of `permits` concurrent hashes and `queue` waiting ones.
    pub fn new(permits: usize, queue: usize, wait: Duration) -> Self {
        let permits = permits.max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            permits,
            queue,
            wait,
            waiting: AtomicUsize::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            refused: AtomicU64::new(0),
        }
    }

    /// Hashes that may run at once (the cores).
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// The most hashes that ran at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Password checks refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn admitted(&self, permit: OwnedSemaphorePermit) -> HashPermit {
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        metrics::gauge!("issuer_login_hashes_in_flight").set(n as f64);
        HashPermit {
            _permit: permit,
            in_flight: self.in_flight.clone(),
        }
    }

    fn refuse(&self) -> Busy {
        self.refused.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("issuer_login_hash_refused_total").increment(1);
        Busy {
            retry_after: self.wait.as_secs().clamp(1, 30),
        }
    }

    /// A slot to hash a password: at once when a core is free, after a
    /// short wait in the bounded queue, or [`Busy`].
    pub async fn enter(&self) -> Result<HashPermit, Busy> {
        if let Ok(p) = self.semaphore.clone().try_acquire_owned() {
            return Ok(self.admitted(p));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(self.refuse());
        }
        let got = tokio::time::timeout(self.wait, self.semaphore.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Ok(self.admitted(p)),
            _ => Err(self.refuse()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_from_address_and_address_limits_apply_separately() {
        let t = LoginThrottle::new(ThrottleConfig {
            per_login_address: 2,
            per_address: 3,
            window_seconds: 100,
            slow_login_after: 2,
            slow_step_ms: 100,
            slow_max_ms: 250,
            ..ThrottleConfig::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let ms = |r: Result<Admission, Refusal>| r.unwrap().delay.as_millis();
        assert_eq!(ms(t.reserve("yamada", a, 0)), 0);
        assert_eq!(ms(t.reserve("yamada", a, 1)), 0);
        assert_eq!(
            t.reserve("yamada", a, 2),
            Err(Refusal {
                limit: Limit::LoginFromAddress,
                until: 100
            })
        );
        // Another address may still try that login id, slowed down.
        assert_eq!(ms(t.reserve("yamada", b, 2)), 100);
        assert_eq!(ms(t.reserve("yamada", b, 2)), 200);
        assert_eq!(ms(t.reserve("yamada", c, 2)), 250, "at most slow_max_ms");
        assert!(t.reserve("suzuki", a, 2).is_ok());
        assert_eq!(
            t.reserve("kato", a, 4),
            Err(Refusal {
                limit: Limit::Address,
                until: 100
            }),
            "per address, whatever the login"
        );
        assert!(t.reserve("kato", c, 4).is_ok());
        assert_eq!(ms(t.reserve("yamada", a, 101)), 0, "the window ends");
        t.release("kato", c);
        t.succeeded("suzuki", a);
        assert!(t.reserve("tanaka", b, 5).is_ok());
        assert!(t.reserve("sato", b, 5).is_err(), "b used its 3");
        t.succeeded("yamada", c);
        assert_eq!(ms(t.reserve("yamada", c, 5)), 0, "a success clears");
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    /// A flood of new addresses and login ids: memory stays bounded, the
    /// table is swept O(1) per attempt amortized (not once per attempt),
    /// a full table refuses only new keys and only until its oldest window
    /// ends, and what was counted is never forgotten early.
    #[test]
    fn a_flood_of_new_addresses_is_bounded_and_forgets_nothing() {
        let cap = 5_000;
        let t = LoginThrottle::new(ThrottleConfig {
            per_login_address: 2,
            window_seconds: 100,
            max_tracked: cap,
            ..ThrottleConfig::default()
        });
        // A known address tries the real login and fails twice.
        let home = ip(0);
        assert!(t.reserve("yamada", home, 0).is_ok());
        assert!(t.reserve("yamada", home, 0).is_ok());
        // 50,000 attempts, each from a new address with a new login id,
        // over 40 seconds.
        let mut crowded = 0;
        for i in 1..=50_000u32 {
            match t.reserve(&format!("x{i}"), ip(i), i64::from(i / 1250)) {
                Ok(_) => {}
                Err(r) => {
                    assert_eq!(r.limit, Limit::Crowded);
                    assert_eq!(r.until, 100, "the oldest window (at 0) ends");
                    crowded += 1;
                }
            }
        }
        let (tracked, sweeps) = t.tracked();
        assert!(tracked <= 3 * cap, "{tracked} keys");
        assert!(crowded > 40_000, "{crowded}");
        assert!(sweeps < 40, "{sweeps} sweeps for 50,000 attempts");
        // The pair counted before the flood still holds.
        assert_eq!(
            t.reserve("yamada", home, 50).map(|_| ()),
            Err(Refusal {
                limit: Limit::LoginFromAddress,
                until: 100
            })
        );
        // Known addresses keep working; so do new ones once the window
        // of the flood's first attempts has ended.
        assert!(t.reserve("x1", ip(1), 60).is_ok());
        assert!(t.reserve("suzuki", ip(999_999), 120).is_ok());
        assert!(t.reserve_code("suzuki", ip(999_999), 120).is_ok());
        let (after, _) = t.tracked();
        assert!(after <= 3 * cap);
    }
}

#[cfg(test)]
mod code_tests {
    use super::*;

    #[test]
    fn codes_are_limited_per_account_across_addresses() {
        let t = LoginThrottle::new(ThrottleConfig {
            totp_per_login: 3,
            window_seconds: 100,
            ..ThrottleConfig::default()
        });
        let ips: Vec<IpAddr> = (1..=4)
            .map(|i| format!("192.0.2.{i}").parse().unwrap())
            .collect();
        for ip in &ips[..3] {
            assert!(t.reserve("yamada", *ip, 0).is_ok(), "the password step");
            assert!(t.reserve_code("yamada", *ip, 1).is_ok());
        }
        assert_eq!(
            t.reserve_code("yamada", ips[3], 2),
            Err(Refusal {
                limit: Limit::Codes,
                until: 101
            })
        );
        assert!(t.reserve_code("suzuki", ips[3], 2).is_ok());
        assert!(t.reserve_code("yamada", ips[3], 101).is_ok(), "window ends");
        t.succeeded("yamada", ips[3]);
        for _ in 0..3 {
            assert!(t.reserve_code("yamada", ips[0], 102).is_ok());
        }
    }
}

#[cfg(test)]
mod gate_tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_runs_permits_queues_some_and_refuses_the_rest() {
        let g = Arc::new(HashGate::new(1, 1, Duration::from_millis(50)));
        let first = g.enter().await.unwrap();
        let g2 = g.clone();
        let queued = tokio::spawn(async move { g2.enter().await.map(drop) });
        tokio::task::yield_now().await;
        while g.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(g.enter().await.is_err(), "the queue is full");
        assert_eq!(queued.await.unwrap().unwrap_err().retry_after, 1);
        assert_eq!(g.refused(), 2);
        drop(first);
        assert!(g.enter().await.is_ok());
        assert_eq!(g.peak(), 1);
    }
}
