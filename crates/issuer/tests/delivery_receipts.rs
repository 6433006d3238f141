//! Delivery receipts (issue 13, "Delivery lifecycle"): a Twilio-compatible
//! gateway on loopback answers each message with its `sid`; the test plays
//! the gateway's status callbacks, signed as Twilio signs them, in every
//! order, twice, with a bad signature, and hours late (COCOA on 2022-01-14:
//! an SMS backlog let one-hour numbers expire before they arrived).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::browser::Browser;
use common::{Harness, Options, backends, case_json, start_with};
use issuer::delivery::{Delivery, Sender, TwilioConfig, TwilioSender};
use issuer::domain::model::Role;

const CALLBACK: &str = "https://issuer.example.jp/api/v1/delivery/twilio/status";
const TOKEN: &str = "receipt-token";
const PASSWORD: &str = "correct horse battery staple";

type Got = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A Twilio-compatible Messages API answering `SM1`, `SM2`, … in order.
async fn gateway() -> (String, Got) {
    use axum::extract::{Form, State};
    async fn messages(
        State(g): State<Got>,
        Form(f): Form<HashMap<String, String>>,
    ) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
        let mut got = g.lock().unwrap();
        got.push(f);
        let sid = format!("SM{}", got.len());
        (
            axum::http::StatusCode::CREATED,
            axum::Json(serde_json::json!({"sid": sid, "status": "queued"})),
        )
    }
    let got: Got = Arc::default();
    let app = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(messages),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, got)
}

/// Twilio's signature, computed here independently of the issuer.
fn sign(url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn receipt(h: &Harness, sid: &str, status: &str, error: Option<&str>) -> (u16, String) {
    let mut params = vec![
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("AccountSid", "AC123"),
    ];
    if let Some(e) = error {
        params.push(("ErrorCode", e));
    }
    let sig = sign(CALLBACK, &params);
    post_receipt(h, &params, &sig).await
}

async fn post_receipt(h: &Harness, params: &[(&str, &str)], sig: &str) -> (u16, String) {
    let r = h
        .http
        .post(format!("{}{}", h.base, issuer::http::TWILIO_STATUS_PATH))
        .header("x-twilio-signature", sig)
        .form(params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn start(db: &common::TestDb, base: &str, receipts: bool) -> Harness {
    start_delivering(db, base, receipts, None).await
}

/// [`start`], with e-mail through the SMTP server on `smtp_port`.
async fn start_delivering(
    db: &common::TestDb,
    base: &str,
    receipts: bool,
    smtp_port: Option<u16>,
) -> Harness {
    let sender = TwilioSender::new(TwilioConfig {
        base_url: base.to_owned(),
        account_sid: "AC123".into(),
        auth_token: TOKEN.to_owned().into(),
        from: "+815000000000".into(),
        status_callback: receipts.then(|| CALLBACK.to_owned()),
    })
    .unwrap();
    let h = start_with(
        db,
        Options {
            delivery: Some({
                let mut d = Delivery::uniform(Sender::Twilio(Arc::new(sender)));
                if let Some(port) = smtp_port {
                    d.email = Sender::Smtp(Arc::new(
                        issuer::delivery::SmtpSender::new(&issuer::delivery::SmtpConfig {
                            host: "127.0.0.1".into(),
                            port,
                            tls: issuer::delivery::SmtpTls::None,
                            username: None,
                            password: None,
                            from: "HER-SYS <noreply@example.jp>".into(),
                        })
                        .unwrap(),
                    ));
                }
                d
            }),
            ..Default::default()
        },
    )
    .await;
    // One-hour numbers, as COCOA's were on 2022-01-14.
    let store = h.app.issuer.store();
    let mut c = store.centre(h.centre_id).await.unwrap().unwrap();
    c.validity_seconds = 3600;
    store.update_centre(&c).await.unwrap();
    h
}

async fn latest(h: &Harness, case_id: i64) -> issuer::domain::model::Issuance {
    h.app
        .issuer
        .store()
        .issuance_history(case_id, h.app.issuer.now())
        .await
        .unwrap()
        .remove(0)
}

fn number_of(form: &HashMap<String, String>) -> String {
    form["Body"].split("処理番号: ").nth(1).unwrap()[..8].to_owned()
}

#[tokio::test]
async fn a_backlog_of_hours_never_expires_a_number_in_transit() {
    let (base, got) = gateway().await;
    for db in backends().await {
        got.lock().unwrap().clear();
        let h = start(&db, &base, true).await;
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "a").await.status, 200, "{}", h.label);
        let form = got.lock().unwrap()[0].clone();
        assert_eq!(form["StatusCallback"], CALLBACK);
        let number = number_of(&form);
        let i = latest(&h, id).await;
        assert_eq!((i.delivery_status.as_str(), i.delivered_at), ("sent", None));
        let sent_at = i.sent_at.unwrap();

        // The gateway is three hours behind: the one-hour number is still
        // in transit, and not dead.
        h.clock.advance(chrono::Duration::hours(3));
        assert_eq!(receipt(&h, "SM1", "sending", None).await.0, 200);
        assert_eq!(latest(&h, id).await.delivery_status, "sent");
        assert_eq!(receipt(&h, "SM1", "delivered", None).await.0, 200);
        let i = latest(&h, id).await;
        let delivered = sent_at + 3 * 3600;
        assert_eq!(i.delivery_status, "delivered");
        assert_eq!(i.delivered_at, Some(delivered));
        assert_eq!(i.expires_at, delivered + 3600, "validity from delivery");

        // Duplicates and late receipts change nothing.
        h.clock.advance(chrono::Duration::minutes(10));
        assert_eq!(receipt(&h, "SM1", "delivered", None).await.0, 200);
        assert_eq!(receipt(&h, "SM1", "sent", None).await.0, 200);
        assert_eq!(
            receipt(&h, "SM1", "undelivered", Some("30003")).await.0,
            200
        );
        let j = latest(&h, id).await;
        assert_eq!(
            (j.delivery_status.as_str(), j.delivered_at, j.expires_at),
            ("delivered", Some(delivered), delivered + 3600)
        );

        // 3 h 40 min after sending, 40 min after delivery: it works.
        h.clock.advance(chrono::Duration::minutes(30));
        let r = h.verify(&number).await;
        assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
    }
}

#[tokio::test]
async fn receipts_in_any_order_never_go_backwards_and_failures_withdraw_the_number() {
    let (base, got) = gateway().await;
    for db in backends().await {
        got.lock().unwrap().clear();
        let h = start(&db, &base, true).await;

        // undelivered first, then a late "sent" and "delivered": withdrawn.
        let a = h.create_case(&case_json()).await;
        assert_eq!(h.issue(a, "a").await.status, 200);
        let number_a = number_of(&got.lock().unwrap()[0]);
        assert_eq!(
            receipt(&h, "SM1", "undelivered", Some("30003")).await.0,
            200
        );
        for late in ["sent", "queued", "delivered", "failed"] {
            assert_eq!(receipt(&h, "SM1", late, None).await.0, 200);
        }
        let i = latest(&h, a).await;
        assert_eq!(i.delivery_status, "undelivered", "{}", h.label);
        assert_eq!(i.state.as_str(), "expired");
        assert_eq!(
            i.delivery_error.as_deref(),
            Some("undelivered: ErrorCode 30003")
        );
        assert_eq!(i.delivered_at, None);
        assert_ne!(h.verify(&number_a).await.status, 200);

        // failed straight after sending.
        let b = h.create_case(&case_json()).await;
        assert_eq!(h.issue(b, "b").await.status, 200);
        assert_eq!(receipt(&h, "SM2", "failed", Some("30008")).await.0, 200);
        let i = latest(&h, b).await;
        assert_eq!(
            (i.delivery_status.as_str(), i.state.as_str()),
            ("failed", "expired")
        );

        // A receipt for a message never sent: 404, nothing changed.
        let (s, body) = receipt(&h, "SM999", "delivered", None).await;
        assert_eq!(s, 404);
        assert!(body.contains("message_unknown"), "{body}");
    }
}

#[tokio::test]
async fn a_receipt_with_a_bad_signature_is_refused_and_changes_nothing() {
    let (base, got) = gateway().await;
    for db in backends().await {
        got.lock().unwrap().clear();
        let h = start(&db, &base, true).await;
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "a").await.status, 200);
        let before = latest(&h, id).await;
        let params = [("MessageSid", "SM1"), ("MessageStatus", "failed")];
        let good = sign(CALLBACK, &params);
        // Signed for other fields, with another URL, with another token,
        // not base64, missing.
        let other_fields = sign(
            CALLBACK,
            &[("MessageSid", "SM1"), ("MessageStatus", "delivered")],
        );
        let other_url = sign(
            "https://evil.example/api/v1/delivery/twilio/status",
            &params,
        );
        let other_token = {
            use base64::Engine as _;
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"guess").unwrap();
            mac.update(format!("{CALLBACK}MessageSidSM1MessageStatusfailed").as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        };
        for sig in [
            other_fields,
            other_url,
            other_token,
            "%%%".into(),
            String::new(),
        ] {
            let (s, body) = post_receipt(&h, &params, &sig).await;
            assert_eq!(s, 403, "{}: {sig}", h.label);
            assert!(body.contains("receipt_signature_invalid"), "{body}");
        }
        assert_eq!(latest(&h, id).await, before, "nothing changed");
        // The right signature works.
        assert_eq!(post_receipt(&h, &params, &good).await.0, 200);
        assert_eq!(latest(&h, id).await.delivery_status, "failed");
    }
}

#[tokio::test]
async fn without_receipts_validity_counts_from_sending_and_receipts_are_refused() {
    let (base, got) = gateway().await;
    let db = backends().await.remove(0);
    let h = start(&db, &base, false).await;
    let id = h.create_case(&case_json()).await;
    assert_eq!(h.issue(id, "a").await.status, 200);
    assert!(!got.lock().unwrap()[0].contains_key("StatusCallback"));
    let i = latest(&h, id).await;
    assert_eq!(i.delivery_status, "sent");
    assert_eq!(i.delivered_at, i.sent_at);
    assert_eq!(i.expires_at, i.issued_at + 3600);
    assert_eq!(receipt(&h, "SM1", "delivered", None).await.0, 403);
}

async fn queue_status(h: &Harness, issuance_id: i64, kind: issuer::store::MessageKind) -> String {
    h.app
        .issuer
        .store()
        .message_state(issuance_id, kind)
        .await
        .unwrap()
        .map(|s| s.status)
        .unwrap_or_default()
}

#[tokio::test]
async fn an_undelivered_sms_falls_back_to_email() {
    use issuer::store::MessageKind;
    let (base, got) = gateway().await;
    let (port, mail) = common::smtp_sink().await;
    for db in backends().await {
        got.lock().unwrap().clear();
        mail.lock().unwrap().clear();
        let h = start_delivering(&db, &base, true, Some(port)).await;
        let store = h.app.issuer.store();
        store
            .set_centre_delivery_settings(h.centre_id, true, Some(2))
            .await
            .unwrap();
        let mut c = case_json();
        c["email"] = "kenta@example.jp".into();
        let id = h.create_case(&c).await;
        assert_eq!(h.issue(id, "a").await.status, 200, "{}", h.label);
        let sid = format!("SM{}", got.lock().unwrap().len());
        let number = number_of(&got.lock().unwrap().last().unwrap().clone());
        let i = latest(&h, id).await;
        // Handed off, not yet delivered: the fallback waits for the receipt.
        assert_eq!(queue_status(&h, i.id, MessageKind::Fallback).await, "held");
        assert!(mail.lock().unwrap().is_empty());

        h.clock.advance(chrono::Duration::minutes(20));
        assert_eq!(receipt(&h, &sid, "undelivered", Some("30003")).await.0, 200);
        let i = latest(&h, id).await;
        assert_eq!(
            (
                i.channel.as_str(),
                i.state.as_str(),
                i.delivery_status.as_str()
            ),
            ("email", "issued", "pending"),
            "{}: not withdrawn, going by e-mail",
            h.label
        );
        assert_eq!(
            i.delivery_error.as_deref(),
            Some("fallback to email: undelivered: ErrorCode 30003")
        );
        assert_eq!(
            queue_status(&h, i.id, MessageKind::Reminder).await,
            "cancelled"
        );
        let pass = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(pass.sent, 1, "{}", h.label);
        let mails = mail.lock().unwrap().clone();
        assert_eq!(mails.len(), 1);
        assert_eq!(
            number_of(&HashMap::from([(
                "Body".to_owned(),
                common::mail_text(&mails[0])
            )])),
            number,
            "the same number"
        );
        let sent_at = h.app.issuer.now();
        let i = latest(&h, id).await;
        assert_eq!(i.delivery_status, "sent");
        assert_eq!(i.expires_at, sent_at + 3600, "validity from the e-mail");

        // A late SMS receipt changes nothing now.
        assert_eq!(receipt(&h, &sid, "delivered", None).await.0, 200);
        let j = latest(&h, id).await;
        assert_eq!(
            (j.channel.as_str(), j.delivery_status.as_str(), j.expires_at),
            ("email", "sent", sent_at + 3600)
        );
        let pass = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(pass.sent, 0);
        assert_eq!(h.verify(&number).await.status, 200);
    }
}

#[tokio::test]
async fn the_reminder_counts_from_the_delivered_receipt() {
    let (base, got) = gateway().await;
    for db in backends().await {
        got.lock().unwrap().clear();
        let h = start(&db, &base, true).await;
        let store = h.app.issuer.store();
        // 3-hour numbers, a reminder after 2 hours.
        let mut centre = store.centre(h.centre_id).await.unwrap().unwrap();
        centre.validity_seconds = 3 * 3600;
        store.update_centre(&centre).await.unwrap();
        store
            .set_centre_delivery_settings(h.centre_id, false, Some(2))
            .await
            .unwrap();
        let id = h.create_case(&case_json()).await;
        assert_eq!(h.issue(id, "a").await.status, 200);
        // A five-hour backlog: no reminder of a message not yet arrived.
        h.clock.advance(chrono::Duration::hours(5));
        h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(got.lock().unwrap().len(), 1, "{}", h.label);
        // The gateway retries its callbacks: twenty at once, `sent` and
        // `delivered` mixed. One delivery is recorded and one reminder
        // released.
        let burst = (0..20).map(|i| {
            let status = if i % 2 == 0 { "delivered" } else { "sent" };
            receipt(&h, "SM1", status, None)
        });
        for (status, _) in futures_util::future::join_all(burst).await {
            assert_eq!(status, 200, "{}", h.label);
        }
        let i = latest(&h, id).await;
        assert_eq!(i.delivery_status, "delivered", "{}", h.label);
        h.clock.advance(chrono::Duration::minutes(119));
        h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(
            got.lock().unwrap().len(),
            1,
            "not before 2 h after delivery"
        );
        h.clock.advance(chrono::Duration::minutes(2));
        let pass = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(pass.sent, 1, "{}", h.label);
        let all = got.lock().unwrap().clone();
        assert!(all[1]["Body"].starts_with("【HER-SYS】再送："));
        assert_eq!(number_of(&all[1]), number_of(&all[0]));
        let i = latest(&h, id).await;
        assert_eq!(
            queue_status(&h, i.id, issuer::store::MessageKind::Reminder).await,
            "sent"
        );
        // The reminder's own receipts are accepted (not 404) and kept on
        // its queue row; a late "delivered" and a duplicate change nothing,
        // and they never touch the number (its SMS was delivered).
        let burst = (0..20).map(|i| {
            if i % 2 == 0 {
                receipt(&h, "SM2", "undelivered", Some("30003"))
            } else {
                receipt(&h, "SM2", "sent", None)
            }
        });
        for (status, _) in futures_util::future::join_all(burst).await {
            assert_eq!(status, 200, "{}", h.label);
        }
        for (status, code) in [("delivered", None), ("undelivered", Some("30003"))] {
            assert_eq!(receipt(&h, "SM2", status, code).await.0, 200, "{status}");
        }
        let q = store
            .message_state(i.id, issuer::store::MessageKind::Reminder)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (q.receipt_status.as_deref(), q.last_error.as_deref()),
            (Some("undelivered"), Some("undelivered: ErrorCode 30003")),
            "{}",
            h.label
        );
        let i = latest(&h, id).await;
        assert_eq!(
            (i.state.as_str(), i.delivery_status.as_str()),
            ("issued", "delivered")
        );
        // Never more than one reminder, even one that did not arrive.
        h.clock.advance(chrono::Duration::minutes(30));
        assert_eq!(h.app.issuer.process_send_queue().await.unwrap().sent, 0);
        assert_eq!(got.lock().unwrap().len(), 2);
        // Staff see it on the case page.
        h.app
            .issuer
            .create_staff(h.centre_id, "yamada", PASSWORD, Role::Staff)
            .await
            .unwrap()
            .unwrap();
        let mut b = Browser::new(&h);
        b.login("yamada", PASSWORD).await;
        let p = b.get(&format!("/portal/cases/{id}?tab=id")).await;
        assert!(
            p.body.contains("id=\"reminder-state\">送信済み ")
                && p.body.contains("（届きませんでした。再送はしません）"),
            "{}",
            p.body
        );
        assert!(!p.body.contains(&number_of(&all[0])), "never the number");
        let p = b.get(&format!("/portal/cases/{id}?tab=id&lang=en")).await;
        assert!(
            p.body.contains("id=\"reminder-state\">Sent ")
                && p.body.contains(" (not delivered; not sent again)"),
            "{}",
            p.body
        );
    }
}
