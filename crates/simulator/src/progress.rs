//! How a run reports its progress: the library names phases and counts
//! steps; the command line draws the bar.

/// Receives progress. Called from worker threads too.
pub trait Progress: Sync {
    /// A new phase of `total` steps begins.
    fn phase(&self, name: &str, total: u64);
    /// `n` more steps of the current phase are done.
    fn inc(&self, n: u64);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _name: &str, _total: u64) {}
    fn inc(&self, _n: u64) {}
}
