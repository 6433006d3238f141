//! The listener's limits against the attacks of issue 12, finding 9, on
//! loopback: a client trickling its headers, a client that sends half a
//! body and stops, one address opening more connections than its share,
//! and a shutdown with a request in flight. Each of these passes through
//! `axum::serve` as it was (the trickling client stays connected, the
//! address gets every connection it asks for).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use http_serve::{Addresses, Limits};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "finished"
            }),
        )
        .route(
            "/whoami",
            get(|req: axum::extract::Request| async move {
                match req.extensions().get::<ConnectInfo<SocketAddr>>() {
                    Some(ConnectInfo(a)) => a.ip().to_string(),
                    None => "nobody".to_owned(),
                }
            }),
        )
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: Limits, addresses: Addresses) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(http_serve::serve(
        listener,
        app(),
        limits,
        addresses,
        async {
            let _ = rx.await;
        },
    ));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

/// Sends `request` on a new connection and reads the whole answer.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
}

/// Reads until the server closes `s`; how long that took, or `None` when
/// it was still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at((start + within).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_closed_at_the_header_timeout() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = start(limits, Addresses::Keep).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let trickle = b"GET / HTTP/1.1\r\nhost: x\r\nx-a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let (mut rd, mut wr) = s.split();
    let writer = async {
        for b in trickle {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let reader = async {
        let start = Instant::now();
        let mut buf = [0u8; 512];
        loop {
            match tokio::time::timeout(Duration::from_secs(8), rd.read(&mut buf)).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
                Ok(Ok(_)) => {}
            }
        }
    };
    let (closed, ()) = tokio::join!(reader, writer);
    let closed = closed.expect("a trickling client must be cut off, not kept for ever");
    assert!(
        closed < Duration::from_secs(5),
        "closed after {closed:?}, the timeout is 1 s"
    );
    // A silent connection (the zero-byte slowloris) goes the same way.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection that sends nothing is closed too"
    );
    // And an honest client is served.
    let answer = exchange(server.addr, &get_request("/")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_stops_halfway_fails_at_the_body_timeout() {
    let limits = Limits {
        body_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = start(limits, Addresses::Keep).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten b")
        .await
        .expect("write");
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(8), s.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "a half-sent body must not hold the connection for ever"
    );
    let answer = String::from_utf8_lossy(&out);
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "the stalled request is answered with a client error: {answer}"
    );
    let whole = exchange(
        server.addr,
        "POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    assert!(whole.ends_with("hello"), "{whole}");
}

#[tokio::test]
async fn an_address_beyond_its_share_of_connections_is_refused_with_503_and_others_are_not() {
    let limits = Limits {
        per_address: 8,
        header_read_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let server = start(limits, Addresses::Keep).await;
    // A burst of 20 connections from one address, all opened at once, each
    // sending a request to /slow (500 ms): 8 are served (200 after the
    // wait), the 12 beyond the share are answered 503 at once.
    let opened = futures_join_all((0..20).map(|_| TcpStream::connect(server.addr))).await;
    let mut conns = Vec::new();
    for s in opened {
        let mut s = s.expect("connect");
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        conns.push(s);
    }
    let mut kept = Vec::new();
    let mut refused = 0;
    for mut s in conns {
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("every connection is answered")
            .expect("read");
        let answer = String::from_utf8_lossy(&buf[..n]).to_lowercase();
        if answer.starts_with("http/1.1 200 ") {
            kept.push(s);
            continue;
        }
        assert!(answer.starts_with("http/1.1 503 "), "{answer}");
        assert!(answer.contains("retry-after: 10"), "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(answer.contains(r#""errorcode":"too_many_connections""#));
        refused += 1;
    }
    assert_eq!((kept.len(), refused), (8, 12));
    // The other loopback address (127.0.0.2 is loopback too) has its own share.
    let other = tokio::net::TcpSocket::new_v4().expect("socket");
    other
        .bind("127.0.0.2:0".parse().expect("addr"))
        .expect("bind 127.0.0.2");
    let mut s = other.connect(server.addr).await.expect("connect");
    s.write_all(get_request("/whoami").as_bytes())
        .await
        .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("127.0.0.2"), "{answer}");
    // Closing the held connections gives the address its share back.
    drop(kept);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = exchange(server.addr, &get_request("/")).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "share never given back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn forget_leaves_the_router_without_the_address_and_keep_gives_it() {
    let keep = start(Limits::default(), Addresses::Keep).await;
    let forget = start(Limits::default(), Addresses::Forget).await;
    let a = exchange(keep.addr, &get_request("/whoami")).await;
    let b = exchange(forget.addr, &get_request("/whoami")).await;
    assert!(a.ends_with("127.0.0.1"), "{a}");
    assert!(b.ends_with("nobody"), "{b}");
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_stops_listening() {
    let mut server = start(Limits::default(), Addresses::Keep).await;
    let addr = server.addr;
    let in_flight = tokio::spawn(async move { exchange(addr, &get_request("/slow")).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = server.stop.take().map(|tx| tx.send(()));
    let answer = in_flight.await.expect("request task");
    assert!(answer.ends_with("finished"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returns once its connections are done")
        .expect("serve task");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the port is closed after shutdown"
    );
}

/// `futures::future::join_all` without the dependency: connects run
/// concurrently as tasks.
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
