//! The phone app's core: daily keys, sightings, positive registration,
//! exposure check and notification — a library a mobile shell can wrap.
//!
//! A [`Phone`] lives in one folder (its SQLite database) and takes its time
//! from an injected [`en_protocol::time::Clock`] and its randomness from an
//! injected CSPRNG. It talks to the issuer and the key server only over
//! HTTP ([`reqwest`]), never through their crates.
//!
//! | module | holds |
//! |---|---|
//! | [`phone`] | [`Phone`]: set-up, keys, beacons, sightings, retention (the core: uses no other module below) |
//! | [`keys`] | one TEK per UTC day and what it broadcasts |
//! | [`number`] | the processing number as typed, and the app link |
//! | [`window`] | the key window of a registration ([`window::registration_keys`]) |
//! | [`register`] | verify → certificate → publish, resumable |
//! | [`check`] | index, download, signature, match, notification |
//! | [`risk`] | the decision: COCOA's configuration.json + risk_calculation_configuration.json |
//! | [`served`] | the configuration the key server serves: fetched, verified, applied whole or kept |
//! | [`meet`] | two phones near each other (path-loss model) |
//! | [`prefecture`] | prefectures and consultation centres |
//! | [`status`] | [`Status`]: the phone at a glance (keys, registration, checks) |
//! | [`settings`] | server URLs, keys, the two scoring documents |
//! | [`store`] | the SQLite file |
//! | [`text`] | the screen's wording and the messages, Japanese and English |
#![forbid(unsafe_code)]

pub mod check;
pub mod error;
pub mod keys;
pub mod meet;
pub mod net;
pub mod number;
pub mod phone;
pub mod prefecture;
pub mod register;
pub mod risk;
pub mod served;
pub mod settings;
pub mod status;
pub mod store;
pub mod text;
pub mod window;

pub use check::{CheckFailure, CheckRecord, CheckReport, FailedFile, Notification};
pub use error::{Error, Result};
pub use keys::{Beacon, BeaconJson, DailyKey};
pub use meet::{MeetReport, meet};
pub use number::{Code, normalise_number, parse_app_link, parse_link_code};
pub use phone::{Phone, Rng, SightingInput};
pub use register::{RegistrationInput, RegistrationOutcome, Stage};
pub use served::{ConfigurationRefusal, ConfigurationSource, ConfigurationState};
pub use settings::Settings;
pub use status::Status;
pub use text::{Lang, Text};
pub use window::{KeySelection, KeyWindow, registration_keys};
