//! The processing number (and its link code and token) never appears in a
//! log line, a database column or an API answer to staff systems.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// current_thread: the server tasks run on this thread, under this subscriber.
#[tokio::test(flavor = "current_thread")]
async fn codes_never_reach_logs_or_the_database() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    for db in backends().await {
        let h = start(&db).await;
        let id = h.create_case(&case_json()).await;
        let first = h.issue(id, "a").await;
        let (old_number, old_link) = h.last_number();
        let second = h.issue(id, "b").await;
        let (number, link) = h.last_number();
        // Failed attempts with the old codes, then the real registration.
        h.verify(&old_number).await;
        h.verify(&old_link).await;
        let v = h.verify(&number).await;
        let token = v.body["token"].as_str().unwrap().to_owned();
        let c = h.certificate(&token, &hmac32()).await;
        assert_eq!(c.status, 200);
        let refused = h.issue(id, "c").await;

        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.contains("processing number sent"),
            "logs were captured: {text:.300}"
        );
        let dump = h.dump().await;
        let answers = format!("{} {} {}", first.body, second.body, refused.body);
        for secret in [&old_number, &old_link, &number, &link, &token] {
            assert!(
                !text.contains(secret.as_str()),
                "{}: a code reached the log",
                h.label
            );
            assert!(
                !dump.contains(secret.as_str()),
                "{}: a code reached the database",
                h.label
            );
            assert!(
                !answers.contains(secret.as_str()),
                "{}: a code reached a staff answer",
                h.label
            );
        }
        assert!(!text.contains(&h.device_key) && !dump.contains(&h.device_key));
        assert!(!text.contains(&h.admin_key) && !dump.contains(&h.admin_key));
    }
}
