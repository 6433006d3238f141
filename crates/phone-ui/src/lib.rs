//! The phone's screens in a browser: `cocoa app ui`.
//!
//! Server-rendered pages (axum + askama) over one or more phone folders
//! (`/p/0/`, `/p/1/`…: several phones side by side). Every state change
//! goes through the same [`device`] functions the CLI uses
//! ([`device::Phone::register`], [`device::Phone::check`]); this crate
//! never talks to the issuer or the key server itself.
//!
//! The rules this crate keeps:
//! - 「Japanese first, English available (a toggle)」: a `lang` cookie,
//!   Japanese when absent.
//! - 「every control labelled (`<label for>`)」, no sideways scrolling at 390 px.
//! - The processing number appears on no page after it was submitted and in
//!   no log: between 「登録する」 and the confirmation it lives only in this
//!   process's memory, under a random one-time token.
//! - Bad input on every form: a stable error code and a Japanese message
//!   (English available); nothing is stored.
//! - Loopback by default: it is the phone, not a server for others.
//! - 「The UI checks for exposure in the background while it runs, at the
//!   cadence phones use (every 4 h by default, configurable, immediately on
//!   start)」: [`serve`] runs the checks of [`background_checks`]; a check runs
//!   in its own task, so pages never wait for it, and the home screen shows
//!   its progress.
//! - Emulator mode (demos and training): the messages the issuer's
//!   development outbox holds for each phone ([`Config::outbox`],
//!   [`Config::contacts`]) and 「接触させる」 (two phones together for N
//!   minutes at d metres, [`device::meet`]).
#![forbid(unsafe_code)]

mod emulator;
mod views;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use device::{Code, Lang, Phone, RegistrationInput, Text};
use en_protocol::time::Clock;
use serde::Deserialize;

pub use views::jst_time;

/// How long a filled-in registration waits for its confirmation.
pub const PENDING_TTL: Duration = Duration::from_secs(15 * 60);

/// How often phones check for exposure (every 4 hours, as COCOA's
/// background task did).
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_secs(4 * 3600);

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The phone folders (`cocoa app init --home …`), one phone each.
    pub homes: Vec<PathBuf>,
    /// The phones' clock.
    pub clock: Arc<dyn Clock>,
    /// Background exposure checks every this long, the first at start
    /// (`None`: only 「今すぐ確認」).
    pub check_every: Option<Duration>,
    /// Emulator: the issuer's development outbox (`cocoa serve --outbox`).
    pub outbox: Option<PathBuf>,
    /// Emulator: each phone's phone number or e-mail address, in the order
    /// of `homes` (fewer than `homes`: the others have none).
    pub contacts: Vec<String>,
}

impl Config {
    /// The phones in `homes` on `clock`: checks every
    /// [`DEFAULT_CHECK_EVERY`], no emulator.
    pub fn new(homes: Vec<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Self {
            homes,
            clock,
            check_every: Some(DEFAULT_CHECK_EVERY),
            outbox: None,
            contacts: Vec::new(),
        }
    }
}

/// Why the UI could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `--home` given.
    #[error(
        "スマートフォンのフォルダー（--home）を1つ以上指定してください。 / Give at least one phone folder (--home)."
    )]
    NoPhones,
    /// A folder does not hold a phone (or cannot be opened).
    #[error("{0}")]
    Phone(#[from] device::Error),
    /// Serving failed.
    #[error("サーバーを動かせませんでした: {0} / Serving failed: {0}")]
    Io(#[from] std::io::Error),
    /// More `--contact` than `--home`.
    #[error(
        "連絡先（--contact）が{contacts}件ありますが、スマートフォン（--home）は{homes}台です。1台に1件まで、--home と同じ順に指定してください。 / {contacts} contacts (--contact) for {homes} phones (--home): give at most one per phone, in the order of --home."
    )]
    TooManyContacts {
        /// `--contact` given.
        contacts: usize,
        /// `--home` given.
        homes: usize,
    },
    /// A check interval of zero.
    #[error(
        "確認の間隔（--check-every）は0より長くしてください。 / The check interval (--check-every) must be longer than zero."
    )]
    CheckEveryZero,
}

/// A form error of the UI itself (the device's errors carry their own
/// code and text): stable code + Japanese and English message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// ① not answered.
    SymptomsMissing,
    /// ② left empty.
    DateMissing,
    /// The page's form token does not match (a page of another server, or forged).
    FormExpired,
    /// The number of an opened app link is no longer held (15 minutes, or
    /// the server restarted): open the SMS's link again or type the number.
    LinkExpired,
    /// The settings' language is neither Japanese nor English.
    LangInvalid,
    /// 「接触させる」: a phone that is not one of these.
    PhoneInvalid,
    /// 「接触させる」: minutes that are not a whole number.
    MinutesInvalid,
    /// 「接触させる」: a distance that is not a number.
    DistanceInvalid,
}

impl FormError {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::SymptomsMissing => "symptoms_missing",
            Self::DateMissing => "date_missing",
            Self::FormExpired => "form_expired",
            Self::LinkExpired => "link_expired",
            Self::LangInvalid => "lang_invalid",
            Self::PhoneInvalid => "phone_invalid",
            Self::MinutesInvalid => "minutes_invalid",
            Self::DistanceInvalid => "distance_invalid",
        }
    }

    /// The message.
    pub fn text(self) -> Text {
        match self {
            Self::SymptomsMissing => Text::new(
                "① 症状が「ある」か「ない」かを選んでください。",
                "1. Choose whether you have symptoms (yes or no).",
            ),
            Self::DateMissing => Text::new(
                "② 日付を入力してください（症状がある場合は症状が始まった最初の日、ない場合は検査を受けた日）。",
                "2. Enter the date (the first day of symptoms, or the day you were tested).",
            ),
            Self::FormExpired => Text::new(
                "この画面は古くなっています。もう一度最初から入力してください。処理番号は使われていません。",
                "This page has expired. Please fill it in again from the start. The processing number was not used.",
            ),
            Self::LinkExpired => Text::new(
                "SMSのリンクから開いた処理番号の有効時間（15分）が過ぎました。もう一度SMSまたはメールのリンクを開くか、処理番号を入力してください。処理番号は使われていません。",
                "The number from the SMS link is no longer held (15 minutes). Open the link in the SMS or e-mail again, or type the number. The number was not used.",
            ),
            Self::LangInvalid => Text::new(
                "言語は「日本語」か「English」を選んでください。",
                "Choose Japanese or English as the language.",
            ),
            Self::PhoneInvalid => Text::new(
                "接触させるスマートフォンを2台、一覧から選んでください。",
                "Choose two phones of the list to put together.",
            ),
            Self::MinutesInvalid => Text::new(
                "接触した時間は、分の整数（例: 20）で入力してください。",
                "Enter the time together in whole minutes (e.g. 20).",
            ),
            Self::DistanceInvalid => Text::new(
                "距離はメートルの数（例: 1 や 1.5）で入力してください。",
                "Enter the distance in metres (e.g. 1 or 1.5).",
            ),
        }
    }
}

/// One message shown on a page: code and text in the page's language.
#[derive(Debug, Clone)]
pub struct Shown {
    /// Stable code (`number_length`, `date_in_future`…).
    pub code: String,
    /// The text.
    pub text: String,
}

impl Shown {
    pub(crate) fn device(e: &device::Error, lang: Lang) -> Self {
        Self {
            code: e.code().into(),
            text: e.text().get(lang).into(),
        }
    }

    pub(crate) fn form(e: FormError, lang: Lang) -> Self {
        Self {
            code: e.code().into(),
            text: e.text().get(lang).into(),
        }
    }
}

struct Pending {
    phone: usize,
    input: RegistrationInput,
    created: Instant,
}

/// The code of an opened app link, waiting for the registration form.
struct LinkCode {
    /// The phone it was opened on (`None`: `/cocoa/a/` with several phones).
    phone: Option<usize>,
    code: Code,
    created: Instant,
}

/// A check that is running.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Running {
    /// When it started (the phone's clock).
    pub started: chrono::DateTime<chrono::Utc>,
    /// Export files processed before it started (progress: the ones since).
    pub files_before: Option<usize>,
}

struct Slot {
    home: PathBuf,
    /// One change at a time per phone (the CLI is one process too); pages
    /// only read and do not wait for it.
    lock: tokio::sync::Mutex<()>,
    /// The check running now, if any.
    checking: Mutex<Option<Running>>,
    /// 「今すぐ確認」 was pressed while a check ran: run one more after it
    /// (the running one may have listed the files before the newest).
    again: std::sync::atomic::AtomicBool,
    /// Emulator: the phone's number or e-mail address.
    contact: Option<String>,
}

pub(crate) struct App {
    phones: Vec<Slot>,
    clock: Arc<dyn Clock>,
    check_every: Option<Duration>,
    outbox: Option<PathBuf>,
    /// Sent with every form and checked on every post.
    form_token: String,
    pending: Mutex<HashMap<String, Pending>>,
    /// Codes of opened app links, under a random token (never in a page).
    links: Mutex<HashMap<String, LinkCode>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("phones", &self.phones.len())
            .finish_non_exhaustive()
    }
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl App {
    /// The code of an opened app link for phone `i`, when still held.
    fn link_code(&self, token: &str, i: usize) -> Option<Code> {
        let mut links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|_, l| l.created.elapsed() < PENDING_TTL);
        links
            .get(token)
            .filter(|l| l.phone.is_none_or(|p| p == i))
            .map(|l| l.code.clone())
    }

    /// Forgets every number held for phone `i` (its data was deleted).
    fn forget_numbers_of(&self, i: usize) {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, l| l.phone.is_some_and(|p| p != i));
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, p| p.phone != i);
    }

    pub(crate) fn open(&self, i: usize) -> device::Result<Phone> {
        Phone::open(
            &self.phones[i].home,
            self.clock.clone(),
            Box::new(rand::rngs::OsRng),
        )
    }
}

/// The router over `config`'s phones, without background checks (see
/// [`background_checks`]). Every folder must hold a phone.
pub fn router(config: Config) -> Result<Router, Error> {
    build(config).map(|(r, _)| r)
}

/// The router and the background checks of `config`: a future that, every
/// [`Config::check_every`] from now (the first at once), starts a check of
/// every phone that is not checking already; it never ends (drop or abort
/// it). Without `check_every` it only waits.
pub fn background_checks(
    config: Config,
) -> Result<(Router, impl Future<Output = ()> + Send + 'static), Error> {
    let every = config.check_every;
    let (router, app) = build(config)?;
    let checks = async move {
        let Some(every) = every else {
            return std::future::pending().await;
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for i in 0..app.phones.len() {
                start_check(&app, i, "schedule");
            }
        }
    };
    Ok((router, checks))
}

fn build(config: Config) -> Result<(Router, Arc<App>), Error> {
    if config.homes.is_empty() {
        return Err(Error::NoPhones);
    }
    if config.contacts.len() > config.homes.len() {
        return Err(Error::TooManyContacts {
            contacts: config.contacts.len(),
            homes: config.homes.len(),
        });
    }
    if config.check_every.is_some_and(|d| d.is_zero()) {
        return Err(Error::CheckEveryZero);
    }
    for home in &config.homes {
        Phone::open(home, config.clock.clone(), Box::new(rand::rngs::OsRng))?;
    }
    let app = Arc::new(App {
        phones: config
            .homes
            .iter()
            .enumerate()
            .map(|(i, h)| Slot {
                home: h.clone(),
                lock: tokio::sync::Mutex::new(()),
                checking: Mutex::new(None),
                again: std::sync::atomic::AtomicBool::new(false),
                contact: config
                    .contacts
                    .get(i)
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            })
            .collect(),
        clock: config.clock,
        check_every: config.check_every,
        outbox: config.outbox,
        form_token: random_hex(),
        pending: Mutex::new(HashMap::new()),
        links: Mutex::new(HashMap::new()),
    });
    let router = Router::new()
        .route("/", get(index))
        .route("/p/{i}/", get(home))
        .route("/p/{i}/check", post(check_now))
        .route("/p/{i}/register", get(register_form).post(register_submit))
        .route("/p/{i}/register/confirm", post(register_confirm))
        .route("/p/{i}/register/resume", post(register_resume))
        .route("/p/{i}/lang/{to}", get(set_lang))
        .route("/cocoa/a/", get(app_link_any))
        .route("/cocoa/a", get(app_link_any))
        .route("/p/{i}/cocoa/a/", get(app_link_phone))
        .route("/p/{i}/cocoa/a", get(app_link_phone))
        .route("/p/{i}/notification", get(notification))
        .route("/p/{i}/info", get(info))
        .route("/p/{i}/settings", post(save_settings))
        .route("/p/{i}/erase", post(erase_ask))
        .route("/p/{i}/erase/confirm", post(erase_confirm))
        .route("/p/{i}/messages", get(emulator::messages))
        .route(
            "/meet",
            get(emulator::meet_form).post(emulator::meet_submit),
        )
        .route("/static/phone.css", get(css))
        .with_state(app.clone());
    Ok((router, app))
}

/// Serves `config`'s phones on `listener` until `shutdown` completes, with
/// the background checks ([`background_checks`]).
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (app, checks) = background_checks(config)?;
    let checks = tokio::spawn(checks);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    checks.abort();
    served?;
    Ok(())
}

/// Clears a phone's running check when the check's task ends (or panics).
struct CheckDone(Arc<App>, usize);

impl Drop for CheckDone {
    fn drop(&mut self) {
        *self.0.phones[self.1]
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Starts an exposure check of phone `i` in its own task ([`Phone::check`],
/// as `cocoa app check`), unless one is running (then a press of
/// 「今すぐ確認」 runs one more after it); whether it started. Pages
/// do not wait for it: the home screen shows its progress.
pub(crate) fn start_check(app: &Arc<App>, i: usize, trigger: &'static str) -> bool {
    {
        let mut checking = app.phones[i]
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if checking.is_some() {
            if trigger == "button" {
                app.phones[i]
                    .again
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            return false;
        }
        *checking = Some(Running {
            started: app.clock.now(),
            files_before: None,
        });
    }
    let app = app.clone();
    tokio::spawn(async move {
        let done = CheckDone(app.clone(), i);
        let _guard = app.phones[i].lock.lock().await;
        loop {
            let result = match app.open(i) {
                Ok(mut phone) => {
                    let before = phone.status().ok().map(|s| s.files_processed);
                    if let Some(r) = app.phones[i]
                        .checking
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_mut()
                    {
                        r.files_before = before;
                    }
                    phone.check().await.map(|_| ())
                }
                Err(e) => Err(e),
            };
            metrics::counter!("phone_ui_checks_total", "trigger" => trigger, "result" => match &result {
            Ok(()) => "ok",
            Err(e) => e.code(),
        })
        .increment(1);
            if let Err(e) = &result {
                tracing::info!(phone = i, code = e.code(), "exposure check failed");
            }
            if !app.phones[i]
                .again
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                break;
            }
        }
        drop(done);
    });
    true
}

impl App {
    /// The check running on phone `i`.
    pub(crate) fn running(&self, i: usize) -> Option<Running> {
        *self.phones[i]
            .checking
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// The path of phone `i`'s home.
pub fn phone_path(i: usize) -> String {
    format!("/p/{i}/")
}

pub(crate) type AppState = State<Arc<App>>;

pub(crate) fn lang_of(headers: &HeaderMap, phone: Option<&Phone>) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("lang=").map(str::to_owned));
    match cookie.as_deref() {
        Some("en") => Lang::En,
        Some("ja") => Lang::Ja,
        _ => phone.map(|p| p.settings().lang).unwrap_or_default(),
    }
}

pub(crate) fn page(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    match body {
        Ok(html) => (
            status,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Html(html),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

pub(crate) fn message_page(
    status: StatusCode,
    lang: Lang,
    phone: Option<usize>,
    m: Shown,
) -> Response {
    page(status, views::message(lang, phone, m, false, None))
}

pub(crate) fn not_found(lang: Lang) -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        lang,
        None,
        Shown {
            code: "not_found".into(),
            text: Text::new("このページはありません。", "There is no such page.")
                .get(lang)
                .into(),
        },
    )
}

/// Opens phone `i`, or the page saying why not.
pub(crate) fn open_or_page(
    app: &App,
    i: usize,
    headers: &HeaderMap,
) -> Result<Phone, Box<Response>> {
    if i >= app.phones.len() {
        return Err(Box::new(not_found(lang_of(headers, None))));
    }
    app.open(i).map_err(|e| {
        let lang = lang_of(headers, None);
        Box::new(message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            None,
            Shown::device(&e, lang),
        ))
    })
}

async fn index(State(app): AppState, headers: HeaderMap) -> Response {
    if app.phones.len() == 1 {
        return Redirect::to(&phone_path(0)).into_response();
    }
    let lang = lang_of(&headers, None);
    let homes: Vec<String> = app
        .phones
        .iter()
        .map(|s| s.home.display().to_string())
        .collect();
    page(StatusCode::OK, views::index(lang, &homes))
}

async fn home(State(app): AppState, UrlPath(i): UrlPath<usize>, headers: HeaderMap) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    let phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    let shown = views::HomeExtras {
        running: app.running(i),
        check_every: app.check_every,
        messages: app.phones[i].contact.is_some() && app.outbox.is_some(),
        several: app.phones.len() > 1,
    };
    match views::home(lang, i, &app.form_token, &phone, &shown) {
        Ok(body) => page(StatusCode::OK, body),
        Err(e) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            Some(i),
            Shown::device(&e, lang),
        ),
    }
}

/// A form post's token.
#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    form: String,
}

pub(crate) fn token_ok(app: &App, given: &str) -> bool {
    // Not secret against timing on loopback, but constant-length compare anyway.
    given.len() == app.form_token.len()
        && given
            .bytes()
            .zip(app.form_token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub(crate) fn expired_form(lang: Lang, i: usize) -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        lang,
        Some(i),
        Shown::form(FormError::FormExpired, lang),
    )
}

/// 「今すぐ確認」: starts an exposure check (unless one runs) and goes back
/// to the home screen at once, which shows its progress and then its result
/// (the last check, or why it failed).
async fn check_now(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    if !token_ok(&app, &f.form) {
        return expired_form(lang_of(&headers, None), i);
    }
    start_check(&app, i, "button");
    Redirect::to(&phone_path(i)).into_response()
}

/// The registration form as posted.
#[derive(Debug, Default, Deserialize)]
struct RegisterForm {
    #[serde(default)]
    form: String,
    /// `yes` / `no`.
    symptoms: Option<String>,
    #[serde(default)]
    date: String,
    #[serde(default)]
    number: String,
    /// The token of an opened app link (the number itself stays on the server).
    #[serde(default)]
    link: String,
}

/// What the registration form shows again after a refused post (never
/// the number).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filled {
    pub symptoms: Option<bool>,
    pub date: String,
    pub number: String,
    /// The token of an opened app link: ③ says the number is filled in.
    pub link: Option<String>,
}

/// `?link=<token>`: the registration opened from an app link.
#[derive(Debug, Default, Deserialize)]
struct RegisterQuery {
    link: Option<String>,
}

async fn register_form(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    query: Result<Query<RegisterQuery>, QueryRejection>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    let phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    let link = query.ok().and_then(|q| q.0.link);
    let (filled, error) = match link {
        Some(t) if app.link_code(&t, i).is_some() => (
            Filled {
                link: Some(t),
                ..Filled::default()
            },
            None,
        ),
        Some(_) => (
            Filled::default(),
            Some(Shown::form(FormError::LinkExpired, lang)),
        ),
        None => (Filled::default(), None),
    };
    page(
        StatusCode::OK,
        views::register(lang, i, &app.form_token, &phone, &filled, error),
    )
}

/// Checks the three inputs as the CLI does: the symptom answer, the date
/// (not in the future, not more than 14 days back: 「陽性登録から遡って14日間」),
/// and the number ([`device::normalise_number`]: full-width digits, spaces and
/// hyphens accepted).
fn read_input(
    f: &RegisterForm,
    now: chrono::DateTime<chrono::Utc>,
    link: Option<Option<Code>>,
) -> Result<RegistrationInput, Result<FormError, device::Error>> {
    let symptoms = match f.symptoms.as_deref() {
        Some("yes") => true,
        Some("no") => false,
        _ => return Err(Ok(FormError::SymptomsMissing)),
    };
    if f.date.trim().is_empty() {
        return Err(Ok(FormError::DateMissing));
    }
    let date = device::window::parse_date(&f.date).map_err(Err)?;
    device::window::check_registration_date(date, now).map_err(Err)?;
    let code = match link {
        Some(Some(code)) => code,
        Some(None) => return Err(Ok(FormError::LinkExpired)),
        None => device::normalise_number(&f.number).map_err(Err)?,
    };
    Ok(RegistrationInput {
        symptoms,
        date,
        code,
    })
}

/// 「登録する」 on the form: checks the inputs and shows the confirmation,
/// or the form again with the message. Nothing is stored either way; the
/// input waits in memory for the confirmation.
async fn register_submit(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    if !token_ok(&app, &f.form) {
        return expired_form(lang_of(&headers, None), i);
    }
    let phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    let link = (!f.link.is_empty()).then(|| app.link_code(&f.link, i));
    match read_input(&f, phone.now(), link) {
        Ok(input) => {
            if !f.link.is_empty() {
                app.links
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&f.link);
            }
            let token = random_hex();
            let shown = views::Confirm::of(lang, i, &app.form_token, &token, &input);
            let mut pending = app.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.retain(|_, p| p.created.elapsed() < PENDING_TTL);
            pending.insert(
                token,
                Pending {
                    phone: i,
                    input,
                    created: Instant::now(),
                },
            );
            drop(pending);
            page(StatusCode::OK, shown)
        }
        Err(e) => {
            let shown = match &e {
                Ok(fe) => Shown::form(*fe, lang),
                Err(de) => Shown::device(de, lang),
            };
            metrics::counter!("phone_ui_form_refused_total", "code" => shown.code.clone())
                .increment(1);
            let link = match &e {
                Ok(FormError::LinkExpired) => None,
                _ => (!f.link.is_empty()).then(|| f.link.clone()),
            };
            let filled = Filled {
                symptoms: f.symptoms.as_deref().map(|s| s == "yes"),
                date: f.date.clone(),
                number: String::new(),
                link,
            };
            page(
                StatusCode::BAD_REQUEST,
                views::register(lang, i, &app.form_token, &phone, &filled, Some(shown)),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    form: String,
    #[serde(default)]
    pending: String,
}

/// The confirmation's 「登録する」: registers through
/// [`device::Phone::register`] and shows the result.
async fn register_confirm(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    Form(f): Form<ConfirmForm>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    if !token_ok(&app, &f.form) {
        return expired_form(lang_of(&headers, None), i);
    }
    let taken = {
        let mut pending = app.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .remove(&f.pending)
            .filter(|p| p.phone == i && p.created.elapsed() < PENDING_TTL)
    };
    let Some(p) = taken else {
        return expired_form(lang_of(&headers, None), i);
    };
    registered(&app, i, &headers, Some(p.input)).await
}

/// Resumes a registration interrupted by network trouble (the number is
/// not used again: the device goes on from the last step answered).
async fn register_resume(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    if !token_ok(&app, &f.form) {
        return expired_form(lang_of(&headers, None), i);
    }
    registered(&app, i, &headers, None).await
}

async fn registered(
    app: &App,
    i: usize,
    headers: &HeaderMap,
    input: Option<RegistrationInput>,
) -> Response {
    let _guard = app.phones[i].lock.lock().await;
    let mut phone = match open_or_page(app, i, headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(headers, Some(&phone));
    let result = phone.register(input.as_ref()).await;
    drop(input);
    metrics::counter!("phone_ui_registrations_total", "result" => match &result {
        Ok(_) => "published",
        Err(e) => e.code(),
    })
    .increment(1);
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) if e.is_input() => StatusCode::BAD_REQUEST,
        Err(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    page(status, views::result(lang, i, &app.form_token, &result))
}

/// The app link of the SMS, `/cocoa/a/?pn=<code>`: with one phone it opens
/// that phone's registration with the number filled in; with several it
/// asks which phone opens it.
async fn app_link_any(
    State(app): AppState,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let target = (app.phones.len() == 1).then_some(0);
    app_link(&app, target, &headers, query).await
}

/// `/p/<n>/cocoa/a/?pn=<code>`: the app link opened on phone `n`.
async fn app_link_phone(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    app_link(&app, Some(i), &headers, query).await
}

/// Reads `pn` ([`device::parse_link_code`]: the 8-digit number, full-width
/// digits, spaces and hyphens accepted, or the 20-symbol code), keeps it in
/// memory under a random token and redirects to the form with the token,
/// so that the number leaves the address bar and appears on no page. A
/// garbage `pn` gets the device's message (`link_malformed`); nothing is kept.
async fn app_link(
    app: &App,
    target: Option<usize>,
    headers: &HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let lang = match target {
        Some(i) => lang_of(headers, app.open(i).ok().as_ref()),
        None => lang_of(headers, None),
    };
    let pairs = query.map(|q| q.0).unwrap_or_default();
    let pns: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "pn")
        .map(|(_, v)| v.as_str())
        .collect();
    let code = match pns.as_slice() {
        [one] => device::parse_link_code(one),
        [] => Err(device::Error::LinkMalformed {
            reason: "no pn parameter",
        }),
        _ => Err(device::Error::LinkMalformed {
            reason: "pn given twice",
        }),
    };
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            metrics::counter!("phone_ui_app_links_total", "result" => e.code()).increment(1);
            let next = target.map(|i| {
                (
                    format!("/p/{i}/register"),
                    Text::new(
                        "処理番号を入力して登録する",
                        "Enter the number and register",
                    )
                    .get(lang)
                    .to_owned(),
                )
            });
            return page(
                StatusCode::BAD_REQUEST,
                views::message(lang, target, Shown::device(&e, lang), false, next),
            );
        }
    };
    metrics::counter!("phone_ui_app_links_total", "result" => "opened").increment(1);
    let token = random_hex();
    {
        let mut links = app.links.lock().unwrap_or_else(|p| p.into_inner());
        links.retain(|_, l| l.created.elapsed() < PENDING_TTL);
        links.insert(
            token.clone(),
            LinkCode {
                phone: target,
                code,
                created: Instant::now(),
            },
        );
    }
    match target {
        Some(i) => Redirect::to(&format!("/p/{i}/register?link={token}")).into_response(),
        None => {
            let homes: Vec<String> = app
                .phones
                .iter()
                .map(|s| s.home.display().to_string())
                .collect();
            page(StatusCode::OK, views::choose_phone(lang, &homes, &token))
        }
    }
}

/// The notification (the seed's FAQ 問2).
async fn notification(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    let phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    match phone.notification() {
        Ok(n) => page(StatusCode::OK, views::notification(lang, i, &n)),
        Err(e) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            Some(i),
            Shown::device(&e, lang),
        ),
    }
}

/// `?saved=1` after the settings were saved.
#[derive(Debug, Default, Deserialize)]
struct InfoQuery {
    saved: Option<String>,
}

/// Information: FAQ 問1–問4, privacy, settings, deleting all data.
async fn info(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    query: Result<Query<InfoQuery>, QueryRejection>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    let phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    let saved = query.is_ok_and(|q| q.0.saved.is_some());
    page(
        StatusCode::OK,
        views::info(
            lang,
            i,
            &app.form_token,
            phone.settings(),
            phone.configuration_state().ok().as_ref(),
            None,
            saved,
        ),
    )
}

/// The settings form.
#[derive(Debug, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    form: String,
    /// A prefecture code, or empty for none.
    #[serde(default)]
    prefecture: String,
    #[serde(default)]
    lang: String,
}

/// Saves the prefecture and the language through
/// [`device::Phone::update_settings`] (as `cocoa app configure`); a refused
/// value changes nothing.
async fn save_settings(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    Form(f): Form<SettingsForm>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    if !token_ok(&app, &f.form) {
        return expired_form(lang_of(&headers, None), i);
    }
    let _guard = app.phones[i].lock.lock().await;
    let mut phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    let chosen = match f.lang.as_str() {
        "ja" => Ok(Lang::Ja),
        "en" => Ok(Lang::En),
        _ => Err(Shown::form(FormError::LangInvalid, lang)),
    };
    let prefecture = if f.prefecture.trim().is_empty() {
        Ok(None)
    } else {
        <device::prefecture::Prefecture as device::prefecture::ParsePrefecture>::parse(
            &f.prefecture,
        )
        .map(|p| Some(p.code.to_owned()))
        .map_err(|e| Shown::device(&e, lang))
    };
    let result = match (chosen, prefecture) {
        (Ok(l), Ok(p)) => {
            let mut s = phone.settings().clone();
            s.lang = l;
            s.prefecture = p;
            phone
                .update_settings(s)
                .map(|()| l)
                .map_err(|e| Shown::device(&e, lang))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match result {
        Ok(l) => {
            let value = if l == Lang::En { "en" } else { "ja" };
            (
                [(
                    header::SET_COOKIE,
                    format!("lang={value}; Path=/; SameSite=Lax; Max-Age=31536000"),
                )],
                Redirect::to(&format!("/p/{i}/info?saved=1")),
            )
                .into_response()
        }
        Err(shown) => {
            metrics::counter!("phone_ui_form_refused_total", "code" => shown.code.clone())
                .increment(1);
            page(
                StatusCode::BAD_REQUEST,
                views::info(
                    lang,
                    i,
                    &app.form_token,
                    phone.settings(),
                    phone.configuration_state().ok().as_ref(),
                    Some(shown),
                    false,
                ),
            )
        }
    }
}

/// 「すべてのデータを削除」: first the confirmation (nothing is deleted yet).
async fn erase_ask(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    if !token_ok(&app, &f.form) {
        return expired_form(lang_of(&headers, None), i);
    }
    let _guard = app.phones[i].lock.lock().await;
    let phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    page(
        StatusCode::OK,
        views::erase_confirm(lang, i, &app.form_token),
    )
}

/// The confirmation's 「削除する」: [`device::Phone::erase_all_data`]; the
/// numbers this UI held for the phone are forgotten too.
async fn erase_confirm(
    State(app): AppState,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    if i >= app.phones.len() {
        return not_found(lang_of(&headers, None));
    }
    if !token_ok(&app, &f.form) {
        return expired_form(lang_of(&headers, None), i);
    }
    let _guard = app.phones[i].lock.lock().await;
    let mut phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    let result = phone.erase_all_data();
    metrics::counter!("phone_ui_erasures_total", "result" => match &result {
        Ok(()) => "erased",
        Err(e) => e.code(),
    })
    .increment(1);
    match result {
        Ok(()) => {
            app.forget_numbers_of(i);
            page(
                StatusCode::OK,
                views::message(
                    lang,
                    Some(i),
                    Shown {
                        code: "erased".into(),
                        text: Text::new(
                            "このスマートフォンのデータ（接触の記録、鍵、接触確認の結果、陽性登録の記録）をすべて削除しました。設定は残っています。",
                            "All data of this phone (contact records, keys, check results, registrations) was deleted. The settings remain.",
                        )
                        .get(lang)
                        .into(),
                    },
                    true,
                    None,
                ),
            )
        }
        Err(e) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            Some(i),
            Shown::device(&e, lang),
        ),
    }
}

async fn set_lang(UrlPath((i, to)): UrlPath<(usize, String)>) -> Response {
    let value = if to == "en" { "en" } else { "ja" };
    (
        [(
            header::SET_COOKIE,
            format!("lang={value}; Path=/; SameSite=Lax; Max-Age=31536000"),
        )],
        Redirect::to(&phone_path(i)),
    )
        .into_response()
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../templates/phone.css"),
    )
        .into_response()
}

/// The folder of each phone, for the CLI's banner.
pub fn describe(homes: &[PathBuf], base: &str) -> Vec<String> {
    homes
        .iter()
        .enumerate()
        .map(|(i, h): (usize, &PathBuf)| {
            format!("{base}{} — {}", phone_path(i), Path::new(h).display())
        })
        .collect()
}
