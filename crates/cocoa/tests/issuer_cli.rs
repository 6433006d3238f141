//! `cocoa issuer …` and `cocoa serve --role issuer` as a script uses them:
//! create a centre and keys, start the server on port 0, file a case, issue
//! a number, find it in the outbox, and register with it.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Stdio;

mod support;
use support::{Server, cocoa, cocoa_json};

fn json_out(args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> serde_json::Value {
    let mut cmd = cocoa();
    cmd.args(args).arg("--data").arg(dir.join("data"));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `cocoa issuer create-centre` of みなと保健所 (Tokyo) in a new data folder; its id.
fn create_centre(dir: &std::path::Path) -> i64 {
    let args = [
        "issuer",
        "create-centre",
        "--create-data",
        "--name",
        "みなと保健所",
        "--prefecture",
        "13",
    ];
    json_out(&args, dir, None)["centre_id"].as_i64().unwrap()
}

/// One HTTP/1.1 request; returns (status, body).
/// One POST with a JSON body; (status, the answer as JSON or `Null`).
fn http(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, serde_json::Value) {
    let (status, body) = support::http(addr, "POST", path, headers, body.as_bytes());
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn management_commands_and_serve_work_together() {
    let dir = tempfile::tempdir().unwrap();
    let centre_id = create_centre(dir.path());
    let user = json_out(
        &[
            "issuer",
            "create-user",
            "--centre",
            &centre_id.to_string(),
            "--login",
            "yamada",
            "--role",
            "staff",
        ],
        dir.path(),
        Some("correct horse battery staple\n"),
    );
    assert_eq!(user["login"], "yamada");
    let device = json_out(
        &["issuer", "create-api-key", "--kind", "device"],
        dir.path(),
        None,
    )["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = json_out(
        &[
            "issuer",
            "create-api-key",
            "--kind",
            "admin",
            "--centre",
            &centre_id.to_string(),
        ],
        dir.path(),
        None,
    )["api_key"]
        .as_str()
        .unwrap()
        .to_owned();

    let pem = cocoa()
        .args(["issuer", "public-key", "--data"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let pem = String::from_utf8(pem.stdout).unwrap();
    assert!(pem.contains("-----BEGIN PUBLIC KEY-----"), "{pem}");

    let outbox = dir.path().join("outbox");
    let mut serve = cocoa();
    serve
        .args([
            "serve",
            "--role",
            "issuer",
            "--listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .arg("--outbox")
        .arg(&outbox);
    let server = Server::listen("issuer", serve);
    let addr = server.addr.to_string();

    let case = serde_json::json!({
        "name_kanji": "横口 健太", "name_kana": "ヨコグチ ケンタ", "birth_date": "1998-09-09",
        "sex": "male", "mobile": "090-1234-5678", "outpatient_facility": "港区帰国者・接触者外来",
        "test_positive": true, "classification": "confirmed", "diagnosis_date": "2020-12-15",
        "reported": true, "uses_app": true
    });
    let (s, b) = http(
        &addr,
        "/api/v1/cases",
        &[("X-API-Key", &admin)],
        &case.to_string(),
    );
    assert_eq!(s, 201, "{b}");
    let case_id = b["case_id"].as_i64().unwrap();
    let (s, b) = http(
        &addr,
        &format!("/api/v1/cases/{case_id}/processing-number"),
        &[("X-API-Key", &admin), ("Idempotency-Key", "cli-1")],
        "",
    );
    assert_eq!((s, b["status"].as_str()), (200, Some("sent")), "{b}");

    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let msg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let body = msg["body"].as_str().unwrap();
    let number = &body.split("処理番号: ").nth(1).unwrap()[..8];

    let (s, b) = http(
        &addr,
        "/api/verify",
        &[("X-API-Key", &device)],
        &serde_json::json!({"code": number}).to_string(),
    );
    assert_eq!(s, 200, "{b}");
    let token = b["token"].as_str().unwrap();
    let hmac = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
    let (s, b) = http(
        &addr,
        "/api/certificate",
        &[("X-API-Key", &device)],
        &serde_json::json!({"token": token, "ekeyhmac": hmac}).to_string(),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["certificate"].as_str().unwrap().split('.').count(), 3);
}

#[test]
fn bad_management_input_exits_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = cocoa()
        .args([
            "issuer",
            "create-centre",
            "--name",
            "x",
            "--prefecture",
            "48",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cocoa()
        .args([
            "serve",
            "--role",
            "issuer",
            "--listen",
            "127.0.0.1:0",
            "--data",
        ])
        // A folder `serve` creates (0700): the temporary folder itself is
        // 0755, which `serve` refuses (issue 12, finding 1).
        .arg(dir.path().join("data"))
        .env("COCOA_ISSUER_DATABASE_URL", "mysql://localhost/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unsupported database URL scheme"),
        "{stderr}"
    );
}

/// `cocoa issuer api-keys` lists the keys (never the key itself) and
/// `revoke-api-key` ends one; revoking it again, or an id that does not
/// exist, exits with status 2 and changes nothing.
#[test]
fn api_keys_are_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let centre = create_centre(dir.path());
    let key = |args: &[&str]| {
        json_out(args, dir.path(), None)["api_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let device = key(&["issuer", "create-api-key", "--kind", "device"]);
    let admin = key(&[
        "issuer",
        "create-api-key",
        "--kind",
        "admin",
        "--centre",
        &centre.to_string(),
    ]);
    let list = |centre: Option<i64>| -> Vec<serde_json::Value> {
        let mut cmd = cocoa();
        cmd.args(["issuer", "api-keys", "--data"])
            .arg(dir.path().join("data"));
        if let Some(c) = centre {
            cmd.args(["--centre", &c.to_string()]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains(&device) && !text.contains(&admin), "{text}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = list(None);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["kind"], "device");
    assert_eq!(all[1]["kind"], "admin");
    assert_eq!(all[1]["centre_id"], centre);
    assert!(all.iter().all(|k| k["revoked_at"].is_null()));
    let of_centre = list(Some(centre));
    assert_eq!(of_centre.len(), 1);
    let id = of_centre[0]["id"].as_i64().unwrap();

    let revoked = json_out(
        &["issuer", "revoke-api-key", "--id", &id.to_string()],
        dir.path(),
        None,
    );
    assert_eq!(revoked["revoked"], id);
    let after = list(None);
    assert!(after[1]["revoked_at"].is_i64(), "{after:?}");
    assert!(after[0]["revoked_at"].is_null(), "the other key stays");

    for bad in [id.to_string(), "987654".to_owned()] {
        let out = cocoa()
            .args(["issuer", "revoke-api-key", "--id", &bad, "--data"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--id {bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no live API key"), "{stderr}");
    }
    assert_eq!(list(None), after, "nothing changed");
}

/// `cocoa bench case-list` and `cocoa bench send-queue` (issue 13) run on a
/// fresh SQLite file: the pages show the rows their filter must (a third
/// of the cases registered, 50 a page), every queued message is sent once,
/// and an empty size is refused with exit code 2. (The numbers are for the
/// README; this checks what they measure, not how fast.)
#[test]
fn bench_case_list_and_send_queue_measure_what_they_say() {
    let v = cocoa_json(&["bench", "case-list", "--cases", "300", "--requests", "3"]);
    assert_eq!(
        (v["backend"].as_str(), v["cases"].as_u64()),
        (Some("sqlite"), Some(300))
    );
    let rows: Vec<(String, u64)> = v["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("/portal/cases".to_owned(), 50),
            ("/portal/cases?state=used".to_owned(), 50),
            // 200 cases without a number: page 4 holds the 151st to the 200th.
            ("/portal/cases?state=none&page=4".to_owned(), 50),
            ("/portal/cases?state=pending".to_owned(), 0),
        ]
    );
    for p in v["pages"].as_array().unwrap() {
        assert!(p["p50_ms"].as_f64().unwrap() <= p["max_ms"].as_f64().unwrap());
    }

    let v = cocoa_json(&["bench", "send-queue", "--messages", "40"]);
    assert_eq!(
        (v["messages"].as_u64(), v["sent"].as_u64()),
        (Some(40), Some(40))
    );
    assert!(v["messages_per_sec"].as_f64().unwrap() > 0.0);

    for args in [
        ["bench", "case-list", "--cases", "0"],
        ["bench", "send-queue", "--messages", "0"],
    ] {
        let out = cocoa().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("1以上"));
    }

    // A database that has cases, or that cannot be opened, is refused.
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.sqlite3").display()
    );
    cocoa_json(&["bench", "send-queue", "--messages", "5", "--database", &url]);
    for (db, says) in [
        (url.as_str(), "empty issuer database"),
        ("mysql://localhost/cocoa", "cannot open --database"),
    ] {
        let out = cocoa()
            .args(["bench", "case-list", "--cases", "5", "--database", db])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{db}: {stderr}");
        assert!(stderr.contains(says), "{db}: {stderr}");
    }
}
