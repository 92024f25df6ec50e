//! Issue 13's floods and replays against the real daemon: forged mail over
//! a real SMTP conversation past the new-case limits, and Twilio webhooks
//! signed with Twilio's own helper library, replayed.

use std::time::Duration;

use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::harness::*;

const PUBLIC: &str = "https://support.example.com";

/// Numbers the Message-IDs, so no mail is a duplicate of another.
static NEXT_MAIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Sends every `(from, subject)` as one mail in a single SMTP session, each
/// answered 250 (committed to the inbox) before the next.
async fn smtp_send(t: &TestApp, mails: &[(String, String)]) {
    let (r, mut w) = tokio::net::TcpStream::connect(t.smtp()).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line)).await.unwrap().unwrap();
            all += &line;
            if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }
    assert!(reply(&mut r).await.starts_with("220"));
    w.write_all(b"EHLO mx.forger.example\r\n").await.unwrap();
    assert!(reply(&mut r).await.starts_with("250"));
    for (from, subject) in mails {
        let i = NEXT_MAIL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (line, code) in [
            (format!("MAIL FROM:<{from}>"), "250"),
            ("RCPT TO:<help@support.example.com>".into(), "250"),
            ("DATA".into(), "354"),
        ] {
            w.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
            let answer = reply(&mut r).await;
            assert!(answer.starts_with(code), "{line}: {answer}");
        }
        let message = format!(
            "From: {from}\r\nTo: help@support.example.com\r\nSubject: {subject}\r\nMessage-ID: <flood{i}.{from}>\r\n\r\nEverything is down, mail {i}.\r\n.\r\n"
        );
        w.write_all(message.as_bytes()).await.unwrap();
        let queued = reply(&mut r).await;
        assert!(queued.starts_with("250 2.0.0 Queued"), "{queued}");
    }
    w.write_all(b"QUIT\r\n").await.unwrap();
    assert!(reply(&mut r).await.starts_with("221"));
}

/// Every case, and how many pages (kind `page`) each sent.
async fn cases_and_pages(t: &TestApp, tok: &str) -> Vec<(i64, usize)> {
    let (_, list) = t.get("/api/v1/cases?limit=100", tok).await;
    let mut out = Vec::new();
    for c in list["cases"].as_array().unwrap() {
        let n = c["number"].as_i64().unwrap();
        let (_, full) = t.get(&format!("/api/v1/cases/{n}"), tok).await;
        let pages = full["pages"].as_array().unwrap().iter().filter(|p| p["kind"] == "page").count();
        out.push((n, pages));
    }
    out.sort();
    out
}

async fn inbox(t: &TestApp, tok: &str, status: &str) -> Vec<Value> {
    let (code, body) = t.get(&format!("/api/v1/inbox?status={status}&limit=100"), tok).await;
    assert_eq!(code, 200, "{body}");
    body["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn eight_forged_mails_from_one_sender_open_five_cases_and_page_five_times() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let flood: Vec<(String, String)> =
        (1..=8).map(|i| ("ops@acme.com".to_owned(), format!("Checkout is down ({i})"))).collect();
    smtp_send(&t, &flood).await;
    t.app().tick().await.unwrap();
    // [email] new_cases_per_sender_per_hour = 5: five cases, each paged
    // as one case is; the three past the limit paged nobody.
    let cases = cases_and_pages(&t, &tok).await;
    assert_eq!(cases.len(), 5, "{cases:?}");
    let per_case = cases[0].1;
    assert!(per_case > 0 && cases.iter().all(|(_, p)| *p == per_case), "{cases:?}");
    // The three went on the timeline of the sender's newest open case,
    // saying why.
    let newest = cases.last().unwrap().0;
    let mails = t.events(newest, &tok, "mail").await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    for (i, (_, text)) in mails.iter().enumerate() {
        assert!(
            text.starts_with(&format!(
                "[filed here, not opened as a new case: ops@acme.com reached the limit of 5 new cases per hour ([email] new_cases_per_sender_per_hour)] Checkout is down ({})",
                i + 6
            )),
            "{text}"
        );
    }
    // None lost: eight inbox rows, all filed, five receipts at most.
    let filed = inbox(&t, &tok, "filed").await;
    assert_eq!(filed.len(), 8);
    let limited: Vec<&Value> =
        filed.iter().filter(|m| m["note"].as_str().unwrap().starts_with("new-case limit")).collect();
    assert_eq!(limited.len(), 3);
    assert!(limited.iter().all(|m| m["case"] == newest));
    assert_eq!(t.outbox_texts("receipt").len(), 5);

    // With every case of the sender resolved, one more is held: no case,
    // no receipt, listed for managers, the raw mail kept.
    for (n, _) in &cases {
        let (code, body) = t.post(&format!("/api/v1/cases/{n}/resolve"), &tok, json!({"text": "spam"})).await;
        assert_eq!(code, 200, "{body}");
    }
    smtp_send(&t, &[("ops@acme.com".to_owned(), "Still down".to_owned())]).await;
    t.app().tick().await.unwrap();
    assert_eq!(cases_and_pages(&t, &tok).await.len(), 5, "no sixth case");
    let held = inbox(&t, &tok, "held").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!((held[0]["from"].as_str(), held[0]["subject"].as_str()), (Some("ops@acme.com"), Some("Still down")));
    assert!(held[0]["note"].as_str().unwrap().contains("new_cases_per_sender_per_hour"), "{}", held[0]);
    assert_eq!(t.outbox_texts("receipt").len(), 5, "no backscatter");
    let (code, _) = t.get("/api/v1/inbox", &t.token("ana-phone", TokenRole::Engineer, Some("ana")).await).await;
    assert_eq!(code, 403, "engineers do not read the inbox");
    // An hour later the sender may open cases again.
    t.clock.advance(chrono::TimeDelta::minutes(61));
    smtp_send(&t, &[("ops@acme.com".to_owned(), "Down again".to_owned())]).await;
    t.app().tick().await.unwrap();
    assert_eq!(cases_and_pages(&t, &tok).await.len(), 6);
}

#[tokio::test]
async fn eight_forged_senders_of_one_domain_hit_the_domain_limit_and_are_held() {
    let t = TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.email.new_cases_per_domain_per_hour = 3;
    })
    .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let flood: Vec<(String, String)> =
        (1..=8).map(|i| (format!("user{i}@acme.com"), "Everything is down".to_owned())).collect();
    smtp_send(&t, &flood).await;
    t.app().tick().await.unwrap();
    let cases = cases_and_pages(&t, &tok).await;
    assert_eq!(cases.len(), 3, "{cases:?}");
    // Each of the other five senders has no open case: held, none lost.
    let (filed, held) = (inbox(&t, &tok, "filed").await, inbox(&t, &tok, "held").await);
    assert_eq!((filed.len(), held.len()), (3, 5));
    let mut from: Vec<&str> = held.iter().map(|m| m["from"].as_str().unwrap()).collect();
    from.sort();
    assert_eq!(from, ["user4@acme.com", "user5@acme.com", "user6@acme.com", "user7@acme.com", "user8@acme.com"]);
    assert!(held.iter().all(|m| m["note"].as_str().unwrap().contains("senders of acme.com")), "{held:?}");
    assert_eq!(t.outbox_texts("receipt").len(), 3);
    // Managers see them on the dashboard; engineers do not.
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let (s, _) = web::sign_in(&t, &max).await;
    let (_, html) = web::page(&t, &s, "/now").await;
    let section = html.find("Mail held by the new-case limits").expect("a held-mail section");
    assert!(html[section..].contains("user8@acme.com") && html[section..].contains("senders of acme.com"));
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let (a, _) = web::sign_in(&t, &ana).await;
    assert!(!web::page(&t, &a, "/now").await.1.contains("Mail held"));
    // Another domain is not affected.
    smtp_send(&t, &[("ops@globex.com".to_owned(), "Everything is down".to_owned())]).await;
    t.app().tick().await.unwrap();
    assert_eq!(cases_and_pages(&t, &tok).await.len(), 4);
}

/// The daemon with Twilio's webhooks on (signed with TWILIO_TOKEN), SMS
/// pages sent to a wiremock Twilio that names each message `SMpage<n>`.
async fn twilio_app() -> (TestApp, wiremock::MockServer) {
    twilio_app_on(None).await
}

/// As [`twilio_app`], on the database at `url` if given.
/// On PostgreSQL (`url`), instances share the reply key in `key`.
async fn twilio_app_on(url: Option<(&str, &std::path::Path)>) -> (TestApp, wiremock::MockServer) {
    let twilio = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(201).set_body_json(json!({"sid": "SMpage1", "status": "queued"})))
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let t = TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.sms.provider = "twilio".into();
        c.sms.twilio_account_sid = "AC0123456789abcdef".into();
        c.sms.twilio_auth_token_env = TWILIO_TOKEN_ENV.into();
        c.sms.twilio_api_base = uri;
        c.server.public_url = PUBLIC.into();
        if let Some((url, key)) = url {
            c.database.url = url.to_owned();
            c.secrets.reply_key_file = Some(key.to_owned());
        }
    })
    .await;
    (t, twilio)
}

/// X-Twilio-Signature of a request to `url` with `params`, made as Twilio
/// makes it: by its helper library when the test peers are installed (the
/// library's own algorithm), else by Tocsin's signer, which
/// `sms::signatures_agree_with_the_official_twilio_library` checks against
/// the library.
fn twilio_signature(url: &str, params: &[(String, String)]) -> String {
    let Some(py) = python() else { return tocsin::notify::twilio::signature(TWILIO_TOKEN, url, params) };
    let mut child = std::process::Command::new(py)
        .arg(repo().join("tests/peers/twilio_sign.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let line = json!({"token": TWILIO_TOKEN, "url": url, "params": params});
        child.stdin.take().unwrap().write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Posts the same signed request `path` + `params`, answering status and body.
async fn post_signed(t: &TestApp, path: &str, params: &[(String, String)], sig: &str) -> (u16, String) {
    let r = t.http.post(t.url(path)).header("x-twilio-signature", sig).form(params).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test]
async fn a_replayed_sms_webhook_adds_one_note_and_one_reply() {
    let (t, _twilio) = twilio_app().await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    let text = format!("NOTE {n} replaced the failed disk");
    let params =
        pairs(&[("MessageSid", "SMreplayed0001"), ("From", "+15550100001"), ("To", "+15550000000"), ("Body", &text)]);
    let sig = twilio_signature(&format!("{PUBLIC}/hooks/twilio/sms"), &params);
    let (code, first) = post_signed(&t, "/hooks/twilio/sms", &params, &sig).await;
    assert_eq!(code, 200, "{first}");
    assert!(first.contains("<Message>"), "the first answers: {first}");
    // The replay, twice in a row and twice at once: 200, nothing said,
    // nothing done.
    for _ in 0..2 {
        let (code, again) = post_signed(&t, "/hooks/twilio/sms", &params, &sig).await;
        assert_eq!(code, 200, "Twilio must not retry");
        assert!(!again.contains("<Message>"), "no second reply: {again}");
    }
    let (a, b) = tokio::join!(
        post_signed(&t, "/hooks/twilio/sms", &params, &sig),
        post_signed(&t, "/hooks/twilio/sms", &params, &sig)
    );
    assert!([a, b].iter().all(|(code, body)| *code == 200 && !body.contains("<Message>")));
    let notes = t.events(n, &tok, "note").await;
    assert_eq!(notes.iter().filter(|(_, text)| text.contains("replaced the failed disk")).count(), 1, "{notes:?}");
    // A new message (its own SID) with the same words acts.
    let mut fresh = params.clone();
    fresh[0].1 = "SMreplayed0002".into();
    let sig = twilio_signature(&format!("{PUBLIC}/hooks/twilio/sms"), &fresh);
    assert!(post_signed(&t, "/hooks/twilio/sms", &fresh, &sig).await.1.contains("<Message>"));
    assert_eq!(t.events(n, &tok, "note").await.len(), notes.len() + 1);
    // Without a MessageSid a replay could not be told apart: refused.
    let bare = pairs(&[("From", "+15550100001"), ("Body", &text)]);
    let sig = twilio_signature(&format!("{PUBLIC}/hooks/twilio/sms"), &bare);
    assert_eq!(post_signed(&t, "/hooks/twilio/sms", &bare, &sig).await.0, 400);
}

#[tokio::test]
async fn a_replayed_failed_status_callback_falls_back_once() {
    let (t, _twilio) = twilio_app().await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let ana = |pages: &Value| -> Vec<(String, String)> {
        pages
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["person"] == "ana")
            .map(|p| (p["channel"].as_str().unwrap().into(), p["status"].as_str().unwrap().into()))
            .collect()
    };
    let sms = t.get(&format!("/api/v1/cases/{n}"), &tok).await.1["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["person"] == "ana" && p["channel"] == "sms")
        .unwrap()
        .clone();
    assert_eq!(sms["provider_id"], "SMpage1");
    let path = format!("/hooks/twilio/status?page={}", sms["id"]);
    let failed = pairs(&[("MessageSid", "SMpage1"), ("MessageStatus", "failed"), ("ErrorCode", "30008")]);
    let sig = twilio_signature(&format!("{PUBLIC}{path}"), &failed);
    for _ in 0..3 {
        assert_eq!(post_signed(&t, &path, &failed, &sig).await.0, 204);
        t.app().tick().await.unwrap();
    }
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    assert_eq!(ana(&case["pages"]), [("sms".to_owned(), "failed".to_owned()), ("email".to_owned(), "sent".to_owned())]);
    let failures = case["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "page_failed").count();
    assert_eq!(failures, 1, "counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_postgresql_receiving_one_replay_at_once_act_once() {
    let test = "dedup_and_sender_limits::two_instances_on_postgresql_receiving_one_replay_at_once_act_once";
    let Some(admin) = crate::harness::pg::admin_url(test) else { return };
    let db = crate::harness::pg::FreshDb::create(&admin).await;
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("reply-key");
    let (one, _m1) = twilio_app_on(Some((&db.url, &key))).await;
    let (two, _m2) = twilio_app_on(Some((&db.url, &key))).await;
    let tok = one.token("ops", TokenRole::Admin, None).await;
    let n = one.open_outage(&tok).await;
    let params = pairs(&[
        ("MessageSid", "SMraced0001"),
        ("From", "+15550100001"),
        ("To", "+15550000000"),
        ("Body", &format!("NOTE {n} failover started")),
    ]);
    let sig = twilio_signature(&format!("{PUBLIC}/hooks/twilio/sms"), &params);
    // Four copies to each instance, all at once.
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..8 {
        let to = if i % 2 == 0 { &one } else { &two };
        let request = to.http.post(to.url("/hooks/twilio/sms")).header("x-twilio-signature", sig.clone()).form(&params);
        sends.spawn(async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        });
    }
    let answers = sends.join_all().await;
    assert!(answers.iter().all(|(code, _)| *code == 200), "{answers:?}");
    assert_eq!(answers.iter().filter(|(_, body)| body.contains("<Message>")).count(), 1, "{answers:?}");
    let notes = one.events(n, &tok, "note").await;
    assert_eq!(notes.iter().filter(|(_, t)| t.contains("failover started")).count(), 1, "{notes:?}");
}

#[tokio::test]
async fn held_mail_and_replays_show_in_the_metrics() {
    // The metrics recorder is process-wide: other daemons in this binary
    // would add to the counts checked here.
    if !in_own_process("dedup_and_sender_limits::held_mail_and_replays_show_in_the_metrics") {
        return;
    }
    let (t, _twilio) = twilio_app_on(None).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    // Seven mails from one sender: five cases, two filed into the newest.
    let same: Vec<(String, String)> = (1..=7).map(|_| ("user1@acme.com".to_owned(), "Down".to_owned())).collect();
    smtp_send(&t, &same).await;
    t.app().tick().await.unwrap();
    let cases = t.get("/api/v1/cases", &tok).await.1["cases"].as_array().unwrap().len();
    assert_eq!(cases, 5);
    // Resolve user1's cases: the next one is held.
    for c in t.get("/api/v1/cases", &tok).await.1["cases"].as_array().unwrap() {
        t.post(&format!("/api/v1/cases/{}/resolve", c["number"]), &tok, json!({})).await;
    }
    smtp_send(&t, &[("user1@acme.com".to_owned(), "Down".to_owned())]).await;
    t.app().tick().await.unwrap();
    let n = t.open_outage(&tok).await;
    let params = pairs(&[("MessageSid", "SMmetrics1"), ("From", "+15550100001"), ("Body", &format!("NOTE {n} x"))]);
    let sig = twilio_signature(&format!("{PUBLIC}/hooks/twilio/sms"), &params);
    for _ in 0..3 {
        post_signed(&t, "/hooks/twilio/sms", &params, &sig).await;
    }
    let metrics = t.http.get(t.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for want in [
        "tocsin_inbox{status=\"held\"} 1",
        "tocsin_mail_limited_total{limit=\"sender\",action=\"filed\"} 2",
        "tocsin_mail_limited_total{limit=\"sender\",action=\"held\"} 1",
        "tocsin_twilio_replays_total{hook=\"sms\"} 2",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
}
