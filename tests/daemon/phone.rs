//! Replies from phones, end to end: SMS through the signed Twilio webhook,
//! email replies through the mail webhook.

use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

const TOKEN_ENV: &str = TWILIO_TOKEN_ENV;
const TOKEN: &str = TWILIO_TOKEN;
const PUBLIC: &str = "https://support.example.com";

/// The daemon with SMS pages through the outbox but Twilio's inbound
/// webhooks switched on (signed with TOKEN).
pub(crate) async fn phone_app(rules: &std::path::Path) -> (TestApp, wiremock::MockServer) {
    let twilio = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1"})))
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let t = TestApp::spawn_configured(Workers::Manual, START, rules, |c| {
        c.sms.provider = "twilio".into();
        c.sms.twilio_account_sid = "AC0123456789abcdef".into();
        c.sms.twilio_auth_token_env = TOKEN_ENV.into();
        c.sms.twilio_api_base = uri;
        c.server.public_url = PUBLIC.into();
    })
    .await;
    (t, twilio)
}

/// Sends an SMS from `from` to the webhook, signed unless `forge`.
static NEXT_SID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub(crate) async fn sms(t: &TestApp, from: &str, body: &str, forge: bool) -> (u16, String) {
    let pairs = vec![
        ("From".to_owned(), from.to_owned()),
        ("To".to_owned(), "+15550000000".to_owned()),
        ("Body".to_owned(), body.to_owned()),
        // Each message its own SID, as Twilio gives it: a repeated one is
        // a replay and does nothing.
        ("MessageSid".to_owned(), format!("SMin{}", NEXT_SID.fetch_add(1, std::sync::atomic::Ordering::Relaxed))),
    ];
    let token = if forge { "wrong" } else { TOKEN };
    let sig = tocsin::notify::twilio::signature(token, &format!("{PUBLIC}/hooks/twilio/sms"), &pairs);
    let r =
        t.http.post(t.url("/hooks/twilio/sms")).header("x-twilio-signature", sig).form(&pairs).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) fn message_of(twiml: &str) -> Option<String> {
    twiml.split_once("<Message>").and_then(|(_, rest)| rest.split_once("</Message>")).map(|(m, _)| m.to_owned())
}

async fn case(t: &TestApp, tok: &str, n: i64) -> Value {
    t.get(&format!("/api/v1/cases/{n}"), tok).await.1
}

#[tokio::test]
async fn ana_acknowledges_by_sms_and_the_escalation_stops() {
    let (t, _twilio) = phone_app(&repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let (status, twiml) = sms(&t, "+15550100001", "Ack", false).await;
    assert_eq!(status, 200);
    assert_eq!(
        message_of(&twiml).as_deref(),
        Some(format!("Case #{n} acknowledged by Ana. Next update due 11:00.").as_str()),
        "{twiml}"
    );
    t.advance(TimeDelta::minutes(20)).await;
    let c = case(&t, &tok, n).await;
    assert_eq!((c["status"].as_str(), c["assignee"].as_str()), (Some("acknowledged"), Some("ana")));
    let steps = c["pages"].as_array().unwrap().iter().filter(|p| p["kind"] == "page").count();
    assert_eq!(steps, 1, "no later step paged");
    let ack = c["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "acknowledged").unwrap().clone();
    assert_eq!((ack["actor"].as_str(), ack["channel"].as_str()), (Some("ana"), Some("sms")));
    // A second ACK, from Ben for the same case, names who was first.
    let (_, twiml) = sms(&t, "+15550100002", &format!("ack {n}"), false).await;
    assert_eq!(
        message_of(&twiml).as_deref(),
        Some(format!("Case #{n} was already acknowledged by Ana at 10:00.").as_str())
    );
}

#[tokio::test]
async fn forged_and_unknown_sms_change_nothing() {
    let (t, _twilio) = phone_app(&repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    assert_eq!(sms(&t, "+15550100001", "ack", true).await.0, 403, "forged");
    let (status, twiml) = sms(&t, "+19998887777", &format!("ack {n}"), false).await;
    assert_eq!((status, message_of(&twiml)), (200, None), "unknown number: no change, no answer");
    assert_eq!(case(&t, &tok, n).await["status"], "open");
}

#[tokio::test]
async fn several_paging_cases_must_be_named_and_errors_fall_silent_after_three() {
    let (t, _twilio) = phone_app(&repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let a = t.open_outage(&tok).await;
    let b = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let (_, twiml) = sms(&t, "+15550100001", "ack", false).await;
    assert_eq!(message_of(&twiml).as_deref(), Some(format!("2 cases page you: #{a}, #{b}. Reply ACK {a}").as_str()));
    let (_, twiml) = sms(&t, "+15550100001", "NOTE #9999 hello", false).await;
    assert_eq!(message_of(&twiml).as_deref(), Some("No case #9999. Reply HELP for commands."));
    let (_, twiml) = sms(&t, "+15550100001", "what is this", false).await;
    assert!(message_of(&twiml).unwrap().starts_with("Unknown command"), "{twiml}");
    let (_, twiml) = sms(&t, "+15550100001", "still confused", false).await;
    assert_eq!(message_of(&twiml), None, "the fourth error in a row gets silence");
    let (_, twiml) = sms(&t, "+15550100001", &format!("ack {b}"), false).await;
    assert!(message_of(&twiml).unwrap().starts_with(&format!("Case #{b} acknowledged")));
    let (_, twiml) = sms(&t, "+15550100001", "help", false).await;
    assert!(message_of(&twiml).unwrap().starts_with("Commands:"));
    let (_, twiml) = sms(&t, "+15550100001", "list", false).await;
    assert_eq!(message_of(&twiml).as_deref(), Some(format!("Your cases: #{a} P1 paging; #{b} P1 ack'd").as_str()));
}

/// Ana's signed reply address for case `n`, from the page email she got.
pub(crate) fn reply_address(t: &TestApp, n: i64) -> String {
    let page = t.outbox_texts(&format!("case{n}-page-email")).pop().expect("a page email");
    page.lines().find_map(|l| l.strip_prefix("Reply-To: ")).unwrap().trim().to_owned()
}

fn reply(from: &str, to: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Re: page\r\nMessage-ID: <{}@example.com>\r\n{extra}\r\n{body}\r\n",
        body.len() * 7 + from.len()
    )
}

#[tokio::test]
async fn email_replies_resolve_note_and_refuse_what_they_must() {
    let rules = rules_with_ana_email("ana@example.com");
    let (t, _twilio) = phone_app(rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let to = reply_address(&t, n);
    assert!(to.starts_with(&format!("support+{n}.")), "{to}");
    // An out-of-office reply changes nothing.
    let (_, r) = t
        .hook(&hook, &reply("ana@example.com", &to, "Auto-Submitted: auto-replied\r\n", "I am away until Monday."))
        .await;
    assert_eq!(r["status"], "automatic");
    // Ben, with Ana's reply token, is refused.
    let (_, r) = t.hook(&hook, &reply("ben@example.com", &to, "", "ACK")).await;
    assert_eq!(r["status"], "refused");
    assert_eq!(case(&t, &tok, n).await["status"], "open");
    // Ana's reply token for this case does not act on another one.
    let other = t.open_outage(&tok).await;
    let (_, r) = t.hook(&hook, &reply("ana@example.com", &to, "", &format!("RES {other} done"))).await;
    assert_eq!(r["status"], "refused", "{r}");
    assert_eq!(case(&t, &tok, other).await["status"], "open");
    assert_eq!(case(&t, &tok, n).await["status"], "open");
    t.app().tick().await.unwrap();
    let answers = t.outbox_texts("confirmation-email");
    let refusal = format!("This reply address acts on case #{n} only; nothing was done to #{other}.");
    assert!(answers.iter().any(|a| a.contains(&refusal)), "{answers:?}");
    // A reply that is not a command is a note.
    let (_, r) = t
        .hook(
            &hook,
            &reply(
                "ana@example.com",
                &to,
                "",
                "Looking at the load balancer now.\r\n\r\nOn Tue, 24 Nov 2026 at 10:00, Support wrote:\r\n> page",
            ),
        )
        .await;
    assert_eq!((r["status"].as_str(), r["case"].as_i64()), (Some("command"), Some(n)));
    // Ana resolves with a note, quoting the page below.
    let (s, r) = t
        .hook(
            &hook,
            &reply(
                "Ana Lima <ana@example.com>",
                &to,
                "",
                "RES fixed the disk\r\n\r\n## Reply above this line ##\r\n\r\nAna Lima, you are paged...",
            ),
        )
        .await;
    assert_eq!(r["status"], "command", "{s} {r}");
    let c = case(&t, &tok, n).await;
    assert_eq!(c["status"], "resolved", "{c}");
    let texts: Vec<(String, String, String)> = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["actor"].as_str().unwrap().into(),
                e["text"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(texts.contains(&("note".into(), "ana".into(), "Looking at the load balancer now.".into())), "{texts:?}");
    assert!(texts.contains(&("resolved".into(), "ana".into(), "fixed the disk".into())), "{texts:?}");
    // Each command was answered by email.
    t.app().tick().await.unwrap();
    let answers = t.outbox_texts("confirmation-email");
    assert!(answers.iter().any(|a| a.contains(&format!("Case #{n} resolved by Ana."))), "{answers:?}");
}

#[tokio::test]
async fn stop_moves_pages_off_sms_and_tells_the_managers_and_start_brings_them_back() {
    let (t, _twilio) = phone_app(&repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let (status, twiml) = sms(&t, "+15550100001", "STOP", false).await;
    assert_eq!((status, message_of(&twiml)), (200, None), "the carrier answers STOP");
    sms(&t, "+15550100001", "stop", false).await;
    t.app().tick().await.unwrap();
    let notices = t.outbox_texts("notice-email");
    assert_eq!(notices.len(), 1, "one notice per change, to the one manager: {:?}", t.outbox());
    assert!(notices[0].contains("To: max@example.com"), "{}", notices[0]);
    assert_eq!(
        body_text(&notices[0]),
        "Max Berger,\n\nAna Lima (ana) replied STOP: no more SMS; pages reach them by email only. On schedules primary, secondary."
    );
    // Ana is paged by email now.
    let n = t.open_outage(&tok).await;
    let c = case(&t, &tok, n).await;
    let ana: Vec<&str> = c["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["person"] == "ana")
        .map(|p| p["channel"].as_str().unwrap())
        .collect();
    assert_eq!(ana, ["email"]);
    // START: SMS again, and the managers hear of it.
    sms(&t, "+15550100001", "start", false).await;
    t.app().tick().await.unwrap();
    assert!(
        t.outbox_texts("notice-email")
            .iter()
            .any(|m| body_text(m).contains("Ana Lima (ana) replied START: SMS pages to them resume."))
    );
    let m = t.open_outage(&tok).await;
    let c = case(&t, &tok, m).await;
    let ana: Vec<&str> = c["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["person"] == "ana")
        .map(|p| p["channel"].as_str().unwrap())
        .collect();
    assert_eq!(ana, ["sms"]);
}

/// The text part of an email, decoded.
fn body_text(raw: &str) -> String {
    let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    message.body_text(0).unwrap().trim().replace("\r\n", "\n")
}
