//! The operations of the issuer. Each checks the seed's rules, touches the
//! store, and writes the audit log. HTTP handlers and the CLI call these.

use std::sync::{Arc, Mutex};

use api_types::cases::CreateCaseRequest;
use api_types::verify::CertificateClaims;
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use en_protocol::time::Clock;
use tracing::{info, instrument, warn};

use crate::delivery::{Delivery, Message, MessageContext, render};
use crate::domain::codes::{
    self, CodeHasher, CodeKind, LinkCode, ProcessingNumber, SecureRng, TypedCode,
};
use crate::domain::model::{Case, CaseData, Centre, Channel, ReportType};
use crate::domain::rules::{self, Blocker};
use crate::domain::validate;
use crate::error::{Error, Result};
use crate::signing::{CERTIFICATE_LIFETIME_SECONDS, Keyring};
use crate::store::{
    ApiKeyKind, ApiKeyRow, AuditEntry, Claim, CodeColumn, IssueError, NewIssuance, Redeem,
    StaffRow, Store,
};

/// A verification token lives 24 hours (PROTOCOLS.md §3).
pub const TOKEN_LIFETIME_SECONDS: i64 = 24 * 3600;

/// Who acts, and on which centre's cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// For the audit log: `staff:<login>`, `api:<key id>`, `auto`, `cli`.
    pub name: String,
    /// The centre whose cases the actor may touch; `None`: every centre.
    pub centre_id: Option<i64>,
}

impl Actor {
    /// The actor of an admin API key.
    pub fn api(key: &ApiKeyRow) -> Self {
        Self {
            name: format!("api:{}", key.id),
            centre_id: key.centre_id,
        }
    }

    /// The actor of a signed-in staff member: their centre's cases only,
    /// every centre's for a system administrator.
    pub fn staff(staff: &StaffRow) -> Self {
        Self {
            name: format!("staff:{}", staff.login),
            centre_id: match staff.role {
                crate::domain::model::Role::System => None,
                _ => Some(staff.centre_id),
            },
        }
    }

    fn may_see(&self, case: &Case) -> bool {
        self.centre_id.is_none() || self.centre_id == case.data.centre_id
    }
}

/// Settings the operations need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Host of the app link.
    pub link_host: String,
    /// `iss` of certificates.
    pub certificate_issuer: String,
    /// `aud` of certificates.
    pub certificate_audience: String,
    /// Help phone in messages.
    pub help_phone: String,
    /// Help hours in messages.
    pub help_hours: String,
}

/// A sent number as the caller may see it: never the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Issuance id.
    pub issuance_id: i64,
    /// Channel used.
    pub channel: Channel,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

/// The issuer: storage, keys, delivery, clock and randomness.
pub struct Issuer {
    store: Store,
    hasher: CodeHasher,
    keyring: Keyring,
    delivery: Delivery,
    clock: Arc<dyn Clock>,
    rng: Mutex<Box<dyn SecureRng>>,
    settings: Settings,
    /// When the keyring was last read from the store (unix seconds).
    keys_loaded_at: std::sync::atomic::AtomicI64,
    /// Live API keys by HMAC, with the time they were read: the device API
    /// checks a key on every request without a database read.
    api_keys: Mutex<std::collections::HashMap<String, (ApiKeyRow, i64)>>,
    /// `iss` of certificates for canary cases (set with [`Issuer::with_canary`]).
    canary_certificate_issuer: Option<String>,
}

/// How long a checked API key is trusted without reading the store again
/// (so a revocation takes effect within this many seconds).
pub const API_KEY_CACHE_SECONDS: i64 = 30;

/// How often certificate signing re-reads the keys, so a rotation made by
/// another process (`cocoa issuer rotate-key`) takes over within a minute.
pub const KEYRING_REFRESH_SECONDS: i64 = 60;

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("backend", &self.store.backend())
            .field("keyring", &self.keyring)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Builds the issuer; loads (or creates) the certificate keys.
    pub async fn new(
        store: Store,
        secret: &[u8],
        delivery: Delivery,
        clock: Arc<dyn Clock>,
        mut rng: Box<dyn SecureRng>,
        settings: Settings,
    ) -> Result<Self> {
        let now = clock.now().timestamp();
        let keyring = Keyring::load_or_create(&store, rng.as_mut(), now).await?;
        Ok(Self {
            store,
            hasher: CodeHasher::new(secret),
            keyring,
            delivery,
            clock,
            rng: Mutex::new(rng),
            settings,
            keys_loaded_at: std::sync::atomic::AtomicI64::new(now),
            api_keys: Mutex::new(std::collections::HashMap::new()),
            canary_certificate_issuer: None,
        })
    }

    /// Accepts canary cases: their certificates name `certificate_issuer`
    /// (which the key server must trust for its canary region only). The
    /// delivery needs a canary channel too ([`Delivery::with_canary`]).
    pub fn with_canary(mut self, certificate_issuer: impl Into<String>) -> Self {
        self.canary_certificate_issuer = Some(certificate_issuer.into());
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The certificate keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Now, unix seconds.
    pub fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut dyn SecureRng) -> T) -> T {
        let mut g = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        f(g.as_mut())
    }

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

    /// The keyed hash of a code or secret of `kind` (as stored).
    pub fn hash_code(&self, kind: CodeKind, value: &str) -> String {
        self.hasher.hash(kind, value)
    }

    /// A fresh random secret of `bytes` bytes, base64url.
    pub fn random_secret(&self, bytes: usize) -> String {
        self.with_rng(|r| codes::random_secret(r, bytes))
    }

    /// Fills `buf` from the issuer's secure random source.
    pub fn fill_random(&self, buf: &mut [u8]) {
        self.with_rng(|r| r.fill_bytes(buf));
    }

    /// Checks a staff login: the account when `password` matches and the
    /// account is not disabled. An unknown login spends the same argon2id
    /// work against a dummy hash, so the answer time does not tell whether
    /// a login id exists.
    pub async fn check_password(&self, login: &str, password: &str) -> Result<Option<StaffRow>> {
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
        let ok =
            tokio::task::spawn_blocking(move || crate::domain::password::verify(&password, &phc))
                .await
                .map_err(anyhow::Error::from)?;
        Ok(row.filter(|r| ok && r.disabled_at.is_none()))
    }

    /// Appends an entry to the audit log (never pass a code in `detail`).
    pub async fn audit(
        &self,
        actor: &Actor,
        centre_id: Option<i64>,
        case_id: Option<i64>,
        action: &str,
        outcome: &str,
        detail: String,
    ) {
        let e = AuditEntry {
            at: self.now(),
            actor: actor.name.clone(),
            centre_id,
            case_id,
            action: action.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        };
        if let Err(err) = self.store.audit(&e).await {
            warn!(error = %err, action, "audit log write failed");
        }
    }

    /// Validates a case as the machine API or the portal sends it.
    pub fn validate_case(&self, actor: &Actor, r: &CreateCaseRequest) -> Result<CaseData> {
        let today = self.clock.now().with_timezone(&jst()).date_naive();
        let centre_id = match (actor.centre_id, r.centre_id) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(validate::FieldError {
                    field: "centre_id",
                    message_ja: "他の保健所の患者は登録できません".into(),
                    message_en: "cannot create a case for another centre".into(),
                }
                .into());
            }
            (Some(own), _) => Some(own),
            (None, asked) => asked,
        };
        let diagnosis_date = if r.diagnosis_date.trim().is_empty() {
            None
        } else {
            Some(validate::past_date(
                "diagnosis_date",
                &r.diagnosis_date,
                today,
            )?)
        };
        Ok(CaseData {
            centre_id,
            name_kanji: validate::name_kanji(&r.name_kanji)?,
            name_kana: validate::name_kana(&r.name_kana)?,
            birth_date: validate::past_date("birth_date", &r.birth_date, today)?,
            sex: r.sex,
            mobile: r
                .mobile
                .as_deref()
                .filter(|m| !m.trim().is_empty())
                .map(validate::mobile)
                .transpose()?,
            email: r
                .email
                .as_deref()
                .filter(|m| !m.trim().is_empty())
                .map(validate::email)
                .transpose()?,
            outpatient_facility: validate::text("outpatient_facility", &r.outpatient_facility)?,
            test_positive: r.test_positive,
            classification: r.classification,
            diagnosis_date,
            reported: r.reported,
            uses_app: r.uses_app,
        })
    }

    /// Creates a case; issues automatically when its centre says so
    /// ([`rules::should_issue_automatically`]).
    #[instrument(skip_all, fields(actor = %actor.name))]
    pub async fn create_case(&self, actor: &Actor, r: &CreateCaseRequest) -> Result<i64> {
        let data = self.validate_case(actor, r)?;
        if let Some(c) = data.centre_id
            && self.store.centre(c).await?.is_none()
        {
            return Err(validate::FieldError {
                field: "centre_id",
                message_ja: "保健所が見つかりません".into(),
                message_en: "no such centre".into(),
            }
            .into());
        }
        let id = self.store.insert_case(&data, self.now()).await?;
        self.audit(
            actor,
            data.centre_id,
            Some(id),
            "create_case",
            "ok",
            String::new(),
        )
        .await;
        info!(case_id = id, "case created");
        self.maybe_issue_automatically(id).await;
        Ok(id)
    }

    /// Creates a synthetic case for the production canary (`cocoa canary`):
    /// a confirmed, reported case of `centre_id` (the caller's own centre
    /// for a centre's key) whose numbers go through the canary channel and
    /// whose certificates name the canary issuer. It holds no personal data
    /// and is never issued automatically.
    #[instrument(skip_all, fields(actor = %actor.name))]
    pub async fn create_canary_case(&self, actor: &Actor, centre_id: Option<i64>) -> Result<i64> {
        if self.canary_certificate_issuer.is_none() || self.delivery.canary.is_none() {
            return Err(Error::CanaryNotConfigured);
        }
        let today = self.clock.now().with_timezone(&jst()).date_naive();
        let synthetic = CreateCaseRequest {
            name_kanji: "カナリア監視".into(),
            name_kana: "カナリアカンシ".into(),
            birth_date: "2000-01-01".into(),
            sex: api_types::cases::Sex::Other,
            mobile: None,
            // Never written to: the canary channel ignores the address.
            email: Some("canary@canary.invalid".into()),
            outpatient_facility: "カナリア監視".into(),
            test_positive: true,
            classification: api_types::cases::Classification::Confirmed,
            diagnosis_date: today.format("%Y-%m-%d").to_string(),
            reported: true,
            uses_app: true,
            centre_id,
        };
        let data = self.validate_case(actor, &synthetic)?;
        if let Some(c) = data.centre_id
            && self.store.centre(c).await?.is_none()
        {
            return Err(validate::FieldError {
                field: "centre_id",
                message_ja: "保健所が見つかりません".into(),
                message_en: "no such centre".into(),
            }
            .into());
        }
        let id = self
            .store
            .insert_case_of_kind(&data, true, self.now())
            .await?;
        self.audit(
            actor,
            data.centre_id,
            Some(id),
            "create_canary_case",
            "ok",
            String::new(),
        )
        .await;
        info!(case_id = id, "canary case created");
        Ok(id)
    }

    /// Replaces a case's data (portal); issues automatically when due.
    #[instrument(skip_all, fields(actor = %actor.name, case_id))]
    pub async fn update_case(
        &self,
        actor: &Actor,
        case_id: i64,
        r: &CreateCaseRequest,
    ) -> Result<()> {
        let case = self.case_for(actor, case_id).await?;
        let mut data = self.validate_case(actor, r)?;
        if actor.centre_id.is_some() || data.centre_id.is_none() {
            data.centre_id = case.data.centre_id;
        }
        self.store.update_case(case_id, &data, self.now()).await?;
        self.audit(
            actor,
            data.centre_id,
            Some(case_id),
            "update_case",
            "ok",
            String::new(),
        )
        .await;
        self.maybe_issue_automatically(case_id).await;
        Ok(())
    }

    async fn maybe_issue_automatically(&self, case_id: i64) {
        let auto = Actor {
            name: "auto".into(),
            centre_id: None,
        };
        let Ok(case) = self.case_for(&auto, case_id).await else {
            return;
        };
        let Some(cid) = case.data.centre_id else {
            return;
        };
        let Ok(Some(centre)) = self.store.centre(cid).await else {
            return;
        };
        let Ok(history) = self.store.issuance_history(case_id, self.now()).await else {
            return;
        };
        let states: Vec<_> = history.iter().map(|i| i.state).collect();
        if rules::should_issue_automatically(&case.data, &centre, &states)
            && let Err(e) = self.issue(&auto, case_id).await
        {
            warn!(case_id, error = %e, "automatic issuance failed");
        }
    }

    /// The case, if `actor` may see it (another centre's case is "not found").
    pub async fn case_for(&self, actor: &Actor, case_id: i64) -> Result<Case> {
        match self.store.case(case_id).await? {
            Some(c) if actor.may_see(&c) => Ok(c),
            _ => Err(Error::CaseNotFound),
        }
    }

    /// Issues (or reissues) a processing number for a case and sends it.
    /// Checks [`rules::issuance_prerequisites`] and [`rules::reissue_allowed`];
    /// the previous live number stops working at once. If the message cannot
    /// be delivered, the new number is withdrawn and the error says why.
    #[instrument(skip_all, fields(actor = %actor.name, case_id))]
    pub async fn issue(&self, actor: &Actor, case_id: i64) -> Result<Issued> {
        let r = self.issue_inner(actor, case_id).await;
        let (outcome, detail) = match &r {
            Ok(i) => (
                "ok".to_owned(),
                format!("channel={} expires_at={}", i.channel.as_str(), i.expires_at),
            ),
            Err(Error::Blocked(b)) => (
                b.first().map_or("blocked", |b| b.code()).to_owned(),
                b.iter().map(|b| b.code()).collect::<Vec<_>>().join(","),
            ),
            Err(Error::DeliveryFailed(reason)) => ("delivery_failed".to_owned(), reason.clone()),
            Err(Error::CaseNotFound) => ("case_not_found".to_owned(), String::new()),
            Err(_) => ("internal_error".to_owned(), String::new()),
        };
        let centre = match &r {
            Err(Error::CaseNotFound) => actor.centre_id,
            _ => self
                .store
                .case(case_id)
                .await
                .ok()
                .flatten()
                .and_then(|c| c.data.centre_id),
        };
        self.audit(
            actor,
            centre,
            Some(case_id),
            "issue_number",
            &outcome,
            detail,
        )
        .await;
        r
    }

    async fn issue_inner(&self, actor: &Actor, case_id: i64) -> Result<Issued> {
        let case = self.case_for(actor, case_id).await?;
        let centre: Option<Centre> = match case.data.centre_id {
            Some(c) => self.store.centre(c).await?,
            None => None,
        };
        let report_type =
            rules::issuance_prerequisites(&case.data, centre.as_ref()).map_err(Error::Blocked)?;
        let centre = centre.ok_or(Error::Blocked(vec![Blocker::MissingCentre]))?;
        let now = self.now();
        let history = self.store.issuance_history(case_id, now).await?;
        let states: Vec<_> = history.iter().map(|i| i.state).collect();
        rules::reissue_allowed(&states).map_err(|b| Error::Blocked(vec![b]))?;
        let (channel, to) = match (&case.data.mobile, &case.data.email) {
            _ if case.canary => (Channel::Canary, format!("canary-case-{case_id}")),
            (Some(m), _) => (Channel::Sms, m.clone()),
            (None, Some(e)) => (Channel::Email, e.clone()),
            (None, None) => return Err(Error::Blocked(vec![Blocker::MissingContact])),
        };
        let expires_at = rules::expires_at(now, &centre);
        let mut attempt = 0;
        let (id, number, link) = loop {
            attempt += 1;
            let (number, link) =
                self.with_rng(|r| (ProcessingNumber::generate(r), LinkCode::generate(r)));
            let n = NewIssuance {
                case_id,
                number_hmac: &self.hasher.hash(CodeKind::Number, number.expose()),
                link_hmac: &self.hasher.hash(CodeKind::Link, link.expose()),
                report_type,
                channel,
                issued_by: &actor.name,
                issued_at: now,
                expires_at,
            };
            match self.store.insert_issuance(&n).await {
                Ok(id) => break (id, number, link),
                Err(IssueError::Collision) if attempt < 20 => continue,
                Err(IssueError::Collision) => {
                    return Err(
                        anyhow::anyhow!("no free processing number after {attempt} draws").into(),
                    );
                }
                Err(IssueError::Refused(b)) => return Err(Error::Blocked(vec![b])),
                Err(IssueError::Store(e)) => return Err(e.into()),
            }
        };
        let ctx = MessageContext {
            number: &number,
            link: &link,
            link_host: &self.settings.link_host,
            expires_at,
            validity_hours: (expires_at - now + 1800) / 3600,
            help_phone: &self.settings.help_phone,
            help_hours: &self.settings.help_hours,
        };
        let (subject, body) = render(channel, &ctx);
        let msg = Message {
            channel,
            to,
            subject,
            body,
        };
        match self.delivery.send(&msg, now).await {
            Ok(()) => {
                self.store.mark_delivered(id, self.now()).await?;
                info!(
                    case_id,
                    issuance_id = id,
                    channel = channel.as_str(),
                    "processing number sent"
                );
                Ok(Issued {
                    issuance_id: id,
                    channel,
                    expires_at,
                })
            }
            Err(e) => {
                self.store
                    .mark_delivery_failed(id, &e.0, self.now())
                    .await?;
                warn!(case_id, issuance_id = id, reason = %e.0, "delivery failed; number withdrawn");
                Err(Error::DeliveryFailed(e.0))
            }
        }
    }

    /// `/api/verify`: normalises the code, claims it atomically and returns
    /// the report type and a single-use token valid 24 h.
    #[instrument(skip_all)]
    pub async fn verify(
        &self,
        code: &str,
        accept: Option<&[String]>,
    ) -> Result<(ReportType, String)> {
        self.verify_or_replay(code, accept, None).await
    }

    /// [`verify`](Self::verify) with the device's `Idempotency-Key`: the
    /// retry of a claim whose answer was lost (same code, same key, token
    /// unspent) gets a fresh token instead of `code_invalid`, so a lost
    /// answer does not burn the number (issue 5); the lost token stops
    /// working. Without the key, or with another one, a used number stays
    /// `code_invalid`.
    #[instrument(skip_all)]
    pub async fn verify_or_replay(
        &self,
        code: &str,
        accept: Option<&[String]>,
        idempotency_key: Option<&str>,
    ) -> Result<(ReportType, String)> {
        let accept = parse_accept(accept)?;
        let (column, hmac) = match codes::normalise_code(code).ok_or(Error::CodeInvalid)? {
            TypedCode::Number(n) => (CodeColumn::Number, self.hasher.hash(CodeKind::Number, &n)),
            TypedCode::Link(l) => (CodeColumn::Link, self.hasher.hash(CodeKind::Link, &l)),
        };
        let token = self.with_rng(|r| codes::random_secret(r, 32));
        let now = self.now();
        // Bound to the code, so the key alone opens nothing.
        let retry = idempotency_key.map(|k| {
            self.hasher
                .hash(CodeKind::Retry, &format!("verify\n{hmac}\n{k}"))
        });
        let claim = self
            .store
            .claim_or_replay(
                column,
                &hmac,
                &accept,
                &self.hasher.hash(CodeKind::Token, &token),
                now + TOKEN_LIFETIME_SECONDS,
                retry.as_deref(),
                now,
            )
            .await?;
        match claim {
            Claim::Claimed {
                report_type,
                issuance_id,
            } => {
                info!(issuance_id, "processing number claimed");
                Ok((report_type, token))
            }
            Claim::Invalid => Err(Error::CodeInvalid),
            Claim::Expired => Err(Error::CodeExpired),
            Claim::WrongTestType => Err(Error::InvalidTestType),
        }
    }

    /// `/api/certificate`: spends the token and signs a certificate bound to
    /// the key HMAC. No onset date is in it.
    #[instrument(skip_all)]
    pub async fn certificate(&self, token: &str, ekeyhmac: &str) -> Result<String> {
        self.certificate_or_replay(token, ekeyhmac, None).await
    }

    /// [`certificate`](Self::certificate) with the device's
    /// `Idempotency-Key`: the retry of a certificate request whose answer was
    /// lost (same token, same key, same `ekeyhmac`, within the token's 24 h)
    /// is signed again — for the same keys — instead of `token_invalid`.
    #[instrument(skip_all)]
    pub async fn certificate_or_replay(
        &self,
        token: &str,
        ekeyhmac: &str,
        idempotency_key: Option<&str>,
    ) -> Result<String> {
        let mac = base64::engine::general_purpose::STANDARD
            .decode(ekeyhmac.trim())
            .map_err(|_| Error::HmacInvalid)?;
        if mac.len() != 32 {
            return Err(Error::HmacInvalid);
        }
        if token.is_empty() || token.len() > 200 {
            return Err(Error::TokenInvalid);
        }
        let now = self.now();
        let token_hmac = self.hasher.hash(CodeKind::Token, token);
        let retry = idempotency_key.map(|k| {
            self.hasher.hash(
                CodeKind::Retry,
                &format!("certificate\n{token_hmac}\n{k}\n{}", ekeyhmac.trim()),
            )
        });
        let (report_type, canary) = match self
            .store
            .redeem_or_replay(&token_hmac, retry.as_deref(), now)
            .await?
        {
            Redeem::Redeemed {
                report_type,
                canary,
            } => (report_type, canary),
            Redeem::Invalid => return Err(Error::TokenInvalid),
            Redeem::Expired => return Err(Error::TokenExpired),
        };
        let loaded = self
            .keys_loaded_at
            .load(std::sync::atomic::Ordering::Relaxed);
        if now - loaded >= KEYRING_REFRESH_SECONDS || now < loaded {
            self.keys_loaded_at
                .store(now, std::sync::atomic::Ordering::Relaxed);
            self.keyring.reload(&self.store, now).await?;
        }
        // A canary case's certificate names the canary issuer, which the
        // key server trusts for the canary region only: its keys can never
        // reach the files real phones download.
        let iss = if canary {
            self.canary_certificate_issuer
                .clone()
                .ok_or(Error::CanaryNotConfigured)?
        } else {
            self.settings.certificate_issuer.clone()
        };
        let claims = CertificateClaims {
            iss,
            aud: self.settings.certificate_audience.clone(),
            iat: now,
            nbf: now - 60,
            exp: now + CERTIFICATE_LIFETIME_SECONDS,
            tekmac: base64::engine::general_purpose::STANDARD.encode(&mac),
            report_type: report_type.as_str().to_owned(),
        };
        Ok(self.keyring.sign(&claims)?)
    }

    /// A short random padding for answers.
    pub fn padding(&self) -> String {
        self.with_rng(|r| {
            let n = 16 + (r.next_u32() % 32) as usize;
            codes::random_secret(r, n)
        })
    }
}

fn parse_accept(accept: Option<&[String]>) -> Result<Vec<ReportType>> {
    let Some(list) = accept.filter(|l| !l.is_empty()) else {
        return Ok(vec![ReportType::Confirmed]);
    };
    if list.len() > 3 {
        return Err(Error::Unparsable("accept has too many entries".into()));
    }
    let mut out = Vec::new();
    for a in list {
        match a.as_str() {
            "confirmed" => out.push(ReportType::Confirmed),
            "likely" => out.push(ReportType::Likely),
            "negative" => {}
            _ => return Err(Error::Unparsable("unknown test type in accept".into())),
        }
    }
    Ok(out)
}

pub use en_protocol::time::jst;

/// RFC 3339 of a unix time, in JST.
pub fn rfc3339_jst(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|t| t.with_timezone(&jst()).to_rfc3339())
        .unwrap_or_default()
}
