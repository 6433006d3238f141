//! `cocoa keyserver publish-config` and `cocoa keyserver configs`: valid documents are
//! published as the next version; nonsense is refused with a stable code, Japanese and
//! English, exit 2, and nothing is published (the version count is unchanged).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

mod support;
use support::{cocoa, json_of};

fn run(args: &[&str]) -> Output {
    cocoa().args(args).output().unwrap()
}

fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../en-protocol/tests/vectors/cocoa")
        .join(name)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn publish_config_keeps_every_version_and_publishes_no_nonsense() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let config = vector("configuration.json");
    let risk = vector("risk_calculation_configuration.json");
    let (c, r) = (config.to_str().unwrap(), risk.to_str().unwrap());
    let report = write(dir.path(), "report.html", "<html>compare</html>");
    let first = json_of(&run(&[
        "keyserver",
        "publish-config",
        "--create-data",
        "--data",
        d,
        "--configuration",
        c,
        "--risk",
        r,
        "--simulation-report",
        &report,
        "--published-by",
        "alice",
    ]));
    assert_eq!(first["version"], 1);
    assert_eq!(first["simulation_report"], true);

    let risk_text = std::fs::read_to_string(&risk).unwrap();
    let config_text = std::fs::read_to_string(&config).unwrap();
    let cases = [
        (
            "bad_op.json",
            risk_text.replacen("\">=\"", "\"=~\"", 1),
            false,
            "RISK_CONFIG_PARSE",
        ),
        (
            "bad_version.json",
            risk_text.replace("\"format_version\": 1", "\"format_version\": 2"),
            false,
            "RISK_CONFIG_VERSION",
        ),
        (
            "truncated.json",
            risk_text[..risk_text.len() / 2].to_owned(),
            false,
            "RISK_CONFIG_PARSE",
        ),
        (
            "weights.json",
            config_text.replacen("2.5", "3.5", 1),
            true,
            "EXPOSURE_CONFIG_WEIGHT",
        ),
        (
            "order.json",
            config_text.replacen("46,", "61,", 1),
            true,
            "EXPOSURE_CONFIG_THRESHOLDS",
        ),
    ];
    for (name, text, is_config, code) in cases {
        let bad = write(dir.path(), name, &text);
        let (c2, r2) = if is_config {
            (bad.as_str(), r)
        } else {
            (c, bad.as_str())
        };
        let out = run(&[
            "keyserver",
            "publish-config",
            "--data",
            d,
            "--configuration",
            c2,
            "--risk",
            r2,
            "--published-by",
            "mallory",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(code), "{name}: {code} in {stderr}");
        assert!(
            stderr
                .chars()
                .any(|ch| ('\u{3040}'..='\u{30ff}').contains(&ch)),
            "{name}: Japanese in {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    let listed = json_of(&run(&["keyserver", "configs", "--data", d]));
    let list = listed.as_array().unwrap();
    assert_eq!(list.len(), 1, "nothing was published: {listed}");
    assert_eq!(list[0]["published_by"], "alice");
    assert_eq!(list[0]["simulation_report_bytes"], 20);

    let second = json_of(&run(&[
        "keyserver",
        "publish-config",
        "--data",
        d,
        "--configuration",
        c,
        "--risk",
        r,
        "--published-by",
        "bob",
    ]));
    assert_eq!(second["version"], 2);
    let listed = json_of(&run(&["keyserver", "configs", "--data", d]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
}
