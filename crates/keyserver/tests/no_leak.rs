//! The key server logs no IP address and no key material: every log line
//! written while serving real, repeated, refused and chaff publishes is
//! captured and searched.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_hold_no_address_and_no_key_material() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        // Everything the server side writes; the test's own HTTP client
        // (reqwest, hyper's client) names the server address and is left out.
        .with_env_filter("trace,reqwest=off,hyper_util::client=off,hyper::client=off")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let db = common::backends().await.remove(0);
    let mut h = common::start(&db).await;
    let keys = h.keys(14);
    let req = h.request(keys);
    assert_eq!(h.publish(&req).await.0, 200);
    assert_eq!(h.publish(&req).await.0, 200);
    let mut bad = req.clone();
    bad.keys[0].rolling_start_number += 1;
    assert_eq!(h.publish(&bad).await.0, 401);
    let (status, _, _) = h.post(serde_json::to_vec(&req).unwrap(), true).await;
    assert_eq!(status, 200);
    let (status, _, _) = h
        .post(
            b"{\"temporaryExposureKeys\": [{\"key\": \"c2VjcmV0".to_vec(),
            false,
        )
        .await;
    assert_eq!(status, 400);
    h.clock.advance(chrono::Duration::hours(3));
    h.exporter()
        .run_cycle(keyserver::export::CycleOptions { min_age: 7200 })
        .await
        .unwrap();

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("keys published"), "the log is captured: {log}");
    for l in log.lines().filter(|l| l.contains("127.0.0.1")) {
        eprintln!("LEAK {l}");
    }
    assert!(!log.contains("127.0.0.1"), "an address was logged");
    let mut secrets: Vec<String> = req.keys.iter().map(|k| k.key.clone()).collect();
    secrets.push(req.hmac_key.clone());
    secrets.push(req.verification_payload.clone());
    secrets.push("c2VjcmV0".into());
    for s in &secrets {
        assert!(!log.contains(s.as_str()), "key material logged: {s}");
    }
    // Keys as hex or byte lists neither.
    for k in &req.keys {
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &k.key).unwrap();
        assert!(!log.contains(&hex::encode(&bytes)));
        assert!(
            !log.contains(
                &format!("{:?}", &bytes[..4])
                    .trim_end_matches(']')
                    .to_owned()
            )
        );
    }
}
