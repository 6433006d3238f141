//! Storage: backend selection, SQLite settings, the shared SQL on both backends.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use issuer::store::{Store, StoreError};
use sqlx::Row;

#[tokio::test]
async fn connecting_with_an_unknown_scheme_is_refused_and_creates_nothing() {
    // store-support's unit test covers how a URL chooses its backend; this is
    // the issuer's store on top: its own error, and no file left behind.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("issuer.sqlite3");
    let file_url = format!("file://{}", file.display());
    for url in ["mysql://localhost/x", file_url.as_str(), "", "redis://x"] {
        assert!(
            matches!(
                Store::connect(url, 1).await,
                Err(StoreError::UnknownScheme(_))
            ),
            "{url}"
        );
    }
    assert!(!file.exists(), "nothing was created");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn any_driver_binds_dollar_placeholders_on_every_backend() {
    for db in common::backends().await {
        let store = Store::connect(&db.url, 2).await.unwrap();
        let r = sqlx::query("SELECT CAST($1 AS BIGINT) + CAST($2 AS BIGINT) AS s, $3 AS t, CAST($1 AS BIGINT) * 10 AS u")
            .bind(1i64)
            .bind(2i64)
            .bind("テキスト")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(r.try_get::<i64, _>("s").unwrap(), 3, "{}", db.label);
        assert_eq!(
            r.try_get::<String, _>("t").unwrap(),
            "テキスト",
            "{}",
            db.label
        );
        assert_eq!(r.try_get::<i64, _>("u").unwrap(), 10, "{}", db.label);
    }
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_a_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&Store::sqlite_url(&dir.path().join("i.sqlite3")), 2)
        .await
        .unwrap();
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(mode, "wal");
    let timeout: i64 = sqlx::query("PRAGMA busy_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(timeout, i64::from(issuer::store::SQLITE_BUSY_TIMEOUT_MS));
    // One file.
    assert!(dir.path().join("i.sqlite3").exists());
}

#[tokio::test]
async fn migrations_are_idempotent_and_centres_round_trip() {
    for db in common::backends().await {
        let store = Store::connect(&db.url, 2).await.unwrap();
        let id = store
            .create_centre("みなと保健所", "13", 100)
            .await
            .unwrap();
        store.close().await;
        let store = Store::connect(&db.url, 2).await.unwrap();
        let mut c = store.centre(id).await.unwrap().unwrap();
        assert_eq!(c.name, "みなと保健所");
        assert_eq!(c.validity_seconds, 86_400);
        assert!(!c.auto_issue);
        c.auto_issue = true;
        c.validity_seconds = 3600;
        store.update_centre(&c).await.unwrap();
        assert_eq!(store.centre(id).await.unwrap().unwrap(), c, "{}", db.label);
        assert_eq!(store.centres().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn sqlite_and_postgresql_migrations_build_the_same_schema() {
    let dbs = common::backends().await;
    for db in &dbs {
        Store::connect(&db.url, 1).await.unwrap().close().await;
    }
    store_support::testing::assert_same_schema(&dbs).await;
}

#[tokio::test]
async fn the_schema_comparison_sees_a_column_one_backend_lacks() {
    // Two SQLite databases, one with an extra column: the comparison must
    // tell them apart, or the test above could never fail.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let url_a = Store::sqlite_url(&a.path().join("a.sqlite3"));
    let url_b = Store::sqlite_url(&b.path().join("b.sqlite3"));
    Store::connect(&url_a, 1).await.unwrap().close().await;
    let store = Store::connect(&url_b, 1).await.unwrap();
    sqlx::query("ALTER TABLE cases ADD COLUMN nickname TEXT")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let sa = store_support::testing::schema(&url_a).await.unwrap();
    let sb = store_support::testing::schema(&url_b).await.unwrap();
    assert!(
        sa.tables.contains_key("cases") && sa.tables.len() >= 8,
        "{:?}",
        sa.tables.keys()
    );
    assert_ne!(sa.tables["cases"], sb.tables["cases"]);
    assert_eq!(sa.indexes, sb.indexes);
}
