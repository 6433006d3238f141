//! The exposure check against a fake key server's export folder: phones
//! that met a registered phone are notified with the date and the
//! consultation centre, the others are not; files are downloaded once;
//! unsigned files and files signed by another key are refused.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::NaiveDate;
use common::{Fake, checking_phone, export_of, jst, phone, signer};
use device::{RegistrationInput, meet, normalise_number};
use en_protocol::export::write_zip;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

#[tokio::test]
async fn contacts_in_the_window_are_notified_and_the_others_are_not() {
    let fake = Fake::start().await;
    fake.add_code("12345678");
    let sign = signer(1);
    let pem = sign.public_key_pem().unwrap();
    let dirs: Vec<_> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let list_json = Some(format!("{}/exports/440/list.json", fake.url));
    let (mut a, _) = checking_phone(dirs[0].path(), &fake, &pem, 1, None);
    let (mut b, _) = checking_phone(dirs[1].path(), &fake, &pem, 2, None);
    let (mut c, _) = checking_phone(dirs[2].path(), &fake, &pem, 3, None);
    let (mut d, _) = checking_phone(dirs[3].path(), &fake, &pem, 4, None);
    let (mut e, _) = checking_phone(dirs[4].path(), &fake, &pem, 5, None);
    let (mut f, _) = checking_phone(dirs[5].path(), &fake, &pem, 6, list_json);

    // A's symptoms begin on 12-15: the window opens 12-13 00:00 JST.
    meet(&mut a, &mut b, jst(2020, 12, 13, 10, 0), 20, 1.0).unwrap(); // in the window
    meet(&mut a, &mut c, jst(2020, 12, 14, 10, 0), 10, 1.0).unwrap(); // too short
    meet(&mut a, &mut d, jst(2020, 12, 14, 14, 0), 20, 4.0).unwrap(); // too far
    meet(&mut a, &mut e, jst(2020, 12, 9, 10, 0), 30, 1.0).unwrap(); // before the window
    meet(&mut a, &mut f, jst(2020, 12, 14, 19, 0), 15, 1.0).unwrap(); // in the window
    meet(&mut b, &mut e, jst(2020, 12, 14, 12, 0), 60, 0.5).unwrap(); // B is not positive

    a.register(Some(&RegistrationInput {
        symptoms: true,
        date: date("2020-12-15"),
        code: normalise_number("12345678").unwrap(),
    }))
    .await
    .unwrap();
    fake.put_file("c19r/440/1.zip", export_of(&fake, 3000, &[&sign]));
    fake.put_file("index.txt", b"c19r/440/1.zip\n".to_vec());
    fake.put_file(
        "440/list.json",
        br#"[{"region":"440","url":"/exports/c19r/440/1.zip","created":1608003600000}]"#.to_vec(),
    );

    let rb = b.check().await.unwrap();
    assert_eq!(rb.notification.contacts, 1);
    assert_eq!(rb.notification.dates, ["2020-12-13"]);
    assert_eq!(rb.check.files_new, 1);
    assert!(rb.check.keys > 3000);
    assert_eq!(rb.notification.consultation_centre.prefecture, "13");
    assert!(rb.notification.message.ja.contains("接触が1件"));
    assert!(rb.notification.message.ja.contains("2020年12月13日"));
    assert!(rb.notification.last_checked.is_some());

    for (name, p) in [
        ("10 min", &mut c),
        ("4 m", &mut d),
        ("before window", &mut e),
    ] {
        let r = p.check().await.unwrap();
        assert_eq!(r.notification.contacts, 0, "{name}");
        assert_eq!(r.check.files_new, 1, "{name}");
        assert!(
            r.notification.message.ja.contains("確認されませんでした"),
            "{name}"
        );
    }
    let before_window = e.check().await.unwrap();
    assert_eq!(before_window.check.files_new, 0);
    let rf = f.check().await.unwrap();
    assert_eq!(
        rf.notification.dates,
        ["2020-12-14"],
        "COCOA list.json index"
    );

    // A second check downloads nothing new and still reports the contact (it asks for the
    // served configuration after the index: nothing published here).
    fake.clear_log();
    let again = b.check().await.unwrap();
    assert_eq!(again.check.files_new, 0);
    assert_eq!(again.notification.contacts, 1);
    let paths: Vec<String> = fake.log().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/exports/index.txt", "/exposure_configuration/bundle.json"]
    );
    let status = b.status().unwrap();
    assert_eq!((status.contacts, status.files_processed), (1, 1));
}

#[tokio::test]
async fn unsigned_and_foreign_files_are_refused() {
    let fake = Fake::start().await;
    fake.add_code("12345678");
    let sign = signer(1);
    let other = signer(2);
    let pem = sign.public_key_pem().unwrap();
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let (mut a, _) = checking_phone(da.path(), &fake, &pem, 1, None);
    let (mut b, _) = checking_phone(db.path(), &fake, &pem, 2, None);
    meet(&mut a, &mut b, jst(2020, 12, 14, 10, 0), 30, 1.0).unwrap();
    a.register(Some(&RegistrationInput {
        symptoms: false,
        date: date("2020-12-15"),
        code: normalise_number("12345678").unwrap(),
    }))
    .await
    .unwrap();
    let signed = export_of(&fake, 10, &[&sign]);
    let archive = en_protocol::export::read_zip(&signed).unwrap();
    fake.put_file("unsigned.zip", write_zip(&archive.export_bin, &[]).unwrap());
    fake.put_file("foreign.zip", export_of(&fake, 10, &[&other]));
    fake.put_file("garbage.zip", b"not a zip".to_vec());
    fake.put_file(
        "index.txt",
        b"unsigned.zip\nforeign.zip\ngarbage.zip\n".to_vec(),
    );

    let r = b.check().await.unwrap();
    assert_eq!(
        r.notification.contacts, 0,
        "nothing from an unverified file counts"
    );
    let reasons: Vec<&str> = r.check.failed.iter().map(|x| x.reason.as_str()).collect();
    assert_eq!(reasons[0], "unsigned");
    assert!(reasons[1].contains("does not verify"), "{reasons:?}");
    assert!(reasons[2].contains("not an export file"), "{reasons:?}");
    assert_eq!(r.check.files_new, 0);

    // A rotation: the new key signs alongside; the phone trusts both.
    fake.put_file("rotated.zip", export_of(&fake, 10, &[&other, &sign]));
    fake.put_file("index.txt", b"rotated.zip\n".to_vec());
    let r = b.check().await.unwrap();
    assert_eq!(r.notification.contacts, 1);
    // The refused files are no longer listed: nothing is left to retry.
    assert_eq!(r.check.failed, []);
}

#[tokio::test]
async fn a_check_needs_the_export_key() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = phone(dir.path(), fake.settings(), jst(2020, 12, 1, 12, 0), 1);
    let e = p.check().await.unwrap_err();
    assert_eq!(e.code(), "not_configured");
    assert!(e.text().ja.contains("設定されていません"));
}

#[tokio::test]
async fn before_anything_is_published_a_check_finds_nothing_and_says_when_it_ran() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pem = signer(1).public_key_pem().unwrap();
    let (mut p, clock) = checking_phone(dir.path(), &fake, &pem, 1, None);
    assert_eq!(p.notification().unwrap().last_checked, None);

    // A missing index is what a wrong URL looks like: the check fails, and
    // the phone keeps that it failed.
    let e = p.check().await.unwrap_err();
    assert_eq!(e.code(), "index_not_found");
    assert!(e.text().ja.contains("接触確認はできていません"), "{e}");
    let status = p.status().unwrap();
    let failure = status.last_check_failure.unwrap();
    assert_eq!(
        (failure.code.as_str(), failure.at),
        ("index_not_found", jst(2020, 12, 16, 12, 0))
    );
    assert_eq!(status.last_checked, None);

    // The key server serves an empty index before its first export.
    fake.put_file("index.txt", Vec::new());
    clock.set(jst(2020, 12, 16, 12, 5));
    let r = p.check().await.unwrap();
    assert_eq!((r.check.files_listed, r.notification.contacts), (0, 0));
    assert_eq!(r.notification.last_checked, Some(jst(2020, 12, 16, 12, 5)));
    assert!(
        r.notification
            .message
            .ja
            .contains("最終確認: 2020年12月16日 12:05")
    );
    assert_eq!(p.status().unwrap().last_check_failure, None);
    // Down is not the same as empty: the user is told to try again.
    fake.fail_next("/exports/index.txt", common::Fault::Down);
    let e = p.check().await.unwrap_err();
    assert!(e.is_retryable());
    assert!(!e.check_text().ja.contains("登録"), "{}", e.check_text().ja);
    assert_eq!(
        p.status().unwrap().last_check_failure.unwrap().code,
        "unavailable"
    );
}

/// The index lists 1.zip, 2.zip and 3.zip; 2.zip is missing (404), then
/// unreachable (503), then not an export file, and finally there.
#[tokio::test]
async fn a_file_that_fails_is_retried_with_backoff_and_the_others_are_processed() {
    let fake = Fake::start().await;
    fake.add_code("12345678");
    let sign = signer(1);
    let pem = sign.public_key_pem().unwrap();
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let (mut a, _) = checking_phone(da.path(), &fake, &pem, 1, None);
    let (mut b, clock) = checking_phone(db.path(), &fake, &pem, 2, None);
    meet(&mut a, &mut b, jst(2020, 12, 14, 10, 0), 30, 1.0).unwrap();
    a.register(Some(&RegistrationInput {
        symptoms: false,
        date: date("2020-12-15"),
        code: normalise_number("12345678").unwrap(),
    }))
    .await
    .unwrap();
    let noise_only = {
        let only_noise = Fake::start().await;
        export_of(&only_noise, 50, &[&sign])
    };
    fake.put_file("1.zip", noise_only.clone());
    // The contact is in 3.zip, after the missing file.
    fake.put_file("3.zip", export_of(&fake, 50, &[&sign]));
    fake.put_file("index.txt", b"1.zip\n2.zip\n3.zip\n".to_vec());
    let two = format!("{}/exports/2.zip", fake.url);

    let t0 = jst(2020, 12, 16, 12, 0);
    let r = b.check().await.unwrap();
    assert_eq!((r.check.files_listed, r.check.files_new), (3, 2));
    assert_eq!(r.notification.contacts, 1, "3.zip was processed");
    assert_eq!(r.notification.dates, ["2020-12-14"]);
    assert_eq!(r.check.failed.len(), 1);
    let f = &r.check.failed[0];
    assert_eq!(
        (f.url.as_str(), f.reason.as_str(), f.failures, f.tried),
        (two.as_str(), "not found (HTTP 404)", 1, true)
    );
    assert_eq!(f.next_attempt, Some(t0 + chrono::Duration::hours(1)));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["check"]["failed"][0]["url"], two.as_str());

    // Ten minutes later: not tried again yet, still reported as failed.
    clock.set(t0 + chrono::Duration::minutes(10));
    let r = b.check().await.unwrap();
    assert_eq!(fake.count("/exports/2.zip"), 1);
    assert_eq!(r.check.files_new, 0);
    assert_eq!(
        (r.check.failed[0].tried, r.check.failed[0].failures),
        (false, 1)
    );
    assert_eq!(r.notification.contacts, 1);

    // After an hour it is tried again: the server is down for it.
    clock.set(t0 + chrono::Duration::minutes(61));
    fake.fail_next("/exports/2.zip", common::Fault::Down);
    let r = b.check().await.unwrap();
    assert_eq!(fake.count("/exports/2.zip"), 2);
    let f = &r.check.failed[0];
    assert!(f.reason.starts_with("download failed"), "{}", f.reason);
    assert_eq!((f.failures, f.tried), (2, true));
    assert_eq!(
        f.next_attempt,
        Some(t0 + chrono::Duration::minutes(61) + chrono::Duration::hours(2))
    );

    // The backoff is kept in the phone: after a restart, still waiting.
    drop(b);
    clock.set(t0 + chrono::Duration::hours(3));
    let mut b = common::reopen(db.path(), clock.clone(), 2);
    let r = b.check().await.unwrap();
    assert_eq!(fake.count("/exports/2.zip"), 2);
    assert_eq!(r.check.failed[0].failures, 2);
    assert_eq!(b.status().unwrap().failed_files.len(), 1);

    // Then a file that is not an export file: refused, tried later again.
    fake.put_file("2.zip", b"not a zip".to_vec());
    clock.set(t0 + chrono::Duration::hours(4));
    let r = b.check().await.unwrap();
    assert_eq!(fake.count("/exports/2.zip"), 3);
    let f = &r.check.failed[0];
    assert!(f.reason.contains("not an export file"), "{}", f.reason);
    assert_eq!(f.failures, 3);

    // Fixed: processed at the next attempt, and no longer failed.
    fake.put_file("2.zip", noise_only);
    clock.set(t0 + chrono::Duration::hours(9));
    let r = b.check().await.unwrap();
    assert_eq!(fake.count("/exports/2.zip"), 4);
    assert_eq!((r.check.files_new, r.check.failed.len()), (1, 0));
    assert!(b.status().unwrap().failed_files.is_empty());
    assert_eq!(b.status().unwrap().files_processed, 3);
    assert_eq!(r.notification.contacts, 1);
}

/// A failed file that the index no longer lists is forgotten.
#[tokio::test]
async fn a_failed_file_dropped_from_the_index_is_forgotten() {
    let fake = Fake::start().await;
    let sign = signer(1);
    let pem = sign.public_key_pem().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut p, clock) = checking_phone(dir.path(), &fake, &pem, 1, None);
    fake.put_file("index.txt", b"gone.zip\n".to_vec());
    assert_eq!(p.check().await.unwrap().check.failed.len(), 1);
    fake.put_file("index.txt", Vec::new());
    clock.set(jst(2020, 12, 16, 12, 10));
    assert_eq!(p.check().await.unwrap().check.failed, []);
    assert!(p.status().unwrap().failed_files.is_empty());
}
