//! Confirmed cases (table `cases`), as the clinic reported them (発生届), with
//! the two HER-SYS header fields only the portal edits (症状, 居所).

use sqlx::Row;

use super::{Store, StoreError, rows};
use crate::domain::model::{Case, CaseData};

/// The HER-SYS header fields kept beside a case: 症状 and 居所.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseExtra {
    /// `""` (入力なし), `yes` (有) or `no` (無).
    pub symptoms: String,
    /// 居所 (free text).
    pub residence: String,
}

impl Store {
    /// Stores a new case; returns its id.
    pub async fn insert_case(&self, c: &CaseData, now: i64) -> Result<i64, StoreError> {
        self.insert_case_of_kind(c, false, now).await
    }

    /// Stores a new case, a canary case when `canary`; returns its id.
    pub async fn insert_case_of_kind(
        &self,
        c: &CaseData,
        canary: bool,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO cases (centre_id, name_kanji, name_kana, birth_date, sex, mobile, email, \
             outpatient_facility, test_positive, classification, diagnosis_date, reported, uses_app, \
             created_at, updated_at, canary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) RETURNING id",
        );
        let row = rows::bind_case(row, c)
            .bind(now)
            .bind(i64::from(canary))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Replaces a case's data.
    pub async fn update_case(&self, id: i64, c: &CaseData, now: i64) -> Result<(), StoreError> {
        let q = sqlx::query(
            "UPDATE cases SET centre_id = $1, name_kanji = $2, name_kana = $3, birth_date = $4, sex = $5, \
             mobile = $6, email = $7, outpatient_facility = $8, test_positive = $9, classification = $10, \
             diagnosis_date = $11, reported = $12, uses_app = $13, updated_at = $14 WHERE id = $15",
        );
        rows::bind_case(q, c)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A case by id.
    pub async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM cases WHERE id = $1",
            rows::CASE_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::case(&r)).transpose()
    }

    /// Cases of a centre (every centre when `None`), newest first, optionally
    /// filtered by a substring of the name (kanji or kana) or the exact id.
    pub async fn list_cases(
        &self,
        centre_id: Option<i64>,
        search: &str,
        limit: i64,
    ) -> Result<Vec<Case>, StoreError> {
        let pattern = format!("%{}%", search.replace(['%', '_'], ""));
        let id: i64 = search.trim().parse().unwrap_or(-1);
        let rs = sqlx::query(&format!(
            "SELECT {} FROM cases WHERE ($1 = -1 OR centre_id = $1) \
             AND ($2 = '%%' OR name_kanji LIKE $2 OR name_kana LIKE $2 OR id = $3) \
             ORDER BY id DESC LIMIT $4",
            rows::CASE_COLUMNS
        ))
        .bind(centre_id.unwrap_or(-1))
        .bind(pattern)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(rows::case).collect()
    }

    /// The 症状 and 居所 of a case.
    pub async fn case_extra(&self, case_id: i64) -> Result<CaseExtra, StoreError> {
        let row = sqlx::query("SELECT symptoms, residence FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => CaseExtra {
                symptoms: r.try_get("symptoms")?,
                residence: r.try_get("residence")?,
            },
            None => CaseExtra::default(),
        })
    }

    /// Saves the 症状 and 居所 of a case.
    pub async fn set_case_extra(&self, case_id: i64, e: &CaseExtra) -> Result<(), StoreError> {
        sqlx::query("UPDATE cases SET symptoms = $1, residence = $2 WHERE id = $3")
            .bind(&e.symptoms)
            .bind(&e.residence)
            .bind(case_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
