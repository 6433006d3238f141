//! Populations with known answers, run end to end: registration through the
//! in-process issuer and key server, real export files, the phones' matcher
//! and scoring.

use simulator::config::Matching;
use simulator::time::{DAY, HOUR};
use simulator::{NoProgress, Scenario, SimConfig, run, run_world};

fn small(days: u32) -> SimConfig {
    let mut config = SimConfig {
        days,
        seed: 11,
        registration_rate: 1.0,
        threads: 1,
        ..SimConfig::default()
    };
    // The patient registers promptly and numbers never lapse.
    config.health.entry_delay_sigma = 0.0;
    config.health.full_width_share = 1.0;
    // Phones of the scenario hear every scan.
    for m in &mut config.phone_models {
        m.scan_miss = 0.0;
    }
    // ...and the radio is the fit's median (no spread, no jitter, face to face).
    config.radio.attenuation.variance = 0.0;
    config.radio.scan.jitter_seconds = 0;
    config.radio.placement.face_share = 1.0;
    config.radio.placement.desk_share = 0.0;
    config.radio.placement.bag_share = 0.0;
    config
}

/// Two people; one meets the other for `minutes` at `distance_m` on day 2,
/// falls ill that day and is confirmed on day 3.
fn two_people(minutes: f64, distance_m: f64, seed: u64) -> simulator::Summary {
    let mut config = small(6);
    config.seed = seed;
    let mut s = Scenario::new(config);
    let positive = s.person(Some(0));
    let contact = s.person(Some(0));
    s.meet(positive, contact, 2 * DAY + 14 * HOUR, minutes, distance_m);
    s.case(positive, 2 * DAY, 3 * DAY + 10 * HOUR);
    let (config, world) = s.build();
    run_world(&config, &world, &NoProgress)
        .expect("the scenario runs")
        .summary
}

#[test]
fn two_people_one_contact_of_20_minutes_at_1_m_recall_is_1() {
    for seed in [1, 2, 3] {
        let s = two_people(20.0, 1.0, seed);
        assert_eq!(s.registrations, 1, "seed {seed}");
        assert_eq!(s.should_be_notified, 1);
        assert_eq!(s.notified, 1);
        assert_eq!(s.recall, Some(1.0));
        assert_eq!(s.precision, Some(1.0));
        assert_eq!(s.delay_hours.count, 1);
        assert!(s.delay_hours.p50.unwrap() > 0.0);
        assert!(s.files >= 1 && s.files_refused.is_empty());
        assert_eq!(
            s.patients.full_width_typed, 1,
            "typed full-width, normalised"
        );
        // The positive's keys: D-3 (day 2 - 3) is before installation, so
        // from day 0's UTC key (which starts the day before, 09:00 JST) to
        // the registration day.
        assert!(s.keys_per_registration.unwrap() >= 4.0);
    }
}

#[test]
fn twenty_minutes_at_4_m_is_neither_a_contact_nor_a_notification() {
    let s = two_people(20.0, 4.0, 1);
    assert_eq!(s.should_be_notified, 0);
    assert_eq!(s.notified, 0);
    assert_eq!(s.recall, None);
    assert_eq!(s.registrations, 1);
}

#[test]
fn ten_minutes_at_1_m_is_not_a_contact() {
    let s = two_people(10.0, 1.0, 1);
    assert_eq!((s.should_be_notified, s.notified), (0, 0));
}

#[test]
fn a_population_without_the_app_gets_no_notifications() {
    let config = SimConfig {
        people: 3_000,
        days: 7,
        seed: 3,
        adoption: 0.0,
        ..SimConfig::default()
    };
    let s = run(&config, &NoProgress).unwrap().summary;
    assert_eq!(s.population.app_users, 0);
    assert!(
        s.epidemic.new_infections > 0,
        "the epidemic runs regardless"
    );
    assert_eq!((s.registrations, s.notified, s.files), (0, 0, 0));
    assert_eq!(s.should_be_notified, 0);
    assert_eq!(s.recall, None);
    assert_eq!(s.bytes_per_phone_per_day.mean, 0.0);
}

fn busy(matching: Matching, threads: usize) -> SimConfig {
    let mut config = SimConfig {
        people: 400,
        days: 8,
        seed: 21,
        adoption: 0.6,
        registration_rate: 0.9,
        threads,
        matching,
        ..SimConfig::default()
    };
    config.epidemic.initial_infected_share = 0.03;
    config.server.pad_to = 40;
    config.server.pad_jitter = 10;
    config.sweep = Some("threshold=900,1800".parse().expect("a valid sweep"));
    config
}

#[test]
fn the_same_seed_gives_the_same_summary_on_any_number_of_threads() {
    let a = run(&busy(Matching::Inverted, 1), &NoProgress)
        .unwrap()
        .summary;
    let mut b = run(&busy(Matching::Inverted, 3), &NoProgress)
        .unwrap()
        .summary;
    b.config.threads = 1;
    assert_eq!(a, b);
    assert!(
        a.registrations > 0 && a.notified > 0,
        "{} registrations",
        a.registrations
    );
    let mut other = busy(Matching::Inverted, 1);
    other.seed = 22;
    let c = run(&other, &NoProgress).unwrap().summary;
    assert_ne!(a.population, c.population);
}

#[test]
fn inverted_matching_finds_exactly_what_every_phone_matching_every_key_finds() {
    let inverted = run(&busy(Matching::Inverted, 2), &NoProgress)
        .unwrap()
        .summary;
    let exhaustive = run(&busy(Matching::Exhaustive, 2), &NoProgress)
        .unwrap()
        .summary;
    assert!(inverted.notified > 0);
    assert_eq!(inverted.notified, exhaustive.notified);
    assert_eq!(inverted.true_positives, exhaustive.true_positives);
    assert_eq!(inverted.delay_hours, exhaustive.delay_hours);
    assert_eq!(inverted.sweep, exhaustive.sweep);
    assert_eq!(inverted.by_model_pair, exhaustive.by_model_pair);
    assert_eq!(inverted.phones.key_matches, exhaustive.phones.key_matches);
    assert!(exhaustive.phones.keys_matched > 10 * inverted.phones.keys_matched);
}

#[test]
fn a_sweep_trades_recall_for_precision() {
    let s = run(&busy(Matching::Inverted, 2), &NoProgress)
        .unwrap()
        .summary;
    assert_eq!(s.sweep.len(), 3);
    let (low, high) = (&s.sweep[1], &s.sweep[2]);
    assert_eq!((low.value, high.value), (900.0, 1800.0));
    assert!(low.notified >= s.notified && s.notified >= high.notified);
    assert_eq!(s.sweep[0].notified, s.notified);
}

/// The same city through the real servers over HTTP (issuer and key server
/// in process on a loopback port, SQLite, their own tokens, certificates,
/// batches, fake keys and signatures) gives the same registrations and the
/// same notifications as the in-process backend.
#[test]
fn the_real_servers_over_http_warn_the_same_people() {
    let config = SimConfig {
        people: 2_000,
        days: 10,
        seed: 5,
        registration_rate: 1.0,
        adoption: 0.6,
        threads: 1,
        ..SimConfig::default()
    };
    let world = simulator::World::generate(&config, &NoProgress);
    let local = run_world(&config, &world, &NoProgress).unwrap().summary;
    let mut http = simulator::backend::Http::start(&config, world.calendar).unwrap();
    let remote = simulator::run_with_backend(&config, &world, &mut http, &NoProgress)
        .unwrap()
        .summary;
    assert!(local.registrations > 0, "the city has registrations");
    assert_eq!(remote.registrations, local.registrations);
    assert_eq!(remote.should_be_notified, local.should_be_notified);
    assert_eq!(remote.notified, local.notified);
    assert_eq!(remote.true_positives, local.true_positives);
    assert_eq!(remote.recall, local.recall);
    assert!(remote.files >= 1 && remote.files_refused.is_empty());
    assert_eq!(
        remote.server.real_keys_exported, local.server.real_keys_exported,
        "every accepted key is exported once"
    );
}
