//! Abuse of the device API (issue 7): a storm of verifies of one number
//! yields exactly one token; a client guessing numbers gets nowhere, is
//! throttled, and the failed-verification metric shows it. On SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{Options, backends, case_json, start, start_with};

/// Verifies `code` `n` times at once; returns the statuses.
async fn storm(h: &Arc<common::Harness>, code: &str, n: usize) -> Vec<u16> {
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let h = h.clone();
        let code = code.to_owned();
        tasks.push(tokio::spawn(async move { h.verify(&code).await.status }));
    }
    let mut statuses = Vec::with_capacity(n);
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_verifies_of_one_number_give_exactly_one_token() {
    for db in backends().await {
        // Without throttling every request reaches the claim: the database
        // alone decides, and exactly one wins.
        let h = Arc::new(start(&db).await);
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, _) = h.last_number();
        let statuses = storm(&h, &number, 1_000).await;
        assert_eq!(count(&statuses, 200), 1, "{}: {statuses:?}", h.label);
        assert_eq!(count(&statuses, 400), 999, "{}", h.label);
        assert_eq!(
            h.count("issuances WHERE token_hmac IS NOT NULL").await,
            1,
            "{}",
            h.label
        );

        // With the production limits most are throttled; still one token
        // at most, never two.
        let h = Arc::new(
            start_with(
                &db,
                Options {
                    limits: issuer::limits::LimitsConfig::default(),
                    ..Default::default()
                },
            )
            .await,
        );
        let case_id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(case_id, "a").await.status, 200);
        let (number, _) = h.last_number();
        let statuses = storm(&h, &number, 1_000).await;
        assert!(count(&statuses, 200) <= 1, "{}: {statuses:?}", h.label);
        assert!(
            count(&statuses, 429) >= 900,
            "{}: throttled: 200 {} 400 {} 429 {}",
            h.label,
            count(&statuses, 200),
            count(&statuses, 400),
            count(&statuses, 429)
        );
        assert_eq!(
            count(&statuses, 200) + count(&statuses, 400) + count(&statuses, 429),
            1_000
        );
        // (The database is shared with the first harness: count this case's.)
        assert!(
            h.count(&format!(
                "issuances WHERE token_hmac IS NOT NULL AND case_id = {case_id}"
            ))
            .await
                <= 1,
            "{}",
            h.label
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_random_numbers_from_one_client_find_nothing_and_are_throttled() {
    use rand::{Rng as _, SeedableRng as _};
    for db in backends().await {
        let h = Arc::new(
            start_with(
                &db,
                Options {
                    limits: issuer::limits::LimitsConfig::default(),
                    ..Default::default()
                },
            )
            .await,
        );
        // Live numbers to find: 20 cases, each with a number.
        let mut live = Vec::new();
        for i in 0..20 {
            let mut c = case_json();
            c["mobile"] = format!("090-1234-{:04}", 6000 + i).into();
            let id = h.create_case(&c).await;
            assert_eq!(h.issue(id, &format!("k{i}")).await.status, 200);
            live.push(h.last_number().0);
        }
        let failed_before = h.app.limits.failed_total();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let guesses: Vec<String> = (0..10_000)
            .map(|_| format!("{:08}", rng.gen_range(0..100_000_000u32)))
            .filter(|g| !live.contains(g))
            .collect();
        let mut statuses = Vec::with_capacity(guesses.len());
        for chunk in guesses.chunks(100) {
            let mut tasks = Vec::new();
            for g in chunk {
                let h = h.clone();
                let g = g.clone();
                tasks.push(tokio::spawn(async move { h.verify(&g).await.status }));
            }
            for t in tasks {
                statuses.push(t.await.unwrap());
            }
        }
        assert_eq!(count(&statuses, 200), 0, "{}: no guess succeeds", h.label);
        let refused = count(&statuses, 400);
        let throttled = count(&statuses, 429);
        assert_eq!(refused + throttled, guesses.len());
        // The failure budget (2) and the request bucket (60/min) stop the
        // client almost at once.
        assert!(
            refused <= 60,
            "{}: only {refused} guesses were evaluated",
            h.label
        );
        assert!(throttled >= guesses.len() - 60, "{}", h.label);
        let failed = h.app.limits.failed_total() - failed_before;
        assert!(failed >= 2, "{}: failed verifications counted", h.label);
        // The live numbers were not disturbed: none was claimed.
        assert_eq!(
            h.count("issuances WHERE token_hmac IS NOT NULL").await,
            0,
            "{}",
            h.label
        );
    }
}
