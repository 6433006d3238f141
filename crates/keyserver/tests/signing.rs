//! Export signing keys: generated once and kept in the database, or loaded
//! from configured PKCS#8 PEM; several keys sign every file (rotation).
#![allow(clippy::unwrap_used)]

mod common;

use en_protocol::export::{
    SignatureInfo, SoftwareSigner, TekSignatureList, VerificationKey, read_zip, verify,
};
use keyserver::config::{ExportConfig, SigningKeyConfig};
use keyserver::signing::{load_signers, public_keys};
use keyserver::store::{BatchRow, KeyRow, Store};
use rand::SeedableRng;

/// The key server secret of these tests.
const SECRET: &[u8] = b"keyserver-test-secret-0123456789abcdef";

/// The stored private key column of every generated key.
async fn stored_privates(store: &Store) -> Vec<String> {
    use sqlx::Row as _;
    sqlx::query("SELECT private_pkcs8_pem FROM export_signing_keys ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect()
}

/// "A copied database or backup alone is not enough" (issue 12, finding
/// 1): the generated key is stored sealed, no PEM in the row, and a key
/// server with another secret refuses to start rather than sign.
#[tokio::test]
async fn a_copied_database_without_its_secret_cannot_sign() {
    for db in common::backends().await {
        let store = Store::connect(&db.url, 2).await.unwrap();
        let config = ExportConfig::default();
        let signers = load_signers(&config, &store, 0, Some(SECRET))
            .await
            .unwrap();
        let stored = stored_privates(&store).await;
        assert_eq!(stored.len(), 1);
        assert!(stored[0].starts_with("sealed:v1:"), "{}", db.label);
        assert!(!stored[0].contains("PRIVATE KEY"), "{}", db.label);
        let e = load_signers(
            &config,
            &store,
            1,
            Some(b"another-secret-0123456789abcdefghij"),
        )
        .await
        .expect_err("another secret must not open the key");
        assert!(
            format!("{e:#}").contains("does not open with this server's secret"),
            "{e:#}"
        );
        // Without a secret (a shared database, none configured) it is not
        // usable either, and the message says what to configure.
        let e = load_signers(&config, &store, 1, None)
            .await
            .expect_err("a sealed key needs its secret");
        assert!(format!("{e:#}").contains("keyserver.secret"), "{e:#}");
        // Nothing was replaced: the right secret still gives the same key.
        let again = load_signers(&config, &store, 2, Some(SECRET))
            .await
            .unwrap();
        assert_eq!(public_keys(&signers).unwrap(), public_keys(&again).unwrap());
    }
}

/// A key an older version stored as plain PEM is sealed at the next start
/// and stays the same key (phones keep verifying the files).
#[tokio::test]
async fn a_plain_key_of_an_older_version_is_sealed_and_kept() {
    for db in common::backends().await {
        let store = Store::connect(&db.url, 2).await.unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let old = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
        let pem = old.to_pkcs8_pem().unwrap().to_string();
        store
            .insert_first_signing_key(
                &keyserver::store::SigningKeyRow {
                    key_id: "440".into(),
                    key_version: "v1".into(),
                    private_pkcs8_pem: pem.clone(),
                },
                0,
            )
            .await
            .unwrap();
        let signers = load_signers(&ExportConfig::default(), &store, 1, Some(SECRET))
            .await
            .unwrap();
        assert_eq!(
            public_keys(&signers).unwrap(),
            public_keys(std::slice::from_ref(&old)).unwrap(),
            "{}: the same key",
            db.label
        );
        let stored = stored_privates(&store).await;
        assert!(stored[0].starts_with("sealed:v1:"), "{}", db.label);
        assert!(!stored[0].contains(&pem[30..60]), "{}", db.label);
    }
}

#[tokio::test]
async fn a_generated_key_is_kept_and_reused() {
    for db in common::backends().await {
        let store = Store::connect(&db.url, 2).await.unwrap();
        let config = ExportConfig::default();
        let first = load_signers(&config, &store, 0, Some(SECRET))
            .await
            .unwrap();
        let again = load_signers(&config, &store, 1, Some(SECRET))
            .await
            .unwrap();
        assert_eq!(first.len(), 1, "{}", db.label);
        assert_eq!(
            public_keys(&first).unwrap(),
            public_keys(&again).unwrap(),
            "the same key on every start"
        );
        let (info, pem) = &public_keys(&first).unwrap()[0];
        assert_eq!(
            (
                info.verification_key_id.as_str(),
                info.verification_key_version.as_str()
            ),
            ("440", "v1")
        );
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}

#[tokio::test]
async fn configured_keys_all_sign_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
    let old = SoftwareSigner::generate(&mut rng, SignatureInfo::default());
    let new = SoftwareSigner::generate(&mut rng, SignatureInfo::default());
    let old_file = dir.path().join("old.pem");
    std::fs::write(&old_file, old.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let config = ExportConfig {
        signing_keys: vec![
            SigningKeyConfig {
                pem_file: Some(old_file),
                pem: None,
                key_id: "440".into(),
                key_version: "v1".into(),
            },
            SigningKeyConfig {
                pem_file: None,
                pem: Some(new.to_pkcs8_pem().unwrap().to_string().into()),
                key_id: "440".into(),
                key_version: "v2".into(),
            },
        ],
        ..ExportConfig::default()
    };
    let db = common::backends().await.remove(0);
    let store = Store::connect(&db.url, 2).await.unwrap();
    let signers = load_signers(&config, &store, 0, Some(SECRET))
        .await
        .unwrap();
    assert!(
        store.signing_keys().await.unwrap().is_empty(),
        "none generated"
    );

    let batch = BatchRow {
        id: 1,
        region: "440".into(),
        start_timestamp: 1_608_080_400,
        end_timestamp: 1_608_084_000,
        status: "pending".into(),
    };
    let keys = vec![KeyRow {
        key_data: [5; 16],
        rolling_start: 2_680_000,
        rolling_period: 144,
        transmission_risk: 2,
        report_type: 1,
    }];
    let files =
        keyserver::export::build_batch(&batch, keys, Vec::new(), &signers, 500_000).unwrap();
    let archive = read_zip(&files[0].zip).unwrap();
    let sigs = TekSignatureList::decode(&archive.export_sig).unwrap();
    assert_eq!(sigs.signatures.len(), 2);
    let versions: Vec<_> = sigs
        .signatures
        .iter()
        .map(|s| s.signature_info.verification_key_version.as_str())
        .collect();
    assert_eq!(versions, ["v1", "v2"]);
    for key in [&old, &new] {
        let public = VerificationKey::from_public_key_pem(&key.public_key_pem().unwrap()).unwrap();
        assert!(verify(&archive.export_bin, &sigs, &[public]).is_some());
    }
    // A bad key is refused at start, not at the first export.
    let bad = ExportConfig {
        signing_keys: vec![SigningKeyConfig {
            pem_file: None,
            pem: Some("not a key".to_owned().into()),
            key_id: "440".into(),
            key_version: "v1".into(),
        }],
        ..ExportConfig::default()
    };
    assert!(load_signers(&bad, &store, 0, Some(SECRET)).await.is_err());
}
