//! The test harness of the storage crates: "One behaviour suite run against
//! every database backend, each test on its own database" (STYLE.md).
//! SQLite always; PostgreSQL when `COCOA_TEST_DATABASE_URL` names a server
//! (`scripts/with-postgres` starts a throwaway one), where each call makes a
//! fresh database. Under CI a missing URL fails instead of skipping.
#![allow(clippy::expect_used)]

use sqlx::Connection;

/// A database for one test.
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// `sqlite` or `postgres`, for assertion messages.
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

/// Every backend to test, each a fresh database named after `name` (the
/// crate: `issuer`, `keyserver`).
pub async fn backends(name: &str) -> Vec<TestDb> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut v = vec![TestDb {
        url: crate::sqlite_url(&dir.path().join(format!("{name}.sqlite3"))),
        label: "sqlite",
        _dir: Some(dir),
    }];
    match std::env::var("COCOA_TEST_DATABASE_URL") {
        Ok(admin) => v.push(TestDb {
            url: fresh_postgres(&admin, name).await,
            label: "postgres",
            _dir: None,
        }),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("COCOA_TEST_DATABASE_URL is not set under CI: run through scripts/with-postgres")
        }
        Err(_) => eprintln!(
            "SKIP postgres: COCOA_TEST_DATABASE_URL not set (run via scripts/with-postgres)"
        ),
    }
    v
}

/// Creates a database `{name}_test_{random}` on the server of `admin`;
/// returns its URL.
pub async fn fresh_postgres(admin: &str, name: &str) -> String {
    sqlx::any::install_default_drivers();
    let db = format!("{name}_test_{:016x}", rand::random::<u64>());
    let mut c = sqlx::AnyConnection::connect(admin)
        .await
        .expect("COCOA_TEST_DATABASE_URL reachable");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut c)
        .await
        .expect("CREATE DATABASE");
    c.close().await.expect("closing the admin connection");
    let (base, _) = admin
        .rsplit_once('/')
        .expect("COCOA_TEST_DATABASE_URL ends with /database");
    format!("{base}/{db}")
}
