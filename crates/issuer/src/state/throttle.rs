//! Login throttling. Every login attempt (a password or a TOTP code) is
//! counted per login id and per client address in a fixed window, and it is
//! counted *before* the password is hashed: [`LoginThrottle::reserve`]
//! checks and takes the slot under one lock, so a burst of simultaneous
//! attempts cannot all pass the check before the first failure is written
//! (issue 12, finding 4: "Count the attempt before hashing"). Past the
//! limit, that login id or address is refused until the window ends, even
//! with the right password. A success gives the slot back.
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
    /// Attempts per login id within the window.
    pub per_login: u32,
    /// Attempts per client address within the window.
    pub per_address: u32,
    /// Window length, seconds.
    pub window_seconds: i64,
    /// Password checks that may wait for a free core (beyond the ones
    /// hashing); more are refused with 503.
    pub hash_queue: usize,
    /// How long a password check waits for a free core before it is
    /// refused with 503, milliseconds.
    pub hash_wait_ms: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            per_login: 5,
            per_address: 20,
            window_seconds: 15 * 60,
            hash_queue: 16,
            hash_wait_ms: 3_000,
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

#[derive(Debug, Default)]
struct Counters {
    logins: HashMap<String, Window>,
    addresses: HashMap<IpAddr, Window>,
}

/// Why an attempt is refused, and until when (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The attempt may be made again from this time on.
    pub until: i64,
}

/// Login attempt counters, in memory (one process), and the hash gate.
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    counters: Mutex<Counters>,
    hashes: HashGate,
}

/// The window of `key` at `now` (a new one when it ended).
fn window<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Window>,
    key: K,
    window: i64,
    now: i64,
) -> &mut Window {
    if map.len() > 100_000 {
        map.retain(|_, w| w.live(window, now));
    }
    let w = map.entry(key).or_insert(Window {
        start: now,
        attempts: 0,
    });
    if !w.live(window, now) {
        *w = Window {
            start: now,
            attempts: 0,
        };
    }
    w
}

fn give_back<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Window>, key: &K) {
    if let Some(w) = map.get_mut(key) {
        w.attempts = w.attempts.saturating_sub(1);
    }
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
    /// one lock, before any password is hashed — or refuses it while the
    /// login id or the address has used its attempts of the window.
    pub fn reserve(&self, login: &str, ip: IpAddr, now: i64) -> Result<(), Refusal> {
        let win = self.config.window_seconds;
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let l = *window(&mut c.logins, login.to_owned(), win, now);
        let a = *window(&mut c.addresses, ip, win, now);
        let mut until = None;
        if l.attempts >= self.config.per_login {
            until = Some(l.start + win);
        }
        if a.attempts >= self.config.per_address {
            until = until.max(Some(a.start + win));
        }
        if let Some(until) = until {
            return Err(Refusal { until });
        }
        window(&mut c.logins, login.to_owned(), win, now).attempts += 1;
        window(&mut c.addresses, ip, win, now).attempts += 1;
        Ok(())
    }

    /// Gives back an attempt that was reserved but not checked (the server
    /// was too busy to hash it).
    pub fn release(&self, login: &str, ip: IpAddr) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        give_back(&mut c.logins, &login.to_owned());
        give_back(&mut c.addresses, &ip);
    }

    /// After a success: clears the login id's count and gives the address
    /// its attempt back (only failures count against an address).
    pub fn succeeded(&self, login: &str, ip: IpAddr) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.logins.remove(login);
        give_back(&mut c.addresses, &ip);
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
    fn login_and_address_limits_apply_separately() {
        let t = LoginThrottle::new(ThrottleConfig {
            per_login: 2,
            per_address: 3,
            window_seconds: 100,
            ..ThrottleConfig::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.reserve("yamada", a, 0).is_ok());
        assert!(t.reserve("yamada", b, 1).is_ok());
        assert_eq!(
            t.reserve("yamada", a, 2),
            Err(Refusal { until: 100 }),
            "per login id, whatever the address"
        );
        assert!(t.reserve("suzuki", a, 2).is_ok());
        assert!(t.reserve("tanaka", a, 3).is_ok());
        assert_eq!(
            t.reserve("kato", a, 4),
            Err(Refusal { until: 100 }),
            "per address, whatever the login"
        );
        assert!(t.reserve("kato", b, 4).is_ok());
        assert!(t.reserve("yamada", b, 101).is_ok(), "the window ends");
        t.release("kato", b);
        t.succeeded("suzuki", a);
        assert!(t.reserve("suzuki", b, 5).is_ok());
        assert!(t.reserve("tanaka", a, 5).is_ok(), "a success gives back");
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
