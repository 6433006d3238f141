//! The accept loop of every cocoa-rs listener.
//!
//! "Slowloris. 200 connections trickling one header byte every 5 s were all
//! still open after 45 s: set a header-read timeout, a body timeout and a
//! per-address connection cap on every listener" (issue 12, finding 9).
//! `axum::serve` sets no timer on its HTTP/1 connections, so hyper's
//! header-read timeout never fires there and a client may hold a
//! connection open forever by sending nothing, or one byte at a time. This
//! loop is `axum::serve` with the limits added (hand-written because axum's
//! loop takes no connection settings; it is the documented hyper-util
//! pattern, about the size of axum's own):
//!
//! - **Header-read timeout** ([`Limits::header_read_timeout`]): a request
//!   whose head is not complete in time closes its connection. It also
//!   bounds how long an idle keep-alive connection is kept.
//! - **Body timeout** ([`Limits::body_timeout`]): a request body not read
//!   in full in time fails, answering an error, and the connection closes.
//! - **Connections per address** ([`Limits::per_address`]) and **in all**
//!   ([`Limits::total`]): a connection beyond either is answered `503`
//!   with `Retry-After` and closed at once, without reading its request.
//!   IPv6 clients count by their /64 (one subscriber's prefix). The cap is
//!   generous because Japanese mobile carriers put many phones behind one
//!   IPv4 address; a crowd of honest phones opens a connection each for a
//!   second or two, a slowloris holds hundreds for minutes.
//! - **Graceful shutdown**: when `shutdown` completes the loop stops
//!   accepting, asks every connection to finish its request in flight and
//!   close, and returns once all have (the caller bounds the wait).
//!
//! The table of open connections per address holds only a keyed hash of
//! each address (a key drawn at start, never stored), and only while the
//! address has a connection open: with [`Addresses::Forget`] (the key
//! server, which "stores no personal data and no IP address") nothing
//! downstream ever sees the address.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher as _, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

/// The limits every listener applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a request's whole head (request line and
    /// headers), counted from the connection or the previous response.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body.
    pub body_timeout: Duration,
    /// Connections one address (IPv6: one /64) may hold open at once.
    pub per_address: usize,
    /// Connections the listener holds open at once, from everyone.
    pub total: usize,
}

impl Default for Limits {
    /// 10 s for the head (a phone on a poor mobile link sends its few
    /// hundred bytes in well under a second), 30 s for a body (the largest
    /// is a publish of 30 keys, a few kB), 64 connections per address (a
    /// carrier NAT of many phones each briefly connected), 4,096 in all.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            per_address: 64,
            total: 4096,
        }
    }
}

/// What the router learns of each client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addresses {
    /// Every request carries `ConnectInfo<SocketAddr>` (the issuer's rate
    /// limits are per address).
    Keep,
    /// Nothing: the address is forgotten at accept (the key server).
    Forget,
}

/// The body of the answer to a connection beyond a cap, in the API's error
/// shape (`{"error", "errorCode"}`).
const REFUSAL_BODY: &str = concat!(
    r#"{"error":"接続が多すぎるため、いまは受け付けられません。10秒ほどしてからもう一度お試しください。"#,
    r#" / Too many connections: not accepted now. Please try again in about 10 seconds.","#,
    r#""errorCode":"too_many_connections"}"#
);

/// Refusals being written at once; beyond it a refused connection is
/// closed without an answer (a flood must not turn the refusals into the
/// load).
const REFUSALS_IN_FLIGHT: usize = 256;

/// How long a refused connection may take to send its request (and again
/// to receive the answer).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `router` on `listener` with `limits` until `shutdown`, then waits
/// for the connections to finish their requests in flight.
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: Limits,
    addresses: Addresses,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: Listener<Addr = SocketAddr>,
{
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_timeout,
    ));
    let table = Arc::new(Table::new(limits));
    let refusing = Arc::new(AtomicUsize::new(0));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let slot = match Table::admit(&table, addr.ip()) {
            Ok(slot) => slot,
            Err(reason) => {
                metrics::counter!("http_connections_refused_total", "reason" => reason)
                    .increment(1);
                refuse(io, &refusing);
                continue;
            }
        };
        let service = router
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                if addresses == Addresses::Keep {
                    req.extensions_mut().insert(ConnectInfo(addr));
                }
                req
            });
        let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Held for as long as the connection is open.
            let _slot = slot;
            if let Err(e) = conn.await {
                // A client that times out, resets or sends garbage: theirs.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    // Stop listening before waiting: new clients are refused by the OS.
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection beyond a cap and closes it, off the accept loop:
/// its first request is read (within [`REFUSAL_TIMEOUT`]) and answered
/// `503 too_many_connections` with `Connection: close`, so that an HTTP
/// client reads the refusal as an answer to what it sent.
fn refuse<I>(io: I, refusing: &Arc<AtomicUsize>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if refusing.fetch_add(1, Ordering::AcqRel) >= REFUSALS_IN_FLIGHT {
        refusing.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let refusing = Arc::clone(refusing);
    tokio::spawn(async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(REFUSAL_TIMEOUT)
            .keep_alive(false);
        let answer = hyper::service::service_fn(|_req: hyper::Request<Incoming>| async {
            let mut resp = hyper::Response::new(http_body_util::Full::new(
                hyper::body::Bytes::from_static(REFUSAL_BODY.as_bytes()),
            ));
            *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
            let h = resp.headers_mut();
            use hyper::header::{
                CACHE_CONTROL, CONNECTION, CONTENT_TYPE, HeaderValue, RETRY_AFTER,
            };
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            h.insert(RETRY_AFTER, HeaderValue::from_static("10"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(CONNECTION, HeaderValue::from_static("close"));
            Ok::<_, std::convert::Infallible>(resp)
        });
        let conn = http.serve_connection(TokioIo::new(io), answer);
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT * 2, conn).await;
        refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// The open connections, in all and per (hashed) address.
struct Table {
    limits: Limits,
    /// Keys the address hash; drawn at start, never written anywhere.
    hasher: RandomState,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<u64, usize>,
}

/// One admitted connection; dropping it gives its place back.
struct Slot {
    table: Arc<Table>,
    address: u64,
}

impl Table {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            hasher: RandomState::new(),
            open: Mutex::new(Open::default()),
        }
    }

    /// The counted part of an address: the whole IPv4 address (also when
    /// mapped into IPv6), the /64 of an IPv6 address.
    fn address_key(&self, ip: IpAddr) -> u64 {
        match ip {
            IpAddr::V4(v4) => self.hasher.hash_one(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.hasher.hash_one(v4.octets()),
                None => self.hasher.hash_one(&v6.octets()[..8]),
            },
        }
    }

    fn admit(table: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let address = table.address_key(ip);
        let mut open = table.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= table.limits.total {
            return Err("total");
        }
        let mine = open.by_address.entry(address).or_insert(0);
        if *mine >= table.limits.per_address {
            return Err("per_address");
        }
        *mine += 1;
        open.total += 1;
        metrics::gauge!("http_connections_open").increment(1.0);
        Ok(Slot {
            table: Arc::clone(table),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
        metrics::gauge!("http_connections_open").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: usize, total: usize) -> Limits {
        Limits {
            per_address,
            total,
            ..Limits::default()
        }
    }

    #[test]
    fn an_address_gets_its_place_back_when_its_connection_closes() {
        let table = Arc::new(Table::new(limits(2, 10)));
        let ip: IpAddr = "203.0.113.7".parse().expect("an address");
        let a = Table::admit(&table, ip).ok();
        let b = Table::admit(&table, ip).ok();
        assert!(a.is_some() && b.is_some());
        assert_eq!(Table::admit(&table, ip).err(), Some("per_address"));
        drop(a);
        assert!(Table::admit(&table, ip).is_ok());
        drop(b);
        let open = table.open.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(open.total, 0, "every slot given back");
        assert!(open.by_address.is_empty(), "no address kept once closed");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let table = Arc::new(Table::new(limits(1, 10)));
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        let _one = Table::admit(&table, ip("2001:db8:1:2::1")).ok();
        assert_eq!(
            Table::admit(&table, ip("2001:db8:1:2:ffff::9")).err(),
            Some("per_address"),
            "same /64"
        );
        assert!(
            Table::admit(&table, ip("2001:db8:1:3::1")).is_ok(),
            "other /64"
        );
        let _v4 = Table::admit(&table, ip("192.0.2.1")).ok();
        assert_eq!(
            Table::admit(&table, ip("::ffff:192.0.2.1")).err(),
            Some("per_address")
        );
    }

    #[test]
    fn the_total_cap_holds_across_addresses() {
        let table = Arc::new(Table::new(limits(10, 2)));
        let _a = Table::admit(&table, IpAddr::from([192, 0, 2, 1])).ok();
        let _b = Table::admit(&table, IpAddr::from([192, 0, 2, 2])).ok();
        assert_eq!(
            Table::admit(&table, IpAddr::from([192, 0, 2, 3])).err(),
            Some("total")
        );
    }

    #[test]
    fn the_refusal_has_a_stable_code_and_both_languages() {
        let body: &str = REFUSAL_BODY;
        assert!(body.contains(r#""errorCode":"too_many_connections""#));
        assert!(body.contains("接続が多すぎる") && body.contains("Too many connections"));
    }
}
