//! The audit log page (paged and filtered; refused logins aggregated, see
//! [`crate::store::AuditLine`]) and the statistics page (centre and national, with a
//! bar chart drawn as inline SVG on the server).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::i18n::Lang;
use super::session::Viewer;
use super::views::{
    AuditKind, AuditPage, AuditRow, FunnelLine, Layout, ScopeChoice, StatsColumn, StatsPage, date,
    duration, when,
};
use super::{Failure, OrPage, page};
use crate::domain::funnel::{self, Funnel, FunnelFigures};
use crate::domain::model::Centre;
use crate::state::App;
use crate::store::{AuditFilter, IssuanceStats};

fn action_label(lang: Lang, action: &str) -> String {
    let (ja, en) = match action {
        "login" => ("ログイン", "signed in"),
        "logout" => ("ログアウト", "signed out"),
        "enable_totp" => ("2段階認証の有効化", "two-factor turned on"),
        "create_case" => ("患者登録", "case created"),
        "update_case" => ("患者情報更新", "case updated"),
        "issue_number" => ("処理番号発行", "processing number issued"),
        "reissue_number" => ("処理番号再発行", "processing number reissued"),
        "report_case" => ("発生届の報告", "notification reported"),
        "create_canary_case" => ("監視用（カナリア）患者登録", "canary case created"),
        "staff_create" => ("職員アカウント作成", "staff account created"),
        "staff_display_name" => ("表示名の変更", "display name changed"),
        "staff_role" => ("権限の変更", "role changed"),
        "staff_disable" => ("アカウント無効化", "account disabled"),
        "staff_enable" => ("アカウント有効化", "account enabled"),
        "staff_reset_password" => ("パスワード再設定", "password reset"),
        "staff_reset_totp" => ("2段階認証の再設定", "two-factor reset"),
        "revoke_api_key" => ("APIキー失効", "API key revoked"),
        "expire_number" => ("処理番号の無効化", "processing number ended"),
        "import_cases" => ("CSV取込", "CSV import"),
        // An action this build does not know (a newer replica's): shown
        // as recorded rather than hidden.
        other => (other, other),
    };
    lang.pick(ja, en).to_owned()
}

fn outcome_label(lang: Lang, outcome: &str) -> String {
    let (ja, en) = match outcome {
        "ok" => ("成功", "ok"),
        "wrong_password" => ("失敗（パスワード誤り）", "failed: wrong password"),
        "wrong_totp" => ("失敗（確認コード誤り）", "failed: wrong code"),
        "throttled" => ("拒否（試行回数超過）", "refused: too many attempts"),
        "already_registered" => (
            "拒否（登録済みのため再発行不可）",
            "refused: already registered",
        ),
        "delivery_failed" => ("送信失敗", "delivery failed"),
        "case_not_found" => ("拒否（患者なし）", "refused: no such case"),
        "no_live_number" => ("拒否（有効な処理番号なし）", "refused: no live number"),
        other => (other, other),
    };
    lang.pick(ja, en).to_owned()
}

/// Entries per audit page.
pub const AUDIT_PAGE_SIZE: i64 = 50;

/// The actions the kind filter offers.
const AUDIT_KINDS: [&str; 10] = [
    "login",
    "logout",
    "enable_totp",
    "create_case",
    "update_case",
    "report_case",
    "issue_number",
    "reissue_number",
    "expire_number",
    "import_cases",
];

/// Query of the audit page: `kind` (an action), `account` (an actor),
/// `from` / `to` (Japan calendar dates, inclusive), `page` (from 1).
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: String,
}

/// The start of Japan calendar day `d` (unix seconds).
fn japan_midnight(d: NaiveDate) -> i64 {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    midnight.and_utc().timestamp() - 9 * 3600
}

fn parse_day(s: &str) -> Result<Option<NaiveDate>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._:@".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /portal/audit`: the entries of the viewer's centre (all for a
/// system administrator), newest first, [`AUDIT_PAGE_SIZE`] per page,
/// filtered by kind, account and Japan dates. Entries never hold a number.
pub async fn audit(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Failure> {
    let kind = AUDIT_KINDS
        .iter()
        .find(|k| **k == q.kind.trim())
        .map(|k| (*k).to_owned());
    let bad_kind = kind.is_none() && !q.kind.trim().is_empty();
    let account: String = q.account.trim().chars().take(80).collect();
    let page_no: i64 = q.page.trim().parse().unwrap_or(1).clamp(1, 100_000);
    let days = (parse_day(&q.from), parse_day(&q.to));
    let (from, to, error) = match days {
        _ if bad_kind => (None, None, v.lang.texts().a_bad_kind),
        (Ok(f), Ok(t)) if f.zip(t).is_none_or(|(f, t)| f <= t) => (f, t, ""),
        _ => (None, None, v.lang.texts().a_bad_date),
    };
    let filter = AuditFilter {
        centre_id: v.actor.centre_id,
        action: kind.clone(),
        // Staff type a login (`yamada`); the log keeps `staff:yamada`.
        actor: Some(account.clone()).filter(|a| !a.is_empty()).map(|a| {
            if a.contains(':') {
                a
            } else {
                format!("staff:{a}")
            }
        }),
        from: from.map(japan_midnight),
        until: to.and_then(|d| d.succ_opt()).map(japan_midnight),
    };
    let mut lines = if error.is_empty() {
        app.issuer
            .store()
            .audit_page(
                &filter,
                AUDIT_PAGE_SIZE + 1,
                (page_no - 1) * AUDIT_PAGE_SIZE,
            )
            .await
            .or_page(v.lang)?
    } else {
        Vec::new()
    };
    let more = lines.len() as i64 > AUDIT_PAGE_SIZE;
    lines.truncate(AUDIT_PAGE_SIZE as usize);
    let actors = super::views::Actors::load(app.issuer.store())
        .await
        .or_page(v.lang)?;
    let rows = lines
        .iter()
        .map(|l| AuditRow {
            at: when(v.lang, l.entry.at),
            actor: actors.name(v.lang, &l.entry.actor),
            case_id: l.entry.case_id.map(|c| c.to_string()).unwrap_or_default(),
            action: action_label(v.lang, &l.entry.action),
            outcome: outcome_label(v.lang, &l.entry.outcome),
            ok: l.entry.outcome == "ok",
            times: l.times,
        })
        .collect();
    let link = |n: i64| {
        let mut href = format!("/portal/audit?page={n}");
        for (k, val) in [
            ("kind", kind.clone().unwrap_or_default()),
            ("account", account.clone()),
            ("from", from.map(|d| d.to_string()).unwrap_or_default()),
            ("to", to.map(|d| d.to_string()).unwrap_or_default()),
        ] {
            if !val.is_empty() {
                href.push_str(&format!("&{k}={}", percent(&val)));
            }
        }
        href
    };
    let p = AuditPage {
        l: Layout::of(&v, v.lang.texts().audit_title, "/portal/audit"),
        rows,
        kinds: AUDIT_KINDS
            .iter()
            .map(|k| AuditKind {
                value: k,
                label: action_label(v.lang, k),
                selected: kind.as_deref() == Some(*k),
            })
            .collect(),
        account: account.clone(),
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
        error,
        prev: if page_no > 1 {
            link(page_no - 1)
        } else {
            String::new()
        },
        next: if more {
            link(page_no + 1)
        } else {
            String::new()
        },
    };
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(page(status, &p))
}

fn column(lang: Lang, label: &'static str, s: &IssuanceStats) -> StatsColumn {
    StatsColumn {
        label,
        issued: s.issued,
        live: s.live,
        used: s.used,
        expired: s.expired,
        superseded: s.superseded,
        failed: s.delivery_failed,
        median: s
            .median_seconds_to_registration
            .map_or_else(|| lang.texts().s_none.to_owned(), |m| duration(lang, m)),
    }
}

/// Query of the statistics page and its CSV: `from` / `to` (Japan dates,
/// inclusive; default the last 28 days) and, for system administrators,
/// `centre` (a centre id; empty: national).
#[derive(Debug, Default, Deserialize)]
pub struct StatsQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    centre: String,
}

/// Days in the default period.
const DEFAULT_PERIOD_DAYS: i64 = 28;

/// The period and scope a statistics request asks for, checked: a bad
/// period falls back to the default with a message; an unknown centre is
/// national.
struct Period {
    from: NaiveDate,
    to: NaiveDate,
    error: &'static str,
    /// The funnel's centre: the viewer's own, or the one a system
    /// administrator chose.
    centre: Option<i64>,
}

impl Period {
    fn of(v: &Viewer, q: &StatsQuery, now: i64, centres: &[Centre]) -> Self {
        let today = funnel::japan_day(now);
        let default_from = today - chrono::Duration::days(DEFAULT_PERIOD_DAYS - 1);
        let (from, to, error) = match (parse_day(&q.from), parse_day(&q.to)) {
            (Ok(f), Ok(t)) => {
                let from = f.unwrap_or(default_from);
                let to = t.unwrap_or(today);
                if from <= to && (to - from).num_days() < funnel::MAX_FUNNEL_DAYS {
                    (from, to, "")
                } else {
                    (default_from, today, v.lang.texts().s_bad_period)
                }
            }
            _ => (default_from, today, v.lang.texts().s_bad_period),
        };
        let centre = match v.actor.centre_id {
            Some(c) => Some(c),
            None => q
                .centre
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|c| centres.iter().any(|x| x.id == *c)),
        };
        Self {
            from,
            to,
            error,
            centre,
        }
    }

    /// `[start of from, start of the day after to)` in unix seconds.
    fn bounds(&self) -> (i64, i64) {
        (
            japan_midnight(self.from),
            japan_midnight(self.to + chrono::Duration::days(1)),
        )
    }

    fn query(&self, v: &Viewer) -> String {
        let mut q = format!("from={}&to={}", self.from, self.to);
        if v.actor.centre_id.is_none()
            && let Some(c) = self.centre
        {
            q.push_str(&format!("&centre={c}"));
        }
        q
    }
}

fn share(lang: Lang, f: &FunnelFigures) -> String {
    f.registered_share().map_or_else(
        || lang.texts().s_none.to_owned(),
        |s| format!("{:.1}%", s * 100.0),
    )
}

fn funnel_line(lang: Lang, label: String, f: &FunnelFigures, total: bool) -> FunnelLine {
    let t = lang.texts();
    let d = |x: Option<i64>| x.map_or_else(|| t.s_none.to_owned(), |m| duration(lang, m));
    FunnelLine {
        label,
        numbered: f.numbered,
        delivered: f.delivered,
        registered: f.registered,
        share: share(lang, f),
        to_number: d(f.median_result_to_number),
        to_registration: d(f.median_number_to_registration),
        total,
    }
}

/// `GET /portal/stats`: the numbers of the period by state (the viewer's
/// centre beside the nation), and the registration funnel by day — people
/// given a number, of them sent, of them registered, the share registered,
/// the median times (issue 13) — with a chart and a CSV of the same.
pub async fn stats(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<StatsQuery>,
) -> Result<Response, Failure> {
    let t = v.lang.texts();
    let now = app.issuer.now();
    let store = app.issuer.store();
    let centres = store.centres().await.or_page(v.lang)?;
    let p = Period::of(&v, &q, now, &centres);
    let (from, until) = p.bounds();
    let national = store.stats(None, from, until, now).await.or_page(v.lang)?;
    let mut columns = Vec::new();
    if let Some(c) = v.actor.centre_id {
        let own = store
            .stats(Some(c), from, until, now)
            .await
            .or_page(v.lang)?;
        columns.push(column(v.lang, t.stats_centre, &own));
    }
    columns.push(column(v.lang, t.stats_national, &national));
    let rows = store
        .funnel_rows(p.centre, from, until)
        .await
        .or_page(v.lang)?;
    let f = funnel::funnel(&rows, p.from, p.to);
    let mut lines = vec![funnel_line(v.lang, t.f_total.to_owned(), &f.total, true)];
    if p.centre.is_some() {
        let all = store.funnel_rows(None, from, until).await.or_page(v.lang)?;
        let n = funnel::funnel(&all, p.from, p.to);
        lines.push(funnel_line(
            v.lang,
            t.f_national_total.to_owned(),
            &n.total,
            true,
        ));
    }
    for (d, figures) in f.days.iter().rev() {
        lines.push(funnel_line(v.lang, date(v.lang, *d), figures, false));
    }
    let scope_label = match p.centre {
        Some(c) => centres
            .iter()
            .find(|x| x.id == c)
            .map_or_else(|| t.stats_centre.to_owned(), |x| x.name.clone()),
        None => t.stats_national.to_owned(),
    };
    let scopes = if v.actor.centre_id.is_none() {
        std::iter::once(ScopeChoice {
            value: String::new(),
            label: t.stats_national.to_owned(),
            selected: p.centre.is_none(),
        })
        .chain(centres.iter().map(|c| ScopeChoice {
            value: c.id.to_string(),
            label: c.name.clone(),
            selected: p.centre == Some(c.id),
        }))
        .collect()
    } else {
        Vec::new()
    };
    let page_ = StatsPage {
        l: Layout::of(&v, t.stats_title, "/portal/stats"),
        chart: chart(v.lang, &columns),
        columns,
        from: p.from.to_string(),
        to: p.to.to_string(),
        period: format!(
            "{}{}{}",
            date(v.lang, p.from),
            v.lang.pick("〜", " to "),
            date(v.lang, p.to)
        ),
        error: p.error,
        scopes,
        scope_label,
        funnel_chart: funnel_chart(v.lang, &f),
        funnel: lines,
        csv: format!("/portal/stats/funnel.csv?{}", p.query(&v)),
    };
    let status = if p.error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(page(status, &page_))
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `GET /portal/stats/funnel.csv`: the funnel of the statistics page, a line
/// per Japan day then the period total, for a spreadsheet (UTF-8 with a byte
/// order mark, which Excel needs to read Japanese; headers in the page's
/// language; times in seconds).
pub async fn funnel_csv(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<StatsQuery>,
) -> Result<Response, Failure> {
    let t = v.lang.texts();
    let now = app.issuer.now();
    let store = app.issuer.store();
    let centres = store.centres().await.or_page(v.lang)?;
    let p = Period::of(&v, &q, now, &centres);
    if !p.error.is_empty() {
        return Ok((
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            p.error,
        )
            .into_response());
    }
    let (from, until) = p.bounds();
    let rows = store
        .funnel_rows(p.centre, from, until)
        .await
        .or_page(v.lang)?;
    let f = funnel::funnel(&rows, p.from, p.to);
    let secs = v.lang.pick("（秒）", " (s)");
    let mut out = String::from("\u{feff}");
    let header_row = [
        t.f_day.to_owned(),
        t.f_numbered.to_owned(),
        t.f_delivered.to_owned(),
        t.f_registered.to_owned(),
        t.f_share.to_owned(),
        format!("{}{secs}", t.f_to_number),
        format!("{}{secs}", t.f_to_registration),
    ];
    let line = |out: &mut String, label: &str, f: &FunnelFigures| {
        let o = |x: Option<i64>| x.map(|v| v.to_string()).unwrap_or_default();
        let fields = [
            label.to_owned(),
            f.numbered.to_string(),
            f.delivered.to_string(),
            f.registered.to_string(),
            f.registered_share()
                .map(|s| format!("{s:.4}"))
                .unwrap_or_default(),
            o(f.median_result_to_number),
            o(f.median_number_to_registration),
        ];
        let fields: Vec<String> = fields.iter().map(|x| csv_field(x)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    };
    out.push_str(
        &header_row
            .iter()
            .map(|x| csv_field(x))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    for (d, figures) in &f.days {
        line(&mut out, &d.to_string(), figures);
    }
    line(&mut out, t.f_total, &f.total);
    let name = format!(
        "attachment; filename=\"funnel-{}-{}_{}.csv\"",
        p.centre
            .map_or_else(|| "national".to_owned(), |c| format!("centre{c}")),
        p.from,
        p.to
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        out,
    )
        .into_response())
}

/// The funnel by day as grouped bars (people given a number, sent,
/// registered), oldest day on the left, one label every 7 days; scaled to the
/// busiest day. Built from numbers and the fixed labels only.
pub fn funnel_chart(lang: Lang, f: &Funnel) -> String {
    let t = lang.texts();
    const DAY_W: usize = 18;
    const PLOT_H: usize = 160;
    const LEFT: usize = 40;
    const TOP: usize = 34;
    let series = [
        (t.f_numbered, "#1d4e89"),
        (t.f_delivered, "#3f7fc4"),
        (t.f_registered, "#2e8b57"),
    ];
    let n = f.days.len().max(1);
    let width = LEFT + n * DAY_W + 20;
    let height = TOP + PLOT_H + 40;
    let max = f
        .days
        .iter()
        .map(|(_, d)| d.numbered)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{}" font-size="11">"#,
        escape(t.f_title)
    );
    let mut x = LEFT;
    for (label, colour) in series {
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="6" width="10" height="10" fill="{colour}"/><text x="{}" y="15" fill="#222">{}</text>"##,
            x + 14,
            escape(label)
        );
        x += 14 + label.chars().count() * 12 + 16;
    }
    let base = TOP + PLOT_H;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="#666"/><text x="{}" y="{}" text-anchor="end" fill="#333">{max}</text><text x="{}" y="{}" text-anchor="end" fill="#333">0</text>"##,
        width - 10,
        LEFT - 4,
        TOP + 4,
        LEFT - 4,
        base
    );
    for (i, (d, day)) in f.days.iter().enumerate() {
        let x0 = LEFT + i * DAY_W + 2;
        for (j, (v, (_, colour))) in [day.numbered, day.delivered, day.registered]
            .into_iter()
            .zip(series)
            .enumerate()
        {
            let h = (v as usize * PLOT_H) / max as usize;
            if h > 0 {
                let _ = write!(
                    svg,
                    r#"<rect x="{}" y="{}" width="4" height="{h}" fill="{colour}"/>"#,
                    x0 + j * 5,
                    base - h
                );
            }
        }
        if i % 7 == 0 || i + 1 == f.days.len() {
            let _ = write!(
                svg,
                r##"<text x="{x0}" y="{}" fill="#333">{}</text>"##,
                base + 16,
                d.format("%-m/%-d")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart, one panel per column (each scaled to its own
/// largest value, so a centre's bars are readable beside the nation's).
/// Built from numbers and the fixed labels only, every label escaped.
pub fn chart(lang: Lang, columns: &[StatsColumn]) -> String {
    let t = lang.texts();
    const PANEL_W: usize = 410;
    const LABEL_W: usize = 142;
    const BAR_H: usize = 22;
    const GAP: usize = 8;
    let metrics = [
        (t.s_issued, "#1d4e89"),
        (t.s_live, "#3f7fc4"),
        (t.s_used, "#2e8b57"),
        (t.s_expired, "#9aa5b1"),
        (t.s_superseded, "#c9a227"),
    ];
    let height = 30 + metrics.len() * (BAR_H + GAP);
    let width = PANEL_W * columns.len().max(1);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{}" font-size="12">"#,
        escape(t.stats_title)
    );
    for (i, c) in columns.iter().enumerate() {
        let x0 = i * PANEL_W;
        let values = [c.issued, c.live, c.used, c.expired, c.superseded];
        let max = values.iter().copied().max().unwrap_or(0).max(1);
        let _ = write!(
            svg,
            r##"<text x="{}" y="16" font-weight="bold" fill="#222">{}</text>"##,
            x0 + 4,
            escape(c.label)
        );
        for (j, ((label, colour), value)) in metrics.iter().zip(values).enumerate() {
            let y = 26 + j * (BAR_H + GAP);
            let full = PANEL_W - LABEL_W - 60;
            let w = (value.max(0) as usize * full) / max as usize;
            let _ = write!(
                svg,
                r##"<text x="{}" y="{}" fill="#333">{}</text><rect x="{}" y="{}" width="{}" height="{}" fill="{colour}"/><text x="{}" y="{}" fill="#222">{value}</text>"##,
                x0 + 4,
                y + 15,
                escape(label),
                x0 + LABEL_W,
                y,
                w.max(1),
                BAR_H,
                x0 + LABEL_W + w + 6,
                y + 15,
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action the issuer writes to the audit log has a word in
    /// Japanese and in English: staff never read an identifier such as
    /// `reissue_number` (issue 13).
    #[test]
    fn every_audit_action_has_a_japanese_and_an_english_word() {
        // The service's files are read so that an action added there without
        // a word here fails this test.
        let sources = [
            include_str!("../service/accounts.rs"),
            include_str!("../service/cases.rs"),
            include_str!("../service/issuance.rs"),
            include_str!("auth.rs"),
            include_str!("session.rs"),
        ];
        let mut actions: Vec<&str> = Vec::new();
        for src in sources {
            let mut rest = src;
            while let Some(i) = rest.find('"') {
                let after = &rest[i + 1..];
                let Some(j) = after.find('"') else { break };
                let lit = &after[..j];
                let word = |p: &str| {
                    lit.starts_with(p) && lit.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                };
                if word("staff_") && lit != "staff_sessions"
                    || [
                        "issue_number",
                        "reissue_number",
                        "report_case",
                        "revoke_api_key",
                        "expire_number",
                    ]
                    .contains(&lit)
                    || word("create_") && lit.ends_with("case")
                {
                    actions.push(lit);
                }
                rest = &after[j + 1..];
            }
        }
        actions.extend(["login", "logout", "enable_totp", "update_case"]);
        actions.sort_unstable();
        actions.dedup();
        assert!(actions.len() >= 16, "{actions:?}");
        for a in actions {
            for lang in [Lang::Ja, Lang::En] {
                assert_ne!(action_label(lang, a), a, "{a} has no {lang:?} word");
            }
        }
        assert_eq!(action_label(Lang::Ja, "reissue_number"), "処理番号再発行");
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("みなと保健所"), "みなと保健所");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn chart_is_svg_with_one_bar_per_metric_and_column() {
        let c = |label| StatsColumn {
            label,
            issued: 10,
            live: 3,
            used: 4,
            expired: 2,
            superseded: 1,
            failed: 1,
            median: String::new(),
        };
        let svg = chart(Lang::Ja, &[c("自保健所"), c("全国<x>")]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 10);
        assert!(svg.contains("全国&lt;x&gt;") && !svg.contains("<x>"));
    }
}
