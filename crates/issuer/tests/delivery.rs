//! Delivery backends: the outbox folder, SMTP against a real SMTP server the
//! test runs, a Twilio-compatible gateway, and failures.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use issuer::delivery::{
    Delivery, OutboxMessage, Sender, SmtpConfig, SmtpSender, SmtpTls, TwilioConfig, TwilioSender,
};

#[tokio::test]
async fn outbox_holds_one_json_file_per_message() {
    let dir = tempfile::tempdir().unwrap();
    for db in backends().await {
        let outbox = dir.path().join(db.label);
        let h = start_with(
            &db,
            Options {
                delivery: Some(Delivery::uniform(Sender::Outbox(outbox.clone()))),
                ..Default::default()
            },
        )
        .await;
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "a").await.status, 200);
        let files: Vec<_> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
        let keys: Vec<&String> = raw.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["body", "channel", "sent_at", "to"]);
        let m: OutboxMessage = serde_json::from_value(raw).unwrap();
        assert_eq!(m.channel, "sms");
        assert_eq!(m.to, "09012345678");
        assert_eq!(m.sent_at, "2020-12-16T01:00:00+00:00");
        let number = m.body.split("処理番号: ").nth(1).unwrap()[..8].to_owned();
        assert!(m.body.contains("https://cocoa.example.jp/cocoa/a/?pn="));
        assert_eq!(h.verify(&number).await.status, 200);
    }
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_server() {
    let (port, got) = smtp_sink().await;
    let smtp = SmtpSender::new(&SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "HER-SYS <noreply@example.jp>".into(),
    })
    .unwrap();
    let db = backends().await.remove(0);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let h = start_with(
        &db,
        Options {
            delivery: Some(Delivery {
                sms: Sender::Memory(sent),
                email: Sender::Smtp(Arc::new(smtp)),
                canary: None,
            }),
            ..Default::default()
        },
    )
    .await;
    let mut c = case_json();
    c["mobile"] = serde_json::Value::Null;
    c["email"] = "kenta@example.jp".into();
    let id = h.create_case(&c).await;
    let r = h.issue(id, "a").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let data = got
        .lock()
        .unwrap()
        .pop()
        .expect("the sink received the message");
    assert!(data.contains("To: kenta@example.jp"), "{data}");
    assert!(data.contains("From: HER-SYS <noreply@example.jp>"));
    let text = mail_text(&data);
    let number = text.split("処理番号: ").nth(1).unwrap()[..8].to_owned();
    assert!(text.contains("2020年12月17日 10:00"), "{text}");
    assert_eq!(h.verify(&number).await.status, 200);
}

/// (account and authorization, form fields) of one gateway request.
type GatewayRequest = (String, std::collections::HashMap<String, String>);

#[derive(Debug, Default, Clone)]
struct Gateway {
    got: Arc<Mutex<Vec<GatewayRequest>>>,
    fail: Arc<Mutex<bool>>,
}

async fn twilio_mock() -> (String, Gateway) {
    use axum::extract::{Form, Path, State};
    use axum::http::{HeaderMap, StatusCode};
    async fn messages(
        State(g): State<Gateway>,
        Path(sid): Path<String>,
        headers: HeaderMap,
        Form(f): Form<std::collections::HashMap<String, String>>,
    ) -> (StatusCode, axum::Json<serde_json::Value>) {
        let auth = headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        g.got.lock().unwrap().push((format!("{sid} {auth}"), f));
        if *g.fail.lock().unwrap() {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    serde_json::json!({"code": 21211, "message": "Invalid 'To' Phone Number"}),
                ),
            );
        }
        (
            StatusCode::CREATED,
            axum::Json(serde_json::json!({"sid": "SM1", "status": "queued"})),
        )
    }
    let g = Gateway::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(messages),
        )
        .with_state(g.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, g)
}

#[tokio::test]
async fn sms_goes_through_a_twilio_compatible_gateway_and_failures_withdraw_the_number() {
    let (base, gw) = twilio_mock().await;
    for db in backends().await {
        gw.got.lock().unwrap().clear();
        *gw.fail.lock().unwrap() = false;
        let sender = TwilioSender::new(TwilioConfig {
            base_url: base.clone(),
            account_sid: "AC123".into(),
            auth_token: "tok".to_owned().into(),
            from: "+815000000000".into(),
            status_callback: None,
        })
        .unwrap();
        assert!(
            !format!("{sender:?}").contains("\"tok\""),
            "the token never prints"
        );
        let h = start_with(
            &db,
            Options {
                delivery: Some(Delivery::uniform(Sender::Twilio(Arc::new(sender)))),
                ..Default::default()
            },
        )
        .await;
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "a").await.status, 200, "{}", h.label);
        let (who, form) = gw.got.lock().unwrap()[0].clone();
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("AC123:tok");
        assert_eq!(who, format!("AC123 Basic {basic}"));
        assert_eq!(form["To"], "+819012345678");
        assert_eq!(form["From"], "+815000000000");
        let number = form["Body"].split("処理番号: ").nth(1).unwrap()[..8].to_owned();

        // The gateway refuses: the new number is withdrawn, the reason is
        // recorded, and the old one died with the reissue.
        *gw.fail.lock().unwrap() = true;
        let r = h.issue(id, "b").await;
        assert_eq!(
            (r.status, r.body["errorCode"].as_str()),
            (502, Some("delivery_failed"))
        );
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .contains("Invalid 'To' Phone Number")
        );
        let hist = h
            .app
            .issuer
            .store()
            .issuance_history(id, h.app.issuer.now())
            .await
            .unwrap();
        assert_eq!(hist[0].delivery_status, "failed");
        assert_eq!(hist[0].state.as_str(), "expired");
        assert!(hist[0].delivery_error.as_deref().unwrap().contains("400"));
        assert_eq!(h.verify(&number).await.body["errorCode"], "code_invalid");
        // A retry with the same key replays the answer without a new attempt.
        let before = gw.got.lock().unwrap().len();
        assert_eq!(h.issue(id, "b").await.status, 502);
        assert_eq!(gw.got.lock().unwrap().len(), before);
        // A new request (new key) once the gateway works again sends anew.
        *gw.fail.lock().unwrap() = false;
        assert_eq!(h.issue(id, "c").await.status, 200);
        assert_eq!(gw.got.lock().unwrap().len(), before + 1);
    }
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_visible_failure() {
    let db = backends().await.remove(0);
    let h = start_with(
        &db,
        Options {
            delivery: Some(Delivery::uniform(Sender::Failing("gateway down".into()))),
            ..Default::default()
        },
    )
    .await;
    let id = h.create_case(&case_json()).await;
    let r = h.issue(id, "a").await;
    // The gateway may come back: the number waits in the send queue, live.
    assert_eq!((r.status, r.body["status"].as_str()), (202, Some("queued")));
    let log = h
        .app
        .issuer
        .store()
        .audit_log(Some(h.centre_id), 10)
        .await
        .unwrap();
    assert_eq!(log[0].action, "issue_number");
    assert_eq!(log[0].outcome, "queued");
    // It never comes back: after the last attempt the message is
    // dead-lettered and the number withdrawn, visibly.
    for _ in 0..issuer::delivery::MAX_ATTEMPTS {
        h.clock.advance(chrono::Duration::minutes(16));
        h.app.issuer.process_send_queue().await.unwrap();
    }
    let store = h.app.issuer.store();
    let dead = store.dead_letters(id).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "gateway down");
    assert_eq!(dead[0].attempts, issuer::delivery::MAX_ATTEMPTS);
    let stats = store
        .stats(None, 0, i64::MAX, h.app.issuer.now())
        .await
        .unwrap();
    assert_eq!(stats.delivery_failed, 1);
    let hist = store
        .issuance_history(id, h.app.issuer.now())
        .await
        .unwrap();
    assert_eq!(hist[0].state.as_str(), "expired", "withdrawn");
    assert_eq!(hist[0].delivery_error.as_deref(), Some("gateway down"));
}

/// The payload of a JWT, decoded.
fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn canary_cases_go_to_the_canary_channel_and_name_the_canary_issuer() {
    let (gateway, gw) = twilio_mock().await;
    for db in backends().await {
        gw.got.lock().unwrap().clear();
        let dir = tempfile::tempdir().unwrap();
        let config = issuer::IssuerConfig {
            database_url: Some(db.url.clone()),
            canary: Some(issuer::config::CanaryConfig {
                gateway: TwilioConfig {
                    base_url: gateway.clone(),
                    account_sid: "ACcanary".into(),
                    auth_token: "canary-token".to_owned().into(),
                    from: "cocoa".into(),
                    status_callback: None,
                },
                certificate_issuer: "cocoa-canary".into(),
            }),
            ..Default::default()
        };
        let clock = Arc::new(en_protocol::time::FixedClock::new(t0()));
        let app = issuer::http::build(&config, dir.path(), clock)
            .await
            .unwrap();
        let now = app.issuer.now();
        let centre = app
            .issuer
            .store()
            .create_centre("みなと保健所", "13", now)
            .await
            .unwrap();
        let (admin, _) = app
            .issuer
            .create_api_key(issuer::store::ApiKeyKind::Admin, Some(centre))
            .await
            .unwrap();
        let (device, _) = app
            .issuer
            .create_api_key(issuer::store::ApiKeyKind::Device, None)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = issuer::http::router(app.clone(), 64 * 1024);
        tokio::spawn(issuer::http::serve_router(
            router,
            listener,
            std::future::pending(),
        ));
        let http = reqwest::Client::new();
        // The machine API's calls carry an Idempotency-Key (the path will
        // do); the phone's calls here are first attempts, without one.
        let post = |path: &str, key: &str, body: serde_json::Value| {
            let mut r = http
                .post(format!("{base}{path}"))
                .header("x-api-key", key.to_owned());
            if path.starts_with("/api/v1/") {
                r = r.header("idempotency-key", path.to_owned());
            }
            r.json(&body).send()
        };

        // A canary case: its number goes to the canary receiver, addressed
        // by the case, never to a phone number or the outbox.
        let r = post("/api/v1/canary-cases", &admin, serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", db.label);
        let id = r.json::<serde_json::Value>().await.unwrap()["case_id"]
            .as_i64()
            .unwrap();
        let r = post(
            &format!("/api/v1/cases/{id}/processing-number"),
            &admin,
            serde_json::json!({}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["channel"],
            "canary"
        );
        let (who, form) = gw.got.lock().unwrap()[0].clone();
        assert!(who.starts_with("ACcanary Basic "), "{who}");
        assert_eq!(form["To"], format!("canary-case-{id}"));
        assert!(!dir.path().join("outbox").exists(), "nothing in the outbox");
        let number = number_in(&form["Body"]);

        // The `iss` of the certificate a phone gets with a number.
        let iss_of = |number: String| {
            let (post, device) = (&post, &device);
            async move {
                let token = post("/api/verify", device, serde_json::json!({"code": number}))
                    .await
                    .unwrap()
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()["token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let cert = post(
                    "/api/certificate",
                    device,
                    serde_json::json!({"token": token, "ekeyhmac": hmac32()}),
                )
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()["certificate"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                jwt_claims(&cert)["iss"].clone()
            }
        };
        // Its certificate names the canary issuer.
        assert_eq!(iss_of(number).await, "cocoa-canary");

        // An ordinary case still names the ordinary issuer.
        let r = post("/api/v1/cases", &admin, case_json()).await.unwrap();
        let id = r.json::<serde_json::Value>().await.unwrap()["case_id"]
            .as_i64()
            .unwrap();
        post(
            &format!("/api/v1/cases/{id}/processing-number"),
            &admin,
            serde_json::json!({}),
        )
        .await
        .unwrap();
        let outbox = dir.path().join("outbox");
        let file = std::fs::read_dir(&outbox).unwrap().next().unwrap().unwrap();
        let msg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file.path()).unwrap()).unwrap();
        let number = number_in(msg["body"].as_str().unwrap());
        assert_eq!(iss_of(number).await, "cocoa-issuer");
    }
}

#[tokio::test]
async fn canary_cases_are_refused_without_a_canary_channel() {
    for db in backends().await {
        let h = start(&db).await;
        let r = h
            .post("/api/v1/canary-cases", Some(&h.admin_key), None, "{}")
            .await;
        assert_eq!(
            (r.status, r.body["errorCode"].as_str()),
            (409, Some("canary_not_configured")),
            "{}",
            h.label
        );
        let r = h
            .post(
                "/api/v1/canary-cases",
                Some(&h.admin_key),
                None,
                r#"{"centre":1}"#,
            )
            .await;
        assert_eq!(r.status, 400, "unknown fields are refused");
        let r = h.post("/api/v1/canary-cases", None, None, "{}").await;
        assert_eq!(r.status, 401);
        assert_eq!(h.count("cases").await, 0, "nothing stored");
    }
}

/// A port with nothing listening.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// An SMS gateway that sends the message but answers only after `delay`.
async fn slow_gateway(delay: std::time::Duration) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::extract::{Form, State};
    type Got = Arc<Mutex<Vec<String>>>;
    async fn messages(
        State((got, delay)): State<(Got, std::time::Duration)>,
        Form(f): Form<std::collections::HashMap<String, String>>,
    ) -> (axum::http::StatusCode, &'static str) {
        // It sends the message, but its answer comes too late.
        got.lock().unwrap().push(f["Body"].clone());
        tokio::time::sleep(delay).await;
        (axum::http::StatusCode::CREATED, r#"{"sid":"SM1"}"#)
    }
    let got: Got = Arc::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(messages),
        )
        .with_state((got.clone(), delay));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, got)
}

/// An SMTP server that accepts connections and never says a word.
async fn silent_smtp() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

fn twilio(base: String) -> TwilioConfig {
    TwilioConfig {
        base_url: base,
        account_sid: "AC1".into(),
        auth_token: "tok".to_owned().into(),
        from: "+815000000000".into(),
        status_callback: None,
    }
}

fn smtp(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "HER-SYS <noreply@example.jp>".into(),
    }
}

/// The number in a message body.
fn number_in(body: &str) -> String {
    body.split("処理番号: ").nth(1).unwrap()[..8].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_down_or_slow_leave_the_number_live_and_queued() {
    let timeout = std::time::Duration::from_millis(700);
    let (slow_base, slow_got) = slow_gateway(std::time::Duration::from_secs(2)).await;
    let down_sms = format!("http://127.0.0.1:{}", closed_port().await);
    let down_smtp = closed_port().await;
    let silent = silent_smtp().await;
    for db in backends().await {
        slow_got.lock().unwrap().clear();
        let cases: [(&str, Sender, bool); 4] = [
            (
                "sms gateway down",
                Sender::Twilio(Arc::new(
                    TwilioSender::with_timeout(twilio(down_sms.clone()), timeout).unwrap(),
                )),
                true,
            ),
            (
                "sms gateway slow",
                Sender::Twilio(Arc::new(
                    TwilioSender::with_timeout(twilio(slow_base.clone()), timeout).unwrap(),
                )),
                true,
            ),
            (
                "smtp server down",
                Sender::Smtp(Arc::new(
                    SmtpSender::with_timeout(&smtp(down_smtp), timeout).unwrap(),
                )),
                false,
            ),
            (
                "smtp server silent",
                Sender::Smtp(Arc::new(
                    SmtpSender::with_timeout(&smtp(silent), timeout).unwrap(),
                )),
                false,
            ),
        ];
        for (what, sender, sms) in cases {
            let sent = Arc::new(Mutex::new(Vec::new()));
            let fine = Sender::Memory(sent.clone());
            let broken = if sms {
                Delivery {
                    sms: sender,
                    email: fine.clone(),
                    canary: None,
                }
            } else {
                Delivery {
                    sms: fine.clone(),
                    email: sender,
                    canary: None,
                }
            };
            let h = start_with(
                &db,
                Options {
                    delivery: Some(broken),
                    ..Default::default()
                },
            )
            .await;
            let mut c = case_json();
            if !sms {
                c["mobile"] = serde_json::Value::Null;
                c["email"] = "kenta@example.jp".into();
            }
            let id = h.create_case(&c).await;
            let started = std::time::Instant::now();
            let r = h.issue(id, "first").await;
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{what}: the issuer gives up in time"
            );
            // COCOA #711: a gateway that is down or slow must not cost the
            // person their number. 202: live, waiting in the send queue,
            // its validity counted from sending.
            assert_eq!(
                (r.status, r.body["status"].as_str()),
                (202, Some("queued")),
                "{what} {}: {}",
                h.label,
                r.body
            );
            let hist = h
                .app
                .issuer
                .store()
                .issuance_history(id, h.app.issuer.now())
                .await
                .unwrap();
            assert_eq!(hist.len(), 1, "{what}");
            assert_eq!(hist[0].delivery_status, "pending", "{what}");
            assert_eq!(hist[0].state.as_str(), "issued", "{what}: left live");
            assert_eq!(
                hist[0].expires_at - hist[0].issued_at,
                issuer::domain::rules::MAX_TRANSIT_SECONDS + 86_400,
                "{what}: the in-transit ceiling until it is sent"
            );
            let q = h
                .app
                .issuer
                .store()
                .message_state(hist[0].id, issuer::store::MessageKind::Number)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((q.status.as_str(), q.attempts), ("queued", 1), "{what}");
            assert!(q.last_error.is_some_and(|e| !e.is_empty()), "{what}");
            // The same request again: the stored answer, nothing sent.
            let again = h.issue(id, "first").await;
            assert_eq!(again.status, 202, "{what}");
            assert_eq!(
                h.app
                    .issuer
                    .store()
                    .issuance_history(id, h.app.issuer.now())
                    .await
                    .unwrap()
                    .len(),
                1,
                "{what}: no second attempt on a replay"
            );
            if what == "sms gateway slow" {
                // The gateway did send the message whose answer was lost:
                // the number it carries works.
                let late = slow_got.lock().unwrap().clone();
                assert_eq!(late.len(), 1, "the message went out");
                let r = h.verify(&number_in(&late[0])).await;
                assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
            }
            assert!(
                sent.lock().unwrap().is_empty(),
                "{what}: no other channel used"
            );
        }
    }
}
