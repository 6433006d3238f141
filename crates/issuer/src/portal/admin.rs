//! Administration: the staff accounts of a centre (issue 13: "Staff
//! accounts: create, disable, reset password (shown once), reset TOTP,
//! change role, display name; each action audited"). Centre administrators
//! manage their own centre's accounts, system administrators every
//! centre's; staff get the 403 page. The changes go through the service
//! ([`crate::Issuer::change_staff`], [`crate::Issuer::create_staff_by`]),
//! which checks the role rules and writes the audit log.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::i18n::Lang;
use super::session::Viewer;
use super::views::Layout;
use super::{Failure, Msg, OrPage, page, views};
use crate::domain::model::Role;
use crate::error::Error;
use crate::service::StaffChange;
use crate::state::App;

/// One account row of the page.
#[derive(Debug, Clone)]
pub struct StaffRowView {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role_value: &'static str,
    pub centre: String,
    pub totp: &'static str,
    pub disabled: bool,
}

/// A choice of a list: value, label.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

fn choice(value: &str, label: &str) -> Choice {
    Choice {
        value: value.to_owned(),
        label: label.to_owned(),
    }
}

/// The staff accounts page.
#[derive(Debug, Template)]
#[template(path = "admin_staff.html")]
pub struct StaffPage {
    pub l: Layout,
    pub rows: Vec<StaffRowView>,
    /// Roles the viewer may give.
    pub roles: Vec<Choice>,
    /// Centres the viewer may create accounts in.
    pub centres: Vec<Choice>,
    pub error: String,
    pub info: String,
    /// A new password, shown once.
    pub password: String,
    pub login: String,
    pub name: String,
}

fn role_label(lang: Lang, r: Role) -> &'static str {
    match r {
        Role::Staff => lang.pick("職員", "staff"),
        Role::Admin => lang.pick("保健所管理者", "centre administrator"),
        Role::System => lang.pick("システム管理者", "system administrator"),
    }
}

/// The 403 page, unless the viewer is an administrator.
fn refuse_unless_admin(v: &Viewer) -> Option<Response> {
    (!matches!(v.staff.role, Role::Admin | Role::System)).then(|| {
        page(
            StatusCode::FORBIDDEN,
            &views::message(v.lang, Some(v), Msg::Forbidden),
        )
    })
}

async fn staff_page(
    app: &App,
    v: &Viewer,
    error: String,
    info: String,
    password: String,
) -> crate::Result<StaffPage> {
    let lang = v.lang;
    let scope = (!v.is_system()).then_some(v.staff.centre_id);
    let store = app.issuer.store();
    let centres = store.centres().await?;
    let rows = store
        .staff_listing(scope)
        .await?
        .into_iter()
        .map(|s| StaffRowView {
            id: s.id,
            name: s.display_name,
            login: s.login,
            role_value: s.role.as_str(),
            centre: centres
                .iter()
                .find(|c| c.id == s.centre_id)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            totp: if s.totp {
                lang.pick("有効", "on")
            } else {
                lang.pick("未設定", "off")
            },
            disabled: s.disabled_at.is_some(),
        })
        .collect();
    let mut roles = vec![
        choice("staff", role_label(lang, Role::Staff)),
        choice("admin", role_label(lang, Role::Admin)),
    ];
    if v.is_system() {
        roles.push(choice("system", role_label(lang, Role::System)));
    }
    Ok(StaffPage {
        l: Layout::of(
            v,
            lang.pick("職員アカウント", "Staff accounts"),
            "/portal/admin/staff",
        ),
        rows,
        roles,
        centres: centres
            .into_iter()
            .filter(|c| v.is_system() || c.id == v.staff.centre_id)
            .map(|c| choice(&c.id.to_string(), &c.name))
            .collect(),
        error,
        info,
        password,
        login: String::new(),
        name: String::new(),
    })
}

/// `GET /portal/admin/staff`.
pub async fn staff_list(State(app): State<Arc<App>>, v: Viewer) -> Result<Response, Failure> {
    if let Some(r) = refuse_unless_admin(&v) {
        return Ok(r);
    }
    let p = staff_page(&app, &v, String::new(), String::new(), String::new())
        .await
        .or_page(v.lang)?;
    Ok(page(StatusCode::OK, &p))
}

/// The create form.
#[derive(Debug, Default, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    centre_id: String,
}

fn field_error(lang: Lang, e: &Error) -> Option<String> {
    match e {
        Error::Field(f) => Some(lang.pick(&f.message_ja, &f.message_en).to_owned()),
        _ => None,
    }
}

/// `POST /portal/admin/staff`: a new account with a random password, shown once.
pub async fn staff_create(
    State(app): State<Arc<App>>,
    v: Viewer,
    Form(f): Form<CreateForm>,
) -> Result<Response, Failure> {
    if let Some(r) = refuse_unless_admin(&v) {
        return Ok(r);
    }
    let lang = v.lang;
    let role = Role::parse(&f.role);
    let centre = match f.centre_id.trim() {
        "" => Some(v.staff.centre_id),
        c => c.parse::<i64>().ok(),
    };
    let r = match (role, centre) {
        (Some(role), Some(centre)) => {
            app.issuer
                .create_staff_by(&v.staff, centre, &f.login, &f.display_name, role)
                .await
        }
        _ => Err(crate::domain::validate::FieldError {
            field: "role",
            message_ja: "権限と保健所は一覧から選んでください".into(),
            message_en: "choose a role and a centre from the lists".into(),
        }
        .into()),
    };
    match r {
        Ok((_, password)) => {
            let info = format!(
                "{} {}",
                lang.pick("アカウントを作成しました:", "Account created:"),
                f.login.trim()
            );
            let p = staff_page(&app, &v, String::new(), info, password)
                .await
                .or_page(lang)?;
            Ok(page(StatusCode::OK, &p))
        }
        Err(e) => match field_error(lang, &e) {
            Some(msg) => {
                let mut p = staff_page(&app, &v, msg, String::new(), String::new())
                    .await
                    .or_page(lang)?;
                p.login = f.login.chars().take(64).collect();
                p.name = f.display_name.chars().take(80).collect();
                Ok(page(StatusCode::UNPROCESSABLE_ENTITY, &p))
            }
            None => Err(Failure(lang, e)),
        },
    }
}

/// A change form: `action` and, for a name or a role, `value`.
#[derive(Debug, Default, Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    value: String,
}

/// `POST /portal/admin/staff/{id}`.
pub async fn staff_change(
    State(app): State<Arc<App>>,
    v: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<ChangeForm>,
) -> Result<Response, Failure> {
    if let Some(r) = refuse_unless_admin(&v) {
        return Ok(r);
    }
    let lang = v.lang;
    let bad = |ja: &str, en: &str| -> Error {
        crate::domain::validate::FieldError {
            field: "action",
            message_ja: ja.into(),
            message_en: en.into(),
        }
        .into()
    };
    let change = match (f.action.as_str(), Role::parse(&f.value)) {
        ("display_name", _) => Ok(StaffChange::DisplayName(f.value.clone())),
        ("role", Some(r)) => Ok(StaffChange::Role(r)),
        ("role", None) => Err(bad(
            "権限は一覧から選んでください",
            "choose a role from the list",
        )),
        ("disable", _) => Ok(StaffChange::Disable),
        ("enable", _) => Ok(StaffChange::Enable),
        ("reset_password", _) => Ok(StaffChange::ResetPassword),
        ("reset_totp", _) => Ok(StaffChange::ResetTotp),
        _ => Err(bad(
            "操作は画面のボタンから選んでください",
            "choose an action with the page's buttons",
        )),
    };
    let id = raw.parse::<i64>().unwrap_or(-1);
    let r = match change {
        Ok(c) => app.issuer.change_staff(&v.staff, id, c).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(password) => {
            let info = lang.pick("変更しました。", "Saved.").to_owned();
            let p = staff_page(&app, &v, String::new(), info, password.unwrap_or_default())
                .await
                .or_page(lang)?;
            Ok(page(StatusCode::OK, &p))
        }
        Err(e) => match field_error(lang, &e) {
            Some(msg) => {
                let status = if matches!(&e, Error::Field(f) if f.field == "not_found") {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                let p = staff_page(&app, &v, msg, String::new(), String::new())
                    .await
                    .or_page(lang)?;
                Ok(page(status, &p))
            }
            None => Err(Failure(lang, e)),
        },
    }
}
