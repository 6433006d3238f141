//! Operating `cocoa serve` as a production process: `/healthz`, `/readyz`
//! and `/metrics` on every role, JSON logs without client addresses or
//! processing numbers, graceful shutdown on SIGTERM, TLS termination.
//! Each test runs the real binary.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{Server, cocoa, get};

/// Starts `cocoa serve` with `args` (plus `--listen 127.0.0.1:0 --data
/// <data>`), as `setup` sets up, and waits for its `listening on` line.
fn serve(data: &Path, args: &[&str], setup: impl FnOnce(&mut Command)) -> Server {
    let mut cmd = cocoa();
    cmd.env("COCOA_LOG", "warn")
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(args);
    setup(&mut cmd);
    Server::listen("serve", cmd)
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn every_role_serves_healthz_readyz_and_metrics() {
    for role in ["issuer", "keyserver", "exporter", "all"] {
        let dir = tempfile::tempdir().unwrap();
        let s = serve(&dir.path().join("data"), &["--role", role], |_| {});
        assert_eq!(get(&s.url("/healthz")), (200, "ok".into()), "{role}");
        assert_eq!(get(&s.url("/readyz")), (200, "ready".into()), "{role}");
        let (status, metrics) = get(&s.url("/metrics"));
        assert_eq!(status, 200, "{role}");
        assert!(
            metrics.contains(&format!(
                "cocoa_build_info{{version=\"{}\",role=\"{role}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{role}: {metrics}"
        );
        for (family, present) in [
            (
                "issuer_verify_failed_total",
                role == "issuer" || role == "all",
            ),
            (
                "keyserver_publish_total",
                role == "keyserver" || role == "all",
            ),
            (
                "keyserver_export_last_cycle_seconds",
                role == "exporter" || role == "all",
            ),
            ("process_start_time_seconds", true),
        ] {
            assert_eq!(
                metrics.contains(&format!("# TYPE {family} ")),
                present,
                "{role} {family}: {metrics}"
            );
        }
    }
}

/// `cocoa … --data <dir>` printing one JSON value.
fn json_out(args: &[&str], data: &Path) -> serde_json::Value {
    let out = cocoa()
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn json_logs_hold_no_client_address_and_no_processing_number() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let centre = json_out(
        &[
            "issuer",
            "create-centre",
            "--create-data",
            "--name",
            "ログ保健所",
            "--prefecture",
            "13",
        ],
        &data,
    )["centre_id"]
        .as_i64()
        .unwrap()
        .to_string();
    let admin = json_out(
        &[
            "issuer",
            "create-api-key",
            "--kind",
            "admin",
            "--centre",
            &centre,
        ],
        &data,
    )["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let device = json_out(&["issuer", "create-api-key", "--kind", "device"], &data)["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let outbox = dir.path().join("outbox");
    let mut s = serve(&data, &["--role", "all", "--outbox"], |c| {
        c.arg(&outbox)
            .env("COCOA_LOG_FORMAT", "json")
            .env("COCOA_LOG", "debug");
    });
    // Requests come from 127.0.0.2, an address the server has no other
    // reason to print (it listens on 127.0.0.1).
    let client_ip: IpAddr = [127, 0, 0, 2].into();
    let number = block_on(async {
        let http = reqwest::Client::builder()
            .local_address(client_ip)
            .build()
            .unwrap();
        let base = format!("http://{}", s.addr);
        let case = serde_json::json!({
            "name_kanji": "記録 太郎", "name_kana": "キロク タロウ", "birth_date": "1990-01-02",
            "sex": "male", "mobile": "090-1234-5678", "outpatient_facility": "港区帰国者・接触者外来",
            "test_positive": true, "classification": "confirmed", "diagnosis_date": "2020-12-15",
            "reported": true, "uses_app": true
        });
        let r = http
            .post(format!("{base}/api/v1/cases"))
            .header("X-API-Key", &admin)
            .json(&case)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let case_id = r.json::<serde_json::Value>().await.unwrap()["case_id"]
            .as_i64()
            .unwrap();
        let r = http
            .post(format!("{base}/api/v1/cases/{case_id}/processing-number"))
            .header("X-API-Key", &admin)
            .header("Idempotency-Key", "log-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let file = std::fs::read_dir(&outbox)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let msg: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let number = msg["body"]
            .as_str()
            .unwrap()
            .split("処理番号: ")
            .nth(1)
            .unwrap()[..8]
            .to_owned();
        // A wrong number first (logged as a failure), then the right one.
        let r = http
            .post(format!("{base}/api/verify"))
            .header("X-API-Key", &device)
            .json(&serde_json::json!({"code": "00000000"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = http
            .post(format!("{base}/api/verify"))
            .header("X-API-Key", &device)
            .json(&serde_json::json!({"code": number}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = http
            .post(format!("{base}/v1/publish"))
            .header("X-Chaff", "1")
            .body(r#"{"temporaryExposureKeys":[{},{}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        for path in ["/healthz", "/readyz", "/metrics", "/exports/index.txt"] {
            http.get(format!("{base}{path}")).send().await.unwrap();
        }
        number
    });
    s.signal("-TERM");
    assert!(s.wait_exit(Duration::from_secs(20)).unwrap().success());
    let log = s.stderr();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 5, "{log}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(v["level"].is_string(), "{line}");
        // sqlx's statement events carry `summary` and `db.statement`
        // (never the bound values) instead of a message.
        assert!(
            v["fields"]["message"].is_string()
                || v["message"].is_string()
                || v["target"] == "sqlx::query",
            "{line}"
        );
        assert!(!line.contains("127.0.0.2"), "client address logged: {line}");
        assert!(!line.contains(&number), "processing number logged: {line}");
    }
    assert!(log.contains("\"http\""), "request spans are logged: {log}");
    assert!(log.contains("stopped"), "{log}");
}

/// Writes a request's head and the first part of its body, and returns the
/// stream and the rest of the body.
fn start_slow_chaff(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let body = format!(
        r#"{{"temporaryExposureKeys":[{{}},{{}},{{}}],"padding":"{}"}}"#,
        "x".repeat(4000)
    )
    .into_bytes();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /v1/publish HTTP/1.1\r\nHost: {addr}\r\nX-Chaff: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    s.write_all(first).unwrap();
    s.flush().unwrap();
    (s, rest.to_vec())
}

/// Waits until a new connection to `addr` is refused; false if it never is.
fn refused_within(addr: SocketAddr, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(&dir.path().join("data"), &["--role", "keyserver"], |_| {});
    let (mut conn, rest) = start_slow_chaff(s.addr);
    // Let the server read the head and enter the handler.
    std::thread::sleep(Duration::from_millis(300));
    s.signal("-TERM");
    assert!(
        refused_within(s.addr, Duration::from_secs(5)),
        "the listener closes at the signal"
    );
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "still running while a request is in flight"
    );
    conn.write_all(&rest).unwrap();
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("insertedExposures"), "{resp}");
    let st = s.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(st.code(), Some(0), "{}", s.stderr());
}

#[test]
fn the_grace_period_bounds_the_wait_for_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(
        &dir.path().join("data"),
        &["--role", "keyserver", "--shutdown-grace", "1s"],
        |c| {
            c.env("COCOA_LOG", "info");
        },
    );
    // A request whose body never completes.
    let (_conn, _rest) = start_slow_chaff(s.addr);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    s.signal("-TERM");
    let st = s.wait_exit(Duration::from_secs(10)).expect("exits");
    let took = t.elapsed();
    assert_eq!(st.code(), Some(0));
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(s.stderr().contains("grace period over"), "{}", s.stderr());
}

/// With `--drain-delay`, a signalled server answers `/readyz` 503
/// `draining` while it still accepts and serves requests, then stops
/// listening and exits 0.
#[test]
fn readyz_turns_503_while_the_server_drains() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(
        &dir.path().join("data"),
        &["--role", "keyserver", "--drain-delay", "2s"],
        |_| {},
    );
    assert_eq!(get(&s.url("/readyz")), (200, "ready".into()));
    let t = Instant::now();
    s.signal("-TERM");
    // The flag is set as the signal is handled: poll briefly for it.
    let draining = loop {
        let answer = get(&s.url("/readyz"));
        if answer.0 == 503 || t.elapsed() > Duration::from_millis(1500) {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(draining, (503, "draining".into()));
    // New connections are still served meanwhile (a refused one would fail
    // the request).
    assert_eq!(get(&s.url("/healthz")), (200, "ok".into()));
    // Before the first export the key server serves an empty index.
    assert_eq!(get(&s.url("/exports/index.txt")), (200, String::new()));
    let st = s.wait_exit(Duration::from_secs(15)).expect("exits");
    assert_eq!(st.code(), Some(0), "{}", s.stderr());
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "kept listening for the drain delay ({:?})",
        t.elapsed()
    );
}

#[test]
fn the_exporter_stops_between_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(
        &dir.path().join("data"),
        &["--role", "exporter", "--log-format", "json"],
        |c| {
            c.env("COCOA_LOG", "info");
        },
    );
    // The first cycle runs at start; /metrics shows when it ended.
    let t = Instant::now();
    loop {
        let (_, m) = get(&s.url("/metrics"));
        if !m.contains("keyserver_export_last_cycle_seconds 0\n") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
    s.signal("-INT");
    let st = s.wait_exit(Duration::from_secs(10)).expect("exits");
    assert_eq!(st.code(), Some(0));
    let log = s.stderr();
    assert!(log.contains("SIGINT"), "{log}");
    assert!(log.contains("\"stopped\""), "{log}");
    assert!(!log.contains("grace period over"), "{log}");
}

/// A self-signed certificate for localhost and 127.0.0.1: (cert PEM path,
/// key PEM path, cert PEM).
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.pem())
}

#[test]
fn tls_serves_https_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, pem) = self_signed(dir.path());
    for role in ["keyserver", "all"] {
        let data = dir.path().join(role);
        let s = serve(&data, &["--role", role, "--tls-cert"], |c| {
            c.arg(&cert).env("COCOA_TLS_KEY", &key);
        });
        block_on(async {
            let https = reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
                .resolve("localhost", s.addr)
                .build()
                .unwrap();
            let base = format!("https://localhost:{}", s.addr.port());
            let r = https.get(format!("{base}/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{role}");
            assert_eq!(r.text().await.unwrap(), "ok");
            let r = https.get(format!("{base}/readyz")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{role}");
            if role == "all" {
                // The issuer reads the client's address through TLS too: a
                // device call without a key is refused, not a 500.
                let r = https
                    .post(format!("{base}/api/verify"))
                    .json(&serde_json::json!({"code": "12345678"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 401, "{role}");
            } else {
                let r = https
                    .post(format!("{base}/v1/publish"))
                    .header("X-Chaff", "1")
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{role}");
            }
            // Plain HTTP to the TLS port gets no HTTP answer.
            let plain = reqwest::Client::new()
                .get(format!("http://{}/healthz", s.addr))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            assert!(plain.is_err(), "{role}: {plain:?}");
            // A client that does not trust the certificate is refused.
            let untrusting = reqwest::Client::builder()
                .resolve("localhost", s.addr)
                .build()
                .unwrap()
                .get(format!("{base}/healthz"))
                .send()
                .await;
            assert!(untrusting.is_err(), "{role}");
            // The server still serves after those failed handshakes.
            let r = https.get(format!("{base}/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{role}");
        });
    }
}

#[test]
fn bad_tls_files_and_durations_exit_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "SECRET-KEY-MATERIAL-1234\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let data = dir.path().join("data");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec![
                "--tls-cert".as_ref(),
                missing.as_os_str(),
                "--tls-key".as_ref(),
                key.as_os_str(),
            ],
            "missing.pem",
        ),
        (
            vec![
                "--tls-cert".as_ref(),
                cert.as_os_str(),
                "--tls-key".as_ref(),
                garbage.as_os_str(),
            ],
            "garbage.pem",
        ),
        (
            vec![
                "--tls-cert".as_ref(),
                garbage.as_os_str(),
                "--tls-key".as_ref(),
                key.as_os_str(),
            ],
            "garbage.pem",
        ),
        (vec!["--tls-cert".as_ref(), cert.as_os_str()], "tls_key"),
        (
            vec![
                "--tls-cert".as_ref(),
                key.as_os_str(),
                "--tls-key".as_ref(),
                key.as_os_str(),
            ],
            "key.pem",
        ),
    ];
    // Durations that are not durations, from the flags.
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = cases
        .into_iter()
        .chain([
            (
                vec!["--drain-delay".as_ref(), "soon".as_ref()],
                "drain_delay",
            ),
            (
                vec!["--shutdown-grace".as_ref(), "5 minutes".as_ref()],
                "shutdown_grace",
            ),
        ])
        .collect();
    for (args, named) in cases {
        let out = cocoa()
            .args([
                "serve",
                "--role",
                "keyserver",
                "--listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(&data)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(!err.contains("SECRET-KEY-MATERIAL"), "{err}");
        assert!(out.stdout.is_empty(), "never started listening");
    }
}
