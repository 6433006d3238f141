//! The key rules of the reference key server (PROTOCOLS.md §3), pure
//! functions of the uploaded keys and the time.
//!
//! Some rules drop one key and keep the others (the answer then carries the
//! code `partial_failure` and a warning per dropped key); others reject the
//! whole upload. When every key is dropped the upload is rejected with the
//! first dropped key's code.

use std::collections::{HashMap, HashSet};

use api_types::publish::{PublishKey, codes};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use en_protocol::time::{EN_INTERVAL_SECONDS, TEK_ROLLING_PERIOD};

/// "At most 30 keys per publish": 15 days of keys, doubled for devices that
/// upload the current day's key again once it has ended.
pub const MAX_KEYS_PER_PUBLISH: usize = 30;

/// "At most 3 keys may share a start": a device that stops today's key early
/// starts a new one with the same `rollingStartNumber`.
pub const MAX_SAME_START: usize = 3;

/// "A key must have been valid at some point in the last 15 days."
pub const MAX_KEY_AGE_INTERVALS: u32 = 15 * TEK_ROLLING_PERIOD;

/// Largest transmission risk level a client may send (it is ignored anyway).
pub const MAX_TRANSMISSION_RISK: i32 = 8;

/// One hour, the unit stored upload times are truncated to.
pub const HOUR_SECONDS: i64 = 3600;

/// A key that passed every rule.
#[derive(Clone, PartialEq, Eq)]
pub struct ValidKey {
    /// The TEK.
    pub key_data: [u8; 16],
    /// First interval.
    pub rolling_start: u32,
    /// Number of intervals, 1..=144.
    pub rolling_period: u32,
}

impl std::fmt::Debug for ValidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material never reaches a log.
        f.debug_struct("ValidKey")
            .field("rolling_start", &self.rolling_start)
            .field("rolling_period", &self.rolling_period)
            .finish_non_exhaustive()
    }
}

impl ValidKey {
    /// The interval after the key's last one.
    pub fn end_interval(&self) -> u64 {
        u64::from(self.rolling_start) + u64::from(self.rolling_period)
    }
}

/// A key dropped from an upload, with the stable code of the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Position of the key in the request.
    pub index: usize,
    /// Stable code ([`codes`]).
    pub code: &'static str,
}

impl Dropped {
    /// The warning sent back to the client (never the key itself).
    pub fn warning(&self) -> String {
        format!("key {} dropped: {}", self.index, self.code)
    }
}

/// Why a whole upload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejection {
    /// No keys at all.
    #[error("no keys in the request")]
    NoKeys,
    /// Over [`MAX_KEYS_PER_PUBLISH`].
    #[error("{count} keys, at most {max} allowed")]
    TooManyKeys {
        /// Keys sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Over [`MAX_SAME_START`] keys share a start.
    #[error("more than {max} keys share one rollingStartNumber")]
    TooManySameStart {
        /// The limit.
        max: usize,
    },
    /// Every key was dropped; the code of the first.
    #[error("no valid key: {code}")]
    AllDropped {
        /// Code of the first dropped key.
        code: &'static str,
        /// Every dropped key.
        dropped: Vec<Dropped>,
    },
}

impl KeyRejection {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoKeys => codes::NO_KEYS,
            Self::TooManyKeys { .. } => codes::TOO_MANY_KEYS,
            Self::TooManySameStart { .. } => codes::TOO_MANY_KEYS_SAME_START,
            Self::AllDropped { code, .. } => code,
        }
    }
}

/// Limits of [`validate_keys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// Most keys per upload.
    pub max_keys: usize,
    /// Most keys sharing a start.
    pub max_same_start: usize,
}

impl Default for KeyLimits {
    fn default() -> Self {
        Self {
            max_keys: MAX_KEYS_PER_PUBLISH,
            max_same_start: MAX_SAME_START,
        }
    }
}

/// "Key exactly 16 bytes": the standard base64 of 16 bytes.
pub fn decode_key(b64: &str) -> Option<[u8; 16]> {
    STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
}

/// "Rolling period 1..144."
pub fn rolling_period_ok(period: u32) -> bool {
    (1..=TEK_ROLLING_PERIOD).contains(&period)
}

/// "A key must have been valid at some point in the last 15 days": its end
/// (start + period) is after the interval 15 days before now.
pub fn recent_enough(start: u32, period: u32, now_interval: u32) -> bool {
    u64::from(start) + u64::from(period)
        > u64::from(now_interval.saturating_sub(MAX_KEY_AGE_INTERVALS))
}

/// "A key must not start in the future."
pub fn not_in_future(start: u32, now_interval: u32) -> bool {
    start <= now_interval
}

/// Applies every rule to an upload at `now_interval`: the valid keys and the
/// dropped ones, or the rejection of the whole upload.
pub fn validate_keys(
    keys: &[PublishKey],
    now_interval: u32,
    limits: KeyLimits,
) -> Result<(Vec<ValidKey>, Vec<Dropped>), KeyRejection> {
    if keys.is_empty() {
        return Err(KeyRejection::NoKeys);
    }
    if keys.len() > limits.max_keys {
        return Err(KeyRejection::TooManyKeys {
            count: keys.len(),
            max: limits.max_keys,
        });
    }
    let mut valid = Vec::with_capacity(keys.len());
    let mut dropped = Vec::new();
    let mut seen = HashSet::with_capacity(keys.len());
    for (index, k) in keys.iter().enumerate() {
        let problem = match decode_key(&k.key) {
            None => Some(codes::KEY_INVALID_LENGTH),
            Some(_) if !rolling_period_ok(k.rolling_period) => {
                Some(codes::KEY_INVALID_ROLLING_PERIOD)
            }
            Some(_) if !(0..=MAX_TRANSMISSION_RISK).contains(&k.transmission_risk.unwrap_or(0)) => {
                Some(codes::KEY_INVALID_TRANSMISSION_RISK)
            }
            Some(_) if !not_in_future(k.rolling_start_number, now_interval) => {
                Some(codes::KEY_IN_FUTURE)
            }
            Some(_) if !recent_enough(k.rolling_start_number, k.rolling_period, now_interval) => {
                Some(codes::KEY_TOO_OLD)
            }
            Some(bytes) if !seen.insert(bytes) => Some(codes::KEY_DUPLICATE),
            Some(bytes) => {
                valid.push(ValidKey {
                    key_data: bytes,
                    rolling_start: k.rolling_start_number,
                    rolling_period: k.rolling_period,
                });
                None
            }
        };
        if let Some(code) = problem {
            dropped.push(Dropped { index, code });
        }
    }
    if valid.is_empty() {
        let code = dropped.first().map_or(codes::NO_KEYS, |d| d.code);
        return Err(KeyRejection::AllDropped { code, dropped });
    }
    let mut per_start: HashMap<u32, usize> = HashMap::new();
    for k in &valid {
        let n = per_start.entry(k.rolling_start).or_default();
        *n += 1;
        if *n > limits.max_same_start {
            return Err(KeyRejection::TooManySameStart {
                max: limits.max_same_start,
            });
        }
    }
    Ok((valid, dropped))
}

/// "Stored upload times are truncated to the hour."
pub fn truncate_to_hour(unix_seconds: i64) -> i64 {
    unix_seconds - unix_seconds.rem_euclid(HOUR_SECONDS)
}

/// When a key may be exported: "a key still valid at upload is accepted but
/// held back (embargoed) until its period has ended". The end of the key's
/// period, rounded up to the hour, or the (truncated) upload hour when the
/// key has already ended.
pub fn available_at(key: &ValidKey, upload_hour: i64) -> i64 {
    let end = key.end_interval() as i64 * EN_INTERVAL_SECONDS;
    let end_hour = end + (HOUR_SECONDS - end.rem_euclid(HOUR_SECONDS)) % HOUR_SECONDS;
    end_hour.max(upload_hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u32 = 2_680_000 + 72; // noon of a UTC day

    fn k(byte: u8, start: u32, period: u32) -> PublishKey {
        PublishKey {
            key: STANDARD.encode([byte; 16]),
            rolling_start_number: start,
            rolling_period: period,
            transmission_risk: None,
        }
    }

    fn day(n: i64) -> u32 {
        let today = NOW - NOW % 144;
        (i64::from(today) + n * 144) as u32
    }

    #[test]
    fn counts_are_whole_upload_rules() {
        assert_eq!(
            validate_keys(&[], NOW, KeyLimits::default()),
            Err(KeyRejection::NoKeys)
        );
        let many: Vec<_> = (0..31)
            .map(|i| k(i, day(-(i64::from(i) % 14) - 1), 144))
            .collect();
        assert_eq!(
            validate_keys(&many, NOW, KeyLimits::default())
                .unwrap_err()
                .code(),
            codes::TOO_MANY_KEYS
        );
        let same: Vec<_> = (0..4).map(|i| k(i, day(-1), 144)).collect();
        assert_eq!(
            validate_keys(&same, NOW, KeyLimits::default())
                .unwrap_err()
                .code(),
            codes::TOO_MANY_KEYS_SAME_START
        );
        assert!(validate_keys(&same[..3], NOW, KeyLimits::default()).is_ok());
    }

    #[test]
    fn bad_keys_are_dropped_one_by_one() {
        let mut short = k(1, day(-1), 144);
        short.key = STANDARD.encode([1u8; 15]);
        let keys = [
            short,
            k(2, day(-1), 0),
            k(3, day(-1), 145),
            k(4, day(-16), 144),
            k(5, day(1), 144),
            k(6, day(-15), 144),
            k(6, day(-2), 144),
            k(7, day(0), 144),
        ];
        let (valid, dropped) = validate_keys(&keys, NOW, KeyLimits::default()).unwrap();
        let codes: Vec<_> = dropped.iter().map(|d| (d.index, d.code)).collect();
        assert_eq!(
            codes,
            [
                (0, codes::KEY_INVALID_LENGTH),
                (1, codes::KEY_INVALID_ROLLING_PERIOD),
                (2, codes::KEY_INVALID_ROLLING_PERIOD),
                (3, codes::KEY_TOO_OLD),
                (4, codes::KEY_IN_FUTURE),
                (6, codes::KEY_DUPLICATE),
            ]
        );
        assert_eq!(valid.len(), 2, "15 days old and today's key are fine");
        assert!(!format!("{:?}", valid[0]).contains("[6, 6"));
    }

    #[test]
    fn an_upload_of_only_bad_keys_is_rejected_with_the_first_code() {
        let err = validate_keys(&[k(1, day(-16), 144)], NOW, KeyLimits::default()).unwrap_err();
        assert_eq!(err.code(), codes::KEY_TOO_OLD);
        let err = validate_keys(&[k(1, day(1), 144)], NOW, KeyLimits::default()).unwrap_err();
        assert_eq!(err.code(), codes::KEY_IN_FUTURE);
    }

    #[test]
    fn embargo_holds_still_valid_keys_until_their_end() {
        let upload = i64::from(NOW) * 600 + 123;
        let hour = truncate_to_hour(upload);
        assert_eq!(hour % 3600, 0);
        assert!(hour <= upload && upload - hour < 3600);
        let today = ValidKey {
            key_data: [0; 16],
            rolling_start: day(0),
            rolling_period: 144,
        };
        assert_eq!(available_at(&today, hour), i64::from(day(1)) * 600);
        let yesterday = ValidKey {
            rolling_start: day(-1),
            ..today.clone()
        };
        assert_eq!(available_at(&yesterday, hour), hour);
        // A key ending at 12:10 becomes available at 13:00.
        let partial = ValidKey {
            rolling_start: day(0),
            rolling_period: 73,
            ..today
        };
        let end = i64::from(day(0) + 73) * 600;
        assert_eq!(available_at(&partial, 0), end + 3000);
    }
}
