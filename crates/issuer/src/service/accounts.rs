//! Staff accounts, API keys and the certificate signing key: creating them,
//! and checking a password or an API key.

use super::{API_KEY_CACHE_SECONDS, Issuer};
use crate::domain::codes::CodeKind;
use crate::domain::{codes, validate};
use crate::error::{Error, Result};
use crate::store::{ApiKeyKind, ApiKeyRow, StaffRow};

impl Issuer {
    /// Rotates the certificate signing key.
    pub async fn rotate_signing_key(&self) -> Result<String> {
        let now = self.now();
        let mut rng = std::mem::replace(
            &mut *self.rng.lock().unwrap_or_else(|e| e.into_inner()),
            Box::new(rand::rngs::OsRng),
        );
        let r = self.keyring.rotate(&self.store, rng.as_mut(), now).await;
        *self.rng.lock().unwrap_or_else(|e| e.into_inner()) = rng;
        Ok(r?)
    }

    /// Creates an API key; returns the plain key (shown once) and its id.
    pub async fn create_api_key(
        &self,
        kind: ApiKeyKind,
        centre_id: Option<i64>,
    ) -> Result<(String, i64)> {
        let secret = self.with_rng(|r| codes::random_secret(r, 32));
        let plain = format!("{}_{secret}", kind.as_str());
        let id = self
            .store
            .create_api_key(
                &self.hasher.hash(CodeKind::ApiKey, &plain),
                kind,
                centre_id,
                self.now(),
            )
            .await?;
        Ok((plain, id))
    }

    /// Creates a staff account (argon2id password); `None` when the login is taken.
    pub async fn create_staff(
        &self,
        centre_id: i64,
        login: &str,
        password: &str,
        role: crate::domain::model::Role,
    ) -> Result<Option<i64>> {
        let login = login.trim();
        if login.is_empty()
            || login.len() > 64
            || !login
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        {
            return Err(validate::FieldError {
                field: "login",
                message_ja: "ログインIDは半角英数字と . _ - @ の64文字以内で入力してください"
                    .into(),
                message_en: "login must be 1-64 ASCII letters, digits or . _ - @".into(),
            }
            .into());
        }
        if self.store.centre(centre_id).await?.is_none() {
            return Err(validate::FieldError {
                field: "centre",
                message_ja: "保健所が見つかりません".into(),
                message_en: "no such centre".into(),
            }
            .into());
        }
        let phc = self.with_rng(|r| crate::domain::password::hash(password, r))?;
        Ok(self
            .store
            .create_staff(centre_id, login, &phc, role, self.now())
            .await?)
    }

    /// Revokes API key `id` at once: the store marks it revoked and this
    /// process forgets it from its cache of checked keys, so the very next
    /// request with it is refused (other replicas keep a checked key for at
    /// most [`API_KEY_CACHE_SECONDS`]). `false` when there is no live key
    /// `id`. Audited as `revoke_api_key`.
    pub async fn revoke_api_key(&self, actor: &super::Actor, id: i64) -> Result<bool> {
        let revoked = self.store.revoke_api_key(id, self.now()).await?;
        {
            let mut cache = self.api_keys.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|_, (k, _)| k.id != id);
        }
        if revoked {
            self.audit(
                actor,
                None,
                None,
                "revoke_api_key",
                "ok",
                format!("api:{id}"),
            )
            .await;
        }
        Ok(revoked)
    }

    /// The live API key `plain` of `kind`.
    pub async fn authenticate(&self, plain: Option<&str>, kind: ApiKeyKind) -> Result<ApiKeyRow> {
        let plain = plain
            .filter(|p| !p.is_empty() && p.len() <= 200)
            .ok_or(Error::Unauthorized)?;
        let hmac = self.hasher.hash(CodeKind::ApiKey, plain);
        let now = self.now();
        let cached = {
            let cache = self.api_keys.lock().unwrap_or_else(|e| e.into_inner());
            cache
                .get(&hmac)
                .filter(|(_, at)| (0..API_KEY_CACHE_SECONDS).contains(&(now - at)))
                .map(|(k, _)| k.clone())
        };
        let key = match cached {
            Some(k) => k,
            None => {
                let k = self
                    .store
                    .api_key(&hmac)
                    .await?
                    .ok_or(Error::Unauthorized)?;
                let mut cache = self.api_keys.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(hmac, (k.clone(), now));
                k
            }
        };
        if key.kind == kind {
            Ok(key)
        } else {
            Err(Error::Unauthorized)
        }
    }

    /// Checks a staff login: the account when `password` matches and the
    /// account is not disabled. An unknown login spends the same argon2id
    /// work against a dummy hash, so the answer time does not tell whether
    /// a login id exists.
    ///
    /// `slot` (the hash gate's permit) is moved into the blocking task and
    /// dropped when the hash is done, even if the request is abandoned.
    pub async fn check_password(
        &self,
        login: &str,
        password: &str,
        slot: impl Send + 'static,
    ) -> Result<Option<StaffRow>> {
        static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            crate::domain::password::hash("cocoa dummy password for timing", &mut rand::rngs::OsRng)
                .unwrap_or_default()
        });
        let login = login.trim();
        let row = if login.is_empty() || login.len() > 64 {
            None
        } else {
            self.store.staff_by_login(login).await?
        };
        let phc = row
            .as_ref()
            .map_or_else(|| DUMMY.clone(), |r| r.password_hash.clone());
        let password: String = password.chars().take(1024).collect();
        let ok = tokio::task::spawn_blocking(move || {
            let ok = crate::domain::password::verify(&password, &phc);
            drop(slot);
            ok
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(row.filter(|r| ok && r.disabled_at.is_none()))
    }
}

/// A change to a staff account, from the administration page (each one
/// audited as `staff_<what>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffChange {
    /// A new display name (1–40 characters, no control or format characters).
    DisplayName(String),
    /// A new role.
    Role(crate::domain::model::Role),
    /// Disable: the account cannot log in and its sessions end.
    Disable,
    /// Enable again.
    Enable,
    /// A new random password (shown once); the account's sessions end.
    ResetPassword,
    /// Turn TOTP off so the person enrols again; the sessions end.
    ResetTotp,
}

impl StaffChange {
    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self {
            Self::DisplayName(_) => "staff_display_name",
            Self::Role(_) => "staff_role",
            Self::Disable => "staff_disable",
            Self::Enable => "staff_enable",
            Self::ResetPassword => "staff_reset_password",
            Self::ResetTotp => "staff_reset_totp",
        }
    }
}

fn refused(field: &'static str, ja: &str, en: &str) -> Error {
    validate::FieldError {
        field,
        message_ja: ja.into(),
        message_en: en.into(),
    }
    .into()
}

/// Longest display name, characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 40;

/// Checks a display name.
pub fn display_name(input: &str) -> Result<String> {
    let s = validate::text("display_name", input)?;
    if s.is_empty()
        || s.chars().count() > MAX_DISPLAY_NAME_CHARS
        || !s.chars().any(char::is_alphabetic)
    {
        return Err(refused(
            "display_name",
            "表示名は文字を含む40文字以内で入力してください",
            "display name must be 1-40 characters with a letter",
        ));
    }
    Ok(s)
}

impl Issuer {
    /// Changes a staff account on behalf of `by` (a centre administrator
    /// for the accounts of their centre, a system administrator for every
    /// account). Returns the new password for [`StaffChange::ResetPassword`]
    /// (shown once, never stored in clear). Refused with a field error and
    /// nothing changed: another centre's account (`not_found`), a system
    /// account or the system role for a centre administrator (`role`), and
    /// disabling or demoting oneself (`self`).
    pub async fn change_staff(
        &self,
        by: &StaffRow,
        staff_id: i64,
        change: StaffChange,
    ) -> Result<Option<String>> {
        use crate::domain::model::Role;
        let target = self
            .store
            .staff(staff_id)
            .await?
            .filter(|t| by.role == Role::System || t.centre_id == by.centre_id)
            .ok_or_else(|| refused("not_found", "アカウントが見つかりません", "no such account"))?;
        if by.role != Role::System
            && (target.role == Role::System || change == StaffChange::Role(Role::System))
        {
            return Err(refused(
                "role",
                "システム管理者のアカウントはシステム管理者だけが変更できます",
                "only a system administrator can change system administrator accounts",
            ));
        }
        if target.id == by.id && matches!(change, StaffChange::Disable | StaffChange::Role(_)) {
            return Err(refused(
                "self",
                "自分のアカウントの無効化と権限変更はできません。別の管理者に依頼してください",
                "you cannot disable your own account or change your own role; ask another administrator",
            ));
        }
        let mut password = None;
        match &change {
            StaffChange::DisplayName(n) => {
                let n = display_name(n)?;
                self.store.set_staff_display_name(target.id, &n).await?;
            }
            StaffChange::Role(r) => self.store.set_staff_role(target.id, *r).await?,
            StaffChange::Disable => {
                self.store
                    .set_staff_disabled(target.id, Some(self.now()))
                    .await?;
                self.store.delete_sessions_of(target.id).await?;
            }
            StaffChange::Enable => self.store.set_staff_disabled(target.id, None).await?,
            StaffChange::ResetPassword => {
                let plain = self.with_rng(|r| codes::random_secret(r, 15));
                let phc = self.with_rng(|r| crate::domain::password::hash(&plain, r))?;
                self.store.set_staff_password(target.id, &phc).await?;
                self.store.delete_sessions_of(target.id).await?;
                password = Some(plain);
            }
            StaffChange::ResetTotp => {
                self.store.set_totp_secret(target.id, None).await?;
                self.store.delete_sessions_of(target.id).await?;
            }
        }
        let detail = match &change {
            StaffChange::Role(r) => format!("login={} role={}", target.login, r.as_str()),
            _ => format!("login={}", target.login),
        };
        self.audit(
            &super::Actor::staff(by),
            Some(target.centre_id),
            None,
            change.action(),
            "ok",
            detail,
        )
        .await;
        Ok(password)
    }

    /// Creates a staff account from the administration page with a random
    /// password (returned, shown once) and a display name; audited
    /// `staff_create`. The same checks as [`Issuer::create_staff`] (the
    /// CLI's), plus: a centre administrator creates accounts of their own
    /// centre only, never a system administrator.
    pub async fn create_staff_by(
        &self,
        by: &StaffRow,
        centre_id: i64,
        login: &str,
        name: &str,
        role: crate::domain::model::Role,
    ) -> Result<(i64, String)> {
        use crate::domain::model::Role;
        if by.role != Role::System && (centre_id != by.centre_id || role == Role::System) {
            return Err(refused(
                "role",
                "自分の保健所の職員・管理者のアカウントだけを作成できます",
                "you can create staff and administrator accounts of your own centre only",
            ));
        }
        let name = display_name(name)?;
        let plain = self.with_rng(|r| codes::random_secret(r, 15));
        let Some(id) = self.create_staff(centre_id, login, &plain, role).await? else {
            return Err(refused(
                "login",
                "このログインIDは既に使われています",
                "this login id is taken",
            ));
        };
        self.store.set_staff_display_name(id, &name).await?;
        self.audit(
            &super::Actor::staff(by),
            Some(centre_id),
            None,
            "staff_create",
            "ok",
            format!("login={} role={}", login.trim(), role.as_str()),
        )
        .await;
        Ok((id, plain))
    }
}
