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

/// A column as the code reads it: its name, its type class (`integer`,
/// `text`, `blob`, `real`, `boolean`) and whether it may be NULL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type class, the same word on both backends for one Rust type.
    pub class: &'static str,
    /// `NOT NULL` (primary-key columns count as not null on both).
    pub not_null: bool,
}

/// What the migrations of one backend built, in words that mean the same on
/// SQLite and PostgreSQL: "A test that the SQLite and PostgreSQL migrations
/// produce the same schema (tables, columns, types as the code reads them,
/// indexes, constraints)" (issue 11). CHECK constraints and index names are
/// not compared (SQLite does not report the former in a structured way;
/// the latter are chosen by each backend for UNIQUE constraints).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Table → its columns by name (the code reads columns by name, so their
    /// order, which `ALTER TABLE` makes differ, is not compared).
    pub tables: std::collections::BTreeMap<String, Vec<Column>>,
    /// Table → its primary-key columns.
    pub primary_keys: std::collections::BTreeMap<String, Vec<String>>,
    /// (table, columns, unique) of every index besides the primary key's.
    pub indexes: std::collections::BTreeSet<(String, Vec<String>, bool)>,
    /// (table, column, referenced table, referenced column).
    pub foreign_keys: std::collections::BTreeSet<(String, String, String, String)>,
}

/// The type class of a declared SQL type, by SQLite's affinity rules and
/// PostgreSQL's `data_type` names.
fn type_class(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("bool") {
        "boolean"
    } else if t.contains("int") {
        "integer"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("real") || t.contains("floa") || t.contains("doub") || t == "numeric" {
        "real"
    } else if t.contains("blob") || t == "bytea" || t.is_empty() {
        "blob"
    } else {
        "other"
    }
}

/// Reads the schema of the database at `url` (after its migrations ran).
pub async fn schema(url: &str) -> Result<Schema, sqlx::Error> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await?;
    let mut s = Schema::default();
    if url.starts_with("sqlite:") {
        let tables: Vec<String> = sqlx::query(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .fetch_all(&mut c)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
        for t in &tables {
            let cols = sqlx::query(
                "SELECT name, type, \"notnull\", pk FROM pragma_table_info($1) ORDER BY cid",
            )
            .bind(t)
            .fetch_all(&mut c)
            .await?;
            let mut pk: Vec<(i64, String)> = Vec::new();
            let mut columns = Vec::new();
            for r in &cols {
                let name: String = r.try_get(0)?;
                let pk_pos: i64 = r.try_get(3)?;
                if pk_pos > 0 {
                    pk.push((pk_pos, name.clone()));
                }
                columns.push(Column {
                    class: type_class(&r.try_get::<String, _>(1)?),
                    not_null: r.try_get::<i64, _>(2)? != 0 || pk_pos > 0,
                    name,
                });
            }
            pk.sort();
            s.primary_keys
                .insert(t.clone(), pk.iter().map(|p| p.1.clone()).collect());
            s.tables.insert(t.clone(), columns);
            let idx = sqlx::query("SELECT name, \"unique\", origin FROM pragma_index_list($1)")
                .bind(t)
                .fetch_all(&mut c)
                .await?;
            for r in &idx {
                if r.try_get::<String, _>(2)? == "pk" {
                    continue;
                }
                let name: String = r.try_get(0)?;
                let cols = sqlx::query("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&name)
                    .fetch_all(&mut c)
                    .await?
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?;
                s.indexes
                    .insert((t.clone(), cols, r.try_get::<i64, _>(1)? != 0));
            }
        }
        for t in &tables {
            let fks =
                sqlx::query("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list($1)")
                    .bind(t)
                    .fetch_all(&mut c)
                    .await?;
            for r in &fks {
                let refd: String = r.try_get(0)?;
                // A reference without a column names the referenced primary key.
                let to = match r.try_get::<Option<String>, _>(2)? {
                    Some(to) => to,
                    None => s
                        .primary_keys
                        .get(&refd)
                        .and_then(|p| p.first().cloned())
                        .unwrap_or_default(),
                };
                s.foreign_keys.insert((t.clone(), r.try_get(1)?, refd, to));
            }
        }
    } else {
        let cols = sqlx::query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns c WHERE table_schema = 'public' \
             AND table_name NOT LIKE '\\_sqlx%' AND EXISTS (SELECT 1 FROM information_schema.tables t \
             WHERE t.table_schema = 'public' AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE') \
             ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&mut c)
        .await?;
        for r in &cols {
            let t: String = r.try_get(0)?;
            s.tables.entry(t).or_default().push(Column {
                name: r.try_get(1)?,
                class: type_class(&r.try_get::<String, _>(2)?),
                not_null: r.try_get::<String, _>(3)? == "NO",
            });
        }
        let idx = sqlx::query(
            "SELECT t.relname::text, ix.indisunique, ix.indisprimary, \
             string_agg(a.attname::text, ',' ORDER BY k.ord) \
             FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
             WHERE n.nspname = 'public' AND t.relname NOT LIKE '\\_sqlx%' \
             GROUP BY t.relname, i.relname, ix.indisunique, ix.indisprimary",
        )
        .fetch_all(&mut c)
        .await?;
        for r in &idx {
            let t: String = r.try_get(0)?;
            let cols: Vec<String> = r
                .try_get::<String, _>(3)?
                .split(',')
                .map(str::to_owned)
                .collect();
            if r.try_get::<bool, _>(2)? {
                s.primary_keys.insert(t, cols);
            } else {
                s.indexes.insert((t, cols, r.try_get(1)?));
            }
        }
        let fks = sqlx::query(
            "SELECT cl.relname::text, a.attname::text, cf.relname::text, af.attname::text \
             FROM pg_constraint c \
             JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class cf ON cf.oid = c.confrelid \
             CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(a, b) \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.a \
             JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = k.b \
             WHERE c.contype = 'f'",
        )
        .fetch_all(&mut c)
        .await?;
        for r in &fks {
            s.foreign_keys
                .insert((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
        }
        for t in s.tables.keys() {
            s.primary_keys.entry(t.clone()).or_default();
        }
    }
    for cols in s.tables.values_mut() {
        cols.sort();
    }
    c.close().await?;
    Ok(s)
}

/// Fails with the first difference, table by table, when the migrations of
/// the backends in `dbs` (each already migrated) built different schemas.
/// With only SQLite (no PostgreSQL configured) it checks nothing and says so.
pub async fn assert_same_schema(dbs: &[TestDb]) {
    let mut read = Vec::new();
    for db in dbs {
        read.push((db.label, schema(&db.url).await.expect("reading the schema")));
    }
    let Some(((first_label, first), rest)) = read.split_first() else {
        return;
    };
    assert!(!first.tables.is_empty(), "{first_label}: no tables read");
    if rest.is_empty() {
        eprintln!("SKIP schema comparison: only {first_label} is configured");
    }
    for (label, other) in rest {
        let names = |s: &Schema| s.tables.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(first),
            names(other),
            "tables: {first_label} vs {label}"
        );
        for (t, cols) in &first.tables {
            assert_eq!(
                Some(cols),
                other.tables.get(t),
                "columns of {t}: {first_label} vs {label}"
            );
        }
        assert_eq!(
            first.primary_keys, other.primary_keys,
            "primary keys: {first_label} vs {label}"
        );
        assert_eq!(
            first.indexes, other.indexes,
            "indexes: {first_label} vs {label}"
        );
        assert_eq!(
            first.foreign_keys, other.foreign_keys,
            "foreign keys: {first_label} vs {label}"
        );
    }
}
