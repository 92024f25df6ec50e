//! The managers' daily digest.

use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

fn body_text(raw: &str) -> String {
    let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
    message.body_text(0).unwrap().replace("\r\n", "\n")
}

#[tokio::test]
async fn each_manager_gets_one_digest_a_day_at_eight_on_their_own_clock() {
    let t = TestApp::spawn_with(Workers::Manual, "2026-11-24T07:59:00Z", &repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&tok).await;
    let digester = t.app().digester.clone().expect("on by default");
    assert_eq!(digester.run_once().await.unwrap(), 0, "before 08:00 London");
    t.advance_to("2026-11-24T08:00:00Z").await;
    assert_eq!(digester.run_once().await.unwrap(), 1);
    assert_eq!(digester.run_once().await.unwrap(), 0, "once a day");
    t.app().tick().await.unwrap();
    let digests = t.outbox_texts("digest-email");
    assert_eq!(digests.len(), 1);
    assert!(
        digests[0].contains("To: max@example.com")
            && digests[0].contains("Subject: Tocsin daily digest for Max Berger"),
        "{}",
        digests[0]
    );
    let body = body_text(&digests[0]);
    assert!(body.contains("Cases by status:\n  open: 1"), "{body}");
    assert!(body.contains("Breaches in the last 24 hours: none"), "{body}");
    assert!(body.contains(&format!("Next deadlines:\n  Tue 24 Nov 08:29 #{n} P1 Site down")), "{body}");
    assert!(body.contains("On call now:\n  primary: Ana Lima\n  secondary: Ben Okafor"), "{body}");
    // The respond deadline passes; the next morning's digest reports it.
    t.advance_to("2026-11-24T08:29:00Z").await;
    t.advance_to("2026-11-25T08:00:00Z").await;
    assert_eq!(digester.run_once().await.unwrap(), 1);
    t.app().tick().await.unwrap();
    let digests = t.outbox_texts("digest-email");
    let body = body_text(&digests[1]);
    assert!(
        body.contains(&format!("Breaches in the last 24 hours:\n  #{n}: respond deadline 2026-11-24T08:29:00Z passed")),
        "{body}"
    );
}
