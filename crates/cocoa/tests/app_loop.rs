//! The phone against the real servers: `cocoa serve` (every role), a number
//! issued through the machine API and read from the outbox, registration
//! from one phone home with a full-width number, an export, and checks from
//! the other phone homes. The servers run on the system clock, so the phones
//! do too (set up six days ago with `--now`, then on the real time).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

fn cocoa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cocoa"));
    c.env_remove("COCOA_CONFIG").env("COCOA_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    cocoa().args(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

/// One HTTP/1.1 POST; returns (status, body).
fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[allow(clippy::disallowed_methods)] // the servers run on the system clock
fn system_now() -> DateTime<Utc> {
    Utc::now()
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Issues a number for a new case; returns (number, link) read from the outbox.
fn issue(addr: &str, admin: &str, outbox: &Path, n: u32) -> (String, String) {
    let case = json!({
        "name_kanji": "横口 健太",
        "name_kana": "ヨコグチ ケンタ",
        "birth_date": "1998-09-09",
        "sex": "male",
        "mobile": format!("090-1234-{:04}", 5000 + n),
        "outpatient_facility": "港区帰国者・接触者外来",
        "test_positive": true,
        "classification": "confirmed",
        "diagnosis_date": system_now().date_naive().to_string(),
        "reported": true,
        "uses_app": true
    });
    let (status, body) = post(addr, "/api/v1/cases", &[("X-API-Key", admin)], &case);
    assert_eq!(status, 201, "{body}");
    let id = body["case_id"].as_i64().unwrap();
    let before = std::fs::read_dir(outbox).map_or(0, |d| d.count());
    let (status, body) = post(
        addr,
        &format!("/api/v1/cases/{id}/processing-number"),
        &[("X-API-Key", admin), ("Idempotency-Key", &format!("k{n}"))],
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let mut files: Vec<_> = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), before + 1);
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let msg: Value =
        serde_json::from_str(&std::fs::read_to_string(files.last().unwrap()).unwrap()).unwrap();
    let text = msg["body"].as_str().unwrap();
    let number = text
        .lines()
        .find_map(|l| l.strip_prefix("処理番号: "))
        .unwrap()
        .trim()
        .to_owned();
    let link = text
        .lines()
        .find(|l| l.starts_with("https://"))
        .unwrap()
        .trim()
        .to_owned();
    (number, link)
}

fn full_width(digits: &str) -> String {
    digits
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap())
        .collect()
}

#[test]
fn register_export_and_notify_against_the_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let outbox = dir.path().join("outbox");
    ok_json(&[
        "issuer",
        "--data",
        data_s,
        "create-centre",
        "--name",
        "みなと保健所",
        "--prefecture",
        "13",
    ]);
    let device_key = ok_json(&[
        "issuer",
        "--data",
        data_s,
        "create-api-key",
        "--kind",
        "device",
    ])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = ok_json(&[
        "issuer",
        "--data",
        data_s,
        "create-api-key",
        "--kind",
        "admin",
        "--centre",
        "1",
    ])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut child = cocoa()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data_s,
            "--outbox",
        ])
        .arg(&outbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Server(child);
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let url = format!("http://{addr}");

    let now = system_now();
    let setup = rfc(now - Duration::days(6));
    // Two days ago, ending before UTC midnight (a meeting split across two
    // UTC days is two short contacts).
    let mut met = now - Duration::days(2);
    if met.time() >= chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap() {
        met -= Duration::hours(1);
    }
    let homes: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|h| dir.path().join(h))
        .collect();
    let home = |i: usize| homes[i].to_str().unwrap().to_owned();
    for i in 0..homes.len() {
        ok_json(&[
            "app",
            "--home",
            &home(i),
            "--now",
            &setup,
            "--json",
            "init",
            "--prefecture",
            "13",
            "--server",
            &url,
            "--api-key",
            &device_key,
        ]);
    }
    let meet = |x: usize, y: usize, at: DateTime<Utc>, minutes: &str, distance: &str| {
        ok_json(&[
            "app",
            "--home",
            &home(x),
            "--home",
            &home(y),
            "--json",
            "meet",
            "--at",
            &rfc(at),
            "--minutes",
            minutes,
            "--distance",
            distance,
        ])
    };
    meet(0, 1, met, "20", "1"); // notified
    meet(0, 2, met + Duration::hours(1), "10", "1"); // too short
    meet(0, 3, met + Duration::hours(2), "20", "4"); // too far
    meet(0, 4, now - Duration::days(5), "30", "1"); // before the window

    let (number, link) = issue(&addr, &admin, &outbox, 1);
    assert_eq!(number.len(), 8);
    assert!(link.contains("/cocoa/a/?pn="), "{link}");
    let today_jst = (now + Duration::hours(9)).date_naive().to_string();
    let reg = ok_json(&[
        "app",
        "--home",
        &home(0),
        "--json",
        "register",
        "--symptoms",
        "yes",
        "--date",
        &today_jst,
        "--number",
        &full_width(&number),
    ]);
    assert_eq!(reg["stage"], "published", "{reg}");
    assert!(reg["inserted"].as_u64().unwrap() >= 2, "{reg}");

    // The used number is refused, asking for a new one.
    let out = run(&[
        "app",
        "--home",
        &home(1),
        "register",
        "--symptoms",
        "no",
        "--date",
        &today_jst,
        "--number",
        &number,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("[code_invalid]") && e.contains("保健所に新しい処理番号"),
        "{e}"
    );

    ok(&[
        "keyserver",
        "--data",
        data_s,
        "export-now",
        "--min-age",
        "0s",
    ]);
    let pem = ok(&["keyserver", "--data", data_s, "export-public-key"]);
    let pem_file = dir.path().join("export.pem");
    std::fs::write(&pem_file, pem).unwrap();
    for i in 1..homes.len() {
        ok_json(&[
            "app",
            "--home",
            &home(i),
            "--json",
            "configure",
            "--export-public-key",
            pem_file.to_str().unwrap(),
        ]);
    }
    let check = |i: usize| ok_json(&["app", "--home", &home(i), "--json", "check"]);
    let b = check(1);
    assert_eq!(b["contacts"], 1, "{b}");
    assert_eq!(b["dates"], json!([met.date_naive().to_string()]));
    assert_eq!(b["consultation_centre"]["prefecture"], "13");
    assert!(b["last_checked"].is_string());
    assert!(b["check"]["refused"].as_array().unwrap().is_empty(), "{b}");
    for i in 2..homes.len() {
        let r = check(i);
        assert_eq!(r["contacts"], 0, "phone {i}: {r}");
    }
}
