//! Health centres (table `centres`): one row per centre with its settings.

use sqlx::Row;

use super::{Store, StoreError, rows};
use crate::domain::model::Centre;

impl Store {
    /// Creates a centre with default settings; returns its id.
    pub async fn create_centre(
        &self,
        name: &str,
        prefecture: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO centres (name, prefecture, validity_seconds, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(prefecture)
        .bind(crate::domain::model::DEFAULT_VALIDITY_SECONDS)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Saves a centre's settings.
    pub async fn update_centre(&self, c: &Centre) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE centres SET name = $1, prefecture = $2, consultation_phone = $3, consultation_url = $4, \
             validity_seconds = $5, auto_issue = $6, allow_clinical = $7, consultation_name = $9, \
             consultation_hours = $10, delivery_fallback = $11, reminder_after_hours = $12 \
             WHERE id = $8",
        )
        .bind(&c.name)
        .bind(&c.prefecture)
        .bind(&c.consultation_phone)
        .bind(&c.consultation_url)
        .bind(c.validity_seconds)
        .bind(i64::from(c.auto_issue))
        .bind(i64::from(c.allow_clinical))
        .bind(c.id)
        .bind(&c.consultation_name)
        .bind(&c.consultation_hours)
        .bind(i64::from(c.delivery_fallback))
        .bind(c.reminder_after_hours.map(i64::from))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A centre by id.
    pub async fn centre(&self, id: i64) -> Result<Option<Centre>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM centres WHERE id = $1",
            rows::CENTRE_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::centre(&r)).transpose()
    }

    /// Every centre.
    pub async fn centres(&self) -> Result<Vec<Centre>, StoreError> {
        let rs = sqlx::query(&format!(
            "SELECT {} FROM centres ORDER BY id",
            rows::CENTRE_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(rows::centre).collect()
    }
}
