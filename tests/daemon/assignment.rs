//! Assignment and the new commands, end to end: `POST …/assign` with who
//! may assign whom, TAKE / ASSIGN / WAIT / RESUME by SMS and by email
//! reply, and the dashboard's controls.

use chrono::TimeDelta;
use reqwest::header;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::web::{browser, sign_in};
use crate::harness::*;

const PUBLIC: &str = "https://support.example.com";

/// The daemon with Twilio's inbound webhook switched on (signed with the
/// test token); SMS pages go to a wiremock double.
async fn phone_app(rules: &std::path::Path) -> (TestApp, wiremock::MockServer) {
    let twilio = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1"})))
        .mount(&twilio)
        .await;
    let uri = twilio.uri();
    let t = TestApp::spawn_configured(Workers::Manual, START, rules, |c| {
        c.sms.provider = "twilio".into();
        c.sms.twilio_account_sid = "AC0123456789abcdef".into();
        c.sms.twilio_auth_token_env = TWILIO_TOKEN_ENV.into();
        c.sms.twilio_api_base = uri;
        c.server.public_url = PUBLIC.into();
    })
    .await;
    (t, twilio)
}

static NEXT_SID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An SMS from `from`, signed as Twilio signs it; the reply's text.
async fn sms(t: &TestApp, from: &str, body: &str) -> String {
    let pairs = vec![
        ("From".to_owned(), from.to_owned()),
        ("To".to_owned(), "+15550000000".to_owned()),
        ("Body".to_owned(), body.to_owned()),
        ("MessageSid".to_owned(), format!("SMassign{}", NEXT_SID.fetch_add(1, std::sync::atomic::Ordering::Relaxed))),
    ];
    let sig = tocsin::notify::twilio::signature(TWILIO_TOKEN, &format!("{PUBLIC}/hooks/twilio/sms"), &pairs);
    let r =
        t.http.post(t.url("/hooks/twilio/sms")).header("x-twilio-signature", sig).form(&pairs).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let twiml = r.text().await.unwrap();
    twiml
        .split_once("<Message>")
        .and_then(|(_, rest)| rest.split_once("</Message>"))
        .map(|(m, _)| m.to_owned())
        .unwrap_or_default()
}

async fn case(t: &TestApp, tok: &str, n: i64) -> Value {
    t.get(&format!("/api/v1/cases/{n}"), tok).await.1
}

fn pages_of<'a>(c: &'a Value, kind: &str) -> Vec<&'a Value> {
    c["pages"].as_array().unwrap().iter().filter(|p| p["kind"] == kind).collect()
}

fn timeline(c: &Value, kind: &str) -> Vec<String> {
    c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn managers_assign_anyone_engineers_take_what_they_see_and_give_away_their_own() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let ana = t.token("ana", TokenRole::Engineer, Some("ana")).await;
    let ben = t.token("ben", TokenRole::Engineer, Some("ben")).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let n = t.open_outage(&admin).await; // pages Ana (primary) at 10:00
    let assign = |tok: &str, body: Value| {
        let (t, tok) = (&t, tok.to_owned());
        async move { t.post(&format!("/api/v1/cases/{n}/assign"), &tok, body).await }
    };
    // Ben was not paged: the case is not his to see, let alone take.
    assert_eq!(assign(&ben, json!({"to": "ben"})).await.0, 404);
    // Ana takes it: acknowledged, hers; nobody is told (she did it).
    t.advance(TimeDelta::minutes(2)).await;
    let (s, c) = assign(&ana, json!({"to": "ana"})).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!((c["status"].as_str(), c["assignee"].as_str()), (Some("acknowledged"), Some("ana")));
    let update_due = c["deadlines"]["update"].clone();
    assert_eq!(update_due, "2026-11-24T11:02:00Z");
    // She gives it to Ben: he is told, the update clock carries on.
    t.advance(TimeDelta::minutes(10)).await;
    let (s, c) = assign(&ana, json!({"to": "ben"})).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["assignee"], "ben");
    assert_eq!(c["deadlines"]["update"], update_due, "the update clock carries on");
    let told = pages_of(&c, "assigned");
    assert_eq!(told.len(), 1, "{c}");
    assert_eq!((told[0]["person"].as_str(), told[0]["channel"].as_str()), (Some("ben"), Some("sms")));
    assert_eq!(timeline(&c, "assigned"), ["assigned to ana", "assigned to ben (was ana)"]);
    // No longer hers: she may not give it on.
    let (s, e) = assign(&ana, json!({"to": "chen"})).await;
    assert_eq!(s, 403, "{e}");
    assert!(e["error"].as_str().unwrap().contains("not yours"), "{e}");
    // To whom it already belongs; to nobody we know; a bad body.
    assert_eq!(assign(&ben, json!({"to": "ben"})).await.0, 409);
    let (s, e) = assign(&max, json!({"to": "zed"})).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(assign(&max, json!({"who": "ben"})).await.0, 422);
    // A manager assigns anyone.
    let (s, c) = assign(&max, json!({"to": "chen"})).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["assignee"], "chen");
    // An admin token acts for a person, and is audited for it.
    let (s, c) = assign(&admin, json!({"to": "dana", "by": "max"})).await;
    assert_eq!(s, 200, "{c}");
    let (_, audit) = t.get("/api/v1/audit", &admin).await;
    assert!(audit.to_string().contains("assign as max"), "{audit}");

    // The update deadline passes: the reminder goes to Dana alone.
    t.advance_to("2026-11-24T11:02:00Z").await;
    let c = case(&t, &admin, n).await;
    let reminded: Vec<_> = pages_of(&c, "reminder").iter().map(|p| p["person"].as_str().unwrap().to_owned()).collect();
    assert_eq!(reminded, ["dana"], "{c}");
    // A resolved case is assigned no more.
    t.post(&format!("/api/v1/cases/{n}/resolve"), &admin, json!({"by": "dana"})).await;
    assert_eq!(assign(&max, json!({"to": "ana"})).await.0, 409);
}

#[tokio::test]
async fn take_wait_resume_and_assign_by_sms() {
    let (t, _twilio) = phone_app(&repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let ana = "+15550100001";
    assert_eq!(sms(&t, ana, "TAKE").await, format!("Case #{n} is yours, Ana. Next update due 11:00."));
    let c = case(&t, &tok, n).await;
    assert_eq!((c["status"].as_str(), c["assignee"].as_str()), (Some("acknowledged"), Some("ana")));
    assert_eq!(
        sms(&t, ana, "wait asked for the logs").await,
        format!("Case #{n} waits on the customer. Reply RESUME {n} to go on.")
    );
    let c = case(&t, &tok, n).await;
    assert_eq!(c["status"], "waiting");
    assert_eq!(timeline(&c, "waiting"), ["asked for the logs"]);
    t.advance(TimeDelta::minutes(30)).await;
    assert_eq!(sms(&t, ana, &format!("RESUME {n}")).await, format!("Case #{n} resumed. Next update due 11:30."));
    assert_eq!(case(&t, &tok, n).await["status"], "acknowledged");
    assert_eq!(sms(&t, ana, "assign zed").await, format!("No person \"zed\". Use one of: ana, ben, chen, dana, max."));
    assert_eq!(sms(&t, ana, &format!("ASSIGN #{n} Ben")).await, format!("Case #{n} assigned to Ben."));
    let c = case(&t, &tok, n).await;
    assert_eq!(c["assignee"], "ben");
    t.app().tick().await.unwrap();
    let c = case(&t, &tok, n).await;
    let told = pages_of(&c, "assigned");
    assert_eq!((told[0]["person"].as_str(), told[0]["channel"].as_str()), (Some("ben"), Some("sms")));
    assert_eq!(told[0]["status"], "sent", "{c}");
    // Ana gave it away: it is not hers to give again, nor to wait.
    assert!(sms(&t, ana, &format!("assign {n} chen")).await.contains("not yours"));
    assert_eq!(sms(&t, ana, "WAIT").await, "No case is assigned to you. Name one, e.g. WAIT 1042.");
    // Ben can.
    let ben = "+15550100002";
    assert_eq!(sms(&t, ben, "wait").await, format!("Case #{n} waits on the customer. Reply RESUME {n} to go on."));
    assert_eq!(sms(&t, ben, "resume").await, format!("Case #{n} resumed. Next update due 11:30."));
    // TAKE on a case that paged nobody here is refused with the reason.
    let m = t.open_outage(&tok).await;
    assert!(sms(&t, ben, &format!("TAKE {m}")).await.contains("did not page you"));
}

/// Ana's signed reply address for case `n`, from the page email she got.
fn reply_address(t: &TestApp, n: i64) -> String {
    let page = t.outbox_texts(&format!("case{n}-page-email")).pop().expect("a page email");
    page.lines().find_map(|l| l.strip_prefix("Reply-To: ")).unwrap().trim().to_owned()
}

static NEXT_MAIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn reply(from: &str, to: &str, body: &str) -> String {
    let id = NEXT_MAIL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("From: {from}\r\nTo: {to}\r\nSubject: Re: page\r\nMessage-ID: <assign{id}@example.com>\r\n\r\n{body}\r\n")
}

#[tokio::test]
async fn take_wait_resume_and_assign_by_email_reply() {
    let rules = rules_with_ana_email("ana@example.com");
    let (t, _twilio) = phone_app(rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let to = reply_address(&t, n);
    for (command, status) in [
        ("TAKE\r\n\r\n## Reply above this line ##", "acknowledged"),
        ("WAIT customer to confirm", "waiting"),
        ("Resume", "acknowledged"),
        ("ASSIGN ben", "acknowledged"),
    ] {
        let (s, r) = t.hook(&hook, &reply("ana@example.com", &to, command)).await;
        assert_eq!((s, r["status"].as_str()), (202, Some("command")), "{command}: {r}");
        assert_eq!(case(&t, &tok, n).await["status"], status, "after {command}");
    }
    let c = case(&t, &tok, n).await;
    assert_eq!(c["assignee"], "ben");
    assert_eq!(timeline(&c, "assigned"), ["assigned to ana", "assigned to ben (was ana)"]);
    assert_eq!(timeline(&c, "waiting"), ["customer to confirm"]);
    let via: Vec<_> = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ["assigned", "waiting", "resumed"].contains(&e["kind"].as_str().unwrap()))
        .map(|e| e["channel"].as_str().unwrap().to_owned())
        .collect();
    assert!(via.iter().all(|c| c == "email"), "{via:?}");
    t.app().tick().await.unwrap();
    let answers = t.outbox_texts("confirmation-email");
    assert!(answers.iter().any(|a| a.contains(&format!("Case #{n} assigned to Ben."))), "{answers:?}");
}

#[tokio::test]
async fn the_case_page_assigns_waits_and_resumes() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&admin).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let (s, _) = sign_in(&t, &max).await;
    let (status, html) = crate::harness::web::page(&t, &s, &format!("/cases/{n}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("action=\"/cases/{n}/assign\"")) && html.contains("<option value=\"ben\">"),
        "{html}"
    );
    let form = |action: &str, fields: &[(&str, &str)]| {
        let path = format!("/cases/{n}/{action}");
        let mut owned: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        owned.push(("csrf".into(), s.csrf.clone()));
        let (t, s) = (&t, &s);
        async move {
            let r = browser().post(t.url(&path)).header(header::COOKIE, &s.cookie).form(&owned).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(form("assign", &[("to", "ben")]).await.0, 303);
    let c = case(&t, &admin, n).await;
    assert_eq!((c["status"].as_str(), c["assignee"].as_str()), (Some("acknowledged"), Some("ben")));
    assert_eq!(timeline(&c, "assigned"), ["assigned to ben"]);
    let ch: Vec<_> = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "assigned")
        .map(|e| e["channel"].clone())
        .collect();
    assert_eq!(ch, [json!("dashboard")]);
    assert_eq!(form("wait", &[("text", "logs asked")]).await.0, 303);
    assert_eq!(case(&t, &admin, n).await["status"], "waiting");
    let (_, html) = crate::harness::web::page(&t, &s, &format!("/cases/{n}")).await;
    assert!(html.contains(&format!("action=\"/cases/{n}/resume\"")), "{html}");
    assert_eq!(form("resume", &[]).await.0, 303);
    assert_eq!(case(&t, &admin, n).await["status"], "acknowledged");
    // Refusals are shown on the case page with the reason.
    let (status, html) = form("assign", &[("to", "ben")]).await;
    assert_eq!(status, 409);
    assert!(html.contains("already assigned to ben"), "{html}");
}
