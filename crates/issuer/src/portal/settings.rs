//! Administration of centres and API keys (issue 13: "Centre settings page
//! for centre administrators (system administrators: every centre)";
//! "API keys: create (shown once), list, revoke. System administrators: the
//! list of centres"). The pages only gather the form and show the answer;
//! [`crate::service::centres`] checks the roles, validates, saves and
//! audits.

use std::sync::Arc;

use api_types::centres::PREFECTURES;
use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::admin::Choice;
use super::i18n::Lang;
use super::session::Viewer;
use super::views::{Layout, when};
use super::{Failure, Msg, OrPage, page, redirect, views};
use crate::domain::model::{Centre, Role};
use crate::domain::validate::FieldError;
use crate::error::Error;
use crate::service::centres::{CentreSettingsInput, SettingsError, served_consultation_centres};
use crate::state::App;
use crate::store::ApiKeyKind;

/// The settings page of one centre.
#[derive(Debug, Template)]
#[template(path = "admin_centre.html")]
pub struct CentrePage {
    pub l: Layout,
    pub id: i64,
    pub centre_name: String,
    pub prefecture_name: String,
    pub f: CentreSettingsInput,
    pub errors: Vec<(&'static str, String)>,
    pub info: String,
    /// The older centre of the prefecture whose consultation centre phones
    /// are shown instead of this one's; empty when this one's is served.
    pub served_by: String,
}

impl CentrePage {
    /// The message of `field`, or "".
    pub fn err(&self, field: &str) -> String {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

fn prefecture_name(lang: Lang, code: &str) -> String {
    PREFECTURES.iter().find(|p| p.code == code).map_or_else(
        || code.to_owned(),
        |p| lang.pick(p.name_ja, p.name_en).to_owned(),
    )
}

/// A refusal of the service as a page: 403 for a staff member, the 404
/// page for another centre, otherwise `None` (a field error to show).
fn refusal(v: &Viewer, e: &Error) -> Option<Response> {
    match e {
        Error::Field(f) if f.field == "forbidden" => Some(page(
            StatusCode::FORBIDDEN,
            &views::message(v.lang, Some(v), Msg::Forbidden),
        )),
        Error::Field(f) if f.field == "not_found" => Some(page(
            StatusCode::NOT_FOUND,
            &views::message(v.lang, Some(v), Msg::NotFound),
        )),
        _ => None,
    }
}

fn message(lang: Lang, f: &FieldError) -> String {
    lang.pick(&f.message_ja, &f.message_en).to_owned()
}

async fn centre_page(
    app: &App,
    v: &Viewer,
    c: &Centre,
    f: CentreSettingsInput,
    errors: Vec<(&'static str, String)>,
    info: String,
) -> crate::Result<CentrePage> {
    let lang = v.lang;
    let centres = app.issuer.store().centres().await?;
    let served = served_consultation_centres(&centres);
    let served_by = match served.iter().find(|e| e.prefecture == c.prefecture) {
        Some(e) if !c.consultation_name.is_empty() && e.name != c.consultation_name => centres
            .iter()
            .find(|o| o.prefecture == c.prefecture && o.consultation_name == e.name)
            .map(|o| o.name.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    Ok(CentrePage {
        l: Layout::of(
            v,
            lang.pick("保健所の設定", "Centre settings"),
            &format!("/portal/admin/centres/{}", c.id),
        ),
        id: c.id,
        centre_name: c.name.clone(),
        prefecture_name: prefecture_name(lang, &c.prefecture),
        f,
        errors,
        info,
        served_by,
    })
}

/// `GET /portal/admin/centre`: the viewer's own centre's settings.
pub async fn own_centre(v: Viewer) -> Response {
    redirect(&format!("/portal/admin/centres/{}", v.staff.centre_id))
}

/// `GET /portal/admin/centres/{id}`.
pub async fn centre_form(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    let id = raw.parse::<i64>().unwrap_or(-1);
    let c = match app.issuer.administered_centre(&v.staff, id).await {
        Ok(c) => c,
        Err(e) => return refusal(&v, &e).ok_or(Failure(v.lang, e)),
    };
    let p = centre_page(
        &app,
        &v,
        &c,
        CentreSettingsInput::of(&c),
        Vec::new(),
        String::new(),
    )
    .await
    .or_page(v.lang)?;
    Ok(page(StatusCode::OK, &p))
}

/// The settings form as posted (an unchecked box is absent).
#[derive(Debug, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    validity_hours: String,
    #[serde(default)]
    auto_issue: Option<String>,
    #[serde(default)]
    allow_clinical: Option<String>,
    #[serde(default)]
    consultation_name: String,
    #[serde(default)]
    consultation_phone: String,
    #[serde(default)]
    consultation_url: String,
    #[serde(default)]
    consultation_hours: String,
    #[serde(default)]
    delivery_fallback: Option<String>,
    #[serde(default)]
    reminder_hours: String,
}

/// `POST /portal/admin/centres/{id}`: saves every setting or none.
pub async fn centre_save(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<SettingsForm>,
) -> Result<Response, Failure> {
    let lang = v.lang;
    let id = raw.parse::<i64>().unwrap_or(-1);
    let input = CentreSettingsInput {
        validity_hours: f.validity_hours.chars().take(20).collect(),
        auto_issue: f.auto_issue.is_some(),
        allow_clinical: f.allow_clinical.is_some(),
        consultation_name: f.consultation_name.chars().take(200).collect(),
        consultation_phone: f.consultation_phone.chars().take(200).collect(),
        consultation_url: f.consultation_url.chars().take(400).collect(),
        consultation_hours: f.consultation_hours.chars().take(200).collect(),
        delivery_fallback: f.delivery_fallback.is_some(),
        reminder_hours: f.reminder_hours.chars().take(20).collect(),
    };
    match app
        .issuer
        .update_centre_settings(&v.staff, id, &input)
        .await
    {
        Ok(c) => {
            let info = lang
                .pick("設定を保存しました。", "Settings saved.")
                .to_owned();
            let p = centre_page(&app, &v, &c, CentreSettingsInput::of(&c), Vec::new(), info)
                .await
                .or_page(lang)?;
            Ok(page(StatusCode::OK, &p))
        }
        Err(SettingsError::Fields(errors)) => {
            let c = app
                .issuer
                .administered_centre(&v.staff, id)
                .await
                .or_page(lang)?;
            let errors = errors.iter().map(|e| (e.field, message(lang, e))).collect();
            let p = centre_page(&app, &v, &c, input, errors, String::new())
                .await
                .or_page(lang)?;
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &p))
        }
        Err(SettingsError::Other(e)) => refusal(&v, &e).ok_or(Failure(lang, e)),
    }
}

/// One centre of the list.
#[derive(Debug, Clone)]
pub struct CentreRowView {
    pub id: i64,
    pub name: String,
    pub prefecture: String,
    pub validity: String,
    pub auto: &'static str,
    pub consultation: String,
    pub staff: usize,
}

/// The list of centres (system administrators).
#[derive(Debug, Template)]
#[template(path = "admin_centres.html")]
pub struct CentresPage {
    pub l: Layout,
    pub rows: Vec<CentreRowView>,
    pub prefectures: Vec<Choice>,
    pub error: String,
    pub info: String,
    pub name: String,
    pub prefecture: String,
}

fn system_only(v: &Viewer) -> Option<Response> {
    (v.staff.role != Role::System).then(|| {
        page(
            StatusCode::FORBIDDEN,
            &views::message(v.lang, Some(v), Msg::Forbidden),
        )
    })
}

async fn centres_page(
    app: &App,
    v: &Viewer,
    error: String,
    info: String,
) -> crate::Result<CentresPage> {
    let lang = v.lang;
    let store = app.issuer.store();
    let staff = store.staff_listing(None).await?;
    let rows = store
        .centres()
        .await?
        .into_iter()
        .map(|c| CentreRowView {
            id: c.id,
            prefecture: prefecture_name(lang, &c.prefecture),
            validity: match lang {
                Lang::Ja => format!("{}時間", c.validity_seconds / 3600),
                Lang::En => format!("{} h", c.validity_seconds / 3600),
            },
            auto: if c.auto_issue {
                lang.pick("あり", "on")
            } else {
                lang.pick("なし", "off")
            },
            consultation: if c.consultation_name.is_empty() {
                lang.pick("（未設定）", "(not set)").to_owned()
            } else {
                c.consultation_name.clone()
            },
            staff: staff
                .iter()
                .filter(|s| s.centre_id == c.id && s.disabled_at.is_none())
                .count(),
            name: c.name,
        })
        .collect();
    Ok(CentresPage {
        l: Layout::of(
            v,
            lang.pick("保健所一覧", "Centres"),
            "/portal/admin/centres",
        ),
        rows,
        prefectures: PREFECTURES
            .iter()
            .map(|p| Choice {
                value: p.code.to_owned(),
                label: format!("{} {}", p.code, lang.pick(p.name_ja, p.name_en)),
            })
            .collect(),
        error,
        info,
        name: String::new(),
        prefecture: "13".into(),
    })
}

/// `GET /portal/admin/centres`.
pub async fn centres(State(app): State<Arc<App>>, v: Viewer) -> Result<Response, Failure> {
    if let Some(r) = system_only(&v) {
        return Ok(r);
    }
    let p = centres_page(&app, &v, String::new(), String::new())
        .await
        .or_page(v.lang)?;
    Ok(page(StatusCode::OK, &p))
}

/// The add-a-centre form.
#[derive(Debug, Default, Deserialize)]
pub struct NewCentreForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    prefecture: String,
}

/// `POST /portal/admin/centres`: a new centre with default settings.
pub async fn centre_create(
    State(app): State<Arc<App>>,
    v: Viewer,
    Form(f): Form<NewCentreForm>,
) -> Result<Response, Failure> {
    if let Some(r) = system_only(&v) {
        return Ok(r);
    }
    let lang = v.lang;
    match app
        .issuer
        .create_centre_by(&v.staff, &f.name, &f.prefecture)
        .await
    {
        Ok(id) => Ok(redirect(&format!("/portal/admin/centres/{id}"))),
        Err(Error::Field(e)) => {
            let mut p = centres_page(&app, &v, message(lang, &e), String::new())
                .await
                .or_page(lang)?;
            p.name = f.name.chars().take(100).collect();
            p.prefecture = f.prefecture.chars().take(2).collect();
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &p))
        }
        Err(e) => Err(Failure(lang, e)),
    }
}

/// One API key of the list: never the key.
#[derive(Debug, Clone)]
pub struct KeyRowView {
    pub id: i64,
    pub label: String,
    pub kind: &'static str,
    pub centre: String,
    pub created: String,
    pub state: String,
    pub revoked: bool,
}

/// The API keys page.
#[derive(Debug, Template)]
#[template(path = "admin_keys.html")]
pub struct KeysPage {
    pub l: Layout,
    pub rows: Vec<KeyRowView>,
    pub kinds: Vec<Choice>,
    pub centres: Vec<Choice>,
    pub error: String,
    pub info: String,
    /// A new key, shown once.
    pub key: String,
    pub label: String,
}

fn kind_label(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "device" => lang.pick("アプリ（処理番号の照合）", "app (number verification)"),
        _ => lang.pick(
            "連携システム（患者登録・発行）",
            "case system (cases and issuance)",
        ),
    }
}

async fn keys_page(
    app: &App,
    v: &Viewer,
    error: String,
    info: String,
    key: String,
) -> crate::Result<KeysPage> {
    let lang = v.lang;
    let centres = app.issuer.store().centres().await?;
    let centre_name = |id: Option<i64>| match id {
        None => lang.pick("（全保健所）", "(every centre)").to_owned(),
        Some(id) => centres
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_string(), |c| c.name.clone()),
    };
    let rows = app
        .issuer
        .api_keys_for(&v.staff)
        .await?
        .into_iter()
        .rev()
        .map(|k| KeyRowView {
            id: k.id,
            label: if k.label.is_empty() {
                lang.pick("（名前なし）", "(no name)").to_owned()
            } else {
                k.label.clone()
            },
            kind: kind_label(lang, &k.kind),
            centre: centre_name(k.centre_id),
            created: when(lang, k.created_at),
            state: match k.revoked_at {
                None => lang.pick("有効", "live").to_owned(),
                Some(t) => format!("{} {}", lang.pick("失効", "revoked"), when(lang, t)),
            },
            revoked: k.revoked_at.is_some(),
        })
        .collect();
    let mut kinds = vec![Choice {
        value: "admin".into(),
        label: kind_label(lang, "admin").into(),
    }];
    if v.is_system() {
        kinds.push(Choice {
            value: "device".into(),
            label: kind_label(lang, "device").into(),
        });
    }
    Ok(KeysPage {
        l: Layout::of(v, lang.pick("APIキー", "API keys"), "/portal/admin/keys"),
        rows,
        kinds,
        centres: centres
            .iter()
            .filter(|c| v.is_system() || c.id == v.staff.centre_id)
            .map(|c| Choice {
                value: c.id.to_string(),
                label: c.name.clone(),
            })
            .collect(),
        error,
        info,
        key,
        label: String::new(),
    })
}

fn admins_only(v: &Viewer) -> Option<Response> {
    (v.staff.role == Role::Staff).then(|| {
        page(
            StatusCode::FORBIDDEN,
            &views::message(v.lang, Some(v), Msg::Forbidden),
        )
    })
}

/// `GET /portal/admin/keys`.
pub async fn keys(State(app): State<Arc<App>>, v: Viewer) -> Result<Response, Failure> {
    if let Some(r) = admins_only(&v) {
        return Ok(r);
    }
    let p = keys_page(&app, &v, String::new(), String::new(), String::new())
        .await
        .or_page(v.lang)?;
    Ok(page(StatusCode::OK, &p))
}

/// The create-a-key form.
#[derive(Debug, Default, Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    centre_id: String,
}

/// `POST /portal/admin/keys`: a new key, shown once on the answer.
pub async fn key_create(
    State(app): State<Arc<App>>,
    v: Viewer,
    Form(f): Form<NewKeyForm>,
) -> Result<Response, Failure> {
    if let Some(r) = admins_only(&v) {
        return Ok(r);
    }
    let lang = v.lang;
    let kind = ApiKeyKind::parse(f.kind.trim());
    let centre = match f.centre_id.trim() {
        "" => Some(v.staff.centre_id),
        c => c.parse::<i64>().ok(),
    };
    let r = match (kind, centre) {
        (Some(kind), Some(centre)) => {
            app.issuer
                .create_api_key_by(&v.staff, kind, centre, &f.label)
                .await
        }
        _ => Err(FieldError {
            field: "kind",
            message_ja: "種類と保健所は一覧から選んでください".into(),
            message_en: "choose a kind and a centre from the lists".into(),
        }
        .into()),
    };
    match r {
        Ok((plain, id)) => {
            let info = format!(
                "{} {id}",
                lang.pick("APIキーを作成しました: ID", "API key created: id")
            );
            let p = keys_page(&app, &v, String::new(), info, plain)
                .await
                .or_page(lang)?;
            Ok(page(StatusCode::OK, &p))
        }
        Err(e) => {
            if let Some(r) = refusal(&v, &e) {
                return Ok(r);
            }
            match e {
                Error::Field(fe) => {
                    let mut p =
                        keys_page(&app, &v, message(lang, &fe), String::new(), String::new())
                            .await
                            .or_page(lang)?;
                    p.label = f.label.chars().take(40).collect();
                    Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &p))
                }
                e => Err(Failure(lang, e)),
            }
        }
    }
}

/// `POST /portal/admin/keys/{id}/revoke`: refused from the next request on.
pub async fn key_revoke(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, Failure> {
    if let Some(r) = admins_only(&v) {
        return Ok(r);
    }
    let lang = v.lang;
    let id = raw.parse::<i64>().unwrap_or(-1);
    match app.issuer.revoke_api_key_by(&v.staff, id).await {
        Ok(()) => {
            let info = format!(
                "{} {id}",
                lang.pick("APIキーを失効させました: ID", "API key revoked: id")
            );
            let p = keys_page(&app, &v, String::new(), info, String::new())
                .await
                .or_page(lang)?;
            Ok(page(StatusCode::OK, &p))
        }
        Err(Error::Field(fe)) if fe.field == "not_found" => {
            let p = keys_page(&app, &v, message(lang, &fe), String::new(), String::new())
                .await
                .or_page(lang)?;
            Ok(page(StatusCode::NOT_FOUND, &p))
        }
        Err(e) => Err(Failure(lang, e)),
    }
}
