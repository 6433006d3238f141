//! The send queue (issue 13, "Delivery lifecycle"): retry with backoff
//! under the injected clock, dead-letter, leases after a crash, two workers,
//! the sealed text at rest, and the centre delivery settings. Every test
//! runs on SQLite and PostgreSQL, against a loopback Twilio-compatible
//! gateway.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use issuer::delivery::{Message, backoff_seconds};
use issuer::domain::model::{Channel, ReportType};
use issuer::store::{MessageKind, NewIssuance, Store};
use sqlx::Row;

/// How the loopback gateway answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    Down,
    Invalid,
}

#[derive(Clone)]
struct Gateway {
    mode: Arc<Mutex<Mode>>,
    /// Bodies of the messages accepted.
    accepted: Arc<Mutex<Vec<String>>>,
    /// Calls answered with an error.
    refused: Arc<Mutex<usize>>,
    base: String,
}

impl Gateway {
    async fn start() -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let g = Self {
            mode: Arc::new(Mutex::new(Mode::Up)),
            accepted: Arc::default(),
            refused: Arc::default(),
            base: format!("http://{}", l.local_addr().unwrap()),
        };
        let state = g.clone();
        let app = axum::Router::new().route(
            "/2010-04-01/Accounts/{sid}/Messages.json",
            axum::routing::post(
                move |axum::Form(f): axum::Form<std::collections::HashMap<String, String>>| {
                    let g = state.clone();
                    async move {
                        let mode = *g.mode.lock().unwrap();
                        match mode {
                            Mode::Up => {
                                let mut a = g.accepted.lock().unwrap();
                                a.push(f.get("Body").cloned().unwrap_or_default());
                                let sid = format!("SM{:032}", a.len());
                                (
                                    axum::http::StatusCode::CREATED,
                                    axum::Json(serde_json::json!({"sid": sid, "status": "queued"})),
                                )
                            }
                            Mode::Down => {
                                *g.refused.lock().unwrap() += 1;
                                (
                                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                    axum::Json(serde_json::json!({"message": "maintenance"})),
                                )
                            }
                            Mode::Invalid => {
                                *g.refused.lock().unwrap() += 1;
                                (
                                    axum::http::StatusCode::BAD_REQUEST,
                                    axum::Json(serde_json::json!({
                                        "code": 21211, "message": "The 'To' number is not a valid phone number."
                                    })),
                                )
                            }
                        }
                    }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        g
    }

    fn set(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

async fn harness(db: &common::TestDb) -> (common::Harness, Gateway) {
    let g = Gateway::start().await;
    let h = common::start_with(
        db,
        common::Options {
            delivery: Some(common::twilio_delivery(&g.base)),
            ..common::Options::default()
        },
    )
    .await;
    (h, g)
}

/// Queues, for a new case, an issuance and its number message (as the
/// issue path does, in one transaction); returns (issuance id, body).
async fn queue_one(h: &common::Harness, n: usize) -> (i64, String) {
    let case_id = h.create_case(&common::case_json()).await;
    let now = h.app.issuer.now();
    let body = format!("処理番号 {n:010} https://cocoa.example.jp/a/{n}");
    let msg = Message {
        channel: Channel::Sms,
        to: "09012345678".into(),
        subject: None,
        body: body.clone(),
    };
    let id = h
        .app
        .issuer
        .store()
        .insert_issuance_queued(
            &NewIssuance {
                case_id,
                number_hmac: &format!("n-{:016x}", rand::random::<u64>()),
                link_hmac: &format!("l-{:016x}", rand::random::<u64>()),
                report_type: ReportType::Confirmed,
                channel: Channel::Sms,
                issued_by: "test",
                issued_at: now,
                expires_at: now + 86_400,
            },
            &msg,
        )
        .await
        .unwrap();
    (id, body)
}

async fn queue_row(store: &Store, issuance_id: i64) -> (String, i64, Option<String>) {
    let r = sqlx::query(
        "SELECT status, attempts, sealed_message FROM send_queue WHERE issuance_id = $1",
    )
    .bind(issuance_id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    (
        r.get("status"),
        r.get("attempts"),
        r.get::<Option<String>, _>("sealed_message"),
    )
}

async fn delivery_status(store: &Store, issuance_id: i64) -> String {
    sqlx::query_scalar("SELECT delivery_status FROM issuances WHERE id = $1")
        .bind(issuance_id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn gateway_down_then_up_is_retried_with_backoff_and_sent_once() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        let store = h.app.issuer.store().clone();
        let (id, body) = queue_one(&h, 1).await;
        g.set(Mode::Down);
        let p = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!((p.sent, p.retried, p.dead), (0, 1, 0), "{}", db.label);
        // Not due again before the backoff has passed.
        h.clock
            .advance(chrono::Duration::seconds(backoff_seconds(1) - 1));
        let p = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(p.retried + p.sent, 0, "{}", db.label);
        h.clock.advance(chrono::Duration::seconds(1));
        let p = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(p.retried, 1, "{}", db.label);
        assert_eq!(queue_row(&store, id).await.1, 2);
        // Up again; the third attempt waits backoff(2) = 60 s.
        g.set(Mode::Up);
        h.clock.advance(chrono::Duration::seconds(30));
        assert_eq!(h.app.issuer.process_send_queue().await.unwrap().sent, 0);
        h.clock.advance(chrono::Duration::seconds(30));
        assert_eq!(h.app.issuer.process_send_queue().await.unwrap().sent, 1);
        h.clock.advance(chrono::Duration::hours(2));
        assert_eq!(h.app.issuer.process_send_queue().await.unwrap().sent, 0);
        assert_eq!(g.accepted(), vec![body], "{}: sent once", db.label);
        let (status, attempts, sealed) = queue_row(&store, id).await;
        assert_eq!((status.as_str(), attempts), ("sent", 3), "{}", db.label);
        assert!(sealed.is_none(), "{}: text cleared once sent", db.label);
        assert_eq!(delivery_status(&store, id).await, "sent");
    }
}

#[tokio::test]
async fn a_permanent_error_goes_straight_to_dead_letter_and_withdraws_the_number() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        let store = h.app.issuer.store().clone();
        let (id, _) = queue_one(&h, 2).await;
        g.set(Mode::Invalid);
        let p = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!((p.sent, p.retried, p.dead), (0, 0, 1), "{}", db.label);
        h.clock.advance(chrono::Duration::hours(3));
        g.set(Mode::Up);
        assert_eq!(h.app.issuer.process_send_queue().await.unwrap().sent, 0);
        assert!(g.accepted().is_empty());
        let (status, attempts, sealed) = queue_row(&store, id).await;
        assert_eq!((status.as_str(), attempts), ("dead", 1), "{}", db.label);
        assert!(sealed.is_none(), "{}: text cleared once dead", db.label);
        assert_eq!(delivery_status(&store, id).await, "failed");
        let case_id: i64 = sqlx::query_scalar("SELECT case_id FROM issuances WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        let dead = store.dead_letters(case_id).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].kind, MessageKind::Number);
        assert!(dead[0].reason.contains("400"), "{}", dead[0].reason);
        assert_eq!(store.dead_letter_count().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn transient_errors_stop_after_the_maximum_attempts() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        let (id, _) = queue_one(&h, 3).await;
        g.set(Mode::Down);
        for _ in 0..issuer::delivery::MAX_ATTEMPTS {
            h.app.issuer.process_send_queue().await.unwrap();
            h.clock.advance(chrono::Duration::seconds(
                issuer::delivery::BACKOFF_CAP_SECONDS,
            ));
        }
        let store = h.app.issuer.store();
        let (status, attempts, _) = queue_row(store, id).await;
        assert_eq!(status, "dead", "{}", db.label);
        assert_eq!(attempts, i64::from(issuer::delivery::MAX_ATTEMPTS));
        assert_eq!(*g.refused.lock().unwrap(), 8);
    }
}

#[tokio::test]
async fn a_claim_abandoned_by_a_crash_is_sent_once_after_the_lease_and_a_restart() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        let mut bodies = Vec::new();
        for n in 0..5 {
            bodies.push(queue_one(&h, 10 + n).await.1);
        }
        // A worker claims everything and "crashes" (never records an outcome).
        let now = h.app.issuer.now();
        let claimed = h
            .app
            .issuer
            .store()
            .claim_due_messages(now, issuer::delivery::CLAIM_LEASE_SECONDS, 3)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        drop(claimed);
        // Restart: a new store and issuer on the same database.
        let clock = h.clock.clone();
        drop(h);
        let h2 = replica(&db, &g, clock.clone()).await;
        // The two unclaimed rows go at once; the three leased ones wait.
        assert_eq!(h2.process_send_queue().await.unwrap().sent, 2);
        clock.advance(chrono::Duration::seconds(
            issuer::delivery::CLAIM_LEASE_SECONDS,
        ));
        assert_eq!(h2.process_send_queue().await.unwrap().sent, 3);
        clock.advance(chrono::Duration::hours(1));
        assert_eq!(h2.process_send_queue().await.unwrap().sent, 0);
        let mut got = g.accepted();
        got.sort();
        bodies.sort();
        assert_eq!(got, bodies, "{}: nothing lost, nothing twice", db.label);
    }
}

/// A second issuer on the database of `db` (another replica, or the same
/// server after a restart) sending through the gateway `g`.
async fn replica(
    db: &common::TestDb,
    g: &Gateway,
    clock: Arc<en_protocol::time::FixedClock>,
) -> issuer::Issuer {
    let store = Store::connect(&db.url, 4).await.unwrap();
    let rng =
        Box::new(<rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(rand::random()));
    issuer::Issuer::new(
        store,
        &[7u8; 32],
        common::twilio_delivery(&g.base),
        clock,
        rng,
        issuer::service::Settings {
            link_host: "cocoa.example.jp".into(),
            certificate_issuer: "cocoa-issuer".into(),
            certificate_audience: "cocoa-keyserver".into(),
            help_phone: "0120-565653".into(),
            help_hours: "9:00～21:00".into(),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn two_workers_at_once_send_each_message_exactly_once() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        let mut bodies = Vec::new();
        for n in 0..20 {
            bodies.push(queue_one(&h, 100 + n).await.1);
        }
        let other = replica(&db, &g, h.clock.clone()).await;
        let (a, b, c) = tokio::join!(
            h.app.issuer.process_send_queue(),
            other.process_send_queue(),
            h.app.issuer.process_send_queue(),
        );
        let total = a.unwrap().sent + b.unwrap().sent + c.unwrap().sent;
        assert_eq!(total, 20, "{}", db.label);
        let mut got = g.accepted();
        got.sort();
        bodies.sort();
        assert_eq!(got, bodies, "{}: each exactly once", db.label);
    }
}

#[tokio::test]
async fn the_queued_text_is_sealed_at_rest() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        g.set(Mode::Down);
        let (id, body) = queue_one(&h, 4_242_424_242).await;
        let (_, _, sealed) = queue_row(h.app.issuer.store(), id).await;
        let sealed = sealed.unwrap();
        assert!(sealed.starts_with("sealed:v1:"), "{}", db.label);
        let dump = h.dump().await;
        assert!(
            !dump.contains("4242424242"),
            "{}: number in plaintext",
            db.label
        );
        assert!(!sealed.contains("処理番号"));
        // A store without the server secret cannot open it.
        let bare = Store::connect(&db.url, 1).await.unwrap();
        assert!(bare.claim_due_messages(i64::MAX / 2, 60, 10).await.is_err());
        let _ = body;
    }
}

#[tokio::test]
async fn centre_delivery_settings_default_off_and_round_trip() {
    for db in common::backends().await {
        let (h, _g) = harness(&db).await;
        let store = h.app.issuer.store();
        let s = store
            .centre_delivery_settings(h.centre_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s,
            issuer::store::DeliverySettings::default(),
            "{}",
            db.label
        );
        assert!(!s.fallback && s.reminder_after_hours.is_none());
        assert!(
            store
                .set_centre_delivery_settings(h.centre_id, true, Some(24))
                .await
                .unwrap()
        );
        let s = store
            .centre_delivery_settings(h.centre_id)
            .await
            .unwrap()
            .unwrap();
        assert!(s.fallback);
        assert_eq!(s.reminder_after_hours, Some(24));
        assert!(
            !store
                .set_centre_delivery_settings(999_999, true, None)
                .await
                .unwrap()
        );
        assert!(
            store
                .centre_delivery_settings(999_999)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn a_second_message_of_one_kind_is_not_queued() {
    for db in common::backends().await {
        let (h, _g) = harness(&db).await;
        let (id, _) = queue_one(&h, 5).await;
        let msg = Message {
            channel: Channel::Sms,
            to: "09012345678".into(),
            subject: None,
            body: "リマインダー".into(),
        };
        let store = h.app.issuer.store();
        let now = h.app.issuer.now();
        assert!(
            !store
                .enqueue_message(id, MessageKind::Number, &msg, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .enqueue_message(id, MessageKind::Reminder, &msg, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .enqueue_message(id, MessageKind::Reminder, &msg, now)
                .await
                .unwrap(),
            "{}",
            db.label
        );
    }
}

#[tokio::test]
async fn a_superseded_number_is_not_sent_and_dead_letters_show_on_metrics() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        let (id, _) = queue_one(&h, 6).await;
        sqlx::query("UPDATE issuances SET state = 'superseded' WHERE id = $1")
            .bind(id)
            .execute(h.app.issuer.store().pool())
            .await
            .unwrap();
        let p = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!((p.sent, p.dead), (0, 1), "{}", db.label);
        assert!(g.accepted().is_empty());
        let m = h
            .http
            .get(format!("{}/metrics", h.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            telemetry::sample(&m, "issuer_delivery_dead_letters"),
            Some(1.0),
            "{}: {m}",
            db.label
        );
    }
}

#[tokio::test]
async fn a_queued_number_survives_the_interrupted_delivery_sweep() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        g.set(Mode::Down);
        let (id, _) = queue_one(&h, 7).await;
        h.app.issuer.process_send_queue().await.unwrap();
        h.clock.advance(chrono::Duration::minutes(20));
        let now = h.app.issuer.now();
        let swept = h
            .app
            .issuer
            .store()
            .fail_interrupted_deliveries(now - 600, now)
            .await
            .unwrap();
        assert_eq!(swept, 0, "{}", db.label);
        g.set(Mode::Up);
        assert_eq!(h.app.issuer.process_send_queue().await.unwrap().sent, 1);
        assert_eq!(delivery_status(h.app.issuer.store(), id).await, "sent");
    }
}

/// A harness whose SMS goes to the loopback gateway and whose e-mail goes
/// to a real SMTP server on loopback.
async fn harness_with_mail(
    db: &common::TestDb,
) -> (common::Harness, Gateway, Arc<Mutex<Vec<String>>>) {
    let g = Gateway::start().await;
    let (port, mail) = common::smtp_sink().await;
    let sms = common::twilio_delivery(&g.base).sms;
    let email = issuer::delivery::Sender::Smtp(Arc::new(
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
    let h = common::start_with(
        db,
        common::Options {
            delivery: Some(issuer::delivery::Delivery {
                sms,
                email,
                canary: None,
            }),
            ..common::Options::default()
        },
    )
    .await;
    (h, g, mail)
}

/// The number in a message text.
fn number_in(text: &str) -> String {
    text.split("処理番号: ").nth(1).unwrap()[..8].to_owned()
}

async fn queue_status(store: &Store, issuance_id: i64, kind: MessageKind) -> String {
    store
        .message_state(issuance_id, kind)
        .await
        .unwrap()
        .map(|s| s.status)
        .unwrap_or_default()
}

async fn latest(h: &common::Harness, case_id: i64) -> issuer::domain::model::Issuance {
    h.app
        .issuer
        .store()
        .issuance_history(case_id, h.app.issuer.now())
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn a_queued_number_keeps_its_whole_validity_from_sending() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        g.set(Mode::Down);
        let case_id = h.create_case(&common::case_json()).await;
        let r = h.issue(case_id, "down").await;
        assert_eq!((r.status, r.body["status"].as_str()), (202, Some("queued")));
        // Over an hour of outage, retried with backoff all along (attempts
        // 2 to 6; the eighth would be the last).
        for _ in 0..5 {
            h.clock.advance(chrono::Duration::minutes(15));
            h.app.issuer.process_send_queue().await.unwrap();
        }
        assert!(g.accepted().is_empty());
        g.set(Mode::Up);
        h.clock.advance(chrono::Duration::minutes(15));
        let pass = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(pass.sent, 1, "{}", h.label);
        let sent_at = h.app.issuer.now();
        let i = latest(&h, case_id).await;
        assert_eq!(i.delivery_status, "sent");
        assert_eq!(
            i.expires_at,
            sent_at + 86_400,
            "{}: the whole validity from sending, not from issue",
            h.label
        );
        // 23 hours after sending (24.5 after issue) the number still works.
        h.clock.advance(chrono::Duration::hours(23));
        let v = h.verify(&number_in(&g.accepted()[0])).await;
        assert_eq!(v.status, 200, "{}: {}", h.label, v.body);
    }
}

#[tokio::test]
async fn smtp_550_is_permanent_and_451_is_retried() {
    for db in common::backends().await {
        let (h, _g, mail) = harness_with_mail(&db).await;
        let store = h.app.issuer.store();
        for (address, status, queue) in [
            ("nosuch@example.jp", 502, "dead"),
            ("busy@example.jp", 202, "queued"),
        ] {
            let mut c = common::case_json();
            c["mobile"] = serde_json::Value::Null;
            c["email"] = address.into();
            let case_id = h.create_case(&c).await;
            let r = h.issue(case_id, address).await;
            assert_eq!(r.status, status, "{address} {}: {}", h.label, r.body);
            let i = latest(&h, case_id).await;
            assert_eq!(
                queue_status(store, i.id, MessageKind::Number).await,
                queue,
                "{address}"
            );
            if status == 502 {
                assert_eq!(r.body["errorCode"], "delivery_failed");
                assert!(r.body["error"].as_str().unwrap().contains("550"));
                assert_eq!(i.state.as_str(), "expired", "withdrawn");
            } else {
                assert_eq!(i.state.as_str(), "issued", "live, waiting");
            }
        }
        assert!(mail.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_refused_sms_falls_back_to_email_with_the_same_number() {
    for db in common::backends().await {
        let (h, g, mail) = harness_with_mail(&db).await;
        let store = h.app.issuer.store();
        // Off by default: the refused SMS withdraws the number.
        g.set(Mode::Invalid);
        let mut c = common::case_json();
        c["email"] = "kenta@example.jp".into();
        let plain = h.create_case(&c).await;
        assert_eq!(h.issue(plain, "off").await.status, 502);
        assert!(mail.lock().unwrap().is_empty(), "no fallback when off");
        // On: the same number by e-mail, at once, in the same request.
        assert!(
            store
                .set_centre_delivery_settings(h.centre_id, true, Some(6))
                .await
                .unwrap()
        );
        let case_id = h.create_case(&c).await;
        let r = h.issue(case_id, "on").await;
        assert_eq!(r.status, 200, "{}: {}", h.label, r.body);
        assert_eq!(r.body["channel"], "email");
        let i = latest(&h, case_id).await;
        assert_eq!(i.channel.as_str(), "email");
        assert_eq!(i.delivery_status, "sent");
        assert!(
            i.delivery_error
                .as_deref()
                .unwrap()
                .starts_with("fallback to email: sms gateway answered 400"),
            "{:?}",
            i.delivery_error
        );
        assert_eq!(queue_status(store, i.id, MessageKind::Number).await, "dead");
        assert_eq!(
            queue_status(store, i.id, MessageKind::Fallback).await,
            "sent"
        );
        assert_eq!(
            queue_status(store, i.id, MessageKind::Reminder).await,
            "cancelled",
            "the SMS reminder is dropped"
        );
        let mails = mail.lock().unwrap().clone();
        assert_eq!(mails.len(), 1);
        let text = common::mail_text(&mails[0]);
        // Nothing more goes out later, and the number works.
        h.clock.advance(chrono::Duration::hours(8));
        let pass = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!((pass.sent, pass.dead), (0, 0));
        assert_eq!(mail.lock().unwrap().len(), 1);
        assert!(g.accepted().is_empty());
        let v = h.verify(&number_in(&text)).await;
        assert_eq!(v.status, 200, "{}: {}", h.label, v.body);
        // A delivered SMS cancels the fallback: nothing by e-mail.
        g.set(Mode::Up);
        let other = h.create_case(&c).await;
        assert_eq!(h.issue(other, "up").await.status, 200);
        let i = latest(&h, other).await;
        assert_eq!(i.channel.as_str(), "sms");
        assert_eq!(
            queue_status(store, i.id, MessageKind::Fallback).await,
            "cancelled"
        );
        assert_eq!(mail.lock().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn one_reminder_after_n_hours_and_none_once_used() {
    for db in common::backends().await {
        let (h, g) = harness(&db).await;
        let store = h.app.issuer.store();
        store
            .set_centre_delivery_settings(h.centre_id, false, Some(4))
            .await
            .unwrap();
        let unused = h.create_case(&common::case_json()).await;
        assert_eq!(h.issue(unused, "a").await.status, 200);
        let used = h.create_case(&common::case_json()).await;
        assert_eq!(h.issue(used, "b").await.status, 200);
        let sent = g.accepted();
        assert_eq!(sent.len(), 2);
        // The second number is used at once: it gets no reminder.
        assert_eq!(h.verify(&number_in(&sent[1])).await.status, 200);
        h.clock.advance(chrono::Duration::hours(3));
        h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(g.accepted().len(), 2, "not before N hours");
        h.clock.advance(chrono::Duration::minutes(61));
        let pass = h.app.issuer.process_send_queue().await.unwrap();
        assert_eq!(pass.sent, 1, "{}", h.label);
        let all = g.accepted();
        assert_eq!(all.len(), 3);
        assert!(all[2].starts_with("【HER-SYS】再送："), "{}", all[2]);
        assert!(all[2].contains("一度だけ"));
        assert_eq!(number_in(&all[2]), number_in(&sent[0]), "the same number");
        let i = latest(&h, used).await;
        assert_eq!(
            queue_status(store, i.id, MessageKind::Reminder).await,
            "cancelled"
        );
        // Never more: a day of passes sends nothing else.
        for _ in 0..24 {
            h.clock.advance(chrono::Duration::hours(1));
            h.app.issuer.process_send_queue().await.unwrap();
        }
        assert_eq!(g.accepted().len(), 3);
        // And the reminded number still works within its validity? It was
        // issued 28 h ago with 24 h: expired — the reminder never extends it.
        let v = h.verify(&number_in(&sent[0])).await;
        assert_eq!(v.body["errorCode"], "code_expired", "{}", v.body);
    }
}
