//! The exporter's queries: batches and their leases, fake keys, export file
//! records, retention.
//!
//! A batch's keys are selected by range, never assigned one by one (issue 4:
//! "The exporter builds, signs and stores 1,000,000 keys in under 2
//! seconds"). Every key has an insertion sequence number `seq`. Cutting the
//! window `[start, end)` of a region records the highest `seq` stored at that
//! moment (`seq_to`) and the previous batch's `seq_to` and end (`seq_from`,
//! `ready_from`). A key belongs to the first batch of its region with
//! `seq <= seq_to` and `available_at < end`; both bounds only grow from batch
//! to batch, so the batch holds exactly
//!
//! - new keys: `seq_from < seq <= seq_to` and `available_at < end`, and
//! - keys held back before: `seq <= seq_from` and `ready_from <= available_at < end`.
//!
//! So each key is in exactly one batch, a key stored after its window was
//! cut goes into the next one, an embargoed key waits for the batch whose
//! window its availability falls before, and a batch's keys never change
//! after the cut (a rebuild is identical). On PostgreSQL the cut holds a
//! SHARE lock on `exposures` while it reads the sequence, so no key with a
//! lower number is still uncommitted; on SQLite the cut is a write
//! transaction, which no other writer overlaps.

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

pub(crate) fn key_row(r: &sqlx::any::AnyRow) -> Result<KeyRow, StoreError> {
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

/// Bytes of one packed fake key: key (16), rolling start (u32), rolling
/// period (u16), transmission risk (u8), report type (u8), big-endian.
pub const FAKE_BYTES: usize = 24;

/// Packs fake keys for [`Store::store_fakes`].
pub fn encode_fakes(fakes: &[KeyRow]) -> Result<Vec<u8>, StoreError> {
    let range = || StoreError::Db(sqlx::Error::Encode("fake key metadata out of range".into()));
    let mut out = Vec::with_capacity(fakes.len() * FAKE_BYTES);
    for f in fakes {
        out.extend_from_slice(&f.key_data);
        out.extend_from_slice(
            &u32::try_from(f.rolling_start)
                .map_err(|_| range())?
                .to_be_bytes(),
        );
        out.extend_from_slice(
            &u16::try_from(f.rolling_period)
                .map_err(|_| range())?
                .to_be_bytes(),
        );
        out.push(u8::try_from(f.transmission_risk).map_err(|_| range())?);
        out.push(u8::try_from(f.report_type).map_err(|_| range())?);
    }
    Ok(out)
}

/// Unpacks what [`encode_fakes`] packed.
pub fn decode_fakes(packed: &[u8]) -> Result<Vec<KeyRow>, StoreError> {
    if !packed.len().is_multiple_of(FAKE_BYTES) {
        return Err(StoreError::Db(sqlx::Error::Decode(
            "packed fakes have a partial key".into(),
        )));
    }
    Ok(packed
        .chunks_exact(FAKE_BYTES)
        .map(|c| {
            let mut key_data = [0u8; 16];
            key_data.copy_from_slice(&c[..16]);
            KeyRow {
                key_data,
                rolling_start: i64::from(u32::from_be_bytes([c[16], c[17], c[18], c[19]])),
                rolling_period: i64::from(u16::from_be_bytes([c[20], c[21]])),
                transmission_risk: i64::from(c[22]),
                report_type: i64::from(c[23]),
            }
        })
        .collect())
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

    /// The earliest `available_at` of the region's keys, when it has no
    /// batch yet (where its first window starts).
    pub async fn earliest_unbatched(&self, region: &str) -> Result<Option<i64>, StoreError> {
        let r = sqlx::query(
            "SELECT MIN(available_at) AS a FROM exposures WHERE region = $1 AND batch_id IS NULL",
        )
        .bind(region)
        .fetch_one(self.pool())
        .await?;
        Ok(r.try_get::<Option<i64>, _>("a")?)
    }

    /// Every region that has stored keys or batches, sorted.
    pub async fn regions(&self) -> Result<Vec<String>, StoreError> {
        // A loose index scan of `(region, available_at)`: one probe a region.
        let rows = sqlx::query(
            "WITH RECURSIVE r (region) AS ( \
               SELECT MIN(region) FROM exposures \
               UNION ALL \
               SELECT (SELECT MIN(region) FROM exposures WHERE region > r.region) FROM r \
               WHERE r.region IS NOT NULL) \
             SELECT region FROM r WHERE region IS NOT NULL \
             UNION SELECT DISTINCT region FROM export_batches",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Cuts the window `[start, end)` of a region: creates its batch with
    /// the bounds that select its keys (see the module). `None` when another
    /// exporter cut this window first.
    pub async fn cut_batch(
        &self,
        region: &str,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool().begin().await?;
        if self.backend() == super::Backend::Postgres {
            // Waits for every publish transaction in flight and holds new
            // ones back until the commit: no key below the high-water mark
            // read here can appear later.
            sqlx::query("LOCK TABLE exposures IN SHARE MODE")
                .execute(&mut *tx)
                .await?;
        }
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
        // The previous batch of the region; one cut before this migration
        // (no `seq_to`) assigned its keys, which range batches leave out.
        let prev = sqlx::query(
            "SELECT seq_to, end_timestamp FROM export_batches \
             WHERE region = $1 AND start_timestamp < $2 ORDER BY start_timestamp DESC LIMIT 1",
        )
        .bind(region)
        .bind(start)
        .fetch_optional(&mut *tx)
        .await?;
        let (seq_from, ready_from) = match &prev {
            Some(p) => match p.try_get::<Option<i64>, _>("seq_to")? {
                Some(to) => (to, Some(p.try_get::<i64, _>("end_timestamp")?)),
                None => (0, None),
            },
            None => (0, None),
        };
        let max: Option<i64> = sqlx::query("SELECT MAX(seq) AS m FROM exposures")
            .fetch_one(&mut *tx)
            .await?
            .try_get("m")?;
        let seq_to = max.unwrap_or(0).max(seq_from);
        sqlx::query(
            "UPDATE export_batches SET seq_from = $1, seq_to = $2, ready_from = $3 WHERE id = $4",
        )
        .bind(seq_from)
        .bind(seq_to)
        .bind(ready_from)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Batches still to build whose lease is free or already `owner`'s
    /// (left by a cycle of that exporter that failed), oldest first.
    pub async fn claimable_batches(
        &self,
        region: &str,
        owner: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM export_batches WHERE region = $1 AND status = 'pending' \
             AND (lease_expires IS NULL OR lease_expires < $2 OR lease_owner = $4) \
             ORDER BY start_timestamp LIMIT $3",
        )
        .bind(region)
        .bind(now)
        .bind(limit)
        .bind(owner)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("id").map_err(Into::into))
            .collect()
    }

    /// Takes the lease of a pending batch until `until` (or renews it when
    /// `owner` holds it already); `None` when another exporter holds it or
    /// the batch is done.
    pub async fn claim_batch(
        &self,
        id: i64,
        owner: &str,
        until: i64,
        now: i64,
    ) -> Result<Option<BatchRow>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE export_batches SET lease_owner = $1, lease_expires = $2 \
             WHERE id = $3 AND status = 'pending' \
               AND (lease_expires IS NULL OR lease_expires < $4 OR lease_owner = $1) \
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

    /// The real keys of a batch, in no particular order (the build sorts
    /// them), read in bulk.
    pub async fn batch_keys(&self, batch_id: i64) -> Result<Vec<KeyRow>, StoreError> {
        let b = sqlx::query(
            "SELECT region, end_timestamp, seq_from, seq_to, ready_from \
             FROM export_batches WHERE id = $1",
        )
        .bind(batch_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(b) = b else {
            return Ok(Vec::new());
        };
        match b.try_get::<Option<i64>, _>("seq_to")? {
            Some(seq_to) => {
                let range = super::bulk::Range {
                    region: b.try_get("region")?,
                    seq_from: b.try_get::<Option<i64>, _>("seq_from")?.unwrap_or(0),
                    seq_to,
                    ready_from: b
                        .try_get::<Option<i64>, _>("ready_from")?
                        .unwrap_or(i64::MIN),
                    end: b.try_get("end_timestamp")?,
                };
                self.range_keys(&range).await
            }
            // Cut before migration 0002: its keys were assigned.
            None => self.legacy_keys("exposures", batch_id).await,
        }
    }

    /// Keys of a batch made before migration 0002, one row a key in `table`.
    async fn legacy_keys(&self, table: &str, batch_id: i64) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT key_data, rolling_start, rolling_period, transmission_risk, report_type \
             FROM {table} WHERE batch_id = $1"
        ))
        .bind(batch_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(key_row).collect()
    }

    /// The fake keys of a batch.
    pub async fn batch_fakes(&self, batch_id: i64) -> Result<Vec<KeyRow>, StoreError> {
        let row = sqlx::query("SELECT fakes FROM export_batches WHERE id = $1")
            .bind(batch_id)
            .fetch_optional(self.pool())
            .await?;
        if let Some(packed) = row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>("fakes"))
            .transpose()?
            .flatten()
        {
            return decode_fakes(&packed);
        }
        // Padded before migration 0002: one row a fake.
        self.legacy_keys("export_fakes", batch_id).await
    }

    /// Fake keys stored in every batch (tests).
    pub async fn fake_count(&self) -> Result<u64, StoreError> {
        let rows = sqlx::query("SELECT fakes FROM export_batches WHERE fakes IS NOT NULL")
            .fetch_all(self.pool())
            .await?;
        let packed: u64 = rows
            .iter()
            .map(|r| {
                r.try_get::<Vec<u8>, _>("fakes")
                    .map(|f| (f.len() / FAKE_BYTES) as u64)
            })
            .sum::<Result<u64, _>>()?;
        let legacy: i64 = sqlx::query("SELECT COUNT(*) AS n FROM export_fakes")
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        Ok(packed + legacy as u64)
    }

    /// Stores the fake keys of a batch once, packed in one value: `false`
    /// (and nothing written) when the batch was padded before or its lease
    /// is not `owner`'s.
    pub async fn store_fakes(
        &self,
        batch_id: i64,
        owner: &str,
        fakes: &[KeyRow],
    ) -> Result<bool, StoreError> {
        let packed = encode_fakes(fakes)?;
        let _turn = self.write_turn().await;
        let n = sqlx::query(
            "UPDATE export_batches SET padded = 1, fakes = $1 \
             WHERE id = $2 AND lease_owner = $3 AND padded = 0",
        )
        .bind(packed)
        .bind(batch_id)
        .bind(owner)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
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
