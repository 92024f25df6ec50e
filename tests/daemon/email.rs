//! Email pages through a real SMTP server (aiosmtpd, installed by .ci/run).

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use chrono::TimeDelta;
use serde_json::Value;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

/// A running aiosmtpd sink, stopped on drop.
pub(crate) struct Sink {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    pub(crate) fn start(python: &Path) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script = repo().join("tests/peers/smtp_sink.py");
        let mut child =
            Command::new(python).arg(script).arg("0").arg(dir.path()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("ready ").and_then(|p| p.parse().ok()).expect("the sink says ready PORT");
        Sink { child, port, dir }
    }

    /// The messages it accepted: (envelope, raw text).
    pub(crate) fn messages(&self) -> Vec<(Value, String)> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let envelope =
                    serde_json::from_str(&std::fs::read_to_string(eml.with_extension("json")).unwrap()).unwrap();
                (envelope, std::fs::read_to_string(&eml).unwrap())
            })
            .collect()
    }
}

async fn app(sink: &Sink, rules: &Path) -> TestApp {
    let transport = format!("smtp://127.0.0.1:{}", sink.port);
    TestApp::spawn_configured(Workers::Manual, START, rules, |c| c.email.transport = transport).await
}

#[tokio::test]
async fn an_email_page_arrives_with_both_parts_and_the_headers_that_thread_and_stop_loops() {
    let Some(py) = python() else { return };
    let sink = Sink::start(&py);
    let rules = rules_with_ana_email("ana@example.com");
    let t = app(&sink, rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let messages = sink.messages();
    assert_eq!(messages.len(), 2, "receipt and page");
    let (envelope, page) = messages.iter().find(|(e, _)| e["to"][0] == "ana@example.com").unwrap();
    assert_eq!(envelope["from"], "support@example.com");
    for header in [
        "From: Support <support@example.com>",
        "To: ana@example.com",
        &format!("Subject: [#{n}] P1 page: Site down"),
        "Auto-Submitted: auto-replied",
        "X-Auto-Response-Suppress: All",
        "Content-Type: multipart/alternative",
        "Content-Type: text/plain",
        "Content-Type: text/html",
    ] {
        assert!(page.contains(header), "missing {header:?} in\n{page}");
    }
    let reply_to = page.lines().find(|l| l.starts_with("Reply-To:")).expect("a Reply-To");
    assert!(reply_to.contains(&format!("support+{n}.")) && reply_to.ends_with("@support.example.com"), "{reply_to}");
    let message_id = page.lines().find(|l| l.starts_with("Message-ID:")).expect("a Message-ID");
    assert!(message_id.contains(&format!("<tocsin.{n}.")), "{message_id}");
    assert!(page.contains("## Reply above this line ##"));
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let sent = case["pages"].as_array().unwrap().iter().find(|p| p["person"] == "ana").unwrap().clone();
    assert_eq!(sent["status"], "sent");
}

#[tokio::test]
async fn a_4xx_from_the_server_is_retried_and_then_delivered() {
    let Some(py) = python() else { return };
    let sink = Sink::start(&py);
    let rules = rules_with_ana_email("tempfail-ana@example.com");
    let t = app(&sink, rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let page = case["pages"].as_array().unwrap().iter().find(|p| p["person"] == "ana").unwrap().clone();
    assert_eq!(page["status"], "queued", "{page}");
    assert!(page["error"].as_str().unwrap().contains("451"), "{page}");
    t.advance(TimeDelta::seconds(7)).await;
    assert!(sink.messages().iter().any(|(e, _)| e["to"][0] == "tempfail-ana@example.com"));
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let page = case["pages"].as_array().unwrap().iter().find(|p| p["person"] == "ana").unwrap().clone();
    assert_eq!((page["status"].as_str(), page["attempts"].as_i64()), (Some("sent"), Some(2)));
}

#[tokio::test]
async fn a_5xx_from_the_server_fails_over_to_sms() {
    let Some(py) = python() else { return };
    let sink = Sink::start(&py);
    let rules = rules_with_ana_email("reject-ana@example.com");
    let t = app(&sink, rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let ana: Vec<(String, String)> = case["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["person"] == "ana")
        .map(|p| (p["channel"].as_str().unwrap().into(), p["status"].as_str().unwrap().into()))
        .collect();
    assert_eq!(ana, [("email".to_owned(), "failed".to_owned()), ("sms".to_owned(), "sent".to_owned())]);
    assert!(t.outbox().iter().any(|f| f.ends_with("-page-sms.json")), "the SMS went out through the outbox");
}

#[tokio::test]
async fn a_5xx_does_not_fall_back_to_sms_for_someone_who_replied_stop() {
    let Some(py) = python() else { return };
    let sink = Sink::start(&py);
    let rules = rules_with_ana_email("reject-ana@example.com");
    let t = app(&sink, rules.path()).await;
    let ana: tocsin::people::PersonId = "ana".parse().unwrap();
    assert!(t.store().set_sms_opt_out(&ana, true, t.clock_now()).await.unwrap());
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let ana: Vec<(String, String)> = case["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["person"] == "ana")
        .map(|p| (p["channel"].as_str().unwrap().into(), p["status"].as_str().unwrap().into()))
        .collect();
    assert_eq!(ana, [("email".to_owned(), "failed".to_owned())]);
    assert!(!t.outbox().iter().any(|f| f.ends_with("-page-sms.json")));
}
