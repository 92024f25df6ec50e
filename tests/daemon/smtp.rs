//! The SMTP listener over a real socket: raw bytes, and lettre as a client.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tocsin::app::Workers;
use tocsin::token::TokenRole;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::*;

/// A raw SMTP client that reads one reply (all its lines) at a time.
struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(t: &TestApp) -> (Client, String) {
        Self::connect_from(t, [127, 0, 0, 1]).await
    }

    /// Connects from another loopback address (all of 127/8 is local), as
    /// a second client host would.
    async fn connect_from(t: &TestApp, ip: [u8; 4]) -> (Client, String) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((ip, 0).into()).unwrap();
        let (r, w) = socket.connect(t.smtp()).await.unwrap().into_split();
        let mut c = Client { reader: BufReader::new(r), writer: w };
        let greeting = c.reply().await;
        (c, greeting)
    }

    async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n =
                tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line)).await.unwrap().unwrap();
            if n == 0 {
                return all;
            }
            all += &line;
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    async fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).await.unwrap();
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }
}

const MESSAGE: &str = "From: Olivia Ops <ops@acme.com>\r\nTo: help@support.example.com\r\nSubject: Checkout is down\r\nMessage-ID: <m1@acme.com>\r\n\r\nEvery request times out.\r\n";

#[tokio::test]
async fn a_conversation_files_the_mail_into_a_new_case() {
    let t = TestApp::spawn(Workers::Manual).await;
    let (mut c, greeting) = Client::connect(&t).await;
    assert!(greeting.starts_with("220 support.example.com ESMTP"), "{greeting}");
    let ehlo = c.cmd("EHLO mx.acme.com").await;
    assert!(ehlo.contains("250-SIZE 26214400\r\n") && ehlo.ends_with("250 PIPELINING\r\n"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "no certificate, no STARTTLS");
    assert!(c.cmd("MAIL FROM:<ops@acme.com>").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<someone@elsewhere.org>").await.starts_with("550 5.7.1"), "never a relay");
    assert!(c.cmd("RCPT TO:<help@SUPPORT.example.com>").await.starts_with("250"));
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(MESSAGE).await;
    let queued = c.cmd(".").await;
    assert!(queued.starts_with("250 2.0.0 Queued as "), "{queued}");
    assert!(c.cmd("QUIT").await.starts_with("221"));
    // Committed before the 250: it is in the inbox; filing opens the case.
    t.app().tick().await.unwrap();
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let (_, list) = t.get("/api/v1/cases", &tok).await;
    let case = &list["cases"][0];
    assert_eq!(
        (case["subject"].as_str(), case["requester"].as_str(), case["customer"].as_str()),
        (Some("Checkout is down"), Some("ops@acme.com"), Some("Acme"))
    );
    assert_eq!(case["priority"], "P1", "routed by the subject");
    let n = case["number"].as_i64().unwrap();
    let (_, full) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    assert_eq!(full["body"], "Every request times out.");
    assert_eq!(full["timeline"][0]["channel"], "email");
    let receipts = t.outbox_texts("receipt-email");
    assert_eq!(receipts.len(), 1);
    assert!(receipts[0].contains(&format!("[#{n}] Received: Checkout is down")), "{}", receipts[0]);
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let t = TestApp::spawn(Workers::Manual).await;
    let (mut c, _) = Client::connect(&t).await;
    c.send("EHLO mx.acme.com\r\nMAIL FROM:<ops@acme.com>\r\nRCPT TO:<nobody@else.org>\r\nRCPT TO:<help@support.example.com>\r\nDATA\r\n").await;
    let replies = [c.reply().await, c.reply().await, c.reply().await, c.reply().await, c.reply().await];
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(codes, ["250", "250", "550", "250", "354"], "{replies:?}");
    c.send(&format!("{MESSAGE}.\r\nNOOP\r\nQUIT\r\n")).await;
    assert!(c.reply().await.starts_with("250 2.0.0 Queued"));
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("221"));
}

#[tokio::test]
async fn oversize_mail_is_refused_with_552_and_the_session_goes_on() {
    let rules = repo().join("rules");
    let t = TestApp::spawn_configured(Workers::Manual, START, &rules, |c| c.email.max_size = "4KiB".into()).await;
    let (mut c, _) = Client::connect(&t).await;
    assert!(c.cmd("EHLO x").await.contains("SIZE 4096"));
    assert!(c.cmd("MAIL FROM:<ops@acme.com> SIZE=999999").await.starts_with("552 5.3.4"), "declared too large");
    assert!(c.cmd("MAIL FROM:<ops@acme.com>").await.starts_with("250"));
    c.cmd("RCPT TO:<help@support.example.com>").await;
    c.cmd("DATA").await;
    let big = format!("{MESSAGE}{}\r\n{}\r\n", "x".repeat(100), "y".repeat(9000));
    c.send(&big).await;
    assert!(c.cmd(".").await.starts_with("552 5.3.4"), "read and discarded, then refused");
    assert!(c.cmd("NOOP").await.starts_with("250"));
    t.app().tick().await.unwrap();
    assert!(t.store().pending_mail(10).await.unwrap().is_empty());
    let tok = t.token("ops", TokenRole::Admin, None).await;
    assert_eq!(t.get("/api/v1/cases", &tok).await.1["cases"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn commands_out_of_order_get_503_and_unknown_ones_500() {
    let t = TestApp::spawn(Workers::Manual).await;
    let (mut c, _) = Client::connect(&t).await;
    assert!(c.cmd("MAIL FROM:<a@b.com>").await.starts_with("503"), "EHLO first");
    c.cmd("HELO x").await;
    assert!(c.cmd("RCPT TO:<help@support.example.com>").await.starts_with("503"), "MAIL first");
    assert!(c.cmd("DATA").await.starts_with("503"));
    assert!(c.cmd("FROBNICATE").await.starts_with("500"));
    assert!(c.cmd("AUTH PLAIN AAAA").await.starts_with("502"));
    assert!(c.cmd("STARTTLS").await.starts_with("502"));
    assert!(c.cmd("RSET").await.starts_with("250"));
}

#[tokio::test]
async fn while_the_store_cannot_take_mail_the_answer_is_451_and_the_retry_is_filed() {
    let rules = repo().join("rules");
    let t = TestApp::spawn_configured(Workers::Manual, START, &rules, |c| {
        c.database.busy_timeout = Duration::from_millis(200)
    })
    .await;
    // Another connection holds the write lock, as a stuck process would.
    let path = t.dir.path().join("tocsin.db");
    let mut blocker =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut blocker).await.unwrap();
    let (mut c, _) = Client::connect(&t).await;
    c.cmd("EHLO mx.acme.com").await;
    c.cmd("MAIL FROM:<ops@acme.com>").await;
    c.cmd("RCPT TO:<help@support.example.com>").await;
    c.cmd("DATA").await;
    c.send(MESSAGE).await;
    let refused = c.cmd(".").await;
    assert!(refused.starts_with("451 4.3.0"), "{refused}");
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    // The sending server retries the same message.
    c.cmd("MAIL FROM:<ops@acme.com>").await;
    c.cmd("RCPT TO:<help@support.example.com>").await;
    c.cmd("DATA").await;
    c.send(MESSAGE).await;
    assert!(c.cmd(".").await.starts_with("250"));
    t.app().tick().await.unwrap();
    let tok = t.token("ops", TokenRole::Admin, None).await;
    assert_eq!(t.get("/api/v1/cases", &tok).await.1["cases"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_idle_client_is_told_goodbye() {
    let rules = repo().join("rules");
    let t =
        TestApp::spawn_configured(Workers::Manual, START, &rules, |c| c.smtp.idle_timeout = Duration::from_millis(300))
            .await;
    let (mut c, _) = Client::connect(&t).await;
    c.cmd("EHLO x").await;
    let bye = c.reply().await;
    assert!(bye.starts_with("421 4.4.2"), "{bye}");
    assert_eq!(c.reply().await, "", "and the connection is closed");
}

#[tokio::test]
async fn lettre_delivers_through_the_listener() {
    let t = TestApp::spawn(Workers::Manual).await;
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(t.smtp().ip().to_string())
        .port(t.smtp().port())
        .build();
    let email = lettre::Message::builder()
        .from("Olivia Ops <ops@acme.com>".parse::<Mailbox>().unwrap())
        .to("help@support.example.com".parse::<Mailbox>().unwrap())
        .subject("Invoices look wrong")
        .body("The totals on the November invoices are doubled.".to_owned())
        .unwrap();
    let response = mailer.send(email).await.unwrap();
    assert!(response.is_positive());
    t.app().tick().await.unwrap();
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let (_, list) = t.get("/api/v1/cases", &tok).await;
    assert_eq!(list["cases"][0]["subject"], "Invoices look wrong");
    assert_eq!(list["cases"][0]["priority"], "P2", "Acme's route");
}

#[tokio::test]
async fn starttls_upgrades_the_session_when_a_certificate_is_configured() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes the test certificate");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let rules = repo().join("rules");
    let t = TestApp::spawn_configured(Workers::Manual, START, &rules, |c| {
        c.smtp.tls_cert = Some(cert.clone());
        c.smtp.tls_key = Some(key.clone());
    })
    .await;
    let (mut c, _) = Client::connect(&t).await;
    assert!(c.cmd("EHLO x").await.contains("250-STARTTLS"));
    let tls = lettre::transport::smtp::client::TlsParameters::builder("localhost".into())
        .dangerous_accept_invalid_certs(true)
        .build_rustls()
        .unwrap();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(t.smtp().port())
        .tls(lettre::transport::smtp::client::Tls::Required(tls))
        .build();
    let email = lettre::Message::builder()
        .from("ops@acme.com".parse::<Mailbox>().unwrap())
        .to("help@support.example.com".parse::<Mailbox>().unwrap())
        .subject("Over TLS")
        .body("Encrypted.".to_owned())
        .unwrap();
    assert!(mailer.send(email).await.unwrap().is_positive());
    t.app().tick().await.unwrap();
    let id = t.store().pending_mail(10).await.unwrap();
    assert!(id.is_empty());
    let raw = t.store().inbox(1).await.unwrap().unwrap().raw;
    assert!(String::from_utf8_lossy(&raw).contains("with ESMTPS;"), "the Received header records TLS");
}

#[tokio::test]
async fn one_client_address_cannot_hold_every_session() {
    let t = TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.smtp.max_connections = 3;
        c.smtp.max_connections_per_ip = 2;
    })
    .await;
    // One address takes its two sessions and keeps them idle.
    let (mut first, greeting) = Client::connect(&t).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    let (_second, greeting) = Client::connect(&t).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    // Its third is refused though the server has a slot left ...
    let (mut third, refused) = Client::connect(&t).await;
    assert!(refused.starts_with("421 4.7.0 Too many connections from your address"), "{refused}");
    assert_eq!(third.reply().await, "", "and closed");
    // ... which another client gets.
    let (_other, greeting) = Client::connect_from(&t, [127, 0, 0, 2]).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    // A session that ends gives its address's slot back.
    assert!(first.cmd("QUIT").await.starts_with("221"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_c, greeting) = Client::connect(&t).await;
        if greeting.starts_with("220") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the slot never came back: {greeting}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn ten_errors_in_a_row_end_the_session_with_421() {
    let t = TestApp::spawn(Workers::Manual).await;
    let (mut c, _) = Client::connect(&t).await;
    // Nine errors, then a good command: the count starts again.
    for _ in 0..9 {
        assert!(c.cmd("XYZZY").await.starts_with("500"));
    }
    assert!(c.cmd("NOOP").await.starts_with("250"));
    for _ in 0..9 {
        assert!(c.cmd("RCPT TO:<help@support.example.com>").await.starts_with("503"));
    }
    // The tenth in a row, pipelined with more, ends the session: nothing
    // after it is answered.
    c.send("XYZZY\r\nXYZZY\r\nNOOP\r\n").await;
    assert!(c.reply().await.starts_with("500"));
    let bye = c.reply().await;
    assert!(bye.starts_with("421 4.7.0 Too many errors"), "{bye}");
    assert_eq!(c.reply().await, "", "closed after the 421");
}
