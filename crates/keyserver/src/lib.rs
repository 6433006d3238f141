//! The notification server (通知サーバー): publish, key validation, signed
//! exports, indexes, retention, public statistics. It holds no personal data
//! and never stores or logs an IP address or key material.
//!
//! - [`validate`]: the key rules of the reference server, pure.
//! - [`trust`]: trusted issuers and the ES256 certificate check.
//! - [`store`]: SQLite / PostgreSQL storage behind one `Any` pool.
//! - [`publish`]: `POST /v1/publish` as an operation (certificate, HMAC,
//!   validation, embargo, idempotent storage).
//! - [`export`]: batches, padding, signed zips, indexes, leases, retention.
//! - [`storage`]: where export files go (`object_store`: local or S3).
//! - [`stats`]: public statistics and their page.
//! - [`http`]: the router and [`serve`].
//! - `testkit` (feature `testkit`): a local certificate issuer and publish
//!   requests, for tests, benchmarks and demos; with feature `moto`, moto's S3
//!   server for the object-store tests. Not in the production library.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod export;
pub mod http;
pub mod publish;
pub mod signing;
pub mod stats;
pub mod storage;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod trust;
pub mod validate;

pub use config::KeyserverConfig;
pub use error::{Error, Result};
pub use http::{router, serve};
pub use publish::Keyserver;
