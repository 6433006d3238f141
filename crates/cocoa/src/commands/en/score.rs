//! `cocoa en score | daily-summaries`: COCOA's decision for one day, replayable from what a
//! phone recorded, in the Android Exposure Notification API's shapes.
//!
//! Rule (COCOA): the day is High iff every threshold of `risk_calculation_configuration.json`
//! that is not `NOP` passes (AND); all `NOP` is Low.

use std::path::Path;

use en_protocol::exposure_configuration::{
    ExposureConfiguration, ExposureWindow, daily_summary_from_json, exposure_windows_from_json,
};
use en_protocol::risk_calculation::RiskCalculationConfiguration;

use super::{DailySummariesArgs, ScoreArgs};
use crate::commands::{bad_input, print_json};

/// A stable code with the Japanese and the English message, as one line.
fn refused(code: &str, ja: &str, en: &str) -> anyhow::Error {
    bad_input(format!("{code}: {ja} / {en}"))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        refused(
            "INPUT_UNREADABLE",
            &format!("ファイル {} を読めません", path.display()),
            &format!("cannot read {}: {e}", path.display()),
        )
    })
}

fn windows(path: &Path) -> anyhow::Result<Vec<ExposureWindow>> {
    exposure_windows_from_json(&read(path)?)
        .map_err(|e| refused(e.code(), &e.message_ja(), &e.to_string()))
}

pub fn score(a: ScoreArgs) -> anyhow::Result<()> {
    let config = RiskCalculationConfiguration::from_json(&read(&a.config)?)
        .map_err(|e| refused(e.code(), &e.message_ja(), &e.to_string()))?;
    let summary = daily_summary_from_json(&read(&a.daily_summary)?)
        .map_err(|e| refused(e.code(), &e.message_ja(), &e.to_string()))?;
    let windows = windows(&a.exposure_windows)?;
    // COCOA takes the exposure windows of the summary's day (the phone decides with the same call).
    print_json(&config.decide_day(&summary, &windows))
}

pub fn daily_summaries(a: DailySummariesArgs) -> anyhow::Result<()> {
    let config = ExposureConfiguration::from_json(&read(&a.config)?)
        .map_err(|e| refused(e.code(), &e.message_ja(), &e.to_string()))?;
    let windows = windows(&a.exposure_windows)?;
    let today = match a.today {
        Some(d) => d,
        None => windows
            .iter()
            .map(ExposureWindow::days_since_epoch)
            .max()
            .unwrap_or(0),
    };
    print_json(
        &config
            .google_daily_summaries_config
            .daily_summaries(&windows, today),
    )
}
