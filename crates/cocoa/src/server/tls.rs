//! TLS termination for `cocoa serve` (`tls_cert` + `tls_key`): rustls with
//! the ring provider, HTTP/1.1. [`TlsListener`] is an `axum::serve`
//! listener, so graceful shutdown and the issuer's client addresses work as
//! on plain TCP. Handshakes run beside the accept loop, so a slow or silent
//! client cannot hold up the others; failures are logged without the
//! client's address.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::commands::bad_input;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; further connections wait to start theirs.
const MAX_HANDSHAKES: usize = 256;

/// The rustls configuration of a PEM certificate chain and private key.
/// An unreadable or malformed file is bad input (exit status 2); the error
/// names the file, never its content.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let unreadable = |what_ja: &str, what_en: &str, path: &Path, why: String| {
        bad_input(format!(
            "{what_ja} {} を読み取れません（{why}）。 / Cannot read the {what_en} {}: {why}.",
            path.display(),
            path.display()
        ))
    };
    let pem_why = |e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        // Other errors could quote a line of the file: say what, not where.
        _ => "not PEM".to_owned(),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| unreadable("TLS 証明書", "TLS certificate", cert, pem_why(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable("TLS 証明書", "TLS certificate", cert, pem_why(e)))?;
    if certs.is_empty() {
        return Err(unreadable(
            "TLS 証明書",
            "TLS certificate",
            cert,
            "no CERTIFICATE block".into(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::Io(e) => e.to_string(),
            _ => "no PKCS#8, PKCS#1 or SEC1 private key".to_owned(),
        };
        unreadable("TLS 秘密鍵", "TLS private key", key, why)
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad_input(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| {
            bad_input(format!(
                "TLS 証明書と秘密鍵を使えません（{e}）。 / The TLS certificate and key cannot be used: {e}."
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener that hands `axum::serve` connections whose TLS handshake is
/// done, with the client's address mapped by the function given (the key
/// server's roles forget it at accept).
#[derive(Debug)]
pub struct TlsListener<A> {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, A)>,
    local: SocketAddr,
    addr: fn(SocketAddr) -> A,
}

impl<A: Send + 'static> TlsListener<A> {
    /// Starts accepting on `tcp`. The accept loop ends, closing `tcp`, when
    /// the listener is dropped (as `axum::serve` does at shutdown).
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        addr: fn(SocketAddr) -> A,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), addr, tx));
        Ok(Self { ready, local, addr })
    }
}

async fn accept_loop<A: Send + 'static>(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    addr: fn(SocketAddr) -> A,
    tx: mpsc::Sender<(TlsStream<TcpStream>, A)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let (io, peer) = tokio::select! {
            () = tx.closed() => return,
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = io.set_nodelay(true);
        let peer = addr(peer);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Ok(Ok(tls)) => {
                    drop(permit);
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
}

impl<A: Send + 'static> axum::serve::Listener for TlsListener<A> {
    type Io = TlsStream<TcpStream>;
    type Addr = A;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok((self.addr)(self.local))
    }
}
