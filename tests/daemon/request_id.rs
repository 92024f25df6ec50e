//! `X-Request-Id`: every HTTP answer carries one (the caller's if it sent
//! a sane one), and the daemon's log lines for that request name it.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tocsin::app::Workers;

use crate::harness::{TestApp, repo};

#[tokio::test]
async fn every_answer_carries_a_request_id_the_callers_if_sane() {
    let t = TestApp::spawn(Workers::Manual).await;
    let get = |id: Option<&str>| {
        let mut r = t.http.get(t.url("/api/v1/cases"));
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        async move {
            let r = r.send().await.unwrap();
            r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned())
        }
    };
    // The caller's, echoed, even on a 401.
    assert_eq!(get(Some("req-7f3a")).await.as_deref(), Some("req-7f3a"));
    // None sent: one made here, 128 bits in hex, new each time.
    let made = get(None).await.unwrap();
    assert!(made.len() == 32 && made.chars().all(|c| c.is_ascii_hexdigit()), "{made}");
    assert_ne!(get(None).await.unwrap(), made);
    // Not sane (too long, or with spaces): replaced.
    let long = "x".repeat(200);
    let replaced = get(Some(&long)).await.unwrap();
    assert_eq!(replaced.len(), 32, "{replaced}");
    assert_eq!(get(Some("two words")).await.unwrap().len(), 32);
}

#[test]
fn the_logs_of_a_request_name_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[server]\nhttp = \"127.0.0.1:{port}\"\nsmtp = \"\"\n[database]\nurl = \"sqlite://{db}\"\n\
         [paths]\nrules = \"{repo}/rules\"\ntemplates = \"{repo}/templates\"\noutbox = \"{outbox}\"\n",
        db = dir.path().join("tocsin.db").display(),
        repo = repo().display(),
        outbox = dir.path().join("outbox").display(),
    );
    std::fs::write(dir.path().join("tocsin.toml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["serve", "--config"])
        .arg(dir.path().join("tocsin.toml"))
        .env("RUST_LOG", "info,tower_http=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-me-42\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.to_ascii_lowercase().contains("x-request-id: trace-me-42"), "{answer}");
    }
    // The response's log line is written as the answer goes out.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
        if text.contains("trace-me-42") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let line =
        text.lines().find(|l| l.contains("trace-me-42")).unwrap_or_else(|| panic!("no line names the id:\n{text}"));
    assert!(line.contains("request_id=trace-me-42") && line.contains("/healthz"), "{line}");
}
