//! Phone models: what each advertises as its TX power, and how far its real
//! radio is from that calibration.
//!
//! The Exposure Notification metadata carries the sender's calibrated TX
//! power; the receiver computes `attenuation = TX power − RSSI`. Both numbers
//! come from per-model calibration tables measured against a reference
//! phone, so two phones of the same model cancel each other's error, while a
//! pair of different models keeps the difference of their residuals:
//!
//! ```text
//! radiated power = advertised TX + tx_error_db
//! reported RSSI  = received power + rx_error_db
//! estimated attenuation = path loss − tx_error_db(sender) − rx_error_db(receiver)
//! ```
//!
//! Every model has `tx_error_db + rx_error_db = 0` (its own pairs are
//! exact); across models the error is `tx_error(sender) + rx_error(receiver)`,
//! e.g. +8 dB (reads 8 dB closer) from the strong iPhone-like sender to the
//! optimistic budget receiver and −8 dB the other way round.

use serde::{Deserialize, Serialize};

/// One phone model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneModel {
    /// Short name used in reports.
    pub name: String,
    /// Share of app users with this model (normalised over all models).
    pub share: f64,
    /// TX power written in the metadata (the calibration value), dBm.
    pub advertised_tx_dbm: i8,
    /// How much stronger than advertised the radio really transmits, dB.
    pub tx_error_db: f64,
    /// How much higher than the received power the phone reports RSSI, dB.
    pub rx_error_db: f64,
    /// Weakest RSSI the phone reports, dBm; quieter packets are not heard.
    pub sensitivity_dbm: f64,
    /// Probability that a scan hears nothing of a phone in range (the OS
    /// skipped or shortened the scan, the advertisement collided).
    pub scan_miss: f64,
}

/// The models of the default population: an iPhone-like majority (Japan's
/// market) and three Android families of different radios.
pub fn default_models() -> Vec<PhoneModel> {
    vec![
        PhoneModel {
            name: "iphone".into(),
            share: 0.55,
            advertised_tx_dbm: -8,
            tx_error_db: 2.0,
            rx_error_db: -2.0,
            sensitivity_dbm: -100.0,
            scan_miss: 0.05,
        },
        PhoneModel {
            name: "pixel".into(),
            share: 0.15,
            advertised_tx_dbm: -8,
            tx_error_db: -1.0,
            rx_error_db: 1.0,
            sensitivity_dbm: -100.0,
            scan_miss: 0.02,
        },
        PhoneModel {
            name: "galaxy".into(),
            share: 0.15,
            advertised_tx_dbm: -10,
            tx_error_db: 4.0,
            rx_error_db: -4.0,
            sensitivity_dbm: -98.0,
            scan_miss: 0.03,
        },
        PhoneModel {
            name: "budget".into(),
            share: 0.15,
            advertised_tx_dbm: -12,
            tx_error_db: -6.0,
            rx_error_db: 6.0,
            sensitivity_dbm: -92.0,
            scan_miss: 0.10,
        },
    ]
}

/// The calibration error of a sender → receiver pair, dB: how much lower the
/// receiver's estimated attenuation is than the true path loss.
pub fn pair_error_db(sender: &PhoneModel, receiver: &PhoneModel) -> f64 {
    sender.tx_error_db + receiver.rx_error_db
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_model_pairs_are_exact_and_cross_pairs_are_not() {
        let m = default_models();
        for a in &m {
            assert_eq!(pair_error_db(a, a), 0.0, "{}", a.name);
        }
        let (iphone, budget) = (&m[0], &m[3]);
        assert_eq!(pair_error_db(iphone, budget), 8.0);
        assert_eq!(pair_error_db(budget, iphone), -8.0);
        let total: f64 = m.iter().map(|x| x.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
    }
}
