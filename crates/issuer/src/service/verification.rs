//! Verification (PROTOCOLS.md §3): a processing number or link code for a
//! verification token, and the token for a certificate.

use api_types::verify::CertificateClaims;
use base64::Engine as _;
use tracing::{info, instrument};

use super::{Issuer, KEYRING_REFRESH_SECONDS};
use crate::domain::codes;
use crate::domain::codes::{CodeKind, TypedCode};
use crate::domain::model::ReportType;
use crate::error::{Error, Result};
use crate::signing::CERTIFICATE_LIFETIME_SECONDS;
use crate::store::{Claim, CodeColumn, Redeem};

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

/// A verification token lives 24 hours (PROTOCOLS.md §3).
pub const TOKEN_LIFETIME_SECONDS: i64 = 24 * 3600;

impl Issuer {
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
}
