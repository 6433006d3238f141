//! Positive registration (陽性情報の登録): the three inputs of the seed's
//! screen, the keys of the window, and the flow verify → certificate →
//! publish with its state saved after every step.
//!
//! # Resuming without burning the number
//!
//! The number is single-use on the server, so the phone never sends it twice
//! for nothing: the keys, the HMAC key and the key HMAC are fixed and saved
//! *before* the first request, and each answer is saved before the next
//! request. A crash, a lost answer or a dead network leaves the registration
//! at its last saved stage, and the next `register` (with or without the
//! inputs) goes on from there:
//!
//! | saved stage | the next attempt | the number |
//! |---|---|---|
//! | `entered` (nothing sent, or the verify answer lost) | sends `/api/verify` again | unused until the issuer answers |
//! | `verified` (token saved) | sends `/api/certificate` | used; the token (24 h) carries on |
//! | `certified` (certificate saved) | sends `/v1/publish` (idempotent on the key server) | used |
//! | `published` | nothing: done | used |
//!
//! Each step carries the same `Idempotency-Key` on every retry, so an issuer
//! that remembers it answers a repeat whose first answer was lost — the
//! cocoa-rs issuer does: a fresh token for the same number, a certificate
//! again for the same token and key HMAC. One that does not answers
//! `code_invalid`, and the app then says that the lost attempt may have used
//! the number and asks for a new one.
//!
//! # What leaves the phone
//!
//! The number (to the issuer), a token and the key HMAC (to the issuer), the
//! keys, the certificate and the HMAC key (to the key server), random
//! padding, and the API key header. Never the symptom answer, never the date.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use api_types::publish::{PublishKey, PublishRequest, PublishResponse, tekmac_message};
use api_types::verify::{
    CertificateRequest, CertificateResponse, TEST_TYPE_CONFIRMED, TEST_TYPE_LIKELY, VerifyRequest,
    VerifyResponse,
};

use crate::error::{Error, Result};
use crate::keys::DailyKey;
use crate::net::{API_KEY_HEADER, Answer, IDEMPOTENCY_HEADER, padding, post_json};
use crate::number::Code;
use crate::phone::Phone;
use crate::settings::join;
use crate::text::{Text, ja_date};
use crate::window::{check_registration_date, registration_keys};

/// The three inputs of the registration screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationInput {
    /// ① 「次のような症状がありますか？」: ある (true) / ない (false).
    pub symptoms: bool,
    /// ② The first day of symptoms, or the test date when there are none.
    pub date: NaiveDate,
    /// ③ The processing number, or the long code of the app link.
    pub code: Code,
}

/// Where a registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Inputs checked, keys fixed; `/api/verify` not answered yet.
    Entered,
    /// Token received; `/api/certificate` not answered yet.
    Verified,
    /// Certificate received; `/v1/publish` not answered yet.
    Certified,
    /// The keys are on the key server. Done.
    Published,
    /// Stopped for good (wrong, expired or used number...): a new number is needed.
    Failed,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Entered => "entered",
            Self::Verified => "verified",
            Self::Certified => "certified",
            Self::Published => "published",
            Self::Failed => "failed",
        }
    }

    /// The stage in words people read (`status`, the phone's screens), never
    /// the internal `entered` / `failed`.
    pub fn text(self) -> Text {
        match self {
            Self::Entered => Text::new(
                "登録の途中（処理番号の確認待ち）",
                "in progress (waiting for the number to be checked)",
            ),
            Self::Verified => Text::new(
                "登録の途中（処理番号は確認済み、証明の取得待ち）",
                "in progress (number accepted, certificate not received yet)",
            ),
            Self::Certified => Text::new(
                "登録の途中（鍵の送信待ち）",
                "in progress (keys not sent yet)",
            ),
            Self::Published => Text::new("登録済み", "registered"),
            Self::Failed => Text::new(
                "登録できませんでした（新しい処理番号が必要です）",
                "not registered (a new processing number is needed)",
            ),
        }
    }

    /// Whether the registration can still go on.
    pub fn in_progress(self) -> bool {
        matches!(self, Self::Entered | Self::Verified | Self::Certified)
    }
}

/// The saved state of a registration. Lives only on the phone; secrets
/// (number, token, HMAC key, certificate) never print.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Registration {
    stage: Stage,
    symptoms: bool,
    date: NaiveDate,
    contacts_from: DateTime<Utc>,
    /// The number or link code, until the issuer accepts it.
    code: Option<String>,
    /// Random, the same on every retry of a step.
    idempotency_key: String,
    /// Whether a `/api/verify` was sent whose answer never reached the
    /// phone (network lost, timeout, 5xx): the issuer may have used the
    /// number. An answer that did arrive and says nothing was done (429
    /// 「混み合っています」, 401) clears it: the number was not used then.
    #[serde(rename = "verify_sent")]
    verify_answer_pending: bool,
    token: Option<String>,
    test_type: Option<String>,
    keys: Vec<PublishKey>,
    hmac_key: String,
    ekeyhmac: String,
    certificate: Option<String>,
    inserted: Option<u32>,
    failure: Option<String>,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("stage", &self.stage)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// A registration as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationSummary {
    /// Where it stands.
    pub stage: Stage,
    /// Keys it sends.
    pub keys: usize,
    /// Keys the key server accepted.
    pub inserted: Option<u32>,
    /// Why it stopped, when it failed.
    pub failure: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

/// What `register` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrationOutcome {
    /// `published` on success.
    pub stage: Stage,
    /// Whether an earlier, interrupted registration was resumed.
    pub resumed: bool,
    /// Keys sent.
    pub keys: usize,
    /// Keys the key server accepted.
    pub inserted: u32,
    /// 00:00 Japan time two days before the date: contacts from then on are notified.
    pub contacts_from: DateTime<Utc>,
    /// The message for the user.
    pub message: Text,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The key HMAC: HMAC-SHA256 under `hmac_key` of the canonical message of
/// `api_types::publish::tekmac_message` (the issuer's `ekeyhmac`, the key
/// server's `tekmac`).
pub fn key_hmac(hmac_key: &[u8], keys: &[PublishKey]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(hmac_key).expect("HMAC takes a key of any length");
    mac.update(tekmac_message(keys).as_bytes());
    mac.finalize().into_bytes().into()
}

/// A key as the publish API carries it. No transmission risk: the key server
/// sets it from the certificate (COCOA's app shipped 0, which silenced every
/// Android phone for 4.5 months).
pub fn publish_key(k: &DailyKey) -> PublishKey {
    PublishKey {
        key: b64(k.tek.as_bytes()),
        rolling_start_number: k.rolling_start.get(),
        rolling_period: k.rolling_period,
        transmission_risk: None,
    }
}

impl Phone {
    fn save(&self, id: i64, r: &mut Registration) -> Result<()> {
        r.updated_at = self.now();
        self.store
            .update_registration(id, r.stage.as_str(), r, r.updated_at.timestamp())
    }

    fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.rng.fill_bytes(&mut b);
        b
    }

    /// The last registration, as `status` shows it.
    pub fn registration_summary(&self) -> Result<Option<RegistrationSummary>> {
        Ok(self
            .store
            .latest_registration::<Registration>()?
            .map(|(_, r)| RegistrationSummary {
                stage: r.stage,
                keys: r.keys.len(),
                inserted: r.inserted,
                failure: r.failure,
                started_at: r.started_at,
                updated_at: r.updated_at,
            }))
    }

    /// Checks the inputs and fixes what will be sent, without sending
    /// anything: the keys of the window, a fresh HMAC key and the key HMAC.
    fn prepare(&mut self, input: &RegistrationInput) -> Result<Registration> {
        let now = self.now();
        check_registration_date(input.date, now)?;
        let held = self.store.keys()?;
        let selection = registration_keys(&held, input.date, now)?;
        if selection.keys.is_empty() || !selection.covers_date {
            return Err(Error::NoKeysInWindow { date: input.date });
        }
        let keys: Vec<PublishKey> = selection.keys.iter().map(publish_key).collect();
        let hmac_key = self.random_bytes(32);
        let ekeyhmac = key_hmac(&hmac_key, &keys);
        let idempotency_key = hex::encode(self.random_bytes(16));
        Ok(Registration {
            stage: Stage::Entered,
            symptoms: input.symptoms,
            date: input.date,
            contacts_from: selection.window.contacts_from,
            code: Some(input.code.as_str().to_owned()),
            idempotency_key,
            verify_answer_pending: false,
            token: None,
            test_type: None,
            keys,
            hmac_key: b64(&hmac_key),
            ekeyhmac: b64(&ekeyhmac),
            certificate: None,
            inserted: None,
            failure: None,
            started_at: now,
            updated_at: now,
        })
    }

    /// Registers a positive result, or resumes the registration in progress.
    ///
    /// With `input`, a new registration starts unless one is in progress past
    /// its first step (then that one resumes and `input` is ignored: its
    /// number is already used). Without `input`, the registration in
    /// progress resumes. On [`Error::is_retryable`] errors the state is kept
    /// and calling again goes on from the last step that was answered.
    pub async fn register(
        &mut self,
        input: Option<&RegistrationInput>,
    ) -> Result<RegistrationOutcome> {
        let now = self.now();
        let latest = self.store.latest_registration::<Registration>()?;
        let (id, mut reg, resumed) = match (latest, input) {
            (Some((id, r)), _) if r.stage.in_progress() && r.stage != Stage::Entered => {
                (id, r, true)
            }
            (Some((id, r)), None) if r.stage == Stage::Entered => (id, r, true),
            (Some((id, mut r)), Some(input)) if r.stage == Stage::Entered => {
                // Nothing was accepted yet: the new inputs replace the old ones.
                let fresh = self.prepare(input)?;
                r.stage = Stage::Failed;
                r.failure = Some("replaced".into());
                r.code = None;
                self.save(id, &mut r)?;
                let id = self.store.insert_registration(
                    fresh.stage.as_str(),
                    &fresh,
                    now.timestamp(),
                )?;
                (id, fresh, false)
            }
            (_, Some(input)) => {
                let fresh = self.prepare(input)?;
                let id = self.store.insert_registration(
                    fresh.stage.as_str(),
                    &fresh,
                    now.timestamp(),
                )?;
                (id, fresh, false)
            }
            (_, None) => return Err(Error::RegistrationInputMissing),
        };
        self.drive(id, &mut reg).await?;
        let inserted = reg.inserted.unwrap_or(0);
        Ok(RegistrationOutcome {
            stage: reg.stage,
            resumed,
            keys: reg.keys.len(),
            inserted,
            contacts_from: reg.contacts_from,
            message: Text::new(
                format!(
                    "陽性情報の登録が完了しました。ご協力ありがとうございます。{}の2日前以降にあなたと接触した人に通知が行きます。入力した症状の有無や日付は送信していません。なお、一度登録に成功した処理番号は再発行できません。",
                    ja_date(reg.date)
                ),
                format!(
                    "Your positive result is registered; thank you. People in contact with you from 2 days before {} will be notified. Your symptom answer and the date were not sent.",
                    reg.date
                ),
            ),
        })
    }

    fn api_headers(&self, idempotency_key: &str) -> Result<Vec<(&'static str, String)>> {
        let mut h = vec![(IDEMPOTENCY_HEADER, idempotency_key.to_owned())];
        if let Some(k) = &self.settings.api_key {
            h.push((API_KEY_HEADER, k.clone()));
        }
        Ok(h)
    }

    /// Runs the remaining steps, saving after each answer.
    async fn drive(&mut self, id: i64, reg: &mut Registration) -> Result<()> {
        loop {
            match reg.stage {
                Stage::Entered => self.step_verify(id, reg).await?,
                Stage::Verified => self.step_certificate(id, reg).await?,
                Stage::Certified => self.step_publish(id, reg).await?,
                Stage::Published => return Ok(()),
                Stage::Failed => {
                    return Err(Error::Corrupt("a failed registration cannot go on".into()));
                }
            }
        }
    }

    fn fail(&self, id: i64, reg: &mut Registration, code: &str, err: Error) -> Result<()> {
        reg.stage = Stage::Failed;
        reg.failure = Some(code.to_owned());
        reg.code = None;
        reg.token = None;
        self.save(id, reg)?;
        Err(err)
    }

    async fn step_verify(&mut self, id: i64, reg: &mut Registration) -> Result<()> {
        let url = join(&self.settings.server_url()?, "api/verify");
        let lost_before = reg.verify_answer_pending;
        reg.verify_answer_pending = true;
        self.save(id, reg)?;
        let body = VerifyRequest {
            code: reg.code.clone().unwrap_or_default(),
            accept: Some(vec![TEST_TYPE_CONFIRMED.into(), TEST_TYPE_LIKELY.into()]),
            padding: Some(padding(&mut self.rng)),
        };
        let headers = self.api_headers(&format!("{}-verify", reg.idempotency_key))?;
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = match post_json::<_, VerifyResponse>(&self.http, url, &headers, &body).await {
            // The issuer answered that it did nothing (busy, or the app's API
            // key refused): this attempt did not use the number, so a later
            // 「使用済み」 is not blamed on it — but one lost before still may be.
            Err(
                e @ (Error::RateLimited { .. }
                | Error::NumberEntryPaused { .. }
                | Error::Unauthorized),
            ) => {
                reg.verify_answer_pending = lost_before;
                self.save(id, reg)?;
                return Err(e);
            }
            other => other?,
        };
        match answer {
            Answer::Ok(v) => {
                reg.token = Some(v.token);
                reg.test_type = Some(v.testtype);
                reg.code = None;
                reg.stage = Stage::Verified;
                self.save(id, reg)
            }
            Answer::Refused { code, message, .. } => {
                use api_types::verify::codes;
                let err = match code.as_str() {
                    codes::CODE_INVALID => Error::CodeInvalid {
                        maybe_used_by_lost_attempt: lost_before,
                    },
                    codes::CODE_EXPIRED => Error::CodeExpired,
                    codes::INVALID_TEST_TYPE => Error::InvalidTestType,
                    codes::UNAUTHORIZED => {
                        reg.verify_answer_pending = lost_before;
                        self.save(id, reg)?;
                        return Err(Error::Unauthorized);
                    }
                    codes::QUOTA_EXCEEDED | codes::MAINTENANCE_MODE => {
                        reg.verify_answer_pending = lost_before;
                        self.save(id, reg)?;
                        return Err(Error::RateLimited { retry_after: None });
                    }
                    _ => {
                        return Err(Error::UnexpectedAnswer {
                            detail: format!("/api/verify: {code}: {message}"),
                        });
                    }
                };
                self.fail(id, reg, &code, err)
            }
        }
    }

    async fn step_certificate(&mut self, id: i64, reg: &mut Registration) -> Result<()> {
        let url = join(&self.settings.server_url()?, "api/certificate");
        let body = CertificateRequest {
            token: reg.token.clone().unwrap_or_default(),
            ekeyhmac: reg.ekeyhmac.clone(),
            padding: Some(padding(&mut self.rng)),
        };
        let headers = self.api_headers(&format!("{}-certificate", reg.idempotency_key))?;
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match post_json::<_, CertificateResponse>(&self.http, url, &headers, &body).await? {
            Answer::Ok(c) => {
                reg.certificate = Some(c.certificate);
                reg.token = None;
                reg.stage = Stage::Certified;
                self.save(id, reg)
            }
            Answer::Refused { code, message, .. } => {
                use api_types::verify::codes;
                match code.as_str() {
                    codes::TOKEN_INVALID | codes::TOKEN_EXPIRED => {
                        let err = Error::TokenRejected { code: code.clone() };
                        self.fail(id, reg, &code, err)
                    }
                    codes::UNAUTHORIZED => Err(Error::Unauthorized),
                    codes::QUOTA_EXCEEDED | codes::MAINTENANCE_MODE => {
                        Err(Error::RateLimited { retry_after: None })
                    }
                    _ => Err(Error::UnexpectedAnswer {
                        detail: format!("/api/certificate: {code}: {message}"),
                    }),
                }
            }
        }
    }

    async fn step_publish(&mut self, id: i64, reg: &mut Registration) -> Result<()> {
        let url = join(&self.settings.keyserver_url()?, "v1/publish");
        let body = PublishRequest {
            keys: reg.keys.clone(),
            health_authority_id: self.settings.health_authority_id.clone(),
            verification_payload: reg.certificate.clone().unwrap_or_default(),
            hmac_key: reg.hmac_key.clone(),
            symptom_onset_interval: None,
            traveler: None,
            revision_token: None,
            padding: Some(padding(&mut self.rng)),
        };
        let headers = self.api_headers(&format!("{}-publish", reg.idempotency_key))?;
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match post_json::<_, PublishResponse>(&self.http, url, &headers, &body).await? {
            Answer::Ok(p) => {
                reg.inserted = Some(p.inserted_exposures);
                reg.certificate = None;
                reg.stage = Stage::Published;
                self.save(id, reg)
            }
            Answer::Refused { code, message, .. } => {
                use api_types::publish::codes;
                let err = match code.as_str() {
                    codes::CERTIFICATE_INVALID
                    | codes::CERTIFICATE_EXPIRED
                    | codes::CERTIFICATE_AUDIENCE_INVALID
                    | codes::HMAC_MISMATCH
                    | codes::UNKNOWN_HEALTH_AUTHORITY_ID => {
                        Error::CertificateRejected { code: code.clone() }
                    }
                    _ => Error::PublishRejected {
                        code: code.clone(),
                        message,
                    },
                };
                self.fail(id, reg, &code, err)
            }
        }
    }
}
