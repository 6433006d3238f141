//! Cases: list and search, create and edit, the HER-SYS case screen (header
//! and tabs ID管理 / 基礎情報 / 検査 / 発生届), and 「処理番号発行」 with its
//! confirmation step. Every URL with a case id goes through
//! [`crate::Issuer::case_for`], so another centre's case is "not found".

use std::sync::Arc;

use api_types::cases::{Classification, Sex};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{NaiveDate, TimeZone, Utc};
use serde::Deserialize;

use super::forms::{self, CaseForm};
use super::i18n::Lang;
use super::session::Viewer;
use super::views::{
    CaseFormPage, CaseFormValues, CasePage, CaseRow, CentreOption, ConfirmPage, DeadRow, Field,
    Header, HistoryRow, Layout, Panel, StateChoice, age, date, when,
};
use super::{Failure, OrPage, page, redirect};
use crate::domain::model::{Case, Channel, IssuanceState, Role};
use crate::domain::rules::{self, Blocker};
use crate::domain::validate;
use crate::error::Error;
use crate::service::jst;
use crate::state::App;
use crate::store::{CaseExtra, FormClaim, ListPage, ListState, MessageKind, QueueState};

/// `?q=&state=&page=` of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    page: String,
}

/// Cases on one page of the list.
const PAGE_SIZE: i64 = 50;
/// The last page that can be asked for (500,000 cases).
const MAX_PAGE: i64 = 10_000;

fn list_state_label(lang: Lang, s: ListState) -> (&'static str, &'static str) {
    let t = lang.texts();
    let label = match s {
        ListState::None => t.ls_none,
        ListState::Pending => t.ls_pending,
        ListState::Sent => t.ls_sent,
        ListState::Delivered => t.ls_delivered,
        ListState::Failed => t.ls_failed,
        ListState::Expired => t.ls_expired,
        ListState::Used => t.ls_used,
    };
    let class = match s {
        ListState::None => "none",
        ListState::Pending => "pending",
        ListState::Sent | ListState::Delivered => "sent",
        ListState::Failed => "failed",
        ListState::Expired => "expired",
        ListState::Used => "used",
    };
    (label, class)
}

/// `?tab=&msg=` of the case screen.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    tab: Option<String>,
    msg: Option<String>,
}

pub(super) fn today(app: &App) -> NaiveDate {
    Utc.timestamp_opt(app.issuer.now(), 0)
        .single()
        .map(|t| t.with_timezone(&jst()).date_naive())
        .unwrap_or_default()
}

fn sex_label(lang: Lang, s: Sex) -> &'static str {
    let t = lang.texts();
    match s {
        Sex::Male => t.sex_male,
        Sex::Female => t.sex_female,
        Sex::Other => t.sex_other,
    }
}

fn channel_label(lang: Lang, c: Channel) -> &'static str {
    let t = lang.texts();
    match c {
        Channel::Sms => t.ch_sms,
        Channel::Email => t.ch_email,
        Channel::Canary => t.ch_canary,
    }
}

fn yes_no(lang: Lang, b: bool) -> String {
    let t = lang.texts();
    (if b { t.yes } else { t.no }).to_owned()
}

fn or_not_entered(lang: Lang, s: &str) -> String {
    if s.trim().is_empty() {
        lang.texts().not_entered.to_owned()
    } else {
        s.to_owned()
    }
}

async fn centre_options(app: &App, v: &Viewer) -> crate::Result<Vec<CentreOption>> {
    if v.staff.role != Role::System {
        return Ok(Vec::new());
    }
    Ok(app
        .issuer
        .store()
        .centres()
        .await?
        .into_iter()
        .map(|c| CentreOption {
            id: c.id.to_string(),
            name: c.name,
        })
        .collect())
}

/// `GET /portal/cases?q=&state=&page=`: the viewer's centre's cases (every
/// centre's for a system administrator), searched by name, furigana or ID,
/// filtered by state, 50 a page; each with the state of its newest number
/// (issue 13: "a state column (未発行 / 送信待ち / 送信済み / 送達済み /
/// 送信失敗 / 期限切れ / 登録済み), filter by state, paging"). One query.
pub async fn list(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<ListQuery>,
) -> Result<Response, Failure> {
    let t = v.lang.texts();
    let q_text: String = q.q.trim().chars().take(100).collect();
    // Furigana is stored with full-width spaces; accept ASCII ones in a search.
    let search = match validate::name_kana(&q_text) {
        Ok(k) if !k.is_empty() => k,
        _ => q_text.clone(),
    };
    let (state, bad_state) = match q.state.as_str() {
        "" => (None, false),
        s => match ListState::parse(s) {
            Some(s) => (Some(s), false),
            None => (None, true),
        },
    };
    let page_no = match q.page.trim() {
        "" => 1,
        p => p.parse::<i64>().unwrap_or(1).clamp(1, MAX_PAGE),
    };
    let mut found = if bad_state {
        Vec::new()
    } else {
        app.issuer
            .store()
            .list_cases_page(ListPage {
                centre_id: v.actor.centre_id,
                search: &search,
                state,
                offset: (page_no - 1) * PAGE_SIZE,
                limit: PAGE_SIZE + 1,
                now: app.issuer.now(),
            })
            .await
            .or_page(v.lang)?
    };
    let more = found.len() as i64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let centres = app.issuer.store().centres().await.or_page(v.lang)?;
    let rows = found
        .iter()
        .map(|(c, s)| {
            let (state, state_class) = list_state_label(v.lang, *s);
            CaseRow {
                id: c.id,
                name: c.data.name_kanji.clone(),
                kana: c.data.name_kana.clone(),
                birth: date(v.lang, c.data.birth_date),
                sex: sex_label(v.lang, c.data.sex),
                centre: centres
                    .iter()
                    .find(|x| Some(x.id) == c.data.centre_id)
                    .map(|x| x.name.clone())
                    .unwrap_or_default(),
                state,
                state_class,
            }
        })
        .collect();
    let state_value = state.map_or("", ListState::as_str);
    let link = |n: i64| {
        let mut href = format!("/portal/cases?page={n}");
        if !q_text.is_empty() {
            href.push_str("&q=");
            href.push_str(&url_encode(&q_text));
        }
        if !state_value.is_empty() {
            href.push_str("&state=");
            href.push_str(state_value);
        }
        href
    };
    let here = link(page_no);
    let states = ListState::ALL
        .into_iter()
        .map(|s| StateChoice {
            value: s.as_str(),
            label: list_state_label(v.lang, s).0,
            selected: Some(s) == state,
        })
        .collect();
    let p = super::views::CasesPage {
        l: Layout::of(&v, t.nav_cases, &here),
        q: q_text.clone(),
        rows,
        show_centre: v.is_system(),
        states,
        error: if bad_state { t.l_bad_state } else { "" },
        page: page_no,
        prev: if page_no > 1 {
            link(page_no - 1)
        } else {
            String::new()
        },
        next: if more && page_no < MAX_PAGE {
            link(page_no + 1)
        } else {
            String::new()
        },
    };
    let status = if bad_state {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(page(status, &p))
}

/// Percent-encodes a query value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form_page(
    v: &Viewer,
    case_id: Option<i64>,
    f: CaseFormValues,
    errors: forms::Errors,
    centres: Vec<CentreOption>,
) -> CaseFormPage {
    let t = v.lang.texts();
    let (heading, action, cancel) = match case_id {
        Some(id) => (
            t.edit_case_title,
            format!("/portal/cases/{id}"),
            format!("/portal/cases/{id}?tab=basic"),
        ),
        None => (
            t.new_case_title,
            "/portal/cases".to_owned(),
            "/portal/cases".to_owned(),
        ),
    };
    let here = case_id.map_or("/portal/cases/new".to_owned(), |id| {
        format!("/portal/cases/{id}/edit")
    });
    CaseFormPage {
        l: Layout::of(v, heading, &here),
        heading,
        action,
        cancel,
        f,
        errors,
        centres,
    }
}

/// `GET /portal/cases/new`.
pub async fn new_form(State(app): State<Arc<App>>, v: Viewer) -> Result<Response, Failure> {
    let centres = centre_options(&app, &v).await.or_page(v.lang)?;
    let f = CaseFormValues {
        sex: "male".into(),
        classification: "confirmed".into(),
        centre_id: v.staff.centre_id.to_string(),
        ..CaseFormValues::default()
    };
    Ok(page(
        StatusCode::OK,
        &form_page(&v, None, f, Vec::new(), centres),
    ))
}

/// Checks the form; saves through `save`; answers the form again (422)
/// with every field's message, or redirects to the case.
async fn save_case<F, Fut>(
    app: &App,
    v: &Viewer,
    case_id: Option<i64>,
    f: &CaseForm,
    save: F,
) -> Result<Response, Failure>
where
    F: FnOnce(api_types::cases::CreateCaseRequest) -> Fut,
    Fut: Future<Output = crate::Result<i64>>,
{
    let centres = centre_options(app, v).await.or_page(v.lang)?;
    let ids: Vec<i64> = centres.iter().filter_map(|c| c.id.parse().ok()).collect();
    let again = |errors| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &form_page(v, case_id, f.values(), errors, centres.clone()),
        )
    };
    let (req, extra) = match forms::check(v.lang, f, today(app), &ids) {
        Ok(x) => x,
        Err(errors) => return Ok(again(errors)),
    };
    let id = match save(req).await {
        Ok(id) => id,
        Err(Error::Field(e)) => return Ok(again(vec![(e.field, forms::message(v.lang, &e))])),
        Err(e) => return Err(Failure(v.lang, e)),
    };
    app.issuer
        .store()
        .set_case_extra(id, &extra)
        .await
        .or_page(v.lang)?;
    Ok(redirect(&format!("/portal/cases/{id}?tab=basic&msg=saved")))
}

/// `POST /portal/cases`: creates a case.
pub async fn create(
    State(app): State<Arc<App>>,
    v: Viewer,
    Form(f): Form<CaseForm>,
) -> Result<Response, Failure> {
    let (issuer, actor) = (&app.issuer, &v.actor);
    save_case(&app, &v, None, &f, |req| async move {
        issuer.create_case(actor, &req).await
    })
    .await
}

fn case_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

async fn visible_case(app: &App, v: &Viewer, raw: &str) -> Result<Case, Failure> {
    let id = case_id(raw).ok_or(Failure(v.lang, Error::CaseNotFound))?;
    app.issuer.case_for(&v.actor, id).await.or_page(v.lang)
}

/// `GET /portal/cases/{id}/edit`.
pub async fn edit_form(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let case = visible_case(&app, &v, &raw).await?;
    let extra = app
        .issuer
        .store()
        .case_extra(case.id)
        .await
        .or_page(v.lang)?;
    let centres = centre_options(&app, &v).await.or_page(v.lang)?;
    let f = forms::values_of(&case, &extra);
    Ok(page(
        StatusCode::OK,
        &form_page(&v, Some(case.id), f, Vec::new(), centres),
    ))
}

/// `POST /portal/cases/{id}`: saves an edited case.
pub async fn update(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<CaseForm>,
) -> Result<Response, Failure> {
    let case = visible_case(&app, &v, &raw).await?;
    let (issuer, actor) = (&app.issuer, &v.actor);
    let id = case.id;
    save_case(&app, &v, Some(id), &f, |req| async move {
        issuer.update_case(actor, id, &req).await.map(|()| id)
    })
    .await
}

fn header(lang: Lang, case: &Case, extra: &CaseExtra, today: NaiveDate) -> Header {
    let t = lang.texts();
    let d = &case.data;
    let confirmed = matches!(
        d.classification,
        Classification::Confirmed | Classification::Asymptomatic
    );
    Header {
        id: case.id,
        sex: sex_label(lang, d.sex),
        symptoms: match extra.symptoms.as_str() {
            "yes" => t.sym_yes,
            "no" => t.sym_no,
            _ => t.not_entered,
        },
        status: match (d.reported, confirmed) {
            (true, true) => t.status_reported,
            (false, _) => t.status_unreported,
            (true, false) => t.status_unknown,
        },
        name: or_not_entered(lang, &d.name_kanji),
        age: age(lang, d.birth_date, today),
        residence: or_not_entered(lang, &extra.residence),
    }
}

fn state_label(lang: Lang, s: IssuanceState, delivery: &str) -> (&'static str, &'static str) {
    let t = lang.texts();
    match (s, delivery) {
        (_, "failed" | "undelivered") => (t.st_failed, "failed"),
        (IssuanceState::Used, _) => (t.st_used, "used"),
        (IssuanceState::Issued, "sent" | "delivered") => (t.st_sent, "sent"),
        (IssuanceState::Issued, _) => (t.st_pending, "pending"),
        (IssuanceState::Expired, _) => (t.st_expired, "expired"),
        (IssuanceState::Superseded, _) => (t.st_superseded, "expired"),
    }
}

/// Where a reminder stands, in the staff's words. Issue 13: "one
/// reminder with the same link, never more" — a reminder that failed or
/// was not delivered says it is not sent again.
fn reminder_label(lang: Lang, q: &QueueState) -> String {
    let t = lang.texts();
    match q.status.as_str() {
        "held" => t.rm_held.to_owned(),
        "queued" => format!("{}{}", t.rm_queued, when(lang, q.due_at)),
        "sending" => t.rm_sending.to_owned(),
        "sent" => format!(
            "{}{}{}",
            t.rm_sent,
            when(lang, q.finished_at.unwrap_or(q.due_at)),
            match q.receipt_status.as_deref() {
                Some("delivered") => t.rm_delivered,
                Some("failed" | "undelivered") => t.rm_not_delivered,
                _ => "",
            }
        ),
        "dead" => t.rm_dead.to_owned(),
        "cancelled" => t.rm_cancelled.to_owned(),
        _ => String::new(),
    }
}

/// Builds the case screen.
async fn case_page(
    app: &App,
    v: &Viewer,
    case: &Case,
    tab: &str,
    flash: &'static str,
    errors: Vec<String>,
) -> crate::Result<CasePage> {
    let lang = v.lang;
    let t = lang.texts();
    let store = app.issuer.store();
    let now = app.issuer.now();
    let extra = store.case_extra(case.id).await?;
    let centre = match case.data.centre_id {
        Some(c) => store.centre(c).await?,
        None => None,
    };
    let history = store.issuance_history(case.id, now).await?;
    let actors = super::views::Actors::load(store).await?;
    let registered = history.iter().any(|i| i.state == IssuanceState::Used);
    let blockers = rules::issuance_prerequisites(&case.data, centre.as_ref())
        .err()
        .unwrap_or_default();
    let missing: Vec<&'static str> = blockers
        .iter()
        .map(|b| lang.pick(b.message_ja(), b.message_en()))
        .collect();
    let mut panel = Panel {
        state: t.st_none,
        state_class: "none",
        ..Panel::default()
    };
    if let Some(latest) = history.first() {
        let (state, class) = state_label(lang, latest.state, &latest.delivery_status);
        panel = Panel {
            has_issuance: true,
            state,
            state_class: class,
            issued_at: when(lang, latest.issued_at),
            channel: channel_label(lang, latest.channel),
            valid_until: when(lang, latest.expires_at),
            issued_by: actors.name(lang, &latest.issued_by),
            used_at: latest.used_at.map(|u| when(lang, u)).unwrap_or_default(),
            reason: latest.delivery_error.clone().unwrap_or_default(),
            help: match class {
                "failed" => t.failed_help,
                "expired" if latest.state == IssuanceState::Expired => t.expired_help,
                _ => "",
            },
            ..Panel::default()
        };
        // Waiting in the send queue: say so, with the attempts and the
        // last reason (the gateway's words).
        if latest.state == IssuanceState::Issued && latest.delivery_status == "pending" {
            let kind = if latest
                .delivery_error
                .as_deref()
                .is_some_and(|e| e.starts_with("fallback to "))
            {
                MessageKind::Fallback
            } else {
                MessageKind::Number
            };
            if let Some(q) = store.message_state(latest.id, kind).await?
                && matches!(q.status.as_str(), "queued" | "sending")
                && q.attempts > 0
            {
                panel.state = t.st_queued;
                panel.help = t.queued_help;
                panel.attempts = format!(
                    "{}{}{}{}",
                    q.attempts,
                    t.attempts_next,
                    when(lang, q.due_at.max(now)),
                    t.attempts_end
                );
                if panel.reason.is_empty() {
                    panel.reason = q.last_error.unwrap_or_default();
                }
            }
        }
        if let Some(q) = store
            .message_state(latest.id, MessageKind::Reminder)
            .await?
        {
            panel.reminder = reminder_label(lang, &q);
        }
        panel.history = history
            .iter()
            .map(|i| HistoryRow {
                issued_at: when(lang, i.issued_at),
                state: state_label(lang, i.state, &i.delivery_status).0,
                channel: channel_label(lang, i.channel),
                valid_until: when(lang, i.expires_at),
                issued_by: actors.name(lang, &i.issued_by),
            })
            .collect();
    }
    panel.dead = store
        .dead_letters(case.id)
        .await?
        .into_iter()
        .map(|d| DeadRow {
            at: when(lang, d.at),
            kind: match d.kind {
                MessageKind::Number => t.k_number,
                MessageKind::Fallback => t.k_fallback,
                MessageKind::Reminder => t.k_reminder,
            },
            channel: channel_label(lang, d.channel),
            attempts: d.attempts,
            reason: d.reason,
        })
        .collect();
    panel.button = match (registered, blockers.is_empty(), history.first()) {
        (true, _, _) | (false, false, _) => "",
        (false, true, None) => t.issue_button,
        (false, true, Some(i))
            if matches!(i.delivery_status.as_str(), "failed" | "undelivered") =>
        {
            t.retry_button
        }
        (false, true, Some(_)) => t.reissue_button,
    };
    if registered {
        let b = Blocker::AlreadyRegistered;
        panel.refusal = lang.pick(b.message_ja(), b.message_en());
    }
    let errors: Vec<String> = errors.into_iter().filter(|e| e != panel.refusal).collect();
    let d = &case.data;
    let dt = |x: Option<NaiveDate>| x.map_or_else(|| t.not_entered.to_owned(), |x| date(lang, x));
    let classification = match d.classification {
        Classification::Confirmed => t.cls_confirmed,
        Classification::Asymptomatic => t.cls_asymptomatic,
        Classification::Clinical => t.cls_clinical,
    };
    let f = |label, value: String| Field { label, value };
    let basic = vec![
        f(t.f_name_kana, or_not_entered(lang, &d.name_kana)),
        f(t.f_name_kanji, or_not_entered(lang, &d.name_kanji)),
        f(t.f_birth_date, date(lang, d.birth_date)),
        f(t.f_sex, sex_label(lang, d.sex).to_owned()),
        f(
            t.f_mobile,
            or_not_entered(lang, d.mobile.as_deref().unwrap_or("")),
        ),
        f(
            t.f_email,
            or_not_entered(lang, d.email.as_deref().unwrap_or("")),
        ),
        f(t.f_residence, or_not_entered(lang, &extra.residence)),
        f(
            t.f_centre,
            centre
                .as_ref()
                .map_or_else(|| t.not_entered.to_owned(), |c| c.name.clone()),
        ),
        f(t.f_uses_app, yes_no(lang, d.uses_app)),
    ];
    let test = vec![
        f(t.f_test_positive, yes_no(lang, d.test_positive)),
        f(t.f_diagnosis_date, dt(d.diagnosis_date)),
    ];
    let report = vec![
        f(t.f_outpatient, or_not_entered(lang, &d.outpatient_facility)),
        f(t.f_test_positive, yes_no(lang, d.test_positive)),
        f(t.f_classification, classification.to_owned()),
        f(t.f_diagnosis_date, dt(d.diagnosis_date)),
        f(t.f_reported, yes_no(lang, d.reported)),
    ];
    let tab: &'static str = match tab {
        "basic" => "basic",
        "test" => "test",
        "report" => "report",
        _ => "id",
    };
    Ok(CasePage {
        l: Layout::of(
            v,
            &format!("{} {}", case.id, d.name_kanji),
            &format!("/portal/cases/{}?tab={tab}", case.id),
        ),
        h: header(lang, case, &extra, today(app)),
        tab,
        flash,
        errors,
        missing: if tab == "id" { missing } else { Vec::new() },
        panel,
        basic,
        test,
        report,
        reported: d.reported,
    })
}

/// `GET /portal/cases/{id}?tab=`.
pub async fn show(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, Failure> {
    let case = visible_case(&app, &v, &raw).await?;
    let t = v.lang.texts();
    let flash = match q.msg.as_deref() {
        Some("sent") => t.sent_flash,
        Some("queued") => t.queued_flash,
        Some("saved") => t.saved_flash,
        Some("reported") => t.reported_flash,
        _ => "",
    };
    let p = case_page(
        &app,
        &v,
        &case,
        q.tab.as_deref().unwrap_or("id"),
        flash,
        Vec::new(),
    )
    .await
    .or_page(v.lang)?;
    Ok(page(StatusCode::OK, &p))
}

/// `GET /portal/cases/{id}/issue`: the confirmation step (or, when the
/// number cannot be issued, the case screen with the reason).
pub async fn confirm_issue(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let case = visible_case(&app, &v, &raw).await?;
    let store = app.issuer.store();
    let history = store
        .issuance_history(case.id, app.issuer.now())
        .await
        .or_page(v.lang)?;
    let p = case_page(&app, &v, &case, "id", "", Vec::new())
        .await
        .or_page(v.lang)?;
    if p.panel.button.is_empty() {
        let status = if p.panel.refusal.is_empty() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::CONFLICT
        };
        return Ok(page(status, &p));
    }
    let (channel, to) = match (&case.data.mobile, &case.data.email) {
        (Some(m), _) => (Channel::Sms, m.clone()),
        (None, Some(e)) => (Channel::Email, e.clone()),
        (None, None) => (Channel::Email, String::new()),
    };
    let extra = store.case_extra(case.id).await.or_page(v.lang)?;
    let t = v.lang.texts();
    // The seed's word for a second number is 再発行 (issue 13: "the reissue
    // confirmation is titled 再発行").
    let title = if history.is_empty() {
        t.confirm_title
    } else {
        t.confirm_reissue_title
    };
    let c = ConfirmPage {
        l: Layout::of(&v, title, &format!("/portal/cases/{}/issue", case.id)),
        title,
        h: header(v.lang, &case, &extra, today(&app)),
        reissue: !history.is_empty(),
        channel: channel_label(v.lang, channel),
        to,
        form_token: issue_form_token(&app, &v, case.id),
    };
    Ok(page(StatusCode::OK, &c))
}

/// The posted confirmation of 「処理番号発行」.
#[derive(Debug, Default, Deserialize)]
pub struct IssueForm {
    #[serde(default)]
    form_token: String,
}

fn issue_token_mac(app: &App, v: &Viewer, case_id: i64, nonce: &str) -> String {
    app.issuer.hash_code(
        crate::domain::codes::CodeKind::Form,
        &format!("issue\0{}\0{case_id}\0{nonce}", v.staff.id),
    )[..32]
        .to_owned()
}

/// A fresh once-only token for one confirmation page of 「処理番号発行」:
/// `<random>.<keyed hash of the account, the case and the random>`.
fn issue_form_token(app: &App, v: &Viewer, case_id: i64) -> String {
    let nonce = app.issuer.random_secret(18);
    let mac = issue_token_mac(app, v, case_id, &nonce);
    format!("{nonce}.{mac}")
}

/// The stored key of a posted token when this server made it for this
/// account and case.
fn issue_token_key(app: &App, v: &Viewer, case_id: i64, token: &str) -> Option<String> {
    use subtle::ConstantTimeEq as _;
    let (nonce, mac) = token.split_once('.').filter(|_| token.len() <= 100)?;
    let expected = issue_token_mac(app, v, case_id, nonce);
    bool::from(expected.as_bytes().ct_eq(mac.as_bytes())).then(|| {
        app.issuer.hash_code(
            crate::domain::codes::CodeKind::Form,
            &format!("claim\0{token}"),
        )
    })
}

/// How long a repeated post waits for the first one's answer.
const REPEAT_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// `POST /portal/cases/{id}/issue`: 「処理番号発行」 (or 「再発行」). The
/// screen then shows "sent" — never the number — or why not.
///
/// Idempotent (issue 12, finding 7: "A triple click on 「処理番号発行」 sent 3
/// SMS: the portal form is idempotent too"): the confirmation page's
/// once-only token is claimed first; a repeat of it sends nothing and gets
/// the first post's answer. The work runs detached from the connection, so
/// a closed tab does not stop it half-way.
pub async fn issue(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<IssueForm>,
) -> Result<Response, Failure> {
    // Another centre's case or an unknown id: 404 before anything else.
    let id = visible_case(&app, &v, &raw).await?.id;
    // Not a token of this server for this account and case (an old or
    // forged page): nothing is done, the confirmation is shown again (or,
    // when the number cannot be issued, the reason).
    let Some(key) = issue_token_key(&app, &v, id, f.form_token.trim()) else {
        return confirm_issue(State(app), v, Path(raw)).await;
    };
    let store = app.issuer.store();
    let claim = store
        .claim_form(&key, v.staff.id, id, app.issuer.now())
        .await
        .or_page(v.lang)?;
    if claim != FormClaim::New {
        return repeat(&app, &v, id, &key).await;
    }
    let task = {
        let (app, actor, key) = (app.clone(), v.actor.clone(), key.clone());
        tokio::spawn(async move {
            let r = app.issuer.issue(&actor, id).await;
            let location = match &r {
                Ok(i) if i.queued => format!("/portal/cases/{id}?tab=id&msg=queued"),
                Ok(_) => format!("/portal/cases/{id}?tab=id&msg=sent"),
                Err(_) => format!("/portal/cases/{id}?tab=id"),
            };
            if let Err(e) = app.issuer.store().finish_form(&key, &location).await {
                tracing::error!(error = %e, "could not record the answer of an issue form");
            }
            r
        })
    };
    let r = task
        .await
        .map_err(|e| Failure(v.lang, Error::from(anyhow::Error::from(e))))?;
    let (status, errors) = match r {
        Ok(i) if i.queued => {
            return Ok(redirect(&format!("/portal/cases/{id}?tab=id&msg=queued")));
        }
        Ok(_) => return Ok(redirect(&format!("/portal/cases/{id}?tab=id&msg=sent"))),
        Err(Error::Blocked(bs)) => {
            let status = if bs.contains(&Blocker::AlreadyRegistered) {
                StatusCode::CONFLICT
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let msgs = bs
                .iter()
                .map(|b| v.lang.pick(b.message_ja(), b.message_en()).to_owned())
                .collect();
            (status, msgs)
        }
        Err(Error::DeliveryFailed(reason)) => {
            let t = v.lang.texts();
            (
                StatusCode::BAD_GATEWAY,
                vec![format!("{} {}: {reason}", t.st_failed, t.p_reason)],
            )
        }
        Err(e) => return Err(Failure(v.lang, e)),
    };
    let case = app.issuer.case_for(&v.actor, id).await.or_page(v.lang)?;
    let p = case_page(&app, &v, &case, "id", "", errors)
        .await
        .or_page(v.lang)?;
    Ok(page(status, &p))
}

/// A repeated post of an issue form: waits for the first post's answer
/// and sends the browser where the first one did; nothing is sent again.
async fn repeat(app: &App, v: &Viewer, id: i64, key: &str) -> Result<Response, Failure> {
    let started = tokio::time::Instant::now();
    loop {
        match app.issuer.store().form(key).await.or_page(v.lang)? {
            Some(FormClaim::Taken {
                location: Some(l), ..
            }) => return Ok(redirect(&l)),
            Some(_) if started.elapsed() < REPEAT_WAIT => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            // Still running (or swept): the case screen shows its state.
            _ => return Ok(redirect(&format!("/portal/cases/{id}?tab=id"))),
        }
    }
}

/// `POST /portal/cases/{id}/report`: the 発生届 tab's 「報告」 button (the
/// seed: staff press 「報告」 after entering the four 発生届 fields). Refused
/// (422, nothing changed) while one of the four is missing, each named; else
/// the case is saved as reported through the same service as the edit form.
pub async fn report(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let case = visible_case(&app, &v, &raw).await?;
    let d = &case.data;
    let mut missing = Vec::new();
    if d.outpatient_facility.trim().is_empty() {
        missing.push(Blocker::MissingOutpatientFacility);
    }
    if !d.test_positive {
        missing.push(Blocker::MissingPositiveTest);
    }
    if d.diagnosis_date.is_none() {
        missing.push(Blocker::MissingDiagnosisDate);
    }
    if !missing.is_empty() {
        let errors = missing
            .iter()
            .map(|b| v.lang.pick(b.message_ja(), b.message_en()).to_owned())
            .collect();
        let p = case_page(&app, &v, &case, "report", "", errors)
            .await
            .or_page(v.lang)?;
        return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &p));
    }
    if !d.reported {
        let ymd = |x: NaiveDate| x.format("%Y-%m-%d").to_string();
        let req = api_types::cases::CreateCaseRequest {
            name_kanji: d.name_kanji.clone(),
            name_kana: d.name_kana.clone(),
            birth_date: ymd(d.birth_date),
            sex: d.sex,
            mobile: d.mobile.clone(),
            email: d.email.clone(),
            outpatient_facility: d.outpatient_facility.clone(),
            test_positive: d.test_positive,
            classification: d.classification,
            diagnosis_date: d.diagnosis_date.map(ymd).unwrap_or_default(),
            reported: true,
            uses_app: d.uses_app,
            centre_id: d.centre_id,
        };
        match app.issuer.update_case(&v.actor, case.id, &req).await {
            Ok(()) => {}
            Err(Error::Field(e)) => {
                let p = case_page(
                    &app,
                    &v,
                    &case,
                    "report",
                    "",
                    vec![forms::message(v.lang, &e)],
                )
                .await
                .or_page(v.lang)?;
                return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &p));
            }
            Err(e) => return Err(Failure(v.lang, e)),
        }
        app.issuer
            .audit(
                &v.actor,
                d.centre_id,
                Some(case.id),
                "report_case",
                "ok",
                String::new(),
            )
            .await;
    }
    Ok(redirect(&format!(
        "/portal/cases/{}?tab=report&msg=reported",
        case.id
    )))
}
