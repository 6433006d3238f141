//! Certificate signing keys sealed at rest under the server secret (issue
//! 12, finding 1: "a local user copied `issuer.sqlite3`, took the
//! certificate signing key out of `signing_keys`, signed their own
//! certificate and published 5 keys"), on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use en_protocol::time::FixedClock;
use issuer::delivery::{Delivery, Sender};
use issuer::service::{Issuer, Settings};
use issuer::store::{SigningKeyRow, Store};
use p256::pkcs8::DecodePrivateKey as _;
use rand::SeedableRng;
use sqlx::Row as _;

const SECRET: &[u8] = b"issuer-test-secret-0123456789abcdef";

async fn issuer(url: &str, secret: &[u8]) -> issuer::Result<Issuer> {
    let store = Store::connect(url, 2).await.unwrap();
    let settings = Settings {
        link_host: "cocoa.example.jp".into(),
        certificate_issuer: "cocoa-issuer".into(),
        certificate_audience: "cocoa-keyserver".into(),
        help_phone: "0120-565653".into(),
        help_hours: "9:00～21:00".into(),
    };
    let delivery = Delivery::uniform(Sender::Memory(Arc::new(Mutex::new(Vec::new()))));
    let rng = Box::new(rand_chacha::ChaCha20Rng::seed_from_u64(5));
    let clock = Arc::new(FixedClock::new(common::t0()));
    Issuer::new(store, secret, delivery, clock, rng, settings).await
}

async fn stored_privates(url: &str) -> Vec<String> {
    let store = Store::connect(url, 1).await.unwrap();
    sqlx::query("SELECT private_pkcs8_hex FROM signing_keys ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect()
}

#[tokio::test]
async fn a_copied_database_without_its_secret_cannot_sign() {
    for db in common::backends().await {
        let first = issuer(&db.url, SECRET).await.unwrap();
        let kid = first.keyring().jwks().keys[0].kid.clone();
        drop(first);
        // What the copy holds: no private key a thief can use.
        let stored = stored_privates(&db.url).await;
        assert_eq!(stored.len(), 1);
        assert!(stored[0].starts_with("sealed:v1:"), "{}", db.label);
        let body = stored[0].trim_start_matches("sealed:v1:");
        let raw = hex::decode(body).unwrap();
        for start in 0..raw.len() {
            assert!(
                p256::ecdsa::SigningKey::from_pkcs8_der(&raw[start..]).is_err(),
                "{}: a PKCS#8 key in the clear at byte {start}",
                db.label
            );
        }
        // The copy started under another secret: refused, nothing signed.
        let e = issuer(&db.url, b"a-thief-s-own-secret-0123456789abcdef")
            .await
            .expect_err("another secret must not open the signing key");
        let text = format!("{:#}", anyhow::Error::from(e));
        assert!(
            text.contains("does not open with this server's secret"),
            "{text}"
        );
        assert_eq!(stored_privates(&db.url).await, stored, "nothing replaced");
        // Its own secret: the same key signs.
        let again = issuer(&db.url, SECRET).await.unwrap();
        assert_eq!(again.keyring().jwks().keys[0].kid, kid, "{}", db.label);
    }
}

#[tokio::test]
async fn a_plain_key_of_an_older_version_is_sealed_at_start_and_kept() {
    for db in common::backends().await {
        // A key as the version before sealing stored it: PKCS#8 DER, hex.
        use p256::pkcs8::EncodePrivateKey as _;
        let sk = p256::ecdsa::SigningKey::random(&mut rand_chacha::ChaCha20Rng::seed_from_u64(8));
        let kid = certificate::key_id(&p256::ecdsa::VerifyingKey::from(&sk)).unwrap();
        let plain = hex::encode(sk.to_pkcs8_der().unwrap().as_bytes());
        {
            use p256::pkcs8::EncodePublicKey as _;
            let store = Store::connect(&db.url, 1).await.unwrap();
            let pem = p256::ecdsa::VerifyingKey::from(&sk)
                .to_public_key_pem(p256::pkcs8::LineEnding::LF)
                .unwrap();
            store
                .insert_signing_key(&SigningKeyRow {
                    kid: kid.clone(),
                    private_pkcs8_hex: plain.clone(),
                    public_pem: pem,
                    created_at: 0,
                    retire_at: None,
                })
                .await
                .unwrap();
        }
        let i = issuer(&db.url, SECRET).await.unwrap();
        assert_eq!(
            i.keyring().jwks().keys[0].kid,
            kid,
            "{}: the same key",
            db.label
        );
        let stored = stored_privates(&db.url).await;
        assert_eq!(stored.len(), 1, "{}: no new key", db.label);
        assert!(stored[0].starts_with("sealed:v1:"), "{}", db.label);
        assert!(!stored[0].contains(&plain[20..60]), "{}", db.label);
    }
}

/// Staff TOTP secrets (and enrolments in progress) are stored sealed too:
/// the column holds no base32 secret, the account reads it back, a store
/// under another secret cannot, and a plain secret of an older version is
/// sealed at the next start and keeps working.
#[tokio::test]
async fn totp_secrets_are_sealed_and_plain_ones_are_sealed_at_start() {
    const TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    for db in common::backends().await {
        let i = issuer(&db.url, SECRET).await.unwrap();
        let store = i.store().clone();
        let centre = store.create_centre("みなと保健所", "13", 0).await.unwrap();
        let id = store
            .create_staff(
                centre,
                "sato",
                "$argon2id$x",
                issuer::domain::model::Role::Staff,
                0,
            )
            .await
            .unwrap()
            .unwrap();
        store.set_totp_secret(id, Some(TOTP)).await.unwrap();
        let raw: String = sqlx::query("SELECT totp_secret FROM staff WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert!(
            raw.starts_with("sealed:v1:") && !raw.contains(TOTP),
            "{}",
            db.label
        );
        let row = store.staff(id).await.unwrap().unwrap();
        assert_eq!(row.totp_secret.as_deref(), Some(TOTP), "{}", db.label);

        // Another server secret opens nothing.
        let thief = Store::connect(&db.url, 1).await.unwrap();
        thief.seal_totp_secrets_with(b"a-thief-s-own-secret-0123456789abcdef");
        assert!(thief.staff(id).await.is_err(), "{}", db.label);

        // A plain secret as an older version stored it: sealed at start.
        sqlx::query("UPDATE staff SET totp_secret = $1 WHERE id = $2")
            .bind(TOTP)
            .bind(id)
            .execute(store.pool())
            .await
            .unwrap();
        drop(i);
        let again = issuer(&db.url, SECRET).await.unwrap();
        let raw: String = sqlx::query("SELECT totp_secret FROM staff WHERE id = $1")
            .bind(id)
            .fetch_one(again.store().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert!(
            raw.starts_with("sealed:v1:"),
            "{}: sealed at start",
            db.label
        );
        let row = again.store().staff(id).await.unwrap().unwrap();
        assert_eq!(row.totp_secret.as_deref(), Some(TOTP), "{}", db.label);
    }
}
