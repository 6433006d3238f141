//! The pages: one askama template per struct (`templates/*.html`), all
//! extending `base.html` through the [`Layout`] each page carries.

use askama::Template;
use chrono::{Datelike, NaiveDate, TimeZone, Utc};

use super::Msg;
use super::i18n::{Lang, Texts};
use super::session::Viewer;
use crate::domain::model::Role;
use crate::service::jst;

/// What `base.html` needs.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Strings.
    pub t: &'static Texts,
    /// `ja` / `en`.
    pub lang: &'static str,
    /// Page title.
    pub title: String,
    /// `login（centre）` when signed in, else empty.
    pub user: String,
    /// Whether the navigation shows (signed in).
    pub nav: bool,
    /// Whether the administration link shows.
    pub admin: bool,
    /// Whether the viewer is a system administrator (the list of centres).
    pub system: bool,
    /// Whether the CSV import link shows (a centre's staff).
    pub import: bool,
    /// The session's CSRF token (for the logout form and every other form).
    pub csrf: String,
    /// Link to this page in Japanese.
    pub href_ja: String,
    /// Link to this page in English.
    pub href_en: String,
}

fn lang_href(path_and_query: &str, code: &str) -> String {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("lang=") && !kv.starts_with("msg="))
        .collect();
    let lang = format!("lang={code}");
    kept.push(&lang);
    format!("{path}?{}", kept.join("&"))
}

impl Layout {
    /// For a page seen before login.
    pub fn anon(lang: Lang, title: &str, csrf: &str, here: &str) -> Self {
        Self {
            t: lang.texts(),
            lang: lang.code(),
            title: title.to_owned(),
            user: String::new(),
            nav: false,
            admin: false,
            system: false,
            import: false,
            csrf: csrf.to_owned(),
            href_ja: lang_href(here, "ja"),
            href_en: lang_href(here, "en"),
        }
    }

    /// For a signed-in staff member.
    pub fn of(v: &Viewer, title: &str, here: &str) -> Self {
        Self {
            user: format!(
                "{}（{}）",
                v.staff.login,
                match v.staff.role {
                    Role::Staff => v.lang.pick("職員", "staff"),
                    Role::Admin => v.lang.pick("保健所管理者", "centre administrator"),
                    Role::System => v.lang.pick("システム管理者", "system administrator"),
                }
            ),
            nav: true,
            admin: matches!(v.staff.role, Role::Admin | Role::System),
            system: v.staff.role == Role::System,
            import: v.staff.role != Role::System,
            ..Self::anon(v.lang, title, &v.session.row.csrf_token, here)
        }
    }
}

/// A 403 / 404 / 500 page.
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub l: Layout,
    pub heading: &'static str,
    pub text: &'static str,
}

/// The page of a fixed message.
pub fn message(lang: Lang, v: Option<&Viewer>, m: Msg) -> MessagePage {
    let t = lang.texts();
    let (heading, text) = match m {
        Msg::Forbidden => (t.forbidden_title, t.forbidden_text),
        Msg::NotFound => (t.not_found_title, t.not_found_text),
        Msg::Error => (t.error_title, t.error_text),
        Msg::TooLarge => (t.imp_title, t.imp_too_large),
    };
    let l = match v {
        Some(v) => Layout::of(v, heading, "/portal/cases"),
        None => Layout::anon(lang, heading, "", "/portal/login"),
    };
    MessagePage { l, heading, text }
}

/// The login form.
#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub l: Layout,
    pub login: String,
    pub error: String,
    pub info: &'static str,
}

/// The TOTP step of a login.
#[derive(Debug, Template)]
#[template(path = "totp.html")]
pub struct TotpPage {
    pub l: Layout,
    pub error: String,
}

/// TOTP enrolment.
#[derive(Debug, Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetupPage {
    pub l: Layout,
    pub enabled: bool,
    pub secret: String,
    pub uri: String,
    /// The URI as an inline SVG QR code (markup we generate; shown unescaped).
    pub qr: String,
    pub error: &'static str,
    pub info: &'static str,
}

/// One row of the case list.
#[derive(Debug, Clone)]
pub struct CaseRow {
    pub id: i64,
    pub name: String,
    pub kana: String,
    pub birth: String,
    pub sex: &'static str,
    pub centre: String,
    /// The state's label and CSS class.
    pub state: &'static str,
    pub state_class: &'static str,
}

/// One choice of the state filter: value, label, selected.
#[derive(Debug, Clone)]
pub struct StateChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// Case list and search, one page at a time.
#[derive(Debug, Template)]
#[template(path = "cases.html")]
pub struct CasesPage {
    pub l: Layout,
    pub q: String,
    pub rows: Vec<CaseRow>,
    pub show_centre: bool,
    pub states: Vec<StateChoice>,
    pub error: &'static str,
    /// 1-based page number.
    pub page: i64,
    /// Links to the previous and next pages (empty: none).
    pub prev: String,
    pub next: String,
}

/// The values of the case form, as typed.
#[derive(Debug, Clone, Default)]
pub struct CaseFormValues {
    pub name_kanji: String,
    pub name_kana: String,
    pub birth_date: String,
    pub sex: String,
    pub mobile: String,
    pub email: String,
    pub residence: String,
    pub symptoms: String,
    pub outpatient_facility: String,
    pub test_positive: bool,
    pub classification: String,
    pub diagnosis_date: String,
    pub reported: bool,
    pub uses_app: bool,
    pub centre_id: String,
}

/// A centre choice (system administrators pick the centre).
#[derive(Debug, Clone)]
pub struct CentreOption {
    pub id: String,
    pub name: String,
}

/// Create or edit a case.
#[derive(Debug, Template)]
#[template(path = "case_form.html")]
pub struct CaseFormPage {
    pub l: Layout,
    pub heading: &'static str,
    pub action: String,
    pub cancel: String,
    pub f: CaseFormValues,
    pub errors: Vec<(&'static str, String)>,
    pub centres: Vec<CentreOption>,
}

impl CaseFormPage {
    /// The message of `field`, or "".
    pub fn err(&self, field: &str) -> &str {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map_or("", |(_, m)| m.as_str())
    }
}

/// The HER-SYS header of a case.
#[derive(Debug, Clone)]
pub struct Header {
    pub id: i64,
    pub sex: &'static str,
    pub symptoms: &'static str,
    pub status: &'static str,
    pub name: String,
    pub age: String,
    pub residence: String,
}

/// A label and a value.
#[derive(Debug, Clone)]
pub struct Field {
    pub label: &'static str,
    pub value: String,
}

/// One earlier issuance.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub issued_at: String,
    pub state: &'static str,
    pub channel: &'static str,
    pub valid_until: String,
    pub issued_by: String,
}

/// The status panel of the ID管理 tab. Never the number.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub has_issuance: bool,
    pub state: &'static str,
    pub state_class: &'static str,
    pub issued_at: String,
    pub channel: &'static str,
    pub valid_until: String,
    pub issued_by: String,
    pub used_at: String,
    pub reason: String,
    pub help: &'static str,
    /// Label of the issue button; empty: no button.
    pub button: &'static str,
    /// The seed's refusal once a registration succeeded.
    pub refusal: &'static str,
    pub history: Vec<HistoryRow>,
    /// Waiting in the send queue: attempts so far and the next one.
    pub attempts: String,
    /// The case's dead-lettered messages (given up), newest first.
    pub dead: Vec<DeadRow>,
    /// Where the latest number's reminder stands; empty: none.
    pub reminder: String,
}

/// A message the send queue gave up, as staff see it (never the text).
#[derive(Debug, Clone, Default)]
pub struct DeadRow {
    pub at: String,
    pub kind: &'static str,
    pub channel: &'static str,
    pub attempts: u32,
    pub reason: String,
}

/// The case screen.
#[derive(Debug, Template)]
#[template(path = "case.html")]
pub struct CasePage {
    pub l: Layout,
    pub h: Header,
    pub tab: &'static str,
    pub flash: &'static str,
    pub errors: Vec<String>,
    pub missing: Vec<&'static str>,
    pub panel: Panel,
    pub basic: Vec<Field>,
    pub test: Vec<Field>,
    pub report: Vec<Field>,
    /// Whether the notification was reported (no 「報告」 button then).
    pub reported: bool,
}

/// The confirmation step of 処理番号発行.
#[derive(Debug, Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub l: Layout,
    /// 「処理番号発行の確認」 or 「再発行の確認」.
    pub title: &'static str,
    pub h: Header,
    pub reissue: bool,
    pub channel: &'static str,
    pub to: String,
    /// The once-only token of this confirmation (a repeat sends nothing).
    pub form_token: String,
}

/// The CSV upload form.
#[derive(Debug, Template)]
#[template(path = "import.html")]
pub struct ImportPage {
    pub l: Layout,
    /// Why the file was refused, or empty.
    pub error: String,
    /// Whether the viewer may import (a centre's staff).
    pub allowed: bool,
    /// The header names, comma-separated.
    pub columns: String,
}

/// One row of an import's preview.
#[derive(Debug, Clone)]
pub struct PreviewRow {
    pub line: u64,
    pub ok: bool,
    pub id: String,
    pub name: String,
    pub kana: String,
    pub birth: String,
    pub sex: String,
    pub contact: String,
    pub uses_app: String,
    pub errors: Vec<String>,
}

/// The preview of an uploaded file, with the confirmation form.
#[derive(Debug, Template)]
#[template(path = "import_preview.html")]
pub struct PreviewPage {
    pub l: Layout,
    pub action: String,
    /// The encoding the file was read in, for people.
    pub encoding: &'static str,
    pub total: usize,
    pub valid: usize,
    pub invalid: usize,
    /// Header names not used, comma-separated (empty: none).
    pub ignored: String,
    pub rows: Vec<PreviewRow>,
}

/// One row of an import's result.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub line: u64,
    /// The created case (0: none, the row had errors).
    pub case_id: i64,
    pub name: String,
    pub errors: Vec<String>,
    /// What happened to its processing number (empty: not asked).
    pub number: String,
    /// Sent (shown green) / not sent (red); neither: not asked or not eligible.
    pub number_ok: bool,
    pub number_bad: bool,
}

/// The result of a confirmed import.
#[derive(Debug, Template)]
#[template(path = "import_result.html")]
pub struct ImportResultPage {
    pub l: Layout,
    /// Whether the import has finished (else it is still running).
    pub done: bool,
    /// Whether numbers were asked for.
    pub issue: bool,
    pub imported: usize,
    pub skipped: usize,
    pub sent: usize,
    pub not_sent: usize,
    pub rows: Vec<ResultRow>,
}

/// One audit-log row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub case_id: String,
    pub action: String,
    pub outcome: String,
    pub ok: bool,
    /// How many times (aggregated refusals).
    pub times: i64,
}

/// One choice of the kind filter: value, label, selected.
#[derive(Debug, Clone)]
pub struct AuditKind {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

/// The audit log: one page of it, with its filters.
#[derive(Debug, Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub l: Layout,
    pub rows: Vec<AuditRow>,
    pub kinds: Vec<AuditKind>,
    pub account: String,
    pub from: String,
    pub to: String,
    pub error: &'static str,
    /// Links to the newer and older pages (empty: none).
    pub prev: String,
    pub next: String,
}

/// One column of the statistics table.
#[derive(Debug, Clone)]
pub struct StatsColumn {
    pub label: &'static str,
    pub issued: i64,
    pub live: i64,
    pub used: i64,
    pub expired: i64,
    pub superseded: i64,
    pub failed: i64,
    pub median: String,
}

/// One line of the funnel table (a day, or a total).
#[derive(Debug, Clone)]
pub struct FunnelLine {
    pub label: String,
    pub numbered: u64,
    pub delivered: u64,
    pub registered: u64,
    pub share: String,
    pub to_number: String,
    pub to_registration: String,
    /// A total line (shown in bold).
    pub total: bool,
}

/// A choice of the scope select (system administrators).
#[derive(Debug, Clone)]
pub struct ScopeChoice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Statistics.
#[derive(Debug, Template)]
#[template(path = "stats.html")]
pub struct StatsPage {
    pub l: Layout,
    pub columns: Vec<StatsColumn>,
    /// Inline SVG, built by [`super::reports::chart`] from numbers and fixed labels.
    pub chart: String,
    /// `YYYY-MM-DD` of the period's ends, for the form.
    pub from: String,
    pub to: String,
    /// The period for people (Japan dates).
    pub period: String,
    /// Why the asked period was not used, or empty.
    pub error: &'static str,
    /// Scope choices (system administrators only; empty otherwise).
    pub scopes: Vec<ScopeChoice>,
    /// The scope the funnel is of (a centre's name, or national).
    pub scope_label: String,
    /// Funnel lines: the totals first, then every day.
    pub funnel: Vec<FunnelLine>,
    /// Inline SVG of the funnel by day, from numbers and fixed labels.
    pub funnel_chart: String,
    /// The CSV link with the same period and scope.
    pub csv: String,
}

/// Who did something, as staff read it (issue 13: "Issuer shown by staff
/// display name, not `staff:demo` / `api:2`"): a staff member's display name
/// (their login when none is set), an API key's label, 自動発行 for
/// automatic issuance, and so on. The stored actor stays the stable id; only
/// the screen changes.
#[derive(Debug, Default)]
pub struct Actors {
    staff: std::collections::HashMap<String, String>,
    keys: std::collections::HashMap<String, String>,
}

impl Actors {
    /// Loads the names of every account and key.
    pub async fn load(store: &crate::store::Store) -> Result<Self, crate::store::StoreError> {
        let staff = store.staff_display_names().await?;
        let keys = store
            .api_key_listing(None)
            .await?
            .into_iter()
            .map(|k| (format!("api:{}", k.id), k.label))
            .collect();
        Ok(Self { staff, keys })
    }

    /// The name of `actor` in `lang`.
    pub fn name(&self, lang: Lang, actor: &str) -> String {
        if let Some(n) = self.staff.get(actor) {
            return n.clone();
        }
        if let Some(id) = actor.strip_prefix("api:") {
            let label = self.keys.get(actor).filter(|l| !l.is_empty());
            return match (lang, label) {
                (Lang::Ja, Some(l)) => format!("連携システム（{l}）"),
                (Lang::Ja, None) => format!("連携システム（APIキー {id}）"),
                (Lang::En, Some(l)) => format!("case system ({l})"),
                (Lang::En, None) => format!("case system (API key {id})"),
            };
        }
        let fixed = match actor {
            "auto" => Some(("自動発行", "automatic issuance")),
            "cli" => Some(("管理コマンド", "command line")),
            "system" => Some(("システム", "system")),
            "demo-seed" => Some(("デモデータ", "demo data")),
            _ => None,
        };
        match fixed {
            Some((ja, en)) => lang.pick(ja, en).to_owned(),
            // An account deleted since, or another replica's actor: as recorded.
            None => actor.strip_prefix("staff:").unwrap_or(actor).to_owned(),
        }
    }
}

/// A unix time in JST for people.
pub fn when(lang: Lang, t: i64) -> String {
    let Some(d) = Utc.timestamp_opt(t, 0).single() else {
        return String::new();
    };
    let d = d.with_timezone(&jst());
    match lang {
        Lang::Ja => d.format("%Y年%-m月%-d日 %H:%M").to_string(),
        Lang::En => d.format("%Y-%m-%d %H:%M JST").to_string(),
    }
}

/// A date for people.
pub fn date(lang: Lang, d: NaiveDate) -> String {
    match lang {
        Lang::Ja => d.format("%Y年%-m月%-d日").to_string(),
        Lang::En => d.format("%Y-%m-%d").to_string(),
    }
}

/// Age in years and months on `today`, as HER-SYS shows it (「21歳9ヶ月」).
pub fn age(lang: Lang, birth: NaiveDate, today: NaiveDate) -> String {
    let mut months =
        (today.year() - birth.year()) * 12 + today.month() as i32 - birth.month() as i32;
    if today.day() < birth.day() {
        months -= 1;
    }
    let months = months.max(0);
    let (y, m) = (months / 12, months % 12);
    match lang {
        Lang::Ja => format!("{y}歳{m}ヶ月"),
        Lang::En => format!("{y} y {m} m"),
    }
}

/// A duration in hours and minutes.
pub fn duration(lang: Lang, seconds: i64) -> String {
    let m = seconds.max(0) / 60;
    let (h, m) = (m / 60, m % 60);
    match lang {
        Lang::Ja => format!("{h}時間{m}分"),
        Lang::En => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_named_as_staff_read_them() {
        let mut a = Actors::default();
        a.staff.insert("staff:demo".into(), "山田 花子".into());
        a.keys.insert("api:2".into(), "HER-SYS連携".into());
        assert_eq!(a.name(Lang::Ja, "staff:demo"), "山田 花子");
        assert_eq!(a.name(Lang::Ja, "api:2"), "連携システム（HER-SYS連携）");
        assert_eq!(a.name(Lang::En, "api:3"), "case system (API key 3)");
        assert_eq!(a.name(Lang::Ja, "auto"), "自動発行");
        assert_eq!(a.name(Lang::En, "auto"), "automatic issuance");
        assert_eq!(a.name(Lang::Ja, "staff:gone"), "gone");
    }

    #[test]
    fn age_counts_whole_months() {
        let b = NaiveDate::from_ymd_opt(1998, 9, 9).unwrap();
        let t = NaiveDate::from_ymd_opt(2020, 6, 19).unwrap();
        assert_eq!(age(Lang::Ja, b, t), "21歳9ヶ月");
        let t = NaiveDate::from_ymd_opt(2020, 6, 8).unwrap();
        assert_eq!(age(Lang::En, b, t), "21 y 8 m");
    }

    #[test]
    fn language_links_keep_the_query() {
        assert_eq!(
            lang_href("/portal/cases/3?tab=id&lang=ja&msg=sent", "en"),
            "/portal/cases/3?tab=id&lang=en"
        );
        assert_eq!(lang_href("/portal/cases", "ja"), "/portal/cases?lang=ja");
    }
}
