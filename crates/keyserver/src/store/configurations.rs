//! Published phone configurations (migration 0004): append-only versions of COCOA's two
//! documents, who published each and the simulation report it came with.

use sqlx::Row;

use super::{Store, StoreError};

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationRow {
    /// 1, 2, … in publication order.
    pub version: i64,
    /// `configuration.json` exactly as published.
    pub configuration_json: String,
    /// `risk_calculation_configuration.json` exactly as published.
    pub risk_calculation_json: String,
    /// Unix seconds.
    pub published_at: i64,
    /// Who published it (`--published-by`).
    pub published_by: String,
    /// The simulation report it came with, if any.
    pub simulation_report: Option<String>,
}

fn row(r: &sqlx::any::AnyRow) -> Result<ConfigurationRow, sqlx::Error> {
    Ok(ConfigurationRow {
        version: r.try_get("version")?,
        configuration_json: r.try_get("configuration_json")?,
        risk_calculation_json: r.try_get("risk_calculation_json")?,
        published_at: r.try_get("published_at")?,
        published_by: r.try_get("published_by")?,
        simulation_report: r.try_get("simulation_report")?,
    })
}

const COLUMNS: &str = "version, configuration_json, risk_calculation_json, published_at, published_by, simulation_report";

impl Store {
    /// Adds a version after the latest (never replacing one: two publishers at once get two
    /// versions, or one fails on the primary key and publishes nothing). Returns it.
    pub async fn publish_configuration(
        &self,
        configuration_json: &str,
        risk_calculation_json: &str,
        published_at: i64,
        published_by: &str,
        simulation_report: Option<&str>,
    ) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "INSERT INTO exposure_configurations \
             (version, configuration_json, risk_calculation_json, published_at, published_by, simulation_report) \
             SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5 FROM exposure_configurations \
             RETURNING version",
        )
        .bind(configuration_json)
        .bind(risk_calculation_json)
        .bind(published_at)
        .bind(published_by)
        .bind(simulation_report)
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get("version")?)
    }

    /// Every published version, oldest first.
    pub async fn configurations(&self) -> Result<Vec<ConfigurationRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM exposure_configurations ORDER BY version"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// The latest published version, if any.
    pub async fn latest_configuration(&self) -> Result<Option<ConfigurationRow>, StoreError> {
        let r = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM exposure_configurations ORDER BY version DESC LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }
}
