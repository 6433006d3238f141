//! The phone against the real servers, on SQLite and on PostgreSQL: the
//! real `cocoa` binary (no in-process shortcuts) runs `cocoa serve` (every
//! role), a number is issued through the machine API and read from the
//! outbox, one phone home registers with a full-width number, an export
//! runs, and the other phone homes check. The servers run on the system
//! clock, so the phones do too (set up six days ago with `--now`, then on
//! the real time); the expired number is issued by a server started with
//! `--now` 25 hours ago.
//!
//! Checked: the contact in the window is notified with its date and the
//! consultation centre; a contact before the window, a 10-minute contact at
//! 1 m and a 20-minute contact at 4 m are not (COCOA's thresholds); a
//! full-width number works; an expired number and a used number are refused
//! with their messages; reissue after use is refused, reissue after expiry
//! is not.
//!
//! PostgreSQL runs when `COCOA_TEST_DATABASE_URL` is set (scripts/with-postgres;
//! one fresh database per role and test); under `CI` its absence fails.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

mod support;
use support::Server;

/// Where the servers keep their state: environment for every `cocoa` run.
struct Backend {
    label: &'static str,
    env: Vec<(&'static str, String)>,
}

const DB_VARS: [&str; 2] = ["COCOA_ISSUER_DATABASE_URL", "COCOA_KEYSERVER_DATABASE_URL"];

impl Backend {
    fn sqlite() -> Self {
        Self {
            label: "sqlite",
            env: Vec::new(),
        }
    }

    /// Two fresh PostgreSQL databases (issuer, key server: they share none),
    /// or `None` (a skip) outside CI when the test script gave no server.
    fn postgres() -> Option<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let urls = rt.block_on(async {
            let issuer = support::fresh_postgres("cocoa_loop_issuer").await?;
            let keyserver = support::fresh_postgres("cocoa_loop_keyserver").await?;
            Some(vec![issuer, keyserver])
        })?;
        Some(Self {
            label: "postgres",
            env: DB_VARS.iter().copied().zip(urls).collect(),
        })
    }

    fn cocoa(&self) -> Command {
        let mut c = support::cocoa();
        c.env("COCOA_LOG", "warn");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cocoa().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}: {args:?}: {}",
            self.label,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// Starts `cocoa serve` (with `extra` flags); returns it and its address.
    fn serve(&self, data: &Path, outbox: &Path, extra: &[&str]) -> (Server, String) {
        let mut cmd = self.cocoa();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--outbox")
            .arg(outbox)
            .args(extra);
        let server = Server::listen(self.label, cmd);
        let addr = server.addr.to_string();
        (server, addr)
    }
}

/// One HTTP/1.1 POST; returns (status, body).
fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    support::http_json(addr, "POST", path, headers, body)
}

#[allow(clippy::disallowed_methods)] // the servers run on the system clock
fn system_now() -> DateTime<Utc> {
    Utc::now()
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Reports a new confirmed case through the machine API; returns its id.
fn create_case(addr: &str, admin: &str, n: u32, diagnosed: &str) -> i64 {
    let case = json!({
        "name_kanji": "横口 健太",
        "name_kana": "ヨコグチ ケンタ",
        "birth_date": "1998-09-09",
        "sex": "male",
        "mobile": format!("090-1234-{:04}", 5000 + n),
        "outpatient_facility": "港区帰国者・接触者外来",
        "test_positive": true,
        "classification": "confirmed",
        "diagnosis_date": diagnosed,
        "reported": true,
        "uses_app": true
    });
    let (status, body) = post(addr, "/api/v1/cases", &[("X-API-Key", admin)], &case);
    assert_eq!(status, 201, "{body}");
    body["case_id"].as_i64().unwrap()
}

/// Presses 「処理番号発行」 through the machine API; returns the answer.
fn press_issue(addr: &str, admin: &str, case: i64, idem: &str) -> (u16, Value) {
    post(
        addr,
        &format!("/api/v1/cases/{case}/processing-number"),
        &[("X-API-Key", admin), ("Idempotency-Key", idem)],
        &json!({}),
    )
}

/// Issues a number for `case`; returns (number, link) read from the outbox.
fn issue(addr: &str, admin: &str, outbox: &Path, case: i64, idem: &str) -> (String, String) {
    let before = std::fs::read_dir(outbox).map_or(0, |d| d.count());
    let (status, body) = press_issue(addr, admin, case, idem);
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
fn the_loop_on_sqlite() {
    the_loop(&Backend::sqlite());
}

#[test]
fn the_loop_on_postgres() {
    if let Some(b) = Backend::postgres() {
        the_loop(&b);
    }
}

fn the_loop(be: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let outbox = dir.path().join("outbox");
    be.ok_json(&[
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
    let device_key = be.ok_json(&[
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
    let admin = be.ok_json(&[
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

    let now = system_now();
    let diagnosed = (now - Duration::days(3)).date_naive().to_string();

    // Yesterday's server issues a number valid 24 h: expired by now.
    let expired_case;
    let expired_number;
    {
        let (_server, addr) = be.serve(&data, &outbox, &["--now", &rfc(now - Duration::hours(25))]);
        expired_case = create_case(&addr, &admin, 2, &diagnosed);
        expired_number = issue(&addr, &admin, &outbox, expired_case, "expired-1").0;
    }

    let (_server, addr) = be.serve(&data, &outbox, &[]);
    let url = format!("http://{addr}");

    let setup = rfc(now - Duration::days(6));
    // Two days ago, well clear of midnight in Japan (contacts are dated by
    // Japan's calendar: a meeting split across 00:00 JST is two short
    // contacts on two days).
    let mut met = now - Duration::days(2);
    let jst_time = (met + Duration::hours(9)).time();
    if jst_time >= chrono::NaiveTime::from_hms_opt(22, 30, 0).unwrap()
        || jst_time < chrono::NaiveTime::from_hms_opt(1, 0, 0).unwrap()
    {
        met -= Duration::hours(3);
    }
    // And clear of UTC midnight, as before: the `dates` assertion below
    // compares with met's UTC date.
    if met.time() >= chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap() {
        met -= Duration::hours(1);
    }
    let homes: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|h| dir.path().join(h))
        .collect();
    let home = |i: usize| homes[i].to_str().unwrap().to_owned();
    for i in 0..homes.len() {
        be.ok_json(&[
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
        be.ok_json(&[
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

    let today_jst = (now + Duration::hours(9)).date_naive().to_string();
    let refused = |i: usize, number: &str| {
        let out = be.run(&[
            "app",
            "--home",
            &home(i),
            "register",
            "--symptoms",
            "no",
            "--date",
            &today_jst,
            "--number",
            number,
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", be.label);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // The expired number is refused, asking for a new one.
    let e = refused(2, &expired_number);
    assert!(
        e.contains("[code_expired]") && e.contains("有効期限が切れています"),
        "{}: {e}",
        be.label
    );
    // An expired number may be reissued (and the new one is sent).
    let (reissued, _) = issue(&addr, &admin, &outbox, expired_case, "expired-2");
    assert_ne!(reissued, expired_number);

    let case = create_case(&addr, &admin, 1, &diagnosed);
    let (number, link) = issue(&addr, &admin, &outbox, case, "k1");
    assert_eq!(number.len(), 8);
    assert!(link.contains("/cocoa/a/?pn="), "{link}");
    let reg = be.ok_json(&[
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
    assert_eq!(reg["stage"], "published", "{}: {reg}", be.label);
    assert!(reg["inserted"].as_u64().unwrap() >= 2, "{reg}");

    // The used number is refused, asking for a new one.
    let e = refused(1, &number);
    assert!(
        e.contains("[code_invalid]") && e.contains("保健所に新しい処理番号"),
        "{}: {e}",
        be.label
    );
    // After a successful registration the number cannot be reissued.
    let (status, body) = press_issue(&addr, &admin, case, "k2");
    assert_eq!(status, 409, "{}: {body}", be.label);
    assert_eq!(body["errorCode"], "already_registered", "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("再発行できません"),
        "{body}"
    );

    be.ok(&[
        "keyserver",
        "--data",
        data_s,
        "export-now",
        "--min-age",
        "0s",
    ]);
    let pem = be.ok(&["keyserver", "--data", data_s, "export-public-key"]);
    let pem_file = dir.path().join("export.pem");
    std::fs::write(&pem_file, pem).unwrap();
    for i in 1..homes.len() {
        be.ok_json(&[
            "app",
            "--home",
            &home(i),
            "--json",
            "configure",
            "--export-public-key",
            pem_file.to_str().unwrap(),
        ]);
    }
    let check = |i: usize| be.ok_json(&["app", "--home", &home(i), "--json", "check"]);
    let b = check(1);
    assert_eq!(b["contacts"], 1, "{}: {b}", be.label);
    // Japan's calendar date of the meeting (from 15:00 UTC it is not met's UTC date).
    let met_jst = (met + Duration::hours(9)).date_naive();
    assert_eq!(b["dates"], json!([met_jst.to_string()]));
    assert_eq!(b["consultation_centre"]["prefecture"], "13");
    assert!(b["last_checked"].is_string());
    assert!(b["check"]["failed"].as_array().unwrap().is_empty(), "{b}");
    assert!(b["check"]["files_new"].as_u64().unwrap() >= 1, "{b}");
    for i in 2..homes.len() {
        let r = check(i);
        assert_eq!(r["contacts"], 0, "{}: phone {i}: {r}", be.label);
        assert!(r["check"]["files_new"].as_u64().unwrap() >= 1, "{r}");
    }
}
