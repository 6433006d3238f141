//! What every fuzz target shares: the capped allocator's checks, the number
//! of cases, and a time bound per input.
#![allow(dead_code)]

use std::alloc::System;
use std::time::{Duration, Instant};

use cap::Cap;
use proptest::test_runner::Config;

/// The most any fuzz binary may hold at once. An input that makes a parser
/// allocate without bound (a length field of 2^60, a zip bomb) hits this
/// and aborts the run instead of passing.
pub const ALLOCATION_LIMIT: usize = 1 << 30;

/// The process's allocator, counting and capped.
#[global_allocator]
pub static ALLOC: Cap<System> = Cap::new(System, ALLOCATION_LIMIT);

/// Fails when the process ever held more than `bytes` at once.
pub fn assert_peak_below(bytes: usize) {
    let peak = ALLOC.max_allocated();
    assert!(
        peak < bytes,
        "peak allocation {peak} bytes, over the bound of {bytes}"
    );
}

/// Cases per target: `PROPTEST_CASES` when set (long runs), else `default`
/// (the short pass CI runs).
pub fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Longest one input may take (debug build, a loaded 2-core machine): a
/// parser that loops or goes quadratic on some input fails here.
pub const MAX_SECONDS_PER_INPUT: Duration = Duration::from_secs(2);

/// Runs `f` on one input and fails when it takes too long.
pub fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    let took = t.elapsed();
    assert!(
        took <= MAX_SECONDS_PER_INPUT,
        "{what} took {took:?} on one input"
    );
    out
}
