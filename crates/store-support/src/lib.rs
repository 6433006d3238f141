//! Database setup shared by the issuer and the key server: "Storage behind a
//! trait, backend chosen from the URL scheme, unknown schemes refused; SQLite
//! with WAL and busy_timeout set explicitly" (STYLE.md).
//!
//! Both crates run the same SQL on SQLite and PostgreSQL through sqlx's
//! `Any` driver with `$1` placeholders; only their migrations differ, one
//! folder per backend. [`connect`] opens the pool and runs the right set.
//! The `testing` feature adds [`testing`], the harness that runs one
//! behaviour suite against both backends.
#![forbid(unsafe_code)]

use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;

pub mod private;
pub mod sealed;
#[cfg(feature = "testing")]
pub mod testing;

/// How long a SQLite connection waits for a lock before failing.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Failures opening a database.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The database URL names a backend cocoa-rs does not have.
    #[error("unsupported database URL scheme {0:?}: use sqlite: or postgres:")]
    UnknownScheme(String),
    /// A database error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The SQLite file could not be made private (0600).
    #[error(transparent)]
    Private(#[from] private::PrivateError),
}

/// The database backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// The backend of a database URL; unknown schemes are refused.
    pub fn from_url(url: &str) -> Result<Self, SetupError> {
        match url.split(':').next().unwrap_or_default() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(SetupError::UnknownScheme(other.to_owned())),
        }
    }
}

/// A crate's migrations, one set per backend.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// `migrations/sqlite`.
    pub sqlite: &'static Migrator,
    /// `migrations/postgres`.
    pub postgres: &'static Migrator,
}

/// The calling crate's migrations: `migrations/sqlite` and
/// `migrations/postgres` under its manifest folder, embedded at build time.
#[macro_export]
macro_rules! migrations {
    () => {{
        static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/sqlite");
        static POSTGRES: ::sqlx::migrate::Migrator = ::sqlx::migrate!("./migrations/postgres");
        $crate::Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
        }
    }};
}

/// Whether a database error is a unique-constraint violation (the same
/// answer on both backends).
pub fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether a database error means "cannot reach the database now" rather
/// than a bug: no connection within the pool's wait, a broken connection, or
/// PostgreSQL's connection-exception (08…) and shutdown (57P0…) classes.
pub fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")),
        _ => false,
    }
}

/// The SQLite URL of a file, created when missing.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) with up
/// to `max_connections`, sets SQLite's WAL journal, busy timeout and
/// `synchronous = NORMAL`, then `sqlite_pragmas`, on every connection, and
/// runs the backend's migrations (see [`migrations!`]).
pub async fn connect(
    url: &str,
    max_connections: u32,
    sqlite_pragmas: &'static [&'static str],
    migrations: Migrations,
) -> Result<(AnyPool, Backend), SetupError> {
    let backend = Backend::from_url(url)?;
    // The database file 0600 before SQLite opens it: its -wal and -shm
    // take the same bits (issue 12, finding 1).
    let file = private::sqlite_file(url).filter(|f| f.exists() || url.contains("mode=rwc"));
    if let Some(f) = &file {
        private::private_file(f)?;
    }
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url)?;
    let extra = sqlite_pragmas;
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    let common = [
                        "PRAGMA journal_mode = WAL".to_owned(),
                        format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"),
                        "PRAGMA synchronous = NORMAL".to_owned(),
                    ];
                    for pragma in common
                        .iter()
                        .map(String::as_str)
                        .chain(extra.iter().copied())
                    {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    match backend {
        Backend::Sqlite => migrations.sqlite.run(&pool).await?,
        Backend::Postgres => migrations.postgres.run(&pool).await?,
    }
    if let Some(f) = &file {
        private::private_file(f)?;
    }
    Ok((pool, backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_told_apart_from_a_bug() {
        assert!(unavailable(&sqlx::Error::PoolTimedOut));
        assert!(unavailable(&sqlx::Error::PoolClosed));
        assert!(unavailable(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!unavailable(&sqlx::Error::RowNotFound));
        assert!(!unavailable(&sqlx::Error::ColumnNotFound("x".into())));
    }

    #[test]
    fn schemes_choose_the_backend_and_unknown_ones_are_refused() {
        assert_eq!(
            Backend::from_url("sqlite://x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db").ok(),
            Some(Backend::Postgres)
        );
        for url in ["mysql://h/x", "file:///x", "", "redis://x"] {
            assert!(
                matches!(Backend::from_url(url), Err(SetupError::UnknownScheme(_))),
                "{url}"
            );
        }
        assert_eq!(
            sqlite_url(std::path::Path::new("/d/k.sqlite3")),
            "sqlite:///d/k.sqlite3?mode=rwc"
        );
    }
}
