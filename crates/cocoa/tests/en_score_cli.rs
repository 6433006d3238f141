//! `cocoa en score | daily-summaries` through the built binary: COCOA's decision on the
//! Android EN shapes, and bad input refused with a stable code, Japanese + English, exit 2.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../en-protocol/tests/vectors/cocoa")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    support::cocoa().args(args).output().expect("run cocoa")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn bad(out: &Output, code: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains(code), "{code} in {stderr}");
    assert!(
        stderr
            .chars()
            .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
        "Japanese message in {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    stderr
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(v).expect("json")).expect("write");
    p.to_str().expect("utf-8").to_owned()
}

const DAY: i64 = 20_000;

fn window(day: i64, scans: &[(u8, u32)]) -> Value {
    json!({
        "dateMillisSinceEpoch": day * 86_400_000,
        "reportType": 1,
        "infectiousness": 1,
        "calibrationConfidence": 2,
        "scanInstances": scans.iter().map(|(a, s)| json!({
            "minAttenuationDb": a - 2, "typicalAttenuationDb": a, "secondsSinceLastScan": s
        })).collect::<Vec<_>>(),
    })
}

fn summary(score_sum: f64, weighted: f64) -> Value {
    json!({"daysSinceEpoch": DAY, "DaySummary": {
        "ScoreSum": score_sum, "WeightedDurationSum": weighted, "MaximumScore": score_sum}})
}

#[test]
fn score_applies_cocoas_thresholds_at_their_edges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let risk = vector("risk_calculation_configuration.json");
    let risk = risk.to_str().expect("utf-8");
    // 900 s on the day (the threshold), plus 600 s on another day that must not count.
    let w = write(
        dir.path(),
        "w.json",
        &json!([
            window(DAY, &[(50, 300), (62, 600)]),
            window(DAY - 1, &[(40, 600)])
        ]),
    );
    for (score_sum, level) in [(1350.0, "High"), (1349.99, "Low"), (2000.0, "High")] {
        let s = write(dir.path(), "s.json", &summary(score_sum, 1530.0));
        let out = ok_json(&run(&[
            "en",
            "score",
            "--config",
            risk,
            "--daily-summary",
            &s,
            "--exposure-windows",
            &w,
        ]));
        assert_eq!(out["risk_level"], level, "{score_sum}: {out}");
        assert_eq!(out["DailySummary_DaySummary_ScoreSum"], score_sum);
        assert_eq!(
            out["ExposureWindow_ScanInstance_SecondsSinceLastScanSum"],
            900.0
        );
        assert_eq!(out["DailySummary_DaySummary_WeightedDurationAverage"], 1.7);
        assert_eq!(
            out["ExposureWindow_ScanInstance_TypicalAttenuationDb_Max"],
            62.0
        );
        assert_eq!(
            out["ExposureWindow_ScanInstance_TypicalAttenuationDb_Min"],
            50.0
        );
    }
    // 899 s: Low even with a high score (AND).
    let w = write(dir.path(), "w2.json", &json!([window(DAY, &[(50, 899)])]));
    let s = write(dir.path(), "s.json", &summary(5000.0, 2247.5));
    let out = ok_json(&run(&[
        "en",
        "score",
        "--config",
        risk,
        "--daily-summary",
        &s,
        "--exposure-windows",
        &w,
    ]));
    assert_eq!(out["risk_level"], "Low");
}

#[test]
fn daily_summaries_then_score_replays_a_phones_decision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = vector("configuration.json");
    // 15 min at ~1 m (near bucket, weight 2.5) = 2250 on DAY; 10 min far away on DAY - 1.
    let w = write(
        dir.path(),
        "w.json",
        &json!([
            window(DAY, &[(55, 300), (55, 300), (55, 300)]),
            window(DAY - 1, &[(80, 600)])
        ]),
    );
    let out = ok_json(&run(&[
        "en",
        "daily-summaries",
        "--config",
        config.to_str().expect("utf-8"),
        "--exposure-windows",
        &w,
    ]));
    let days = out.as_array().expect("array");
    assert_eq!(days.len(), 2);
    assert_eq!(days[0]["daysSinceEpoch"], DAY - 1);
    assert_eq!(days[1]["daysSinceEpoch"], DAY);
    assert_eq!(days[1]["dateMillisSinceEpoch"], DAY * 86_400_000);
    assert_eq!(days[1]["DaySummary"]["ScoreSum"], 2250.0);
    assert_eq!(days[1]["DaySummary"]["MaximumScore"], 2250.0);
    assert_eq!(days[1]["DaySummary"]["WeightedDurationSum"], 2250.0);
    assert!((days[0]["DaySummary"]["ScoreSum"].as_f64().expect("n") - 6.0).abs() < 1e-9);

    let s = write(dir.path(), "s.json", &days[1]);
    let risk = vector("risk_calculation_configuration.json");
    let out = ok_json(&run(&[
        "en",
        "score",
        "--config",
        risk.to_str().expect("utf-8"),
        "--daily-summary",
        &s,
        "--exposure-windows",
        &w,
    ]));
    assert_eq!(out["risk_level"], "High");
    let s = write(dir.path(), "s0.json", &days[0]);
    let out = ok_json(&run(&[
        "en",
        "score",
        "--config",
        risk.to_str().expect("utf-8"),
        "--daily-summary",
        &s,
        "--exposure-windows",
        &w,
    ]));
    assert_eq!(out["risk_level"], "Low");
}

#[test]
fn bad_input_is_refused_with_a_stable_code_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let risk_ok = vector("risk_calculation_configuration.json");
    let risk_ok = risk_ok.to_str().expect("utf-8");
    let config_ok = vector("configuration.json");
    let config_ok = config_ok.to_str().expect("utf-8");
    let w_ok = write(dir.path(), "w.json", &json!([window(DAY, &[(50, 900)])]));
    let s_ok = write(dir.path(), "s.json", &summary(2000.0, 2250.0));

    let mut risk: Value =
        serde_json::from_slice(&std::fs::read(risk_ok).expect("read")).expect("json");
    risk["DailySummary_DaySummary_ScoreSum"]["op"] = json!("=~");
    let risk_bad = write(dir.path(), "risk_bad.json", &risk);
    let err = bad(
        &run(&[
            "en",
            "score",
            "--config",
            &risk_bad,
            "--daily-summary",
            &s_ok,
            "--exposure-windows",
            &w_ok,
        ]),
        "RISK_CONFIG_PARSE",
    );
    assert!(err.contains("DailySummary_DaySummary_ScoreSum"), "{err}");

    let s_bad = write(
        dir.path(),
        "s_bad.json",
        &json!({"daysSinceEpoch": DAY, "DaySummary": {"ScoreSum": "x"}}),
    );
    bad(
        &run(&[
            "en",
            "score",
            "--config",
            risk_ok,
            "--daily-summary",
            &s_bad,
            "--exposure-windows",
            &w_ok,
        ]),
        "DAILY_SUMMARY_PARSE",
    );

    let w_bad = write(
        dir.path(),
        "w_bad.json",
        &json!([{"dateMillisSinceEpoch": 0, "reportType": 1, "infectiousness": 7, "scanInstances": []}]),
    );
    let err = bad(
        &run(&[
            "en",
            "score",
            "--config",
            risk_ok,
            "--daily-summary",
            &s_ok,
            "--exposure-windows",
            &w_bad,
        ]),
        "EXPOSURE_WINDOWS_PARSE",
    );
    assert!(err.contains("infectiousness"), "{err}");

    let mut config: Value =
        serde_json::from_slice(&std::fs::read(config_ok).expect("read")).expect("json");
    config["google_daily_summaries_config"]["attenuation_bucket_threshold_db"] =
        json!([60, 46, 65]);
    let config_bad = write(dir.path(), "config_bad.json", &config);
    bad(
        &run(&[
            "en",
            "daily-summaries",
            "--config",
            &config_bad,
            "--exposure-windows",
            &w_ok,
        ]),
        "EXPOSURE_CONFIG_THRESHOLDS",
    );
    bad(
        &run(&[
            "en",
            "daily-summaries",
            "--config",
            config_ok,
            "--exposure-windows",
            &w_bad,
        ]),
        "EXPOSURE_WINDOWS_PARSE",
    );
    let missing = dir.path().join("missing.json");
    bad(
        &run(&[
            "en",
            "daily-summaries",
            "--config",
            missing.to_str().expect("utf-8"),
            "--exposure-windows",
            &w_ok,
        ]),
        "INPUT_UNREADABLE",
    );
}

/// A phone that met another for 20 minutes at 1 m and 10 minutes at 0.5 m on another day
/// checks an export of the other's keys; its recorded windows replayed through
/// `cocoa en daily-summaries` and `cocoa en score` give exactly its own decisions.
#[tokio::test]
async fn a_phones_recorded_days_replay_through_the_cli_to_its_own_decisions() {
    use std::sync::Arc;

    use chrono::TimeZone;
    use en_protocol::export::{
        ExportMeta, ExposureKey, ReportType, SignatureInfo, SoftwareSigner, build_export,
    };
    use en_protocol::time::FixedClock;
    use rand_chacha::ChaCha20Rng;
    use rand_chacha::rand_core::SeedableRng;

    let dir = tempfile::tempdir().expect("tempdir");
    let jst = |d: u32, h: u32| {
        chrono::FixedOffset::east_opt(9 * 3600)
            .and_then(|o| o.with_ymd_and_hms(2026, 11, d, h, 0, 0).single())
            .expect("time")
            .to_utc()
    };
    let clock = Arc::new(FixedClock::new(jst(17, 9)));
    let signer = SoftwareSigner::generate(
        &mut ChaCha20Rng::seed_from_u64(5),
        SignatureInfo::new("440", "v1"),
    );
    let exports = dir.path().join("exports");
    let mut settings = device::Settings {
        exports: Some(device::settings::file_url(&exports.join("index.txt")).expect("url")),
        export_public_keys: vec![signer.public_key_pem().expect("pem")],
        ..device::Settings::default()
    };
    settings.validate().expect("settings");
    let new_phone = |name: &str, seed: u64| {
        device::Phone::init(
            &dir.path().join(name),
            settings.clone(),
            clock.clone(),
            Box::new(ChaCha20Rng::seed_from_u64(seed)),
        )
        .expect("phone")
    };
    let mut a = new_phone("a", 1);
    let mut b = new_phone("b", 2);
    for (day, hour, minutes, metres) in [(18, 10, 20, 1.0), (19, 14, 10, 0.5)] {
        clock.set(jst(day, hour + 1));
        device::meet(&mut a, &mut b, jst(day, hour), minutes, metres).expect("meet");
    }
    clock.set(jst(20, 9));
    let keys: Vec<ExposureKey> = b
        .keys()
        .expect("keys")
        .iter()
        .map(|k| {
            let mut e = ExposureKey::new(k.tek.clone(), k.rolling_start);
            e.report_type = Some(ReportType::CONFIRMED_TEST);
            e
        })
        .collect();
    let meta = ExportMeta {
        start_timestamp: 0,
        end_timestamp: 1,
        region: "440".into(),
    };
    std::fs::create_dir_all(&exports).expect("mkdir");
    std::fs::write(
        exports.join("1.zip"),
        build_export(&meta, keys, &[&signer]).expect("export"),
    )
    .expect("write");
    std::fs::write(exports.join("index.txt"), "1.zip\n").expect("write");
    let report = a.check().await.expect("check");
    assert_eq!(report.notification.dates, ["2026-11-18"]);

    let phone_days = a.scored_days().expect("days");
    assert_eq!(phone_days.len(), 2, "two days recorded: {phone_days:?}");
    let w = write(
        dir.path(),
        "w.json",
        &serde_json::to_value(a.exposure_windows().expect("windows")).expect("json"),
    );
    let config = vector("configuration.json");
    let summaries = ok_json(&run(&[
        "en",
        "daily-summaries",
        "--config",
        config.to_str().expect("utf-8"),
        "--exposure-windows",
        &w,
    ]));
    let phone_summaries: Vec<Value> = phone_days
        .iter()
        .map(|d| serde_json::to_value(&d.daily_summary).expect("json"))
        .collect();
    assert_eq!(summaries, Value::Array(phone_summaries));
    let risk = vector("risk_calculation_configuration.json");
    let mut levels = Vec::new();
    for (i, day) in phone_days.iter().enumerate() {
        let s = write(dir.path(), &format!("s{i}.json"), &summaries[i]);
        let cli = ok_json(&run(&[
            "en",
            "score",
            "--config",
            risk.to_str().expect("utf-8"),
            "--daily-summary",
            &s,
            "--exposure-windows",
            &w,
        ]));
        assert_eq!(cli, serde_json::to_value(day.decision).expect("json"));
        levels.push(cli["risk_level"].clone());
    }
    // 20 min at 1 m is a contact; 10 min at 0.5 m is not (720 s < 900 s).
    assert_eq!(levels, [json!("High"), json!("Low")]);
}
