//! Serde types of every cocoa-rs HTTP request and response, with their stable error codes. No I/O.

pub mod cases;
pub mod centres;
pub mod error;
pub mod number;
pub mod publish;
pub mod stats;
pub mod verify;
