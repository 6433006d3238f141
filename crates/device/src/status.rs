//! [`Status`]: the phone at a glance, gathered from every part of the app.
//!
//! It lives apart from [`crate::phone`] so that the modules depend on each
//! other in one direction only: [`crate::phone`] is the core (set-up, keys,
//! beacons, sightings, retention) and uses nothing of the registration or
//! the check; [`crate::register`], [`crate::check`], [`crate::meet`] and this
//! module build on it (`impl Phone` blocks in their own files).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::check::{CheckFailure, FailedFile};
use crate::error::Result;
use crate::phone::Phone;
use crate::register::RegistrationSummary;
use crate::served::ConfigurationState;

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The phone's folder.
    pub home: String,
    /// The phone's clock.
    pub now: DateTime<Utc>,
    /// When the app was set up.
    pub installed_at: DateTime<Utc>,
    /// Prefecture code.
    pub prefecture: Option<String>,
    /// TX power, dBm.
    pub tx_power: i8,
    /// Keys held (at most 15: today and 14 days back).
    pub keys: usize,
    /// First day of the oldest key held (UTC).
    pub oldest_key_day: Option<String>,
    /// Sightings held.
    pub sightings: usize,
    /// Export files processed.
    pub files_processed: usize,
    /// The last registration.
    pub registration: Option<RegistrationSummary>,
    /// When the last successful exposure check ran.
    pub last_checked: Option<DateTime<Utc>>,
    /// The last check, when it failed (exposure checking does not work).
    pub last_check_failure: Option<CheckFailure>,
    /// Export files that failed and are tried again at later checks.
    pub failed_files: Vec<FailedFile>,
    /// The configuration days are scored with: the served version applied, or the built-in
    /// values (what the last check refused is in its record).
    pub configuration: ConfigurationState,
    /// Contact days found (within 14 days).
    pub contacts: usize,
    /// Their dates, `YYYY-MM-DD` (Japan's calendar dates).
    pub dates: Vec<String>,
    /// The same dates as dates: Japan's calendar dates of the sightings
    /// (what a person is shown; a contact at 01:53 JST on 12月1日 is 12月1日);
    /// not serialized (`dates` holds them).
    #[serde(skip)]
    pub contact_dates: Vec<chrono::NaiveDate>,
}

impl Phone {
    /// The phone at a glance.
    pub fn status(&self) -> Result<Status> {
        let keys = self.store.keys()?;
        let notification = self.notification()?;
        Ok(Status {
            home: self.home.display().to_string(),
            now: self.now(),
            installed_at: DateTime::from_timestamp(self.installed_at, 0).unwrap_or_default(),
            prefecture: self.settings.prefecture.clone(),
            tx_power: self.settings.tx_power,
            keys: keys.len(),
            oldest_key_day: keys
                .first()
                .map(|k| k.rolling_start.to_datetime().date_naive().to_string()),
            sightings: self.store.sighting_count()?,
            files_processed: self.store.file_count()?,
            registration: self.registration_summary()?,
            last_checked: notification.last_checked,
            last_check_failure: self.last_check_failure()?,
            failed_files: self.failed_files()?,
            configuration: self.configuration_state()?,
            contacts: notification.contacts,
            dates: notification.dates,
            contact_dates: notification.contact_dates,
        })
    }
}

#[cfg(test)]
mod tests {
    /// The modules depend on each other in one direction: `phone` (the core)
    /// names neither the registration, the check, the meeting nor the
    /// status it is summed up in, and calls none of their `impl Phone`
    /// methods; they build on it.
    #[test]
    fn the_phone_core_uses_nothing_that_builds_on_it() {
        let phone = include_str!("phone.rs");
        let code: String = phone
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for name in [
            "crate::register",
            "crate::check",
            "crate::meet",
            "crate::status",
            "registration_summary(",
            "notification(",
            "last_check_failure(",
            "failed_files(",
            ".register(",
            ".check(",
        ] {
            assert!(!code.contains(name), "phone.rs uses {name}");
        }
        // The store is below the phone: no file of it names the phone.
        for (file, src) in [
            ("store.rs", include_str!("store.rs")),
            ("store/erase.rs", include_str!("store/erase.rs")),
        ] {
            let code: String = src
                .lines()
                .take_while(|l| !l.starts_with("#[cfg(test)]"))
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(!code.contains("crate::phone"), "{file} uses the phone");
        }
        // And the modules that build on it do use it.
        for (file, src) in [
            ("register.rs", include_str!("register.rs")),
            ("check.rs", include_str!("check.rs")),
            ("meet.rs", include_str!("meet.rs")),
            ("status.rs", include_str!("status.rs")),
        ] {
            assert!(src.contains("use crate::phone::"), "{file}");
        }
    }
}
