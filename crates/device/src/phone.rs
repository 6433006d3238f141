//! [`Phone`]: one phone's state and the operations of the app on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use en_protocol::matcher::Sighting;
use en_protocol::time::{Clock, EnIntervalNumber, TEK_ROLLING_PERIOD};
use en_protocol::{Aem, Rpi, Tek};
use rand_core::CryptoRngCore;

use crate::error::{Error, Result};
use crate::keys::{Beacon, DailyKey};
use crate::settings::Settings;
use crate::store::Store;
use crate::window::LOOKBACK_DAYS;

/// Days the phone keeps its keys, its sightings and what checks found.
pub const RETENTION_DAYS: i64 = LOOKBACK_DAYS;
/// The range of RSSI Bluetooth reports, dBm.
pub const RSSI_RANGE: std::ops::RangeInclusive<i64> = -127..=20;
/// The range of seconds one sighting may stand for.
pub const SECONDS_RANGE: std::ops::RangeInclusive<i64> = 1..=3600;

const SETTINGS: &str = "settings";
const INSTALLED_AT: &str = "installed_at";

/// The randomness a phone draws keys, HMAC keys and padding from.
pub type Rng = Box<dyn CryptoRngCore + Send>;

/// One phone: its keys, what it heard, its registration and what its checks
/// found, in one folder. Time comes from the injected clock and randomness
/// from the injected CSPRNG, so a story of several days runs in seconds and
/// tests are deterministic.
pub struct Phone {
    pub(crate) home: PathBuf,
    pub(crate) store: Store,
    pub(crate) settings: Settings,
    pub(crate) installed_at: i64,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Rng,
    pub(crate) http: reqwest::Client,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("home", &self.home)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Parses an RPI given as 32 hex digits.
pub fn parse_rpi(input: &str) -> Result<Rpi> {
    hex::decode(input.trim())
        .ok()
        .and_then(|b| Rpi::try_from_slice(&b).ok())
        .ok_or_else(|| Error::RpiMalformed {
            input: input.to_owned(),
        })
}

/// Parses an AEM given as 8 hex digits.
pub fn parse_aem(input: &str) -> Result<Aem> {
    hex::decode(input.trim())
        .ok()
        .and_then(|b| Aem::try_from_slice(&b).ok())
        .ok_or_else(|| Error::AemMalformed {
            input: input.to_owned(),
        })
}

/// Checks a transmit power.
pub fn check_tx_power(tx_power: i64) -> Result<i8> {
    if RSSI_RANGE.contains(&tx_power) {
        Ok(tx_power as i8)
    } else {
        Err(Error::TxPowerOutOfRange { tx_power })
    }
}

/// Checks the RSSI (−127..=20 dBm) and the seconds (1..=3600) of a sighting.
pub fn check_sighting_values(rssi: i64, seconds: i64) -> Result<()> {
    if !RSSI_RANGE.contains(&rssi) {
        return Err(Error::RssiOutOfRange { rssi });
    }
    if !SECONDS_RANGE.contains(&seconds) {
        return Err(Error::SecondsOutOfRange { seconds });
    }
    Ok(())
}

/// A sighting as given by a person or a scanner, before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SightingInput {
    /// RPI heard.
    pub rpi: Rpi,
    /// AEM heard.
    pub aem: Aem,
    /// RSSI, dBm.
    pub rssi: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Seconds it stands for.
    pub seconds: i64,
}

impl Phone {
    /// Sets up a new phone in `home` (created when missing). Refused when
    /// `home` already holds one. Generates today's key.
    pub fn init(
        home: &Path,
        mut settings: Settings,
        clock: Arc<dyn Clock>,
        rng: Rng,
    ) -> Result<Self> {
        settings.validate()?;
        if home.join(crate::store::DB_FILE).exists() {
            return Err(Error::AlreadyInitialised {
                home: home.display().to_string(),
            });
        }
        let store = Store::open(home, true)?;
        let now = clock.now().timestamp();
        store.set(SETTINGS, &settings)?;
        store.set(INSTALLED_AT, &now)?;
        let mut phone = Self {
            home: home.to_owned(),
            store,
            settings,
            installed_at: now,
            clock,
            rng,
            http: crate::net::client()?,
        };
        phone.key_for(phone.now())?;
        Ok(phone)
    }

    /// Opens the phone in `home`, deletes what is older than 14 days, and
    /// makes today's key if the phone has none yet (a running phone always
    /// has the key of the day).
    pub fn open(home: &Path, clock: Arc<dyn Clock>, rng: Rng) -> Result<Self> {
        let store = Store::open(home, false)?;
        let settings: Settings = store
            .get(SETTINGS)?
            .ok_or_else(|| Error::Corrupt("no settings".into()))?;
        // The two scoring documents are checked on every load, not only when saved.
        settings.validate_scoring()?;
        let installed_at: i64 = store
            .get(INSTALLED_AT)?
            .ok_or_else(|| Error::Corrupt("no installation time".into()))?;
        let mut phone = Self {
            home: home.to_owned(),
            store,
            settings,
            installed_at,
            clock,
            rng,
            http: crate::net::client()?,
        };
        phone.purge_if_due()?;
        match phone.key_for(phone.now()) {
            Ok(_) | Err(Error::TimeOutOfRange { .. }) => Ok(phone),
            Err(e) => Err(e),
        }
    }

    /// The phone's current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The phone's folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Changes the settings (checked first).
    pub fn update_settings(&mut self, mut settings: Settings) -> Result<()> {
        settings.validate()?;
        self.store.set(SETTINGS, &settings)?;
        self.settings = settings;
        Ok(())
    }

    /// Direct access to the storage (tests, benchmarks).
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// 「すべてのデータを削除」: deletes everything this phone recorded
    /// ([`Store::erase_records`]) and starts again as a phone installed now,
    /// with a new key for today. The settings stay.
    pub fn erase_all_data(&mut self) -> Result<()> {
        self.store.erase_records()?;
        let now = self.now().timestamp();
        self.store.set("installed_at", &now)?;
        self.installed_at = now;
        self.key_for(self.now())?;
        Ok(())
    }

    /// [`Phone::purge`] at most once per hour of the phone's clock per folder
    /// in this process: a page load opens the phone, and a delete on every
    /// open waited for the write lock of a running check (home p99 29–47 ms
    /// in `cocoa bench check --ui`). Nothing outlives 14 days by more than an hour.
    fn purge_if_due(&self) -> Result<()> {
        use std::collections::HashMap;
        use std::sync::{Mutex, OnceLock};
        static LAST: OnceLock<Mutex<HashMap<PathBuf, i64>>> = OnceLock::new();
        let hour = self.now().timestamp().div_euclid(3600);
        let last = LAST.get_or_init(Default::default);
        let due = last
            .lock()
            .map(|m| m.get(&self.home) != Some(&hour))
            .unwrap_or(true);
        if due {
            self.purge()?;
            if let Ok(mut m) = last.lock() {
                m.insert(self.home.clone(), hour);
            }
        }
        Ok(())
    }

    /// Deletes keys, sightings and exposures older than 14 days. Runs at
    /// [`Phone::open`], at most once an hour ([`Phone::purge_if_due`]).
    pub fn purge(&self) -> Result<()> {
        let now = self.now();
        if let Ok(i) = EnIntervalNumber::from_datetime(now) {
            self.store.delete_keys_before(
                i.day_start()
                    .saturating_sub(RETENTION_DAYS as u32 * TEK_ROLLING_PERIOD),
            )?;
        }
        let cutoff = now - Duration::days(RETENTION_DAYS);
        self.store.delete_sightings_before(cutoff.timestamp())?;
        self.store.delete_exposures_before(
            &cutoff.date_naive().to_string(),
            (cutoff - Duration::days(1)).timestamp(),
        )?;
        Ok(())
    }

    /// Checks that `at` is a moment this phone lived: not before the UTC day
    /// it was set up, not more than 14 days ago, not after now.
    fn check_moment(&self, at: DateTime<Utc>) -> Result<EnIntervalNumber> {
        let out = |reason| Error::TimeOutOfRange {
            at: at.to_rfc3339(),
            reason,
        };
        let interval = EnIntervalNumber::from_datetime(at).map_err(|_| out("out of range"))?;
        let installed_day = EnIntervalNumber::from_unix_seconds(self.installed_at)
            .map_err(|_| out("out of range"))?
            .day_start();
        let now = self.now();
        if interval < installed_day {
            return Err(out("before setup"));
        }
        if at > now {
            return Err(out("in the future"));
        }
        if at < now - Duration::days(RETENTION_DAYS) {
            return Err(out("older than 14 days"));
        }
        Ok(interval)
    }

    /// The key of the UTC day holding `at`, generated from the CSPRNG the
    /// first time it is needed.
    pub fn key_for(&mut self, at: DateTime<Utc>) -> Result<DailyKey> {
        let interval = self.check_moment(at)?;
        let start = interval.day_start();
        if let Some(k) = self.store.key_starting(start)? {
            return Ok(k);
        }
        let key = DailyKey::for_day(Tek::generate(&mut self.rng), interval);
        self.store.insert_key(&key, self.now().timestamp())?;
        Ok(key)
    }

    /// Every key held, oldest first.
    pub fn keys(&self) -> Result<Vec<DailyKey>> {
        self.store.keys()
    }

    /// What the phone broadcasts at `at`: RPI and AEM (version 1.0 and the
    /// phone's TX power).
    pub fn beacon(&mut self, at: DateTime<Utc>) -> Result<Beacon> {
        let key = self.key_for(at)?;
        let interval = self.check_moment(at)?;
        Ok(key.advertisement(interval, self.settings.tx_power))
    }

    /// Checks a sighting: its values ([`check_sighting_values`]) and its
    /// time (a moment this phone lived).
    pub fn check_sighting(&self, s: &SightingInput) -> Result<Sighting> {
        check_sighting_values(s.rssi, s.seconds)?;
        self.check_moment(s.at)?;
        Ok(Sighting {
            rpi: s.rpi,
            aem: s.aem,
            rssi: s.rssi as i8,
            at: s.at.timestamp(),
            seconds: s.seconds as u32,
        })
    }

    /// Records what the phone heard.
    pub fn record_sightings(&mut self, sightings: &[SightingInput]) -> Result<()> {
        let checked = sightings
            .iter()
            .map(|s| self.check_sighting(s))
            .collect::<Result<Vec<_>>>()?;
        self.store.insert_sightings(&checked)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;
    use en_protocol::time::FixedClock;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    pub(crate) fn t(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    pub(crate) fn new_phone(
        home: &Path,
        now: DateTime<Utc>,
        seed: u64,
    ) -> (Phone, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(now));
        let phone = Phone::init(
            home,
            Settings {
                prefecture: Some("13".into()),
                ..Settings::default()
            },
            clock.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(seed)),
        )
        .unwrap();
        (phone, clock)
    }

    #[test]
    fn one_key_per_utc_day_kept_fourteen_days() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, clock) = new_phone(dir.path(), t(2020, 12, 1, 10, 0), 1);
        let first = p.key_for(t(2020, 12, 1, 9, 59)).unwrap();
        assert_eq!(p.keys().unwrap(), vec![first.clone()]);
        assert_eq!(p.key_for(t(2020, 12, 1, 0, 0)).unwrap(), first);
        for day in 2..=20 {
            clock.set(t(2020, 12, day, 12, 0));
            p.beacon(t(2020, 12, day, 12, 0)).unwrap();
        }
        assert_eq!(p.keys().unwrap().len(), 20);
        let dir_path = p.home().to_owned();
        drop(p);
        let p = Phone::open(
            &dir_path,
            clock.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(9)),
        )
        .unwrap();
        let keys = p.keys().unwrap();
        assert_eq!(keys.len(), 15, "today and 14 days back");
        assert_eq!(keys[0].rolling_start.to_datetime(), t(2020, 12, 6, 0, 0));
        let distinct: std::collections::HashSet<_> =
            keys.iter().map(|k| *k.tek.as_bytes()).collect();
        assert_eq!(distinct.len(), 15);
    }

    #[test]
    fn keys_come_from_the_injected_rng() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let (pa, _) = new_phone(a.path(), t(2020, 12, 1, 10, 0), 7);
        let (pb, _) = new_phone(b.path(), t(2020, 12, 1, 10, 0), 7);
        let (pc, _) = new_phone(c.path(), t(2020, 12, 1, 10, 0), 8);
        // The same seed gives the same key (no other source of randomness) ...
        assert_eq!(pa.keys().unwrap(), pb.keys().unwrap());
        // ... and another seed another key (the seed is used, not ignored).
        assert_ne!(pa.keys().unwrap(), pc.keys().unwrap());
    }

    #[test]
    fn beacon_for_any_moment_of_the_phones_life() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, clock) = new_phone(dir.path(), t(2020, 12, 1, 10, 0), 2);
        clock.set(t(2020, 12, 3, 10, 0));
        let b = p.beacon(t(2020, 12, 2, 5, 7)).unwrap();
        let key = p.key_for(t(2020, 12, 2, 0, 0)).unwrap();
        assert_eq!(
            b.interval.get(),
            (t(2020, 12, 2, 5, 7).timestamp() / 600) as u32
        );
        assert_eq!(key.tek.aemk().decrypt(&b.rpi, &b.aem).tx_power, -8);
        for (at, why) in [
            (t(2020, 11, 30, 23, 0), "before setup"),
            (t(2020, 12, 3, 10, 1), "in the future"),
        ] {
            match p.beacon(at) {
                Err(Error::TimeOutOfRange { reason, .. }) => assert_eq!(reason, why),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn sightings_are_checked_and_kept_fourteen_days() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, clock) = new_phone(dir.path(), t(2020, 12, 1, 10, 0), 3);
        let good = SightingInput {
            rpi: Rpi([1; 16]),
            aem: Aem([2; 4]),
            rssi: -60,
            at: t(2020, 12, 1, 9, 0),
            seconds: 240,
        };
        p.record_sightings(&[good]).unwrap();
        for (bad, code) in [
            (SightingInput { rssi: -128, ..good }, "rssi_out_of_range"),
            (SightingInput { rssi: 21, ..good }, "rssi_out_of_range"),
            (SightingInput { seconds: 0, ..good }, "seconds_out_of_range"),
            (
                SightingInput {
                    at: t(2020, 12, 2, 0, 0),
                    ..good
                },
                "time_out_of_range",
            ),
        ] {
            let e = p.record_sightings(&[bad]).unwrap_err();
            assert_eq!(e.code(), code);
            assert!(e.is_input());
        }
        let e = p
            .record_sightings(&[SightingInput { rssi: 30, ..good }])
            .unwrap_err();
        assert!(e.text().ja.contains("−127〜20 dBm"), "{e}");
        assert_eq!(p.store.sighting_count().unwrap(), 1);
        clock.set(t(2020, 12, 15, 9, 1));
        p.purge().unwrap();
        assert_eq!(p.store.sighting_count().unwrap(), 0);
    }

    #[test]
    fn malformed_rpi_and_aem_are_refused() {
        assert!(parse_rpi(&"ab".repeat(16)).is_ok());
        for bad in ["", "zz", &"ab".repeat(15), &"ab".repeat(17)] {
            let e = parse_rpi(bad).unwrap_err();
            assert_eq!(e.code(), "rpi_malformed");
            assert!(e.text().ja.contains("16進数32桁"), "{e}");
        }
        assert!(parse_aem("40080000").is_ok());
        assert_eq!(parse_aem("400800").unwrap_err().code(), "aem_malformed");
        assert_eq!(
            check_tx_power(-200).unwrap_err().code(),
            "tx_power_out_of_range"
        );
    }

    #[test]
    fn init_refuses_an_existing_home_and_open_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let (_p, clock) = new_phone(dir.path(), t(2020, 12, 1, 10, 0), 4);
        let e = Phone::init(
            dir.path(),
            Settings::default(),
            clock.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(1)),
        )
        .unwrap_err();
        assert_eq!(e.code(), "already_initialised");
        let empty = tempfile::tempdir().unwrap();
        let e = Phone::open(
            &empty.path().join("nope"),
            clock,
            Box::new(ChaCha20Rng::seed_from_u64(1)),
        )
        .unwrap_err();
        assert_eq!(e.code(), "not_initialised");
    }
}
