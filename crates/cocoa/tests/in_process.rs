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

/// The listener's limits and the `/metrics` token as `cocoa serve` applies
/// them (issue 12, findings 9 and 12): a connection that sends nothing is
/// closed at the header-read timeout, and `/metrics` answers only to its
/// bearer token.
#[tokio::test]
async fn a_silent_connection_is_closed_and_metrics_answers_only_to_its_token() {
    use secrecy::SecretString;
    use tokio::io::AsyncReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mut c = CocoaConfig {
        data: dir.path().join("data"),
        metrics_token: Some(SecretString::from("metrics-token-0123456789")),
        ..CocoaConfig::default()
    };
    c.connections.header_read_timeout = Duration::from_secs(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
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
    assert_eq!(status(&client, &format!("{base}/readyz")).await, Some(200));

    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(6), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "a connection sending nothing must be closed at the header timeout: {closed:?}"
    );

    let metrics = |token: Option<&'static str>| {
        let mut req = client.get(format!("{base}/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    for token in [None, Some("wrong"), Some("metrics-token-012345678X")] {
        let r = metrics(token).await.unwrap();
        assert_eq!(r.status(), 401, "token {token:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["errorCode"], "metrics_token_required");
        assert!(body["error"].as_str().unwrap().contains("トークン"));
    }
    let r = metrics(Some("metrics-token-0123456789")).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("http_connections_open"), "{text}");

    stop.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(40), server).await;
}
