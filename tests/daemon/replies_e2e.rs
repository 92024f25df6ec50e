//! Issue 14's "done when", over real sockets: a customer mails in through
//! the SMTP listener; an engineer replies by SMS (REPLY), by email (REPLY on
//! the first line), through the API and from the dashboard in Chromium; the
//! customer's SMTP server (aiosmtpd) receives four threaded mails without
//! Auto-Submitted; the customer answers one and it joins the case; the
//! engineer's reply-all is recorded and not sent again.

use std::path::Path;
use std::process::Stdio;

use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::email::Sink;
use crate::harness::*;
use crate::phone::{message_of, sms};

const PUBLIC: &str = "https://support.example.com";

async fn smtp_in(t: &TestApp, from: &str, raw: &str) {
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(t.smtp().ip().to_string())
        .port(t.smtp().port())
        .build();
    let envelope =
        Envelope::new(Some(from.parse().unwrap()), vec!["help@support.example.com".parse().unwrap()]).unwrap();
    let response = mailer.send_raw(&envelope, raw.as_bytes()).await.unwrap();
    assert!(response.is_positive(), "{response:?}");
    t.app().tick().await.unwrap();
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let head = mail.split("\r\n\r\n").next().unwrap_or(mail);
    head.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": "))).map(str::trim)
}

/// Runs tests/browser/reply.mjs; false (said loudly) without Chromium.
async fn reply_in_chromium(t: &TestApp, token: &str, n: i64, text: &str) -> bool {
    let chromium = std::env::var("TOCSIN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script = repo().join("tests/browser/reply.mjs");
    let modules = repo().join("tests/browser/node_modules/playwright-core");
    if !Path::new(&chromium).exists() || !modules.exists() {
        let required = std::env::var("TOCSIN_TEST_BROWSER").is_ok_and(|v| v == "required");
        assert!(!required, "browser test required but Chromium or playwright-core is missing; run `bash .ci/run`");
        skip::say(
            &skip::current_test(),
            "the dashboard reply needs Chromium and playwright-core; it is posted as the form instead",
        );
        return false;
    }
    let artifacts = repo().join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .args([t.url("").as_str(), token, &n.to_string(), text])
        .arg(&artifacts)
        .env("TOCSIN_TEST_CHROMIUM", &chromium)
        .current_dir(script.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the browser run finishes within two minutes")
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success(), "browser run failed:\n{stdout}\n{stderr}");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_hears_back_in_their_thread_by_every_way_an_engineer_replies() {
    let Some(py) = python() else { return };
    let sink = Sink::start(&py);
    let twilio = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1"})))
        .mount(&twilio)
        .await;
    let rules = rules_with_ana_email("ana@example.com");
    let (transport, twilio_uri) = (format!("smtp://127.0.0.1:{}", sink.port), twilio.uri());
    let t = TestApp::spawn_configured(Workers::Manual, START, rules.path(), |c| {
        c.email.transport = transport;
        c.sms.provider = "twilio".into();
        c.sms.twilio_account_sid = "AC0123456789abcdef".into();
        c.sms.twilio_auth_token_env = TWILIO_TOKEN_ENV.into();
        c.sms.twilio_api_base = twilio_uri;
        c.server.public_url = PUBLIC.into();
    })
    .await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;

    // 1. The customer mails in.
    smtp_in(
        &t,
        "ops@acme.com",
        "From: Olga Ops <ops@acme.com>\r\nTo: help@support.example.com\r\nSubject: Checkout is down\r\n\
         Message-ID: <e2e1@acme.com>\r\n\r\nAll 500s since 09:50.\r\n",
    )
    .await;
    let (_, list) = t.get("/api/v1/cases", &ana).await;
    let n = list["cases"][0]["number"].as_i64().unwrap();
    let page = sink.messages().into_iter().find(|(e, _)| e["to"][0] == "ana@example.com").expect("ana's page").1;
    let reply_to = header(&page, "Reply-To").unwrap().to_owned();

    // 2. By SMS.
    let (_, twiml) = sms(&t, "+15550100001", &format!("REPLY {n} One: restoring the database."), false).await;
    assert_eq!(message_of(&twiml).as_deref(), Some(format!("Reply to #{n} queued for ops@acme.com.").as_str()));
    // 3. By email, REPLY on the first line.
    smtp_in(
        &t,
        "ana@example.com",
        &format!(
            "From: Ana Lima <ana@example.com>\r\nTo: {reply_to}\r\nSubject: Re: page\r\nMessage-ID: <ana-e2e@example.com>\r\n\r\n\
             REPLY\r\nTwo: the database is back.\r\n\r\n## Reply above this line ##\r\nAna Lima, you are paged\r\n"
        ),
    )
    .await;
    // 4. Through the API.
    let (s, _) = t.post(&format!("/api/v1/cases/{n}/replies"), &ana, json!({"text": "Three: watching it."})).await;
    assert_eq!(s, 201);
    // 5. From the dashboard.
    let web = "Four: all clear from the dashboard.";
    if !reply_in_chromium(&t, &ana, n, web).await {
        let (session, _) = crate::harness::web::sign_in(&t, &ana).await;
        let r = crate::harness::web::browser()
            .post(t.url(&format!("/cases/{n}/reply")))
            .header(reqwest::header::COOKIE, &session.cookie)
            .form(&[("csrf", session.csrf.as_str()), ("text", web)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
    }
    t.app().tick().await.unwrap();

    // The customer's server got four mails in their thread.
    let to_customer = || -> Vec<String> {
        sink.messages()
            .into_iter()
            .filter(|(e, m)| {
                e["to"][0] == "ops@acme.com" && header(m, "Subject").is_some_and(|s| s.starts_with("Re: "))
            })
            .map(|(_, m)| m)
            .collect()
    };
    let replies = to_customer();
    assert_eq!(replies.len(), 4, "{replies:#?}");
    // The dispatcher sends a batch concurrently: they arrive in any order.
    let by =
        |said: &str| replies.iter().find(|m| m.contains(said)).unwrap_or_else(|| panic!("{said:?} in {replies:#?}"));
    for said in ["One: restoring", "Two: the database is back.", "Three: watching", "Four: all clear"] {
        let mail = by(said);
        assert_eq!(header(mail, "Subject"), Some(format!("Re: [#{n}] Checkout is down").as_str()));
        assert_eq!(header(mail, "In-Reply-To"), Some("<e2e1@acme.com>"));
        assert_eq!(header(mail, "References"), Some("<e2e1@acme.com>"));
        assert!(header(mail, "Reply-To").unwrap().starts_with(&format!("support+{n}.c")), "{mail}");
        assert_eq!(header(mail, "From"), Some("Support <support@example.com>"));
        assert!(mail.contains("Ana Lima"), "signed by the engineer: {mail}");
        assert_eq!(header(mail, "Auto-Submitted"), None, "{mail}");
    }
    assert!(!by("Two: the database").contains("you are paged"), "quoted history is not sent");

    // The customer answers the first; it joins the case.
    let first = by("One: restoring");
    let first_id = header(first, "Message-ID").unwrap().to_owned();
    smtp_in(
        &t,
        "ops@acme.com",
        &format!(
            "From: ops@acme.com\r\nTo: {}\r\nSubject: Re: [#{n}] Checkout is down\r\nMessage-ID: <e2e2@acme.com>\r\n\
             In-Reply-To: {first_id}\r\nReferences: <e2e1@acme.com> {first_id}\r\n\r\nStill slow for EU users.\r\n\r\n\
             On Tue, 24 Nov 2026 at 10:00, Support <support@example.com> wrote:\r\n> One: restoring the database.\r\n",
            header(first, "Reply-To").unwrap()
        ),
    )
    .await;
    let (_, c) = t.get(&format!("/api/v1/cases/{n}"), &ana).await;
    let timeline = c["timeline"].as_array().unwrap().clone();
    let mail: Vec<&Value> = timeline.iter().filter(|e| e["kind"] == "mail").collect();
    assert_eq!(mail.last().unwrap()["text"], "Still slow for EU users.");
    assert_eq!(timeline.iter().filter(|e| e["kind"] == "reply").count(), 4);

    // Ana answers from her phone's mail app, support in Cc: recorded, not resent.
    smtp_in(
        &t,
        "ana@example.com",
        "From: Ana Lima <ana@example.com>\r\nTo: ops@acme.com\r\nCc: help@support.example.com\r\n\
         Subject: Re: Checkout is down\r\nMessage-ID: <ana-phone-e2e@example.com>\r\nIn-Reply-To: <e2e2@acme.com>\r\n\
         References: <e2e1@acme.com> <e2e2@acme.com>\r\n\r\nEU traffic moved to the new pool.\r\n",
    )
    .await;
    let (_, c) = t.get(&format!("/api/v1/cases/{n}"), &ana).await;
    let last_reply = c["timeline"].as_array().unwrap().iter().rev().find(|e| e["kind"] == "reply").unwrap().clone();
    assert_eq!(last_reply["text"], "[sent from their own mail] EU traffic moved to the new pool.");
    assert_eq!(last_reply["actor"], "ana");
    t.app().tick().await.unwrap();
    assert_eq!(to_customer().len(), 4, "the reply-all is not sent again");
    let (_, all) = t.get("/api/v1/cases", &ana).await;
    assert_eq!(all["cases"].as_array().unwrap().len(), 1, "no new case");
}
