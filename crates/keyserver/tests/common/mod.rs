//! Shared test harness: every behaviour test runs against SQLite and, when
//! `COCOA_TEST_DATABASE_URL` is set (scripts/with-postgres), PostgreSQL.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use api_types::publish::{PublishKey, PublishRequest, PublishResponse};
use chrono::TimeZone;
use en_protocol::export::{SignatureInfo, SoftwareSigner};
use en_protocol::time::FixedClock;
use keyserver::export::{ExportSettings, Exporter};
use keyserver::http::App;
use keyserver::publish::{Keyserver, Settings};
use keyserver::storage::ExportStorage;
use keyserver::store::{NewPublish, Store, StoredKey};
use keyserver::testkit::{Minter, daily_keys, publish_request};
use keyserver::trust::{Policy, Trust};
use keyserver::validate::KeyLimits;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// 2020-12-16 10:00 JST, the seed's date.
pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2020, 12, 16, 1, 0, 0).unwrap()
}

pub use store_support::testing::TestDb;

/// Every backend to test, each a fresh database (see `store_support::testing`).
pub async fn backends() -> Vec<TestDb> {
    store_support::testing::backends("keyserver").await
}

/// Settings of the test exporter: hourly windows, 2 h minimum age.
pub fn export_settings() -> ExportSettings {
    ExportSettings::from(&keyserver::config::ExportConfig::default())
}

/// A running key server on a real socket, with a trusted local issuer.
pub struct Harness {
    pub app: Arc<App>,
    pub store: Store,
    pub clock: Arc<FixedClock>,
    pub minter: Minter,
    pub signer: SoftwareSigner,
    pub base: String,
    pub http: reqwest::Client,
    pub rng: ChaCha20Rng,
    pub label: &'static str,
    pub storage: ExportStorage,
    /// A second issuer, trusted under [`CANARY_HA`], whose keys go to the
    /// region [`CANARY_REGION`].
    pub canary: Minter,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// Health authority id of the harness's issuer.
pub const HA: &str = "cocoa";
/// Health authority id of the canary issuer.
pub const CANARY_HA: &str = "canary-probe";
/// Its export region.
pub const CANARY_REGION: &str = "canary";

pub async fn start(db: &TestDb) -> Harness {
    start_with(db, export_settings()).await
}

pub async fn start_with(db: &TestDb, settings: ExportSettings) -> Harness {
    let store = Store::connect(&db.url, 4).await.unwrap();
    let clock = Arc::new(FixedClock::new(t0()));
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let minter = Minter::generate(&mut rng, "cocoa-issuer", "cocoa-keyserver");
    let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
    let canary = Minter::generate(
        &mut ChaCha20Rng::seed_from_u64(13),
        "canary-issuer",
        "cocoa-keyserver",
    );
    let storage = ExportStorage::memory();
    let exporter = Arc::new(Exporter::new(
        store.clone(),
        storage.clone(),
        vec![signer.clone()],
        settings,
        clock.clone(),
        Box::new(ChaCha20Rng::seed_from_u64(11)),
    ));
    let keyserver = Keyserver::new(
        store.clone(),
        Trust::new(vec![
            minter.trusted_issuer(HA),
            canary
                .trusted_issuer(CANARY_HA)
                .with_region(Some(CANARY_REGION.into())),
        ]),
        clock.clone(),
        Settings {
            policy: Policy {
                audience: "cocoa-keyserver".into(),
                skew_seconds: 60,
            },
            limits: KeyLimits::default(),
            region: "440".into(),
        },
    );
    let app = Arc::new(App::new(
        keyserver,
        storage.clone(),
        exporter,
        5,
        64 * 1024,
        Box::new(ChaCha20Rng::seed_from_u64(3)),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router =
        keyserver::http::router(app.clone()).merge(keyserver::http::ops_router(app.clone()));
    tokio::spawn(async move {
        // As `keyserver::http::serve` does: addresses forgotten at accept.
        http_serve::serve(
            listener,
            router,
            http_serve::Limits::default(),
            http_serve::Addresses::Forget,
            async {
                let _ = rx.await;
            },
        )
        .await;
    });
    Harness {
        app,
        store,
        clock,
        minter,
        signer,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        rng,
        label: db.label,
        storage,
        canary,
        shutdown: Some(tx),
    }
}

impl Harness {
    pub fn now(&self) -> i64 {
        self.clock.now_ts()
    }

    pub fn now_interval(&self) -> u32 {
        (self.now() / 600) as u32
    }

    /// `n` keys of the days before today.
    pub fn keys(&mut self, n: u32) -> Vec<PublishKey> {
        let now = self.now_interval();
        daily_keys(&mut self.rng, n, now)
    }

    /// A valid request for `keys`, certificate issued now.
    pub fn request(&mut self, keys: Vec<PublishKey>) -> PublishRequest {
        let now = self.now();
        publish_request(&mut self.rng, &self.minter, HA, keys, "confirmed", now)
    }

    /// POSTs a body to `/v1/publish`; returns status, parsed answer and raw length.
    pub async fn post(&self, body: Vec<u8>, chaff: bool) -> (u16, PublishResponse, usize) {
        let mut req = self
            .http
            .post(format!("{}/v1/publish", self.base))
            .header("content-type", "application/json")
            .body(body);
        if chaff {
            req = req.header("X-Chaff", "1");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let parsed = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&bytes)));
        (status, parsed, bytes.len())
    }

    pub async fn publish(&self, req: &PublishRequest) -> (u16, PublishResponse) {
        let (s, r, _) = self.post(serde_json::to_vec(req).unwrap(), false).await;
        (s, r)
    }

    /// Publishes `keys` with a fresh certificate; returns the status.
    pub async fn publish_keys(&mut self, keys: Vec<PublishKey>) -> u16 {
        let req = self.request(keys);
        self.publish(&req).await.0
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub fn exporter(&self) -> &Exporter {
        &self.app.exporter
    }
}

/// Reading the fixed clock as unix seconds.
pub trait NowTs {
    fn now_ts(&self) -> i64;
}

impl NowTs for FixedClock {
    fn now_ts(&self) -> i64 {
        en_protocol::time::Clock::now(self).timestamp()
    }
}

/// Stores keys of the main region as one publish of `hour`, bypassing the API.
pub async fn insert(store: &Store, keys: &[StoredKey], digest: &str, hour: i64) {
    store
        .record_publish(&NewPublish {
            cert_digest: digest,
            keys_digest: digest,
            keys,
            warnings: &[],
            created_at: hour,
            day: Some("2020-12-16"),
            region: "440",
        })
        .await
        .unwrap();
}

/// An object of the export store as text.
pub async fn text(storage: &ExportStorage, path: &str) -> String {
    let bytes = storage.get(path).await.unwrap().unwrap().bytes;
    String::from_utf8(bytes.to_vec()).unwrap()
}
