//! The phone's HTTP: JSON posts to the issuer and the key server, and
//! downloads of the export index and files. Every request goes through here,
//! so what leaves the phone is decided in one place.

use std::time::Duration;

use base64::Engine as _;
use rand_core::CryptoRngCore;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Header carrying the app's API key.
pub const API_KEY_HEADER: &str = "X-API-Key";
/// Header carrying a registration's retry key (the same on every retry of a
/// step, so a server can recognise a repeat; see docs/device.md).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Largest export file downloaded (a file of 500,000 keys is about 11 MB zipped).
pub const MAX_DOWNLOAD_BYTES: usize = 80 << 20;
/// Largest JSON answer or index read.
pub const MAX_SMALL_BYTES: usize = 4 << 20;
/// Largest served configuration document read (COCOA's are under 2 KB).
pub const MAX_CONFIGURATION_BYTES: usize = 64 << 10;

/// The HTTP client of a phone.
pub fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("cocoa-rs-device/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Unavailable {
            detail: e.to_string(),
        })
}

/// Random padding (base64 of 16 to 271 random bytes) so that requests of
/// every kind look alike on the wire.
pub fn padding(rng: &mut dyn CryptoRngCore) -> String {
    let mut len = [0u8; 1];
    rng.fill_bytes(&mut len);
    let mut bytes = vec![0u8; 16 + usize::from(len[0])];
    rng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What a server answered to a JSON post.
#[derive(Debug)]
pub enum Answer<T> {
    /// 2xx and the expected body.
    Ok(T),
    /// 4xx with an error code (`errorCode` or `code`).
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The message for people.
        message: String,
    },
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable {
        detail: e.to_string(),
    }
}

/// Reads a body of at most `limit` bytes.
pub async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Error::UnexpectedAnswer {
            detail: format!("answer of {} bytes is over the limit", limit),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unavailable)? {
        if body.len() + chunk.len() > limit {
            return Err(Error::UnexpectedAnswer {
                detail: format!("answer is over the limit of {limit} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// POSTs `body` as JSON. Network failures, 5xx and 429 are errors (the
/// caller keeps its state and the user tries again); 4xx answers with an
/// error code are [`Answer::Refused`]; 401 is [`Error::Unauthorized`].
pub async fn post_json<B: Serialize, T: DeserializeOwned>(
    client: &reqwest::Client,
    url: reqwest::Url,
    headers: &[(&str, &str)],
    body: &B,
) -> Result<Answer<T>> {
    let mut req = client.post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.map_err(unavailable)?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bytes = read_body(resp, MAX_SMALL_BYTES).await?;
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Typed numbers refused for a while (the link still works) is not "busy".
        let code = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("errorCode")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            });
        use api_types::verify::codes;
        return Err(match code.as_deref() {
            Some(codes::NUMBER_ATTEMPTS_EXHAUSTED) => Error::NumberEntryPaused {
                retry_after,
                everywhere: false,
            },
            Some(codes::TYPED_NUMBERS_PAUSED) => Error::NumberEntryPaused {
                retry_after,
                everywhere: true,
            },
            _ => Error::RateLimited { retry_after },
        });
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(Error::Unauthorized);
    }
    if status.is_server_error() {
        return Err(unavailable(format!("server answered {status}")));
    }
    if status.is_success() {
        return serde_json::from_slice(&bytes).map(Answer::Ok).map_err(|e| {
            Error::UnexpectedAnswer {
                detail: format!("{status}: {e}"),
            }
        });
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default, rename = "errorCode")]
        error_code: Option<String>,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        error: Option<String>,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
    match parsed {
        Some(ErrorBody {
            error_code,
            code,
            error,
        }) if error_code.is_some() || code.is_some() => Ok(Answer::Refused {
            status: status.as_u16(),
            code: error_code.or(code).unwrap_or_default(),
            message: error.unwrap_or_default(),
        }),
        _ => Err(Error::UnexpectedAnswer {
            detail: format!("{status} without an error code"),
        }),
    }
}

/// GETs a URL (`http(s)://` or `file://`) into memory, at most `limit` bytes.
pub async fn fetch(client: &reqwest::Client, url: &reqwest::Url, limit: usize) -> Result<Vec<u8>> {
    fetch_optional(client, url, limit)
        .await?
        .ok_or_else(|| unavailable(format!("GET {url}: not found")))
}

/// [`fetch`], with `None` for a missing object (404, or no such file).
pub async fn fetch_optional(
    client: &reqwest::Client,
    url: &reqwest::Url,
    limit: usize,
) -> Result<Option<Vec<u8>>> {
    if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|()| unavailable(format!("{url} is not a local path")))?;
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(format!("{url}: {e}"))),
        };
        if meta.len() > limit as u64 {
            return Err(Error::UnexpectedAnswer {
                detail: format!("{url} is over the limit of {limit} bytes"),
            });
        }
        return std::fs::read(&path)
            .map(Some)
            .map_err(|e| unavailable(format!("{url}: {e}")));
    }
    let resp = client.get(url.clone()).send().await.map_err(unavailable)?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(unavailable(format!("GET {url}: {status}")));
    }
    read_body(resp, limit).await.map(Some)
}

/// What a GET with `If-None-Match` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revalidated {
    /// 404: nothing there.
    NotFound,
    /// 304: the copy with that entity tag is still current.
    NotModified,
    /// 200: the body and its entity tag, when the server sent one.
    Body {
        /// The body, at most the limit.
        bytes: Vec<u8>,
        /// Its `ETag`.
        etag: Option<String>,
    },
}

/// GETs an `http(s)://` URL, sending `If-None-Match: etag` when one is given, at most
/// `limit` bytes. Network failures and other statuses are errors, as for [`fetch`].
pub async fn fetch_revalidated(
    client: &reqwest::Client,
    url: &reqwest::Url,
    etag: Option<&str>,
    limit: usize,
) -> Result<Revalidated> {
    let mut req = client.get(url.clone());
    if let Some(tag) = etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, tag);
    }
    let resp = req.send().await.map_err(unavailable)?;
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Ok(Revalidated::NotFound);
    }
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Revalidated::NotModified);
    }
    if !status.is_success() {
        return Err(unavailable(format!("GET {url}: {status}")));
    }
    let etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(Revalidated::Body {
        bytes: read_body(resp, limit).await?,
        etag,
    })
}
