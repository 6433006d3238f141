//! Benchmarks of the health-centre side on a fresh issuer database, in
//! this process (issue 13):
//!
//! - `cocoa bench case-list`: "a centre at the peak has thousands of cases:
//!   10,000 cases list in under 100 ms". Fills one centre with N cases (a
//!   third with a used number), signs a staff member in to the portal and
//!   times the list pages — plain, filtered by state, a far page — through
//!   the real router on a loopback port, as a browser asks for them.
//! - `cocoa bench send-queue`: the send queue's own cost per message
//!   (claim, open the sealed text, hand to the gateway, record the
//!   outcome), with an in-memory gateway so the database is what is
//!   measured, not a carrier.
//!
//! Both print one JSON object; the README quotes them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use en_protocol::time::{Clock, FixedClock, SystemClock};
use issuer::config::IssuerConfig;
use issuer::delivery::{Delivery, Message, Sender};
use issuer::domain::model::{Channel, ReportType, Role};
use issuer::http::{App, TrustedProxies};
use issuer::limits::{Limits, LimitsConfig};
use issuer::portal::PortalConfig;
use issuer::service::{Issuer, Settings};
use issuer::store::{NewIssuance, Store};
use rand::SeedableRng;
use serde::Serialize;

use crate::commands::{bad_input, print_json};

#[derive(Debug, Args)]
pub struct CaseListArgs {
    /// Cases in the centre.
    #[arg(long, default_value_t = 10_000)]
    pub cases: u32,
    /// Timed requests per list page (after one warm-up).
    #[arg(long, default_value_t = 50)]
    pub requests: u32,
    /// An empty issuer database to fill (`sqlite://…` or `postgres://…`);
    /// default: a SQLite file in a temporary folder.
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct SendQueueArgs {
    /// Messages to queue and send.
    #[arg(long, default_value_t = 2_000)]
    pub messages: u32,
    /// An empty issuer database to fill (`sqlite://…` or `postgres://…`);
    /// default: a SQLite file in a temporary folder.
    #[arg(long)]
    pub database: Option<String>,
}

/// A staff member's password for the benchmark's own account.
const PASSWORD: &str = "bench password, not a secret";

/// A fresh issuer on `database` (or a temporary SQLite file) with one
/// centre and an in-memory gateway; refuses a database that has cases.
async fn local_issuer(
    database: Option<&str>,
    dir: &tempfile::TempDir,
) -> anyhow::Result<(Issuer, i64, Arc<Mutex<Vec<Message>>>, &'static str)> {
    let url = database.map_or_else(
        || Store::sqlite_url(&dir.path().join("issuer.sqlite3")),
        str::to_owned,
    );
    let store = Store::connect(&url, 4).await.map_err(|e| {
        bad_input(format!(
            "--database に接続できません: {e} / cannot open --database: {e}"
        ))
    })?;
    let cases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases")
        .fetch_one(store.pool())
        .await?;
    if cases != 0 {
        return Err(bad_input(
            "--database は空の発行サーバーのデータベースにしてください / --database must be an empty issuer database",
        ));
    }
    let backend = match store.backend() {
        issuer::store::Backend::Sqlite => "sqlite",
        issuer::store::Backend::Postgres => "postgres",
    };
    let sent = Arc::new(Mutex::new(Vec::new()));
    let settings = Settings::from(&IssuerConfig::default());
    let secret: [u8; 32] = rand::random();
    let issuer = Issuer::new(
        store,
        &secret,
        Delivery::uniform(Sender::Memory(sent.clone())),
        Arc::new(FixedClock::new(SystemClock.now())),
        Box::new(rand_chacha::ChaCha20Rng::from_entropy()),
        settings,
    )
    .await?;
    let centre_id = issuer
        .store()
        .create_centre("みなと保健所", "13", issuer.now())
        .await?;
    Ok((issuer, centre_id, sent, backend))
}

/// Inserts `n` complete cases of `centre_id` in one transaction; with
/// `registered`, every third has a used number (a registered patient).
async fn fill_cases(store: &Store, centre_id: i64, n: u32, registered: bool) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(u64::from(n));
    bar.set_message("cases");
    let mut tx = store.pool().begin().await?;
    for i in 0..n {
        sqlx::query(
            "INSERT INTO cases (centre_id, name_kanji, name_kana, birth_date, sex, \
             outpatient_facility, test_positive, classification, reported, uses_app, \
             created_at, updated_at) VALUES ($1, '横口 健太', 'ヨコグチ ケンタ', '1998-09-09', \
             'male', '港区', 1, 'confirmed', 1, 1, 0, 0)",
        )
        .bind(centre_id)
        .execute(&mut *tx)
        .await?;
        if registered && i % 3 == 0 {
            sqlx::query(
                "INSERT INTO issuances (case_id, number_hmac, link_hmac, report_type, state, \
                 channel, delivery_status, issued_by, issued_at, expires_at) VALUES \
                 ((SELECT MAX(id) FROM cases), $1, $2, 'confirmed', 'used', 'sms', 'sent', \
                 'staff:bench', 0, 1)",
            )
            .bind(format!("bench-n{i}"))
            .bind(format!("bench-l{i}"))
            .execute(&mut *tx)
            .await?;
        }
        bar.inc(1);
    }
    tx.commit().await?;
    bar.finish_and_clear();
    Ok(())
}

/// A signed-in portal session: the cookie header and the client.
struct Session {
    base: String,
    http: reqwest::Client,
    cookie: String,
}

impl Session {
    async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }
}

/// The value of the hidden form field `name` in `html`.
fn hidden(html: &str, name: &str) -> Option<String> {
    let field = format!("name=\"{name}\" value=\"");
    let at = html.find(&field)? + field.len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The `name=value` pairs of a response's `Set-Cookie` headers.
fn cookies(r: &reqwest::Response, into: &mut Vec<String>) {
    for v in r.headers().get_all("set-cookie") {
        if let Ok(v) = v.to_str() {
            let kv = v.split(';').next().unwrap_or(v);
            let name = kv.split('=').next().unwrap_or("");
            into.retain(|c| c.split('=').next() != Some(name));
            into.push(kv.to_owned());
        }
    }
}

/// Signs `login` in through the portal's own form (CSRF token and all).
async fn sign_in(base: &str, login: &str) -> anyhow::Result<Session> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut jar = Vec::new();
    let page = http.get(format!("{base}/portal/login")).send().await?;
    cookies(&page, &mut jar);
    let html = page.text().await?;
    let mut form = vec![
        ("login".to_owned(), login.to_owned()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ];
    for name in ["csrf", "form_token"] {
        if let Some(v) = hidden(&html, name) {
            form.push((name.to_owned(), v));
        }
    }
    let r = http
        .post(format!("{base}/portal/login"))
        .header("cookie", jar.join("; "))
        .form(&form)
        .send()
        .await?;
    cookies(&r, &mut jar);
    if r.status().as_u16() != 303 {
        anyhow::bail!("portal sign-in answered {}", r.status());
    }
    Ok(Session {
        base: base.to_owned(),
        http,
        cookie: jar.join("; "),
    })
}

#[derive(Debug, Serialize)]
struct PageTiming {
    path: String,
    rows: usize,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct CaseListOutput {
    backend: &'static str,
    cases: u32,
    requests: u32,
    pages: Vec<PageTiming>,
    fill_seconds: f64,
}

/// The rows of a case-list page.
fn list_rows(body: &str) -> usize {
    body.matches("<tr><td><a href=\"/portal/cases/").count()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

pub fn case_list(a: CaseListArgs) -> anyhow::Result<()> {
    if a.cases == 0 || a.requests == 0 {
        return Err(bad_input(
            "--cases と --requests は1以上にしてください / --cases and --requests must be at least 1",
        ));
    }
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let (issuer, centre_id, _, backend) = local_issuer(a.database.as_deref(), &dir).await?;
        let started = Instant::now();
        fill_cases(issuer.store(), centre_id, a.cases, true).await?;
        let fill_seconds = started.elapsed().as_secs_f64();
        if issuer
            .create_staff(centre_id, "bench", PASSWORD, Role::Staff)
            .await?
            .is_none()
        {
            anyhow::bail!("the benchmark's staff account exists already");
        }
        let store = issuer.store().clone();
        let app = Arc::new(App::new(
            issuer,
            Limits::new(LimitsConfig::default()),
            PortalConfig::default(),
            TrustedProxies::parse(&[]).map_err(anyhow::Error::msg)?,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(issuer::http::serve_router(
            issuer::http::router(app, 64 * 1024),
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        let session = sign_in(&base, "bench").await?;
        let without = a.cases - a.cases.div_ceil(3);
        let far = (without / 50).max(1);
        let paths = [
            "/portal/cases".to_owned(),
            "/portal/cases?state=used".to_owned(),
            format!("/portal/cases?state=none&page={far}"),
            "/portal/cases?state=pending".to_owned(),
        ];
        let mut pages = Vec::new();
        for path in paths {
            let (status, body) = session.get(&path).await?;
            if status != 200 {
                anyhow::bail!("{path} answered {status}");
            }
            let rows = list_rows(&body);
            let mut ms = Vec::with_capacity(a.requests as usize);
            for _ in 0..a.requests {
                let t = Instant::now();
                let (status, body) = session.get(&path).await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                if status != 200 || list_rows(&body) != rows {
                    anyhow::bail!("{path} changed during the benchmark");
                }
            }
            ms.sort_by(f64::total_cmp);
            pages.push(PageTiming {
                path,
                rows,
                p50_ms: percentile(&ms, 0.5),
                p95_ms: percentile(&ms, 0.95),
                max_ms: percentile(&ms, 1.0),
            });
        }
        let _ = stop.send(());
        let _ = server.await;
        store.close().await;
        print_json(&CaseListOutput {
            backend,
            cases: a.cases,
            requests: a.requests,
            pages,
            fill_seconds,
        })
    })
}

#[derive(Debug, Serialize)]
struct SendQueueOutput {
    backend: &'static str,
    messages: u32,
    seconds: f64,
    messages_per_sec: f64,
    per_message_ms: f64,
    sent: usize,
    fill_seconds: f64,
}

pub fn send_queue(a: SendQueueArgs) -> anyhow::Result<()> {
    if a.messages == 0 {
        return Err(bad_input(
            "--messages は1以上にしてください / --messages must be at least 1",
        ));
    }
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let (issuer, centre_id, sent, backend) = local_issuer(a.database.as_deref(), &dir).await?;
        let store = issuer.store().clone();
        let started = Instant::now();
        fill_cases(&store, centre_id, a.messages, false).await?;
        // Every case gets a number whose message waits in the queue, as the
        // issue path writes it (issuance and sealed message in one
        // transaction).
        let case_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM cases ORDER BY id")
            .fetch_all(store.pool())
            .await?;
        let now = issuer.now();
        let bar = indicatif::ProgressBar::new(case_ids.len() as u64);
        for (n, case_id) in case_ids.iter().enumerate() {
            let msg = Message {
                channel: Channel::Sms,
                to: "09012345678".into(),
                subject: None,
                body: format!("処理番号 {n:08} https://cocoa.example.jp/a/{n}"),
            };
            store
                .insert_issuance_queued(
                    &NewIssuance {
                        case_id: *case_id,
                        number_hmac: &format!("bench-queue-n{n}"),
                        link_hmac: &format!("bench-queue-l{n}"),
                        report_type: ReportType::Confirmed,
                        channel: Channel::Sms,
                        issued_by: "staff:bench",
                        issued_at: now,
                        expires_at: now + 86_400,
                    },
                    &msg,
                )
                .await?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let queued = case_ids.len();
        let fill_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let mut total = 0;
        loop {
            let pass = issuer.process_send_queue().await?;
            if pass.sent + pass.retried + pass.dead == 0 {
                break;
            }
            total += pass.sent;
        }
        let seconds = started.elapsed().as_secs_f64();
        let delivered = sent.lock().map_or(0, |s| s.len());
        if total != queued || delivered != queued {
            anyhow::bail!(
                "{queued} queued, {total} recorded sent, {delivered} handed to the gateway"
            );
        }
        store.close().await;
        print_json(&SendQueueOutput {
            backend,
            messages: u32::try_from(queued).unwrap_or(u32::MAX),
            seconds,
            messages_per_sec: queued as f64 / seconds,
            per_message_ms: seconds * 1000.0 / queued as f64,
            sent: total,
            fill_seconds,
        })
    })
}
