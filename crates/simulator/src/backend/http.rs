//! The issuer and the key server as running servers, spoken to over HTTP
//! exactly as phones and case systems speak to them: the machine API
//! (`POST /api/v1/cases`, `…/processing-number`), the SMS read from the
//! outbox, `POST /api/verify`, `POST /api/certificate`, `POST /v1/publish`,
//! and the exports downloaded from `GET /exports/index.txt`. Nothing is
//! modelled: tokens, ES256 certificates, the databases (SQLite files), the
//! exporter's batches, fake keys, signatures and the file storage are the
//! servers' own.
//!
//! The servers run in this process on a loopback port with a clock the
//! simulation moves, so a fortnight passes in seconds; for small N (each
//! registration is a handful of requests and database writes). The device
//! API's per-address rate limits are off: every simulated phone shares the
//! loopback address.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use api_types::publish::{PublishKey, PublishRequest, PublishResponse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use en_protocol::export::{VerificationKey, export_keys, read_header, read_zip};
use en_protocol::time::FixedClock;
use rand_core::RngCore;

use super::{
    Backend, BackendError, IssuedNumber, PublishedFile, RegisterError, Registered, ServerWork,
};
use crate::config::SimConfig;
use crate::rng::{Purpose, crypto_rng};
use crate::time::{Calendar, SimTime};

/// The health authority the simulated phones publish under.
const HEALTH_AUTHORITY_ID: &str = "cocoa";

fn failed(what: &str) -> impl Fn(String) -> BackendError + '_ {
    move |e| BackendError(format!("{what}: {e}"))
}

/// The servers, running, and what the simulation learnt from their answers.
pub struct Http {
    rt: tokio::runtime::Runtime,
    calendar: Calendar,
    clock: Arc<FixedClock>,
    base: reqwest::Url,
    client: reqwest::Client,
    admin_key: String,
    device_key: String,
    outbox: PathBuf,
    outbox_read: HashSet<PathBuf>,
    keyserver: Arc<keyserver::http::App>,
    min_age: i64,
    hmac_rng: rand_chacha::ChaCha20Rng,
    uploaded: HashSet<[u8; 16]>,
    seen: HashSet<String>,
    files: Vec<PublishedFile>,
    verification_keys: Vec<VerificationKey>,
    region: String,
    work: ServerWork,
    cases: u64,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _data: tempfile::TempDir,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base.as_str())
            .field("files", &self.files.len())
            .field("work", &self.work)
            .finish_non_exhaustive()
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

impl Http {
    /// Starts an issuer and a key server (every role, SQLite in a temporary
    /// folder) configured like the run `config`, on a loopback port.
    pub fn start(config: &SimConfig, calendar: Calendar) -> Result<Self, BackendError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| BackendError(format!("runtime: {e}")))?;
        let data = tempfile::tempdir().map_err(|e| BackendError(format!("temp folder: {e}")))?;
        let clock = Arc::new(FixedClock::new(calendar.datetime(0)));
        let outbox = data.path().join("outbox");
        let started = rt.block_on(start_servers(config, data.path(), &outbox, clock.clone()))?;
        Ok(Self {
            rt,
            calendar,
            clock,
            base: started.base,
            client: reqwest::Client::new(),
            admin_key: started.admin_key,
            device_key: started.device_key,
            outbox,
            outbox_read: HashSet::new(),
            verification_keys: started
                .keyserver
                .exporter
                .signers()
                .iter()
                .map(en_protocol::export::SoftwareSigner::public_key)
                .collect(),
            region: started.region,
            keyserver: started.keyserver,
            min_age: config.server.min_age_seconds,
            hmac_rng: crypto_rng(config.seed, Purpose::Server, &[3]),
            uploaded: HashSet::new(),
            seen: HashSet::new(),
            files: Vec::new(),
            work: ServerWork::default(),
            cases: 0,
            shutdown: Some(started.shutdown),
            _data: data,
        })
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, BackendError> {
        self.base
            .join(path)
            .map_err(|e| BackendError(e.to_string()))
    }

    /// POSTs JSON; the status and the answer's JSON.
    fn post(
        &self,
        path: &str,
        key: Option<&str>,
        idempotency: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<(u16, serde_json::Value), BackendError> {
        let url = self.url(path)?;
        self.rt.block_on(async {
            let mut r = self.client.post(url).json(body);
            if let Some(k) = key {
                r = r.header("X-API-Key", k);
            }
            if let Some(i) = idempotency {
                r = r.header("Idempotency-Key", i);
            }
            let resp = r
                .send()
                .await
                .map_err(|e| BackendError(format!("{path}: {e}")))?;
            let status = resp.status().as_u16();
            let json = resp.json().await.unwrap_or_default();
            Ok((status, json))
        })
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let url = self.url(path)?;
        self.rt.block_on(async {
            let resp = self
                .client
                .get(url)
                .send()
                .await
                .map_err(|e| BackendError(format!("{path}: {e}")))?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(BackendError(format!("{path}: {}", resp.status())));
            }
            resp.bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| BackendError(format!("{path}: {e}")))
        })
    }

    /// The number in the message the issuer just wrote to the outbox.
    fn read_sms(&mut self) -> Result<String, BackendError> {
        let mut new = Vec::new();
        for e in std::fs::read_dir(&self.outbox).map_err(|e| failed("outbox")(e.to_string()))? {
            let p = e.map_err(|e| failed("outbox")(e.to_string()))?.path();
            if !self.outbox_read.contains(&p) {
                new.push(p);
            }
        }
        let [path] = new.as_slice() else {
            return Err(BackendError(format!(
                "expected one new message in the outbox, found {}",
                new.len()
            )));
        };
        let text = std::fs::read_to_string(path).map_err(|e| failed("outbox")(e.to_string()))?;
        let msg: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| failed("outbox")(e.to_string()))?;
        // The message is the SMS: gone once read, as on a phone.
        let _ = std::fs::remove_file(path);
        self.outbox_read.insert(path.clone());
        msg["body"]
            .as_str()
            .and_then(|b| b.split("処理番号: ").nth(1))
            .and_then(|rest| rest.get(..8))
            .map(str::to_owned)
            .ok_or_else(|| BackendError("no number in the message".into()))
    }
}

struct Started {
    base: reqwest::Url,
    admin_key: String,
    device_key: String,
    keyserver: Arc<keyserver::http::App>,
    region: String,
    shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start_servers(
    config: &SimConfig,
    data: &std::path::Path,
    outbox: &std::path::Path,
    clock: Arc<FixedClock>,
) -> Result<Started, BackendError> {
    let issuer_config = issuer::IssuerConfig {
        outbox: Some(outbox.to_owned()),
        limits: issuer::limits::LimitsConfig {
            requests_per_minute: 0,
            failure_burst: u32::MAX,
            guessed_numbers_per_day: f64::INFINITY,
            ..Default::default()
        },
        ..Default::default()
    };
    let issuer_app = issuer::http::build(&issuer_config, data, clock.clone())
        .await
        .map_err(|e| failed("issuer")(format!("{e:#}")))?;
    let store = issuer_app.issuer.store();
    let now = en_protocol::time::Clock::now(&*clock).timestamp();
    let centre_id = store
        .create_centre("シミュレーション保健所", "13", now)
        .await
        .map_err(|e| failed("centre")(e.to_string()))?;
    let mut centre = store
        .centre(centre_id)
        .await
        .map_err(|e| failed("centre")(e.to_string()))?
        .ok_or_else(|| BackendError("centre vanished".into()))?;
    centre.validity_seconds = config.health.validity_seconds;
    store
        .update_centre(&centre)
        .await
        .map_err(|e| failed("centre")(e.to_string()))?;
    let (admin_key, _) = issuer_app
        .issuer
        .create_api_key(issuer::store::ApiKeyKind::Admin, Some(centre_id))
        .await
        .map_err(|e| failed("api key")(e.to_string()))?;
    let (device_key, _) = issuer_app
        .issuer
        .create_api_key(issuer::store::ApiKeyKind::Device, None)
        .await
        .map_err(|e| failed("api key")(e.to_string()))?;

    let mut ks_config = keyserver::KeyserverConfig::default();
    let s = &config.server;
    let secs = |n: i64| std::time::Duration::from_secs(n.max(0).unsigned_abs());
    ks_config.export.batch_period = secs(s.batch_period_seconds);
    ks_config.export.min_age = secs(s.min_age_seconds);
    ks_config.export.retention = secs(s.retention_seconds);
    ks_config.export.pad_to = s.pad_to;
    ks_config.export.pad_jitter = s.pad_jitter;
    let region = ks_config.export.region.clone();
    let jwks_of = issuer_app.clone();
    let own = keyserver::trust::TrustedIssuer::in_process(
        HEALTH_AUTHORITY_ID,
        &issuer_config.certificate_issuer,
        Arc::new(move || jwks_of.issuer.keyring().jwks()),
    );
    let ks = keyserver::http::build(&ks_config, data, clock, vec![own])
        .await
        .map_err(|e| failed("keyserver")(format!("{e:#}")))?;

    let router = issuer::router(issuer_app, issuer_config.max_body_bytes)
        .merge(keyserver::router(ks.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| failed("listen")(e.to_string()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| failed("listen")(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let stop = async {
            let _ = rx.await;
        };
        if let Err(e) = issuer::http::serve_router(router, listener, stop).await {
            tracing::error!(error = %e, "simulated servers stopped");
        }
    });
    let base = reqwest::Url::parse(&format!("http://{addr}/"))
        .map_err(|e| failed("address")(e.to_string()))?;
    Ok(Started {
        base,
        admin_key,
        device_key,
        keyserver: ks,
        region,
        shutdown: tx,
    })
}

impl Backend for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn issue_number(&mut self, at: SimTime) -> Result<IssuedNumber, BackendError> {
        self.clock.set(self.calendar.datetime(at));
        self.cases += 1;
        let case = serde_json::json!({
            "name_kanji": "模擬 患者",
            "name_kana": "モギ カンジャ",
            "birth_date": "1990-01-01",
            "sex": "other",
            "mobile": format!("090{:08}", self.cases % 100_000_000),
            "outpatient_facility": "模擬外来",
            "test_positive": true,
            "classification": "confirmed",
            "diagnosis_date": self.calendar.jst_date(at).to_string(),
            "reported": true,
            "uses_app": true
        });
        let (status, body) = self.post("api/v1/cases", Some(&self.admin_key), None, &case)?;
        if status != 201 {
            return Err(BackendError(format!("POST /api/v1/cases: {status} {body}")));
        }
        let id = body["case_id"]
            .as_i64()
            .ok_or_else(|| BackendError(format!("no case_id in {body}")))?;
        let (status, body) = self.post(
            &format!("api/v1/cases/{id}/processing-number"),
            Some(&self.admin_key),
            Some(&format!("sim-{id}")),
            &serde_json::json!({}),
        )?;
        if status != 200 {
            return Err(BackendError(format!(
                "issuing for case {id}: {status} {body}"
            )));
        }
        let expires = body["expires_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| BackendError(format!("no expires_at in {body}")))?;
        self.work.numbers_issued += 1;
        Ok(IssuedNumber {
            number: self.read_sms()?,
            expires_at: self.calendar.sim(expires.timestamp()),
        })
    }

    fn register(
        &mut self,
        number: &str,
        keys: &[PublishKey],
        at: SimTime,
    ) -> Result<Registered, RegisterError> {
        let server = |e: BackendError| RegisterError::Keyserver(format!("internal_error: {e}"));
        self.clock.set(self.calendar.datetime(at));
        self.work.verify_requests += 1;
        let (status, body) = self
            .post(
                "api/verify",
                Some(&self.device_key),
                None,
                &serde_json::json!({"code": number, "accept": ["confirmed"]}),
            )
            .map_err(server)?;
        let code = |b: &serde_json::Value| b["errorCode"].as_str().unwrap_or("unknown").to_owned();
        if status != 200 {
            let c = code(&body);
            match c.as_str() {
                api_types::verify::codes::CODE_EXPIRED => self.work.codes_expired += 1,
                _ => self.work.codes_invalid += 1,
            }
            return Err(RegisterError::Issuer(c));
        }
        let token = body["token"].as_str().unwrap_or_default().to_owned();
        let mut hmac_key = [0u8; 32];
        self.hmac_rng.fill_bytes(&mut hmac_key);
        let mac = device::register::key_hmac(&hmac_key, keys);
        let (status, body) = self
            .post(
                "api/certificate",
                Some(&self.device_key),
                None,
                &serde_json::json!({"token": token, "ekeyhmac": STANDARD.encode(mac)}),
            )
            .map_err(server)?;
        if status != 200 {
            return Err(RegisterError::Issuer(code(&body)));
        }
        self.work.certificates += 1;
        let request = PublishRequest {
            keys: keys.to_vec(),
            health_authority_id: HEALTH_AUTHORITY_ID.into(),
            verification_payload: body["certificate"].as_str().unwrap_or_default().to_owned(),
            hmac_key: STANDARD.encode(hmac_key),
            ..Default::default()
        };
        let body =
            serde_json::to_value(&request).map_err(|e| server(BackendError(e.to_string())))?;
        self.work.publish_requests += 1;
        self.work.keys_received += keys.len() as u64;
        let (status, answer) = self.post("v1/publish", None, None, &body).map_err(server)?;
        let answer: PublishResponse = serde_json::from_value(answer)
            .map_err(|e| server(BackendError(format!("publish answer: {e}"))))?;
        if status != 200 {
            self.work.publish_rejected += 1;
            return Err(RegisterError::Keyserver(
                answer.code.unwrap_or_else(|| format!("status {status}")),
            ));
        }
        let inserted = answer.inserted_exposures as usize;
        // Still valid at upload: held back by the server until its period ends.
        let now_interval = self.calendar.unix(at) / en_protocol::time::EN_INTERVAL_SECONDS;
        let embargoed = keys
            .iter()
            .filter(|k| {
                i64::from(k.rolling_start_number) + i64::from(k.rolling_period) > now_interval
            })
            .count()
            .min(inserted);
        for k in keys {
            if let Some(bytes) = STANDARD
                .decode(&k.key)
                .ok()
                .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            {
                self.uploaded.insert(bytes);
            }
        }
        self.work.keys_accepted += inserted as u64;
        self.work.keys_dropped += (keys.len() - inserted) as u64;
        self.work.keys_embargoed += embargoed as u64;
        Ok(Registered {
            inserted,
            dropped: keys.len() - inserted,
            embargoed,
        })
    }

    fn export_cycle(&mut self, at: SimTime) -> Result<usize, BackendError> {
        self.clock.set(self.calendar.datetime(at));
        let exporter = self.keyserver.exporter.clone();
        let min_age = self.min_age;
        self.rt
            .block_on(exporter.run_cycle(keyserver::export::CycleOptions { min_age }))
            .map_err(|e| BackendError(format!("export cycle: {e:#}")))?;
        let Some(index) = self.get("exports/index.txt")? else {
            return Ok(0);
        };
        let index = String::from_utf8_lossy(&index).into_owned();
        let before = self.files.len();
        for path in index.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if !self.seen.insert(path.to_owned()) {
                continue;
            }
            let zip = self
                .get(&format!("exports/{path}"))?
                .ok_or_else(|| BackendError(format!("{path} is listed but missing")))?;
            let archive = read_zip(&zip).map_err(|e| BackendError(format!("{path}: {e}")))?;
            let header = read_header(&archive.export_bin)
                .map_err(|e| BackendError(format!("{path}: {e}")))?;
            let mut keys = 0usize;
            let mut real = 0usize;
            for k in export_keys(&archive.export_bin) {
                let k = k.map_err(|e| BackendError(format!("{path}: {e}")))?;
                keys += 1;
                if self.uploaded.contains(k.key_data.as_bytes()) {
                    real += 1;
                }
            }
            self.work.files_built += 1;
            self.work.signatures += 1;
            self.work.export_bytes += zip.len() as u64;
            self.work.real_keys_exported += real as u64;
            self.work.fake_keys_exported += (keys - real) as u64;
            self.files.push(PublishedFile {
                path: path.to_owned(),
                published_at: at,
                batch_start: header.start_timestamp as i64,
                batch_end: header.end_timestamp as i64,
                keys,
                real_keys: real,
                zip,
            });
        }
        Ok(self.files.len() - before)
    }

    fn files(&self) -> &[PublishedFile] {
        &self.files
    }

    fn verification_keys(&self) -> Vec<VerificationKey> {
        self.verification_keys.clone()
    }

    fn region(&self) -> &str {
        &self.region
    }

    fn work(&self) -> ServerWork {
        self.work.clone()
    }
}
