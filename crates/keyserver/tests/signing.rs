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

#[tokio::test]
async fn a_generated_key_is_kept_and_reused() {
    for db in common::backends().await {
        let store = Store::connect(&db.url, 2).await.unwrap();
        let config = ExportConfig::default();
        let first = load_signers(&config, &store, 0).await.unwrap();
        let again = load_signers(&config, &store, 1).await.unwrap();
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
    let signers = load_signers(&config, &store, 0).await.unwrap();
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
    assert!(load_signers(&bad, &store, 0).await.is_err());
}
