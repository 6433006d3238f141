//! Verification: claiming a number or link code (once) and redeeming the
//! verification token it yields (tables `issuances` and `verification_tokens`).

use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::model::{Channel, ReportType};

/// The outcome of an atomic claim of a processing number or link code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed: the token was stored.
    Claimed {
        /// The issuance.
        issuance_id: i64,
        /// Its report type.
        report_type: ReportType,
    },
    /// Unknown, used, superseded, or lost the race.
    Invalid,
    /// Past its validity.
    Expired,
    /// Its report type is not accepted by the app.
    WrongTestType,
}

/// The outcome of redeeming a verification token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeem {
    /// Redeemed once, now spent.
    Redeemed {
        /// The report type of the number.
        report_type: ReportType,
        /// Whether the number was a canary case's.
        canary: bool,
    },
    /// Unknown or already used.
    Invalid,
    /// Past its 24 h.
    Expired,
}

/// Which column a claim looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeColumn {
    /// The 8-digit number's HMAC.
    Number,
    /// The link code's HMAC.
    Link,
}

impl Store {
    /// Atomically claims the live issuance whose number (or link code) hashes
    /// to `code_hmac` and stores the verification token: of two concurrent
    /// claims exactly one wins. Claiming by either code ends both.
    pub async fn claim(
        &self,
        column: CodeColumn,
        code_hmac: &str,
        accept: &[ReportType],
        token_hmac: &str,
        token_expires_at: i64,
        now: i64,
    ) -> Result<Claim, StoreError> {
        self.claim_or_replay(
            column,
            code_hmac,
            accept,
            token_hmac,
            token_expires_at,
            None,
            now,
        )
        .await
    }

    /// [`claim`](Self::claim), remembering `retry_hmac` (the HMAC of the
    /// device's `Idempotency-Key`): a later call with the same code and the
    /// same key, while the token is unspent and within its lifetime, is the
    /// retry of a lost answer and gets `token_hmac` as the new token (the
    /// lost one stops working) instead of `Invalid`.
    #[allow(clippy::too_many_arguments)]
    pub async fn claim_or_replay(
        &self,
        column: CodeColumn,
        code_hmac: &str,
        accept: &[ReportType],
        token_hmac: &str,
        token_expires_at: i64,
        retry_hmac: Option<&str>,
        now: i64,
    ) -> Result<Claim, StoreError> {
        let col = match column {
            CodeColumn::Number => "number_hmac",
            CodeColumn::Link => "link_hmac",
        };
        // One conditional UPDATE claims a live number of an accepted type
        // and stores the token with it: atomic without a transaction.
        let accepted = |t: ReportType| accept.contains(&t).then_some(t.as_str());
        let (a1, a2) = (
            accepted(ReportType::Confirmed).unwrap_or(""),
            accepted(ReportType::Likely).unwrap_or(""),
        );
        let won = {
            let _turn = self.write_turn().await;
            sqlx::query(&format!(
                "UPDATE issuances SET state = 'used', used_at = $1, token_hmac = $5, token_expires_at = $6, \
                 claim_key_hmac = $7 \
                 WHERE {col} = $2 AND state = 'issued' AND expires_at > $1 \
                 AND (report_type = $3 OR report_type = $4) RETURNING id, report_type"
            ))
            .bind(now)
            .bind(code_hmac)
            .bind(a1)
            .bind(a2)
            .bind(token_hmac)
            .bind(token_expires_at)
            .bind(retry_hmac)
            .fetch_optional(&self.pool)
            .await?
        };
        let won = match (won, retry_hmac) {
            (Some(row), _) => Some(row),
            // The retry of a claim whose answer was lost: same code, same
            // key, token not yet spent and still within its lifetime.
            (None, Some(retry)) => {
                let _turn = self.write_turn().await;
                sqlx::query(&format!(
                    "UPDATE issuances SET token_hmac = $3, token_expires_at = $4 \
                     WHERE {col} = $2 AND state = 'used' AND claim_key_hmac = $5 \
                     AND token_used_at IS NULL AND token_expires_at > $1 \
                     AND (report_type = $6 OR report_type = $7) RETURNING id, report_type"
                ))
                .bind(now)
                .bind(code_hmac)
                .bind(token_hmac)
                .bind(token_expires_at)
                .bind(retry)
                .bind(a1)
                .bind(a2)
                .fetch_optional(&self.pool)
                .await?
            }
            (None, None) => None,
        };
        if let Some(row) = won {
            let id: i64 = row.try_get("id")?;
            let rt: String = row.try_get("report_type")?;
            let report_type =
                ReportType::parse(&rt).ok_or(StoreError::Corrupt("issuances.report_type"))?;
            return Ok(Claim::Claimed {
                issuance_id: id,
                report_type,
            });
        }
        // Not claimed: say why (unknown, used or superseded, expired, type).
        let row = sqlx::query(&format!(
            "SELECT state, expires_at, report_type FROM issuances WHERE {col} = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(code_hmac)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Claim::Invalid);
        };
        let state: String = row.try_get("state")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let rt: String = row.try_get("report_type")?;
        let report_type =
            ReportType::parse(&rt).ok_or(StoreError::Corrupt("issuances.report_type"))?;
        Ok(match state.as_str() {
            "issued" if expires_at <= now => Claim::Expired,
            "expired" => Claim::Expired,
            "issued" if !accept.contains(&report_type) => Claim::WrongTestType,
            _ => Claim::Invalid,
        })
    }

    /// Spends a verification token (single use, 24 h).
    pub async fn redeem_token(&self, token_hmac: &str, now: i64) -> Result<Redeem, StoreError> {
        self.redeem_or_replay(token_hmac, None, now).await
    }

    /// [`redeem_token`](Self::redeem_token), remembering `retry_hmac` (the
    /// HMAC of the device's `Idempotency-Key` and the key HMAC it sent): a
    /// later call with the same token and the same `retry_hmac`, within the
    /// token's lifetime, is the retry of a lost answer and redeems again
    /// (a certificate for the same keys) instead of `Invalid`.
    pub async fn redeem_or_replay(
        &self,
        token_hmac: &str,
        retry_hmac: Option<&str>,
        now: i64,
    ) -> Result<Redeem, StoreError> {
        let row = {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE issuances SET token_used_at = $1, certificate_key_hmac = $3 \
                 WHERE token_hmac = $2 AND token_used_at IS NULL \
                 AND token_expires_at > $1 RETURNING report_type, channel",
            )
            .bind(now)
            .bind(token_hmac)
            .bind(retry_hmac)
            .fetch_optional(&self.pool)
            .await?
        };
        let row = match (row, retry_hmac) {
            (Some(row), _) => Some(row),
            (None, Some(retry)) => {
                sqlx::query(
                    "SELECT report_type, channel FROM issuances WHERE token_hmac = $1 \
                     AND token_used_at IS NOT NULL AND certificate_key_hmac = $2 \
                     AND token_expires_at > $3",
                )
                .bind(token_hmac)
                .bind(retry)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
            }
            (None, None) => None,
        };
        if let Some(row) = row {
            let rt: String = row.try_get("report_type")?;
            let channel: String = row.try_get("channel")?;
            return ReportType::parse(&rt)
                .map(|report_type| Redeem::Redeemed {
                    report_type,
                    canary: channel == Channel::Canary.as_str(),
                })
                .ok_or(StoreError::Corrupt("issuances.report_type"));
        }
        let row = sqlx::query(
            "SELECT token_expires_at, token_used_at FROM issuances WHERE token_hmac = $1",
        )
        .bind(token_hmac)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = row {
            let used: Option<i64> = r.try_get("token_used_at")?;
            let exp: Option<i64> = r.try_get("token_expires_at")?;
            return Ok(if used.is_none() && exp.is_some_and(|e| e <= now) {
                Redeem::Expired
            } else {
                Redeem::Invalid
            });
        }
        self.redeem_legacy_token(token_hmac, now).await
    }

    /// A token stored by a server before migration 0002 (in `tokens`).
    async fn redeem_legacy_token(&self, token_hmac: &str, now: i64) -> Result<Redeem, StoreError> {
        let row = {
            let _turn = self.write_turn().await;
            sqlx::query(
                "UPDATE tokens SET used_at = $1 WHERE token_hmac = $2 AND used_at IS NULL AND expires_at > $1 RETURNING report_type",
            )
            .bind(now)
            .bind(token_hmac)
            .fetch_optional(&self.pool)
            .await?
        };
        if let Some(row) = row {
            let rt: String = row.try_get("report_type")?;
            return ReportType::parse(&rt)
                .map(|report_type| Redeem::Redeemed {
                    report_type,
                    canary: false,
                })
                .ok_or(StoreError::Corrupt("tokens.report_type"));
        }
        let row = sqlx::query("SELECT expires_at, used_at FROM tokens WHERE token_hmac = $1")
            .bind(token_hmac)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => {
                let used: Option<i64> = r.try_get("used_at")?;
                let exp: i64 = r.try_get("expires_at")?;
                if used.is_none() && exp <= now {
                    Redeem::Expired
                } else {
                    Redeem::Invalid
                }
            }
            None => Redeem::Invalid,
        })
    }
}
