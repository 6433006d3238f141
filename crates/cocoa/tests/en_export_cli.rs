//! `cocoa en keygen | export | inspect` through the built binary: the JSON
//! contract, exit codes and file handling other tools rely on.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod support;

fn cocoa(args: &[&str]) -> Output {
    support::cocoa().args(args).output().expect("run cocoa")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// A failure with exit code 2 and one line on stderr.
fn assert_bad_input(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    stderr
}

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../en-protocol/tests/vectors/exports")
}

fn keygen(dir: &Path) -> (PathBuf, PathBuf) {
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let out = cocoa(&[
        "en",
        "keygen",
        "--out",
        p(&private),
        "--public-out",
        p(&public),
    ]);
    json_of(&out);
    (private, public)
}

const KEYS: &str = r#"[
  {"key_data": "ffeeddccbbaa99887766554433221100", "rolling_start_interval_number": 2650000,
   "transmission_risk_level": 4, "report_type": 1},
  {"key_data": "00112233445566778899AABBCCDDEEFF", "rolling_start_interval_number": 2650144,
   "rolling_period": 100},
  {"key_data": "80000000000000000000000000000001", "rolling_start_interval_number": 2649856,
   "rolling_period": 144, "transmission_risk_level": 0, "report_type": 2}
]"#;

fn export_args<'a>(keys: &'a Path, private: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "en",
        "export",
        "--keys",
        p(keys),
        "--region",
        "440",
        "--signing-key",
        p(private),
        "--key-id",
        "440",
        "--key-version",
        "v1",
        "--start",
        "1614000000",
        "--end",
        "1614086400",
        "--out",
        p(out),
    ]
}

#[test]
fn keygen_export_inspect_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path());
    assert!(
        std::fs::read_to_string(&private)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        std::fs::read_to_string(&public)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );

    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, KEYS).unwrap();
    let zip = dir.path().join("out.zip");
    json_of(&cocoa(&export_args(&keys, &private, &zip)));

    let v = json_of(&cocoa(&[
        "en",
        "inspect",
        p(&zip),
        "--public-key",
        p(&public),
    ]));
    assert_eq!(v["header_ok"], true);
    assert_eq!(v["signature_verified"], true);
    assert_eq!(v["start_timestamp"], 1_614_000_000);
    assert_eq!(v["end_timestamp"], 1_614_086_400);
    assert_eq!(v["region"], "440");
    assert_eq!(
        (v["batch_num"].clone(), v["batch_size"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(
        v["signature_infos"],
        serde_json::json!([{
            "verification_key_version": "v1",
            "verification_key_id": "440",
            "signature_algorithm": "1.2.840.10045.4.3.2"
        }])
    );
    // Sorted by key bytes; absent fields null; rolling_period always a number.
    assert_eq!(
        v["keys"],
        serde_json::json!([
            {"key_data": "00112233445566778899aabbccddeeff", "transmission_risk_level": null,
             "rolling_start_interval_number": 2650144, "rolling_period": 100,
             "report_type": null, "days_since_onset_of_symptoms": null},
            {"key_data": "80000000000000000000000000000001", "transmission_risk_level": 0,
             "rolling_start_interval_number": 2649856, "rolling_period": 144,
             "report_type": 2, "days_since_onset_of_symptoms": null},
            {"key_data": "ffeeddccbbaa99887766554433221100", "transmission_risk_level": 4,
             "rolling_start_interval_number": 2650000, "rolling_period": 144,
             "report_type": 1, "days_since_onset_of_symptoms": null}
        ])
    );

    // Without a key, or with another key.
    let v = json_of(&cocoa(&["en", "inspect", p(&zip)]));
    assert_eq!(v["signature_verified"], Value::Null);
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = keygen(other.path());
    let v = json_of(&cocoa(&[
        "en",
        "inspect",
        p(&zip),
        "--public-key",
        p(&other_public),
    ]));
    assert_eq!(v["signature_verified"], false);

    // Exporting again over the same file replaces it atomically; nothing else
    // is left in the directory.
    json_of(&cocoa(&export_args(&keys, &private, &zip)));
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["keys.json", "out.zip", "private.pem", "public.pem"]);
}

#[test]
fn keygen_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path());
    let before = std::fs::read(&private).unwrap();
    let fresh = dir.path().join("fresh.pem");
    let err = assert_bad_input(&cocoa(&[
        "en",
        "keygen",
        "--out",
        p(&private),
        "--public-out",
        p(&fresh),
    ]));
    assert!(err.contains("already exists"), "{err}");
    assert_bad_input(&cocoa(&[
        "en",
        "keygen",
        "--out",
        p(&fresh),
        "--public-out",
        p(&public),
    ]));
    assert_eq!(std::fs::read(&private).unwrap(), before);
    assert!(!fresh.exists(), "nothing half-written");
}

#[test]
fn export_refuses_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = keygen(dir.path());
    let zip = dir.path().join("out.zip");
    let keys = dir.path().join("keys.json");
    let cases = [
        (
            r#"[{"key_data": "00", "rolling_start_interval_number": 1}]"#,
            "key_data",
        ),
        (
            r#"[{"key_data": "zz112233445566778899aabbccddeeff", "rolling_start_interval_number": 1}]"#,
            "key_data",
        ),
        (
            r#"[{"key_data": "00112233445566778899aabbccddeeff", "rolling_start_interval_number": 1, "rolling_period": 0}]"#,
            "rolling_period",
        ),
        (
            r#"[{"key_data": "00112233445566778899aabbccddeeff", "rolling_start_interval_number": 1, "rolling_period": 145}]"#,
            "rolling_period",
        ),
        (
            r#"[{"key_data": "00112233445566778899aabbccddeeff", "rolling_start_interval_number": 1, "colour": 3}]"#,
            "unknown field",
        ),
        (
            r#"[{"key_data": "00112233445566778899aabbccddeeff", "rolling_start_interval_number": 3000000000}]"#,
            "rolling_start_interval_number",
        ),
        (
            r#"[{"key_data": "00112233445566778899aabbccddeeff"}]"#,
            "rolling_start_interval_number",
        ),
        (r#"{"not": "a list"}"#, "keys.json"),
    ];
    for (json, says) in cases {
        std::fs::write(&keys, json).unwrap();
        let err = assert_bad_input(&cocoa(&export_args(&keys, &private, &zip)));
        assert!(err.contains(says), "{json}: {err}");
        assert!(!zip.exists(), "{json}");
    }

    // start after end.
    std::fs::write(&keys, KEYS).unwrap();
    let mut args = export_args(&keys, &private, &zip);
    let start = args.iter().position(|a| *a == "--start").unwrap();
    args[start + 1] = "1614086401";
    let err = assert_bad_input(&cocoa(&args));
    assert!(err.contains("--start"), "{err}");

    // A public key where the private key should be.
    assert_bad_input(&cocoa(&export_args(&keys, &public, &zip)));
    assert!(!zip.exists());
}

#[test]
fn inspect_reads_every_vector_file() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors().join("expected.json")).unwrap())
            .unwrap();
    let files = expected["files"].as_object().unwrap();
    assert_eq!(files.len(), 7);
    for (name, want) in files {
        let file = vectors().join(name);
        let mut args = vec!["en", "inspect", p(&file)];
        let key_path;
        if let Some(key) = want["verification_public_key_file"].as_str() {
            key_path = vectors().join(key);
            args.extend(["--public-key", p(&key_path)]);
        }
        let v = json_of(&cocoa(&args));
        let signed = want["verification_public_key_file"].is_string();
        assert_eq!(
            v["signature_verified"],
            if signed {
                Value::Bool(true)
            } else {
                Value::Null
            },
            "{name}"
        );
        assert_eq!(v["header_ok"], true, "{name}");
        let export = &want["export"];
        for field in [
            "start_timestamp",
            "end_timestamp",
            "region",
            "batch_num",
            "batch_size",
        ] {
            assert_eq!(v[field], export[field], "{name} {field}");
        }
        let got = v["keys"].as_array().unwrap();
        let keys = export["keys"].as_array().unwrap();
        assert_eq!(got.len(), keys.len(), "{name}");
        for (g, w) in got.iter().zip(keys) {
            for field in [
                "key_data",
                "transmission_risk_level",
                "rolling_start_interval_number",
                "report_type",
                "days_since_onset_of_symptoms",
            ] {
                assert_eq!(g[field], w[field], "{name} {field}");
            }
            let period = w.get("rolling_period").cloned().unwrap_or(144.into());
            assert_eq!(g["rolling_period"], period, "{name}");
        }
    }
}

#[test]
fn garbage_and_truncated_files_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.zip");
    std::fs::write(&garbage, b"\x00\x01 this is not an export file \xff\xfe").unwrap();
    let err = assert_bad_input(&cocoa(&["en", "inspect", p(&garbage)]));
    assert!(err.starts_with("error: "), "{err}");

    let zip = std::fs::read(vectors().join("ens-sample-310-v1.zip")).unwrap();
    let cut = dir.path().join("cut.zip");
    std::fs::write(&cut, &zip[..zip.len() / 2]).unwrap();
    assert_bad_input(&cocoa(&["en", "inspect", p(&cut)]));

    let bin = std::fs::read(vectors().join("immuni-it-222-export.bin")).unwrap();
    let cut_bin = dir.path().join("cut.bin");
    std::fs::write(&cut_bin, &bin[..bin.len() - 3]).unwrap();
    assert_bad_input(&cocoa(&["en", "inspect", p(&cut_bin)]));

    let bad_key = dir.path().join("bad.pem");
    std::fs::write(
        &bad_key,
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let file = vectors().join("ens-sample-310-v1.zip");
    assert_bad_input(&cocoa(&[
        "en",
        "inspect",
        p(&file),
        "--public-key",
        p(&bad_key),
    ]));
}

#[test]
fn bench_export_prints_its_numbers() {
    let v = json_of(&cocoa(&[
        "bench", "export", "--keys", "2000", "--seed", "3",
    ]));
    assert_eq!(v["keys"], 2000);
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert!(v["keys_per_sec"].as_f64().unwrap() > 0.0);
    let bytes_per_key = v["bytes_per_key"].as_f64().unwrap();
    assert!((29.0..=30.0).contains(&bytes_per_key), "{bytes_per_key}");
}

/// Issue 15: "a check of one peak day … runs in the background with a
/// progress indicator and never blocks the screen". `--ui` presses
/// 「今すぐ確認」 on the real phone-UI router and loads the home screen while
/// the check runs: the screen answers during the check, shows the progress
/// indicator, and the check still finds every planted contact.
#[test]
fn bench_check_through_the_screens_shows_progress_and_finds_the_contacts() {
    let v = json_of(&cocoa(&[
        "bench",
        "check",
        "--keys",
        "40000",
        "--max-keys-per-file",
        "10000",
        "--sightings",
        "3000",
        "--contacts",
        "2",
        "--ui",
        "--ui-every-ms",
        "5",
    ]));
    assert_eq!(v["keys"], 40000);
    assert_eq!(v["contacts"], 2, "{v}");
    let ui = &v["ui"];
    let pages = ui["pages"].as_u64().unwrap();
    let with_progress = ui["pages_with_progress"].as_u64().unwrap();
    assert!(
        with_progress >= 1,
        "the screen answered during the check: {v}"
    );
    // The last load saw the check over; every one before it, the indicator.
    assert_eq!(pages, with_progress + 1, "{v}");
    let (p50, p99, max) = (
        ui["p50_ms"].as_f64().unwrap(),
        ui["p99_ms"].as_f64().unwrap(),
        ui["max_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{v}");
}

#[test]
fn bench_clients_refuse_a_missing_or_empty_ca_cert() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for ca in [&missing, &empty] {
        let out = cocoa(&[
            "bench",
            "download",
            "--url",
            "https://127.0.0.1:9/exports",
            "--ca-cert",
            p(ca),
        ]);
        let stderr = assert_bad_input(&out);
        assert!(stderr.contains("--ca-cert"), "{stderr}");
    }
}
