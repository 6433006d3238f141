//! The phones' configuration served beside the exports (issue 14): published versions are
//! kept append-only, the latest is served in COCOA's formats with a bundle signed by the
//! export signing key, with an entity tag. SQLite and (scripts/with-postgres) PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use en_protocol::exposure_configuration::COCOA_CONFIGURATION_JSON;
use en_protocol::risk_calculation::COCOA_RISK_CALCULATION_JSON;
use en_protocol::served_configuration::{ConfigurationBundle, verify_served};

async fn get(h: &common::Harness, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut r = h.http.get(format!("{}/{path}", h.base));
    if let Some(t) = etag {
        r = r.header("If-None-Match", t);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn published_versions_are_served_signed_and_kept_append_only() {
    for db in common::backends().await {
        let h = common::start(&db).await;
        let label = h.label;
        // Nothing published: 404 with a code (phones keep COCOA's built-in values).
        let r = get(&h, "exposure_configuration/bundle.json", None).await;
        assert_eq!(r.status(), 404, "{label}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errorCode"], "configuration_not_published");

        let v1 = h
            .store
            .publish_configuration(
                COCOA_CONFIGURATION_JSON,
                COCOA_RISK_CALCULATION_JSON,
                100,
                "alice",
                None,
            )
            .await
            .unwrap();
        let stricter = COCOA_RISK_CALCULATION_JSON.replace("1350.0", "1500.0");
        let v2 = h
            .store
            .publish_configuration(
                COCOA_CONFIGURATION_JSON,
                &stricter,
                200,
                "bob",
                Some("<html>report</html>"),
            )
            .await
            .unwrap();
        assert_eq!((v1, v2), (1, 2), "{label}");

        let config = get(&h, "exposure_configuration/configuration.json", None).await;
        assert_eq!(config.status(), 200);
        assert_eq!(config.headers()["cache-control"], "no-cache");
        let config = config.bytes().await.unwrap();
        assert_eq!(config, COCOA_CONFIGURATION_JSON.as_bytes());
        let risk = get(
            &h,
            "exposure_configuration/risk_calculation_configuration.json",
            None,
        )
        .await
        .bytes()
        .await
        .unwrap();
        assert_eq!(risk, stricter.as_bytes(), "the latest version is served");
        let b = get(&h, "exposure_configuration/bundle.json", None).await;
        let etag = b.headers()["etag"].to_str().unwrap().to_owned();
        let bundle = b.bytes().await.unwrap();
        let parsed: ConfigurationBundle = serde_json::from_slice(&bundle).unwrap();
        assert_eq!((parsed.version, parsed.published_at), (2, 200));
        assert_eq!(parsed.signatures.len(), 1, "one per export signing key");
        assert_eq!(parsed.signatures[0].key_id, "440");
        let verified =
            verify_served(&bundle, &config, &risk, &[h.signer.public_key()], None).unwrap();
        assert_eq!(verified.version, 2);
        assert_eq!(verified.risk.score_sum.value, 1500.0);
        // Revalidation: 304 while unchanged.
        let again = get(&h, "exposure_configuration/bundle.json", Some(&etag)).await;
        assert_eq!(again.status(), 304, "{label}");

        // Every version is kept with who published it and its report; none can be changed.
        let all = h.store.configurations().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].published_by, "alice");
        assert_eq!(
            all[1].simulation_report.as_deref(),
            Some("<html>report</html>")
        );
        for sql in [
            "UPDATE exposure_configurations SET published_by = 'mallory'",
            "DELETE FROM exposure_configurations",
        ] {
            assert!(
                sqlx::query(sql).execute(h.store.pool()).await.is_err(),
                "{label}: {sql} is refused"
            );
        }
        assert_eq!(h.store.configurations().await.unwrap(), all);
    }
}
