//! CSV imports waiting for their confirmation (table `case_imports`), and
//! the case system's IDs of imported cases (`cases.external_id`).

use sqlx::Row;

use super::{Store, StoreError, rows};
use crate::domain::model::CaseData;

/// A stored import: who may see and confirm it, its rows until the
/// confirmation, then its result.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// The uploading staff member.
    pub staff_id: i64,
    /// Hash of the uploading session's id.
    pub session_hash: String,
    /// The centre the cases go to.
    pub centre_id: i64,
    /// The encoding the file was read in (`utf-8`, `utf-8-bom`, `shift_jis`).
    pub encoding: String,
    /// The parsed rows (JSON); empty once consumed.
    pub rows_json: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// After this, the import can no longer be confirmed (unix seconds).
    pub expires_at: i64,
    /// When it was confirmed.
    pub consumed_at: Option<i64>,
    /// The result of the confirmation (JSON), once done.
    pub result_json: Option<String>,
}

impl std::fmt::Debug for ImportRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The rows hold personal data: never in a log line.
        f.debug_struct("ImportRow")
            .field("staff_id", &self.staff_id)
            .field("centre_id", &self.centre_id)
            .field("encoding", &self.encoding)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("consumed_at", &self.consumed_at)
            .finish_non_exhaustive()
    }
}

/// How long a consumed import's result stays readable, seconds.
pub const IMPORT_RESULT_SECONDS: i64 = 24 * 3600;

impl Store {
    /// Stores an uploaded import. Expired imports are swept on the way:
    /// unconfirmed ones at their expiry, results a day later.
    pub async fn insert_import(&self, id_hash: &str, r: &ImportRow) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM case_imports WHERE (consumed_at IS NULL AND expires_at <= $1) OR consumed_at <= $2")
            .bind(r.created_at)
            .bind(r.created_at - IMPORT_RESULT_SECONDS)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO case_imports (id_hash, staff_id, session_hash, centre_id, encoding, rows_json, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id_hash)
        .bind(r.staff_id)
        .bind(&r.session_hash)
        .bind(r.centre_id)
        .bind(&r.encoding)
        .bind(&r.rows_json)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An import by the hash of its id.
    pub async fn import(&self, id_hash: &str) -> Result<Option<ImportRow>, StoreError> {
        let row = sqlx::query(
            "SELECT staff_id, session_hash, centre_id, encoding, rows_json, created_at, expires_at, \
             consumed_at, result_json FROM case_imports WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ImportRow {
                staff_id: r.try_get("staff_id")?,
                session_hash: r.try_get("session_hash")?,
                centre_id: r.try_get("centre_id")?,
                encoding: r.try_get("encoding")?,
                rows_json: r.try_get("rows_json")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                consumed_at: r.try_get("consumed_at")?,
                result_json: r.try_get("result_json")?,
            })
        })
        .transpose()
    }

    /// Consumes an unexpired, unconsumed import of `staff_id`'s session
    /// `session_hash`, atomically: of two confirmations at once, exactly
    /// one gets `true`.
    pub async fn consume_import(
        &self,
        id_hash: &str,
        staff_id: i64,
        session_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE case_imports SET consumed_at = $1 WHERE id_hash = $2 AND staff_id = $3 \
             AND session_hash = $4 AND consumed_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(id_hash)
        .bind(staff_id)
        .bind(session_hash)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the result of a consumed import and drops its rows.
    pub async fn finish_import(&self, id_hash: &str, result_json: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE case_imports SET result_json = $1, rows_json = '' WHERE id_hash = $2")
            .bind(result_json)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Which of `ids` (case system IDs) are already cases of `centre_id`.
    pub async fn existing_external_ids(
        &self,
        centre_id: i64,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT external_id FROM cases WHERE centre_id = $1 AND external_id IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(centre_id);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(&self.pool).await? {
                found.push(r.try_get("external_id")?);
            }
        }
        Ok(found)
    }

    /// Stores a new case with the case system's ID; `Ok(None)` when that
    /// ID is already a case of the centre (nothing stored).
    pub async fn insert_case_with_external_id(
        &self,
        c: &CaseData,
        external_id: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let q = sqlx::query(
            "INSERT INTO cases (centre_id, name_kanji, name_kana, birth_date, sex, mobile, email, \
             outpatient_facility, test_positive, classification, diagnosis_date, reported, uses_app, \
             created_at, updated_at, canary, external_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, 0, $15) RETURNING id",
        );
        let _turn = self.write_turn().await;
        match rows::bind_case(q, c)
            .bind(now)
            .bind(external_id)
            .fetch_one(&self.pool)
            .await
        {
            Ok(row) => Ok(Some(row.try_get("id")?)),
            Err(e) if store_support::unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
