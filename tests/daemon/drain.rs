//! Graceful drain: what SIGTERM does to work in flight. In-process tests
//! drive `App::drain` on real sockets; the process tests send real signals
//! to the real binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::{TestApp, repo};

/// Reads one SMTP reply (all its lines).
fn reply(r: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return all;
        }
        all += &line;
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

/// An SMTP session stopped half-way through a message's DATA.
struct MidData {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

fn start_mail(addr: SocketAddr, subject: &str) -> MidData {
    let w = TcpStream::connect(addr).unwrap();
    w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(w.try_clone().unwrap());
    let mut w2 = w.try_clone().unwrap();
    assert!(reply(&mut r).starts_with("220"));
    for (cmd, want) in [
        ("EHLO client.example\r\n", "250"),
        ("MAIL FROM:<ops@acme.com>\r\n", "250"),
        ("RCPT TO:<help@support.example.com>\r\n", "250"),
        ("DATA\r\n", "354"),
    ] {
        w2.write_all(cmd.as_bytes()).unwrap();
        let got = reply(&mut r);
        assert!(got.starts_with(want), "{cmd}: {got}");
    }
    let head = format!(
        "From: Ops <ops@acme.com>\r\nTo: help@support.example.com\r\nSubject: {subject}\r\nMessage-ID: <drain-{}@acme.com>\r\n\r\nFirst half of the body,\r\n",
        subject.len()
    );
    w2.write_all(head.as_bytes()).unwrap();
    MidData { w, r }
}

impl MidData {
    /// Sends the rest of the message; returns the replies until the server
    /// closes.
    fn finish(mut self) -> String {
        self.w.write_all(b"and the second half.\r\n.\r\n").unwrap();
        let mut rest = String::new();
        let _ = self.r.read_to_string(&mut rest);
        rest
    }
}

/// Waits (bounded) until connecting to `addr` is refused.
fn wait_refused(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "{addr} still accepts connections");
        std::thread::sleep(Duration::from_millis(10));
    }
}

async fn refused(addr: SocketAddr) {
    tokio::task::spawn_blocking(move || wait_refused(addr)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_mid_data_when_the_drain_starts_gets_its_250_and_is_a_case_after_restart() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let (smtp, http) = (t.smtp(), t.app().addr);
    let session = tokio::task::spawn_blocking(move || start_mail(smtp, "Printer on fire")).await.unwrap();
    let app = t.app.take().unwrap();
    let drain = tokio::spawn(app.drain());
    // New connections are refused while the session is still open.
    refused(smtp).await;
    refused(http).await;
    assert!(!drain.is_finished(), "the drain must wait for the open session");
    let replies = tokio::task::spawn_blocking(move || session.finish()).await.unwrap();
    assert!(replies.starts_with("250 "), "{replies}");
    assert!(replies.contains("\r\n421 4.3.2"), "the session then ends with 421: {replies}");
    let drained = drain.await.unwrap();
    assert!(drained.finished);

    t.start(Workers::Manual).await;
    t.app().tick().await.unwrap();
    let cases = t.store().cases(None, 10).await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].subject, "Printer on fire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_smtp_session_is_told_421_when_the_drain_starts() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let smtp = t.smtp();
    let (w, mut r) = tokio::task::spawn_blocking(move || {
        let w = TcpStream::connect(smtp).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = BufReader::new(w.try_clone().unwrap());
        assert!(reply(&mut r).starts_with("220"));
        (w, r)
    })
    .await
    .unwrap();
    let drained = t.app.take().unwrap().drain().await;
    assert!(drained.finished);
    let bye = tokio::task::spawn_blocking(move || reply(&mut r)).await.unwrap();
    assert!(bye.starts_with("421 4.3.2"), "{bye}");
    drop(w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_request_in_flight_when_the_drain_starts_completes() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let token = t.token("drain", TokenRole::Admin, None).await;
    let http = t.app().addr;
    let body = serde_json::json!({"subject": "Slow upload", "body": "x", "requester": "ops@acme.com"}).to_string();
    let length = body.len();
    // The drain waits for requests the server has begun, not for bytes in
    // the kernel. `Expect: 100-continue` (RFC 9110, 10.1.1) makes the
    // server say when it has begun: it answers 100 once the handler asks
    // for the body, and only then is the body sent.
    let (mut conn, mut r) = tokio::task::spawn_blocking(move || {
        let mut c = TcpStream::connect(http).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /api/v1/cases HTTP/1.1\r\nHost: tocsin\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
        );
        c.write_all(head.as_bytes()).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut interim = String::new();
        while !interim.ends_with("\r\n\r\n") && r.read_line(&mut interim).unwrap() > 0 {}
        assert!(interim.starts_with("HTTP/1.1 100 Continue\r\n"), "{interim}");
        (c, r)
    })
    .await
    .unwrap();
    let drain = tokio::spawn(t.app.take().unwrap().drain());
    refused(http).await;
    let response = tokio::task::spawn_blocking(move || {
        conn.write_all(body.as_bytes()).unwrap();
        let mut text = String::new();
        let _ = r.read_to_string(&mut text);
        text
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.contains("Slow upload"), "{response}");
    assert!(drain.await.unwrap().finished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_held_at_exit_are_handed_back_for_another_instance_at_once() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let token = t.token("drain", TokenRole::Admin, None).await;
    t.open_outage(&token).await;
    let store = t.store();
    let later = t.clock_now() + TimeDelta::days(30);
    let owner = t.app().scheduler.owner.clone();
    let held = store.claim_timers(later, &owner, TimeDelta::hours(1), 100).await.unwrap();
    assert!(!held.is_empty());
    assert!(store.claim_timers(later, "other", TimeDelta::hours(1), 100).await.unwrap().is_empty());
    let drained = t.app.take().unwrap().drain().await;
    assert_eq!(drained.released, held.len() as u64);
    // Another instance takes them now, not when the hour's lease runs out.
    let taken = store.claim_timers(later, "other", TimeDelta::hours(1), 100).await.unwrap();
    assert_eq!(taken.len(), held.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_scheduler_claims_no_new_timers() {
    let mut t = TestApp::spawn(Workers::Background).await;
    let token = t.token("drain", TokenRole::Admin, None).await;
    t.open_outage(&token).await;
    let store = t.store();
    let before = store.counts(t.clock_now()).await.unwrap().timers_pending;
    t.app.take().unwrap().drain().await;
    // Due only now: a drained instance must leave them for the next one.
    t.clock.advance(TimeDelta::days(30));
    tokio::task::yield_now().await;
    let after = store.counts(t.clock_now()).await.unwrap();
    assert_eq!(after.timers_pending, before);
    assert_eq!(after.timers_due, before);
}

// --- the real binary and real signals ---

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Daemon {
    child: Child,
    http: SocketAddr,
    smtp: SocketAddr,
    _dir: tempfile::TempDir,
}

fn daemon(drain_timeout: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let (http, smtp): (SocketAddr, SocketAddr) =
        (([127, 0, 0, 1], free_port()).into(), ([127, 0, 0, 1], free_port()).into());
    let config = format!(
        "[server]\nhttp = \"{http}\"\nsmtp = \"{smtp}\"\ndrain_timeout = \"{drain_timeout}\"\n\
         [database]\nurl = \"sqlite://{db}\"\n\
         [paths]\nrules = \"{repo}/rules\"\ntemplates = \"{repo}/templates\"\noutbox = \"{outbox}\"\n",
        db = dir.path().join("tocsin.db").display(),
        repo = repo().display(),
        outbox = dir.path().join("outbox").display(),
    );
    std::fs::write(dir.path().join("tocsin.toml"), config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["serve", "--config"])
        .arg(dir.path().join("tocsin.toml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(smtp).is_err() || TcpStream::connect(http).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, http, smtp, _dir: dir }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

/// Waits (bounded, generously) for the process to exit; its status code.
fn exit_code(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_the_mail_in_flight_finish_then_exits_zero() {
    let mut d = daemon("60s");
    let session = start_mail(d.smtp, "Disk full");
    signal(&d.child, "TERM");
    wait_refused(d.smtp);
    wait_refused(d.http);
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon waits for the open session");
    let replies = session.finish();
    assert!(replies.starts_with("250 "), "{replies}");
    assert_eq!(exit_code(&mut d.child, Duration::from_secs(30)), Some(0));
}

#[test]
fn a_second_sigterm_during_the_drain_exits_at_once() {
    let mut d = daemon("5m");
    // Holds the drain open: this message never ends.
    let _session = start_mail(d.smtp, "Stuck");
    signal(&d.child, "TERM");
    wait_refused(d.smtp);
    signal(&d.child, "TERM");
    // Far less than the five minutes the drain would wait.
    assert_eq!(exit_code(&mut d.child, Duration::from_secs(30)), Some(143));
}

#[test]
fn ctrl_c_drains_like_sigterm() {
    let mut d = daemon("10s");
    signal(&d.child, "INT");
    assert_eq!(exit_code(&mut d.child, Duration::from_secs(30)), Some(0));
}
