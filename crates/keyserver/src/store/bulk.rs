//! Bulk reads and writes of keys, for the exporter and for benches.
//!
//! A batch can hold a million keys. Through sqlx's `Any` driver every row
//! costs several microseconds (a message from the driver's thread and a
//! generic row per key), so reading a batch took 3-5 s. Here the rows go
//! through each backend's fastest path instead:
//!
//! - SQLite: one read-only `rusqlite` connection on the same file (WAL lets it
//!   read while others write), stepping the statement in a blocking thread.
//! - PostgreSQL: `COPY (SELECT …) TO STDOUT (FORMAT binary)` on a native
//!   connection, parsed as it streams.
//!
//! An in-memory SQLite database (no file to open twice) falls back to a
//! streamed `Any` query. Only the five columns an export file needs are read.

use std::str::FromStr;

use futures_util::TryStreamExt;
use sqlx::Connection;

use super::export::KeyRow;
use super::{Backend, Store, StoreError, StoredKey};

/// The keys of a range batch: the bounds recorded when it was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    /// Region of the keys.
    pub region: String,
    /// Sequence numbers above this were not yet in a batch of the region…
    pub seq_from: i64,
    /// …and those up to this one were stored when the batch was cut.
    pub seq_to: i64,
    /// Keys up to `seq_from` whose availability starts at or after this
    /// were held back from the previous batch (embargo).
    pub ready_from: i64,
    /// Only keys available before the window's end.
    pub end: i64,
}

/// Columns of a key as an export needs it.
const COLUMNS: &str = "key_data, rolling_start, rolling_period, transmission_risk, report_type";

/// The range query with `$1` region, `$2` seq_from, `$3` seq_to, `$4` end,
/// `$5` ready_from. SQLite's unary `+` keeps each half on its own index (the
/// sequence number for new keys, `(region, available_at)` for embargoed ones).
fn range_sql(sqlite: bool) -> String {
    let p = if sqlite { "+" } else { "" };
    format!(
        "SELECT {COLUMNS} FROM exposures WHERE seq > $2 AND seq <= $3 \
         AND {p}region = $1 AND {p}available_at < $4 AND batch_id IS NULL \
         UNION ALL \
         SELECT {COLUMNS} FROM exposures WHERE region = $1 AND available_at >= $5 \
         AND available_at < $4 AND {p}seq <= $2 AND batch_id IS NULL"
    )
}

fn decode_err(what: &str) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(what.to_owned().into()))
}

/// The SQLite file of a URL, when it has one (not an in-memory database).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let name = options.get_filename();
    let text = name.to_string_lossy();
    if text.is_empty() || text == ":memory:" || text.starts_with("file:") {
        return None;
    }
    Some(name.to_path_buf())
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Db(sqlx::Error::Protocol(format!("sqlite: {e}")))
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::Db(sqlx::Error::Protocol(format!("bulk task: {e}")))
}

/// Region names are object path components and are written into `COPY`
/// statements: letters, digits, `-` and `_`, 1 to 32 of them.
pub fn valid_region(region: &str) -> bool {
    (1..=32).contains(&region.len())
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Store {
    /// The real keys of a range batch, through the backend's bulk path.
    pub(crate) async fn range_keys(&self, r: &Range) -> Result<Vec<KeyRow>, StoreError> {
        if !valid_region(&r.region) {
            return Err(decode_err("invalid region name"));
        }
        match self.backend() {
            Backend::Sqlite => match sqlite_file(self.url()) {
                Some(path) => {
                    let r = r.clone();
                    tokio::task::spawn_blocking(move || sqlite_range(&path, &r))
                        .await
                        .map_err(join_err)?
                }
                None => self.any_range(r).await,
            },
            Backend::Postgres => self.postgres_range(r).await,
        }
    }

    async fn any_range(&self, r: &Range) -> Result<Vec<KeyRow>, StoreError> {
        let sql = range_sql(true);
        let mut rows = sqlx::query(&sql)
            .bind(&r.region)
            .bind(r.seq_from)
            .bind(r.seq_to)
            .bind(r.end)
            .bind(r.ready_from)
            .fetch(self.pool());
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            out.push(super::export::key_row(&row)?);
        }
        Ok(out)
    }

    async fn postgres_range(&self, r: &Range) -> Result<Vec<KeyRow>, StoreError> {
        // COPY takes no parameters: the numbers are formatted, the region was
        // checked by `valid_region` (and is quoted anyway).
        let sql = range_sql(false)
            .replace("$1", &format!("'{}'", r.region.replace('\'', "''")))
            .replace("$2", &r.seq_from.to_string())
            .replace("$3", &r.seq_to.to_string())
            .replace("$4", &r.end.to_string())
            .replace("$5", &r.ready_from.to_string());
        let mut conn = sqlx::postgres::PgConnection::connect(self.url()).await?;
        let mut out = Vec::new();
        {
            let mut stream = conn
                .copy_out_raw(&format!("COPY ({sql}) TO STDOUT (FORMAT binary)"))
                .await?;
            let mut parser = CopyParser::default();
            while let Some(chunk) = stream.try_next().await? {
                parser.feed(&chunk, &mut out)?;
            }
            parser.finish()?;
        }
        conn.close().await?;
        Ok(out)
    }

    /// Stores keys without a publish record or statistics, many at a time
    /// (benches and tests fill a database this way); keys stored already
    /// are skipped on SQLite and refused on PostgreSQL.
    pub async fn bulk_insert_keys(
        &self,
        region: &str,
        keys: &[StoredKey],
    ) -> Result<(), StoreError> {
        if !valid_region(region) {
            return Err(decode_err("invalid region name"));
        }
        match self.backend() {
            Backend::Sqlite => {
                let Some(path) = sqlite_file(self.url()) else {
                    return Err(decode_err("bulk insert needs a SQLite file"));
                };
                let _turn = self.write_turn().await;
                let keys = keys.to_vec();
                let region = region.to_owned();
                tokio::task::spawn_blocking(move || sqlite_insert(&path, &region, &keys))
                    .await
                    .map_err(join_err)?
            }
            Backend::Postgres => {
                let mut conn = sqlx::postgres::PgConnection::connect(self.url()).await?;
                let mut copy = conn
                    .copy_in_raw(
                        "COPY exposures (key_data, rolling_start, rolling_period, \
                         transmission_risk, report_type, created_at, available_at, region) \
                         FROM STDIN (FORMAT binary)",
                    )
                    .await?;
                let mut buf = Vec::with_capacity(1 << 20);
                buf.extend_from_slice(PG_COPY_SIGNATURE);
                buf.extend_from_slice(&[0; 8]); // flags, header extension length
                for k in keys {
                    buf.extend_from_slice(&8i16.to_be_bytes());
                    buf.extend_from_slice(&16i32.to_be_bytes());
                    buf.extend_from_slice(&k.key_data);
                    for v in numbers(k) {
                        buf.extend_from_slice(&8i32.to_be_bytes());
                        buf.extend_from_slice(&v.to_be_bytes());
                    }
                    buf.extend_from_slice(&(region.len() as i32).to_be_bytes());
                    buf.extend_from_slice(region.as_bytes());
                    if buf.len() >= 1 << 20 {
                        copy.send(std::mem::take(&mut buf)).await?;
                    }
                }
                buf.extend_from_slice(&(-1i16).to_be_bytes());
                copy.send(buf).await?;
                copy.finish().await?;
                conn.close().await?;
                Ok(())
            }
        }
    }
}

/// The integer columns of a key, in the order of the bulk inserts.
fn numbers(k: &StoredKey) -> [i64; 6] {
    [
        k.rolling_start,
        k.rolling_period,
        k.transmission_risk,
        k.report_type,
        k.created_at,
        k.available_at,
    ]
}

fn open_sqlite(
    path: &std::path::Path,
    flags: rusqlite::OpenFlags,
) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(sqlite_err)?;
    conn.busy_timeout(std::time::Duration::from_millis(u64::from(
        super::SQLITE_BUSY_TIMEOUT_MS,
    )))
    .map_err(sqlite_err)?;
    Ok(conn)
}

fn sqlite_range(path: &std::path::Path, r: &Range) -> Result<Vec<KeyRow>, StoreError> {
    use rusqlite::OpenFlags;
    let conn = open_sqlite(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare(&range_sql(true)).map_err(sqlite_err)?;
    let mut rows = stmt
        .query(rusqlite::named_params! {
            "$1": r.region,
            "$2": r.seq_from,
            "$3": r.seq_to,
            "$4": r.end,
            "$5": r.ready_from,
        })
        .map_err(sqlite_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        let data = row.get_ref(0).map_err(sqlite_err)?.as_blob().map_err(|e| {
            sqlite_err(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Blob,
                Box::new(e),
            ))
        })?;
        let key_data =
            <[u8; 16]>::try_from(data).map_err(|_| decode_err("key_data is not 16 bytes"))?;
        out.push(KeyRow {
            key_data,
            rolling_start: row.get(1).map_err(sqlite_err)?,
            rolling_period: row.get(2).map_err(sqlite_err)?,
            transmission_risk: row.get(3).map_err(sqlite_err)?,
            report_type: row.get(4).map_err(sqlite_err)?,
        });
    }
    Ok(out)
}

fn sqlite_insert(
    path: &std::path::Path,
    region: &str,
    keys: &[StoredKey],
) -> Result<(), StoreError> {
    use rusqlite::OpenFlags;
    let mut conn = open_sqlite(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "cache_size", -65_536)
        .map_err(sqlite_err)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO exposures (key_data, rolling_start, rolling_period, transmission_risk, \
                 report_type, created_at, available_at, region) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (key_data) DO NOTHING",
            )
            .map_err(sqlite_err)?;
        for k in keys {
            let [a, b, c, d, e, f] = numbers(k);
            stmt.execute((&k.key_data[..], a, b, c, d, e, f, region))
                .map_err(sqlite_err)?;
        }
    }
    tx.commit().map_err(sqlite_err)
}

const PG_COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Parses PostgreSQL's binary `COPY` stream of the five key columns
/// (`bytea`, then four `bigint`s), chunk by chunk.
#[derive(Debug, Default)]
struct CopyParser {
    buf: Vec<u8>,
    header_done: bool,
    ended: bool,
}

impl CopyParser {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<KeyRow>) -> Result<(), StoreError> {
        self.buf.extend_from_slice(chunk);
        let mut pos = 0;
        if !self.header_done {
            // Signature, flags, header extension length, extension.
            if self.buf.len() < 19 {
                return Ok(());
            }
            if &self.buf[..11] != PG_COPY_SIGNATURE {
                return Err(decode_err("not a binary COPY stream"));
            }
            let ext = i32::from_be_bytes([self.buf[15], self.buf[16], self.buf[17], self.buf[18]]);
            let ext = usize::try_from(ext).map_err(|_| decode_err("bad COPY header"))?;
            if self.buf.len() < 19 + ext {
                return Ok(());
            }
            pos = 19 + ext;
            self.header_done = true;
        }
        // A tuple: i16 field count, then per field an i32 length and the bytes.
        const TUPLE: usize = 2 + (4 + 16) + 4 * (4 + 8);
        while !self.ended && self.buf.len() >= pos + 2 {
            let fields = i16::from_be_bytes([self.buf[pos], self.buf[pos + 1]]);
            if fields == -1 {
                self.ended = true;
                pos += 2;
                break;
            }
            if fields != 5 {
                return Err(decode_err("unexpected COPY tuple"));
            }
            if self.buf.len() < pos + TUPLE {
                break;
            }
            let t = &self.buf[pos..pos + TUPLE];
            let len = |at: usize| i32::from_be_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]);
            let int = |at: usize| {
                if len(at) != 8 {
                    return Err(decode_err("unexpected COPY integer"));
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&t[at + 4..at + 12]);
                Ok(i64::from_be_bytes(b))
            };
            if len(2) != 16 {
                return Err(decode_err("key_data is not 16 bytes"));
            }
            let mut key_data = [0u8; 16];
            key_data.copy_from_slice(&t[6..22]);
            out.push(KeyRow {
                key_data,
                rolling_start: int(22)?,
                rolling_period: int(34)?,
                transmission_risk: int(46)?,
                report_type: int(58)?,
            });
            pos += TUPLE;
        }
        self.buf.drain(..pos);
        Ok(())
    }

    fn finish(&self) -> Result<(), StoreError> {
        if self.ended && self.buf.is_empty() {
            Ok(())
        } else {
            Err(decode_err("truncated COPY stream"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_streams_parse_across_chunks() {
        let mut s = Vec::new();
        s.extend_from_slice(PG_COPY_SIGNATURE);
        s.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        for i in 0..3u8 {
            s.extend_from_slice(&5i16.to_be_bytes());
            s.extend_from_slice(&16i32.to_be_bytes());
            s.extend_from_slice(&[i; 16]);
            for v in [100 + i64::from(i), 144, 2, 1] {
                s.extend_from_slice(&8i32.to_be_bytes());
                s.extend_from_slice(&v.to_be_bytes());
            }
        }
        s.extend_from_slice(&(-1i16).to_be_bytes());
        for step in [1, 7, 64, s.len()] {
            let mut p = CopyParser::default();
            let mut out = Vec::new();
            for c in s.chunks(step) {
                p.feed(c, &mut out).unwrap();
            }
            p.finish().unwrap();
            assert_eq!(out.len(), 3);
            assert_eq!(out[2].key_data, [2; 16]);
            assert_eq!(out[2].rolling_start, 102);
            assert_eq!(out[1].rolling_period, 144);
        }
    }

    #[test]
    fn region_names_are_path_safe() {
        assert!(valid_region("440"));
        assert!(valid_region("canary"));
        assert!(valid_region("jp-canary_2"));
        for bad in ["", "a/b", "..", "a'b", "a b", &"x".repeat(33)] {
            assert!(!valid_region(bad), "{bad:?}");
        }
    }
}
