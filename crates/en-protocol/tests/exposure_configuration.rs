use en_protocol::exposure_configuration::*;
use serde_json::json;

const COCOA: &[u8] = include_bytes!("vectors/cocoa/configuration.json");

fn window(day: i64, report_type: i32, infectiousness: i32, scans: &[(u8, u32)]) -> ExposureWindow {
    serde_json::from_value(json!({
        "dateMillisSinceEpoch": day * MILLIS_PER_DAY,
        "reportType": report_type,
        "infectiousness": infectiousness,
        "calibrationConfidence": 3,
        "scanInstances": scans.iter().map(|(a, s)| json!({
            "minAttenuationDb": a, "typicalAttenuationDb": a, "secondsSinceLastScan": s
        })).collect::<Vec<_>>(),
    }))
    .expect("valid window")
}

fn with(path: &[&str], value: serde_json::Value) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(COCOA).expect("vector");
    let mut at = &mut v;
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    at[path[path.len() - 1]] = value;
    serde_json::to_vec(&v).expect("json")
}

#[test]
fn cocoa_vector_parses_to_the_built_in_values() {
    let c = ExposureConfiguration::from_json(COCOA).expect("COCOA's file is valid");
    assert_eq!(
        c.google_daily_summaries_config,
        DailySummariesConfig::cocoa()
    );
    assert!(c.other.contains_key("apple_exposure_config_v2"));
}

#[test]
fn every_bucket_edge_uses_the_right_weight() {
    let c = DailySummariesConfig::cocoa();
    for (db, w) in [
        (0, 1.0),
        (46, 1.0),
        (47, 2.5),
        (60, 2.5),
        (61, 1.3),
        (65, 1.3),
        (66, 0.01),
        (255, 0.01),
    ] {
        assert_eq!(c.attenuation_weight(db), w, "{db} dB");
        let s = c.daily_summaries(&[window(100, 1, 1, &[(db, 300)])], 100);
        assert_eq!(s.len(), 1);
        assert!(
            (s[0].day_summary.score_sum - 300.0 * w).abs() < 1e-9,
            "{db} dB"
        );
    }
}

#[test]
fn bucket_uses_typical_not_minimum_attenuation() {
    let c = DailySummariesConfig::cocoa();
    let w: ExposureWindow = serde_json::from_value(json!({
        "dateMillisSinceEpoch": 0, "reportType": 1, "infectiousness": 1,
        "scanInstances": [{"minAttenuationDb": 30, "typicalAttenuationDb": 70, "secondsSinceLastScan": 100}]
    }))
    .expect("valid");
    assert!((c.window_score(&w) - 1.0).abs() < 1e-9);
}

#[test]
fn infectiousness_and_report_type_weights_multiply_the_window() {
    let mut c = DailySummariesConfig::cocoa();
    c.infectiousness_weights = InfectiousnessWeights {
        high: 2.0,
        standard: 0.5,
    };
    c.report_type_weights = ReportTypeWeights {
        confirmed_clinical_diagnosis: 1.5,
        confirmed_test: 1.0,
        self_report: 0.25,
        recursive: 2.5,
    };
    let base = 600.0 * 2.5; // 600 s in the near bucket
    for (rt, inf, factor) in [
        (1, 1, 0.5),
        (1, 2, 2.0),
        (2, 2, 3.0),
        (3, 1, 0.125),
        (4, 2, 5.0),
        (1, 0, 0.0),
        (0, 2, 0.0),
        (5, 2, 0.0),
    ] {
        let w = window(5, rt, inf, &[(50, 600)]);
        assert!(
            (c.window_score(&w) - base * factor).abs() < 1e-9,
            "rt {rt} inf {inf}"
        );
        assert!((c.weighted_duration(&w) - base).abs() < 1e-9);
    }
}

#[test]
fn minimum_window_score_drops_only_windows_below_it() {
    let mut c = DailySummariesConfig::cocoa();
    c.minimum_window_score = 300.0;
    let at = window(7, 1, 1, &[(40, 300)]); // exactly 300
    let below = window(7, 1, 1, &[(40, 299)]);
    let s = c.daily_summaries(&[at.clone(), below], 7);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].day_summary.score_sum, 300.0);
    assert!(
        c.daily_summaries(&[window(7, 1, 1, &[(40, 299)])], 7)
            .is_empty()
    );
}

#[test]
fn windows_sum_per_day_with_maximum_score() {
    let c = DailySummariesConfig::cocoa();
    let windows = [
        window(10, 1, 1, &[(40, 300), (50, 300)]), // 300 + 750 = 1050
        window(10, 1, 1, &[(62, 100)]),            // 130
        window(11, 1, 1, &[(70, 1000)]),           // 10
    ];
    let s = c.daily_summaries(&windows, 11);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].days_since_epoch, 10);
    assert_eq!(s[0].date_millis_since_epoch, Some(10 * MILLIS_PER_DAY));
    assert!((s[0].day_summary.score_sum - 1180.0).abs() < 1e-9);
    assert!((s[0].day_summary.maximum_score - 1050.0).abs() < 1e-9);
    assert!((s[0].day_summary.weighted_duration_sum - 1180.0).abs() < 1e-9);
    assert!((s[1].day_summary.score_sum - 10.0).abs() < 1e-9);
    let out = serde_json::to_value(&s[0]).expect("json");
    assert_eq!(out["daysSinceEpoch"], 10);
    assert!(out["DaySummary"]["ScoreSum"].is_number());
    assert!(out["DaySummary"]["WeightedDurationSum"].is_number());
    assert!(out["DaySummary"]["MaximumScore"].is_number());
}

#[test]
fn days_since_exposure_threshold_leaves_out_older_windows() {
    let mut c = DailySummariesConfig::cocoa();
    c.days_since_exposure_threshold = 3;
    let windows = [window(96, 1, 1, &[(40, 60)]), window(97, 1, 1, &[(40, 60)])];
    let s = c.daily_summaries(&windows, 100);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].days_since_epoch, 97);
    c.days_since_exposure_threshold = 0;
    assert_eq!(c.daily_summaries(&windows, 100).len(), 2);
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    let g = "google_daily_summaries_config";
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            with(&[g, "attenuation_bucket_threshold_db"], json!([60, 46, 65])),
            "EXPOSURE_CONFIG_THRESHOLDS",
            "attenuation_bucket_threshold_db",
        ),
        (
            with(&[g, "attenuation_bucket_threshold_db"], json!([46, 46, 65])),
            "EXPOSURE_CONFIG_THRESHOLDS",
            "attenuation_bucket_threshold_db",
        ),
        (
            with(&[g, "attenuation_bucket_threshold_db"], json!([46, 60])),
            "EXPOSURE_CONFIG_PARSE",
            "attenuation_bucket_threshold_db",
        ),
        (
            with(
                &[g, "attenuation_bucket_threshold_db"],
                json!([46, 60, 300]),
            ),
            "EXPOSURE_CONFIG_PARSE",
            "attenuation_bucket_threshold_db",
        ),
        (
            with(
                &[g, "attenuation_bucket_weights"],
                json!([1.0, 2.6, 1.3, 0.01]),
            ),
            "EXPOSURE_CONFIG_WEIGHT",
            "attenuation_bucket_weights[1]",
        ),
        (
            with(
                &[g, "attenuation_bucket_weights"],
                json!([1.0, -0.1, 1.3, 0.01]),
            ),
            "EXPOSURE_CONFIG_WEIGHT",
            "attenuation_bucket_weights[1]",
        ),
        (
            with(&[g, "infectiousness_weights", "High"], json!(3.0)),
            "EXPOSURE_CONFIG_WEIGHT",
            "infectiousness_weights.High",
        ),
        (
            with(&[g, "report_type_weights", "SelfReport"], json!(-1.0)),
            "EXPOSURE_CONFIG_WEIGHT",
            "report_type_weights.SelfReport",
        ),
        (
            with(&[g, "report_type_weights", "Bogus"], json!(1.0)),
            "EXPOSURE_CONFIG_PARSE",
            "report_type_weights",
        ),
        (
            with(&[g, "minimum_window_score"], json!(-1.0)),
            "EXPOSURE_CONFIG_MINIMUM_WINDOW_SCORE",
            "minimum_window_score",
        ),
        (
            with(&[g, "days_since_exposure_threshold"], json!(-1)),
            "EXPOSURE_CONFIG_PARSE",
            "days_since_exposure_threshold",
        ),
        (
            COCOA[..COCOA.len() / 2].to_vec(),
            "EXPOSURE_CONFIG_PARSE",
            "",
        ),
        (b"{}".to_vec(), "EXPOSURE_CONFIG_PARSE", ""),
    ];
    for (bytes, code, field) in cases {
        let e = ExposureConfiguration::from_json(&bytes).expect_err(code);
        assert_eq!(e.code(), code, "{e}");
        assert!(e.to_string().contains(field), "{e} names {field}");
        assert!(!e.message_ja().is_empty());
        assert!(
            e.message_ja()
                .contains(field.split('[').next().unwrap_or("")),
            "{}",
            e.message_ja()
        );
    }
}

#[test]
fn bad_exposure_windows_are_refused_naming_the_field() {
    for (json, field) in [
        (
            r#"[{"dateMillisSinceEpoch":0,"reportType":9,"infectiousness":1,"scanInstances":[]}]"#,
            "reportType",
        ),
        (
            r#"[{"dateMillisSinceEpoch":0,"reportType":1,"infectiousness":3,"scanInstances":[]}]"#,
            "infectiousness",
        ),
        (
            r#"[{"dateMillisSinceEpoch":0,"reportType":1,"infectiousness":1,"scanInstances":[{"minAttenuationDb":1,"typicalAttenuationDb":-2,"secondsSinceLastScan":1}]}]"#,
            "typicalAttenuationDb",
        ),
        (
            r#"[{"dateMillisSinceEpoch":0,"reportType":1,"infectiousness":1"#,
            "",
        ),
    ] {
        let e = exposure_windows_from_json(json.as_bytes()).expect_err(field);
        assert_eq!(e.code(), "EXPOSURE_WINDOWS_PARSE");
        assert!(e.path.contains(field), "{e}");
        assert!(e.message_ja().contains(field));
    }
}
