//! The phone's older scoring, on `en_protocol::scoring::ScoringConfig`, kept only for
//! crates/simulator until it moves to COCOA's formats (engineer "radio", issue 14). The
//! phone itself decides with [`crate::risk`]. Delete this module together with
//! `en_protocol::scoring` once the simulator no longer calls it.

use chrono::{DateTime, NaiveDate, Utc};
use en_protocol::export::ExposureKey;
use en_protocol::matcher::{KeyMatch, MatchedSighting, SightingIndex};
use en_protocol::scoring::{
    ExposureWindow, Infectiousness, ScoringConfig, daily_summaries, exposure_windows,
    is_contact_day,
};

use crate::check::key_id;

/// One matched key in the older shape: its id, report type and exposure windows.
#[derive(Debug, Clone, PartialEq)]
pub struct OlderKeyExposure {
    /// [`key_id`] of the key.
    pub key_id: Vec<u8>,
    /// Its report type (export wire value; 0 when absent).
    pub report_type: i32,
    /// Its exposure windows (at least one).
    pub windows: Vec<ExposureWindow>,
}

/// [`crate::check::key_exposure`] in the older shape.
pub fn exposure_of(
    index: &SightingIndex,
    key: &ExposureKey,
    m: &KeyMatch,
) -> Option<OlderKeyExposure> {
    let matched = index.decrypt_hits(&key.key_data, m);
    let report_type = key.report_type.map_or(0, |r| r.0);
    let windows = japan_day_windows(matched, report_type);
    (!windows.is_empty()).then(|| OlderKeyExposure {
        key_id: key_id(key),
        report_type,
        windows,
    })
}

/// [`crate::risk::japan_day_windows`] in the older shape.
pub fn japan_day_windows(
    mut matched: Vec<MatchedSighting>,
    report_type: i32,
) -> Vec<ExposureWindow> {
    matched.sort_by_key(|m| m.sighting.at);
    let day_of = |m: &MatchedSighting| {
        DateTime::<Utc>::from_timestamp(m.sighting.at, 0).map(en_protocol::time::japan_date)
    };
    matched
        .chunk_by(|a, b| day_of(a) == day_of(b))
        .flat_map(|day| {
            let date = day_of(&day[0]);
            let mut windows = exposure_windows(day, report_type, Infectiousness::Standard);
            if let Some(date) = date {
                for w in &mut windows {
                    w.date = date;
                }
            }
            windows
        })
        .collect()
}

/// [`crate::risk::RiskConfiguration::contact_days`] in the older shape.
pub fn contact_days<'a>(
    windows: impl IntoIterator<Item = &'a ExposureWindow>,
    oldest: NaiveDate,
    config: &ScoringConfig,
) -> Vec<NaiveDate> {
    let recent: Vec<ExposureWindow> = windows
        .into_iter()
        .filter(|w| w.date >= oldest)
        .cloned()
        .collect();
    daily_summaries(&recent, config)
        .iter()
        .filter(|d| is_contact_day(d, config))
        .map(|d| d.date)
        .collect()
}
