//! Positive registration against a fake issuer and key server that record
//! every request: what is sent (never the symptom answer or the date), the
//! keys of the window, resuming after a crash, a lost answer or no network,
//! and the messages for wrong, expired and used numbers.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::NaiveDate;
use common::{Fake, Fault, jst, phone, reopen, run_days};
use device::{Code, Error, RegistrationInput, Stage, normalise_number};
use serde_json::Value;

fn input(symptoms: bool, date: NaiveDate, number: &str) -> RegistrationInput {
    RegistrationInput {
        symptoms,
        date,
        code: normalise_number(number).unwrap(),
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Registers from a phone that has run since 12-01, on 12-16 at 12:00 JST.
async fn registered(symptoms: bool, number: &str) -> (Fake, Vec<device::DailyKey>) {
    let fake = Fake::start().await;
    fake.add_code("12345678");
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 1, 12, 0), 1);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 1, 12, 0),
        jst(2020, 12, 16, 12, 0),
    );
    let out = p
        .register(Some(&input(symptoms, d(2020, 12, 14), number)))
        .await
        .unwrap();
    assert_eq!(out.stage, Stage::Published);
    assert_eq!(out.inserted as usize, out.keys);
    assert!(out.message.ja.contains("登録が完了しました"));
    (fake, p.keys().unwrap())
}

#[tokio::test]
async fn the_symptom_answer_and_the_date_never_leave_the_phone() {
    let (fake, held) = registered(true, "１２３４－５６７８").await;
    let log = fake.log();
    let paths: Vec<&str> = log.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/api/verify", "/api/certificate", "/v1/publish"]);
    assert_eq!(
        log[0].json()["code"],
        "12345678",
        "full-width number normalised"
    );

    let date_forms = [
        "2020-12-14",
        "20201214",
        "2020/12/14",
        "12/14",
        "12-14",
        "2020年",
        "12月14日",
        // ENIntervalNumber of 00:00 JST on the date and two days before it
        // (the window start), and the names of onset fields.
        "2679786",
        "2679498",
        "symptom",
        "onset",
        "Symptom",
        "Onset",
        "traveler",
        "testDate",
    ];
    for r in &log {
        let body = String::from_utf8_lossy(&r.body);
        let headers = format!("{:?}", r.headers);
        for form in date_forms {
            assert!(
                !body.contains(form),
                "{} body holds {form:?}: {body}",
                r.path
            );
            assert!(!headers.contains(form), "{} headers hold {form:?}", r.path);
        }
    }
    assert_eq!(keys_of(&log[0].json()), ["accept", "code", "padding"]);
    assert_eq!(keys_of(&log[1].json()), ["ekeyhmac", "padding", "token"]);
    assert_eq!(
        keys_of(&log[2].json()),
        [
            "healthAuthorityID",
            "hmacKey",
            "padding",
            "temporaryExposureKeys",
            "verificationPayload"
        ]
    );
    for k in log[2].json()["temporaryExposureKeys"].as_array().unwrap() {
        assert_eq!(keys_of(k), ["key", "rollingPeriod", "rollingStartNumber"]);
    }

    // The same registration with the other symptom answer sends requests of
    // the same shape: nothing on the wire tells them apart.
    let (fake_no, _) = registered(false, "12345678").await;
    let shapes = |log: &[common::Recorded]| -> Vec<Vec<String>> {
        log.iter().map(|r| keys_of(&r.json())).collect()
    };
    assert_eq!(shapes(&log), shapes(&fake_no.log()));
    let keys_sent = |f: &Fake| f.state.lock().unwrap().published[0].clone();
    assert_eq!(
        keys_sent(&fake),
        keys_sent(&fake_no),
        "same keys for the same date"
    );

    // The keys are the phone's keys of UTC days 12-11 .. 12-16.
    let sent = keys_sent(&fake);
    let starts: Vec<u64> = sent
        .iter()
        .map(|k| k["rollingStartNumber"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = held
        .iter()
        .filter(|k| k.rolling_start.to_datetime() >= jst(2020, 12, 11, 9, 0))
        .map(|k| u64::from(k.rolling_start.get()))
        .collect();
    assert_eq!(starts, expected);
    assert_eq!(starts.len(), 6);
}

#[tokio::test]
async fn a_crash_or_a_dead_network_resumes_without_burning_the_number() {
    let fake = Fake::start().await;
    fake.add_code("11112222");
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 10, 12, 0), 2);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 10, 12, 0),
        jst(2020, 12, 16, 12, 0),
    );
    let inp = input(true, d(2020, 12, 14), "11112222");

    // Server down at verify: nothing used, state kept.
    fake.fail_next("/api/verify", Fault::Down);
    let e = p.register(Some(&inp)).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        e.text().ja.contains("処理番号が無駄になることはありません"),
        "{e}"
    );
    assert_eq!(
        p.status().unwrap().registration.unwrap().stage,
        Stage::Entered
    );

    // Down at certificate; then the app crashes (re-open from disk).
    fake.fail_next("/api/certificate", Fault::Down);
    assert!(p.register(None).await.unwrap_err().is_retryable());
    drop(p);
    let mut p = reopen(dir.path(), clock.clone(), 3);
    assert_eq!(
        p.status().unwrap().registration.unwrap().stage,
        Stage::Verified
    );

    // The publish answer is lost; the retry publishes again (idempotent).
    fake.fail_next("/v1/publish", Fault::LoseAnswer);
    assert!(p.register(None).await.unwrap_err().is_retryable());
    drop(p);
    let mut p = reopen(dir.path(), clock.clone(), 4);
    assert_eq!(
        p.status().unwrap().registration.unwrap().stage,
        Stage::Certified
    );
    let out = p.register(None).await.unwrap();
    assert!(out.resumed);
    assert_eq!(out.stage, Stage::Published);

    // The number went to the issuer until it was accepted once; never after.
    let paths: Vec<String> = fake.log().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/api/verify",
            "/api/verify",
            "/api/certificate",
            "/api/certificate",
            "/v1/publish",
            "/v1/publish"
        ]
    );
    // The lost publish is repeated with the same keys (the key server
    // stores a repeat once).
    let published = fake.state.lock().unwrap().published.clone();
    assert_eq!(published.len(), 2);
    assert_eq!(published[0], published[1]);
    // Every retry of a step carried the same idempotency key.
    let keys: Vec<String> = fake
        .log()
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k == "idempotency-key")
                .unwrap()
                .1
                .clone()
        })
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[2], keys[3]);
    assert_ne!(keys[0], keys[2]);

    // Registered: running register again without inputs has nothing to resume.
    assert!(matches!(
        p.register(None).await,
        Err(Error::RegistrationInputMissing)
    ));
}

#[tokio::test]
async fn no_network_at_all_keeps_the_registration_for_later() {
    let fake = Fake::start().await;
    fake.add_code("33334444");
    let dir = tempfile::tempdir().unwrap();
    let mut offline = fake.settings();
    offline.server = Some("http://127.0.0.1:9".into());
    let (mut p, clock) = phone(dir.path(), offline, jst(2020, 12, 10, 12, 0), 5);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 10, 12, 0),
        jst(2020, 12, 15, 12, 0),
    );
    let e = p
        .register(Some(&input(false, d(2020, 12, 14), "33334444")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    // Back online the next day.
    p.update_settings(fake.settings()).unwrap();
    clock.set(jst(2020, 12, 16, 8, 0));
    let out = p.register(None).await.unwrap();
    assert_eq!(out.stage, Stage::Published);
    assert!(out.resumed);
}

#[tokio::test]
async fn a_lost_verify_answer_is_explained_when_the_number_turns_out_used() {
    let fake = Fake::start().await;
    fake.add_code("55556666");
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 10, 12, 0), 6);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 10, 12, 0),
        jst(2020, 12, 15, 12, 0),
    );
    fake.fail_next("/api/verify", Fault::LoseAnswer);
    let inp = input(true, d(2020, 12, 13), "55556666");
    assert!(p.register(Some(&inp)).await.unwrap_err().is_retryable());
    let e = p.register(None).await.unwrap_err();
    match &e {
        Error::CodeInvalid {
            maybe_used_by_lost_attempt,
        } => assert!(*maybe_used_by_lost_attempt),
        other => panic!("{other:?}"),
    }
    let t = e.text();
    assert!(t.ja.contains("前回の送信"), "{}", t.ja);
    assert!(
        t.ja.contains("保健所に新しい処理番号の発行を依頼してください"),
        "{}",
        t.ja
    );
    assert_eq!(
        p.status().unwrap().registration.unwrap().stage,
        Stage::Failed
    );
}

#[tokio::test]
async fn a_429_is_an_answer_so_a_used_number_is_not_blamed_on_a_lost_attempt() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 10, 12, 0), 7);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 10, 12, 0),
        jst(2020, 12, 15, 12, 0),
    );
    // The issuer answers 429 (it did nothing), then: the number is not a live one.
    fake.fail_next("/api/verify", Fault::Busy);
    let inp = input(true, d(2020, 12, 13), "12121212");
    let busy = p.register(Some(&inp)).await.unwrap_err();
    assert!(
        matches!(
            busy,
            Error::RateLimited {
                retry_after: Some(120)
            }
        ),
        "{busy:?}"
    );
    assert!(busy.text().ja.contains("2分ほど"), "{}", busy.text().ja);
    let e = p.register(None).await.unwrap_err();
    match &e {
        Error::CodeInvalid {
            maybe_used_by_lost_attempt,
        } => assert!(
            !*maybe_used_by_lost_attempt,
            "the 429 arrived: nothing was lost"
        ),
        other => panic!("{other:?}"),
    }
    let t = e.text();
    assert!(!t.ja.contains("前回の送信"), "{}", t.ja);
    assert!(!t.ja.contains("可能性"), "{}", t.ja);
    assert!(!t.en.contains("lost"), "{}", t.en);
    assert_eq!(fake.count("/api/verify"), 2);

    // A lost answer, then a 429, then 「使用済み」: the lost one may have used it.
    fake.add_code("34343434");
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 10, 12, 0), 8);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 10, 12, 0),
        jst(2020, 12, 15, 12, 0),
    );
    fake.fail_next("/api/verify", Fault::LoseAnswer);
    fake.fail_next("/api/verify", Fault::Busy);
    let inp = input(true, d(2020, 12, 13), "34343434");
    assert!(p.register(Some(&inp)).await.unwrap_err().is_retryable());
    assert!(matches!(
        p.register(None).await.unwrap_err(),
        Error::RateLimited { .. }
    ));
    match p.register(None).await.unwrap_err() {
        Error::CodeInvalid {
            maybe_used_by_lost_attempt,
        } => assert!(maybe_used_by_lost_attempt),
        other => panic!("{other:?}"),
    }
}

/// Issue 12, finding 3: a 429 that refuses typed numbers for a while is not "the server is
/// busy": the phone says what happened, when to type again, and that the SMS's link works
/// now; the number is not used and the registration resumes.
#[tokio::test]
async fn typed_numbers_refused_for_a_while_point_to_the_link_and_keep_the_registration() {
    let fake = Fake::start().await;
    fake.add_code("56565656");
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 10, 12, 0), 9);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 10, 12, 0),
        jst(2020, 12, 15, 12, 0),
    );
    fake.fail_next("/api/verify", Fault::AddressExhausted);
    fake.fail_next("/api/verify", Fault::TypedPaused);
    let inp = input(true, d(2020, 12, 13), "56565656");
    let e = p.register(Some(&inp)).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::NumberEntryPaused {
                retry_after: Some(3600),
                everywhere: false
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(e.code(), "number_entry_paused");
    let t = e.text();
    for words in [
        "同じ接続元",
        "約1時間後",
        "リンク",
        "今すぐ登録",
        "使われていません",
    ] {
        assert!(t.ja.contains(words), "{words}: {}", t.ja);
    }
    assert!(!t.ja.contains("混み合"), "{}", t.ja);
    assert!(t.en.contains("link") && !t.en.contains("busy"), "{}", t.en);
    let e = p.register(None).await.unwrap_err();
    let t = e.text();
    assert!(
        matches!(
            e,
            Error::NumberEntryPaused {
                everywhere: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        t.ja.contains("全国的") && t.ja.contains("約2時間後"),
        "{}",
        t.ja
    );
    // Nothing was used: the next attempt registers.
    p.register(None).await.unwrap();
    assert_eq!(
        p.status().unwrap().registration.unwrap().stage,
        Stage::Published
    );
}

#[tokio::test]
async fn wrong_expired_and_used_numbers_ask_for_a_new_one() {
    let fake = Fake::start().await;
    fake.add_code("77778888");
    fake.state.lock().unwrap().expired.insert("99990000".into());
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 10, 12, 0), 7);
    run_days(
        &mut p,
        &clock,
        jst(2020, 12, 10, 12, 0),
        jst(2020, 12, 15, 12, 0),
    );
    let date = d(2020, 12, 13);

    let e = p
        .register(Some(&input(true, date, "12121212")))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        Error::CodeInvalid {
            maybe_used_by_lost_attempt: false
        }
    ));
    assert!(e.text().ja.contains("正しくないか、すでに使用されています"));
    assert!(
        e.text()
            .ja
            .contains("保健所に新しい処理番号の発行を依頼してください")
    );

    let e = p
        .register(Some(&input(true, date, "99990000")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CodeExpired));
    assert!(e.text().ja.contains("有効期限が切れています"));
    assert!(e.text().ja.contains("保健所"));

    // A good number after failures works, and using it again is refused.
    assert_eq!(
        p.register(Some(&input(true, date, "77778888")))
            .await
            .unwrap()
            .stage,
        Stage::Published
    );
    let e = p
        .register(Some(&input(true, date, "77778888")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CodeInvalid { .. }));

    // A wrong API key is a misconfiguration, not the user's fault: state kept.
    let mut bad = fake.settings();
    bad.api_key = Some("wrong".into());
    p.update_settings(bad).unwrap();
    let e = p
        .register(Some(&input(true, date, "10101010")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized));
}

#[tokio::test]
async fn installed_after_the_date_sends_nothing_and_says_so() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _clock) = phone(dir.path(), fake.settings(), jst(2020, 12, 16, 12, 0), 8);
    let e = p
        .register(Some(&input(true, d(2020, 12, 10), "12345678")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NoKeysInWindow { .. }), "{e:?}");
    let ja = e.text().ja;
    assert!(ja.contains("通知を行うことはできません"), "{ja}");
    assert!(
        ja.contains("問4") && ja.contains("処理番号は使われていません"),
        "{ja}"
    );
    assert!(fake.log().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn bad_dates_are_refused_before_anything_is_sent() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = phone(dir.path(), fake.settings(), jst(2020, 11, 20, 12, 0), 9);
    run_days(
        &mut p,
        &clock,
        jst(2020, 11, 20, 12, 0),
        jst(2020, 12, 16, 12, 0),
    );
    let e = p
        .register(Some(&input(true, d(2020, 12, 17), "12345678")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DateInFuture { .. }));
    assert!(e.text().ja.contains("未来の日付"));
    let e = p
        .register(Some(&input(true, d(2020, 12, 1), "12345678")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DateTooOld { .. }));
    assert!(e.text().ja.contains("14日より前"));
    assert!(fake.log().is_empty());
    // A link code goes to the issuer as it is.
    fake.add_code("0123456789ABCDEFGHJK");
    let code = device::parse_app_link("https://cocoa.example.jp/cocoa/a/?pn=0123456789abcdefghjk")
        .unwrap();
    assert!(matches!(code, Code::Link(_)));
    let out = p
        .register(Some(&RegistrationInput {
            symptoms: false,
            date: d(2020, 12, 15),
            code,
        }))
        .await
        .unwrap();
    assert_eq!(out.stage, Stage::Published);
    assert_eq!(fake.log()[0].json()["code"], "0123456789ABCDEFGHJK");
}
