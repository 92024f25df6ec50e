//! Threading, loops and reopening, through the mail webhook; the MTA pipe's
//! exit codes.

use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

fn message(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: help@support.example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n"
    )
}

async fn setup() -> (TestApp, String) {
    let t = TestApp::spawn(Workers::Manual).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    (t, hook)
}

async fn filed(t: &TestApp, hook: &str, raw: &str) -> Value {
    let (s, body) = t.hook(hook, raw).await;
    assert_eq!(s, 202, "{body}");
    t.app().tick().await.unwrap();
    body
}

async fn case(t: &TestApp, hook: &str, n: i64) -> Value {
    t.get(&format!("/api/v1/cases/{n}"), hook).await.1
}

fn kinds(case: &Value) -> Vec<String> {
    case["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

/// The Message-ID of the receipt for case `n`, as the customer's client
/// would quote it.
fn receipt_id(t: &TestApp, n: i64) -> String {
    let receipt = t.outbox_texts(&format!("case{n}-receipt")).pop().unwrap();
    let line = receipt.lines().find(|l| l.starts_with("Message-ID:")).unwrap();
    line.trim_start_matches("Message-ID:").trim().trim_matches(['<', '>']).to_owned()
}

#[tokio::test]
async fn a_reply_to_the_receipt_joins_its_case_by_message_id() {
    let (t, hook) = setup().await;
    let first = filed(&t, &hook, &message("ops@acme.com", "Checkout is down", "a1@acme.com", "", "All 500s.")).await;
    assert_eq!(first["status"], "filed");
    let n = first["case"].as_i64().unwrap();
    let receipt = receipt_id(&t, n);
    assert!(receipt.ends_with("@support.example.com"), "{receipt}");
    // A reply with a new subject still threads by In-Reply-To; another
    // person of the same customer may answer.
    let reply = message(
        "cto@acme.com",
        "Re: anything",
        "a2@acme.com",
        &format!("In-Reply-To: <{receipt}>\r\nReferences: <a1@acme.com> <{receipt}>\r\n"),
        "Still down.\r\n\r\nOn Tue, Nov 24, 2026 at 10:00 AM Support <help@support.example.com> wrote:\r\n> We are on it.",
    );
    let second = filed(&t, &hook, &reply).await;
    assert_eq!((second["status"].as_str(), second["case"].as_i64()), (Some("filed"), Some(n)));
    let c = case(&t, &hook, n).await;
    let mail = c["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "mail").unwrap();
    assert_eq!((mail["actor"].as_str(), mail["text"].as_str()), (Some("cto@acme.com"), Some("Still down.")));
    assert_eq!(t.outbox_texts("receipt").len(), 1, "a reply gets no second receipt");
}

#[tokio::test]
async fn a_subject_tag_joins_only_for_the_case_s_own_customer() {
    let (t, hook) = setup().await;
    let n = filed(&t, &hook, &message("ops@acme.com", "Checkout is down", "b1@acme.com", "", "x")).await["case"]
        .as_i64()
        .unwrap();
    // Another Acme address, with the tag: joins.
    let same = filed(
        &t,
        &hook,
        &message("billing@acme.com", &format!("Re: [#{n}] Checkout is down"), "b2@acme.com", "", "Same here."),
    )
    .await;
    assert_eq!(same["case"].as_i64(), Some(n));
    // Globex naming Acme's case: must not join it.
    let other =
        filed(&t, &hook, &message("it@globex.example", &format!("[#{n}] your case"), "b3@globex.example", "", "Hi"))
            .await;
    assert_ne!(other["case"].as_i64(), Some(n));
    assert_eq!(other["status"], "filed");
    // A stranger naming it: a new case too.
    let stranger =
        filed(&t, &hook, &message("x@gmail.example", &format!("[#{n}]"), "b4@gmail.example", "", "Hi")).await;
    assert_ne!(stranger["case"].as_i64(), Some(n));
    let c = case(&t, &hook, n).await;
    assert_eq!(kinds(&c).iter().filter(|k| *k == "mail").count(), 1);
}

#[tokio::test]
async fn a_forged_in_reply_to_does_not_join_a_case() {
    let (t, hook) = setup().await;
    let n = filed(&t, &hook, &message("ops@acme.com", "Checkout is down", "c1@acme.com", "", "x")).await["case"]
        .as_i64()
        .unwrap();
    // Guessing the shape of our Message-IDs is not enough: they are signed.
    let guess = format!("tocsin.{n}.1.0000000000000000@support.example.com");
    let forged = filed(
        &t,
        &hook,
        &message("it@globex.example", "hello", "c2@globex.example", &format!("In-Reply-To: <{guess}>\r\n"), "x"),
    )
    .await;
    assert_ne!(forged["case"].as_i64(), Some(n));
}

#[tokio::test]
async fn a_second_delivery_of_one_message_adds_nothing() {
    let (t, hook) = setup().await;
    let raw = message("ops@acme.com", "Checkout is down", "d1@acme.com", "", "x");
    let n = filed(&t, &hook, &raw).await["case"].as_i64().unwrap();
    let again = filed(&t, &hook, &raw).await;
    assert_eq!(again["status"], "duplicate");
    let (_, list) = t.get("/api/v1/cases", &hook).await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    assert_eq!(kinds(&case(&t, &hook, n).await).iter().filter(|k| *k == "opened").count(), 1);
}

#[tokio::test]
async fn auto_replies_bounces_and_list_mail_never_open_cases_nor_get_receipts() {
    let (t, hook) = setup().await;
    let out_of_office = message(
        "ops@acme.com",
        "Out of office",
        "e1@acme.com",
        "Auto-Submitted: auto-replied\r\n",
        "I am away until Monday.",
    );
    let bounce = "From: Mail Delivery System <MAILER-DAEMON@mx.acme.com>\r\nTo: help@support.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <e2@mx.acme.com>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.acme.com\r\nFinal-Recipient: rfc822; gone@acme.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--b--\r\n";
    let list = message(
        "announce@lists.acme.com",
        "Newsletter",
        "e3@acme.com",
        "List-Id: <announce.lists.acme.com>\r\nPrecedence: list\r\n",
        "News.",
    );
    let exchange = message(
        "ops@acme.com",
        "Automatic reply: Checkout",
        "e4@acme.com",
        "X-Auto-Response-Suppress: All\r\n",
        "Away.",
    );
    for raw in [out_of_office.as_str(), bounce, list.as_str(), exchange.as_str()] {
        let r = filed(&t, &hook, raw).await;
        assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("automatic"), None), "{raw}");
    }
    let (_, cases) = t.get("/api/v1/cases", &hook).await;
    assert!(cases["cases"].as_array().unwrap().is_empty());
    assert!(t.outbox().is_empty(), "no receipts: {:?}", t.outbox());
    // A bounce with a null envelope sender via the SMTP envelope parameter.
    let r = t
        .http
        .post(t.url("/hooks/email?sender="))
        .bearer_auth(&hook)
        .body(message("ops@acme.com", "x", "e5@acme.com", "", "x"))
        .send()
        .await
        .unwrap();
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["status"], "automatic");
}

#[tokio::test]
async fn an_out_of_office_answering_a_case_joins_its_timeline_and_changes_nothing() {
    let (t, hook) = setup().await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let n = filed(&t, &hook, &message("ops@acme.com", "Checkout is down", "f1@acme.com", "", "x")).await["case"]
        .as_i64()
        .unwrap();
    t.post(&format!("/api/v1/cases/{n}/ack"), &admin, json!({"by": "ana"})).await;
    t.post(&format!("/api/v1/cases/{n}/wait"), &admin, json!({"by": "ana"})).await;
    let ooo = message(
        "ops@acme.com",
        &format!("Auto: [#{n}] Checkout is down"),
        "f2@acme.com",
        "Auto-Submitted: auto-replied\r\n",
        "Away.",
    );
    let r = filed(&t, &hook, &ooo).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("automatic"), Some(n)));
    let c = case(&t, &hook, n).await;
    assert_eq!(c["status"], "waiting", "an automatic reply does not resume a waiting case");
    let last = c["timeline"].as_array().unwrap().iter().rev().find(|e| e["kind"] == "mail").unwrap().clone();
    assert!(last["text"].as_str().unwrap().starts_with("[automatic: Auto-Submitted: auto-replied]"), "{last}");
}

#[tokio::test]
async fn a_customer_reply_resumes_a_waiting_case_and_reopens_a_resolved_one() {
    let (t, hook) = setup().await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let n = filed(&t, &hook, &message("ops@acme.com", "Checkout is down", "g1@acme.com", "", "x")).await["case"]
        .as_i64()
        .unwrap();
    t.post(&format!("/api/v1/cases/{n}/ack"), &admin, json!({"by": "ana"})).await;
    t.post(&format!("/api/v1/cases/{n}/wait"), &admin, json!({"by": "ana"})).await;
    filed(&t, &hook, &message("ops@acme.com", &format!("Re: [#{n}]"), "g2@acme.com", "", "Here are the logs.")).await;
    assert_eq!(case(&t, &hook, n).await["status"], "acknowledged");
    t.post(&format!("/api/v1/cases/{n}/resolve"), &admin, json!({"by": "ana"})).await;
    t.advance(TimeDelta::days(3)).await;
    filed(&t, &hook, &message("ops@acme.com", &format!("Re: [#{n}]"), "g3@acme.com", "", "It is back.")).await;
    let c = case(&t, &hook, n).await;
    assert_eq!(c["status"], "open");
    assert!(kinds(&c).contains(&"reopened".to_owned()));
    assert_eq!(t.step_pages(n, &admin).await.len(), 2, "the policy runs again");
}

#[tokio::test]
async fn a_reply_long_after_the_resolve_opens_a_follow_up_case() {
    let (t, hook) = setup().await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let n = filed(&t, &hook, &message("ops@acme.com", "Checkout is down", "h1@acme.com", "", "x")).await["case"]
        .as_i64()
        .unwrap();
    t.post(&format!("/api/v1/cases/{n}/resolve"), &admin, json!({"by": "ana"})).await;
    t.advance(TimeDelta::days(15)).await;
    let r = filed(
        &t,
        &hook,
        &message("ops@acme.com", &format!("Re: [#{n}] Checkout is down"), "h2@acme.com", "", "Down again."),
    )
    .await;
    let follow = r["case"].as_i64().unwrap();
    assert_ne!(follow, n);
    assert_eq!(case(&t, &hook, n).await["status"], "resolved");
    let body = case(&t, &hook, follow).await["body"].as_str().unwrap().to_owned();
    assert!(body.starts_with(&format!("Follow-up to #{n}")), "{body}");
}

#[tokio::test]
async fn receipts_to_one_address_are_rate_limited() {
    let (t, hook) = setup().await;
    for i in 0..7 {
        filed(&t, &hook, &message("ops@acme.com", &format!("Problem {i}"), &format!("r{i}@acme.com"), "", "x")).await;
    }
    assert_eq!(t.outbox_texts("receipt").len(), 5, "[email] receipts_per_hour");
    t.advance(TimeDelta::hours(1)).await;
    filed(&t, &hook, &message("ops@acme.com", "Problem 8", "r8@acme.com", "", "x")).await;
    assert_eq!(t.outbox_texts("receipt").len(), 6);
}

#[tokio::test]
async fn the_webhook_wants_an_integration_token_and_a_body() {
    let (t, hook) = setup().await;
    let engineer = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    assert_eq!(t.hook(&engineer, "From: a@b.com\r\n\r\nx").await.0, 403);
    assert_eq!(t.hook(&hook, "").await.0, 400);
    let garbage = t.hook(&hook, "this is not a message").await;
    assert_eq!((garbage.0, garbage.1["status"].as_str()), (202, Some("unusable")));
    let big = format!("From: ops@acme.com\r\nSubject: big\r\n\r\n{}", "x".repeat(26 * 1024 * 1024));
    let r = t.http.post(t.url("/hooks/email")).bearer_auth(&hook).body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
}

fn ingest(dir: &std::path::Path, stdin: &[u8], extra: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .arg("ingest")
        .args(extra)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_mta_pipe_answers_in_sysexits() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[paths]\nrules = \"{}\"\ntemplates = \"{}\"\n[email]\nmax_size = \"64KiB\"\n",
        repo().join("rules").display(),
        repo().join("templates").display()
    );
    std::fs::write(dir.path().join("tocsin.toml"), config).unwrap();
    let ok = ingest(
        dir.path(),
        message("ops@acme.com", "Checkout is down", "p1@acme.com", "", "x").as_bytes(),
        &["--sender", "ops@acme.com"],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        String::from_utf8_lossy(&ok.stdout).starts_with("filed inbox 1 #1001"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let garbage = ingest(dir.path(), b"\x00\x01 not mail", &[]);
    assert_eq!(garbage.status.code(), Some(65), "{}", String::from_utf8_lossy(&garbage.stderr));
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("kept raw as inbox 2"));
    let big = format!("From: ops@acme.com\r\nSubject: big\r\n\r\n{}", "x".repeat(70 * 1024));
    assert_eq!(ingest(dir.path(), big.as_bytes(), &[]).status.code(), Some(65));
    let bounce = ingest(dir.path(), message("ops@acme.com", "x", "p3@acme.com", "", "x").as_bytes(), &["--sender", ""]);
    assert_eq!(bounce.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bounce.stdout).starts_with("automatic"));
    // The store cannot be opened: try again later.
    std::fs::write(dir.path().join("tocsin.toml"), "[database]\nurl = \"sqlite:///nonexistent/dir/tocsin.db\"\n")
        .unwrap();
    let later = ingest(dir.path(), message("ops@acme.com", "x", "p4@acme.com", "", "x").as_bytes(), &[]);
    assert_eq!(later.status.code(), Some(75), "{}", String::from_utf8_lossy(&later.stderr));
}

#[tokio::test]
async fn mail_received_but_not_filed_before_a_crash_is_filed_at_start() {
    let (mut t, hook) = setup().await;
    let raw = message("ops@acme.com", "Checkout is down", "k1@acme.com", "", "x");
    let envelope = tocsin::mail::Envelope::default();
    // What an SMTP session does before its 250; then the process dies.
    let id = t.app().inbox.receive(raw.as_bytes(), &envelope, "smtp").await.unwrap();
    t.stop().await;
    t.start(Workers::Background).await;
    let store = t.store();
    let filed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let row = store.inbox(id).await.unwrap().unwrap();
            if row.status != tocsin::mail::InboxStatus::Pending {
                return row;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the inbox worker files what a crash left pending");
    assert_eq!((filed.status.as_str(), filed.case.map(|c| c.0)), ("filed", Some(1001)));
    let (_, list) = t.get("/api/v1/cases", &hook).await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn the_assignee_hears_when_the_customer_writes_and_not_of_auto_replies() {
    let (t, hook) = setup().await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let n = filed(&t, &hook, &message("ops@acme.com", "Checkout is down", "q1@acme.com", "", "x")).await["case"]
        .as_i64()
        .unwrap();
    t.post(&format!("/api/v1/cases/{n}/ack"), &admin, json!({"by": "ana"})).await;
    filed(
        &t,
        &hook,
        &message("ops@acme.com", &format!("Re: [#{n}]"), "q2@acme.com", "", "It fails again since 10:05."),
    )
    .await;
    filed(
        &t,
        &hook,
        &message("ops@acme.com", &format!("Auto: [#{n}]"), "q3@acme.com", "Auto-Submitted: auto-replied\r\n", "Away."),
    )
    .await;
    // Ana's page SMS went out a moment ago: the rate limit holds this one a minute.
    t.advance(TimeDelta::minutes(1)).await;
    let c = case(&t, &hook, n).await;
    let replies: Vec<(String, String, String)> = c["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "reply")
        .map(|p| {
            (
                p["person"].as_str().unwrap().into(),
                p["channel"].as_str().unwrap().into(),
                p["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        replies,
        [("ana".to_owned(), "sms".to_owned(), "sent".to_owned())],
        "one for the customer's mail, none for the auto-reply"
    );
    let sms: Vec<String> = t.outbox_texts("-reply-sms.json");
    let body: Value = serde_json::from_str(&sms[0]).unwrap();
    assert_eq!(body["body"], format!("#{n} ops@acme.com wrote: It fails again since 10:05."));
}
