//! `cocoa app …`: the phone app (the `device` crate) on the command line, one
//! folder per phone. The contract other tools rely on is in docs/device.md.
//!
//! `beacon` always prints its JSON object on stdout (the contract); every
//! other command prints text for people (Japanese words, Japan time to the
//! minute, the prefecture by name), or one JSON object with `--json`. Errors go to stderr in the chosen language; with `--json` an
//! `{"error": {"code", "ja", "en", "retryable"}}` object is also printed on
//! stdout. Bad input exits with status 2, anything else with 1.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use device::prefecture::CentreOverride;
use device::{Lang, Phone, RegistrationInput, Settings, SightingInput};
use en_protocol::time::{Clock, FixedClock, SystemClock};
use serde_json::json;

use super::{bad_input, print_json};

mod render;

/// Global options of `cocoa app`.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// The phone's folder (give it twice for `meet`).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Vec<PathBuf>,
    /// The phone's clock, RFC 3339 (e.g. 2020-12-16T12:00:00+09:00); the
    /// system clock when absent.
    #[arg(long, global = true, value_name = "RFC 3339")]
    pub now: Option<String>,
    /// Print one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
    /// Language of messages (default: the phone's setting, Japanese).
    #[arg(long, global = true, value_enum)]
    pub lang: Option<LangArg>,
    #[command(subcommand)]
    pub command: AppCommand,
}

/// `--lang`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    /// 日本語.
    Ja,
    /// English.
    En,
}

/// ① 「次のような症状がありますか？」
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum YesNo {
    /// ある.
    #[value(alias = "ある")]
    Yes,
    /// ない.
    #[value(alias = "ない")]
    No,
}

/// Settings given to `init` and `configure`.
#[derive(Debug, Args, Default)]
pub struct SettingsArgs {
    /// Prefecture: code 01–47 or name (東京都, Tokyo), for the consultation centre.
    #[arg(long)]
    pub prefecture: Option<String>,
    /// Base URL of the issuer's device API (/api/verify, /api/certificate).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// API key of the device API (X-API-Key).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Base URL of the key server (/v1/publish); the server's when absent.
    #[arg(long, value_name = "URL")]
    pub keyserver: Option<String>,
    /// URL of the export index (…/index.txt or …/list.json; http(s):// or
    /// file://); <keyserver>/exports/index.txt when absent.
    #[arg(long, value_name = "URL")]
    pub exports: Option<String>,
    /// File with the SPKI PEM public key(s) export files must be signed with.
    #[arg(long, value_name = "PEM FILE")]
    pub export_public_key: Option<PathBuf>,
    /// healthAuthorityID of publish requests (default cocoa).
    #[arg(long)]
    pub health_authority_id: Option<String>,
    /// Region export files must be for (default 440).
    #[arg(long)]
    pub region: Option<String>,
    /// TX power advertised in the metadata, dBm (default -8).
    #[arg(long, allow_hyphen_values = true)]
    pub tx_power: Option<i64>,
    /// Default language of messages.
    #[arg(long = "language", value_enum)]
    pub language: Option<LangArg>,
    /// JSON file of consultation centres overriding the built-in table:
    /// [{"prefecture","name","phone","url","hours"}].
    #[arg(long, value_name = "JSON FILE")]
    pub consultation_centres: Option<PathBuf>,
    /// URL of such a list, fetched at every check.
    #[arg(long, value_name = "URL")]
    pub consultation_centres_url: Option<String>,
}

/// The commands of `cocoa app`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Sets up a new phone in --home and makes today's key.
    Init(SettingsArgs),
    /// Changes the settings of a phone.
    Configure(SettingsArgs),
    /// Serves the phone's screens in a browser (several --home: several phones).
    Ui(super::app_ui::UiArgs),
    /// Prints what the phone broadcasts: {"rpi", "aem", "interval"}.
    Beacon {
        /// The moment (RFC 3339); now when absent.
        #[arg(long, value_name = "RFC 3339")]
        at: Option<String>,
    },
    /// Records an advertisement the phone heard.
    Sight {
        /// RPI, 32 hex digits.
        #[arg(long)]
        rpi: String,
        /// AEM, 8 hex digits.
        #[arg(long)]
        aem: String,
        /// RSSI, dBm (-127..=20).
        #[arg(long, allow_hyphen_values = true)]
        rssi: i64,
        /// When (RFC 3339).
        #[arg(long, value_name = "RFC 3339")]
        at: String,
        /// Seconds of contact the sighting stands for (1..=3600).
        #[arg(long, default_value_t = 240, allow_hyphen_values = true)]
        seconds: i64,
    },
    /// Two phones (--home A --home B) near each other: both record the other
    /// every 4 minutes, with RSSI from a path-loss model of the distance.
    Meet {
        /// Start of the meeting (RFC 3339).
        #[arg(long, value_name = "RFC 3339")]
        at: String,
        /// Minutes together.
        #[arg(long)]
        minutes: u32,
        /// Distance in metres.
        #[arg(long)]
        distance: f64,
    },
    /// Registers a positive result (陽性情報の登録); without inputs, resumes
    /// the registration in progress.
    Register {
        /// ① 次のような症状がありますか？ yes (ある) / no (ない).
        #[arg(long, value_enum)]
        symptoms: Option<YesNo>,
        /// ② The first day of symptoms, or the test date when none (YYYY-MM-DD).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
        /// ③ The processing number from the SMS or e-mail.
        #[arg(long, conflicts_with = "link")]
        number: Option<String>,
        /// The app link of the SMS: https://<host>/cocoa/a/?pn=<code>.
        #[arg(long, value_name = "URL")]
        link: Option<String>,
    },
    /// Checks for exposure; prints a short summary, or with --json
    /// {"last_checked", "contacts", "dates", "consultation_centre", …}.
    Check,
    /// Shows the phone's state.
    Status,
}

/// Parses an RFC 3339 time given on the command line.
fn parse_time(what: &str, s: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad_input(format!(
                "{what} の日時「{s}」を読み取れません。RFC 3339 の形（例: 2020-12-16T12:00:00+09:00）で指定してください。 / Cannot read {what} {s:?}: use RFC 3339, e.g. 2020-12-16T12:00:00+09:00."
            ))
        })
}

/// What the CLI needs to run a command.
struct Ctx {
    clock: Arc<dyn Clock>,
    json: bool,
    lang: Option<Lang>,
}

impl Ctx {
    fn rng() -> device::Rng {
        Box::new(rand::rngs::OsRng)
    }

    fn open(&self, home: &Path) -> Result<Phone, device::Error> {
        Phone::open(home, self.clock.clone(), Self::rng())
    }

    fn lang(&self, phone: Option<&Phone>) -> Lang {
        self.lang
            .or_else(|| phone.map(|p| p.settings().lang))
            .unwrap_or_default()
    }

    /// Turns a device error into the CLI's error (and its JSON when asked).
    fn fail(&self, lang: Lang, e: device::Error) -> anyhow::Error {
        let text = e.text();
        if self.json {
            let _ = print_json(&json!({"error": {
                "code": e.code(),
                "ja": text.ja,
                "en": text.en,
                "retryable": e.is_retryable(),
            }}));
        }
        let msg = format!("[{}] {}", e.code(), text.get(lang));
        if e.is_input() {
            bad_input(msg)
        } else {
            anyhow::anyhow!(msg)
        }
    }
}

fn one_home(homes: &[PathBuf]) -> anyhow::Result<&Path> {
    match homes {
        [h] => Ok(h),
        [] => Err(bad_input(
            "--home でスマートフォンのフォルダを指定してください。 / Give the phone's folder with --home.",
        )),
        _ => Err(bad_input(
            "--home は1つだけ指定してください（meet は2つ）。 / Give exactly one --home (two for meet).",
        )),
    }
}

fn apply(settings: &mut Settings, a: &SettingsArgs) -> anyhow::Result<Option<Vec<CentreOverride>>> {
    if let Some(v) = &a.prefecture {
        settings.prefecture = Some(v.clone());
    }
    if let Some(v) = &a.server {
        settings.server = Some(v.clone());
    }
    if let Some(v) = &a.api_key {
        settings.api_key = Some(v.clone());
    }
    if let Some(v) = &a.keyserver {
        settings.keyserver = Some(v.clone());
    }
    if let Some(v) = &a.exports {
        settings.exports = Some(v.clone());
    }
    if let Some(path) = &a.export_public_key {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        settings.export_public_keys = vec![pem];
    }
    if let Some(v) = &a.health_authority_id {
        settings.health_authority_id = v.clone();
    }
    if let Some(v) = &a.region {
        settings.region = v.clone();
    }
    if let Some(v) = a.tx_power {
        settings.tx_power = device::phone::check_tx_power(v).map_err(|e| bad_input(e.text()))?;
    }
    if let Some(l) = a.language {
        settings.lang = lang_of(l);
    }
    if let Some(v) = &a.consultation_centres_url {
        settings.consultation_centres_url = Some(v.clone());
    }
    a.consultation_centres
        .as_ref()
        .map(|path| -> anyhow::Result<Vec<CentreOverride>> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| {
                bad_input(format!(
                    "{} は受診・相談センターの一覧として読めません: {e} / {} is not a list of consultation centres: {e}",
                    path.display(),
                    path.display()
                ))
            })
        })
        .transpose()
}

fn lang_of(l: LangArg) -> Lang {
    match l {
        LangArg::Ja => Lang::Ja,
        LangArg::En => Lang::En,
    }
}

pub fn run(args: AppArgs) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = match &args.now {
        Some(s) => Arc::new(FixedClock::new(parse_time("--now", s)?)),
        None => Arc::new(SystemClock),
    };
    let ctx = Ctx {
        clock,
        json: args.json,
        lang: args.lang.map(lang_of),
    };
    match args.command {
        AppCommand::Init(a) => init(&ctx, one_home(&args.home)?, &a),
        AppCommand::Configure(a) => configure(&ctx, one_home(&args.home)?, &a),
        AppCommand::Beacon { at } => beacon(&ctx, one_home(&args.home)?, at.as_deref()),
        AppCommand::Sight {
            rpi,
            aem,
            rssi,
            at,
            seconds,
        } => sight(&ctx, one_home(&args.home)?, &rpi, &aem, rssi, &at, seconds),
        AppCommand::Meet {
            at,
            minutes,
            distance,
        } => meet(&ctx, &args.home, &at, minutes, distance),
        AppCommand::Register {
            symptoms,
            date,
            number,
            link,
        } => register(&ctx, one_home(&args.home)?, symptoms, date, number, link),
        AppCommand::Check => check(&ctx, one_home(&args.home)?),
        AppCommand::Status => status(&ctx, one_home(&args.home)?),
        AppCommand::Ui(a) => super::app_ui::run(ctx.clock.clone(), &args.home, &a),
    }
}

fn init(ctx: &Ctx, home: &Path, a: &SettingsArgs) -> anyhow::Result<()> {
    let mut settings = Settings::default();
    let centres = apply(&mut settings, a)?;
    let lang = ctx.lang.unwrap_or(settings.lang);
    let mut phone = Phone::init(home, settings, ctx.clock.clone(), Ctx::rng())
        .map_err(|e| ctx.fail(lang, e))?;
    if let Some(list) = centres {
        phone
            .set_consultation_centres(&list)
            .map_err(|e| ctx.fail(lang, e))?;
    }
    let status = phone.status().map_err(|e| ctx.fail(lang, e))?;
    if ctx.json {
        print_json(&status)
    } else {
        println!("{}", render::initialised(lang, &status));
        Ok(())
    }
}

fn configure(ctx: &Ctx, home: &Path, a: &SettingsArgs) -> anyhow::Result<()> {
    let mut phone = ctx.open(home).map_err(|e| ctx.fail(ctx.lang(None), e))?;
    let lang = ctx.lang(Some(&phone));
    let mut settings = phone.settings().clone();
    let centres = apply(&mut settings, a)?;
    phone
        .update_settings(settings)
        .map_err(|e| ctx.fail(lang, e))?;
    if let Some(list) = centres {
        phone
            .set_consultation_centres(&list)
            .map_err(|e| ctx.fail(lang, e))?;
    }
    if ctx.json {
        print_json(
            &json!({"configured": true, "settings": render::settings_json(phone.settings())}),
        )
    } else {
        println!("{}", render::settings_text(phone.settings()));
        Ok(())
    }
}

fn beacon(ctx: &Ctx, home: &Path, at: Option<&str>) -> anyhow::Result<()> {
    let mut phone = ctx.open(home).map_err(|e| ctx.fail(ctx.lang(None), e))?;
    let lang = ctx.lang(Some(&phone));
    let at = match at {
        Some(s) => parse_time("--at", s)?,
        None => phone.now(),
    };
    let b = phone.beacon(at).map_err(|e| ctx.fail(lang, e))?;
    print_json(&device::BeaconJson::from(b))
}

fn sight(
    ctx: &Ctx,
    home: &Path,
    rpi: &str,
    aem: &str,
    rssi: i64,
    at: &str,
    seconds: i64,
) -> anyhow::Result<()> {
    let mut phone = ctx.open(home).map_err(|e| ctx.fail(ctx.lang(None), e))?;
    let lang = ctx.lang(Some(&phone));
    let input = SightingInput {
        rpi: device::phone::parse_rpi(rpi).map_err(|e| ctx.fail(lang, e))?,
        aem: device::phone::parse_aem(aem).map_err(|e| ctx.fail(lang, e))?,
        rssi,
        at: parse_time("--at", at)?,
        seconds,
    };
    phone
        .record_sightings(&[input])
        .map_err(|e| ctx.fail(lang, e))?;
    if ctx.json {
        print_json(&json!({"recorded": 1}))
    } else {
        println!(
            "{}",
            match lang {
                Lang::Ja => "記録しました。",
                Lang::En => "Recorded.",
            }
        );
        Ok(())
    }
}

fn meet(ctx: &Ctx, homes: &[PathBuf], at: &str, minutes: u32, distance: f64) -> anyhow::Result<()> {
    let [a, b] = homes else {
        return Err(bad_input(
            "meet には --home を2つ指定してください。 / meet needs two --home.",
        ));
    };
    let lang = ctx.lang(None);
    let at = parse_time("--at", at)?;
    let mut pa = ctx.open(a).map_err(|e| ctx.fail(lang, e))?;
    let mut pb = ctx.open(b).map_err(|e| ctx.fail(lang, e))?;
    let report =
        device::meet(&mut pa, &mut pb, at, minutes, distance).map_err(|e| ctx.fail(lang, e))?;
    if ctx.json {
        print_json(&report)
    } else {
        println!("{}", render::met(lang, &report, minutes, distance));
        Ok(())
    }
}

fn register(
    ctx: &Ctx,
    home: &Path,
    symptoms: Option<YesNo>,
    date: Option<String>,
    number: Option<String>,
    link: Option<String>,
) -> anyhow::Result<()> {
    let mut phone = ctx.open(home).map_err(|e| ctx.fail(ctx.lang(None), e))?;
    let lang = ctx.lang(Some(&phone));
    let any = symptoms.is_some() || date.is_some() || number.is_some() || link.is_some();
    let input = if any {
        let (Some(symptoms), Some(date)) = (symptoms, date) else {
            return Err(ctx.fail(lang, device::Error::RegistrationInputMissing));
        };
        let code = match (number, link) {
            (Some(n), _) => device::normalise_number(&n),
            (None, Some(l)) => device::parse_app_link(&l),
            (None, None) => Err(device::Error::RegistrationInputMissing),
        }
        .map_err(|e| ctx.fail(lang, e))?;
        let date = device::window::parse_date(&date).map_err(|e| ctx.fail(lang, e))?;
        Some(RegistrationInput {
            symptoms: symptoms == YesNo::Yes,
            date,
            code,
        })
    } else {
        None
    };
    if !ctx.json
        && let Some(i) = &input
    {
        println!("{}\n", device::text::registration_screen(lang, i.symptoms));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = rt
        .block_on(phone.register(input.as_ref()))
        .map_err(|e| ctx.fail(lang, e))?;
    if ctx.json {
        print_json(&outcome)
    } else {
        println!("{}", render::registered(lang, &outcome));
        Ok(())
    }
}

fn check(ctx: &Ctx, home: &Path) -> anyhow::Result<()> {
    let mut phone = ctx.open(home).map_err(|e| ctx.fail(ctx.lang(None), e))?;
    let lang = ctx.lang(Some(&phone));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(phone.check()).map_err(|e| ctx.fail(lang, e))?;
    if ctx.json {
        print_json(&report)
    } else {
        println!("{}", render::checked(lang, &report));
        Ok(())
    }
}

fn status(ctx: &Ctx, home: &Path) -> anyhow::Result<()> {
    let phone = ctx.open(home).map_err(|e| ctx.fail(ctx.lang(None), e))?;
    let lang = ctx.lang(Some(&phone));
    let status = phone.status().map_err(|e| ctx.fail(lang, e))?;
    if ctx.json {
        print_json(&status)
    } else {
        println!("{}", render::status(lang, &status));
        Ok(())
    }
}
