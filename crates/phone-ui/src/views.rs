//! The pages (askama templates under `templates/`).
//!
//! Dates and times shown to people are Japan's: `en_protocol::time::japan_date`
//! and JST clock times.

use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use device::register::{RegistrationSummary, Stage};
use device::text::{ja_date, screen};
use device::{Lang, Phone, RegistrationInput, RegistrationOutcome};
use en_protocol::time::{japan_date, jst};

use crate::{Filled, Shown, phone_path};

/// A check older than this is a warning on the home screen (the issue:
/// 「a clear warning when it is older than 24 h or when the last check failed」).
pub const STALE_AFTER: Duration = Duration::hours(24);

/// A time in JST, as the page's language writes it:
/// `2020年12月14日 9:05` / `2020-12-14 09:05 JST`.
pub fn jst_time(t: DateTime<Utc>, lang: Lang) -> String {
    let local = t.with_timezone(&jst());
    match lang {
        Lang::Ja => format!("{} {}", ja_date(local.date_naive()), local.format("%-H:%M")),
        Lang::En => local.format("%Y-%m-%d %H:%M JST").to_string(),
    }
}

/// A Japan calendar date in the page's language.
pub fn date_text(d: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::Ja => ja_date(d),
        Lang::En => d.format("%Y-%m-%d").to_string(),
    }
}

/// What every page shares.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Japanese (else English).
    pub ja: bool,
    /// The page title.
    pub title: String,
    /// The phone's home, when the page belongs to a phone.
    pub home: Option<String>,
    /// The language toggle's links.
    pub href_ja: String,
    /// English.
    pub href_en: String,
}

impl Layout {
    fn new(lang: Lang, title: &str, phone: Option<usize>) -> Self {
        let i = phone.unwrap_or(0);
        Self {
            ja: lang == Lang::Ja,
            title: title.into(),
            home: phone.map(phone_path),
            href_ja: format!("/p/{i}/lang/ja"),
            href_en: format!("/p/{i}/lang/en"),
        }
    }

    /// The text in the page's language.
    pub fn t<'a>(&self, ja: &'a str, en: &'a str) -> &'a str {
        if self.ja { ja } else { en }
    }

    /// `ja` / `en`.
    pub fn lang(&self) -> &'static str {
        if self.ja { "ja" } else { "en" }
    }
}

fn tr(lang: Lang, ja: &str, en: &str) -> String {
    match lang {
        Lang::Ja => ja.into(),
        Lang::En => en.into(),
    }
}

/// A page with one message.
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub l: Layout,
    pub m: Shown,
}

pub fn message(lang: Lang, phone: Option<usize>, m: Shown) -> askama::Result<String> {
    let title = tr(lang, "お知らせ", "Notice");
    MessagePage {
        l: Layout::new(lang, &title, phone),
        m,
    }
    .render()
}

/// The list of phones (several `--home`).
#[derive(Debug, Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub l: Layout,
    pub phones: Vec<(String, String)>,
}

pub fn index(lang: Lang, homes: &[String]) -> askama::Result<String> {
    IndexPage {
        l: Layout::new(lang, &tr(lang, "スマートフォン一覧", "Phones"), None),
        phones: homes
            .iter()
            .enumerate()
            .map(|(i, h)| (phone_path(i), h.clone()))
            .collect(),
    }
    .render()
}

/// The home screen.
#[derive(Debug, Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub l: Layout,
    pub i: usize,
    pub form: String,
    /// The last successful check, JST.
    pub last_checked: Option<String>,
    /// The warning: no check yet, older than 24 h, or the last one failed.
    pub warning: Option<String>,
    pub contacts: usize,
    pub dates: Vec<String>,
    pub prefecture: Option<String>,
    /// Whether this phone registered, and when.
    pub registration: String,
    /// A registration waits to be resumed.
    pub resumable: bool,
}

fn registration_line(r: Option<&RegistrationSummary>, lang: Lang) -> String {
    match r {
        None => tr(
            lang,
            "このスマートフォンからは、まだ陽性登録をしていません。",
            "This phone has not registered a positive result.",
        ),
        Some(r) => {
            let at = jst_time(r.updated_at, lang);
            match r.stage {
                Stage::Published => match lang {
                    Lang::Ja => format!("陽性登録は完了しています（{at}）。"),
                    Lang::En => format!("A positive result was registered ({at})."),
                },
                s if s.in_progress() => match lang {
                    Lang::Ja => format!(
                        "陽性登録の途中です（{at}）。通信できるときに「登録を再開する」を押してください。処理番号が無駄になることはありません。"
                    ),
                    Lang::En => format!(
                        "A registration is in progress ({at}). Press “Resume the registration” when you are online; the number is not wasted."
                    ),
                },
                _ => match lang {
                    Lang::Ja => format!(
                        "前回の陽性登録はできませんでした（{at}）。登録するには、新しい処理番号で登録し直してください。"
                    ),
                    Lang::En => format!(
                        "The last registration did not go through ({at}). To register, start again with a new number."
                    ),
                },
            }
        }
    }
}

pub fn home(
    lang: Lang,
    i: usize,
    form: &str,
    phone: &Phone,
) -> device::Result<askama::Result<String>> {
    let status = phone.status()?;
    let now = phone.now();
    let last_checked = status.last_checked.map(|t| jst_time(t, lang));
    let warning = if let Some(f) = &status.last_check_failure {
        Some(match lang {
            Lang::Ja => format!(
                "最後の接触確認（{}）に失敗しました。{}",
                jst_time(f.at, lang),
                f.message.get(lang)
            ),
            Lang::En => format!(
                "The last exposure check ({}) failed. {}",
                jst_time(f.at, lang),
                f.message.get(lang)
            ),
        })
    } else {
        match status.last_checked {
            None => Some(tr(
                lang,
                "まだ接触確認をしていません。「今すぐ確認」を押してください。",
                "No exposure check has run yet. Press “Check now”.",
            )),
            Some(t) if now - t > STALE_AFTER => Some(tr(
                lang,
                "最後の接触確認から24時間以上たっています。接触確認ができていない可能性があります。「今すぐ確認」を押してください。",
                "The last exposure check was more than 24 hours ago: exposure checking may not be working. Press “Check now”.",
            )),
            Some(_) => None,
        }
    };
    let dates = status
        .dates
        .iter()
        .map(|d| match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => date_text(d, lang),
            Err(_) => d.clone(),
        })
        .collect();
    let prefecture = status.prefecture.as_deref().and_then(|p| {
        device::prefecture::Prefecture::parse(p)
            .ok()
            .map(|p| match lang {
                Lang::Ja => p.name_ja.to_string(),
                Lang::En => p.name_en.to_string(),
            })
    });
    let resumable = status
        .registration
        .as_ref()
        .is_some_and(|r| r.stage.in_progress());
    Ok(HomePage {
        l: Layout::new(lang, "COCOA", Some(i)),
        i,
        form: form.into(),
        last_checked,
        warning,
        contacts: status.contacts,
        dates,
        prefecture,
        registration: registration_line(status.registration.as_ref(), lang),
        resumable,
    }
    .render())
}

/// 陽性情報の登録, in the seed's words.
#[derive(Debug, Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub l: Layout,
    pub i: usize,
    pub form: String,
    pub error: Option<Shown>,
    /// `Some(true)`: ある, `Some(false)`: ない.
    pub symptoms: Option<bool>,
    pub date: String,
    pub number: String,
    /// `<input type="date">` bounds: 14 days back to today (Japan).
    pub min: String,
    pub max: String,
    pub symptoms_question: Vec<String>,
    pub onset_label: String,
    pub test_label: String,
    pub number_label: String,
    pub what_happens: Vec<String>,
    pub anonymity: Vec<String>,
    pub period: Vec<String>,
    pub button: String,
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_owned).collect()
}

pub fn register(
    lang: Lang,
    i: usize,
    form: &str,
    phone: &Phone,
    filled: &Filled,
    error: Option<Shown>,
) -> askama::Result<String> {
    let today = japan_date(phone.now());
    let ja = lang == Lang::Ja;
    let pick = |a: &str, b: &str| if ja { a.to_owned() } else { b.to_owned() };
    RegisterPage {
        l: Layout::new(lang, &pick(screen::TITLE, screen::en::TITLE), Some(i)),
        i,
        form: form.into(),
        error,
        symptoms: filled.symptoms,
        date: filled.date.clone(),
        number: filled.number.clone(),
        min: (today - Duration::days(device::window::LOOKBACK_DAYS)).to_string(),
        max: today.to_string(),
        symptoms_question: lines(&pick(
            screen::SYMPTOMS_QUESTION,
            screen::en::SYMPTOMS_QUESTION,
        )),
        onset_label: pick(screen::ONSET_DATE, screen::en::ONSET_DATE),
        test_label: pick(screen::TEST_DATE, screen::en::TEST_DATE),
        number_label: pick(screen::NUMBER, screen::en::NUMBER),
        what_happens: lines(&pick(screen::WHAT_HAPPENS, screen::en::WHAT_HAPPENS)),
        anonymity: lines(&pick(screen::ANONYMITY, screen::en::ANONYMITY)),
        period: lines(&pick(screen::PERIOD_NOTE, screen::en::PERIOD_NOTE)),
        button: pick(screen::BUTTON, screen::en::BUTTON),
    }
    .render()
}

/// The confirmation: what will be sent, never the number.
#[derive(Debug, Template)]
#[template(path = "confirm.html")]
pub struct Confirm {
    pub l: Layout,
    pub i: usize,
    pub form: String,
    pub pending: String,
    pub symptoms: String,
    pub date_label: String,
    pub date: String,
}

impl Confirm {
    pub fn of(
        lang: Lang,
        i: usize,
        form: &str,
        pending: &str,
        input: &RegistrationInput,
    ) -> askama::Result<String> {
        Self {
            l: Layout::new(lang, &tr(lang, "登録内容の確認", "Confirm"), Some(i)),
            i,
            form: form.into(),
            pending: pending.into(),
            symptoms: if input.symptoms {
                tr(lang, "ある", "yes")
            } else {
                tr(lang, "ない", "no")
            },
            date_label: if input.symptoms {
                tr(lang, "症状が始まった日", "First day of symptoms")
            } else {
                tr(lang, "検査を受けた日", "Day of the test")
            },
            date: date_text(input.date, lang),
        }
        .render()
    }
}

/// The result of a registration.
#[derive(Debug, Template)]
#[template(path = "result.html")]
pub struct ResultPage {
    pub l: Layout,
    pub i: usize,
    pub form: String,
    pub ok: bool,
    pub code: String,
    pub text: String,
    /// Network trouble: the registration resumes later.
    pub resumable: bool,
    /// Wrong, expired or used number: a new one from the health centre.
    pub ask_health_centre: bool,
}

pub fn result(
    lang: Lang,
    i: usize,
    form: &str,
    r: &device::Result<RegistrationOutcome>,
) -> askama::Result<String> {
    let (ok, code, text, resumable, ask) = match r {
        Ok(o) => {
            let from = date_text(japan_date(o.contacts_from), lang);
            let extra = match lang {
                Lang::Ja => format!("{from}以降にあなたと接触した人に通知が行きます。"),
                Lang::En => {
                    format!("People you were in contact with from {from} on will be notified.")
                }
            };
            (
                true,
                "published".to_owned(),
                format!("{} {extra}", o.message.get(lang)),
                false,
                false,
            )
        }
        Err(e) => (
            false,
            e.code().to_owned(),
            e.text().get(lang).to_owned(),
            e.is_retryable(),
            matches!(
                e,
                device::Error::CodeInvalid { .. } | device::Error::CodeExpired
            ),
        ),
    };
    ResultPage {
        l: Layout::new(
            lang,
            &if ok {
                tr(lang, "登録が完了しました", "Registered")
            } else {
                tr(lang, "登録できませんでした", "Not registered")
            },
            Some(i),
        ),
        i,
        form: form.into(),
        ok,
        code,
        text,
        resumable,
        ask_health_centre: ask,
    }
    .render()
}
