//! The canary's delivery channel: a receiver that speaks the subset of the
//! Twilio Messages API the issuer's SMS client uses
//! (`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form fields `To`,
//! `From`, `Body`, basic authentication), so the issuer delivers canary
//! cases' numbers here exactly as it delivers SMS to a gateway.
//!
//! A message is held in memory only until the run that waits for it takes
//! it; its body (which holds a processing number) is never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::Notify;

/// Credentials the issuer must present (its `[issuer.canary.gateway]`
/// `account_sid` and `auth_token`).
#[derive(Clone)]
pub struct InboxAuth {
    /// Account SID.
    pub account_sid: String,
    /// Auth token.
    pub auth_token: String,
}

impl std::fmt::Debug for InboxAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxAuth")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

/// Messages received, by `To`.
#[derive(Debug, Clone)]
pub struct Inbox {
    auth: Arc<InboxAuth>,
    messages: Arc<Mutex<HashMap<String, String>>>,
    arrived: Arc<Notify>,
}

impl Inbox {
    /// An empty inbox accepting `auth`.
    pub fn new(auth: InboxAuth) -> Self {
        Self {
            auth: Arc::new(auth),
            messages: Arc::new(Mutex::new(HashMap::new())),
            arrived: Arc::new(Notify::new()),
        }
    }

    /// The routes of the receiver.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(receive))
            .with_state(self.clone())
    }

    /// Takes the message to `to`, waiting up to `timeout` for it.
    pub async fn take(&self, to: &str, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so an arrival in between wakes us.
            let arrived = self.arrived.notified();
            if let Some(body) = self.lock().remove(to) {
                return Some(body);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.lock().remove(to);
            }
        }
    }

    /// Drops every message held (numbers of runs that gave up).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.messages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn authorised(&self, sid: &str, headers: &HeaderMap) -> bool {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                self.auth.account_sid, self.auth.auth_token
            ))
        );
        let given = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // The token is a secret: compared in constant time.
        sid == self.auth.account_sid && bool::from(given.ct_eq(expected.as_bytes()))
    }
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"code": code, "message": message, "status": status.as_u16()})
            .to_string(),
    )
        .into_response()
}

async fn receive(
    State(inbox): State<Inbox>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !inbox.authorised(&sid, &headers) {
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let (Some(to), Some(body)) = (form.get("To"), form.get("Body")) else {
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' and a 'Body' are required",
        );
    };
    if to.len() > 64 || body.len() > 4096 {
        return twilio_error(StatusCode::BAD_REQUEST, 21617, "Message too long");
    }
    tracing::info!(to = %to, "canary message received");
    inbox.lock().insert(to.clone(), body.clone());
    inbox.arrived.notify_waiters();
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"sid": "SMcanary", "status": "queued", "to": to}).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn serve(inbox: &Inbox) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = inbox.router();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    #[tokio::test]
    async fn takes_what_the_issuer_posts_and_refuses_wrong_credentials() {
        let inbox = Inbox::new(InboxAuth {
            account_sid: "ACcanary".into(),
            auth_token: "t0ken".into(),
        });
        let base = serve(&inbox).await;
        let url = format!("{base}/2010-04-01/Accounts/ACcanary/Messages.json");
        let client = reqwest::Client::new();
        let form = [
            ("To", "canary-case-7"),
            ("From", "x"),
            ("Body", "処理番号: 12345678"),
        ];
        let wrong = client
            .post(&url)
            .basic_auth("ACcanary", Some("nope"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let other_account = client
            .post(format!("{base}/2010-04-01/Accounts/ACother/Messages.json"))
            .basic_auth("ACcanary", Some("t0ken"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(other_account.status(), 401);
        assert_eq!(inbox.take("canary-case-7", Duration::ZERO).await, None);

        let waiting = {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.take("canary-case-7", Duration::from_secs(10)).await })
        };
        let ok = client
            .post(&url)
            .basic_auth("ACcanary", Some("t0ken"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 201);
        assert_eq!(
            waiting.await.unwrap().as_deref(),
            Some("処理番号: 12345678")
        );
        // Taken once: the number is not kept.
        assert_eq!(inbox.take("canary-case-7", Duration::ZERO).await, None);
        let missing = client
            .post(&url)
            .basic_auth("ACcanary", Some("t0ken"))
            .form(&[("To", "canary-case-8")])
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 400);
    }
}
