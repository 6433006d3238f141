//! The rules of the seed (厚生労働省 事務連絡 2020-12-16, 別添1) as named
//! functions. Each doc comment quotes the rule it implements.

use api_types::cases::{Classification, codes};

use super::model::{CaseData, Centre, IssuanceState, ReportType};

/// Why a processing number cannot be issued (or reissued). Each item has its
/// own stable code and a Japanese and English message for the screen and
/// the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocker {
    /// Not reported as a confirmed case (確定例 / 無症状病原体保有者).
    NotConfirmed,
    /// 発生届 ① 外来機関 missing.
    MissingOutpatientFacility,
    /// 発生届 ② 検査陽性 not recorded.
    MissingPositiveTest,
    /// 発生届 ④ 診断年月日 missing.
    MissingDiagnosisDate,
    /// 「報告」 not done.
    NotReported,
    /// 氏名（漢字） missing.
    MissingNameKanji,
    /// フリガナ missing.
    MissingNameKana,
    /// Neither mobile number nor e-mail.
    MissingContact,
    /// No responsible centre (担当保健所).
    MissingCentre,
    /// A registration already succeeded.
    AlreadyRegistered,
}

impl Blocker {
    /// Stable error code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NotConfirmed => codes::NOT_CONFIRMED,
            Self::MissingOutpatientFacility => codes::MISSING_OUTPATIENT_FACILITY,
            Self::MissingPositiveTest => codes::MISSING_POSITIVE_TEST,
            Self::MissingDiagnosisDate => codes::MISSING_DIAGNOSIS_DATE,
            Self::NotReported => codes::NOT_REPORTED,
            Self::MissingNameKanji => codes::MISSING_NAME_KANJI,
            Self::MissingNameKana => codes::MISSING_NAME_KANA,
            Self::MissingContact => codes::MISSING_CONTACT,
            Self::MissingCentre => codes::MISSING_CENTRE,
            Self::AlreadyRegistered => codes::ALREADY_REGISTERED,
        }
    }

    /// Message for staff, in Japanese.
    pub fn message_ja(self) -> &'static str {
        match self {
            Self::NotConfirmed => {
                "確定患者（確定例または無症状病原体保有者）として届け出られていないため、処理番号を発行できません。"
            }
            Self::MissingOutpatientFacility => "発生届タブの「外来機関」が入力されていません。",
            Self::MissingPositiveTest => "発生届タブに検査が陽性である旨が入力されていません。",
            Self::MissingDiagnosisDate => "発生届タブの「診断年月日」が入力されていません。",
            Self::NotReported => {
                "発生届が報告されていません。発生届の入力後、「報告」ボタンを押下してください。"
            }
            Self::MissingNameKanji => "患者の氏名（漢字）が入力されていません。",
            Self::MissingNameKana => "患者の氏名（フリガナ）が入力されていません。",
            Self::MissingContact => {
                "患者の連絡先（携帯電話番号またはメールアドレスのいずれか）が入力されていません。"
            }
            Self::MissingCentre => "担当保健所名が入力されていません。",
            Self::AlreadyRegistered => {
                "この患者は既にアプリへの陽性登録に成功しています。一度登録に成功した場合には処理番号を再発行できません。"
            }
        }
    }

    /// Message in English.
    pub fn message_en(self) -> &'static str {
        match self {
            Self::NotConfirmed => {
                "the case is not reported as a confirmed case (confirmed or asymptomatic carrier)"
            }
            Self::MissingOutpatientFacility => "the notification lacks the outpatient facility",
            Self::MissingPositiveTest => "the notification does not record a positive test",
            Self::MissingDiagnosisDate => "the notification lacks the diagnosis date",
            Self::NotReported => "the notification has not been reported yet",
            Self::MissingNameKanji => "the patient's name in kanji is missing",
            Self::MissingNameKana => "the patient's name in katakana is missing",
            Self::MissingContact => "the patient has neither a mobile number nor an e-mail address",
            Self::MissingCentre => "the case has no responsible health centre",
            Self::AlreadyRegistered => {
                "a registration already succeeded with this case's number; it cannot be reissued"
            }
        }
    }
}

/// Issuance prerequisites.
///
/// The seed: 「「処理番号発行」には、確定患者として報告後、①患者の氏名（漢字・フリガナ）
/// ②患者の連絡先（携帯電話番号又はメールアドレス）③担当保健所名、の入力が必要です。」
/// and 「確定患者の情報として、発生届タブに①外来機関、②検査が陽性である旨、③患者（確定例）
/// である旨、④診断年月日が入力されていることをご確認ください。…①～④の情報を入力後、
/// 「報告」ボタンを押下してください。」
///
/// Returns the report type the number will certify, or every missing item
/// in the order the seed lists them. A clinical diagnosis (疑似症・臨床診断)
/// is a separate report type (`likely`), allowed only when the centre
/// enables it.
pub fn issuance_prerequisites(
    case: &CaseData,
    centre: Option<&Centre>,
) -> Result<ReportType, Vec<Blocker>> {
    let mut missing = Vec::new();
    let report_type = match case.classification {
        Classification::Confirmed | Classification::Asymptomatic => Some(ReportType::Confirmed),
        Classification::Clinical if centre.is_some_and(|c| c.allow_clinical) => {
            Some(ReportType::Likely)
        }
        Classification::Clinical => None,
    };
    if report_type.is_none() {
        missing.push(Blocker::NotConfirmed);
    }
    if case.outpatient_facility.trim().is_empty() {
        missing.push(Blocker::MissingOutpatientFacility);
    }
    if !case.test_positive && report_type != Some(ReportType::Likely) {
        missing.push(Blocker::MissingPositiveTest);
    }
    if case.diagnosis_date.is_none() {
        missing.push(Blocker::MissingDiagnosisDate);
    }
    if !case.reported {
        missing.push(Blocker::NotReported);
    }
    if case.name_kanji.trim().is_empty() {
        missing.push(Blocker::MissingNameKanji);
    }
    if case.name_kana.trim().is_empty() {
        missing.push(Blocker::MissingNameKana);
    }
    if case.mobile.is_none() && case.email.is_none() {
        missing.push(Blocker::MissingContact);
    }
    if case.centre_id.is_none() || centre.is_none() {
        missing.push(Blocker::MissingCentre);
    }
    match report_type {
        Some(t) if missing.is_empty() => Ok(t),
        _ => Err(missing),
    }
}

/// Reissue.
///
/// The seed: 「一定期間を超えてしまった等により、「処理番号」の登録に失敗した場合は、
/// 保健所で「処理番号」を再発行する必要があります。なお、一度登録に成功した場合には、
/// システム上「処理番号」を再発行できない仕組みとなっています（再発行できない場合、
/// その旨が画面上表示されます。）。」
///
/// `history` is the states of every earlier issuance of the case. Allowed
/// while none was used; the caller then supersedes the live one at once.
pub fn reissue_allowed(history: &[IssuanceState]) -> Result<(), Blocker> {
    if history.contains(&IssuanceState::Used) {
        Err(Blocker::AlreadyRegistered)
    } else {
        Ok(())
    }
}

/// Automatic issuance (COCOA from December 2021, an option per centre).
///
/// The seed's procedure: 「①陽性者にアプリ利用の有無を確認。有の場合は「アプリへの陽性登録」
/// の意思を確認【保健所】」 then 「③SMS又はメールで処理番号を通知【システム】」. With the
/// option on, a case whose app use is confirmed and whose prerequisites hold
/// is issued and sent without a button press.
pub fn should_issue_automatically(
    case: &CaseData,
    centre: &Centre,
    history: &[IssuanceState],
) -> bool {
    centre.auto_issue
        && case.uses_app
        && history.is_empty()
        && issuance_prerequisites(case, Some(centre)).is_ok()
}

/// Validity of a number.
///
/// The seed: 「「処理番号」は陽性者への通知後一定期間内で無効になる」. The period is a
/// per-centre setting, 24 h by default.
pub fn expires_at(issued_at: i64, centre: &Centre) -> i64 {
    issued_at + centre.validity_seconds.clamp(600, 7 * 24 * 3600)
}

/// How long a number handed to a gateway that sends receipts waits for the
/// delivered receipt before its validity counts from sending anyway.
///
/// Issue 13: "Validity counted from delivery where receipts exist (from
/// sending otherwise), so a gateway backlog never expires a number in
/// transit" (COCOA on 2022-01-14, cocoa #711: an SMS backlog let one-hour
/// numbers expire before they arrived). While in transit the number expires
/// at sending + this + its validity; the delivered receipt sets it to
/// delivery + validity; a failed or undelivered receipt withdraws it.
pub const MAX_TRANSIT_SECONDS: i64 = 12 * 3600;

/// The expiry of a number in transit (see [`MAX_TRANSIT_SECONDS`]).
pub fn expires_in_transit(sent_at: i64, validity_seconds: i64) -> i64 {
    sent_at + MAX_TRANSIT_SECONDS + validity_seconds
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::cases::Sex;
    use chrono::NaiveDate;

    fn centre() -> Centre {
        Centre {
            id: 1,
            name: "みなと保健所".into(),
            prefecture: "13".into(),
            consultation_name: String::new(),
            consultation_phone: "03-0000-0000".into(),
            consultation_url: String::new(),
            consultation_hours: String::new(),
            validity_seconds: 86400,
            auto_issue: true,
            allow_clinical: false,
            delivery_fallback: false,
            reminder_after_hours: None,
        }
    }

    fn complete() -> CaseData {
        CaseData {
            centre_id: Some(1),
            name_kanji: "横口 健太".into(),
            name_kana: "ヨコグチ　ケンタ".into(),
            birth_date: NaiveDate::from_ymd_opt(1998, 9, 9).unwrap(),
            sex: Sex::Male,
            mobile: Some("09012345678".into()),
            email: None,
            outpatient_facility: "港区帰国者・接触者外来".into(),
            test_positive: true,
            classification: Classification::Confirmed,
            diagnosis_date: NaiveDate::from_ymd_opt(2020, 12, 15),
            reported: true,
            uses_app: true,
        }
    }

    #[test]
    fn complete_case_qualifies() {
        assert_eq!(
            issuance_prerequisites(&complete(), Some(&centre())),
            Ok(ReportType::Confirmed)
        );
        let mut c = complete();
        c.classification = Classification::Asymptomatic;
        assert_eq!(
            issuance_prerequisites(&c, Some(&centre())),
            Ok(ReportType::Confirmed)
        );
    }

    #[test]
    fn each_missing_item_has_its_own_blocker() {
        type Edit = Box<dyn Fn(&mut CaseData)>;
        let cases: Vec<(Edit, Blocker)> = vec![
            (
                Box::new(|c| c.classification = Classification::Clinical),
                Blocker::NotConfirmed,
            ),
            (
                Box::new(|c| c.outpatient_facility.clear()),
                Blocker::MissingOutpatientFacility,
            ),
            (
                Box::new(|c| c.test_positive = false),
                Blocker::MissingPositiveTest,
            ),
            (
                Box::new(|c| c.diagnosis_date = None),
                Blocker::MissingDiagnosisDate,
            ),
            (Box::new(|c| c.reported = false), Blocker::NotReported),
            (
                Box::new(|c| c.name_kanji.clear()),
                Blocker::MissingNameKanji,
            ),
            (Box::new(|c| c.name_kana.clear()), Blocker::MissingNameKana),
            (Box::new(|c| c.mobile = None), Blocker::MissingContact),
            (Box::new(|c| c.centre_id = None), Blocker::MissingCentre),
        ];
        for (edit, blocker) in cases {
            let mut c = complete();
            edit(&mut c);
            assert_eq!(
                issuance_prerequisites(&c, Some(&centre())),
                Err(vec![blocker])
            );
            assert!(!blocker.message_ja().is_empty() && !blocker.message_en().is_empty());
        }
        let mut e = complete();
        e.mobile = None;
        e.email = Some("a@example.jp".into());
        assert!(issuance_prerequisites(&e, Some(&centre())).is_ok());
    }

    #[test]
    fn clinical_diagnosis_is_likely_when_allowed() {
        let mut c = complete();
        c.classification = Classification::Clinical;
        c.test_positive = false;
        let mut ce = centre();
        ce.allow_clinical = true;
        assert_eq!(
            issuance_prerequisites(&c, Some(&ce)),
            Ok(ReportType::Likely)
        );
    }

    #[test]
    fn reissue_is_refused_after_registration() {
        use IssuanceState::*;
        assert_eq!(reissue_allowed(&[]), Ok(()));
        assert_eq!(reissue_allowed(&[Superseded, Expired, Issued]), Ok(()));
        let e = reissue_allowed(&[Superseded, Used]).unwrap_err();
        assert_eq!(e.code(), "already_registered");
        assert!(
            e.message_ja()
                .contains("一度登録に成功した場合には処理番号を再発行できません")
        );
    }

    #[test]
    fn automatic_issuance_needs_the_option_and_app_use() {
        let ce = centre();
        assert!(should_issue_automatically(&complete(), &ce, &[]));
        assert!(!should_issue_automatically(
            &complete(),
            &ce,
            &[IssuanceState::Issued]
        ));
        let mut off = centre();
        off.auto_issue = false;
        assert!(!should_issue_automatically(&complete(), &off, &[]));
        let mut no_app = complete();
        no_app.uses_app = false;
        assert!(!should_issue_automatically(&no_app, &ce, &[]));
    }
}
