use en_protocol::risk_calculation::*;

fn only(field: &str, op: &str, value: f64) -> RiskCalculationConfiguration {
    let mut c = RiskCalculationConfiguration::cocoa();
    let nop = Threshold {
        op: Op::Nop,
        value: 0.0,
    };
    c.score_sum = nop;
    c.weighted_duration_average = nop;
    c.seconds_since_last_scan_sum = nop;
    c.typical_attenuation_db_max = nop;
    c.typical_attenuation_db_min = nop;
    let t: Threshold =
        serde_json::from_value(serde_json::json!({"op": op, "value": value})).expect("valid");
    match field {
        "score" => c.score_sum = t,
        "avg" => c.weighted_duration_average = t,
        "secs" => c.seconds_since_last_scan_sum = t,
        "max" => c.typical_attenuation_db_max = t,
        _ => c.typical_attenuation_db_min = t,
    }
    c
}

fn values(x: f64) -> DayValues {
    DayValues {
        score_sum: x,
        weighted_duration_average: x,
        seconds_since_last_scan_sum: x,
        typical_attenuation_db_max: x,
        typical_attenuation_db_min: x,
    }
}

#[test]
fn every_operator_at_its_edge_on_every_field() {
    for field in ["score", "avg", "secs", "max", "min"] {
        for (op, below, at, above) in [
            (">=", RiskLevel::Low, RiskLevel::High, RiskLevel::High),
            (">", RiskLevel::Low, RiskLevel::Low, RiskLevel::High),
            ("<=", RiskLevel::High, RiskLevel::High, RiskLevel::Low),
            ("<", RiskLevel::High, RiskLevel::Low, RiskLevel::Low),
        ] {
            let c = only(field, op, 50.0);
            assert_eq!(c.decide(&values(49.0)), below, "{field} {op} below");
            assert_eq!(c.decide(&values(50.0)), at, "{field} {op} at");
            assert_eq!(c.decide(&values(51.0)), above, "{field} {op} above");
        }
    }
}

#[test]
fn all_nop_is_low_whatever_the_values() {
    let c = only("score", "NOP", 0.0);
    assert_eq!(c.decide(&values(1e9)), RiskLevel::Low);
    assert_eq!(c.decide(&values(0.0)), RiskLevel::Low);
}

#[test]
fn cocoa_values_need_both_score_and_seconds() {
    let c = RiskCalculationConfiguration::from_json(include_bytes!(
        "vectors/cocoa/risk_calculation_configuration.json"
    ))
    .expect("valid");
    assert_eq!(c, RiskCalculationConfiguration::cocoa());
    let day = |score: f64, secs: u32| DayValues::compute(score, 0.0, &[(55, secs)]);
    assert_eq!(c.decide(&day(1350.0, 900)), RiskLevel::High);
    assert_eq!(c.decide(&day(1349.9, 900)), RiskLevel::Low);
    assert_eq!(c.decide(&day(1350.0, 899)), RiskLevel::Low);
    assert_eq!(c.decide(&day(5000.0, 0)), RiskLevel::Low);
}

#[test]
fn computed_values_follow_cocoa() {
    let v = DayValues::compute(100.0, 600.0, &[(40, 300), (70, 300), (55, 600)]);
    assert_eq!(v.seconds_since_last_scan_sum, 1200.0);
    assert_eq!(v.weighted_duration_average, 0.5);
    assert_eq!(v.typical_attenuation_db_max, 70.0);
    assert_eq!(v.typical_attenuation_db_min, 40.0);
    let empty = DayValues::compute(0.0, 10.0, &[]);
    assert_eq!(empty.weighted_duration_average, 0.0);
    assert_eq!(empty.typical_attenuation_db_max, 0.0);
    assert_eq!(empty.typical_attenuation_db_min, 0.0);
}

#[test]
fn bad_configs_are_refused_with_the_field_named() {
    let good = include_str!("vectors/cocoa/risk_calculation_configuration.json");
    let truncated = &good[..good.len() / 2];
    let e = RiskCalculationConfiguration::from_json(truncated.as_bytes()).expect_err("refused");
    assert_eq!(e.code(), "RISK_CONFIG_PARSE");

    let unknown_op = good.replacen("\">=\"", "\"=>\"", 1);
    match RiskCalculationConfiguration::from_json(unknown_op.as_bytes()).expect_err("refused") {
        RiskConfigError::Parse { path, .. } => {
            assert_eq!(path, "DailySummary_DaySummary_ScoreSum.op")
        }
        other => panic!("{other:?}"),
    }

    let version = good.replace("\"format_version\": 1", "\"format_version\": 2");
    assert_eq!(
        RiskCalculationConfiguration::from_json(version.as_bytes()).expect_err("refused"),
        RiskConfigError::Version(2)
    );

    let negative = good.replace("1350.0", "-1.0");
    let e = RiskCalculationConfiguration::from_json(negative.as_bytes()).expect_err("refused");
    assert_eq!(
        e,
        RiskConfigError::Value("DailySummary_DaySummary_ScoreSum")
    );
    assert!(e.message_ja().contains("DailySummary_DaySummary_ScoreSum"));
}

#[test]
fn built_in_values_are_cocoas_published_files() {
    assert_eq!(
        RiskCalculationConfiguration::from_json(COCOA_RISK_CALCULATION_JSON.as_bytes()),
        Ok(RiskCalculationConfiguration::cocoa())
    );
    let c = en_protocol::exposure_configuration::ExposureConfiguration::cocoa();
    assert_eq!(
        c.report_type_when_missing(),
        en_protocol::exposure_configuration::ReportType::ConfirmedTest
    );
}

#[test]
fn score_days_decides_each_day_on_that_days_windows_only() {
    use en_protocol::exposure_configuration::{DailySummariesConfig, ExposureWindow};
    let w = |day: i64, scans: &[(u8, u32)]| -> ExposureWindow {
        serde_json::from_value(serde_json::json!({
            "dateMillisSinceEpoch": day * 86_400_000, "reportType": 1, "infectiousness": 1,
            "scanInstances": scans.iter().map(|(a, s)| serde_json::json!({
                "minAttenuationDb": a, "typicalAttenuationDb": a, "secondsSinceLastScan": s
            })).collect::<Vec<_>>()
        }))
        .expect("window")
    };
    // Day 10: 900 s near (2,250) -> High; day 11: 600 s near (1,500) -> Low (seconds);
    // day 12: 1,200 s far (12) -> Low (score).
    let windows = [
        w(10, &[(55, 300), (55, 600)]),
        w(11, &[(50, 600)]),
        w(12, &[(70, 1200)]),
    ];
    let days = score_days(
        &DailySummariesConfig::cocoa(),
        &RiskCalculationConfiguration::cocoa(),
        &windows,
        12,
    );
    let got: Vec<(i64, RiskLevel, f64)> = days
        .iter()
        .map(|d| {
            (
                d.daily_summary.days_since_epoch,
                d.decision.risk_level,
                d.decision.values.seconds_since_last_scan_sum,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (10, RiskLevel::High, 900.0),
            (11, RiskLevel::Low, 600.0),
            (12, RiskLevel::Low, 1200.0)
        ]
    );
    assert_eq!(days[0].decision.values.typical_attenuation_db_max, 55.0);
    assert_eq!(
        days[0].decision,
        RiskCalculationConfiguration::cocoa().decide_day(&days[0].daily_summary, &windows)
    );
}
