//! Operations endpoints: `/healthz` (the process runs), `/readyz` (the
//! database answers), `/metrics`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{backends, start};

#[tokio::test]
async fn readyz_follows_the_database_and_healthz_the_process() {
    for db in backends().await {
        let h = start(&db).await;
        let get = |path: &'static str| {
            let url = format!("{}{path}", h.base);
            let http = h.http.clone();
            async move {
                let r = http.get(url).send().await.unwrap();
                (r.status().as_u16(), r.text().await.unwrap())
            }
        };
        assert_eq!(get("/healthz").await, (200, "ok".into()), "{}", h.label);
        assert_eq!(get("/readyz").await, (200, "ready".into()), "{}", h.label);
        // The database goes away: not ready, still alive.
        h.app.issuer.store().close().await;
        assert_eq!(get("/readyz").await.0, 503, "{}", h.label);
        assert_eq!(get("/healthz").await.0, 200, "{}", h.label);
        let (status, metrics) = get("/metrics").await;
        assert_eq!(status, 200);
        assert!(metrics.contains("issuer_verify_failed_total"), "{metrics}");
    }
}
