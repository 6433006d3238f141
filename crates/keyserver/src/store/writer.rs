//! Group commit of publishes: one writer task takes every publish waiting at
//! the moment into one transaction, so that under load a publish costs a
//! fraction of a transaction's round trips and commits instead of all of
//! them. On SQLite it is also the only writer of this process, so no publish
//! sleeps in SQLite's busy handler.
//!
//! A batch: claim every publish's certificate in one statement (those used
//! before answer with the earlier result), insert each claimed publish's
//! keys, record how many were new, add the days' statistics, commit.

use std::collections::{BTreeMap, HashMap};

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{PriorPublish, Recorded, StoreError, StoredKey, insert_keys, prior_of};

/// Most publishes in one transaction.
pub const MAX_BATCH: usize = 64;

/// A publish handed to the writer.
#[derive(Debug)]
pub(crate) struct Job {
    pub cert_digest: String,
    pub keys_digest: String,
    pub keys: Vec<StoredKey>,
    pub warnings: String,
    pub created_at: i64,
    pub day: Option<String>,
    pub region: String,
    pub reply: oneshot::Sender<Result<Recorded, StoreError>>,
}

/// Starts the writer task; it ends when every sender is dropped.
pub(crate) fn spawn(
    pool: AnyPool,
    turn: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(1024);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let jobs = std::mem::take(&mut batch);
            let result = {
                let _turn = match &turn {
                    Some(m) => Some(m.lock().await),
                    None => None,
                };
                write_batch(&pool, &jobs).await
            };
            match result {
                Ok(results) => {
                    for (job, r) in jobs.into_iter().zip(results) {
                        let _ = job.reply.send(Ok(r));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    let down = matches!(&e, StoreError::Db(db) if store_support::unavailable(db));
                    tracing::error!(error = %msg, publishes = jobs.len(), "publish batch failed");
                    for job in jobs {
                        let err = if down {
                            StoreError::Unavailable(msg.clone())
                        } else {
                            StoreError::Db(sqlx::Error::Protocol(msg.clone()))
                        };
                        let _ = job.reply.send(Err(err));
                    }
                }
            }
        }
    });
    tx
}

async fn write_batch(pool: &AnyPool, jobs: &[Job]) -> Result<Vec<Recorded>, StoreError> {
    let mut tx = pool.begin().await?;
    // Claim the certificates (a write first: SQLite takes its lock at once).
    let mut sql = String::from(
        "INSERT INTO publishes (cert_digest, keys_digest, inserted, warnings, created_at) VALUES ",
    );
    for i in 0..jobs.len() {
        let b = i * 4;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, 0, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4
        ));
    }
    sql.push_str(" ON CONFLICT (cert_digest) DO NOTHING RETURNING cert_digest");
    let mut q = sqlx::query(&sql);
    for j in jobs {
        q = q
            .bind(&j.cert_digest)
            .bind(&j.keys_digest)
            .bind(&j.warnings)
            .bind(j.created_at);
    }
    let mut claimed: HashMap<String, usize> = HashMap::new();
    for r in q.fetch_all(&mut *tx).await? {
        let digest: String = r.try_get("cert_digest")?;
        // The first job with this certificate owns it; a duplicate in the
        // same batch answers like a retry.
        if let Some(i) = jobs.iter().position(|j| j.cert_digest == digest) {
            claimed.insert(digest, i);
        }
    }

    let mut inserted = vec![None; jobs.len()];
    let mut days: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (i, j) in jobs.iter().enumerate() {
        if claimed.get(&j.cert_digest) != Some(&i) {
            continue;
        }
        let n = insert_keys(&mut tx, &j.region, &j.keys).await?;
        inserted[i] = Some(n);
        if n > 0
            && let Some(day) = &j.day
        {
            let d = days.entry(day).or_default();
            d.0 += 1;
            d.1 += i64::from(n);
        }
    }

    let counted: Vec<(usize, u32)> = inserted
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.filter(|n| *n > 0).map(|n| (i, n)))
        .collect();
    if !counted.is_empty() {
        let mut sql = String::from("UPDATE publishes SET inserted = CASE cert_digest");
        for k in 0..counted.len() {
            sql.push_str(&format!(" WHEN ${} THEN ${}", 2 * k + 1, 2 * k + 2));
        }
        sql.push_str(" ELSE inserted END WHERE cert_digest IN (");
        for k in 0..counted.len() {
            if k > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", 2 * k + 1));
        }
        sql.push(')');
        let mut q = sqlx::query(&sql);
        for (i, n) in &counted {
            q = q.bind(&jobs[*i].cert_digest).bind(i64::from(*n));
        }
        q.execute(&mut *tx).await?;
    }
    for (day, (registrations, keys)) in days {
        sqlx::query(
            "INSERT INTO stats_daily (day, registrations, keys) VALUES ($1, $2, $3) \
             ON CONFLICT (day) DO UPDATE SET registrations = stats_daily.registrations + excluded.registrations, \
             keys = stats_daily.keys + excluded.keys",
        )
        .bind(day)
        .bind(registrations)
        .bind(keys)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    // Publishes whose certificate was used before: the earlier answer.
    let mut out = Vec::with_capacity(jobs.len());
    for (i, j) in jobs.iter().enumerate() {
        match inserted[i] {
            Some(n) => out.push(Recorded::New { inserted: n }),
            None => {
                let row = sqlx::query(
                    "SELECT keys_digest, inserted, warnings FROM publishes WHERE cert_digest = $1",
                )
                .bind(&j.cert_digest)
                .fetch_optional(pool)
                .await?;
                let prior: PriorPublish = match row {
                    Some(r) => prior_of(&r)?,
                    None => return Err(StoreError::Db(sqlx::Error::RowNotFound)),
                };
                out.push(Recorded::Prior(prior));
            }
        }
    }
    Ok(out)
}
