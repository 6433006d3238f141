//! `cocoa keyserver …` and `cocoa serve --role keyserver` as a script uses
//! them: trust an issuer, start the server on port 0, publish, export at
//! once, print the export public key, and check the file with
//! `cocoa en inspect`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use keyserver::testkit::{Minter, daily_keys, publish_request};
use rand::SeedableRng;

mod support;
use support::{Server, cocoa, json_of};

fn run(args: &[&str]) -> Output {
    cocoa().args(args).output().unwrap()
}

/// One request with a JSON body: (status, body).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    support::http(addr, method, path, &[], body)
}

fn serve(data: &Path, role: &str) -> (Server, String) {
    let mut cmd = cocoa();
    cmd.args(["serve", "--role", role, "--listen", "127.0.0.1:0", "--data"])
        .arg(data);
    let server = Server::listen(role, cmd);
    let addr = server.addr.to_string();
    (server, addr)
}

#[test]
fn trust_serve_publish_export_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let minter = Minter::generate(&mut rng, "test-issuer", "cocoa-keyserver");
    let public = dir.path().join("issuer.pub");
    std::fs::write(&public, minter.public_key_pem()).unwrap();
    let p = public.to_str().unwrap();

    let added = json_of(&run(&[
        "keyserver",
        "add-issuer",
        "--create-data",
        "--data",
        d,
        "--iss",
        "test-issuer",
        "--public-key",
        p,
        "--health-authority-id",
        "test",
    ]));
    assert_eq!(
        added["kid"],
        minter.kid(),
        "kid computed as the issuer does"
    );
    let again = run(&[
        "keyserver",
        "add-issuer",
        "--data",
        d,
        "--iss",
        "test-issuer",
        "--public-key",
        p,
        "--health-authority-id",
        "test",
    ]);
    assert_eq!(again.status.code(), Some(2), "already trusted");
    let bad = run(&[
        "keyserver",
        "add-issuer",
        "--data",
        d,
        "--iss",
        "x",
        "--public-key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "--health-authority-id",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2), "not a key");

    // A canary probe's health authority: its keys go to the region `canary`
    // only, so real phones never download them.
    let canary = Minter::generate(&mut rng, "canary-issuer", "cocoa-keyserver");
    let canary_pub = dir.path().join("canary.pub");
    std::fs::write(&canary_pub, canary.public_key_pem()).unwrap();
    let add_canary = |region: &str| {
        run(&[
            "keyserver",
            "add-issuer",
            "--data",
            d,
            "--iss",
            "canary-issuer",
            "--public-key",
            canary_pub.to_str().unwrap(),
            "--health-authority-id",
            "canary-probe",
            "--region",
            region,
        ])
    };
    assert_eq!(
        add_canary("../x").status.code(),
        Some(2),
        "not a path component"
    );
    assert_eq!(json_of(&add_canary("canary"))["region"], "canary");

    let (_server, addr) = serve(&data, "keyserver");
    let now = en_protocol::time::Clock::now(&en_protocol::time::SystemClock).timestamp();
    let keys = daily_keys(&mut rng, 14, (now / 600) as u32);
    let publish = |req: &api_types::publish::PublishRequest| {
        let (status, body) = http(
            &addr,
            "POST",
            "/v1/publish",
            &serde_json::to_vec(req).unwrap(),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    let req = publish_request(&mut rng, &minter, "test", keys, "confirmed", now);
    assert_eq!(publish(&req)["insertedExposures"], 14);
    let canary_keys = daily_keys(&mut rng, 2, (now / 600) as u32);
    let req = publish_request(
        &mut rng,
        &canary,
        "canary-probe",
        canary_keys,
        "confirmed",
        now,
    );
    assert_eq!(publish(&req)["insertedExposures"], 2);

    let exported = json_of(&run(&[
        "keyserver",
        "export-now",
        "--data",
        d,
        "--min-age",
        "0s",
    ]));
    let files: Vec<&str> = exported["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2, "one file a region: {exported}");
    let file = files.iter().find(|f| f.starts_with("440/")).unwrap();
    let canary_file = files.iter().find(|f| f.starts_with("canary/")).unwrap();

    let out = run(&["keyserver", "export-public-key", "--data", d]);
    assert!(out.status.success());
    let pem = dir.path().join("export.pub");
    std::fs::write(&pem, &out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-----BEGIN PUBLIC KEY-----"));

    let zip = data.join("exports").join(file);
    let inspected = json_of(&run(&[
        "en",
        "inspect",
        zip.to_str().unwrap(),
        "--public-key",
        pem.to_str().unwrap(),
    ]));
    assert_eq!(inspected["signature_verified"], true, "{inspected}");
    assert_eq!(inspected["region"], "440");
    let n = inspected["keys"].as_array().unwrap().len();
    assert!((1000..1100).contains(&n), "padded: {n}");

    // The server serves what the exporter wrote.
    let (status, index) = http(&addr, "GET", "/exports/index.txt", b"");
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(index).unwrap(), format!("{file}\n"));
    let (status, list) = http(&addr, "GET", "/exports/440/list.json", b"");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(list[0]["url"], format!("/exports/{file}"));
    let (status, served) = http(&addr, "GET", &format!("/exports/{file}"), b"");
    assert_eq!(status, 200);
    assert_eq!(served, std::fs::read(&zip).unwrap());
    let (status, index) = http(&addr, "GET", "/exports/canary/index.txt", b"");
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(index).unwrap(),
        format!("{canary_file}\n")
    );
    let (status, list) = http(&addr, "GET", "/exports/canary/list.json", b"");
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(list[0]["region"], "canary");
    let (status, _) = http(&addr, "GET", "/api/stats", b"");
    assert_eq!(status, 200);
    let (status, _) = http(&addr, "GET", "/healthz", b"");
    assert_eq!(status, 200, "standalone keyserver serves /healthz");
}

#[test]
fn bad_durations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "keyserver",
        "export-now",
        "--data",
        dir.path().to_str().unwrap(),
        "--min-age",
        "soon",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
