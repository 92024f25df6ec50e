//! SMS through Twilio, against a wiremock double of its API.

use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const SID: &str = "AC0123456789abcdef";
const TOKEN_ENV: &str = TWILIO_TOKEN_ENV;
const TOKEN: &str = TWILIO_TOKEN;
const PUBLIC: &str = "https://support.example.com";

async fn twilio_app() -> (TestApp, MockServer) {
    let twilio = MockServer::start().await;
    let uri = twilio.uri();
    let t = TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.sms.provider = "twilio".into();
        c.sms.twilio_account_sid = SID.into();
        c.sms.twilio_auth_token_env = TOKEN_ENV.into();
        c.sms.twilio_api_base = uri;
        c.server.public_url = PUBLIC.into();
    })
    .await;
    (t, twilio)
}

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{SID}/Messages.json")
}

fn created(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"sid": sid, "status": "queued"}))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> &'a str {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

async fn pages(t: &TestApp, tok: &str, n: i64) -> Vec<Value> {
    t.get(&format!("/api/v1/cases/{n}"), tok).await.1["pages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_sms_page_is_posted_to_twilio_with_its_form_and_basic_auth() {
    let (t, twilio) = twilio_app().await;
    let basic = format!("Basic {}", base64_encode(&format!("{SID}:{TOKEN}")));
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(header("authorization", basic.as_str()))
        .respond_with(created("SM0001"))
        .expect(1)
        .mount(&twilio)
        .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let requests = twilio.received_requests().await.unwrap();
    let f = form(&requests[0].body);
    assert_eq!(field(&f, "To"), "+15550100001");
    assert_eq!(field(&f, "From"), "+15550000000");
    assert!(field(&f, "Body").contains(&format!("#{n}")) && field(&f, "Body").chars().count() <= 160, "{f:?}");
    let page = pages(&t, &tok, n).await.into_iter().find(|p| p["channel"] == "sms").unwrap();
    assert_eq!(field(&f, "StatusCallback"), format!("{PUBLIC}/hooks/twilio/status?page={}", page["id"]));
    assert_eq!((page["status"].as_str(), page["provider_id"].as_str()), (Some("sent"), Some("SM0001")));
}

#[tokio::test]
async fn a_429_is_retried_after_a_back_off() {
    let (t, twilio) = twilio_app().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"code": 20429, "message": "Too Many Requests"})))
        .up_to_n_times(1)
        .mount(&twilio)
        .await;
    Mock::given(method("POST")).and(path(messages_path())).respond_with(created("SM0002")).mount(&twilio).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let sms = |p: &Vec<Value>| p.iter().find(|p| p["channel"] == "sms").unwrap().clone();
    let page = sms(&pages(&t, &tok, n).await);
    assert_eq!(page["status"], "queued", "{page}");
    assert!(page["error"].as_str().unwrap().contains("Twilio 429"));
    // Not before its back-off (5s ± 20%)...
    t.advance(TimeDelta::seconds(3)).await;
    assert_eq!(twilio.received_requests().await.unwrap().len(), 1);
    // ...but after it.
    t.advance(TimeDelta::seconds(4)).await;
    assert_eq!(twilio.received_requests().await.unwrap().len(), 2);
    let page = sms(&pages(&t, &tok, n).await);
    assert_eq!((page["status"].as_str(), page["attempts"].as_i64()), (Some("sent"), Some(2)));
}

#[tokio::test]
async fn a_400_fails_over_to_email_at_once() {
    let (t, twilio) = twilio_app().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 21211, "message": "The 'To' number is not a valid phone number."})),
        )
        .expect(1)
        .mount(&twilio)
        .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let all = pages(&t, &tok, n).await;
    let ana: Vec<(String, String)> = all
        .iter()
        .filter(|p| p["person"] == "ana")
        .map(|p| (p["channel"].as_str().unwrap().into(), p["status"].as_str().unwrap().into()))
        .collect();
    assert_eq!(ana, [("sms".to_owned(), "failed".to_owned()), ("email".to_owned(), "sent".to_owned())]);
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let failed = case["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "page_failed").unwrap().clone();
    assert!(
        failed["text"].as_str().unwrap().contains("error 21211")
            && failed["text"].as_str().unwrap().ends_with("falling back to email"),
        "{failed}"
    );
    assert!(t.outbox().iter().any(|f| f.ends_with("-page-email.eml")));
}

async fn status_callback(t: &TestApp, params: &[(&str, &str)], signed_url: &str) -> u16 {
    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    let sig = tocsin::notify::twilio::signature(TOKEN, signed_url, &pairs);
    let r = t
        .http
        .post(t.url("/hooks/twilio/status?page=2"))
        .header("x-twilio-signature", sig)
        .form(&pairs)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn signed_status_callbacks_update_the_page_and_forged_ones_are_refused() {
    let (t, twilio) = twilio_app().await;
    Mock::given(method("POST")).and(path(messages_path())).respond_with(created("SM0003")).mount(&twilio).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let url = format!("{PUBLIC}/hooks/twilio/status?page=2");
    let delivered = [("MessageSid", "SM0003"), ("MessageStatus", "delivered"), ("AccountSid", SID)];
    assert_eq!(
        status_callback(&t, &delivered, "https://support.example.com/hooks/twilio/status?page=3").await,
        403,
        "another URL"
    );
    let r = t.http.post(t.url("/hooks/twilio/status?page=2")).form(&delivered).send().await.unwrap();
    assert_eq!(r.status(), 403, "unsigned");
    assert_eq!(status_callback(&t, &delivered, &url).await, 204);
    let sms = pages(&t, &tok, n).await.into_iter().find(|p| p["channel"] == "sms").unwrap();
    assert_eq!(sms["status"], "delivered");
    // A late "undelivered" after "delivered" does not move it back.
    assert_eq!(
        status_callback(
            &t,
            &[("MessageSid", "SM0003"), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")],
            &url
        )
        .await,
        204
    );
    assert_eq!(pages(&t, &tok, n).await.into_iter().find(|p| p["channel"] == "sms").unwrap()["status"], "delivered");
}

#[tokio::test]
async fn an_undelivered_sms_falls_back_to_email() {
    let (t, twilio) = twilio_app().await;
    Mock::given(method("POST")).and(path(messages_path())).respond_with(created("SM0004")).mount(&twilio).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let url = format!("{PUBLIC}/hooks/twilio/status?page=2");
    assert_eq!(
        status_callback(
            &t,
            &[("MessageSid", "SM0004"), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")],
            &url
        )
        .await,
        204
    );
    t.app().tick().await.unwrap();
    let ana: Vec<(String, String)> = pages(&t, &tok, n)
        .await
        .iter()
        .filter(|p| p["person"] == "ana")
        .map(|p| (p["channel"].as_str().unwrap().into(), p["status"].as_str().unwrap().into()))
        .collect();
    assert_eq!(ana, [("sms".to_owned(), "undelivered".to_owned()), ("email".to_owned(), "sent".to_owned())]);
}

#[tokio::test]
async fn a_send_interrupted_after_twilio_took_it_is_not_sent_again() {
    let (t, twilio) = twilio_app().await;
    // Twilio takes the message but answers slowly: the dispatcher dies
    // while it waits, after the provider call and before the commit.
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(created("SM0005").set_delay(std::time::Duration::from_secs(30)))
        .mount(&twilio)
        .await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    let dispatcher = t.app().dispatcher.clone();
    let run = tokio::spawn(async move { dispatcher.run_once().await });
    let posted = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let received = twilio.received_requests().await.unwrap();
            if let Some(r) = received.iter().find(|r| r.method.as_str() == "POST") {
                return form(&r.body);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    run.abort();
    let _ = run.await;
    let sms = pages(&t, &tok, n).await.into_iter().find(|p| p["channel"] == "sms").unwrap();
    assert_eq!(sms["status"], "sending", "killed before recording the outcome");
    // Twilio's message log holds the message it took.
    let log = json!({"messages": [{"sid": "SM0005", "body": field(&posted, "Body"), "to": "+15550100001", "date_created": "Tue, 24 Nov 2026 10:00:00 +0000"}]});
    Mock::given(method("GET"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(log))
        .expect(1)
        .mount(&twilio)
        .await;
    // After the lease runs out another claim finds it in the log.
    t.advance(TimeDelta::seconds(31)).await;
    let posts = twilio.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "POST").count();
    assert_eq!(posts, 1, "sent once");
    let sms = pages(&t, &tok, n).await.into_iter().find(|p| p["channel"] == "sms").unwrap();
    assert_eq!((sms["status"].as_str(), sms["provider_id"].as_str()), (Some("sent"), Some("SM0005")));
}

#[tokio::test]
async fn an_interrupted_send_twilio_never_took_is_sent_after_the_lease() {
    let (t, twilio) = twilio_app().await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    // The worker died holding the page, before calling Twilio at all.
    let claimed = t.store().claim_pages(t.clock_now(), "dead-worker", TimeDelta::seconds(30), 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    Mock::given(method("GET"))
        .and(path(messages_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"messages": []})))
        .mount(&twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(created("SM0006"))
        .expect(1)
        .mount(&twilio)
        .await;
    t.app().tick().await.unwrap();
    assert!(twilio.received_requests().await.unwrap().is_empty(), "the lease is still held");
    t.advance(TimeDelta::seconds(31)).await;
    let sms = pages(&t, &tok, n).await.into_iter().find(|p| p["channel"] == "sms").unwrap();
    assert_eq!((sms["status"].as_str(), sms["provider_id"].as_str()), (Some("sent"), Some("SM0006")));
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn signatures_agree_with_the_official_twilio_library() {
    let Some(py) = python() else { return };
    let urls = [
        "https://support.example.com/hooks/twilio/sms",
        "https://support.example.com/hooks/twilio/status?page=12",
        "https://support.example.com:8443/hooks/twilio/sms?a=1&b=%20x",
        "http://127.0.0.1:8080/hooks/twilio/status?page=3",
    ];
    let param_sets: [&[(&str, &str)]; 5] = [
        &[("From", "+15550100001"), ("Body", "ACK 1042"), ("MessageSid", "SM1")],
        &[("MediaUrl", "https://b.example/2"), ("Body", "two pictures"), ("MediaUrl", "https://a.example/1")],
        &[("Body", "Ünïcödé ✓ and emoji 🚨"), ("To", "+15550000000")],
        &[("MediaUrl0", "https://x/y"), ("Body", ""), ("NumMedia", "1")],
        &[],
    ];
    let mut lines = String::new();
    let mut expected = Vec::new();
    for url in urls {
        for set in param_sets {
            let pairs: Vec<(String, String)> = set.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            let good = tocsin::notify::twilio::signature(TOKEN, url, &pairs);
            let tampered = tocsin::notify::twilio::signature(TOKEN, &format!("{url}x"), &pairs);
            for (sig, ok) in [(good, true), (tampered, false)] {
                lines += &format!("{}\n", json!({"token": TOKEN, "url": url, "params": pairs, "signature": sig}));
                expected.push(if ok { "true" } else { "false" });
            }
        }
    }
    let mut child = std::process::Command::new(py)
        .arg(repo().join("tests/peers/twilio_validate.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let answers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(answers, expected);
}

#[tokio::test]
async fn managers_see_an_sms_twilio_has_not_reported_on_until_it_does() {
    let (t, twilio) = twilio_app().await;
    Mock::given(method("POST")).and(path(messages_path())).respond_with(created("SM0009")).mount(&twilio).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let (s, _) = web::sign_in(&t, &max).await;
    let (_, html) = web::page(&t, &s, "/now").await;
    assert!(!html.contains("UNCONFIRMED"), "just sent: reports take a moment");
    // Ten minutes on, Twilio has said nothing about it.
    t.clock.advance(TimeDelta::minutes(11));
    let (_, html) = web::page(&t, &s, "/now").await;
    let row = html.find("UNCONFIRMED").expect("listed as unconfirmed");
    let start = html[..row].rfind("<tr").unwrap();
    let line = &html[start..start + html[start..].find("</tr>").unwrap()];
    assert!(line.contains(&format!("/cases/{n}")) && line.contains("sms"), "{line}");
    assert!(html.contains("no delivery report from Twilio yet"));
    // An engineer's view has no such list.
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let (a, _) = web::sign_in(&t, &ana).await;
    assert!(!web::page(&t, &a, "/now").await.1.contains("UNCONFIRMED"));
    // The report comes: no longer listed.
    let delivered = [("MessageSid", "SM0009"), ("MessageStatus", "delivered"), ("AccountSid", SID)];
    assert_eq!(status_callback(&t, &delivered, &format!("{PUBLIC}/hooks/twilio/status?page=2")).await, 204);
    let (_, html) = web::page(&t, &s, "/now").await;
    assert!(!html.contains("UNCONFIRMED"), "delivered");
}
