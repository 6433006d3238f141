//! THE ONE PLACE WHERE THE SIMULATOR ADAPTS THE `device` CRATE.
//!
//! Every app user runs the device's rules. Where the device offers them as
//! pure in-memory functions they are called directly from here:
//!
//! | rule | device function |
//! |---|---|
//! | one TEK per UTC day, valid 144 intervals from 00:00 UTC | `device::keys::DailyKey::for_day` |
//! | what a phone broadcasts | `DailyKey::advertisement` (the radio derives the same values once per day; a test checks they agree) |
//! | the registration key window (seed, ver. 1.2.1) | `device::window::registration_keys` |
//! | a key as the publish API carries it | `device::register::publish_key` |
//! | the processing number as typed | `device::normalise_number` |
//! | the retention of keys, sightings and findings | `device::phone::RETENTION_DAYS` |
//! | the path-loss model | `device::meet::attenuation_db` (in [`crate::radio`]) |
//! | taking an export zip apart and checking it | `device::check::verify_file` |
//! | the exposure windows of a matched key | `device::check::key_exposure` (the report type of a key without one: [`when_missing`]) |
//! | COCOA's day rule over the windows | `en_protocol` `daily_summaries` → `DayValues` → `decide` ([`crate::scoring`], as `cocoa en score`) |
//! | RSSI and duration bounds of a sighting | `device::phone::{RSSI_RANGE, SECONDS_RANGE}` |
//!
//! Nothing of the device is re-implemented here: the functions below only
//! adapt the device's signatures to the simulator's data (a phone per
//! array slot instead of a SQLite file per phone).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use device::phone::{RSSI_RANGE, SECONDS_RANGE};
use en_protocol::export::{ExposureKey, VerificationKey, export_keys};
use en_protocol::exposure_configuration::{ExposureWindow, ReportType};
use en_protocol::matcher::{KeyMatch, Sighting, SightingIndex};
use en_protocol::time::EnIntervalNumber;
use en_protocol::{Aem, Rpi, Tek};

use crate::rng::{Purpose, crypto_rng};
use crate::scoring::Scoring;

pub use device::keys::DailyKey;
pub use device::phone::RETENTION_DAYS;

/// Phone `phone`'s key of UTC day `day` (Unix days): 16 bytes from the
/// phone's own CSPRNG (seeded per phone and day so that runs repeat), valid
/// the whole UTC day, as `Phone::key_for` makes it.
pub fn daily_key(seed: u64, phone: u32, day: i64) -> DailyKey {
    let mut rng = crypto_rng(seed, Purpose::Tek, &[u64::from(phone), day as u64]);
    let interval = EnIntervalNumber::new((day.max(0) as u32).saturating_mul(144));
    DailyKey::for_day(Tek::generate(&mut rng), interval)
}

/// The keys a phone installed on UTC day `first_day` holds on UTC day
/// `today`, oldest first, within the device's retention (today and 14 days
/// back).
pub fn keys_held(seed: u64, phone: u32, first_day: i64, today: i64) -> Vec<DailyKey> {
    let oldest = first_day.max(today - RETENTION_DAYS);
    (oldest..=today)
        .map(|d| daily_key(seed, phone, d))
        .collect()
}

/// A sighting within the bounds `Phone::check_sighting` accepts (RSSI in
/// [`RSSI_RANGE`], duration in [`SECONDS_RANGE`]): the simulated radio
/// clamps where a phone's scanner would report its limit.
pub fn sighting(rpi: Rpi, aem: Aem, rssi: i64, at: i64, seconds: i64) -> Sighting {
    Sighting {
        rpi,
        aem,
        rssi: rssi.clamp(*RSSI_RANGE.start(), *RSSI_RANGE.end()) as i8,
        at,
        seconds: seconds.clamp(*SECONDS_RANGE.start(), *SECONDS_RANGE.end()) as u32,
    }
}

/// Checks one export zip as the device does before trusting it
/// (`device::check::verify_file`): the `export.bin` on success, the reason
/// for refusing it otherwise.
pub fn check_file(
    zip: &[u8],
    verification_keys: &[VerificationKey],
    region: &str,
) -> Result<Vec<u8>, String> {
    device::check::verify_file(zip, verification_keys, region).map(|a| a.export_bin)
}

/// The keys of a checked `export.bin`, streamed as the device streams them.
pub fn file_keys(export_bin: &[u8]) -> Result<Vec<ExposureKey>, String> {
    export_keys(export_bin)
        .map(|k| k.map_err(|e| format!("export.bin: {e}")))
        .collect()
}

/// The exposure windows of one matched key, as the phone keeps them
/// (`device::check::key_exposure`): its sightings' metadata decrypted and cut
/// into windows dated by Japan's calendar, with the key's report type.
pub fn windows_of(index: &SightingIndex, key: &ExposureKey, m: &KeyMatch) -> Vec<ExposureWindow> {
    device::check::key_exposure(index, key, m).map_or_else(Vec::new, |e| {
        let report_type = when_missing(e.report_type);
        e.windows
            .into_iter()
            .map(|mut w| {
                w.report_type = report_type;
                w
            })
            .collect()
    })
}

/// The report type a phone scores a key's windows with: the key's own; for a
/// key without one, COCOA's `report_type_when_missing` (1, ConfirmedTest),
/// as the phone does (`device::risk::RiskConfiguration::window_report_type`
/// under COCOA's configuration).
pub fn when_missing(wire: i32) -> ReportType {
    match ReportType::try_from(wire) {
        Ok(ReportType::Unknown) => ReportType::ConfirmedTest,
        Ok(r) => r,
        Err(_) => ReportType::Unknown,
    }
}

/// The days with a contact at `now`, over the phone's 14-day retention
/// (Japan's calendar), by COCOA's rule on COCOA's formats ([`Scoring::contact_days`]).
pub fn contact_days(
    windows: &[ExposureWindow],
    config: &Scoring,
    now: DateTime<Utc>,
) -> Vec<NaiveDate> {
    let oldest = en_protocol::time::japan_date(now - Duration::days(RETENTION_DAYS));
    config.contact_days(windows, oldest, en_protocol::time::japan_date(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_phone_and_day_and_start_at_utc_midnight() {
        let k = daily_key(1, 2, 18_600);
        assert_eq!(k.rolling_start.get(), 18_600 * 144);
        assert_eq!(k.rolling_period, 144);
        assert_eq!(k, daily_key(1, 2, 18_600));
        assert_ne!(k.tek, daily_key(1, 3, 18_600).tek);
        assert_ne!(k.tek, daily_key(1, 2, 18_601).tek);
        assert_ne!(k.tek, daily_key(2, 2, 18_600).tek);
        let held = keys_held(1, 2, 18_590, 18_610);
        assert_eq!(held.len(), 15);
        assert_eq!(held[0].rolling_start.get(), 18_596 * 144);
    }

    #[test]
    fn sightings_are_bounded_like_the_devices() {
        let s = sighting(Rpi([0; 16]), Aem([0; 4]), -200, 5, 0);
        assert_eq!((s.rssi, s.seconds), (-127, 1));
    }
}
