//! `cocoa canary --once` against a real `cocoa serve` (issue 6): the whole
//! flow — canary case, number through the canary channel, two synthetic
//! phones, registration, export of the canary region, notification with the
//! right date — and that nothing of it reaches the region real phones
//! download. A canary with the wrong export key must fail, with a non-zero
//! exit.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod support;
use support::{Server, cocoa, free_port, get, ok_json};

fn canary(url: &str, admin: &str, device: &str, pem: &Path, port: u16, token: &str) -> Output {
    cocoa()
        .args([
            "canary",
            "--once",
            "--issuer",
            url,
            "--keyserver",
            url,
            "--admin-api-key",
            admin,
            "--device-api-key",
            device,
            "--export-public-key",
        ])
        .arg(pem)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--account-sid",
            "canary",
            "--receiver-token",
            token,
            "--poll",
            "1s",
            "--export-timeout",
            "90s",
            "--delivery-timeout",
            "20s",
        ])
        .output()
        .unwrap()
}

#[test]
fn the_canary_goes_from_issuance_to_notification_in_its_own_region() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    ok_json(&[
        "issuer",
        "--data",
        data_s,
        "create-centre",
        "--create-data",
        "--name",
        "みなと保健所",
        "--prefecture",
        "13",
    ]);
    let key = |kind: &str, centre: Option<&str>| {
        let mut args = vec!["issuer", "--data", data_s, "create-api-key", "--kind", kind];
        if let Some(c) = centre {
            args.extend(["--centre", c]);
        }
        ok_json(&args)["api_key"].as_str().unwrap().to_owned()
    };
    let device = key("device", None);
    let admin = key("admin", Some("1"));

    let port = free_port();
    let token = "canary-receiver-token";
    let config = dir.path().join("cocoa.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[issuer.canary.gateway]
base_url = "http://127.0.0.1:{port}"
account_sid = "canary"
auth_token = "{token}"
from = "cocoa"

[keyserver.export]
interval = "1s"

[[keyserver.export.regions]]
name = "canary"
batch_period = "2s"
min_age = "0s"
"#
        ),
    )
    .unwrap();
    let mut serve = cocoa();
    serve
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data_s,
            "--config",
        ])
        .arg(&config);
    let server = Server::listen("serve", serve);
    let url = server.base.clone();

    let pem_out = cocoa()
        .args(["keyserver", "--data", data_s, "export-public-key"])
        .output()
        .unwrap();
    assert!(pem_out.status.success());
    let pem = dir.path().join("export.pem");
    std::fs::write(&pem, &pem_out.stdout).unwrap();

    let out = canary(&url, &admin, &device, &pem, port, token);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["case", "issue", "delivery", "meet", "register", "notify"]
    );
    assert_eq!(
        report["notified_dates"],
        serde_json::json!([report["expected_date"]])
    );
    assert!(
        report["registration_to_notification_seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // Real phones read the main region: nothing of the canary is there.
    let (status, list) = get(&format!("{url}/exports/440/list.json"));
    assert!(
        status == 404 || list.trim() == "[]",
        "main region: {status} {list}"
    );
    let (status, index) = get(&format!("{url}/exports/index.txt"));
    assert!(
        status == 404 || index.trim().is_empty(),
        "main index: {status} {index}"
    );
    let (status, canary_index) = get(&format!("{url}/exports/canary/index.txt"));
    assert_eq!(status, 200);
    assert!(canary_index.lines().count() >= 1, "{canary_index}");

    // A canary that trusts the wrong export key fails, and says where.
    let wrong = dir.path().join("wrong.pem");
    let keygen = cocoa()
        .args(["en", "keygen", "--out"])
        .arg(dir.path().join("wrong-private.pem"))
        .arg("--public-out")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let out = canary(&url, &admin, &device, &wrong, port, token);
    assert!(!out.status.success(), "a failed run exits non-zero");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let failed = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ok"] == false)
        .unwrap()
        .clone();
    assert_eq!(failed["step"], "notify", "{report}");
    assert!(
        failed["detail"].as_str().unwrap().contains("refused"),
        "{failed}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("canary failed at step notify"));
}

#[test]
fn bad_canary_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("public.pem");
    let keygen = cocoa()
        .args(["en", "keygen", "--out"])
        .arg(dir.path().join("private.pem"))
        .arg("--public-out")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    let (pem, garbage) = (pem.to_str().unwrap(), garbage.to_str().unwrap());
    // A valid command line, flag by flag; each case changes (Some) or
    // removes (None) one flag.
    let good = [
        ("--issuer", "http://127.0.0.1:1"),
        ("--keyserver", "http://127.0.0.1:1"),
        ("--admin-api-key", "admin_x"),
        ("--receiver-token", "t"),
        ("--export-public-key", pem),
    ];
    let cases: [(&str, Option<&str>, &str); 8] = [
        ("--region", Some("440"), "region of its own"),
        ("--admin-api-key", None, "--admin-api-key"),
        ("--receiver-token", None, "--receiver-token"),
        ("--issuer", Some("not a url"), "--issuer"),
        ("--keyserver", Some("ftp://x/"), "--keyserver"),
        (
            "--export-public-key",
            Some("/nonexistent.pem"),
            "nonexistent",
        ),
        ("--export-public-key", Some(garbage), "error"),
        ("--interval", Some("5x"), "interval"),
    ];
    for (flag, value, says) in cases {
        let mut args = vec!["canary", "--once"];
        for (f, v) in good.iter().filter(|(f, _)| *f != flag) {
            args.extend([*f, *v]);
        }
        if let Some(v) = value {
            args.extend([flag, v]);
        }
        let out = cocoa()
            .env_remove("COCOA_CANARY_ADMIN_API_KEY")
            .env_remove("COCOA_CANARY_RECEIVER_TOKEN")
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value:?}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value:?}: {stderr}");
    }
}
