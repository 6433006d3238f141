//! The Exposure Notification protocol, pure and synchronous.
//!
//! This crate is the part of cocoa-rs every other part trusts: the Apple/Google
//! Exposure Notification cryptography (TEK, RPIK, RPI, AEMK, AEM), interval
//! time, the key export file (encode, decode, sign, verify), the matcher that
//! finds diagnosis keys in a phone's sighting log, ENv2 daily summaries
//! (`exposure_configuration`) and COCOA's risk decision (`risk_calculation`).
//!
//! It does no I/O: time comes from an injected [`time::Clock`] and randomness
//! from an injected RNG, so every function is deterministic under test.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod export;
pub mod exposure_configuration;
pub mod keys;
pub mod matcher;
pub mod risk_calculation;
pub mod served_configuration;
pub mod time;

pub use keys::{Aem, Aemk, BluetoothMetadata, Rpi, Rpik, Tek};
pub use time::{Clock, EnIntervalNumber, TEK_ROLLING_PERIOD};
