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
