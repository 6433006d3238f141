//! The phone's own keys: one Temporary Exposure Key per UTC day, and what
//! the phone broadcasts at any moment (RPI and AEM).

use en_protocol::time::{EnIntervalNumber, TEK_ROLLING_PERIOD};
use en_protocol::{Aem, BluetoothMetadata, Rpi, Tek};
use serde::Serialize;

/// One of the phone's Temporary Exposure Keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyKey {
    /// The key (secret until published).
    pub tek: Tek,
    /// First interval of validity (UTC midnight for the phone's keys).
    pub rolling_start: EnIntervalNumber,
    /// Intervals of validity (144: a whole day).
    pub rolling_period: u32,
}

impl DailyKey {
    /// A key for the whole UTC day holding `interval`.
    pub fn for_day(tek: Tek, interval: EnIntervalNumber) -> Self {
        Self {
            tek,
            rolling_start: interval.day_start(),
            rolling_period: TEK_ROLLING_PERIOD,
        }
    }

    /// Whether the key is the one valid at `interval`.
    pub fn covers(&self, interval: EnIntervalNumber) -> bool {
        interval >= self.rolling_start
            && u64::from(interval.get())
                < u64::from(self.rolling_start.get()) + u64::from(self.rolling_period)
    }

    /// What the phone broadcasts during `interval` with this key.
    pub fn advertisement(&self, interval: EnIntervalNumber, tx_power: i8) -> Beacon {
        let (rpik, aemk) = self.tek.rpik_and_aemk();
        let rpi = rpik.rpi(interval);
        let aem = aemk.encrypt(&rpi, BluetoothMetadata::v1(tx_power));
        Beacon { rpi, aem, interval }
    }
}

/// One advertisement: the Rolling Proximity Identifier and the Associated
/// Encrypted Metadata (version 1.0 and the phone's TX power) of an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beacon {
    /// RPI.
    pub rpi: Rpi,
    /// AEM.
    pub aem: Aem,
    /// The interval it belongs to.
    pub interval: EnIntervalNumber,
}

/// [`Beacon`] as the CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BeaconJson {
    /// RPI, 32 hex digits.
    pub rpi: String,
    /// AEM, 8 hex digits.
    pub aem: String,
    /// ENIntervalNumber.
    pub interval: u32,
}

impl From<Beacon> for BeaconJson {
    fn from(b: Beacon) -> Self {
        Self {
            rpi: hex::encode(b.rpi.as_bytes()),
            aem: hex::encode(b.aem.as_bytes()),
            interval: b.interval.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_decrypts_to_v1_metadata() {
        let k = DailyKey::for_day(Tek::from_bytes([5; 16]), EnIntervalNumber::new(2_650_100));
        assert_eq!(k.rolling_start.get(), 2_650_032);
        assert!(k.covers(EnIntervalNumber::new(2_650_032 + 143)));
        assert!(!k.covers(EnIntervalNumber::new(2_650_032 + 144)));
        let b = k.advertisement(EnIntervalNumber::new(2_650_100), -8);
        let meta = k.tek.aemk().decrypt(&b.rpi, &b.aem);
        assert_eq!(meta, BluetoothMetadata::v1(-8));
        assert_eq!(b.rpi, k.tek.rpik().rpi(EnIntervalNumber::new(2_650_100)));
        let j = BeaconJson::from(b);
        assert_eq!((j.rpi.len(), j.aem.len(), j.interval), (32, 8, 2_650_100));
    }
}
