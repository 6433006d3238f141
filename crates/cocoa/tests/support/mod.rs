//! The test kit of the binary's integration tests: the `cocoa` binary with a
//! clean environment, the real `cocoa serve` (or `cocoa app ui`) started as a
//! child process and waited for, one-request HTTP helpers, a fresh PostgreSQL
//! database (from `scripts/with-postgres`) or a throwaway cluster of the
//! test's own, moto's S3 server, the bench issuer trusted through the CLI,
//! publishes, and export files decoded and verified.
//!
//! Under `CI` a missing PostgreSQL or moto fails the test; elsewhere the
//! test is skipped with a note on stderr.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use en_protocol::export::{
    TekSignatureList, TemporaryExposureKeyExport, VerificationKey, export_keys, read_zip, verify,
};
use keyserver::testkit::{Minter, daily_keys, publish_request};
use sqlx::Connection as _;

pub mod browser;

/// The `cocoa` binary with a clean environment for configuration.
pub fn cocoa() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cocoa"));
    c.env_remove("COCOA_CONFIG")
        .env_remove("COCOA_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .env_remove("COCOA_KEYSERVER_DATABASE_URL")
        .env_remove("COCOA_ISSUER_DATABASE_URL")
        .env(
            "COCOA_LOG",
            // Warnings, and each exported batch (`scale_out.rs` counts them).
            std::env::var("TEST_SERVER_LOG")
                .unwrap_or_else(|_| "warn,keyserver::export=info".into()),
        );
    c
}

/// Runs `cocoa args…`, which must succeed, and parses the one JSON object
/// it prints.
pub fn cocoa_json(args: &[&str]) -> serde_json::Value {
    let out = cocoa().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Skips the test (returns `None`) with a note, or fails under CI.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} (CI is set: scripts/test provides it, this test must not skip)"
    );
    eprintln!("SKIP: {what}");
    None
}

/// A fresh database on the server of `COCOA_TEST_DATABASE_URL`
/// (`scripts/with-postgres`); `None` (skip) when it is not set outside CI.
pub async fn fresh_postgres(name: &str) -> Option<String> {
    let Ok(admin) = std::env::var("COCOA_TEST_DATABASE_URL") else {
        return missing("COCOA_TEST_DATABASE_URL not set (run through scripts/with-postgres)");
    };
    Some(create_database(&admin, name).await)
}

/// `CREATE DATABASE {name}_{random}` on the server of `admin`; its URL.
pub async fn create_database(admin: &str, name: &str) -> String {
    let db = format!("{name}_{:016x}", rand::random::<u64>());
    let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}

/// A child process killed (SIGKILL) and reaped when dropped: for the
/// commands a test starts and reads itself.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running server (`cocoa serve`, `cocoa app ui`, …), killed (SIGKILL)
/// when dropped. Its stdout after the `listening on` line and its stderr are
/// collected; a test that fails prints the server's stderr.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// `http://ADDR` or `https://ADDR`, as the server printed it.
    pub base: String,
    pub name: String,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() && std::env::var_os("TEST_SERVER_LOG").is_none() {
            eprintln!("--- {} stderr ---\n{}", self.name, self.stderr());
        }
    }
}

/// Spawns `cocoa serve --role <role> --config <config> --listen 127.0.0.1:0`
/// without waiting for it (see [`Spawned::ready`]).
pub fn spawn(name: &str, role: &str, config: &Path, data: &Path) -> Spawned {
    let mut cmd = cocoa();
    cmd.args([
        "serve",
        "--role",
        role,
        "--listen",
        "127.0.0.1:0",
        "--config",
    ])
    .arg(config)
    .arg("--data")
    .arg(data);
    Spawned::command(name, cmd)
}

/// A spawned server not yet listening.
pub struct Spawned {
    child: Option<Child>,
    name: String,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<String>>>,
    first_line: std::sync::mpsc::Receiver<String>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Spawned {
    /// Spawns `cmd` with stdout and stderr piped and read by threads (a
    /// closed pipe would end the process at its next line).
    pub fn command(name: &str, mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        let label = name.to_owned();
        let stderr_reader = std::thread::spawn(move || {
            let mut line = String::new();
            while pipe.read_line(&mut line).unwrap_or(0) > 0 {
                if std::env::var_os("TEST_SERVER_LOG").is_some() {
                    eprint!("[{label}] {line}");
                }
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out = BufReader::new(child.stdout.take().unwrap());
        let lines = stdout.clone();
        let (tx, first_line) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = out.lines().map_while(Result::ok);
            if let Some(first) = out.next() {
                let _ = tx.send(first);
            }
            for line in out {
                lines.lock().unwrap().push(line);
            }
        });
        Self {
            child: Some(child),
            name: name.into(),
            stderr,
            stdout,
            first_line,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Waits (up to a minute) for the first stdout line, `listening on
    /// http://ADDR` (or https, or with a trailing `/`).
    pub fn ready(mut self) -> Server {
        let line = self.first_line.recv_timeout(Duration::from_secs(60));
        let mut child = self.child.take().unwrap();
        let base = line.as_deref().ok().and_then(|l| {
            let base = l
                .trim()
                .strip_prefix("listening on ")?
                .trim_end_matches('/');
            (base.starts_with("http://") || base.starts_with("https://")).then(|| base.to_owned())
        });
        let Some(base) = base else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "{}: unexpected first line {line:?}; stderr:\n{}",
                self.name,
                self.stderr.lock().unwrap()
            );
        };
        let addr = base.split_once("://").unwrap().1.parse().unwrap();
        Server {
            child,
            addr,
            base,
            name: self.name.clone(),
            stderr: self.stderr.clone(),
            stdout: self.stdout.clone(),
            stderr_reader: self.stderr_reader.take(),
        }
    }
}

impl Server {
    /// Starts a server and waits until it listens.
    pub fn start(name: &str, role: &str, config: &Path, data: &Path) -> Self {
        spawn(name, role, config, data).ready()
    }

    /// Starts `cmd` (whose first stdout line is `listening on …`) and waits
    /// until it listens.
    pub fn listen(name: &str, cmd: Command) -> Self {
        Spawned::command(name, cmd).ready()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `kill -9`: no graceful shutdown, no cleanup.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `signal` (`-TERM`, `-INT`, `-HUP`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let st = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits up to `limit` for the process to end.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Everything the process logged up to its exit is in `stderr()`.
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGTERM, then waits for the exit (graceful shutdown).
    pub fn terminate(&mut self) {
        self.signal("-TERM");
        assert!(
            self.wait_exit(Duration::from_secs(40)).is_some(),
            "{} did not stop",
            self.name
        );
    }

    /// Everything written on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The stdout lines after `listening on …` printed so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits up to `limit` until at least `n` lines followed `listening on …`.
    pub fn wait_stdout_lines(&self, n: usize, limit: Duration) -> Vec<String> {
        let t = Instant::now();
        loop {
            let lines = self.stdout_lines();
            if lines.len() >= n || t.elapsed() > limit {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `/metrics` as (series → value).
    pub async fn metrics(&self, http: &reqwest::Client) -> BTreeMap<String, f64> {
        let text = http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        parse_metrics(&text)
    }
}

/// Runs `cocoa args…`, which must succeed; its stdout as JSON.
pub fn ok_json(args: &[&str]) -> serde_json::Value {
    json_of(&cocoa().args(args).output().unwrap())
}

/// The stdout of a command that must have succeeded, as JSON.
pub fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {}", String::from_utf8_lossy(&out.stdout)))
}

/// One blocking GET (a runtime of its own): status and body.
pub fn get(url: &str) -> (u16, String) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        })
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), written
/// by hand so that a test sees exactly the status and body bytes.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let status = std::str::from_utf8(&resp[9..12]).unwrap().parse().unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (status, resp[split..].to_vec())
}

/// [`http`] with a JSON body and answer (`Null` when the answer is not JSON).
pub fn http_json(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let (status, body) = http(addr, method, path, headers, body.to_string().as_bytes());
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// Prometheus text as (series with labels → value).
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// moto's S3 server (`keyserver::testkit::MotoServer`) with a bucket.
pub struct Moto {
    server: keyserver::testkit::MotoServer,
    pub endpoint: String,
    pub bucket: String,
}

/// A free TCP port on loopback (for a server that cannot take port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// Starts moto and creates `bucket`; `None` (skip) when moto is
    /// missing outside CI.
    pub async fn start(bucket: &str) -> Option<Self> {
        let server = keyserver::testkit::MotoServer::start().unwrap()?;
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}", server.endpoint))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "creating the bucket: {r:?}");
        Some(Self {
            endpoint: server.endpoint.clone(),
            server,
            bucket: bucket.into(),
        })
    }

    /// Every object key in the bucket under `prefix`, through the S3 API
    /// (ListObjectsV2, following continuation tokens).
    pub async fn list(&self, http: &reqwest::Client, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = http
                .get(format!("{}/{}", self.endpoint, self.bucket))
                .query(&[("list-type", "2"), ("prefix", prefix)]);
            if let Some(t) = &token {
                req = req.query(&[("continuation-token", t.as_str())]);
            }
            let xml = req.send().await.unwrap().text().await.unwrap();
            keys.extend(xml_values(&xml, "Key"));
            token = xml_values(&xml, "NextContinuationToken").into_iter().next();
            if token.is_none() {
                return keys;
            }
        }
    }

    /// An object's bytes, through the S3 API.
    pub async fn get(&self, http: &reqwest::Client, key: &str) -> Option<Vec<u8>> {
        // moto refuses an anonymous GetObject (403) but does not check
        // signatures: any SigV4-shaped header will do.
        let r = http
            .get(format!("{}/{}/{key}", self.endpoint, self.bucket))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
            )
            .send()
            .await
            .unwrap();
        if r.status() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "GET {key}: {}", r.status());
        Some(r.bytes().await.unwrap().to_vec())
    }
}

fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_owned()))
        .collect()
}

/// The bench issuer (`cocoa bench publish --init-only`) trusted by the key
/// server database at `db` through `cocoa keyserver add-issuer`, under the
/// health authority `bench`.
pub fn trust_bench_issuer(db: &str, dir: &Path) -> Minter {
    let key = dir.join("bench-issuer.pem");
    let out = cocoa()
        .args(["bench", "publish", "--init-only", "--issuer-key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cocoa()
        .args([
            "keyserver",
            "add-issuer",
            "--iss",
            "cocoa-bench",
            "--health-authority-id",
            "bench",
            "--database-url",
            db,
            "--data",
        ])
        .arg(dir.join("cli-data"))
        .arg("--public-key")
        .arg(format!("{}.pub", key.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "add-issuer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Minter::from_pkcs8_pem(
        &std::fs::read_to_string(&key).unwrap(),
        "cocoa-bench",
        "cocoa-keyserver",
    )
    .unwrap()
}

/// `cocoa keyserver export-public-key` (generating the database's signing
/// key once, before any replica starts).
pub fn export_public_key(db: &str, dir: &Path) -> VerificationKey {
    let out = cocoa()
        .args(["keyserver", "export-public-key", "--database-url", db])
        .arg("--data")
        .arg(dir.join("cli-data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    VerificationKey::from_public_key_pem(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

/// A prepared publish: its body and its keys.
#[derive(Clone)]
pub struct Prepared {
    pub body: Vec<u8>,
    pub keys: Vec<[u8; 16]>,
}

/// `n` publish requests of `keys` keys each (one a day before today, so
/// none is embargoed), each with its own certificate.
pub fn prepare(minter: &Minter, n: usize, keys: u32) -> Vec<Prepared> {
    use base64::Engine as _;
    let now = en_protocol::time::Clock::now(&en_protocol::time::SystemClock).timestamp();
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| {
            let ks = daily_keys(&mut rng, keys, (now / 600) as u32);
            let raw = ks
                .iter()
                .map(|k| {
                    base64::engine::general_purpose::STANDARD
                        .decode(&k.key)
                        .unwrap()
                        .try_into()
                        .unwrap()
                })
                .collect();
            let req = publish_request(&mut rng, minter, "bench", ks, "confirmed", now);
            Prepared {
                body: serde_json::to_vec(&req).unwrap(),
                keys: raw,
            }
        })
        .collect()
}

/// What became of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP answer: status and `insertedExposures`.
    Answered(u16, u64),
    /// No answer (connection refused or reset, timeout).
    Unanswered(String),
}

/// Sends a publish body.
pub async fn publish(http: &reqwest::Client, base: &str, body: &[u8]) -> Outcome {
    let r = http
        .post(format!("{base}/v1/publish"))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.bytes().await {
                Ok(b) => {
                    let v: serde_json::Value =
                        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null);
                    Outcome::Answered(status, v["insertedExposures"].as_u64().unwrap_or(0))
                }
                Err(e) => Outcome::Unanswered(format!("{e}")),
            }
        }
        Err(e) => Outcome::Unanswered(format!("{e}")),
    }
}

/// One decoded export file.
#[derive(Debug)]
pub struct File {
    pub path: String,
    pub start: u64,
    pub end: u64,
    pub region: String,
    pub keys: Vec<[u8; 16]>,
}

/// Takes a zip apart, checks its signature against `key` and returns its
/// header fields and keys.
pub fn decode(path: &str, zip: &[u8], key: &VerificationKey) -> File {
    let archive = read_zip(zip).unwrap_or_else(|e| panic!("{path}: {e}"));
    let sigs = TekSignatureList::decode(&archive.export_sig).unwrap();
    assert!(
        verify(&archive.export_bin, &sigs, std::slice::from_ref(key)).is_some(),
        "{path}: signature does not verify"
    );
    let header = TemporaryExposureKeyExport::decode(&archive.export_bin).unwrap();
    let keys = export_keys(&archive.export_bin)
        .map(|k| *k.unwrap().key_data.as_bytes())
        .collect();
    File {
        path: path.into(),
        start: header.start_timestamp,
        end: header.end_timestamp,
        region: header.region,
        keys,
    }
}

/// How many times each key occurs across `files`.
pub fn key_counts(files: &[File]) -> BTreeMap<[u8; 16], usize> {
    let mut m = BTreeMap::new();
    for f in files {
        for k in &f.keys {
            *m.entry(*k).or_insert(0) += 1;
        }
    }
    m
}

/// Checks that every key of `accepted` is in exactly one file, that no key
/// at all (real or fake) is in two, and that no two batches share or overlap
/// a window. Returns the number of keys in the files.
pub fn check_exactly_once(files: &[File], accepted: &BTreeSet<[u8; 16]>) -> usize {
    let counts = key_counts(files);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} keys are in more than one file (first: {:02x?})",
        twice.len(),
        twice.first()
    );
    let lost: Vec<_> = accepted
        .iter()
        .filter(|k| !counts.contains_key(*k))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} accepted keys are in no export file",
        lost.len(),
        accepted.len()
    );
    // A batch's files share its window (`{region}/{start}-{end}-{n}.zip`);
    // distinct batches never share or overlap one.
    let batches: BTreeSet<(u64, u64)> = files
        .iter()
        .map(|f| {
            let name = f.path.rsplit('/').next().unwrap();
            let mut parts = name.split('-');
            let start = parts.next().unwrap().parse().unwrap();
            let end = parts.next().unwrap().parse().unwrap();
            assert!(
                f.start == start && f.end >= end,
                "{}: header window {}..{}",
                f.path,
                f.start,
                f.end
            );
            (start, end)
        })
        .collect();
    let batches: Vec<_> = batches.into_iter().collect();
    for w in batches.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "two batches for overlapping windows: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    counts.len()
}

/// A PostgreSQL cluster of the test's own (initdb, pg_ctl), so that the
/// test can stop and start it; removed when dropped. As
/// `scripts/with-postgres` does: run as the `postgres` user when root,
/// fsync off, on a free loopback port.
pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

impl OwnPostgres {
    /// `None` (skip) without PostgreSQL's binaries outside CI.
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists());
        let Some(bin) = bin else {
            return missing("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin");
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root
            && !Command::new("id")
                .arg("postgres")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            return missing("running as root without a `postgres` user for PostgreSQL");
        }
        let dir = tempfile::Builder::new()
            .prefix("cocoa-own-pg")
            .tempdir_in("/tmp")
            .unwrap();
        let pg = Self {
            bin,
            dir,
            port: free_port(),
            as_postgres: root,
        };
        if root {
            let st = Command::new("chown")
                .arg("postgres")
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(st.success());
            std::fs::set_permissions(
                pg.dir.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(pg.dir.path().join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.up();
        Some(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Starts the server (again) and waits until it accepts connections.
    /// Commits are flushed to the kernel (`synchronous_commit` on), so a
    /// killed server loses no acknowledged transaction; `fsync` is off (a
    /// machine crash is not what the tests simulate).
    pub fn up(&self) {
        let opts = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.pg_ctl(&["-l", log.to_str().unwrap(), "-w", "-o", &opts, "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server: `immediate` kills it like a crash (connections cut,
    /// recovery at the next start), `fast` as a restart for maintenance.
    pub fn down(&self, mode: &str) {
        let out = self.pg_ctl(&["-m", mode, "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The superuser URL.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// The `[keyserver]` part of a test configuration: PostgreSQL at `db`, the
/// given `[keyserver.export]` lines, and `storage` (TOML lines of
/// `[keyserver.storage]`).
pub fn write_config(dir: &Path, name: &str, db: &str, export: &str, storage: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[keyserver]\ndatabase_url = \"{db}\"\nmax_connections = 4\n\n[keyserver.export]\n{export}\n\n[keyserver.storage]\n{storage}\n"
        ),
    )
    .unwrap();
    path
}

/// Polls `f` every 200 ms until it returns `Some`, for up to `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let t = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
