//! Mail providers' own inbound webhooks, each posted in the shape its
//! provider documents: Mailgun's signed form with `body-mime`, Postmark's
//! inbound JSON, SendGrid's Inbound Parse with the raw message. Each files
//! into the one ingest path.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

async fn setup() -> TestApp {
    let rules = repo().join("rules");
    TestApp::spawn_configured(Workers::Manual, START, &rules, |c| {
        c.email.mailgun_signing_key_env = Some(MAILGUN_KEY_ENV.into());
    })
    .await
}

fn customer_mail(id: &str, subject: &str) -> String {
    format!(
        "From: Pat <pat@acme.com>\r\nTo: help@support.example.com\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nEvery checkout fails.\r\n"
    )
}

fn mailgun_signature(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// A multipart/form-data body of text fields, as the providers send it.
fn multipart(boundary: &str, fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

async fn post_form(t: &TestApp, path: &str, boundary: &str, body: String, auth: Option<&str>) -> (u16, Value) {
    let mut r =
        t.http.post(t.url(path)).header("content-type", format!("multipart/form-data; boundary={boundary}")).body(body);
    if let Some(token) = auth {
        r = r.basic_auth("tocsin", Some(token));
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn case(t: &TestApp, token: &str, n: i64) -> Value {
    t.get(&format!("/api/v1/cases/{n}"), token).await.1
}

#[tokio::test]
async fn a_signed_mailgun_post_files_a_case_and_a_forged_or_stale_one_is_refused() {
    let t = setup().await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let now = t.clock_now().timestamp().to_string();
    let token = "a".repeat(50);
    let mail = customer_mail("mg1@acme.com", "Checkout is down");
    let good = mailgun_signature(MAILGUN_KEY, &now, &token);
    let fields = |sig: &str, ts: &str, mime: &str| {
        multipart(
            "mgb",
            &[
                ("recipient", "help@support.example.com"),
                ("sender", "pat@acme.com"),
                ("timestamp", ts),
                ("token", &token),
                ("signature", sig),
                ("body-mime", mime),
            ],
        )
    };

    // Forged: signed with another key; nothing is stored.
    let forged = mailgun_signature("not-the-key", &now, &token);
    let (s, body) = post_form(&t, "/hooks/email/mailgun", "mgb", fields(&forged, &now, &mail), None).await;
    assert_eq!(s, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("signature"), "{body}");
    // Stale: a good signature over a timestamp ten minutes old.
    let old = (t.clock_now().timestamp() - 600).to_string();
    let stale = mailgun_signature(MAILGUN_KEY, &old, &token);
    let (s, body) = post_form(&t, "/hooks/email/mailgun", "mgb", fields(&stale, &old, &mail), None).await;
    assert_eq!(s, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("replay"), "{body}");
    let (_, cases) = t.get("/api/v1/cases", &admin).await;
    assert!(cases["cases"].as_array().unwrap().is_empty(), "a refused post files nothing: {cases}");

    // Signed: filed.
    let (s, body) = post_form(&t, "/hooks/email/mailgun", "mgb", fields(&good, &now, &mail), None).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("filed")), "{body}");
    let n = body["case"].as_i64().unwrap();
    let c = case(&t, &admin, n).await;
    assert_eq!(c["subject"], "Checkout is down");
    assert_eq!(c["requester"], "pat@acme.com");

    // Mailgun retries until it gets a 200: the same message again is a
    // duplicate, not a second case.
    let (s, body) = post_form(&t, "/hooks/email/mailgun", "mgb", fields(&good, &now, &mail), None).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("duplicate")), "{body}");

    // The url-encoded form (a mail without attachments) is read too.
    let other = customer_mail("mg2@acme.com", "Search is slow");
    let form = serde_urlencoded::to_string([
        ("timestamp", now.as_str()),
        ("token", token.as_str()),
        ("signature", good.as_str()),
        ("body-mime", other.as_str()),
    ])
    .unwrap();
    let r = t
        .http
        .post(t.url("/hooks/email/mailgun"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "filed", "{body}");
    assert_ne!(body["case"].as_i64(), Some(n));

    // A route that posts the parsed form (no body-mime) is told what to fix.
    let parsed = multipart(
        "mgb",
        &[("timestamp", &now), ("token", &token), ("signature", &good), ("body-plain", "Every checkout fails.")],
    );
    let (s, body) = post_form(&t, "/hooks/email/mailgun", "mgb", parsed, None).await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("mime"), "{body}");
}

#[tokio::test]
async fn the_mailgun_hook_is_not_there_without_a_signing_key() {
    let t = TestApp::spawn(Workers::Manual).await;
    let (s, body) = post_form(&t, "/hooks/email/mailgun", "b", multipart("b", &[("token", "x")]), None).await;
    assert_eq!(s, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("mailgun_signing_key_env"), "{body}");
}

#[tokio::test]
async fn postmark_inbound_json_files_a_case_with_its_headers_and_attachments() {
    let t = setup().await;
    let hook = t.token("postmark", TokenRole::Integration, None).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/providers/postmark-inbound.json")).unwrap(),
    )
    .unwrap();
    let post = |body: Value, password: Option<String>| {
        let mut r = t.http.post(t.url("/hooks/email/postmark")).json(&body);
        if let Some(p) = password {
            r = r.basic_auth("tocsin", Some(p));
        }
        async move {
            let r = r.send().await.unwrap();
            let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), challenge, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Without credentials: 401 with a basic challenge; a wrong password the same.
    let (s, challenge, _) = post(fixture.clone(), None).await;
    assert_eq!((s, challenge.as_deref()), (401, Some("Basic realm=\"tocsin\"")));
    let (s, _, _) = post(fixture.clone(), Some("wrong".into())).await;
    assert_eq!(s, 401);
    // A token of a role that may not post mail: 403.
    let reader = t.token("dana-phone", TokenRole::Engineer, Some("dana")).await;
    let (s, _, body) = post(fixture.clone(), Some(reader)).await;
    assert_eq!(s, 403, "{body}");

    let (s, _, body) = post(fixture.clone(), Some(hook.clone())).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("filed")), "{body}");
    let n = body["case"].as_i64().unwrap();
    let c = case(&t, &admin, n).await;
    assert_eq!(c["subject"], "Checkout page returns 500");
    assert_eq!(c["requester"], "pat@acme.com");
    let text = c["body"].as_str().unwrap_or_default();
    assert!(text.contains("every checkout fails with a 500"), "{c}");
    // The message was rebuilt with Postmark's headers and attachment.
    let row = t.store().inbox(body["inbox"].as_i64().unwrap()).await.unwrap().unwrap();
    let rebuilt = String::from_utf8_lossy(&row.raw).into_owned();
    assert!(
        rebuilt.contains("Message-ID: <CAGXpo2WKfxHWZ5UFYCR3H_J9SNMG+5AXUovfEFL6DjWBJSyZaA@mail.acme.com>"),
        "{rebuilt}"
    );
    assert!(rebuilt.contains("X-Spam-Status: No"), "{rebuilt}");
    assert!(rebuilt.contains("error.txt"), "{rebuilt}");

    // Postmark retries until it gets a 200: the same post is a duplicate.
    let (s, _, body) = post(fixture.clone(), Some(hook.clone())).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("duplicate")), "{body}");

    // The customer's follow-up names the first message: it joins the case.
    let mut follow = fixture.clone();
    follow["MessageID"] = json!("8b3a2a4e-0000-4000-8000-000000000002");
    follow["Subject"] = json!("Re: Checkout page returns 500");
    follow["TextBody"] = json!("Still failing at 09:30.");
    follow["HtmlBody"] = json!("");
    follow["Attachments"] = json!([]);
    follow["Headers"] = json!([
        {"Name": "Message-ID", "Value": "<follow-up-1@mail.acme.com>"},
        {"Name": "In-Reply-To", "Value": "<CAGXpo2WKfxHWZ5UFYCR3H_J9SNMG+5AXUovfEFL6DjWBJSyZaA@mail.acme.com>"},
        {"Name": "References", "Value": "<CAGXpo2WKfxHWZ5UFYCR3H_J9SNMG+5AXUovfEFL6DjWBJSyZaA@mail.acme.com>"}
    ]);
    let (s, _, body) = post(follow, Some(hook.clone())).await;
    assert_eq!((s, body["case"].as_i64()), (200, Some(n)), "{body}");
    let c = case(&t, &admin, n).await;
    let texts: Vec<&str> = c["timeline"].as_array().unwrap().iter().filter_map(|e| e["text"].as_str()).collect();
    assert!(texts.iter().any(|x| x.contains("Still failing at 09:30.")), "{texts:?}");

    // With "Include raw email content" on, the raw message is filed as sent.
    let mut raw_post = fixture.clone();
    raw_post["RawEmail"] = json!(customer_mail("pm-raw@acme.com", "Invoices missing"));
    let (s, _, body) = post(raw_post, Some(hook.clone())).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("filed")), "{body}");
    let c = case(&t, &admin, body["case"].as_i64().unwrap()).await;
    assert_eq!(c["subject"], "Invoices missing");

    // Not Postmark's JSON: 400 with the reason.
    let (s, _, body) = post(json!({"Attachments": "no"}), Some(hook)).await;
    assert_eq!(s, 400, "{body}");
}

#[tokio::test]
async fn sendgrid_inbound_parse_with_raw_mime_files_a_case() {
    let t = setup().await;
    let hook = t.token("sendgrid", TokenRole::Integration, None).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let mail = customer_mail("sg1@acme.com", "Login loops");
    let envelope = r#"{"to":["help@support.example.com"],"from":"pat@acme.com"}"#;
    let body = multipart(
        "xYzZY",
        &[
            ("dkim", "{@acme.com : pass}"),
            ("email", &mail),
            ("to", "help@support.example.com"),
            ("from", "Pat <pat@acme.com>"),
            ("sender_ip", "192.0.2.10"),
            ("envelope", envelope),
            ("subject", "Login loops"),
            ("charsets", r#"{"to":"UTF-8","from":"UTF-8","subject":"UTF-8"}"#),
            ("SPF", "pass"),
        ],
    );
    let (s, _) = post_form(&t, "/hooks/email/sendgrid", "xYzZY", body.clone(), Some("wrong")).await;
    assert_eq!(s, 401);
    let (s, filed) = post_form(&t, "/hooks/email/sendgrid", "xYzZY", body, Some(&hook)).await;
    assert_eq!((s, filed["status"].as_str()), (200, Some("filed")), "{filed}");
    let c = case(&t, &admin, filed["case"].as_i64().unwrap()).await;
    assert_eq!(c["subject"], "Login loops");

    // The parsed format (raw MIME not ticked) is refused with the fix.
    let parsed = multipart("xYzZY", &[("text", "Every checkout fails."), ("envelope", envelope)]);
    let (s, body) = post_form(&t, "/hooks/email/sendgrid", "xYzZY", parsed, Some(&hook)).await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("raw, full MIME"), "{body}");
}
