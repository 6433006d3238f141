//! The configuration the key server serves (issue 14): "Phones fetch it at each check, verify
//! the signature, apply it, keep the last good one, and fall back to the built-in COCOA
//! values; an unsigned, tampered or invalid configuration is refused and reported, never
//! half-applied." A phone with one contact day (High under COCOA's values) checks against a
//! fake key server serving `/exposure_configuration/…` as the key server does (ETag, 304,
//! 404 before anything is published).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Fake, checking_phone, export_of, jst, signer};
use device::{ConfigurationSource, Phone, RegistrationInput, meet, normalise_number};
use en_protocol::export::{ExportSigner, SoftwareSigner};
use en_protocol::exposure_configuration::ExposureConfiguration;
use en_protocol::risk_calculation::RiskCalculationConfiguration;
use en_protocol::served_configuration::sign_bundle;
use tempfile::TempDir;

const BUNDLE: &str = "/exposure_configuration/bundle.json";
const CONFIGURATION: &str = "/exposure_configuration/configuration.json";

/// A phone that met a registered positive for 20 minutes at 1 m on 12-13 (a contact day
/// under COCOA's values), the export of that positive's keys served; nothing checked yet.
struct Story {
    fake: Fake,
    sign: SoftwareSigner,
    phone: Phone,
    _dirs: (TempDir, TempDir),
}

async fn story() -> Story {
    let fake = Fake::start().await;
    fake.add_code("12345678");
    let sign = signer(1);
    let pem = sign.public_key_pem().unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, _) = checking_phone(da.path(), &fake, &pem, 1, None);
    let (mut b, _) = checking_phone(db.path(), &fake, &pem, 2, None);
    meet(&mut a, &mut b, jst(2020, 12, 13, 10, 0), 20, 1.0).unwrap();
    a.register(Some(&RegistrationInput {
        symptoms: true,
        date: "2020-12-15".parse().unwrap(),
        code: normalise_number("12345678").unwrap(),
    }))
    .await
    .unwrap();
    fake.put_file("1.zip", export_of(&fake, 100, &[&sign]));
    fake.put_file("index.txt", b"1.zip\n".to_vec());
    Story {
        fake,
        sign,
        phone: b,
        _dirs: (da, db),
    }
}

/// COCOA's risk thresholds with the daily score sum raised to `score_sum`.
fn risk_with_score_sum(score_sum: f64) -> RiskCalculationConfiguration {
    let mut r = RiskCalculationConfiguration::cocoa();
    r.score_sum.value = score_sum;
    r
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

/// Serves `configuration` and `risk` with a bundle of `version` naming `signed_*` (the
/// documents themselves unless a test tampers with them), signed by `signers`.
fn serve(
    fake: &Fake,
    version: u64,
    signed: (&[u8], &[u8]),
    served: (&[u8], &[u8]),
    signers: &[&dyn ExportSigner],
) {
    let bundle = sign_bundle(
        version,
        1_608_000_000 + version as i64,
        signed.0,
        signed.1,
        signers,
    )
    .unwrap();
    fake.put_configuration("bundle.json", Some(json(&bundle)));
    fake.put_configuration("configuration.json", Some(served.0.to_vec()));
    fake.put_configuration(
        "risk_calculation_configuration.json",
        Some(served.1.to_vec()),
    );
}

#[tokio::test]
async fn nothing_published_means_the_built_in_cocoa_values() {
    let mut s = story().await;
    let r = s.phone.check().await.unwrap();
    assert_eq!(r.notification.dates, ["2020-12-13"]);
    let c = &r.check.configuration;
    assert_eq!(c.source, ConfigurationSource::BuiltIn);
    assert_eq!((c.version, c.published_at, &c.refused), (None, None, &None));
    assert_eq!(s.fake.count(BUNDLE), 1);
    // The bundle said 404: the documents are not asked for.
    assert_eq!(s.fake.count(CONFIGURATION), 0);
    let record = serde_json::to_value(&r.check).unwrap();
    assert_eq!(record["configuration"]["source"], "built_in");
    assert_eq!(
        s.phone.risk_configuration().unwrap(),
        device::risk::RiskConfiguration::cocoa()
    );

    // A first served configuration that is bad: refused, and COCOA's values stay.
    let c = json(&ExposureConfiguration::cocoa());
    let raised = json(&risk_with_score_sum(100_000.0));
    serve(&s.fake, 1, (&c, &raised), (&c, &raised), &[]);
    let r = s.phone.check().await.unwrap();
    assert_eq!(r.notification.dates, ["2020-12-13"]);
    let c = &r.check.configuration;
    assert_eq!((c.source, c.version), (ConfigurationSource::BuiltIn, None));
    let refused = c.refused.as_ref().unwrap();
    assert_eq!(refused.code, "SERVED_CONFIG_UNSIGNED");
    assert!(
        refused.message_ja.contains("内蔵の設定（COCOAの既定値）"),
        "{refused:?}"
    );
    assert!(refused.message_en.contains("built-in"), "{refused:?}");
}

#[tokio::test]
async fn a_served_configuration_is_applied_and_changes_the_decision() {
    let mut s = story().await;
    let cocoa_c = json(&ExposureConfiguration::cocoa());
    let raised = json(&risk_with_score_sum(100_000.0));
    serve(
        &s.fake,
        1,
        (&cocoa_c, &raised),
        (&cocoa_c, &raised),
        &[&s.sign],
    );
    let r = s.phone.check().await.unwrap();
    // 20 minutes near scores 3,000 a day: High under 1,350, Low under 100,000.
    assert_eq!(r.notification.contacts, 0, "{:?}", r.notification.dates);
    let c = &r.check.configuration;
    assert_eq!(
        (c.source, c.version),
        (ConfigurationSource::Served, Some(1))
    );
    assert_eq!(c.published_at.unwrap().timestamp(), 1_608_000_001);
    assert_eq!(c.refused, None);
    assert_eq!(
        s.phone.risk_configuration().unwrap().risk.score_sum.value,
        100_000.0
    );

    // The same bundle at the next check: 304, the documents are not fetched again.
    let r = s.phone.check().await.unwrap();
    assert_eq!(r.notification.contacts, 0);
    assert_eq!(r.check.configuration.version, Some(1));
    assert_eq!(s.fake.count(BUNDLE), 2);
    assert_eq!(s.fake.count(CONFIGURATION), 1);

    // A newer version back at COCOA's threshold: the day is a contact again.
    let cocoa_r = json(&RiskCalculationConfiguration::cocoa());
    serve(
        &s.fake,
        2,
        (&cocoa_c, &cocoa_r),
        (&cocoa_c, &cocoa_r),
        &[&s.sign],
    );
    let r = s.phone.check().await.unwrap();
    assert_eq!(r.notification.dates, ["2020-12-13"]);
    assert_eq!(r.check.configuration.version, Some(2));
    assert_eq!(s.phone.configuration_state().unwrap().version, Some(2));
    assert_eq!(s.phone.status().unwrap().configuration.version, Some(2));
}

#[tokio::test]
async fn a_bad_configuration_is_refused_with_its_code_and_the_last_good_one_kept() {
    let mut s = story().await;
    // The last good one: version 2, the score sum raised (no contact), self-reports halved
    // (so a half-applied configuration.json would show).
    let mut good_c = ExposureConfiguration::cocoa();
    good_c
        .google_daily_summaries_config
        .report_type_weights
        .self_report = 0.5;
    let good_c = json(&good_c);
    let good_r = json(&risk_with_score_sum(100_000.0));
    serve(
        &s.fake,
        2,
        (&good_c, &good_r),
        (&good_c, &good_r),
        &[&s.sign],
    );
    let r = s.phone.check().await.unwrap();
    assert_eq!(
        (r.notification.contacts, r.check.configuration.version),
        (0, Some(2))
    );
    let good = s.phone.risk_configuration().unwrap();

    // Each bad one would make 12-13 a contact again (COCOA's values) if it were applied.
    let cocoa_c = json(&ExposureConfiguration::cocoa());
    let cocoa_r = json(&RiskCalculationConfiguration::cocoa());
    let mut tampered_c = ExposureConfiguration::cocoa();
    tampered_c
        .google_daily_summaries_config
        .attenuation_bucket_weights = [2.0, 2.5, 1.3, 0.01];
    let tampered_c = json(&tampered_c);
    let mut wrong_r = RiskCalculationConfiguration::cocoa();
    wrong_r.format_version = 2;
    let wrong_r = json(&wrong_r);
    let too_big = [cocoa_c.clone(), vec![b' '; 70 << 10]].concat();
    let stranger = signer(2);
    type Case<'a> = (&'a str, Box<dyn Fn(&Fake) + 'a>);
    let sign = &s.sign;
    let cases: Vec<Case<'_>> = vec![
        (
            "SERVED_CONFIG_DIGEST",
            Box::new(|f: &Fake| {
                serve(f, 3, (&cocoa_c, &cocoa_r), (&tampered_c, &cocoa_r), &[sign])
            }),
        ),
        (
            "SERVED_CONFIG_UNSIGNED",
            Box::new(|f: &Fake| serve(f, 3, (&cocoa_c, &cocoa_r), (&cocoa_c, &cocoa_r), &[])),
        ),
        (
            "SERVED_CONFIG_SIGNATURE",
            Box::new(|f: &Fake| {
                serve(
                    f,
                    3,
                    (&cocoa_c, &cocoa_r),
                    (&cocoa_c, &cocoa_r),
                    &[&stranger],
                )
            }),
        ),
        (
            "SERVED_CONFIG_VERSION",
            Box::new(|f: &Fake| serve(f, 1, (&cocoa_c, &cocoa_r), (&cocoa_c, &cocoa_r), &[sign])),
        ),
        (
            // A valid configuration.json beside an invalid risk document: neither applies.
            "SERVED_CONFIG_INVALID",
            Box::new(|f: &Fake| serve(f, 3, (&cocoa_c, &wrong_r), (&cocoa_c, &wrong_r), &[sign])),
        ),
        (
            "SERVED_CONFIG_UNAVAILABLE",
            Box::new(|f: &Fake| serve(f, 3, (&too_big, &cocoa_r), (&too_big, &cocoa_r), &[sign])),
        ),
        (
            "SERVED_CONFIG_UNAVAILABLE",
            Box::new(|f: &Fake| {
                serve(f, 3, (&cocoa_c, &cocoa_r), (&cocoa_c, &cocoa_r), &[sign]);
                f.put_configuration("risk_calculation_configuration.json", None);
            }),
        ),
    ];
    for (code, publish) in &cases {
        publish(&s.fake);
        let r = s.phone.check().await.unwrap();
        assert_eq!(r.notification.contacts, 0, "{code}: the decision changed");
        let c = &r.check.configuration;
        assert_eq!(
            (c.source, c.version),
            (ConfigurationSource::Served, Some(2)),
            "{code}"
        );
        let refused = c
            .refused
            .as_ref()
            .unwrap_or_else(|| panic!("{code}: not refused"));
        assert_eq!(refused.code, *code);
        assert!(
            refused.message_ja.contains("前回の正しい設定"),
            "{refused:?}"
        );
        assert!(refused.message_en.contains("last good"), "{refused:?}");
        assert_eq!(s.phone.risk_configuration().unwrap(), good, "{code}");
    }
    // The phone at a glance says which configuration it decides with.
    let status = serde_json::to_value(s.phone.status().unwrap()).unwrap();
    assert_eq!(status["configuration"]["version"], 2);
    assert_eq!(status["configuration"]["source"], "served");

    // Nothing published any more (404): the last good one stays, nothing refused.
    s.fake.put_configuration("bundle.json", None);
    let r = s.phone.check().await.unwrap();
    assert_eq!(r.notification.contacts, 0);
    assert_eq!(r.check.configuration.version, Some(2));
    assert_eq!(r.check.configuration.refused, None);
}
