//! Confirmed cases (table `cases`), as the clinic reported them (発生届), with
//! the two HER-SYS header fields only the portal edits (症状, 居所).

use sqlx::Row;

use super::{Store, StoreError, rows};
use crate::domain::model::{Case, CaseData};

/// The HER-SYS header fields kept beside a case: 症状 and 居所.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseExtra {
    /// `""` (入力なし), `yes` (有) or `no` (無).
    pub symptoms: String,
    /// 居所 (free text).
    pub residence: String,
}

impl Store {
    /// Stores a new case; returns its id.
    pub async fn insert_case(&self, c: &CaseData, now: i64) -> Result<i64, StoreError> {
        self.insert_case_of_kind(c, false, now).await
    }

    /// Stores a new case, a canary case when `canary`; returns its id.
    pub async fn insert_case_of_kind(
        &self,
        c: &CaseData,
        canary: bool,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO cases (centre_id, name_kanji, name_kana, birth_date, sex, mobile, email, \
             outpatient_facility, test_positive, classification, diagnosis_date, reported, uses_app, \
             created_at, updated_at, canary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) RETURNING id",
        );
        let row = rows::bind_case(row, c)
            .bind(now)
            .bind(i64::from(canary))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Replaces a case's data.
    pub async fn update_case(&self, id: i64, c: &CaseData, now: i64) -> Result<(), StoreError> {
        let q = sqlx::query(
            "UPDATE cases SET centre_id = $1, name_kanji = $2, name_kana = $3, birth_date = $4, sex = $5, \
             mobile = $6, email = $7, outpatient_facility = $8, test_positive = $9, classification = $10, \
             diagnosis_date = $11, reported = $12, uses_app = $13, updated_at = $14 WHERE id = $15",
        );
        rows::bind_case(q, c)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A case by id.
    pub async fn case(&self, id: i64) -> Result<Option<Case>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM cases WHERE id = $1",
            rows::CASE_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| rows::case(&r)).transpose()
    }

    /// Cases of a centre (every centre when `None`), newest first, optionally
    /// filtered by a substring of the name (kanji or kana) or the exact id.
    pub async fn list_cases(
        &self,
        centre_id: Option<i64>,
        search: &str,
        limit: i64,
    ) -> Result<Vec<Case>, StoreError> {
        let pattern = format!("%{}%", search.replace(['%', '_'], ""));
        let id: i64 = search.trim().parse().unwrap_or(-1);
        let rs = sqlx::query(&format!(
            "SELECT {} FROM cases WHERE ($1 = -1 OR centre_id = $1) \
             AND ($2 = '%%' OR name_kanji LIKE $2 OR name_kana LIKE $2 OR id = $3) \
             ORDER BY id DESC LIMIT $4",
            rows::CASE_COLUMNS
        ))
        .bind(centre_id.unwrap_or(-1))
        .bind(pattern)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rs.iter().map(rows::case).collect()
    }

    /// The 症状 and 居所 of a case.
    pub async fn case_extra(&self, case_id: i64) -> Result<CaseExtra, StoreError> {
        let row = sqlx::query("SELECT symptoms, residence FROM cases WHERE id = $1")
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => CaseExtra {
                symptoms: r.try_get("symptoms")?,
                residence: r.try_get("residence")?,
            },
            None => CaseExtra::default(),
        })
    }

    /// Saves the 症状 and 居所 of a case.
    pub async fn set_case_extra(&self, case_id: i64, e: &CaseExtra) -> Result<(), StoreError> {
        sqlx::query("UPDATE cases SET symptoms = $1, residence = $2 WHERE id = $3")
            .bind(&e.symptoms)
            .bind(&e.residence)
            .bind(case_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// [`rows::CASE_COLUMNS`] of table alias `c`.
const CASE_COLUMNS_OF_C: &str = "c.id, c.centre_id, c.name_kanji, c.name_kana, c.birth_date, c.sex, \
     c.mobile, c.email, c.outpatient_facility, c.test_positive, c.classification, c.diagnosis_date, \
     c.reported, c.uses_app, c.created_at, c.canary";

/// Where a case stands with its newest processing number, as the case list
/// shows it (issue 13: 「未発行 / 送信待ち / 送信済み / 送達済み / 送信失敗 /
/// 期限切れ / 登録済み」).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    /// No number yet (未発行).
    None,
    /// Waiting to be sent (送信待ち).
    Pending,
    /// Handed to the gateway or relay (送信済み).
    Sent,
    /// Delivery receipt received (送達済み).
    Delivered,
    /// Sending failed (送信失敗).
    Failed,
    /// Expired or withdrawn, not registered (期限切れ).
    Expired,
    /// Registered in the app (登録済み).
    Used,
}

impl ListState {
    /// Every state, in the list's order.
    pub const ALL: [Self; 7] = [
        Self::None,
        Self::Pending,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Expired,
        Self::Used,
    ];

    /// Stable name (the filter's value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Used => "used",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One page of the case list.
#[derive(Debug, Clone, Copy)]
pub struct ListPage<'a> {
    /// The viewer's centre; `None`: every centre.
    pub centre_id: Option<i64>,
    /// Name, furigana or ID; empty: every case.
    pub search: &'a str,
    /// Only cases in this state.
    pub state: Option<ListState>,
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return.
    pub limit: i64,
    /// Now (unix seconds): a live number past its expiry counts as expired.
    pub now: i64,
}

impl Store {
    /// One page of cases, newest first, each with its [`ListState`], in one
    /// query. Without a state filter the page of cases is cut first and
    /// only its rows look up their newest issuance (the `issuances_case`
    /// index); with one, the newest issuance of every case comes from one
    /// grouped pass over `issuances`.
    pub async fn list_cases_page(
        &self,
        p: ListPage<'_>,
    ) -> Result<Vec<(Case, ListState)>, StoreError> {
        const STATE: &str = "CASE \
                 WHEN i.id IS NULL THEN 'none' \
                 WHEN i.state = 'used' THEN 'used' \
                 WHEN i.delivery_status IN ('failed', 'undelivered', 'dead') THEN 'failed' \
                 WHEN i.state <> 'issued' OR i.expires_at <= $5 THEN 'expired' \
                 WHEN i.delivery_status = 'delivered' THEN 'delivered' \
                 WHEN i.delivery_status = 'sent' THEN 'sent' \
                 ELSE 'pending' END";
        const MATCH: &str = "($1 = -1 OR c.centre_id = $1) \
                 AND ($2 = '%%' OR c.name_kanji LIKE $2 OR c.name_kana LIKE $2 OR c.id = $3)";
        let pattern = format!("%{}%", p.search.replace(['%', '_'], ""));
        let id: i64 = p.search.trim().parse().unwrap_or(-1);
        let sql = if p.state.is_none() {
            format!(
                "SELECT {cols}, {STATE} AS list_state FROM ( \
                   SELECT c.* FROM cases c WHERE {MATCH} AND $4 = '' \
                   ORDER BY c.id DESC LIMIT $6 OFFSET $7 \
                 ) c LEFT JOIN issuances i \
                   ON i.id = (SELECT MAX(id) FROM issuances WHERE case_id = c.id) \
                 ORDER BY c.id DESC",
                cols = CASE_COLUMNS_OF_C,
            )
        } else {
            format!(
                "SELECT {cols}, list_state FROM ( \
                   SELECT c.*, {STATE} AS list_state \
                   FROM cases c \
                   LEFT JOIN (SELECT case_id, MAX(id) AS last_id FROM issuances GROUP BY case_id) m \
                     ON m.case_id = c.id \
                   LEFT JOIN issuances i ON i.id = m.last_id \
                   WHERE {MATCH} \
                 ) c WHERE list_state = $4 \
                 ORDER BY c.id DESC LIMIT $6 OFFSET $7",
                cols = CASE_COLUMNS_OF_C,
            )
        };
        let rs = sqlx::query(&sql)
            .bind(p.centre_id.unwrap_or(-1))
            .bind(pattern)
            .bind(id)
            .bind(p.state.map_or("", ListState::as_str))
            .bind(p.now)
            .bind(p.limit)
            .bind(p.offset)
            .fetch_all(&self.pool)
            .await?;
        rs.iter()
            .map(|r| {
                let s: String = r.try_get("list_state")?;
                let s = ListState::parse(&s).ok_or(StoreError::Corrupt("list_state"))?;
                Ok((rows::case(r)?, s))
            })
            .collect()
    }
}
