//! Fuzzing of every parser that takes input from outside the process, as
//! property tests with many generated and mutated inputs (`tests/`), run
//! under a capped global allocator so that an input that makes a parser
//! allocate without bound aborts the run instead of passing.
//!
//! CI runs a short pass (`PROPTEST_CASES` unset: the defaults in the tests);
//! a longer run: `PROPTEST_CASES=200000 cargo test --release -p cocoa-fuzz`
//! (docs/production.md, "Fuzzing").
#![forbid(unsafe_code)]
