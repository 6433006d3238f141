//! A population of phones meeting, falling ill and registering, run on the
//! real protocol code, measuring whether the system warns the people it
//! should; and the production canary ([`canary`]), which runs the seed's
//! whole flow against a live deployment.
//!
//! A run ([`run`]) goes through:
//!
//! 1. [`world`]: the people ([`population`]), each day's encounters
//!    ([`mixing`], [`encounters`]) and the infections they pass on
//!    ([`illness`]) — the physical truth, independent of any app.
//! 2. [`registration`]: positive results, processing numbers, patients
//!    typing them, phones picking the keys of the seed's window and
//!    registering, the exporter publishing signed files — against a
//!    [`backend::Backend`] (in process: the issuer's and key server's own
//!    functions).
//! 3. [`fleet`]: the phones download and check the files, hear each other
//!    through the [`radio`] model, match and score with en-protocol's
//!    matcher and ENv2 scoring and the device's rules
//!    ([`device_adapter`]), and notify.
//! 4. [`truth`] and [`summary`]: who should have been warned (≥ 15 minutes
//!    within 1 m of a registered positive during the seed's window), recall,
//!    precision, delays, downloads, work; [`report`] draws it.
//!
//! Every draw comes from the seed ([`rng`]), so the same seed gives the same
//! summary, on any number of threads. docs/simulator.md explains the models
//! and the numbers they give.
#![forbid(unsafe_code)]

pub mod backend;
pub mod canary;
pub mod compare;
pub mod config;
pub mod device_adapter;
pub mod encounters;
pub mod fleet;
pub mod illness;
pub mod mixing;
pub mod phones;
pub mod population;
pub mod progress;
pub mod radio;
pub mod radio_model;
pub mod registration;
pub mod report;
pub mod rng;
pub mod scoring;
pub mod summary;
pub mod time;
pub mod trial;
pub mod truth;
pub mod world;

use std::time::Instant;

use serde::Serialize;

pub use backend::{Backend, InProcess};
pub use config::{Matching, SimConfig, Sweep, SweepParameter};
pub use progress::{NoProgress, Progress};
pub use summary::Summary;
pub use world::{Scenario, World};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot run.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A server failed.
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
}

/// How long each phase took (not part of the summary: it varies).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Phase name and seconds, in order.
    pub phases: Vec<(String, f64)>,
    /// Bytes held by the encounter log.
    pub encounter_log_bytes: u64,
    /// Worker threads.
    pub threads: usize,
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The numbers.
    pub summary: Summary,
    /// The time they took.
    pub timings: Timings,
}

/// Runs the simulation `config` describes, in process.
pub fn run(config: &SimConfig, progress: &dyn Progress) -> Result<Outcome, SimError> {
    config.validate()?;
    let started = Instant::now();
    let world = World::generate(config, progress);
    let generated = started.elapsed().as_secs_f64();
    let mut outcome = run_world(config, &world, progress)?;
    outcome
        .timings
        .phases
        .insert(0, ("world".to_owned(), generated));
    Ok(outcome)
}

/// Runs the simulation `config` describes against the real servers over
/// HTTP ([`backend::Http`]: issuer and key server on a loopback port, SQLite,
/// a clock the simulation moves). For small N.
pub fn run_over_http(config: &SimConfig, progress: &dyn Progress) -> Result<Outcome, SimError> {
    config.validate()?;
    let started = Instant::now();
    let world = World::generate(config, progress);
    let generated = started.elapsed().as_secs_f64();
    let mut backend = backend::Http::start(config, world.calendar)?;
    let mut outcome = run_with_backend(config, &world, &mut backend, progress)?;
    outcome
        .timings
        .phases
        .insert(0, ("world".to_owned(), generated));
    Ok(outcome)
}

/// Runs registrations, exports, phones and the analysis on a given world
/// (generated, or a [`Scenario`]), with the in-process backend.
pub fn run_world(
    config: &SimConfig,
    world: &World,
    progress: &dyn Progress,
) -> Result<Outcome, SimError> {
    config.validate()?;
    let mut backend = InProcess::new(config, world.calendar);
    run_with_backend(config, world, &mut backend, progress)
}

/// Runs a world against any backend.
pub fn run_with_backend(
    config: &SimConfig,
    world: &World,
    backend: &mut dyn Backend,
    progress: &dyn Progress,
) -> Result<Outcome, SimError> {
    let mut timings = Timings {
        threads: config.worker_threads(),
        encounter_log_bytes: world.encounters.memory_bytes() as u64,
        ..Timings::default()
    };
    let clock = Instant::now();
    let timeline = registration::run_timeline(world, config, backend, progress)?;
    timings.phases.push((
        "registrations and exports".to_owned(),
        clock.elapsed().as_secs_f64(),
    ));
    let fleet = fleet::run_fleet(
        world,
        config,
        backend.files(),
        &backend.verification_keys(),
        backend.region(),
        progress,
    );
    timings.phases.extend(fleet.timings.iter().cloned());
    let clock = Instant::now();
    let truth = truth::ground_truth(world, config, &timeline.registrations);
    let summary = summary::summarise(
        world,
        config,
        &timeline,
        &truth,
        &fleet,
        backend.files(),
        backend.work(),
    );
    timings
        .phases
        .push(("analysis".to_owned(), clock.elapsed().as_secs_f64()));
    Ok(Outcome { summary, timings })
}
