//! `cocoa::server::serve` called in process, as the binary calls it but
//! with a listener on port 0 and a shutdown the test triggers: the roles
//! answer, the drain turns `/readyz` to 503 while requests are still
//! served, and `serve` returns cleanly after it.

use std::sync::Arc;
use std::time::Duration;

use cocoa::server::config::CocoaConfig;
use cocoa::server::{Shutdown, serve};
use en_protocol::time::SystemClock;

async fn status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn serve_runs_in_process_drains_and_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let c = CocoaConfig {
        data: dir.path().join("data"),
        drain_delay: Duration::from_millis(800),
        ..CocoaConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        c,
        Arc::new(SystemClock),
        None,
        false,
        listener,
        Shutdown::when(async {
            let _ = stopped.await;
        }),
    ));
    let client = reqwest::Client::new();
    // The listener is bound before the roles are built: the first request
    // waits for them rather than being refused.
    assert_eq!(status(&client, &format!("{base}/readyz")).await, Some(200));
    assert_eq!(status(&client, &format!("{base}/healthz")).await, Some(200));
    // Both roles on the one listener.
    assert_eq!(
        status(&client, &format!("{base}/.well-known/jwks.json")).await,
        Some(200)
    );
    assert_eq!(
        status(&client, &format!("{base}/exports/index.txt")).await,
        Some(200)
    );

    stop.send(()).unwrap();
    // Draining: /readyz says 503 while the other routes still answer.
    let mut drained = false;
    for _ in 0..50 {
        if status(&client, &format!("{base}/readyz")).await == Some(503) {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(drained, "/readyz never answered 503 during the drain");
    assert_eq!(status(&client, &format!("{base}/healthz")).await, Some(200));

    let result = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("serve returned after the drain and the grace period")
        .expect("the serve task did not panic");
    assert!(result.is_ok(), "{result:?}");
    // Stopped: the listener is closed.
    let fresh = reqwest::Client::new();
    assert_eq!(status(&fresh, &format!("{base}/healthz")).await, None);
}
