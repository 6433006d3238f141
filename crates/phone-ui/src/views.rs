//! The pages (askama templates under `templates/`).
//!
//! Dates and times shown to people are Japan's: `en_protocol::time::japan_date`
//! and JST clock times.

use askama::Template;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use device::prefecture::{ConsultationCentre, PREFECTURES, ParsePrefecture, Prefecture};
use device::register::{RegistrationSummary, Stage};
use device::text::{ja_date, screen};
use device::{
    ConfigurationSource, ConfigurationState, Lang, Notification, Phone, RegistrationInput,
    RegistrationOutcome, Settings,
};
use en_protocol::time::{japan_date, jst};

use crate::emulator::Message;
use crate::{Filled, Running, Shown, phone_path};

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
    /// Reload every few seconds (a check is running).
    pub refresh: bool,
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
            refresh: false,
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
    /// A success (else a refusal or an error).
    pub ok: bool,
    /// A link to what to do next: (href, text).
    pub next: Option<(String, String)>,
}

pub fn message(
    lang: Lang,
    phone: Option<usize>,
    m: Shown,
    ok: bool,
    next: Option<(String, String)>,
) -> askama::Result<String> {
    let title = tr(lang, "お知らせ", "Notice");
    MessagePage {
        l: Layout::new(lang, &title, phone),
        m,
        ok,
        next,
    }
    .render()
}

/// The list of phones (several `--home`).
#[derive(Debug, Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub l: Layout,
    /// (href, label, folder).
    pub phones: Vec<(String, String, String)>,
}

fn phone_label(lang: Lang, i: usize) -> String {
    match lang {
        Lang::Ja => format!("スマートフォン {}", i),
        Lang::En => format!("Phone {}", i),
    }
}

pub fn index(lang: Lang, homes: &[String]) -> askama::Result<String> {
    IndexPage {
        l: Layout::new(lang, &tr(lang, "スマートフォン一覧", "Phones"), None),
        phones: homes
            .iter()
            .enumerate()
            .map(|(i, h)| (phone_path(i), phone_label(lang, i), h.clone()))
            .collect(),
    }
    .render()
}

/// `/cocoa/a/` with several phones: which one opens the link.
pub fn choose_phone(lang: Lang, homes: &[String], token: &str) -> askama::Result<String> {
    IndexPage {
        l: Layout::new(
            lang,
            &tr(
                lang,
                "どのスマートフォンで登録しますか？",
                "Which phone registers?",
            ),
            None,
        ),
        phones: homes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    format!("/p/{i}/register?link={token}"),
                    phone_label(lang, i),
                    h.clone(),
                )
            })
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
    /// Whom to call, when there were contacts.
    pub centre: Option<Centre>,
    /// The check running now: its progress line.
    pub checking: Option<String>,
    /// The background checks' cadence line.
    pub cadence: Option<String>,
    /// Emulator: the phone has a messages screen.
    pub messages: bool,
    /// Several phones: 「接触させる」.
    pub several: bool,
}

/// What the home screen shows besides the phone's own state.
#[derive(Debug, Clone, Copy, Default)]
pub struct HomeExtras {
    /// The check running now.
    pub running: Option<Running>,
    /// Background checks every…
    pub check_every: Option<std::time::Duration>,
    /// Emulator: messages.
    pub messages: bool,
    /// Several phones.
    pub several: bool,
}

fn checking_line(r: &Running, files_now: usize, now: DateTime<Utc>, lang: Lang) -> String {
    let done = r.files_before.map(|b| files_now.saturating_sub(b));
    let secs = (now - r.started).num_seconds().max(0);
    match (lang, done) {
        (Lang::Ja, Some(n)) => format!(
            "接触確認をしています…（{}開始、{secs}秒経過、処理したファイル {n}件）。この画面はそのまま使えます。",
            jst_time(r.started, lang)
        ),
        (Lang::Ja, None) => format!(
            "接触確認を始めています…（{}開始）。この画面はそのまま使えます。",
            jst_time(r.started, lang)
        ),
        (Lang::En, Some(n)) => format!(
            "Checking for exposure… (started {}, {secs} s, {n} files processed). You can go on using the app.",
            jst_time(r.started, lang)
        ),
        (Lang::En, None) => format!(
            "Starting the exposure check… (started {}). You can go on using the app.",
            jst_time(r.started, lang)
        ),
    }
}

fn cadence_line(every: std::time::Duration, lang: Lang) -> String {
    let mins = every.as_secs() / 60;
    let (h, m) = (mins / 60, mins % 60);
    match lang {
        Lang::Ja => {
            let span = match (h, m) {
                (0, 0) => format!("{}秒", every.as_secs()),
                (0, m) => format!("{m}分"),
                (h, 0) => format!("{h}時間"),
                (h, m) => format!("{h}時間{m}分"),
            };
            format!("このアプリが動いている間、{span}ごとに自動で接触確認をします。")
        }
        Lang::En => {
            let span = match (h, m) {
                (0, 0) => format!("{} s", every.as_secs()),
                (0, m) => format!("{m} min"),
                (h, 0) => format!("{h} h"),
                (h, m) => format!("{h} h {m} min"),
            };
            format!("While the app runs, it checks for exposure every {span}.")
        }
    }
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
    extras: &HomeExtras,
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
        Prefecture::parse(p).ok().map(|p| match lang {
            Lang::Ja => p.name_ja.to_string(),
            Lang::En => p.name_en.to_string(),
        })
    });
    let resumable = status
        .registration
        .as_ref()
        .is_some_and(|r| r.stage.in_progress());
    let centre = if status.contacts > 0 {
        Some(Centre::of(&phone.notification()?.consultation_centre, lang))
    } else {
        None
    };
    let checking = extras
        .running
        .map(|r| checking_line(&r, status.files_processed, now, lang));
    let mut l = Layout::new(lang, "COCOA", Some(i));
    l.refresh = checking.is_some();
    Ok(HomePage {
        l,
        i,
        form: form.into(),
        last_checked,
        warning,
        contacts: status.contacts,
        dates,
        prefecture,
        registration: registration_line(status.registration.as_ref(), lang),
        resumable,
        centre,
        checking,
        cadence: extras.check_every.map(|e| cadence_line(e, lang)),
        messages: extras.messages,
        several: extras.several,
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
    /// The token of an opened app link (the number is filled in, not shown).
    pub link: Option<String>,
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
        link: filled.link.clone(),
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

/// A `tel:` address: the digits (and a leading `+`) of a number as written.
pub fn tel_href(phone: &str) -> String {
    let digits: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    format!("tel:{digits}")
}

/// `s` with its first letter in upper case (the device's English names
/// start with "the", for use inside a sentence).
fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A consultation centre as a page shows it.
#[derive(Debug, Clone)]
pub struct Centre {
    /// The prefecture's name, when one is set.
    pub prefecture: Option<String>,
    /// The centre's name.
    pub name: String,
    /// Its telephone: (`tel:` address, as written).
    pub phone: Option<(String, String)>,
    /// Its web page (only `http(s)://`).
    pub url: Option<String>,
    /// Its hours.
    pub hours: Option<String>,
    /// The national line.
    pub national_name: String,
    /// The national line's `tel:` address.
    pub national_tel: String,
    /// The national line as written.
    pub national_phone: String,
    /// Its hours.
    pub national_hours: String,
    /// The centre is the national line itself (no prefecture set).
    pub national_only: bool,
}

impl Centre {
    /// From the device's entry, in `lang` (the built-in names in English
    /// are the prefecture's English name).
    pub fn of(c: &ConsultationCentre, lang: Lang) -> Self {
        let pref = Prefecture::parse(&c.prefecture).ok();
        let national_only = pref.is_none();
        let name = match lang {
            Lang::En if !c.name_en.is_empty() => capitalised(&c.name_en),
            Lang::En => match pref {
                Some(p) => format!("The {} consultation centre", p.name_en),
                None => capitalised(&c.national_line.name_en),
            },
            Lang::Ja => c.name.clone(),
        };
        Self {
            prefecture: pref.map(|p| match lang {
                Lang::Ja => p.name_ja.to_owned(),
                Lang::En => p.name_en.to_owned(),
            }),
            name,
            phone: c.phone.as_ref().map(|p| (tel_href(p), p.clone())),
            url: c
                .url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            hours: c.hours.clone(),
            national_name: match lang {
                Lang::En if !c.national_line.name_en.is_empty() => {
                    format!("{} (free dial)", capitalised(&c.national_line.name_en))
                }
                _ => c.national_line.name.clone(),
            },
            national_tel: tel_href(&c.national_line.phone),
            national_phone: c.national_line.phone.clone(),
            national_hours: match lang {
                Lang::En if !c.national_line.hours_en.is_empty() => {
                    c.national_line.hours_en.clone()
                }
                _ => c.national_line.hours.clone(),
            },
            national_only,
        }
    }
}

/// The notification screen (the seed's FAQ 問2): 「接触の件数及び接触の日付を
/// 通知するとともに、各地域の受診・相談センターなどの連絡先を表示」; never the time,
/// the place or the person.
#[derive(Debug, Template)]
#[template(path = "notification.html")]
pub struct NotificationPage {
    pub l: Layout,
    pub i: usize,
    pub contacts: usize,
    /// Each contact day: its Japan date and how long (「約20分」), never the time of day.
    pub days: Vec<(String, String)>,
    pub last_checked: Option<String>,
    pub centre: Centre,
}

/// How long a contact day lasted, as the notification screen says it: 「約20分」, or
/// 「1分未満」 for less than a minute.
pub fn minutes_text(minutes: u32, lang: Lang) -> String {
    match (minutes, lang) {
        (0, Lang::Ja) => "1分未満".into(),
        (0, Lang::En) => "under a minute".into(),
        (1, Lang::En) => "about 1 minute".into(),
        (m, Lang::Ja) => format!("約{m}分"),
        (m, Lang::En) => format!("about {m} minutes"),
    }
}

pub fn notification(lang: Lang, i: usize, n: &Notification) -> askama::Result<String> {
    NotificationPage {
        l: Layout::new(
            lang,
            &tr(lang, "接触の通知", "Exposure notification"),
            Some(i),
        ),
        i,
        contacts: n.contacts,
        days: n
            .contact_dates
            .iter()
            .zip(&n.minutes)
            .map(|(d, m)| (date_text(*d, lang), minutes_text(*m, lang)))
            .collect(),
        last_checked: n.last_checked.map(|t| jst_time(t, lang)),
        centre: Centre::of(&n.consultation_centre, lang),
    }
    .render()
}

/// One question of the seed's FAQ.
#[derive(Debug, Clone)]
pub struct Faq {
    pub id: String,
    pub q: String,
    pub a: String,
}

/// The seed's FAQ 問1–問4 (【別添2】「接触確認アプリへの陽性登録に関するよくある質問」),
/// in its words; the English is ours.
pub fn faq(lang: Lang) -> Vec<Faq> {
    const JA: [(&str, &str); 4] = [
        (
            "問1 新型コロナウイルス感染症の陽性者と診断されましたが、アプリに登録することでどのようなメリットがありますか。",
            "陽性と診断された場合に、あなた自身の同意に基づきアプリに登録いただくことで、あなたと接触した可能性がある方が通知を受け取り、検査の受診など保健所のサポートを早く受けることができます。",
        ),
        (
            "問2 アプリに陽性である旨の登録をした場合、過去に私と接触した方はどのような通知を受け取りますか。私が感染したことが、相手に伝わってしまう可能性はありますか。",
            "陽性者との接触の可能性があるアプリ利用者には、アプリで接触の件数及び接触の日付を通知するとともに、各地域の受診・相談センターなどの連絡先を表示し、検査の受診などをご案内します。あなた個人を特定しうる情報や、接触の時刻が相手に知られることはありません。",
        ),
        (
            "問3 新型コロナウイルス感染症陽性と判明した場合、どのようにアプリでの陽性の登録をしたらいいですか。",
            "アプリへの陽性者の登録を希望する旨を保健所にお伝えください。保健所において、「処理番号」の発行手続を行った後、患者ご本人の携帯電話等に、SMS 又はメールで「処理番号」が届きます。届いた「処理番号」と症状の有無、発症日又は検査日を速やかにアプリ上で入力すると、登録完了します。",
        ),
        (
            "問4 接触確認アプリをまだ利用していません。新型コロナウイルス感染症の陽性者と診断されましたが、これから接触確認アプリをインストールして陽性登録しても良いですか。",
            "新型コロナウイルス感染症の陽性者と診断されてからアプリをインストールいただいても、陽性となった旨の登録や過去に接触した可能性のある方への通知を行うことはできません。",
        ),
    ];
    const EN: [(&str, &str); 4] = [
        (
            "Q1. I was diagnosed with COVID-19. What good does registering in the app do?",
            "If you register, with your consent, people who may have been in contact with you are notified and can get support from the health centre, such as a test, sooner.",
        ),
        (
            "Q2. If I register a positive result, what are the people I met told? Can they learn that I am infected?",
            "App users who may have been in contact with a person who tested positive are told the number and the dates of the contacts, shown the contacts of their region's consultation centre, and advised about getting tested. Nothing that could identify you, and not the time of the contact, is disclosed to them.",
        ),
        (
            "Q3. I tested positive. How do I register in the app?",
            "Tell the health centre that you wish to register in the app. After the health centre issues a processing number, it reaches your phone by SMS or e-mail. Enter that number, whether you have symptoms, and the first day of symptoms or the day of the test in the app promptly, and the registration is complete.",
        ),
        (
            "Q4. I do not use the app yet. I was diagnosed positive: may I install the app now and register?",
            "If you install the app after you were diagnosed, you cannot register the positive result or notify people you may have been in contact with before.",
        ),
    ];
    let list = if lang == Lang::Ja { JA } else { EN };
    list.iter()
        .enumerate()
        .map(|(n, (q, a))| Faq {
            id: format!("faq-{}", n + 1),
            q: (*q).to_owned(),
            a: (*a).to_owned(),
        })
        .collect()
}

/// One `<option>` of the prefecture setting.
#[derive(Debug, Clone)]
pub struct PrefOption {
    pub code: String,
    pub name: String,
    pub selected: bool,
}

/// The information screen.
#[derive(Debug, Template)]
#[template(path = "info.html")]
pub struct InfoPage {
    pub l: Layout,
    pub i: usize,
    pub form: String,
    pub faq: Vec<Faq>,
    pub privacy: Vec<String>,
    pub prefectures: Vec<PrefOption>,
    pub no_prefecture: bool,
    pub error: Option<Shown>,
    pub saved: bool,
    /// Which configuration the phone decides with ([`configuration_line`]).
    pub configuration: Option<String>,
}

/// 「リスク判定の設定: 版 N（配信）」, or 「…: 内蔵（COCOA既定値）」 before the key server
/// served one (issue 14: the served configuration applied, else COCOA's built-in values).
pub fn configuration_line(c: &ConfigurationState, lang: Lang) -> String {
    match (c.source, c.version) {
        (ConfigurationSource::Served, Some(v)) => match lang {
            Lang::Ja => format!("リスク判定の設定: 版 {v}（配信）"),
            Lang::En => format!("Risk decision settings: version {v} (served)"),
        },
        _ => tr(
            lang,
            "リスク判定の設定: 内蔵（COCOA既定値）",
            "Risk decision settings: built-in (COCOA's values)",
        ),
    }
}

pub fn info(
    lang: Lang,
    i: usize,
    form: &str,
    settings: &Settings,
    configuration: Option<&ConfigurationState>,
    error: Option<Shown>,
    saved: bool,
) -> askama::Result<String> {
    let current = settings.prefecture.as_deref();
    let mut privacy = match lang {
        Lang::Ja => lines(screen::ANONYMITY),
        Lang::En => lines(screen::en::ANONYMITY),
    };
    privacy.extend(match lang {
        Lang::Ja => lines(screen::PERIOD_NOTE),
        Lang::En => lines(screen::en::PERIOD_NOTE),
    });
    privacy.push(tr(
        lang,
        "※接触の記録とこのスマートフォンの鍵は、このスマートフォンの中にだけ保存され、14日を過ぎたものは自動で削除されます。",
        "Contact records and this phone's keys are kept only on this phone and are deleted automatically after 14 days.",
    ));
    InfoPage {
        l: Layout::new(
            lang,
            &tr(lang, "情報・設定", "Information and settings"),
            Some(i),
        ),
        i,
        form: form.into(),
        faq: faq(lang),
        privacy,
        prefectures: PREFECTURES
            .iter()
            .map(|p| PrefOption {
                code: p.code.to_owned(),
                name: match lang {
                    Lang::Ja => p.name_ja.to_owned(),
                    Lang::En => p.name_en.to_owned(),
                },
                selected: current == Some(p.code),
            })
            .collect(),
        no_prefecture: current.is_none(),
        error,
        saved,
        configuration: configuration.map(|c| configuration_line(c, lang)),
    }
    .render()
}

/// 「すべてのデータを削除」's confirmation.
#[derive(Debug, Template)]
#[template(path = "erase.html")]
pub struct ErasePage {
    pub l: Layout,
    pub i: usize,
    pub form: String,
}

pub fn erase_confirm(lang: Lang, i: usize, form: &str) -> askama::Result<String> {
    ErasePage {
        l: Layout::new(
            lang,
            &tr(lang, "すべてのデータを削除しますか？", "Delete all data?"),
            Some(i),
        ),
        i,
        form: form.into(),
    }
    .render()
}

/// Emulator: the phone's messages.
#[derive(Debug, Template)]
#[template(path = "messages.html")]
pub struct MessagesPage {
    pub l: Layout,
    pub i: usize,
    pub contact: String,
    pub list: Vec<Message>,
}

pub fn messages(lang: Lang, i: usize, contact: &str, list: &[Message]) -> askama::Result<String> {
    MessagesPage {
        l: Layout::new(
            lang,
            &tr(lang, "メッセージ（SMS・メール）", "Messages (SMS, e-mail)"),
            Some(i),
        ),
        i,
        contact: contact.into(),
        list: list.to_vec(),
    }
    .render()
}

/// Emulator: 「接触させる」.
#[derive(Debug, Template)]
#[template(path = "meet.html")]
pub struct MeetPage {
    pub l: Layout,
    pub form: String,
    /// (value, label).
    pub phones: Vec<(String, String)>,
    pub error: Option<Shown>,
    pub done: Option<String>,
}

pub fn meet(
    lang: Lang,
    n: usize,
    form: &str,
    error: Option<Shown>,
    done: Option<String>,
) -> askama::Result<String> {
    MeetPage {
        l: Layout::new(
            lang,
            &tr(
                lang,
                "接触させる（エミュレーター）",
                "Put phones together (emulator)",
            ),
            None,
        ),
        form: form.into(),
        phones: (0..n)
            .map(|i| (i.to_string(), phone_label(lang, i)))
            .collect(),
        error,
        done,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_line_names_the_served_version_or_cocoas_built_in_values() {
        let served = ConfigurationState {
            version: Some(3),
            source: ConfigurationSource::Served,
            ..ConfigurationState::default()
        };
        assert_eq!(
            configuration_line(&served, Lang::Ja),
            "リスク判定の設定: 版 3（配信）"
        );
        assert_eq!(
            configuration_line(&served, Lang::En),
            "Risk decision settings: version 3 (served)"
        );
        let built_in = ConfigurationState::default();
        assert_eq!(
            configuration_line(&built_in, Lang::Ja),
            "リスク判定の設定: 内蔵（COCOA既定値）"
        );
        assert_eq!(
            configuration_line(&built_in, Lang::En),
            "Risk decision settings: built-in (COCOA's values)"
        );
    }
}
