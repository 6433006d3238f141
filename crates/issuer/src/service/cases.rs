//! Cases: validating and saving what the clinic reported (発生届), and issuing
//! automatically when the centre asks for it.

use api_types::cases::CreateCaseRequest;
use tracing::{info, instrument, warn};

use super::{Actor, Issuer, jst};
use crate::domain::model::{Case, CaseData};
use crate::domain::{rules, validate};
use crate::error::{Error, Result};

impl Issuer {
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

    /// Creates a case of a CSV import with the case system's ID
    /// (`external_id`), validated and audited like any other case; `Ok(None)`
    /// (nothing stored) when that ID is already a case of the centre.
    #[instrument(skip_all, fields(actor = %actor.name))]
    pub async fn create_imported_case(
        &self,
        actor: &Actor,
        r: &CreateCaseRequest,
        external_id: &str,
    ) -> Result<Option<i64>> {
        let data = self.validate_case(actor, r)?;
        let Some(id) = self
            .store
            .insert_case_with_external_id(&data, external_id, self.now())
            .await?
        else {
            return Ok(None);
        };
        self.audit(
            actor,
            data.centre_id,
            Some(id),
            "create_case",
            "ok",
            "import".to_owned(),
        )
        .await;
        info!(case_id = id, "case imported");
        self.maybe_issue_automatically(id).await;
        Ok(Some(id))
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
}
