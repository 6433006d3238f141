//! The demo deployment's seed (`cocoa serve --demo`, `cocoa demo`): one
//! health centre, one staff account and a few confirmed cases ready for
//! 「処理番号発行」. Seeding is idempotent: what exists (found by the demo
//! centre's name, the staff login, the centre's cases) is kept, never made
//! twice. For local demos only: the seed uses made-up people.

use api_types::cases::{Classification, CreateCaseRequest, Sex};
use chrono::Duration;

use crate::domain::model::Role;
use crate::error::Result;
use crate::service::{Actor, Issuer, jst};

/// Name of the demo health centre.
pub const DEMO_CENTRE_NAME: &str = "デモ保健所（ローカル専用）";

/// Prefecture of the demo centre (東京都).
pub const DEMO_PREFECTURE: &str = "13";

/// Login id of the demo staff account (an admin of the demo centre).
pub const DEMO_STAFF_LOGIN: &str = "demo";

/// The demo's made-up patients: kanji, kana, birth date, sex, mobile.
pub const DEMO_PATIENTS: &[(&str, &str, &str, Sex, &str)] = &[
    (
        "横口 健太",
        "ヨコグチ ケンタ",
        "1998-09-09",
        Sex::Male,
        "090-0000-0001",
    ),
    (
        "港 花子",
        "ミナト ハナコ",
        "1985-04-01",
        Sex::Female,
        "090-0000-0002",
    ),
    (
        "芝 一郎",
        "シバ イチロウ",
        "1972-11-23",
        Sex::Male,
        "090-0000-0003",
    ),
];

/// What [`ensure_demo`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSeed {
    /// The demo centre's id.
    pub centre_id: i64,
    /// Whether the centre was created now.
    pub centre_created: bool,
    /// Whether the staff account was created now (with the given password).
    pub staff_created: bool,
    /// Cases created now.
    pub cases_created: usize,
    /// Ids of the centre's cases (newest first).
    pub case_ids: Vec<i64>,
}

/// The confirmed-case report of a demo patient, diagnosed on `diagnosis_date`
/// (`YYYY-MM-DD`), with the four fields of the 発生届 and a mobile number.
pub fn demo_case(
    (kanji, kana, birth, sex, mobile): (&str, &str, &str, Sex, &str),
    diagnosis_date: &str,
) -> CreateCaseRequest {
    CreateCaseRequest {
        name_kanji: kanji.to_owned(),
        name_kana: kana.to_owned(),
        birth_date: birth.to_owned(),
        sex,
        mobile: Some(mobile.to_owned()),
        email: None,
        outpatient_facility: "デモ帰国者・接触者外来".to_owned(),
        test_positive: true,
        classification: Classification::Confirmed,
        diagnosis_date: diagnosis_date.to_owned(),
        reported: true,
        uses_app: true,
        centre_id: None,
    }
}

/// Makes sure the demo centre, its staff account ([`DEMO_STAFF_LOGIN`],
/// role admin, `password` when it is created now) and its demo cases
/// (diagnosed yesterday, Japan time) exist. Running it again changes nothing.
pub async fn ensure_demo(issuer: &Issuer, password: &str) -> Result<DemoSeed> {
    let store = issuer.store();
    let now = issuer.now();
    let existing = store
        .centres()
        .await?
        .into_iter()
        .find(|c| c.name == DEMO_CENTRE_NAME);
    let (centre_id, centre_created) = match existing {
        Some(c) => (c.id, false),
        None => {
            let id = store
                .create_centre(DEMO_CENTRE_NAME, DEMO_PREFECTURE, now)
                .await?;
            if let Some(mut c) = store.centre(id).await? {
                c.consultation_phone = "0120-565653".to_owned();
                c.auto_issue = false;
                store.update_centre(&c).await?;
            }
            (id, true)
        }
    };
    let staff_created = match store.staff_by_login(DEMO_STAFF_LOGIN).await? {
        Some(_) => false,
        None => issuer
            .create_staff(centre_id, DEMO_STAFF_LOGIN, password, Role::Admin)
            .await?
            .is_some(),
    };
    let mut cases = store.list_cases(Some(centre_id), "", 100).await?;
    let mut cases_created = 0;
    if cases.is_empty() {
        let actor = Actor {
            name: "demo-seed".to_owned(),
            centre_id: Some(centre_id),
        };
        let yesterday = (chrono::DateTime::from_timestamp(now, 0).unwrap_or_default()
            - Duration::days(1))
        .with_timezone(&jst())
        .date_naive()
        .to_string();
        for p in DEMO_PATIENTS {
            issuer
                .create_case(&actor, &demo_case(*p, &yesterday))
                .await?;
            cases_created += 1;
        }
        cases = store.list_cases(Some(centre_id), "", 100).await?;
    }
    Ok(DemoSeed {
        centre_id,
        centre_created,
        staff_created,
        cases_created,
        case_ids: cases.iter().map(|c| c.id).collect(),
    })
}
