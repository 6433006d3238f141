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
    CaseFormPage, CaseFormValues, CasePage, CaseRow, CentreOption, ConfirmPage, Field, Header,
    HistoryRow, Layout, Panel, age, date, when,
};
use super::{Failure, OrPage, not_found, page, redirect};
use crate::domain::model::{Case, Channel, IssuanceState, Role};
use crate::domain::rules::{self, Blocker};
use crate::domain::validate;
use crate::error::Error;
use crate::service::jst;
use crate::state::App;
use crate::store::CaseExtra;

/// `?q=` of the list.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
}

/// `?tab=&msg=` of the case screen.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    tab: Option<String>,
    msg: Option<String>,
}

fn today(app: &App) -> NaiveDate {
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

/// `GET /portal/cases?q=`: the viewer's centre's cases (every centre's for
/// a system administrator), searched by name, furigana or ID.
pub async fn list(
    State(app): State<Arc<App>>,
    v: Viewer,
    Query(q): Query<ListQuery>,
) -> Result<Response, Failure> {
    let q: String = q.q.trim().chars().take(100).collect();
    // Furigana is stored with full-width spaces; accept ASCII ones in a search.
    let search = match validate::name_kana(&q) {
        Ok(k) if !k.is_empty() => k,
        _ => q.clone(),
    };
    let cases = app
        .issuer
        .store()
        .list_cases(v.actor.centre_id, &search, 200)
        .await
        .or_page(v.lang)?;
    let centres = app.issuer.store().centres().await.or_page(v.lang)?;
    let rows = cases
        .iter()
        .map(|c| CaseRow {
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
        })
        .collect();
    let p = super::views::CasesPage {
        l: Layout::of(&v, v.lang.texts().nav_cases, "/portal/cases"),
        q,
        rows,
        show_centre: v.is_system(),
    };
    Ok(page(StatusCode::OK, &p))
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
            issued_by: latest.issued_by.clone(),
            used_at: latest.used_at.map(|u| when(lang, u)).unwrap_or_default(),
            reason: latest.delivery_error.clone().unwrap_or_default(),
            help: match class {
                "failed" => t.failed_help,
                "expired" if latest.state == IssuanceState::Expired => t.expired_help,
                _ => "",
            },
            ..Panel::default()
        };
        panel.history = history
            .iter()
            .map(|i| HistoryRow {
                issued_at: when(lang, i.issued_at),
                state: state_label(lang, i.state, &i.delivery_status).0,
                channel: channel_label(lang, i.channel),
                valid_until: when(lang, i.expires_at),
                issued_by: i.issued_by.clone(),
            })
            .collect();
    }
    panel.button = match (registered, blockers.is_empty(), history.first()) {
        (true, _, _) | (false, false, _) => "",
        (false, true, None) => t.issue_button,
        (false, true, Some(i)) if matches!(i.delivery_status.as_str(), "failed" | "undelivered") => {
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
        Some("saved") => t.saved_flash,
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
    let c = ConfirmPage {
        l: Layout::of(
            &v,
            v.lang.texts().confirm_title,
            &format!("/portal/cases/{}/issue", case.id),
        ),
        h: header(v.lang, &case, &extra, today(&app)),
        reissue: !history.is_empty(),
        channel: channel_label(v.lang, channel),
        to,
    };
    Ok(page(StatusCode::OK, &c))
}

/// `POST /portal/cases/{id}/issue`: 「処理番号発行」 (or 「再発行」). The
/// screen then shows "sent" — never the number — or why not.
pub async fn issue(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let Some(id) = case_id(&raw) else {
        return Ok(not_found(v.lang));
    };
    let r = app.issuer.issue(&v.actor, id).await;
    let (status, errors) = match r {
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
