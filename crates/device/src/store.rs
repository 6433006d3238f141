//! The phone's local storage: one SQLite file per phone (`<home>/phone.sqlite3`).
//!
//! rusqlite with SQLite bundled, not sqlx: the device core is a library a
//! mobile shell calls from its own threads, so storage is synchronous and
//! needs no async runtime; every phone build carries the same SQLite; and it
//! links the same `libsqlite3-sys` as the servers' sqlx, so the workspace
//! holds one SQLite. The database uses WAL with `synchronous = FULL`: the
//! registration state written after each step survives a power cut, not only
//! a crash of the app.

use std::path::Path;

use en_protocol::matcher::Sighting;
use en_protocol::time::EnIntervalNumber;
use en_protocol::{Aem, Rpi, Tek};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::keys::DailyKey;

mod erase;

/// File name of the database inside the phone's home folder.
pub const DB_FILE: &str = "phone.sqlite3";

/// Schema migrations, applied in order; `PRAGMA user_version` counts them.
/// Append only.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE teks (
    rolling_start  INTEGER PRIMARY KEY,
    rolling_period INTEGER NOT NULL,
    key_data       BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE TABLE sightings (
    id      INTEGER PRIMARY KEY,
    rpi     BLOB NOT NULL,
    aem     BLOB NOT NULL,
    rssi    INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    seconds INTEGER NOT NULL
);
CREATE INDEX sightings_seen_at ON sightings (seen_at);
CREATE TABLE registrations (
    id         INTEGER PRIMARY KEY,
    stage      TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE export_files (
    url          TEXT PRIMARY KEY,
    processed_at INTEGER NOT NULL,
    keys         INTEGER NOT NULL,
    matched      INTEGER NOT NULL
);
CREATE TABLE exposures (
    key_id      BLOB PRIMARY KEY,
    report_type INTEGER NOT NULL,
    windows     TEXT NOT NULL,
    last_day    TEXT NOT NULL,
    found_at    INTEGER NOT NULL
);
CREATE TABLE checks (
    id     INTEGER PRIMARY KEY,
    ran_at INTEGER NOT NULL,
    result TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE failed_files (
    url             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    first_failed_at INTEGER NOT NULL,
    last_failed_at  INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL
);
"#,
];

/// The phone's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Corrupt(what.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(corrupt)
}

impl Store {
    /// Opens (creating when `create`) the database in `home` and brings its
    /// schema up to date.
    pub fn open(home: &Path, create: bool) -> Result<Self> {
        let path = home.join(DB_FILE);
        if !create && !path.exists() {
            return Err(Error::NotInitialised {
                home: home.display().to_string(),
            });
        }
        if create {
            std::fs::create_dir_all(home)?;
        }
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Self { conn };
        store.migrate()?;
        Ok(store)
    }

    /// An in-memory database (tests and benchmarks).
    pub fn memory() -> Result<Self> {
        let mut store = Self {
            conn: Connection::open_in_memory()?,
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: usize = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(corrupt(format!(
                "database schema {version} is newer than this app ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    // ---- settings ----

    /// A JSON value stored under `name`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        v.map(|s| from_json(&s)).transpose()
    }

    /// Stores a JSON value under `name`.
    pub fn set<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![name, to_json(value)?],
        )?;
        Ok(())
    }

    // ---- keys ----

    /// Every key, oldest first.
    pub fn keys(&self) -> Result<Vec<DailyKey>> {
        let mut stmt = self.conn.prepare(
            "SELECT rolling_start, rolling_period, key_data FROM teks ORDER BY rolling_start",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (start, period, data) = row?;
            out.push(DailyKey {
                tek: Tek::try_from_slice(&data).map_err(corrupt)?,
                rolling_start: EnIntervalNumber::new(start),
                rolling_period: period,
            });
        }
        Ok(out)
    }

    /// The key starting at `start`, if any.
    pub fn key_starting(&self, start: EnIntervalNumber) -> Result<Option<DailyKey>> {
        let row: Option<(u32, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT rolling_period, key_data FROM teks WHERE rolling_start = ?1",
                [start.get()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(period, data)| {
            Ok(DailyKey {
                tek: Tek::try_from_slice(&data).map_err(corrupt)?,
                rolling_start: start,
                rolling_period: period,
            })
        })
        .transpose()
    }

    /// Stores a new key.
    pub fn insert_key(&self, key: &DailyKey, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO teks (rolling_start, rolling_period, key_data, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                key.rolling_start.get(),
                key.rolling_period,
                key.tek.as_bytes().as_slice(),
                now
            ],
        )?;
        Ok(())
    }

    /// Deletes keys starting before `start`; returns how many.
    pub fn delete_keys_before(&self, start: EnIntervalNumber) -> Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM teks WHERE rolling_start < ?1", [start.get()])?)
    }

    // ---- sightings ----

    /// Appends sightings, in one transaction.
    pub fn insert_sightings(&mut self, sightings: &[Sighting]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO sightings (rpi, aem, rssi, seen_at, seconds) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for s in sightings {
                stmt.execute(params![
                    s.rpi.as_bytes().as_slice(),
                    s.aem.as_bytes().as_slice(),
                    s.rssi,
                    s.at,
                    s.seconds
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every sighting.
    pub fn sightings(&self) -> Result<Vec<Sighting>> {
        let count = self.sighting_count()?;
        let mut out = Vec::with_capacity(count);
        let mut stmt = self
            .conn
            .prepare("SELECT rpi, aem, rssi, seen_at, seconds FROM sightings")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let rpi: Vec<u8> = r.get(0)?;
            let aem: Vec<u8> = r.get(1)?;
            out.push(Sighting {
                rpi: Rpi::try_from_slice(&rpi).map_err(corrupt)?,
                aem: Aem::try_from_slice(&aem).map_err(corrupt)?,
                rssi: r.get(2)?,
                at: r.get(3)?,
                seconds: r.get(4)?,
            });
        }
        Ok(out)
    }

    /// How many sightings are kept.
    pub fn sighting_count(&self) -> Result<usize> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM sightings", [], |r| r.get(0))?)
    }

    /// Deletes sightings heard before `at` (unix seconds); returns how many.
    pub fn delete_sightings_before(&self, at: i64) -> Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM sightings WHERE seen_at < ?1", [at])?)
    }

    // ---- registrations ----

    /// The newest registration: its id and state.
    pub fn latest_registration<T: DeserializeOwned>(&self) -> Result<Option<(i64, T)>> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, state FROM registrations ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(id, s)| Ok((id, from_json(&s)?))).transpose()
    }

    /// Starts a registration; returns its id.
    pub fn insert_registration<T: Serialize>(
        &self,
        stage: &str,
        state: &T,
        now: i64,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO registrations (stage, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            params![stage, to_json(state)?, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Saves a registration's state (durably: `synchronous = FULL`).
    pub fn update_registration<T: Serialize>(
        &self,
        id: i64,
        stage: &str,
        state: &T,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE registrations SET stage = ?2, state = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, stage, to_json(state)?, now],
        )?;
        Ok(())
    }

    // ---- exposure checks ----

    /// Whether an export file was processed before.
    pub fn file_seen(&self, url: &str) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM export_files WHERE url = ?1", [url], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// Records a processed file and the exposures found in it, in one
    /// transaction (a crash leaves the file unprocessed, never half-counted).
    pub fn record_file(
        &mut self,
        url: &str,
        now: i64,
        keys: u64,
        exposures: &[StoredExposure],
        revisions: &[(Vec<u8>, i32)],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        for e in exposures {
            tx.execute(
                "INSERT INTO exposures (key_id, report_type, windows, last_day, found_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key_id) DO UPDATE SET \
                 report_type = excluded.report_type, windows = excluded.windows, last_day = excluded.last_day",
                params![e.key_id, e.report_type, e.windows_json, e.last_day, now],
            )?;
        }
        for (key_id, report_type) in revisions {
            tx.execute(
                "UPDATE exposures SET report_type = ?2 WHERE key_id = ?1",
                params![key_id, report_type],
            )?;
        }
        tx.execute(
            "INSERT INTO export_files (url, processed_at, keys, matched) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (url) DO NOTHING",
            params![url, now, keys as i64, exposures.len() as i64],
        )?;
        tx.execute("DELETE FROM failed_files WHERE url = ?1", [url])?;
        tx.commit()?;
        Ok(())
    }

    /// The failure record of an export file that could not be processed
    /// yet, if any.
    pub fn failed_file(&self, url: &str) -> Result<Option<FailedFileRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT url, failures, reason, first_failed_at, last_failed_at, next_attempt_at \
                 FROM failed_files WHERE url = ?1",
                [url],
                FailedFileRow::from_row,
            )
            .optional()?)
    }

    /// Every export file waiting to be tried again, oldest failure first.
    pub fn failed_files(&self) -> Result<Vec<FailedFileRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT url, failures, reason, first_failed_at, last_failed_at, next_attempt_at \
             FROM failed_files ORDER BY first_failed_at, url",
        )?;
        let rows = stmt.query_map([], FailedFileRow::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves the failure record of an export file (replacing the previous one).
    pub fn save_failed_file(&self, f: &FailedFileRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO failed_files (url, failures, reason, first_failed_at, last_failed_at, next_attempt_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (url) DO UPDATE SET \
             failures = excluded.failures, reason = excluded.reason, \
             last_failed_at = excluded.last_failed_at, next_attempt_at = excluded.next_attempt_at",
            params![
                f.url,
                f.failures,
                f.reason,
                f.first_failed_at,
                f.last_failed_at,
                f.next_attempt_at
            ],
        )?;
        Ok(())
    }

    /// Forgets the failed files the index no longer lists (the server
    /// deleted them: there is nothing left to retry).
    pub fn forget_failed_files_except(&mut self, listed: &[String]) -> Result<usize> {
        let keep: std::collections::HashSet<&str> = listed.iter().map(String::as_str).collect();
        let gone: Vec<String> = self
            .failed_files()?
            .into_iter()
            .map(|f| f.url)
            .filter(|u| !keep.contains(u.as_str()))
            .collect();
        let tx = self.conn.transaction()?;
        for url in &gone {
            tx.execute("DELETE FROM failed_files WHERE url = ?1", [url])?;
        }
        tx.commit()?;
        Ok(gone.len())
    }

    /// Every stored exposure.
    pub fn exposures(&self) -> Result<Vec<StoredExposure>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key_id, report_type, windows, last_day FROM exposures")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredExposure {
                key_id: r.get(0)?,
                report_type: r.get(1)?,
                windows_json: r.get(2)?,
                last_day: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes exposures whose last day is before `day` (`YYYY-MM-DD`), and
    /// file records processed (or first failed) before `files_before`.
    pub fn delete_exposures_before(&self, day: &str, files_before: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM exposures WHERE last_day < ?1", [day])?;
        self.conn.execute(
            "DELETE FROM export_files WHERE processed_at < ?1",
            [files_before],
        )?;
        self.conn.execute(
            "DELETE FROM failed_files WHERE first_failed_at < ?1",
            [files_before],
        )?;
        Ok(())
    }

    /// Records what a check found.
    pub fn insert_check<T: Serialize>(&self, ran_at: i64, result: &T) -> Result<()> {
        self.conn.execute(
            "INSERT INTO checks (ran_at, result) VALUES (?1, ?2)",
            params![ran_at, to_json(result)?],
        )?;
        Ok(())
    }

    /// The last check's result.
    pub fn last_check<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT result FROM checks ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        v.map(|s| from_json(&s)).transpose()
    }

    /// Number of export files processed.
    pub fn file_count(&self) -> Result<usize> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM export_files", [], |r| r.get(0))?)
    }
}

/// An export file that failed (not found, not downloadable, or refused) and
/// when it is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedFileRow {
    /// Its URL.
    pub url: String,
    /// Failures in a row.
    pub failures: u32,
    /// Why the last attempt failed (English).
    pub reason: String,
    /// First failure (unix seconds).
    pub first_failed_at: i64,
    /// Last failure (unix seconds).
    pub last_failed_at: i64,
    /// Not tried again before this moment (unix seconds).
    pub next_attempt_at: i64,
}

impl FailedFileRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            url: r.get(0)?,
            failures: r.get(1)?,
            reason: r.get(2)?,
            first_failed_at: r.get(3)?,
            last_failed_at: r.get(4)?,
            next_attempt_at: r.get(5)?,
        })
    }
}

/// One matched diagnosis key as stored: an opaque id (a hash of the key),
/// its report type and its exposure windows (dates and scans only: never a
/// time of day, a place or a person).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredExposure {
    /// SHA-256 of the key and its validity, first 16 bytes.
    pub key_id: Vec<u8>,
    /// Report type (export wire value).
    pub report_type: i32,
    /// `Vec<ExposureWindow>` as JSON.
    pub windows_json: String,
    /// Date of the last window, `YYYY-MM-DD`.
    pub last_day: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_sightings_round_trip() {
        let mut s = Store::memory().unwrap();
        let k = DailyKey::for_day(Tek::from_bytes([3; 16]), EnIntervalNumber::new(2_650_040));
        s.insert_key(&k, 1).unwrap();
        assert_eq!(s.keys().unwrap(), vec![k.clone()]);
        assert_eq!(s.key_starting(k.rolling_start).unwrap(), Some(k.clone()));
        assert!(s.insert_key(&k, 2).is_err(), "one key per day");
        let sight = Sighting {
            rpi: Rpi([1; 16]),
            aem: Aem([2; 4]),
            rssi: -70,
            at: 1_600_000_000,
            seconds: 240,
        };
        s.insert_sightings(&[
            sight,
            Sighting {
                at: 1_600_000_999,
                ..sight
            },
        ])
        .unwrap();
        assert_eq!(s.sightings().unwrap()[0], sight);
        assert_eq!(s.delete_sightings_before(1_600_000_500).unwrap(), 1);
        assert_eq!(s.sighting_count().unwrap(), 1);
        assert_eq!(
            s.delete_keys_before(EnIntervalNumber::new(2_650_033))
                .unwrap(),
            1
        );
    }

    #[test]
    fn settings_and_schema_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open(dir.path(), false),
            Err(Error::NotInitialised { .. })
        ));
        let s = Store::open(dir.path(), true).unwrap();
        s.set("x", &vec![1, 2]).unwrap();
        drop(s);
        let s = Store::open(dir.path(), false).unwrap();
        assert_eq!(s.get::<Vec<i32>>("x").unwrap(), Some(vec![1, 2]));
        assert_eq!(s.get::<i32>("y").unwrap(), None);
    }
}
