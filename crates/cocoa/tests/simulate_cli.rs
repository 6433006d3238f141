//! `cocoa simulate` as CI runs it: a small city (2,000 people, 7 days), the
//! JSON summary and the HTML report, and the same summary for the same seed.

use std::path::Path;
use std::process::Command;

fn simulate(dir: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let json = dir.join(format!("{name}.json"));
    let report = dir.join(format!("{name}.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_cocoa"))
        .args([
            "simulate",
            "--devices",
            "2000",
            "--days",
            "7",
            "--seed",
            "7",
        ])
        .args(["--adoption", "0.5", "--registration-rate", "0.8", "--quiet"])
        .arg("--json")
        .arg(&json)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .output()
        .expect("run cocoa");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("recall"), "{table}");
    assert!(table.contains("precision"), "{table}");
    let html = std::fs::read_to_string(&report).expect("the report");
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"));
    serde_json::from_slice(&std::fs::read(&json).expect("the summary")).expect("JSON")
}

#[test]
fn a_ci_sized_city_gives_a_complete_and_reproducible_summary() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = simulate(dir.path(), "a", &["--sweep", "threshold=900,1350,1800"]);
    for field in [
        "recall",
        "precision",
        "notified",
        "should_be_notified",
        "delay_hours",
        "bytes_per_phone_per_day",
        "by_model_pair",
        "server",
        "phones",
        "sweep",
    ] {
        assert!(a.get(field).is_some(), "missing {field}");
    }
    for p in ["p50", "p90", "p95"] {
        assert!(a["delay_hours"].get(p).is_some());
    }
    assert_eq!(a["population"]["people"], 2000);
    assert!(
        a["registrations"].as_u64().unwrap() > 0,
        "{}",
        a["patients"]
    );
    assert!(a["files"].as_u64().unwrap() > 0);
    // Someone is told: the registrations reached phones that should be, and
    // the counts agree with each other and with recall and precision.
    let notified = a["notified"].as_u64().unwrap();
    let should = a["should_be_notified"].as_u64().unwrap();
    let tp = a["true_positives"].as_u64().unwrap();
    assert!(tp > 0, "nobody who should be was notified: {a}");
    assert_eq!(notified, tp + a["false_positives"].as_u64().unwrap());
    assert_eq!(should, tp + a["false_negatives"].as_u64().unwrap());
    let recall = a["recall"].as_f64().unwrap();
    assert!(
        (recall - tp as f64 / should as f64).abs() < 1e-9,
        "{recall}"
    );
    let precision = a["precision"].as_f64().unwrap();
    assert!(
        (precision - tp as f64 / notified as f64).abs() < 1e-9,
        "{precision}"
    );
    // A higher score threshold never notifies more phones.
    let by_threshold: Vec<(f64, u64)> = a["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["parameter"] == "threshold")
        .map(|r| {
            (
                r["value"].as_f64().unwrap(),
                r["notified"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_threshold.len(), 3, "{}", a["sweep"]);
    for pair in by_threshold.windows(2) {
        assert!(pair[0].0 < pair[1].0 && pair[0].1 >= pair[1].1, "{pair:?}");
    }
    assert!(a["bytes_per_phone_per_day"]["mean"].as_f64().unwrap() > 0.0);
    assert_eq!(a["sweep"].as_array().unwrap().len(), 4);
    assert!(a["run"]["seconds"].as_f64().is_some());

    // Same seed, different thread count: the same summary.
    let mut b = simulate(
        dir.path(),
        "b",
        &["--sweep", "threshold=900,1350,1800", "--threads", "1"],
    );
    for v in [&mut a, &mut b] {
        let o = v.as_object_mut().unwrap();
        o.remove("run");
        o["config"].as_object_mut().unwrap().remove("threads");
    }
    assert_eq!(a, b);
}

#[test]
fn bad_settings_exit_with_status_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_cocoa"))
        .args(["simulate", "--devices", "10", "--adoption", "2", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("adoption"));
    let out = Command::new(env!("CARGO_BIN_EXE_cocoa"))
        .args([
            "simulate",
            "--devices",
            "10",
            "--sweep",
            "volume=3",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// COCOA's two documents as files.
fn write_cocoa_configs(dir: &Path, score_sum: f64) -> (std::path::PathBuf, std::path::PathBuf) {
    let config = dir.join("configuration.json");
    let risk = dir.join("risk_calculation_configuration.json");
    std::fs::write(
        &config,
        r#"{"google_daily_summaries_config": {"attenuation_bucket_threshold_db": [46, 60, 65],
        "attenuation_bucket_weights": [1.0, 2.5, 1.3, 0.01], "days_since_exposure_threshold": 0,
        "infectiousness_weights": {"High": 1.0, "Standard": 1.0}, "minimum_window_score": 0,
        "report_type_weights": {"ConfirmedClinicalDiagnosis": 1.0, "ConfirmedTest": 1.0,
        "SelfReport": 1.0, "Recursive": 1.0}}}"#,
    )
    .expect("write the document");
    std::fs::write(
        &risk,
        format!(
            r#"{{"format_version": 1,
        "DailySummary_DaySummary_ScoreSum": {{"op": ">=", "value": {score_sum}}},
        "DailySummary_DaySummary_WeightedDurationAverage": {{"op": "NOP", "value": 0}},
        "ExposureWindow_ScanInstance_SecondsSinceLastScanSum": {{"op": ">=", "value": 900}},
        "ExposureWindow_ScanInstance_TypicalAttenuationDb_Max": {{"op": "NOP", "value": 0}},
        "ExposureWindow_ScanInstance_TypicalAttenuationDb_Min": {{"op": "NOP", "value": 0}}}}"#
        ),
    )
    .expect("write the document");
    (config, risk)
}

#[test]
fn the_phones_score_with_the_configuration_and_risk_files_given() {
    let dir = tempfile::tempdir().unwrap();
    let (config, risk) = write_cocoa_configs(dir.path(), 1350.0);
    let (c, r) = (config.to_str().unwrap(), risk.to_str().unwrap());
    let cocoa = simulate(dir.path(), "cocoa", &["--config", c, "--risk", r]);
    let default = simulate(dir.path(), "default", &[]);
    assert_eq!(cocoa["notified"], default["notified"]);
    assert!(
        cocoa["notified"].as_u64().unwrap() > 0,
        "{}",
        cocoa["notified"]
    );
    let strict_dir = dir.path().join("strict");
    std::fs::create_dir(&strict_dir).unwrap();
    let (_, strict) = write_cocoa_configs(&strict_dir, 1.0e9);
    let none = simulate(dir.path(), "strict", &["--risk", strict.to_str().unwrap()]);
    assert_eq!(none["notified"], 0);
    // A bad document: exit 2, its stable code, nothing run.
    std::fs::write(
        &risk,
        br#"{"format_version": 1, "DailySummary_DaySummary_ScoreSum": {"op": "~", "value": 1}}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cocoa"))
        .args(["simulate", "--devices", "10", "--quiet", "--risk", r])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("RISK_CONFIG_PARSE"), "{err}");
}

#[test]
fn a_radio_model_file_replaces_the_shipped_one_and_a_bad_one_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = include_str!("../../simulator/data/radio_model.toml");
    // Every phone in a bag behind 40 dB more: nobody is heard, nobody notified.
    let muffled = dir.path().join("muffled.toml");
    std::fs::write(
        &muffled,
        shipped
            .replace("bag_db = 8.0", "bag_db = 40.0")
            .replace("face_share = 0.3", "face_share = 0.0")
            .replace("desk_share = 0.3", "desk_share = 0.0"),
    )
    .unwrap();
    let s = simulate(
        dir.path(),
        "muffled",
        &["--radio-model", muffled.to_str().unwrap()],
    );
    assert_eq!(s["notified"], 0, "{}", s["notified"]);
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        shipped.replace("variance = 0.33", "variance = \"wide\""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cocoa"))
        .args(["simulate", "--devices", "10", "--quiet", "--radio-model"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("RADIO_MODEL_PARSE") && err.contains("電波モデル"),
        "{err}"
    );
}

fn trial(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cocoa"))
        .args(["simulate", "trial"])
        .args(args)
        .output()
        .expect("run cocoa")
}

/// Issue 14: `cocoa simulate trial` prints `{"trials", "detected", "rate",
/// "ci95", "by_pair", "share_weighted_rate"}`, repeats by seed, and a bad
/// request exits 2 with its code and nothing printed on stdout.
#[test]
fn a_trial_prints_its_rate_with_intervals_and_repeats_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.json");
    let args = [
        "--distance",
        "1",
        "--minutes",
        "20",
        "--trials",
        "100",
        "--pair",
        "iphone:iphone",
        "--pair",
        "budget:pixel",
        "--placement",
        "face",
        "--seed",
        "5",
    ];
    let out = trial(&[&args[..], &["--json", file.to_str().unwrap()]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["trials"], 200);
    for field in ["detected", "rate", "ci95", "share_weighted_rate"] {
        assert!(!v[field].is_null(), "{field}: {v}");
    }
    let (lo, hi) = (
        v["ci95"][0].as_f64().unwrap(),
        v["ci95"][1].as_f64().unwrap(),
    );
    let rate = v["rate"].as_f64().unwrap();
    assert!(lo <= rate && rate <= hi && lo < hi, "{v}");
    assert_eq!(v["by_pair"]["iphone:iphone"]["trials"], 100);
    assert_eq!(v["by_pair"]["budget:pixel"]["trials"], 100);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&file).unwrap()).unwrap(),
        v
    );
    let again = trial(&args);
    assert_eq!(
        again.stdout, out.stdout,
        "the same seed gives the same result"
    );

    for (bad, code) in [
        (vec!["--distance", "0", "--minutes", "15"], "TRIAL_DISTANCE"),
        (
            vec!["--distance", "1", "--minutes", "2000"],
            "TRIAL_MINUTES",
        ),
        (
            vec!["--distance", "1", "--minutes", "15", "--trials", "0"],
            "TRIAL_COUNT",
        ),
        (
            vec!["--distance", "1", "--minutes", "15", "--pair", "iphone"],
            "TRIAL_PAIR",
        ),
        (
            vec![
                "--distance",
                "1",
                "--minutes",
                "15",
                "--pair",
                "iphone:nokia",
            ],
            "TRIAL_UNKNOWN_MODEL",
        ),
    ] {
        let out = trial(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(code), "{bad:?}: {err}");
    }
}

/// Issue 14: `--compare <current>,<candidate>` scores the same city under
/// both, prints both columns and the difference, writes them in the JSON and
/// the HTML report; a bad `--compare` exits 2 and runs nothing.
#[test]
fn compare_scores_one_city_under_two_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let (current, candidate) = (dir.path().join("current"), dir.path().join("candidate"));
    std::fs::create_dir(&current).unwrap();
    std::fs::create_dir(&candidate).unwrap();
    write_cocoa_configs(&current, 1350.0);
    write_cocoa_configs(&candidate, 1.0e9);
    let dirs = format!("{},{}", current.display(), candidate.display());
    let v = simulate(dir.path(), "cmp", &["--compare", &dirs]);
    let c = &v["comparison"];
    assert_eq!(c["current"]["notified"], v["notified"]);
    assert!(v["notified"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(c["candidate"]["notified"], 0, "a threshold nobody reaches");
    assert_eq!(
        c["notified_difference"]["value"].as_f64().unwrap(),
        -v["notified"].as_f64().unwrap()
    );
    assert_eq!(c["trials"].as_array().unwrap().len(), 10);
    // The report is Japanese by default, English with --lang en.
    let html = std::fs::read_to_string(dir.path().join("cmp.html")).unwrap();
    assert!(
        html.contains("現行の設定と候補の設定"),
        "Japanese by default"
    );
    assert!(html.contains("lang=\"ja\""));
    let en = simulate(dir.path(), "cmp-en", &["--compare", &dirs, "--lang", "en"]);
    assert_eq!(
        en["comparison"], v["comparison"],
        "the language changes only the words"
    );
    let html = std::fs::read_to_string(dir.path().join("cmp-en.html")).unwrap();
    assert!(html.contains("Current against candidate"));

    for bad in [
        vec!["--compare".to_owned(), current.display().to_string()],
        vec![
            "--compare".to_owned(),
            format!("{},/nonexistent", current.display()),
        ],
        vec![
            "--compare".to_owned(),
            dirs.clone(),
            "--sweep".to_owned(),
            "threshold=900".to_owned(),
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cocoa"))
            .args(["simulate", "--devices", "10", "--quiet"])
            .args(&bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
    }
}
