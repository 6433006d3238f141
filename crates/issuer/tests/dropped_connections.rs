//! Issue 12, finding 7: "When the client resets the connection during
//! `POST /api/v1/cases/{id}/processing-number`, 23 of 30 keys answered 409
//! `request_in_progress` forever and 8 issuances stayed delivery `pending`."
//! Reproduced with a gateway that takes 300 ms to accept each SMS and
//! clients that reset their connection while it is sending, on SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Options, backends, case_json, slow_sms_gateway, start_with, twilio_delivery};
use issuer::store::IdempotencyBegin;
use tokio::io::AsyncWriteExt as _;

#[tokio::test]
async fn a_reset_during_issuance_finishes_the_work_and_the_retry_gets_the_answer() {
    const N: usize = 12;
    let (gateway, sent) = slow_sms_gateway(Duration::from_millis(300)).await;
    for db in backends().await {
        *sent.lock().unwrap() = 0;
        let h = start_with(
            &db,
            Options {
                delivery: Some(twilio_delivery(&gateway)),
                ..Default::default()
            },
        )
        .await;
        let mut cases = Vec::new();
        for _ in 0..N {
            cases.push(h.create_case(&case_json()).await);
        }
        // Every request sent in full, then the connection reset (SO_LINGER
        // 0) while the gateway is still taking the SMS, all at once.
        let addr = h.base.trim_start_matches("http://").to_owned();
        let mut resets = Vec::new();
        for (i, case_id) in cases.iter().enumerate() {
            let req = format!(
                "POST /api/v1/cases/{case_id}/processing-number HTTP/1.1\r\nhost: x\r\n\
                 x-api-key: {}\r\nidempotency-key: drop-{i}\r\ncontent-length: 0\r\n\r\n",
                h.admin_key
            );
            let addr = addr.clone();
            resets.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(req.as_bytes()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                s.set_zero_linger().unwrap();
                drop(s);
            }));
        }
        for r in resets {
            r.await.unwrap();
        }
        // The retries with the same keys: each gets the original answer
        // (200 sent) once the detached work is done, never a lasting 409.
        for (i, case_id) in cases.iter().enumerate() {
            let mut answer = h.issue(*case_id, &format!("drop-{i}")).await;
            for _ in 0..50 {
                if answer.status != 409 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                answer = h.issue(*case_id, &format!("drop-{i}")).await;
            }
            assert_eq!(
                answer.status, 200,
                "{}: key drop-{i}: {:?}",
                h.label, answer.body
            );
            assert_eq!(answer.body["status"], "sent", "{}", h.label);
        }
        assert_eq!(
            *sent.lock().unwrap(),
            N,
            "{}: one SMS per key, none twice",
            h.label
        );
        use sqlx::Row as _;
        let pending: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM issuances WHERE delivery_status = 'pending'")
                .fetch_one(h.app.issuer.store().pool())
                .await
                .unwrap()
                .try_get("n")
                .unwrap();
        assert_eq!(pending, 0, "{}: no delivery left pending", h.label);
    }
}

/// A key left in progress by a process that stopped mid-way is taken over
/// by a retry after two minutes, by one retry only.
#[tokio::test]
async fn a_key_left_in_progress_by_a_stopped_process_expires() {
    for db in backends().await {
        let h = start_with(&db, Options::default()).await;
        let store = h.app.issuer.store();
        assert_eq!(
            store.begin_idempotent(1, "k", "hash", 1_000).await.unwrap(),
            IdempotencyBegin::New
        );
        assert_eq!(
            store.begin_idempotent(1, "k", "hash", 1_100).await.unwrap(),
            IdempotencyBegin::InProgress,
            "{}: still within its two minutes",
            h.label
        );
        assert_eq!(
            store
                .begin_idempotent(1, "k", "other", 1_200)
                .await
                .unwrap(),
            IdempotencyBegin::Mismatch,
            "{}: another request never takes a key over",
            h.label
        );
        assert_eq!(
            store.begin_idempotent(1, "k", "hash", 1_121).await.unwrap(),
            IdempotencyBegin::New,
            "{}: expired, taken over",
            h.label
        );
        assert_eq!(
            store.begin_idempotent(1, "k", "hash", 1_122).await.unwrap(),
            IdempotencyBegin::InProgress,
            "{}: by one retry only",
            h.label
        );
    }
}

/// An issuance whose delivery a stop left `pending` is withdrawn at the
/// next start: never a live number that nobody is known to have received.
#[tokio::test]
async fn a_delivery_left_pending_by_a_stop_is_withdrawn() {
    for db in backends().await {
        let h = start_with(&db, Options::default()).await;
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let store = h.app.issuer.store();
        sqlx::query("UPDATE issuances SET delivery_status = 'pending'")
            .execute(store.pool())
            .await
            .unwrap();
        let now = h.app.issuer.now();
        // A fresh one (another replica may be sending it) is left alone.
        assert_eq!(
            store
                .fail_interrupted_deliveries(now - 600, now)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store
                .fail_interrupted_deliveries(now + 1, now)
                .await
                .unwrap(),
            1
        );
        use sqlx::Row as _;
        let row = sqlx::query("SELECT state, delivery_status, delivery_error FROM issuances")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("state").unwrap(), "expired");
        assert_eq!(
            row.try_get::<String, _>("delivery_status").unwrap(),
            "failed"
        );
        assert!(
            row.try_get::<String, _>("delivery_error")
                .unwrap()
                .starts_with("interrupted")
        );
    }
}

/// Many retries of an expired in-progress key, all at once: exactly one
/// takes it over (the conditional update on `created_at`), the rest are
/// told it is in progress.
#[tokio::test]
async fn retries_released_together_take_an_expired_key_over_once() {
    for db in backends().await {
        let h = start_with(&db, Options::default()).await;
        let store = h.app.issuer.store().clone();
        assert_eq!(
            store
                .begin_idempotent(1, "burst", "hash", 1_000)
                .await
                .unwrap(),
            IdempotencyBegin::New
        );
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (store, barrier) = (store.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .begin_idempotent(1, "burst", "hash", 1_200)
                    .await
                    .unwrap()
            }));
        }
        let mut new = 0;
        for t in tasks {
            match t.await.unwrap() {
                IdempotencyBegin::New => new += 1,
                IdempotencyBegin::InProgress => {}
                other => panic!("{}: {other:?}", h.label),
            }
        }
        assert_eq!(new, 1, "{}: one retry takes the key over", h.label);
    }
}
