//! Delivery backends: the outbox folder, SMTP against a real SMTP server the
//! test runs, a Twilio-compatible gateway, and failures.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use issuer::delivery::{
    Delivery, OutboxMessage, Sender, SmtpConfig, SmtpSender, SmtpTls, TwilioConfig, TwilioSender,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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

/// A minimal SMTP server: accepts every message and hands its DATA over.
async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let out = got.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let got = got.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    match verb.as_str() {
                        "EHLO" | "HELO" => {
                            w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await.unwrap()
                        }
                        "DATA" => {
                            w.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            got.lock().unwrap().push(data);
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        }
                        "QUIT" => {
                            w.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => w.write_all(b"250 ok\r\n").await.unwrap(),
                    }
                }
            });
        }
    });
    (port, out)
}

/// The text of a single-part message, decoding base64 or quoted-printable.
fn mail_text(data: &str) -> String {
    use base64::Engine as _;
    let (head, body) = data.split_once("\n\n").unwrap();
    let head = head.to_ascii_lowercase();
    if head.contains("content-transfer-encoding: base64") {
        let b: String = body.split_whitespace().collect();
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
    } else if head.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\n", "");
        let mut out = Vec::new();
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    } else {
        body.to_owned()
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
    assert_eq!(r.status, 502);
    let log = h
        .app
        .issuer
        .store()
        .audit_log(Some(h.centre_id), 10)
        .await
        .unwrap();
    assert_eq!(log[0].action, "issue_number");
    assert_eq!(log[0].outcome, "delivery_failed");
    assert_eq!(log[0].detail, "gateway down");
    assert_eq!(
        h.app
            .issuer
            .store()
            .stats(None, h.app.issuer.now())
            .await
            .unwrap()
            .delivery_failed,
        1
    );
}
