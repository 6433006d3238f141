//! The health-centre side (HER-SYS part): confirmed cases, processing
//! numbers, delivery, the verification API and the staff portal.
//!
//! - [`domain`]: records, validation, codes and the seed's rules (pure).
//! - [`store`]: SQLite / PostgreSQL storage behind one `Any` pool.
//! - [`signing`]: certificate keys (P-256), ES256 certificates, JWKS.
//! - [`delivery`]: SMS (Twilio-compatible), e-mail (SMTP), outbox folder.
//! - [`service`]: the operations, each checking the rules and writing the audit log.
//! - [`http`]: the device API, the machine API and [`serve`].
//! - [`portal`]: the staff portal (server-rendered, Japanese and English).
#![forbid(unsafe_code)]

pub mod config;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod limits;
pub mod portal;
pub mod service;
pub mod signing;
pub mod state;
pub mod store;

pub use config::IssuerConfig;
pub use error::{Error, Result};
pub use http::{router, serve};
pub use service::Issuer;
