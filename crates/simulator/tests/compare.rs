//! `--compare`: two configurations on one population (issue 14, "Simulation
//! before a parameter change ships").

use simulator::compare::{GRID_DISTANCES_M, GRID_MINUTES, GRID_TRIALS};
use simulator::{NoProgress, SimConfig, SweepParameter, run};

fn city() -> SimConfig {
    let mut c = SimConfig {
        people: 3_000,
        days: 7,
        seed: 21,
        adoption: 0.6,
        registration_rate: 0.9,
        threads: 2,
        ..SimConfig::default()
    };
    // Enough positives that a few hundred phones should be warned.
    c.epidemic.initial_infected_share = 0.05;
    c
}

#[test]
fn a_lower_threshold_notifies_more_on_the_same_population_with_paired_intervals() {
    let mut config = city();
    // COCOA's (score 1,350, 900 s) against a candidate of 900 and 600 s.
    let candidate = SweepParameter::Threshold.apply(&config.scoring, 900.0);
    config.candidate = Some(SweepParameter::Seconds.apply(&candidate, 600.0));
    let s = run(&config, &NoProgress).unwrap().summary;
    let c = s.comparison.as_ref().expect("a comparison");
    assert!(c.should_be_notified >= 30, "{}", c.should_be_notified);
    // The current column is the run's own result.
    assert_eq!(c.current.notified, s.notified);
    assert_eq!(c.current.recall, s.recall);
    assert_eq!(c.should_be_notified, s.should_be_notified);
    // A lower threshold can only add notifications on the same windows.
    assert!(c.candidate.notified >= c.current.notified, "{c:?}");
    assert_eq!(c.notified_only_by_current, 0, "{c:?}");
    assert!(c.notified_only_by_candidate > 0, "{c:?}");
    let d = c.notified_difference.clone();
    assert_eq!(
        d.value,
        c.candidate.notified as f64 - c.current.notified as f64
    );
    assert!(
        d.ci95[0] <= d.value && d.value <= d.ci95[1] && d.ci95[0] >= 0.0 && d.ci95[1] > 0.0,
        "{d:?}"
    );
    let r = c.recall_difference.clone().unwrap();
    assert!(
        r.value >= 0.0 && r.ci95[0] <= r.value && r.value <= r.ci95[1],
        "{r:?}"
    );
    let [lo, hi] = c.candidate.recall_ci95.unwrap();
    assert!(lo <= c.candidate.recall.unwrap() && c.candidate.recall.unwrap() <= hi);
    // The trial grid: every distance × duration, both configurations.
    assert_eq!(c.trials.len(), GRID_DISTANCES_M.len() * GRID_MINUTES.len());
    for cell in &c.trials {
        assert_eq!(cell.current.trials, GRID_TRIALS);
        assert!(cell.candidate.detected >= cell.current.detected, "{cell:?}");
    }
    // The same population scored twice by the same configuration differs by nothing.
    let mut same = city();
    same.candidate = Some(same.scoring.clone());
    let t = run(&same, &NoProgress).unwrap().summary;
    let z = t.comparison.unwrap();
    assert_eq!(z.notified_difference.value, 0.0);
    assert_eq!(z.notified_difference.ci95, [0.0, 0.0]);
    assert_eq!(z.recall_difference.unwrap().ci95, [0.0, 0.0]);
    assert_eq!(
        t.notified, s.notified,
        "the candidate does not change the current column"
    );
    // The report has the section.
    let html = simulator::report::html(&s, None, simulator::report::Lang::En);
    assert!(html.contains("Current against candidate"), "report");
    let ja = simulator::report::html(&s, None, simulator::report::Lang::Ja);
    assert!(
        ja.contains("現行の設定と候補の設定") && ja.contains("lang=\"ja\""),
        "report"
    );
}

#[test]
fn compare_refuses_a_sweep_beside_it_and_warns_on_few_people() {
    let mut config = city();
    config.candidate = Some(config.scoring.clone());
    config.sweep = Some("threshold=900".parse().unwrap());
    assert!(config.validate().unwrap_err().0.contains("--compare"));

    let mut tiny = SimConfig {
        people: 200,
        days: 3,
        threads: 1,
        ..SimConfig::default()
    };
    tiny.candidate = Some(tiny.scoring.clone());
    let s = run(&tiny, &NoProgress).unwrap().summary;
    let c = s.comparison.unwrap();
    assert!(
        c.warnings.iter().any(|w| w.en.contains("fewer than 30")),
        "{:?}",
        c.warnings
    );
}
