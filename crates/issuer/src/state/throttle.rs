//! Login throttling: failed logins (wrong password or wrong TOTP code) are
//! counted per login id and per client address in a fixed window; past the
//! limit, that login id or address is refused until the window ends, even
//! with the right password. A success clears the login id's count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Limits of [`LoginThrottle`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed attempts per login id within the window.
    pub per_login: u32,
    /// Failed attempts per client address within the window.
    pub per_address: u32,
    /// Window length, seconds.
    pub window_seconds: i64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            per_login: 5,
            per_address: 20,
            window_seconds: 15 * 60,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    failures: u32,
}

/// Failed-login counters, in memory (one process).
#[derive(Debug)]
pub struct LoginThrottle {
    config: ThrottleConfig,
    logins: Mutex<HashMap<String, Window>>,
    addresses: Mutex<HashMap<IpAddr, Window>>,
}

fn over<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Window>>,
    key: &K,
    limit: u32,
    window: i64,
    now: i64,
) -> bool {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key)
        .is_some_and(|w| now - w.start < window && w.failures >= limit)
}

fn bump<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Window>>, key: K, window: i64, now: i64) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() > 100_000 {
        map.retain(|_, w| now - w.start < window);
    }
    let w = map.entry(key).or_insert(Window {
        start: now,
        failures: 0,
    });
    if now - w.start >= window {
        *w = Window {
            start: now,
            failures: 0,
        };
    }
    w.failures += 1;
}

impl LoginThrottle {
    /// Counters with these limits.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            logins: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a login attempt for `login` from `ip` is refused now.
    pub fn blocked(&self, login: &str, ip: IpAddr, now: i64) -> bool {
        let w = self.config.window_seconds;
        over(
            &self.logins,
            &login.to_owned(),
            self.config.per_login,
            w,
            now,
        ) || over(&self.addresses, &ip, self.config.per_address, w, now)
    }

    /// Counts a failed attempt.
    pub fn failed(&self, login: &str, ip: IpAddr, now: i64) {
        let w = self.config.window_seconds;
        bump(&self.logins, login.to_owned(), w, now);
        bump(&self.addresses, ip, w, now);
    }

    /// Clears the count of a login id after a success.
    pub fn succeeded(&self, login: &str) {
        self.logins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(login);
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
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        t.failed("yamada", a, 0);
        assert!(!t.blocked("yamada", a, 1));
        t.failed("yamada", b, 1);
        assert!(
            t.blocked("yamada", a, 2),
            "per login id, whatever the address"
        );
        assert!(!t.blocked("suzuki", a, 2));
        t.failed("suzuki", a, 2);
        t.failed("tanaka", a, 3);
        assert!(t.blocked("kato", a, 4), "per address, whatever the login");
        assert!(!t.blocked("kato", b, 4));
        assert!(!t.blocked("yamada", b, 101), "the window ends");
        t.succeeded("suzuki");
        assert!(!t.blocked("suzuki", b, 5));
    }
}
