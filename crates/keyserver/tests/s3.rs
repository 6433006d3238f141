//! Export storage on a real S3 API server (moto's server mode, started by
//! the test on a free port): files and indexes land under the prefix with
//! their content type and cache policy, and read back and verify. Skipped
//! with a note when `python3 -m moto.server` is not installed
//! (`pip install 'moto[server]'`).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::NowTs;
use en_protocol::export::{
    SignatureInfo, SoftwareSigner, TekSignatureList, VerificationKey, read_zip, verify,
};
use keyserver::config::{StorageConfig, StorageKind};
use keyserver::export::{CycleOptions, Exporter};
use keyserver::storage::ExportStorage;
use keyserver::store::Store;
use rand::SeedableRng;

#[tokio::test]
async fn exports_go_to_an_s3_bucket_with_their_headers() {
    let Some(moto) = keyserver::testkit::MotoServer::start().unwrap() else {
        return;
    };
    let endpoint = moto.endpoint.clone();
    let http = reqwest::Client::new();
    let created = http
        .put(format!("{endpoint}/cocoa-exports"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.status());
    let storage = ExportStorage::from_config(
        &StorageConfig {
            kind: StorageKind::S3,
            bucket: Some("cocoa-exports".into()),
            prefix: Some("c19r".into()),
            endpoint: Some(endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".to_owned().into()),
            allow_http: true,
            ..StorageConfig::default()
        },
        std::path::Path::new("/nonexistent"),
    )
    .unwrap();

    let db = common::backends().await.remove(0);
    let store = Store::connect(&db.url, 2).await.unwrap();
    let clock = Arc::new(en_protocol::time::FixedClock::new(common::t0()));
    let now = clock.now_ts();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let keys = keyserver::testkit::stored_keys(&mut rng, 5, now);
    common::insert(&store, &keys, "c", now - now % 3600).await;
    let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
    let exporter = Exporter::new(
        store,
        storage.clone(),
        vec![signer.clone()],
        common::export_settings(),
        clock.clone(),
        Box::new(rng),
    );
    clock.advance(chrono::Duration::hours(3));
    let r = exporter
        .run_cycle(CycleOptions { min_age: 7200 })
        .await
        .unwrap();
    assert_eq!(r.files.len(), 1);
    let zip_path = &r.files[0];
    assert_eq!(
        storage.list().await.unwrap(),
        [zip_path.clone(), "440/list.json".into(), "index.txt".into()]
    );

    // What a CDN in front of the bucket would serve: the object attributes.
    let zip = storage.get(zip_path).await.unwrap().unwrap();
    assert_eq!(zip.content_type.as_deref(), Some("application/zip"));
    assert_eq!(zip.cache_control.as_deref(), Some("public, max-age=86400"));
    let archive = read_zip(&zip.bytes).unwrap();
    let public = VerificationKey::from_public_key_pem(&signer.public_key_pem().unwrap()).unwrap();
    let sigs = TekSignatureList::decode(&archive.export_sig).unwrap();
    assert!(verify(&archive.export_bin, &sigs, &[public]).is_some());
    let index = storage.get("index.txt").await.unwrap().unwrap();
    assert_eq!(index.cache_control.as_deref(), Some("no-cache"));
    assert_eq!(index.bytes, format!("{zip_path}\n").into_bytes());
    let list = storage.get("440/list.json").await.unwrap().unwrap();
    assert_eq!(list.content_type.as_deref(), Some("application/json"));
    // Under the prefix in the bucket.
    let listing = http
        .get(format!("{endpoint}/cocoa-exports?list-type=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains(&format!("<Key>c19r/{zip_path}</Key>")),
        "{listing}"
    );
}
