//! The exporter's queries: batches and their leases, fake keys, export file
//! records, retention.

use sqlx::Row;

use super::{Store, StoreError, unique_violation};

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    /// Id.
    pub id: i64,
    /// Region.
    pub region: String,
    /// Window start, unix seconds.
    pub start_timestamp: i64,
    /// Window end, unix seconds.
    pub end_timestamp: i64,
    /// `pending` or `done`.
    pub status: String,
}

/// A key of a batch (real or fake), as the export file needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The TEK.
    pub key_data: [u8; 16],
    /// First interval.
    pub rolling_start: i64,
    /// Intervals.
    pub rolling_period: i64,
    /// Transmission risk.
    pub transmission_risk: i64,
    /// Report type.
    pub report_type: i64,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("rolling_start", &self.rolling_start)
            .finish_non_exhaustive()
    }
}

/// An export file to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Object path, e.g. `440/1608076800-1608080400-00001.zip`.
    pub path: String,
    /// File number within the batch, from 1.
    pub file_num: i64,
    /// Keys in it (fakes included).
    pub key_count: i64,
}

/// An export file as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// Batch.
    pub batch_id: i64,
    /// Region.
    pub region: String,
    /// Object path.
    pub path: String,
    /// End of its batch window.
    pub batch_end: i64,
    /// Number within the batch.
    pub file_num: i64,
    /// Keys in it.
    pub key_count: i64,
    /// When it was written, unix milliseconds.
    pub created_at_ms: i64,
}

/// What retention deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Keys deleted.
    pub keys: u64,
    /// Object paths of the export files whose records were deleted.
    pub files: Vec<String>,
    /// Batches deleted.
    pub batches: u64,
}

fn key_row(r: &sqlx::any::AnyRow) -> Result<KeyRow, StoreError> {
    let data: Vec<u8> = r.try_get(0)?;
    let key_data = <[u8; 16]>::try_from(data.as_slice())
        .map_err(|_| StoreError::Db(sqlx::Error::Decode("key_data is not 16 bytes".into())))?;
    Ok(KeyRow {
        key_data,
        rolling_start: r.try_get(1)?,
        rolling_period: r.try_get(2)?,
        transmission_risk: r.try_get(3)?,
        report_type: r.try_get(4)?,
    })
}

fn batch_row(r: &sqlx::any::AnyRow) -> Result<BatchRow, StoreError> {
    Ok(BatchRow {
        id: r.try_get("id")?,
        region: r.try_get("region")?,
        start_timestamp: r.try_get("start_timestamp")?,
        end_timestamp: r.try_get("end_timestamp")?,
        status: r.try_get("status")?,
    })
}

const BATCH_COLUMNS: &str = "id, region, start_timestamp, end_timestamp, status";

impl Store {
    /// End of the region's latest batch window.
    pub async fn last_batch_end(&self, region: &str) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query("SELECT MAX(end_timestamp) AS e FROM export_batches WHERE region = $1")
            .bind(region)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get::<Option<i64>, _>("e")?)
    }

    /// The earliest `available_at` of keys in no batch yet.
    pub async fn earliest_unbatched(&self) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query("SELECT MIN(available_at) AS a FROM exposures WHERE batch_id IS NULL")
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get::<Option<i64>, _>("a")?)
    }

    /// Cuts the window `[start, end)`: creates its batch and puts into it
    /// every key in no batch that is available before `end`. `None` when
    /// another exporter cut this window first.
    pub async fn cut_batch(
        &self,
        region: &str,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        let created = sqlx::query(
            "INSERT INTO export_batches (region, start_timestamp, end_timestamp, status, created_at) \
             VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT (region, start_timestamp) DO NOTHING \
             RETURNING id",
        )
        .bind(region)
        .bind(start)
        .bind(end)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await;
        let id: i64 = match created {
            Ok(Some(r)) => r.try_get("id")?,
            Ok(None) => return Ok(None),
            Err(e) if unique_violation(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        sqlx::query(
            "UPDATE exposures SET batch_id = $1 WHERE batch_id IS NULL AND available_at < $2",
        )
        .bind(id)
        .bind(end)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Batches still to build whose lease is free, oldest first.
    pub async fn claimable_batches(
        &self,
        region: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM export_batches WHERE region = $1 AND status = 'pending' \
             AND (lease_expires IS NULL OR lease_expires < $2) ORDER BY start_timestamp LIMIT $3",
        )
        .bind(region)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("id").map_err(Into::into))
            .collect()
    }

    /// Takes the lease of a pending batch until `until`; `None` when another
    /// exporter holds it or the batch is done.
    pub async fn claim_batch(
        &self,
        id: i64,
        owner: &str,
        until: i64,
        now: i64,
    ) -> Result<Option<BatchRow>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE export_batches SET lease_owner = $1, lease_expires = $2 \
             WHERE id = $3 AND status = 'pending' AND (lease_expires IS NULL OR lease_expires < $4) \
             RETURNING {BATCH_COLUMNS}"
        ))
        .bind(owner)
        .bind(until)
        .bind(id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(batch_row).transpose()
    }

    /// A batch by id.
    pub async fn batch(&self, id: i64) -> Result<Option<BatchRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {BATCH_COLUMNS} FROM export_batches WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(batch_row).transpose()
    }

    /// Every batch of a region, oldest first.
    pub async fn batches(&self, region: &str) -> Result<Vec<BatchRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {BATCH_COLUMNS} FROM export_batches WHERE region = $1 ORDER BY start_timestamp"
        ))
        .bind(region)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(batch_row).collect()
    }

    /// The real keys of a batch.
    pub async fn batch_keys(&self, batch_id: i64) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_data, rolling_start, rolling_period, transmission_risk, report_type \
             FROM exposures WHERE batch_id = $1",
        )
        .bind(batch_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(key_row).collect()
    }

    /// The fake keys of a batch.
    pub async fn batch_fakes(&self, batch_id: i64) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_data, rolling_start, rolling_period, transmission_risk, report_type \
             FROM export_fakes WHERE batch_id = $1",
        )
        .bind(batch_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(key_row).collect()
    }

    /// Stores the fake keys of a batch once: `false` (and nothing written)
    /// when the batch was padded before or its lease is not `owner`'s.
    pub async fn store_fakes(
        &self,
        batch_id: i64,
        owner: &str,
        fakes: &[KeyRow],
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query(
            "UPDATE export_batches SET padded = 1 WHERE id = $1 AND lease_owner = $2 AND padded = 0",
        )
        .bind(batch_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for chunk in fakes.chunks(100) {
            let mut sql = String::from(
                "INSERT INTO export_fakes (batch_id, key_data, rolling_start, rolling_period, \
                 transmission_risk, report_type) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 6;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                ));
            }
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(batch_id)
                    .bind(f.key_data.to_vec())
                    .bind(f.rolling_start)
                    .bind(f.rolling_period)
                    .bind(f.transmission_risk)
                    .bind(f.report_type);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a batch built and records its files, if `owner` still holds its
    /// lease; `false` (nothing written) otherwise.
    pub async fn complete_batch(
        &self,
        batch: &BatchRow,
        owner: &str,
        files: &[NewFile],
        created_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query(
            "UPDATE export_batches SET status = 'done', lease_owner = NULL, lease_expires = NULL \
             WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
        )
        .bind(batch.id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for f in files {
            sqlx::query(
                "INSERT INTO export_files (batch_id, region, path, batch_end, file_num, key_count, created_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(batch.id)
            .bind(&batch.region)
            .bind(&f.path)
            .bind(batch.end_timestamp)
            .bind(f.file_num)
            .bind(f.key_count)
            .bind(created_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The export files of a region, oldest first.
    pub async fn export_files(&self, region: &str) -> Result<Vec<FileRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT batch_id, region, path, batch_end, file_num, key_count, created_at_ms \
             FROM export_files WHERE region = $1 ORDER BY batch_end, file_num",
        )
        .bind(region)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FileRow {
                    batch_id: r.try_get("batch_id")?,
                    region: r.try_get("region")?,
                    path: r.try_get("path")?,
                    batch_end: r.try_get("batch_end")?,
                    file_num: r.try_get("file_num")?,
                    key_count: r.try_get("key_count")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                })
            })
            .collect()
    }

    /// Deletes keys uploaded before `cutoff`, publish records of that age,
    /// and the batches (with their fakes and file records) of a region whose
    /// window ended before `cutoff`, always keeping the latest batch so that
    /// windows go on from it. Returns the object paths to delete.
    pub async fn apply_retention(
        &self,
        region: &str,
        cutoff: i64,
    ) -> Result<RetentionReport, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        let keys = sqlx::query("DELETE FROM exposures WHERE created_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM publishes WHERE created_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        let old = "SELECT id FROM export_batches WHERE region = $1 AND end_timestamp < $2 \
                   AND status = 'done' AND end_timestamp < \
                   (SELECT MAX(end_timestamp) FROM export_batches WHERE region = $1)";
        let files = sqlx::query(&format!(
            "DELETE FROM export_files WHERE batch_id IN ({old}) RETURNING path"
        ))
        .bind(region)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("path"))
        .collect::<Result<Vec<_>, _>>()?;
        sqlx::query(&format!(
            "DELETE FROM export_fakes WHERE batch_id IN ({old})"
        ))
        .bind(region)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let batches = sqlx::query(&format!("DELETE FROM export_batches WHERE id IN ({old})"))
            .bind(region)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(RetentionReport {
            keys,
            files,
            batches,
        })
    }
}
