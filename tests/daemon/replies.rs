//! Replies to the customer (issue 14), end to end: by the API, by SMS, as
//! an email reply to a page and from the dashboard, each mailed to the
//! customer in the case's thread; and the customer's answer joining the
//! case.

use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::web::{browser, sign_in};
use crate::harness::*;
use crate::phone::{message_of, phone_app, reply_address, sms};

fn customer_mail(id: &str, extra: &str, subject: &str, body: &str) -> String {
    format!(
        "From: Olga Ops <ops@acme.com>\r\nTo: help@support.example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n{extra}\r\n{body}\r\n"
    )
}

async fn case(t: &TestApp, tok: &str, n: i64) -> Value {
    t.get(&format!("/api/v1/cases/{n}"), tok).await.1
}

/// The customer mails in; the number of the case it opened.
async fn mailed_in(t: &TestApp, hook: &str) -> i64 {
    let (s, r) = t.hook(hook, &customer_mail("c1@acme.com", "", "Checkout is down", "All 500s since 09:50.")).await;
    assert_eq!((s, r["status"].as_str()), (202, Some("filed")), "{r}");
    t.app().tick().await.unwrap();
    r["case"].as_i64().unwrap()
}

/// The mails to the customer for case `n`, oldest first.
fn replies(t: &TestApp, n: i64) -> Vec<String> {
    t.outbox_texts(&format!("case{n}-customer_reply-email"))
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let head = mail.split("\r\n\r\n").next().unwrap_or(mail);
    head.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": "))).map(str::trim)
}

/// What a customer's mail program shows of a reply: the headers that make
/// the thread, and none that marks it automatic.
fn assert_threaded(mail: &str, n: i64, answers: &str, references: &str) {
    assert_eq!(header(mail, "To"), Some("ops@acme.com"), "{mail}");
    assert_eq!(header(mail, "Subject"), Some(format!("Re: [#{n}] Checkout is down").as_str()), "{mail}");
    assert_eq!(header(mail, "In-Reply-To"), Some(answers), "{mail}");
    assert_eq!(header(mail, "References"), Some(references), "{mail}");
    let reply_to = header(mail, "Reply-To").expect("a Reply-To");
    assert!(
        reply_to.starts_with(&format!("support+{n}.c")) && reply_to.ends_with("@support.example.com"),
        "{reply_to}"
    );
    assert_eq!(header(mail, "Auto-Submitted"), None, "a person wrote it (RFC 3834 §5): {mail}");
    assert_eq!(header(mail, "X-Auto-Response-Suppress"), None, "{mail}");
}

#[tokio::test]
async fn an_api_reply_is_mailed_in_the_customers_thread_and_their_answer_joins_the_case() {
    let t = TestApp::spawn(Workers::Manual).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let ops = t.token("ops", TokenRole::Admin, None).await;
    let n = mailed_in(&t, &hook).await;

    let (s, c) =
        t.post(&format!("/api/v1/cases/{n}/replies"), &ana, json!({"text": "We are restoring the database."})).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["number"], n);
    let reply = c["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "reply").unwrap();
    assert_eq!((reply["actor"].as_str(), reply["channel"].as_str()), (Some("ana"), Some("api")));
    assert_eq!(reply["text"], "We are restoring the database.");
    // A reply is no acknowledgement: the escalation keeps running.
    assert_eq!(c["status"], "open");
    t.app().tick().await.unwrap();
    let sent = replies(&t, n);
    assert_eq!(sent.len(), 1);
    assert_threaded(&sent[0], n, "<c1@acme.com>", "<c1@acme.com>");
    assert!(sent[0].contains("We are restoring the database.") && sent[0].contains("Ana Lima"), "{}", sent[0]);
    let c = case(&t, &ops, n).await;
    let page = c["pages"].as_array().unwrap().iter().find(|p| p["kind"] == "customer_reply").unwrap().clone();
    assert_eq!(
        (page["status"].as_str(), page["person"].as_str(), page["author"].as_str()),
        (Some("sent"), None, Some("ana"))
    );
    let sent_event = c["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "sent").unwrap().clone();
    assert_eq!(sent_event["text"], "customer_reply to ops@acme.com sent by email");

    // The customer answers the reply: by its Message-ID, it joins the case
    // as the customer's mail (never as an engineer's command).
    let reply_id = header(&sent[0], "Message-ID").unwrap().to_owned();
    let answer =
        customer_mail("c2@acme.com", &format!("In-Reply-To: {reply_id}\r\n"), "Re: anything", "Thanks, still slow.");
    let (_, r) = t.hook(&hook, &answer).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("filed"), Some(n)), "{r}");
    // Sent to the Reply-To alone (a mail program that drops In-Reply-To,
    // a new subject): it joins the case too.
    let to = header(&sent[0], "Reply-To").unwrap().to_owned();
    let plain = format!(
        "From: ops@acme.com\r\nTo: {to}\r\nSubject: another thing\r\nMessage-ID: <c3@acme.com>\r\n\r\nAnd the invoices?\r\n"
    );
    let (_, r) = t.hook(&hook, &plain).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("filed"), Some(n)), "{r}");
    // A forged customer address opens a case of its own.
    let forged = plain.replace(&to, &format!("support+{n}.c000000000000@support.example.com")).replace("c3@", "c4@");
    let (_, r) = t.hook(&hook, &forged).await;
    assert_ne!(r["case"].as_i64(), Some(n), "{r}");

    // The next reply answers the customer's latest message.
    let (s, _) =
        t.post(&format!("/api/v1/cases/{n}/replies"), &ops, json!({"text": "Invoices are fine.", "by": "ben"})).await;
    assert_eq!(s, 201);
    t.app().tick().await.unwrap();
    let sent = replies(&t, n);
    assert_eq!(sent.len(), 2);
    assert_threaded(&sent[1], n, "<c3@acme.com>", "<c1@acme.com> <c2@acme.com> <c3@acme.com>");
    assert!(sent[1].contains("Ben"), "signed by the person named: {}", sent[1]);
    let c = case(&t, &ops, n).await;
    let kinds: Vec<&str> = c["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "reply").count(), 2, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "mail").count(), 2, "{kinds:?}");
}

#[tokio::test]
async fn a_reply_needs_text_a_person_and_a_case_the_token_may_see() {
    let t = TestApp::spawn(Workers::Manual).await;
    let ops = t.token("ops", TokenRole::Admin, None).await;
    let chen = t.token("chen-phone", TokenRole::Engineer, Some("chen")).await;
    let n = t.open_outage(&ops).await;
    let path = format!("/api/v1/cases/{n}/replies");
    let (s, e) = t.post(&path, &ops, json!({"text": "hello"})).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("signed by a person"), "{e}");
    let (s, e) = t.post(&path, &ops, json!({"text": "  ", "by": "ana"})).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("needs text"), "{e}");
    let (s, e) = t.post(&path, &ops, json!({"text": "hi", "by": "nobody"})).await;
    assert_eq!(s, 422, "{e}");
    let (s, _) = t.post(&path, &chen, json!({"text": "hi"})).await;
    assert_eq!(s, 404, "chen was never paged for it");
    let (s, e) = t.post("/api/v1/cases/99999/replies", &ops, json!({"text": "hi", "by": "ana"})).await;
    assert_eq!(s, 404, "{e}");
    t.app().tick().await.unwrap();
    assert!(replies(&t, n).is_empty(), "nothing went to the customer");
    // The routes are in the OpenAPI document.
    let doc: Value = t.http.get(t.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    for path in [
        "/api/v1/cases/{number}/replies",
        "/api/v1/cases/{number}/attachments/{id}",
        "/api/v1/cases/{number}/messages/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    assert!(doc["paths"]["/api/v1/cases/{number}/replies"]["post"]["responses"]["201"].is_object());
}

#[tokio::test]
async fn reply_by_sms_and_by_email_reaches_the_customer_and_is_confirmed_on_the_same_channel() {
    let rules = rules_with_ana_email("ana@example.com");
    let (t, twilio) = phone_app(rules.path()).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let ops = t.token("ops", TokenRole::Admin, None).await;
    let n = mailed_in(&t, &hook).await;

    // By SMS: Ana is paged by email first, so she names the case.
    let (s, twiml) = sms(&t, "+15550100001", &format!("REPLY {n} On it, restoring now."), false).await;
    assert_eq!(s, 200);
    assert_eq!(message_of(&twiml).as_deref(), Some(format!("Reply to #{n} queued for ops@acme.com.").as_str()));
    let (_, twiml) = sms(&t, "+15550100001", &format!("REPLY {n}"), false).await;
    assert!(message_of(&twiml).unwrap().starts_with("REPLY needs text"), "{twiml}");

    // By email: the first line is the command, the rest is the text; the
    // quoted page below is not.
    let to = reply_address(&t, n);
    let mail = format!(
        "From: ana@example.com\r\nTo: {to}\r\nSubject: Re: page\r\nMessage-ID: <ana1@example.com>\r\n\r\nREPLY\r\nHello Olga,\r\n\r\nthe database is back.\r\n\r\n## Reply above this line ##\r\nAna Lima, you are paged...\r\n"
    );
    let (_, r) = t.hook(&hook, &mail).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("command"), Some(n)), "{r}");
    t.app().tick().await.unwrap();

    let sent = replies(&t, n);
    assert_eq!(sent.len(), 2, "one per reply");
    for mail in &sent {
        assert_threaded(mail, n, "<c1@acme.com>", "<c1@acme.com>");
    }
    assert!(sent[0].contains("On it, restoring now."));
    assert!(sent[1].contains("Hello Olga,") && sent[1].contains("the database is back."), "{}", sent[1]);
    assert!(!sent[1].contains("you are paged"), "{}", sent[1]);
    let c = case(&t, &ops, n).await;
    let channels: Vec<&str> = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "reply")
        .map(|e| e["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["sms", "email"]);
    // The email reply is confirmed by email.
    let confirmations = t.outbox_texts(&format!("case{n}-confirmation-email"));
    assert!(
        confirmations.iter().any(|m| m.contains(&format!("Reply to #{n} queued for ops@acme.com."))),
        "{confirmations:?}"
    );
    drop(twilio);
}

#[tokio::test]
async fn the_case_page_has_a_reply_form_apart_from_the_internal_update() {
    let t = TestApp::spawn(Workers::Manual).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let ana = t.token("ana-web", TokenRole::Engineer, Some("ana")).await;
    let n = mailed_in(&t, &hook).await;
    let (s, _) = sign_in(&t, &ana).await;
    let (status, html) = crate::harness::web::page(&t, &s, &format!("/cases/{n}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("action=\"/cases/{n}/reply\"")) && html.contains("Reply to customer"), "{html}");
    assert!(html.contains("internal note: the customer does not see it"), "{html}");
    let r = browser()
        .post(t.url(&format!("/cases/{n}/reply")))
        .header(reqwest::header::COOKIE, &s.cookie)
        .form(&[("csrf", s.csrf.as_str()), ("text", "Fixed from the dashboard.")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    t.app().tick().await.unwrap();
    let sent = replies(&t, n);
    assert_eq!(sent.len(), 1);
    assert_threaded(&sent[0], n, "<c1@acme.com>", "<c1@acme.com>");
    let (_, html) = crate::harness::web::page(&t, &s, &format!("/cases/{n}")).await;
    assert!(html.contains("Fixed from the dashboard."), "the reply is on the timeline");
    // A forged CSRF secret sends nothing.
    let r = browser()
        .post(t.url(&format!("/cases/{n}/reply")))
        .header(reqwest::header::COOKIE, &s.cookie)
        .form(&[("csrf", "forged"), ("text", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_reply_all_from_an_engineers_own_mail_is_recorded_as_their_reply_and_not_resent() {
    let t = TestApp::spawn(Workers::Manual).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = mailed_in(&t, &hook).await;
    let (s, acked) = t.post(&format!("/api/v1/cases/{n}/ack"), &ana, json!({})).await;
    assert_eq!(s, 200, "{acked}");
    let cases_before = t.get("/api/v1/cases", &ana).await.1["cases"].as_array().unwrap().len();
    t.clock.advance(chrono::TimeDelta::minutes(20));

    // Ana answers the customer's mail from her phone, support in Cc.
    let mail = "From: Ana Lima <ana@example.com>\r\nTo: ops@acme.com\r\nCc: help@support.example.com\r\n\
                Subject: Re: Checkout is down\r\nMessage-ID: <ana-phone-1@example.com>\r\nIn-Reply-To: <c1@acme.com>\r\n\
                References: <c1@acme.com>\r\n\r\nFound it: a full disk. Restarting now.\r\n\r\n\
                On Tue, 24 Nov 2026 at 09:55, Olga Ops <ops@acme.com> wrote:\r\n> All 500s since 09:50.\r\n";
    let (_, r) = t.hook(&hook, mail).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("command"), Some(n)), "{r}");
    t.app().tick().await.unwrap();
    let c = case(&t, &ana, n).await;
    let reply = c["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "reply").unwrap().clone();
    assert_eq!((reply["actor"].as_str(), reply["channel"].as_str()), (Some("ana"), Some("email")));
    assert_eq!(reply["text"], "[sent from their own mail] Found it: a full disk. Restarting now.");
    assert!(!c["timeline"].as_array().unwrap().iter().any(|e| e["kind"] == "mail" && e["actor"] == "ana@example.com"));
    // It counts for the update clock, as a reply: a new window from now.
    let before = acked["deadlines"]["update"].as_str().unwrap();
    assert!(c["deadlines"]["update"].as_str().unwrap() > before, "{c}");
    // Nothing more is sent to the customer, nothing opened, no receipt.
    assert!(replies(&t, n).is_empty());
    assert_eq!(t.outbox_texts("receipt").len(), 1);
    assert_eq!(t.get("/api/v1/cases", &ana).await.1["cases"].as_array().unwrap().len(), cases_before);

    // By the [#n] tag alone, to support's own address: recorded too.
    let tagged = format!(
        "From: ana@example.com\r\nTo: ops@acme.com, support@example.com\r\nSubject: Re: [#{n}] Checkout is down\r\n\
         Message-ID: <ana-phone-2@example.com>\r\n\r\nBack up.\r\n"
    );
    let (_, r) = t.hook(&hook, &tagged).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("command"), Some(n)), "{r}");
    // The customer's answer to Ana's own mail joins the case as theirs.
    let answer =
        customer_mail("c2@acme.com", "In-Reply-To: <ana-phone-1@example.com>\r\n", "Re: Re: Checkout", "Thanks!");
    let (_, r) = t.hook(&hook, &answer).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("filed"), Some(n)), "{r}");
    t.app().tick().await.unwrap();
    assert!(replies(&t, n).is_empty(), "a reply-all is never resent");
}

#[tokio::test]
async fn a_plan_that_tells_the_customer_mails_them_on_ack_and_resolve_and_their_answer_reopens() {
    let t = TestApp::spawn(Workers::Manual).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let ops = t.token("ops", TokenRole::Admin, None).await;
    // Acme is on gold: tell_customer = ["ack", "resolve"].
    let n = mailed_in(&t, &hook).await;
    t.post(&format!("/api/v1/cases/{n}/ack"), &ana, json!({})).await;
    t.app().tick().await.unwrap();
    let acks = t.outbox_texts(&format!("case{n}-customer_ack-email"));
    assert_eq!(acks.len(), 1);
    let ack = &acks[0];
    assert_eq!(header(ack, "To"), Some("ops@acme.com"));
    assert_eq!(header(ack, "Subject"), Some(format!("Re: [#{n}] Checkout is down").as_str()));
    assert_eq!(header(ack, "In-Reply-To"), Some("<c1@acme.com>"));
    assert!(header(ack, "Reply-To").unwrap().starts_with(&format!("support+{n}.c")));
    assert!(ack.contains("Ana Lima is looking at your case"), "{ack}");
    // A templated notice is automatic mail (RFC 3834), unlike a reply.
    assert_eq!(header(ack, "Auto-Submitted"), Some("auto-replied"));

    let (_, c) = t.post(&format!("/api/v1/cases/{n}/resolve"), &ana, json!({"text": "A full disk; cleaned up."})).await;
    assert_eq!(c["status"], "resolved");
    t.app().tick().await.unwrap();
    let resolved = t.outbox_texts(&format!("case{n}-customer_resolved-email"));
    assert_eq!(resolved.len(), 1);
    assert!(resolved[0].contains("A full disk; cleaned up.") && resolved[0].contains("reopens"), "{}", resolved[0]);
    // The customer answers the notice: the case reopens.
    let id = header(&resolved[0], "Message-ID").unwrap().to_owned();
    let answer = customer_mail("c2@acme.com", &format!("In-Reply-To: {id}\r\n"), "Re: resolved", "It is down again.");
    let (_, r) = t.hook(&hook, &answer).await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("filed"), Some(n)), "{r}");
    assert_eq!(case(&t, &ops, n).await["status"], "open");

    // Globex is on standard: tell_customer = ["resolve"] only.
    let raw = "From: it@globex.example\r\nTo: help@support.example.com\r\nSubject: Slow invoices\r\nMessage-ID: <g1@globex.example>\r\n\r\nSlow.\r\n";
    let (_, r) = t.hook(&hook, raw).await;
    let g = r["case"].as_i64().unwrap();
    t.post(&format!("/api/v1/cases/{g}/ack"), &ana, json!({})).await;
    t.post(&format!("/api/v1/cases/{g}/resolve"), &ana, json!({})).await;
    t.app().tick().await.unwrap();
    assert!(t.outbox_texts(&format!("case{g}-customer_ack-email")).is_empty());
    assert_eq!(t.outbox_texts(&format!("case{g}-customer_resolved-email")).len(), 1);
}

#[tokio::test]
async fn the_report_gives_the_time_to_the_first_reply_beside_the_time_to_acknowledge() {
    let t = TestApp::spawn(Workers::Manual).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let quick = t.open_outage(&max).await;
    let slow = t.open_outage(&max).await;
    let _silent = t.open_outage(&max).await;
    t.advance(chrono::TimeDelta::minutes(2)).await;
    for n in [quick, slow] {
        t.post(&format!("/api/v1/cases/{n}/ack"), &ana, json!({})).await;
    }
    t.advance(chrono::TimeDelta::minutes(4)).await;
    t.post(&format!("/api/v1/cases/{quick}/replies"), &ana, json!({"text": "On it."})).await;
    t.advance(chrono::TimeDelta::minutes(14)).await;
    t.post(&format!("/api/v1/cases/{slow}/replies"), &ana, json!({"text": "Found it."})).await;
    // A second reply does not move the first.
    t.post(&format!("/api/v1/cases/{quick}/replies"), &ana, json!({"text": "Fixed."})).await;
    let (s, r) = t.get("/api/v1/reports/sla?from=2026-11-23&to=2026-11-29", &max).await;
    assert_eq!(s, 200, "{r}");
    // Replies at 6 and 20 minutes: mean 13 minutes; acks at 2 minutes.
    assert_eq!(
        (r["totals"]["mttfr"].as_i64(), r["totals"]["mtta"].as_i64()),
        (Some(780), Some(120)),
        "{}",
        r["totals"]
    );
    assert_eq!(r["times"][0]["replied"], 2);
    let csv = t
        .http
        .get(t.url("/api/v1/reports/sla?from=2026-11-23&to=2026-11-29&format=csv&table=times"))
        .bearer_auth(&max)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.ends_with(",2,780,1200\n"), "{csv}");
}
