//! 「すべてのデータを削除」: the phone forgets everything it recorded.
//!
//! The keys it broadcast, what it heard, what its checks found and its
//! registrations are deleted (and overwritten on disk: `secure_delete`, and
//! the write-ahead log is truncated); the settings (servers, prefecture,
//! language) stay, so the app goes on working as if it had just been
//! installed. A registration after this can only cover days from now on
//! (the seed's FAQ 問4: keys of days before the installation do not exist).

use crate::error::Result;

use super::Store;

/// The tables of what the phone recorded.
const RECORDS: &[&str] = &[
    "teks",
    "sightings",
    "registrations",
    "export_files",
    "exposures",
    "checks",
    "failed_files",
];

/// Values of the `settings` table that are configuration, kept by
/// [`Store::erase_records`] (`served_configuration`: the last good configuration the key
/// server served); every other value (the installation time, the
/// last failed check) is a record.
const KEPT_SETTINGS: &[&str] = &["settings", "consultation_centres", "served_configuration"];

impl Store {
    /// Deletes every record (keys, sightings, registrations, processed files,
    /// exposures, checks) in one transaction, overwriting the freed pages.
    pub fn erase_records(&mut self) -> Result<()> {
        self.conn.pragma_update(None, "secure_delete", true)?;
        let tx = self.conn.transaction()?;
        for table in RECORDS {
            tx.execute(&format!("DELETE FROM {table}"), [])?;
        }
        let kept = KEPT_SETTINGS
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(",");
        tx.execute(
            &format!("DELETE FROM settings WHERE name NOT IN ({kept})"),
            [],
        )?;
        tx.commit()?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::phone::tests::{new_phone, t};
    use crate::phone::{Phone, SightingInput};
    use en_protocol::{Aem, Rpi};

    #[test]
    fn erasing_forgets_keys_and_sightings_and_keeps_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let (mut p, clock) = new_phone(dir.path(), t(2020, 12, 1, 10, 0), 5);
        clock.set(t(2020, 12, 3, 10, 0));
        p.beacon(t(2020, 12, 2, 10, 0)).unwrap();
        p.record_sightings(&[SightingInput {
            rpi: Rpi([1; 16]),
            aem: Aem([2; 4]),
            rssi: -60,
            at: t(2020, 12, 2, 9, 0),
            seconds: 240,
        }])
        .unwrap();
        let old_keys = p.keys().unwrap();
        assert_eq!(old_keys.len(), 2, "the days of 12-01 and 12-02");
        // The last good served configuration is configuration, not a record: it stays.
        let applied = crate::served::AppliedConfiguration {
            version: 7,
            published_at: 1_606_780_800,
            configuration_json: en_protocol::exposure_configuration::COCOA_CONFIGURATION_JSON
                .into(),
            risk_calculation_configuration_json:
                en_protocol::risk_calculation::COCOA_RISK_CALCULATION_JSON.into(),
            bundle_etag: None,
            applied_at: 1_606_780_800,
        };
        p.store.set(crate::served::APPLIED_KEY, &applied).unwrap();
        p.erase_all_data().unwrap();
        assert_eq!(p.applied_configuration().unwrap(), Some(applied));
        let keys = p.keys().unwrap();
        assert_eq!(keys.len(), 1, "only today's new key");
        assert!(!old_keys.contains(&keys[0]));
        let s = p.status().unwrap();
        assert_eq!((s.sightings, s.contacts), (0, 0));
        assert_eq!(s.installed_at, t(2020, 12, 3, 10, 0));
        assert_eq!(s.prefecture.as_deref(), Some("13"));
        // Days before the erasure are days before the installation now.
        assert!(p.beacon(t(2020, 12, 2, 10, 0)).is_err());
        drop(p);
        let p = Phone::open(
            dir.path(),
            clock,
            Box::new(<rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1)),
        )
        .unwrap();
        assert_eq!(p.keys().unwrap(), keys);
    }
}
