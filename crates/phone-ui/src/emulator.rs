//! Emulator mode, for demos and training: the messages the issuer's
//! development outbox holds for a phone (the SMS with its tappable link),
//! and 「接触させる」 — two phones together for N minutes at d metres
//! ([`device::meet`], the path-loss model of `cocoa app meet`).
//!
//! The outbox is read as files (`{"channel", "to", "subject"?, "body",
//! "sent_at"}`, one JSON file a message); this crate never links the issuer.
//! The SMS holds the processing number, so the messages screen shows it:
//! that is the phone's inbox, before anything was submitted.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use device::Text;
use serde::Deserialize;

use crate::views;
use crate::{
    App, FormError, Shown, expired_form, lang_of, message_page, not_found, open_or_page, page,
    token_ok,
};

/// Messages shown at most (newest first).
pub const MAX_MESSAGES: usize = 50;

/// One outbox file.
#[derive(Debug, Clone, Deserialize)]
struct OutboxFile {
    channel: String,
    to: String,
    #[serde(default)]
    subject: Option<String>,
    body: String,
    #[serde(default)]
    sent_at: String,
}

/// One line of a message: text, or a link the phone opens itself.
#[derive(Debug, Clone)]
pub struct Line {
    /// The text as sent.
    pub text: String,
    /// For the app link: the same path on this phone (`/p/n/cocoa/a/?pn=…`).
    pub href: Option<String>,
}

/// A message for the phone.
#[derive(Debug, Clone)]
pub struct Message {
    /// `SMS` or `メール` / `E-mail`.
    pub channel: String,
    /// When it was sent (JST), as the page's language writes it.
    pub sent: String,
    /// Subject (e-mail).
    pub subject: Option<String>,
    /// The body, line by line.
    pub lines: Vec<Line>,
    sort: DateTime<Utc>,
}

/// A phone number or an e-mail address, as compared: lower case for an
/// address; the digits for a number, `+81` read as the leading 0.
pub fn recipient_key(s: &str) -> String {
    let s = s.trim();
    if s.contains('@') {
        return s.to_lowercase();
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    match digits.strip_prefix("81") {
        Some(rest) if s.starts_with('+') => format!("0{rest}"),
        _ => digits,
    }
}

/// The line of an app link (`https://<host>/cocoa/a/?pn=…`) as the same
/// path on phone `i`.
fn app_link_on(line: &str, i: usize) -> Option<String> {
    let rest = line.trim().strip_prefix("https://")?;
    let at = rest.find("/cocoa/a/?")?;
    let path = &rest[at..];
    path.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/?=&-_.%".contains(c))
        .then(|| format!("/p/{i}{path}"))
}

/// The messages of `outbox` sent to `contact`, newest first.
pub fn read_messages(
    outbox: &Path,
    contact: &str,
    i: usize,
    lang: device::Lang,
) -> std::io::Result<Vec<Message>> {
    let key = recipient_key(contact);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(outbox) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<OutboxFile>(&bytes) else {
            continue;
        };
        if recipient_key(&m.to) != key {
            continue;
        }
        let sort = DateTime::parse_from_rfc3339(&m.sent_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        out.push(Message {
            channel: match (m.channel.as_str(), lang) {
                ("email", device::Lang::Ja) => "メール".into(),
                ("email", device::Lang::En) => "E-mail".into(),
                _ => "SMS".into(),
            },
            sent: views::jst_time(sort, lang),
            subject: m.subject,
            lines: m
                .body
                .lines()
                .map(|l| Line {
                    text: l.to_owned(),
                    href: app_link_on(l, i),
                })
                .collect(),
            sort,
        });
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.sort));
    out.truncate(MAX_MESSAGES);
    Ok(out)
}

/// `/p/n/messages`: the phone's SMS and e-mails from the outbox.
pub(crate) async fn messages(
    State(app): State<Arc<App>>,
    UrlPath(i): UrlPath<usize>,
    headers: HeaderMap,
) -> Response {
    let (Some(outbox), Some(contact)) = (
        app.outbox.as_ref(),
        app.phones.get(i).and_then(|s| s.contact.as_ref()),
    ) else {
        return not_found(lang_of(&headers, None));
    };
    let phone = match open_or_page(&app, i, &headers) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let lang = lang_of(&headers, Some(&phone));
    match read_messages(outbox, contact, i, lang) {
        Ok(list) => page(StatusCode::OK, views::messages(lang, i, contact, &list)),
        Err(e) => message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            lang,
            Some(i),
            Shown {
                code: "outbox_unreadable".into(),
                text: Text::new(
                    format!("送信済みメッセージのフォルダーを読めません: {e}"),
                    format!("Cannot read the outbox: {e}"),
                )
                .get(lang)
                .into(),
            },
        ),
    }
}

/// 「接触させる」: the form.
pub(crate) async fn meet_form(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers, None);
    page(
        StatusCode::OK,
        views::meet(lang, app.phones.len(), &app.form_token, None, None),
    )
}

/// 「接触させる」 as posted.
#[derive(Debug, Deserialize)]
pub(crate) struct MeetForm {
    #[serde(default)]
    form: String,
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    distance: String,
}

/// 「接触させる」: phones `a` and `b` were together for `minutes` until now
/// at `distance` metres ([`device::meet`], which checks everything before
/// either phone records anything).
pub(crate) async fn meet_submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<MeetForm>,
) -> Response {
    let lang = lang_of(&headers, None);
    if !token_ok(&app, &f.form) {
        return expired_form(lang, 0);
    }
    let n = app.phones.len();
    let phone_of = |s: &str| s.trim().parse::<usize>().ok().filter(|i| *i < n);
    let input = match (phone_of(&f.a), phone_of(&f.b)) {
        (Some(a), Some(b)) => match f.minutes.trim().parse::<u32>() {
            Ok(m) => match f.distance.trim().parse::<f64>() {
                Ok(d) if d.is_finite() => Ok((a, b, m, d)),
                _ => Err(Shown::form(FormError::DistanceInvalid, lang)),
            },
            Err(_) => Err(Shown::form(FormError::MinutesInvalid, lang)),
        },
        _ => Err(Shown::form(FormError::PhoneInvalid, lang)),
    };
    let result = match input {
        Ok((a, b, minutes, distance)) => together(&app, a, b, minutes, distance)
            .await
            .map(|r| (a, b, minutes, distance, r))
            .map_err(|e| Shown::device(&e, lang)),
        Err(e) => Err(e),
    };
    metrics::counter!("phone_ui_meetings_total", "result" => match &result {
        Ok(_) => "met".to_owned(),
        Err(e) => e.code.clone(),
    })
    .increment(1);
    match result {
        Ok((a, b, minutes, distance, r)) => {
            let done = match lang {
                device::Lang::Ja => format!(
                    "スマートフォン {a} と {b} が、いままでの{minutes}分間、{distance} mの距離で接触しました（スキャン{}回、受信強度 {} dBm）。",
                    r.scans, r.rssi_a
                ),
                device::Lang::En => format!(
                    "Phones {a} and {b} were together for the last {minutes} minutes at {distance} m ({} scans, RSSI {} dBm).",
                    r.scans, r.rssi_a
                ),
            };
            page(
                StatusCode::OK,
                views::meet(lang, n, &app.form_token, None, Some(done)),
            )
        }
        Err(shown) => page(
            StatusCode::BAD_REQUEST,
            views::meet(lang, n, &app.form_token, Some(shown), None),
        ),
    }
}

/// Opens both phones (locked in index order) and records the meeting.
async fn together(
    app: &App,
    a: usize,
    b: usize,
    minutes: u32,
    distance: f64,
) -> device::Result<device::MeetReport> {
    let (first, second) = (a.min(b), a.max(b));
    let _g1 = app.phones[first].lock.lock().await;
    let _g2 = if first == second {
        None
    } else {
        Some(app.phones[second].lock.lock().await)
    };
    let mut pa = app.open(a)?;
    let mut pb = app.open(b)?;
    let at = pa.now() - Duration::minutes(i64::from(minutes));
    device::meet(&mut pa, &mut pb, at, minutes, distance)
}
