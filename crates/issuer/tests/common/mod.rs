//! Shared test harness: every behaviour test runs against SQLite and, when
//! `COCOA_TEST_DATABASE_URL` is set (scripts/with-postgres), PostgreSQL.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::TimeZone;
use en_protocol::time::FixedClock;
use issuer::delivery::{Delivery, Message, Sender};
use issuer::http::{App, TrustedProxies};
use issuer::limits::{Limits, LimitsConfig};
use issuer::portal::PortalConfig;
use issuer::service::{Issuer, Settings};
use issuer::store::{ApiKeyKind, Store};
use rand::SeedableRng;

pub mod browser;
pub mod smtp_sink;
#[allow(unused_imports)]
pub use browser::{Browser, Page, csrf, hidden};
#[allow(unused_imports)]
pub use smtp_sink::{mail_text, smtp_sink};

/// 2020-12-16 10:00 JST, the seed's date.
pub fn t0() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2020, 12, 16, 1, 0, 0).unwrap()
}

pub use store_support::testing::TestDb;

/// Every backend to test, each a fresh database (see `store_support::testing`).
pub async fn backends() -> Vec<TestDb> {
    store_support::testing::backends("issuer").await
}

/// A Twilio-compatible SMS gateway that takes `delay` per message and
/// counts the messages it accepted.
pub async fn slow_sms_gateway(delay: std::time::Duration) -> (String, Arc<Mutex<usize>>) {
    let sent = Arc::new(Mutex::new(0usize));
    let counter = sent.clone();
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                tokio::time::sleep(delay).await;
                *counter.lock().unwrap() += 1;
                (
                    axum::http::StatusCode::CREATED,
                    axum::Json(serde_json::json!({"sid": "SM1", "status": "queued"})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, sent)
}

/// Delivery of every message through the Twilio-compatible gateway at `base`.
pub fn twilio_delivery(base: &str) -> Delivery {
    let sender = issuer::delivery::TwilioSender::new(issuer::delivery::TwilioConfig {
        base_url: base.to_owned(),
        account_sid: "AC1".into(),
        auth_token: "token".to_owned().into(),
        from: "+815000000000".into(),
        status_callback: None,
    })
    .unwrap();
    Delivery::uniform(Sender::Twilio(Arc::new(sender)))
}

/// A running issuer on a real socket.
pub struct Harness {
    pub app: Arc<App>,
    pub clock: Arc<FixedClock>,
    pub sent: Arc<Mutex<Vec<Message>>>,
    pub base: String,
    pub http: reqwest::Client,
    pub device_key: String,
    pub admin_key: String,
    pub centre_id: i64,
    pub label: &'static str,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

pub struct Options {
    pub limits: LimitsConfig,
    pub delivery: Option<Delivery>,
    pub portal: PortalConfig,
    pub trusted_proxies: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: LimitsConfig {
                requests_per_minute: 10_000,
                failure_burst: 1_000,
                ..LimitsConfig::default()
            },
            delivery: None,
            portal: PortalConfig::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

pub async fn start(db: &TestDb) -> Harness {
    start_with(db, Options::default()).await
}

pub async fn start_with(db: &TestDb, o: Options) -> Harness {
    let store = Store::connect(&db.url, 4).await.unwrap();
    let clock = Arc::new(FixedClock::new(t0()));
    let sent = Arc::new(Mutex::new(Vec::new()));
    let delivery = o
        .delivery
        .unwrap_or_else(|| Delivery::uniform(Sender::Memory(sent.clone())));
    let settings = Settings {
        link_host: "cocoa.example.jp".into(),
        certificate_issuer: "cocoa-issuer".into(),
        certificate_audience: "cocoa-keyserver".into(),
        help_phone: "0120-565653".into(),
        help_hours: "9:00～21:00".into(),
    };
    let rng = Box::new(rand_chacha::ChaCha20Rng::seed_from_u64(rand::random()));
    let issuer = Issuer::new(store, &[7u8; 32], delivery, clock.clone(), rng, settings)
        .await
        .unwrap();
    let now = issuer.now();
    let centre_id = issuer
        .store()
        .create_centre("みなと保健所", "13", now)
        .await
        .unwrap();
    let (device_key, _) = issuer
        .create_api_key(ApiKeyKind::Device, None)
        .await
        .unwrap();
    let (admin_key, _) = issuer
        .create_api_key(ApiKeyKind::Admin, Some(centre_id))
        .await
        .unwrap();
    let app = Arc::new(App::new(
        issuer,
        Limits::new(o.limits),
        o.portal,
        TrustedProxies::parse(&o.trusted_proxies).unwrap(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = issuer::http::router(app.clone(), 64 * 1024);
    tokio::spawn(async move {
        // The production listener, with the connection caps lifted: these
        // tests burst 1,000 requests from one address at the application
        // (the caps have their own tests, in crates/http-serve).
        let limits = http_serve::Limits {
            per_address: 100_000,
            total: 100_000,
            ..http_serve::Limits::default()
        };
        http_serve::serve(
            listener,
            router,
            limits,
            http_serve::Addresses::Keep,
            async {
                let _ = rx.await;
            },
        )
        .await;
    });
    Harness {
        app,
        clock,
        sent,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        device_key,
        admin_key,
        centre_id,
        label: db.label,
        shutdown: Some(tx),
    }
}

/// A complete, issuable case as the machine API takes it.
pub fn case_json() -> serde_json::Value {
    serde_json::json!({
        "name_kanji": "横口 健太",
        "name_kana": "ヨコグチ ケンタ",
        "birth_date": "1998-09-09",
        "sex": "male",
        "mobile": "090-1234-5678",
        "outpatient_facility": "港区帰国者・接触者外来",
        "test_positive": true,
        "classification": "confirmed",
        "diagnosis_date": "2020-12-15",
        "reported": true,
        "uses_app": true
    })
}

pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
    pub retry_after: Option<String>,
}

impl Harness {
    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        idem: Option<&str>,
        body: &str,
    ) -> Reply {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        if let Some(i) = idem {
            r = r.header("idempotency-key", i);
        }
        Self::reply(r).await
    }

    async fn reply(r: reqwest::RequestBuilder) -> Reply {
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Reply {
            status,
            body,
            retry_after,
        }
    }

    pub async fn create_case(&self, case: &serde_json::Value) -> i64 {
        let r = self
            .post(
                "/api/v1/cases",
                Some(&self.admin_key),
                None,
                &case.to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}: {}", self.label, r.body);
        r.body["case_id"].as_i64().unwrap()
    }

    pub async fn issue(&self, case_id: i64, idem: &str) -> Reply {
        self.post(
            &format!("/api/v1/cases/{case_id}/processing-number"),
            Some(&self.admin_key),
            Some(idem),
            "",
        )
        .await
    }

    /// The number and link code of the newest message.
    pub fn last_number(&self) -> (String, String) {
        let sent = self.sent.lock().unwrap();
        let body = &sent.last().expect("a message was sent").body;
        let n = body.split("処理番号: ").nth(1).unwrap()[..8].to_owned();
        let l = body.split("?pn=").nth(1).unwrap()[..20].to_owned();
        (n, l)
    }

    pub fn sent_count(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    pub async fn verify(&self, code: &str) -> Reply {
        let body = serde_json::json!({"code": code, "accept": ["confirmed"], "padding": "AAAA"});
        self.post(
            "/api/verify",
            Some(&self.device_key),
            None,
            &body.to_string(),
        )
        .await
    }

    /// `verify` from the client `address`, as a trusted proxy in front says it
    /// (`X-Forwarded-For`; the harness needs `trusted_proxies: ["127.0.0.1"]`).
    pub async fn verify_from(&self, address: &str, code: &str) -> Reply {
        let body = serde_json::json!({"code": code, "accept": ["confirmed"], "padding": "AAAA"});
        Self::reply(
            self.http
                .post(format!("{}/api/verify", self.base))
                .header("content-type", "application/json")
                .header("x-api-key", &self.device_key)
                .header("x-forwarded-for", address)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn certificate(&self, token: &str, hmac_b64: &str) -> Reply {
        let body = serde_json::json!({"token": token, "ekeyhmac": hmac_b64});
        self.post(
            "/api/certificate",
            Some(&self.device_key),
            None,
            &body.to_string(),
        )
        .await
    }

    pub async fn count(&self, table: &str) -> i64 {
        use sqlx::Row;
        let r = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(self.app.issuer.store().pool())
            .await
            .unwrap();
        r.try_get::<i64, _>("n").unwrap()
    }

    /// Every stored value of every table, as text, for leak checks.
    pub async fn dump(&self) -> String {
        use sqlx::Row;
        let mut out = String::new();
        for (table, cols) in [
            (
                "centres",
                "name, prefecture, consultation_phone, consultation_url",
            ),
            ("staff", "login, password_hash, role"),
            ("api_keys", "key_hmac, kind"),
            (
                "cases",
                "name_kanji, name_kana, birth_date, sex, COALESCE(mobile, ''), COALESCE(email, ''), outpatient_facility, classification",
            ),
            (
                "issuances",
                "number_hmac, link_hmac, report_type, state, channel, delivery_status, COALESCE(delivery_error, ''), issued_by",
            ),
            ("tokens", "token_hmac, report_type"),
            (
                "send_queue",
                "kind, channel, recipient, COALESCE(sealed_message, ''), status, COALESCE(last_error, '')",
            ),
            ("issuances", "COALESCE(token_hmac, '')"),
            ("signing_keys", "kid, private_pkcs8_hex, public_pem"),
            ("audit_log", "actor, action, outcome, detail"),
            ("idempotency", "idem_key, request_hash, COALESCE(body, '')"),
            (
                "staff_sessions",
                "id_hash, stage, csrf_token, COALESCE(totp_pending, '')",
            ),
            ("cases", "symptoms, residence"),
        ] {
            let rows = sqlx::query(&format!("SELECT {cols} FROM {table}"))
                .fetch_all(self.app.issuer.store().pool())
                .await
                .unwrap();
            for r in rows {
                for i in 0..r.len() {
                    out.push_str(&r.try_get::<String, _>(i).unwrap());
                    out.push('|');
                }
                out.push('\n');
            }
        }
        // Integer columns too (a number could hide as an integer).
        let rows = sqlx::query("SELECT id, case_id, issued_at, expires_at FROM issuances")
            .fetch_all(self.app.issuer.store().pool())
            .await
            .unwrap();
        for r in rows {
            for i in 0..4 {
                out.push_str(&r.try_get::<i64, _>(i).unwrap().to_string());
                out.push('|');
            }
        }
        out
    }
}

/// Base64 of 32 bytes.
pub fn hmac32() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([42u8; 32])
}
