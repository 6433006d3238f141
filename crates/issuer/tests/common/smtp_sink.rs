//! A real SMTP server for the tests, on loopback.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A minimal SMTP server on loopback: accepts every message and hands its
/// DATA over; refuses a recipient containing `nosuch` with 550 (permanent)
/// and one containing `busy` with 451 (transient).
pub async fn smtp_sink() -> (u16, Arc<Mutex<Vec<String>>>) {
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
                        // A mailbox that does not exist is refused for
                        // good (550); a busy one for now (451).
                        "RCPT" if line.contains("nosuch") => {
                            w.write_all(b"550 5.1.1 no such mailbox\r\n").await.unwrap()
                        }
                        "RCPT" if line.contains("busy") => w
                            .write_all(b"451 4.3.0 mailbox busy, try later\r\n")
                            .await
                            .unwrap(),
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
pub fn mail_text(data: &str) -> String {
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
