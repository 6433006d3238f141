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
//!
//! Three steps of the device exist only inside its SQLite-backed `Phone`
//! (private functions of `device::check` and `device::phone`); opening
//! 100,000 SQLite files is not an option, so they are mirrored here, thinly,
//! line for line, until the device exposes them (requested from the device
//! engineer; swap these for the device's functions when they land):
//!
//! - [`check_file`] ↔ `device::check::process_file` (zip, signature,
//!   region; then the keys are streamed into the matcher);
//! - [`windows_of`] ↔ the per-match part of `process_file` (decrypt the
//!   AEMs, cut exposure windows, report type from the file);
//! - [`contact_days`] ↔ `Phone::contact_days` (daily summaries of every
//!   window within 14 days, COCOA's day rule);
//! - [`sighting`] ↔ `Phone::check_sighting` (RSSI and duration bounds).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use en_protocol::export::{
    ExposureKey, TekSignatureList, VerificationKey, export_keys, read_header, read_zip, verify,
};
use en_protocol::matcher::{KeyMatch, Sighting, SightingIndex};
use en_protocol::scoring::{
    ExposureWindow, Infectiousness, ScoringConfig, daily_summaries, exposure_windows,
    is_contact_day,
};
use en_protocol::time::EnIntervalNumber;
use en_protocol::{Aem, Rpi, Tek};

use crate::rng::{Purpose, crypto_rng};

pub use device::check::FileKey;
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

/// A sighting as `Phone::check_sighting` accepts it: RSSI within
/// −127..=20 dBm, 1 to 3,600 seconds.
pub fn sighting(rpi: Rpi, aem: Aem, rssi: i64, at: i64, seconds: i64) -> Sighting {
    Sighting {
        rpi,
        aem,
        rssi: rssi.clamp(-127, 20) as i8,
        at,
        seconds: seconds.clamp(1, 3600) as u32,
    }
}

/// Checks one export zip as the device does before trusting it: a zip with
/// both entries, at least one signature, a signature that verifies with a
/// configured key, the configured region. The `export.bin` on success, the
/// reason for refusing it otherwise.
pub fn check_file(
    zip: &[u8],
    verification_keys: &[VerificationKey],
    region: &str,
) -> Result<Vec<u8>, String> {
    let archive = read_zip(zip).map_err(|e| format!("not an export file: {e}"))?;
    let signatures =
        TekSignatureList::decode(&archive.export_sig).map_err(|e| format!("export.sig: {e}"))?;
    if signatures.signatures.is_empty() {
        return Err("unsigned".into());
    }
    if verify(&archive.export_bin, &signatures, verification_keys).is_none() {
        return Err("signature does not verify with the configured public key".into());
    }
    let header = read_header(&archive.export_bin).map_err(|e| format!("export.bin: {e}"))?;
    if !region.is_empty() && header.region != region {
        return Err(format!("region {:?} is not {region:?}", header.region));
    }
    Ok(archive.export_bin)
}

/// The keys of a checked `export.bin`, streamed as the device streams them.
pub fn file_keys(export_bin: &[u8]) -> Result<Vec<ExposureKey>, String> {
    export_keys(export_bin)
        .map(|k| k.map_err(|e| format!("export.bin: {e}")))
        .collect()
}

/// The exposure windows of one matched key: its sightings' metadata
/// decrypted, cut into windows of at most 30 minutes, with the key's report
/// type (0 when the file has none) and standard infectiousness.
pub fn windows_of(index: &SightingIndex, key: &ExposureKey, m: &KeyMatch) -> Vec<ExposureWindow> {
    let matched = index.decrypt_hits(&key.key_data, m);
    let report_type = key.report_type.map_or(0, |r| r.0);
    exposure_windows(&matched, report_type, Infectiousness::Standard)
}

/// The days with a contact at `now`: every window of the last 14 days,
/// summed per UTC day, kept when COCOA's day rule holds.
pub fn contact_days<'a>(
    windows: impl IntoIterator<Item = &'a ExposureWindow>,
    config: &ScoringConfig,
    now: DateTime<Utc>,
) -> Vec<NaiveDate> {
    let oldest = (now - Duration::days(RETENTION_DAYS)).date_naive();
    let kept: Vec<ExposureWindow> = windows
        .into_iter()
        .filter(|w| w.date >= oldest)
        .cloned()
        .collect();
    daily_summaries(&kept, config)
        .iter()
        .filter(|d| is_contact_day(d, config))
        .map(|d| d.date)
        .collect()
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
