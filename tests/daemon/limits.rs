//! The HTTP server against slow and greedy clients, over raw sockets: half
//! sent headers, trickled bodies, more connections than it serves.

use std::net::SocketAddr;
use std::time::Duration;

use tocsin::app::Workers;
use tocsin::token::TokenRole;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::*;

/// Long enough that a test waiting on it has failed, not merely run slowly.
const PATIENCE: Duration = Duration::from_secs(20);

async fn spawn(tweak: impl FnOnce(&mut tocsin::config::Config)) -> TestApp {
    TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), tweak).await
}

/// One HTTP/1.1 response read off `r`: status line, headers and a
/// `Content-Length` body.
async fn response(r: &mut BufReader<TcpStream>) -> String {
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, r.read_line(&mut head)).await.expect("a response").unwrap();
        assert!(n > 0, "closed before a full response: {head:?}");
    }
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0; length];
    r.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}

/// Sends the head of a POST of `length` bytes of `kind` and the first
/// `sent` bytes of its body.
async fn post_part(
    addr: SocketAddr,
    path: &str,
    token: &str,
    kind: &str,
    length: usize,
    sent: &[u8],
) -> BufReader<TcpStream> {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: tocsin\r\nAuthorization: Bearer {token}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(sent).await.unwrap();
    BufReader::new(c)
}

#[tokio::test]
async fn a_connection_that_sends_half_its_headers_is_closed_after_header_timeout() {
    let t = spawn(|c| c.server.header_timeout = Duration::from_millis(300)).await;
    let mut slow = TcpStream::connect(t.app().addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: tocsin\r\nX-Trickle: 1\r\n").await.unwrap();
    // The server ends the connection itself: the read sees its end, long
    // before the patience of this test runs out.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a connection with half its headers was still open after {PATIENCE:?}");
    assert!(!String::from_utf8_lossy(&rest).contains(" 200 "), "{rest:?}");
    // The server itself is fine, and a prompt client is served; kept alive
    // and then silent, its connection goes the same way.
    let c = TcpStream::connect(t.app().addr).await.unwrap();
    let mut r = BufReader::new(c);
    r.get_mut().write_all(b"GET /healthz HTTP/1.1\r\nHost: tocsin\r\n\r\n").await.unwrap();
    assert!(response(&mut r).await.starts_with("HTTP/1.1 200 "));
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, r.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle kept-alive connection was still open after {PATIENCE:?}");
}

#[tokio::test]
async fn a_trickled_body_gets_408_but_the_mail_webhook_has_longer() {
    let t = spawn(|c| {
        c.server.request_timeout = Duration::from_millis(300);
        c.server.mail_hook_timeout = Duration::from_secs(60);
    })
    .await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let mail = "From: ops@acme.com\r\nTo: help@support.example.com\r\nSubject: Slow upload\r\nMessage-ID: <slow@acme.com>\r\n\r\nBody.\r\n";
    let (first, second) = mail.as_bytes().split_at(20);
    // The mail webhook's upload begins first ...
    let mut hook = post_part(t.app().addr, "/hooks/email", &admin, "message/rfc822", mail.len(), first).await;
    // ... then an API request whose body stops half-way gets 408 once
    // request_timeout has passed (which has passed for the upload too).
    let mut api = post_part(t.app().addr, "/api/v1/cases", &admin, "application/json", 100, b"{\"subject\": ").await;
    let answer = response(&mut api).await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    // The upload, under mail_hook_timeout, still completes.
    hook.get_mut().write_all(second).await.unwrap();
    let answer = response(&mut hook).await;
    assert!(answer.starts_with("HTTP/1.1 202 "), "{answer}");
}

#[tokio::test]
async fn connections_past_max_connections_wait_for_a_free_slot() {
    let t = spawn(|c| c.server.max_connections = 1).await;
    let get = b"GET /healthz HTTP/1.1\r\nHost: tocsin\r\n\r\n";
    // A kept-alive connection holds the only slot.
    let mut first = BufReader::new(TcpStream::connect(t.app().addr).await.unwrap());
    first.get_mut().write_all(get).await.unwrap();
    assert!(response(&mut first).await.starts_with("HTTP/1.1 200 "));
    let mut second = BufReader::new(TcpStream::connect(t.app().addr).await.unwrap());
    second.get_mut().write_all(get).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await;
    assert!(early.is_err(), "a second connection was served while the only slot was taken");
    // The slot comes free: the waiting connection is served.
    drop(first);
    assert!(response(&mut second).await.starts_with("HTTP/1.1 200 "));
}
