//! Public statistics of the key server (`GET /api/stats`): positive
//! registrations and published keys, in the style of the ministry's page
//! ("陽性者登録の累計件数は12月15日17時時点で4,388件").

use serde::{Deserialize, Serialize};

/// `GET /api/stats`.
///
/// Figures are published only once the cumulative number of registrations
/// reaches `threshold`, so that no single person can be singled out; until
/// then `total_registrations` and `total_keys` are `None` and `days` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsResponse {
    /// When the figures were computed (RFC 3339, JST), truncated to the hour.
    #[serde(rename = "asOf")]
    pub as_of: String,
    /// The k-anonymity threshold in force.
    pub threshold: u64,
    /// Cumulative positive registrations (publishes with at least one key).
    #[serde(rename = "totalRegistrations")]
    pub total_registrations: Option<u64>,
    /// Cumulative keys published.
    #[serde(rename = "totalKeys")]
    pub total_keys: Option<u64>,
    /// One entry per day (JST) with registrations, oldest first, starting at
    /// the first day whose cumulative count reaches the threshold.
    pub days: Vec<StatsDay>,
}

/// The figures of one day (JST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsDay {
    /// `YYYY-MM-DD`, Japan time.
    pub date: String,
    /// Registrations that day.
    pub registrations: u64,
    /// Keys published that day.
    pub keys: u64,
    /// Registrations up to and including that day.
    #[serde(rename = "cumulativeRegistrations")]
    pub cumulative_registrations: u64,
    /// Keys up to and including that day.
    #[serde(rename = "cumulativeKeys")]
    pub cumulative_keys: u64,
}
