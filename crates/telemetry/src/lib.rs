//! One Prometheus registry per process.
//!
//! The server crates count with the [`metrics`] macros (`counter!`,
//! `gauge!`) where the event happens; nothing builds Prometheus text by hand.
//! The first call of [`handle`] installs `metrics-exporter-prometheus`'s
//! recorder as the process's global recorder; every `/metrics` route renders
//! it with [`render`]. A process has one registry whatever roles it runs, so
//! `cocoa serve` with every role answers one exposition, each family once.
//!
//! Counters and gauges appear in the exposition once registered: each crate
//! registers its families at start-up (`register_*` functions next to the
//! code that counts), so a scrape before the first event shows them at 0.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The Content-Type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's registry, installed as the global `metrics` recorder on
/// first use.
///
/// If some other recorder was installed first (a test harness of its own),
/// the registry still exists but receives nothing; that is reported once on
/// stderr rather than silently.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            eprintln!("telemetry: another metrics recorder is installed; /metrics shows nothing");
        }
        handle
    })
}

/// The Prometheus text exposition of every metric of this process.
pub fn render() -> String {
    handle().render()
}

/// Installs the registry (if not yet) so that counts made from now on are
/// kept; call it before the first event of a process.
pub fn install() {
    let _ = handle();
}

/// The value of one series (`name` or `name{label="value",…}`, written as
/// the exposition writes it) in a Prometheus text exposition, if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// The current value of one series of this process's registry (tests read
/// deltas with it: the registry is the process's, shared by every server
/// it runs).
pub fn current(series: &str) -> Option<f64> {
    sample(&render(), series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_made_with_the_macros_are_rendered_once_each() {
        install();
        metrics::describe_counter!("telemetry_test_events_total", "Events of the test.");
        metrics::counter!("telemetry_test_events_total", "kind" => "a").increment(2);
        metrics::counter!("telemetry_test_events_total", "kind" => "a").increment(1);
        metrics::gauge!("telemetry_test_level").set(1.5);
        let text = render();
        assert_eq!(
            text.matches("# TYPE telemetry_test_events_total counter")
                .count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("# HELP telemetry_test_events_total Events of the test."),
            "{text}"
        );
        assert!(
            text.contains("telemetry_test_events_total{kind=\"a\"} 3"),
            "{text}"
        );
        assert!(text.contains("telemetry_test_level 1.5"), "{text}");
        assert_eq!(
            sample(&text, "telemetry_test_events_total{kind=\"a\"}"),
            Some(3.0)
        );
        assert_eq!(current("telemetry_test_level"), Some(1.5));
        assert_eq!(sample(&text, "telemetry_test_missing"), None);
    }
}
