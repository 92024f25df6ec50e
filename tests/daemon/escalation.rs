//! The escalation engine end to end: real HTTP, a real SQLite file, the
//! shipped rules, and a fake clock moved by hand.

use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

fn mins(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

#[tokio::test]
async fn a_new_case_pages_step_one_at_once_and_sends_a_receipt() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    assert_eq!(t.step_pages(n, &tok).await, vec![("ana".to_owned(), 1, 0)]);
    t.app().tick().await.unwrap();
    let files = t.outbox();
    assert_eq!(files, vec![format!("00000001-case{n}-receipt-email.eml"), format!("00000002-case{n}-page-sms.json")]);
    let sms: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.dir.path().join("outbox").join(&files[1])).unwrap()).unwrap();
    assert_eq!(sms["to"], "+15550100001");
    assert_eq!(sms["case"], n);
    assert_eq!(sms["kind"], "page");
    let body = sms["body"].as_str().unwrap();
    assert!(body.contains(&format!("#{n}")) && body.contains("Site down") && body.chars().count() <= 160, "{body}");
    let receipt = std::fs::read_to_string(t.dir.path().join("outbox").join(&files[0])).unwrap();
    assert!(receipt.contains("To: ops@acme.com") && receipt.contains("Auto-Submitted: auto-replied"), "{receipt}");
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    assert!(case["pages"].as_array().unwrap().iter().all(|p| p["status"] == "sent"), "{case}");
}

#[tokio::test]
async fn without_an_ack_step_two_pages_exactly_at_its_delay() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    assert_eq!(t.advance(mins(5) - TimeDelta::seconds(1)).await, 0);
    assert_eq!(t.step_pages(n, &tok).await.len(), 1);
    assert_eq!(t.advance(TimeDelta::seconds(1)).await, 1);
    let pages = t.step_pages(n, &tok).await;
    assert_eq!(pages, vec![("ana".into(), 1, 0), ("ben".into(), 2, 0), ("dana".into(), 2, 0)]);
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let step2 = &case["pages"].as_array().unwrap().iter().find(|p| p["step"] == 2).unwrap()["at"];
    assert_eq!(step2, "2026-11-24T10:05:00Z");
    // Step 3 (managers) after step 2's ten minutes, with the respond
    // clock's 50% warning at the same instant; then the policy repeats.
    assert_eq!(t.advance(mins(10)).await, 2);
    assert_eq!(t.step_pages(n, &tok).await.last().unwrap(), &("max".to_owned(), 3, 0));
    t.advance(mins(15)).await;
    assert_eq!(t.step_pages(n, &tok).await.last().unwrap(), &("ana".to_owned(), 1, 1));
}

#[tokio::test]
async fn an_ack_stops_every_later_step_and_starts_the_update_clock() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    t.advance(mins(2)).await;
    let (status, case) = t.post(&format!("/api/v1/cases/{n}/ack"), &tok, json!({"text": "looking"})).await;
    assert_eq!(status, 200, "{case}");
    assert_eq!(case["status"], "acknowledged");
    assert_eq!(case["assignee"], "ana");
    assert_eq!(case["deadlines"]["update"], "2026-11-24T11:02:00Z");
    // To the second: 10:32 and 10:50 are 50% and 80% of the update window.
    assert_eq!(t.advance(mins(30) - TimeDelta::seconds(1)).await, 0);
    assert_eq!(t.advance(TimeDelta::seconds(1)).await, 1);
    assert_eq!(t.advance(mins(18)).await, 1);
    assert_eq!(t.advance(mins(10)).await, 0);
    assert_eq!(t.step_pages(n, &tok).await, vec![("ana".to_owned(), 1, 0)]);
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let kinds: Vec<&str> = case["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    // The update clock (1h from 10:02) warns at 50% and 80%. (Acme's plan
    // tells the customer of the acknowledgement: that mail was sent.)
    assert_eq!(kinds, ["opened", "paged", "acknowledged", "sent", "warning", "warning"]);
    let warnings: Vec<(&str, &str)> = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "warning")
        .map(|e| (e["at"].as_str().unwrap(), e["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        warnings,
        [
            ("2026-11-24T10:32:00Z", "50% of the update window used; due 2026-11-24T11:02:00Z"),
            ("2026-11-24T10:50:00Z", "80% of the update window used; due 2026-11-24T11:02:00Z"),
        ]
    );
    let warned: Vec<_> = case["pages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "warning")
        .map(|p| p["person"].clone())
        .collect();
    assert_eq!(warned, [json!("ana"), json!("ana")]);
}

#[tokio::test]
async fn a_restart_mid_wait_still_fires_the_step_once() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    t.stop().await;
    // Down for six minutes: step 2 fell due while nobody was running.
    t.clock.advance(mins(6));
    t.start(Workers::Background).await;
    let mut fired = t.app().fired.clone();
    tokio::time::timeout(std::time::Duration::from_secs(20), fired.wait_for(|n| *n >= 1)).await.unwrap().unwrap();
    t.stop().await;
    t.start(Workers::Manual).await;
    assert_eq!(t.app().tick().await.unwrap(), 0, "a fired timer fired again");
    let pages = t.step_pages(n, &tok).await;
    assert_eq!(pages, vec![("ana".into(), 1, 0), ("ben".into(), 2, 0), ("dana".into(), 2, 0)]);
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let step2 = &case["pages"].as_array().unwrap().iter().find(|p| p["step"] == 2).unwrap()["at"];
    assert_eq!(step2, "2026-11-24T10:06:00Z", "fired at once on restart");
    let sms = t.outbox().into_iter().filter(|f| f.ends_with("-page-sms.json")).count();
    assert_eq!(sms, 3, "{:?}", t.outbox());
}

#[tokio::test]
async fn two_acks_race_and_only_one_wins() {
    let t = TestApp::spawn(Workers::Manual).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    // Ben is a manager here: an engineer who was not paged may not see the
    // case at all.
    let ben = t.token("ben-phone", TokenRole::Manager, Some("ben")).await;
    for _ in 0..5 {
        let n = t.open_outage(&ana).await;
        let path = format!("/api/v1/cases/{n}/ack");
        let (a, b) = tokio::join!(t.post(&path, &ana, json!({})), t.post(&path, &ben, json!({})));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        assert!(loser["error"].as_str().unwrap().contains("already acknowledged by"), "{loser}");
        let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &ana).await;
        let acks = case["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "acknowledged").count();
        assert_eq!(acks, 1);
        let winner = if a.0 == 200 { "ana" } else { "ben" };
        assert_eq!(case["assignee"], winner);
    }
}

#[tokio::test]
async fn esc_twice_skips_one_step_not_two() {
    let t = TestApp::spawn(Workers::Manual).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&ana).await;
    let path = format!("/api/v1/cases/{n}/escalate");
    let (first, case) = t.post(&path, &ana, json!({})).await;
    assert_eq!(first, 200, "{case}");
    assert_eq!(case["escalation"]["step"], 2);
    let (second, err) = t.post(&path, &ana, json!({})).await;
    assert_eq!(second, 409, "{err}");
    assert!(err["error"].as_str().unwrap().contains("already escalated past step 1"), "{err}");
    // An admin naming the step gets the same protection.
    let admin = t.token("ops", TokenRole::Admin, None).await;
    assert_eq!(t.post(&path, &admin, json!({"step": 1})).await.0, 409);
    assert_eq!(t.step_pages(n, &ana).await, vec![("ana".into(), 1, 0), ("ben".into(), 2, 0), ("dana".into(), 2, 0)]);
    // Step 2's wait now runs from the escalation, not from the open.
    assert_eq!(t.advance(mins(10) - TimeDelta::seconds(1)).await, 0);
    assert_eq!(t.advance(TimeDelta::seconds(1)).await, 1);
    assert_eq!(t.step_pages(n, &ana).await.last().unwrap(), &("max".to_owned(), 3, 0));
}

#[tokio::test]
async fn a_missed_respond_deadline_is_a_breach_that_tells_the_managers() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    for _ in 0..6 {
        t.advance(mins(5)).await;
    }
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let breaches: Vec<_> = case["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "breach").collect();
    assert_eq!(breaches.len(), 1, "{case}");
    assert!(breaches[0]["text"].as_str().unwrap().starts_with("respond deadline 2026-11-24T10:30:00Z passed"));
    assert_eq!(breaches[0]["at"], "2026-11-24T10:30:00Z");
    let notices: Vec<_> = case["pages"].as_array().unwrap().iter().filter(|p| p["kind"] == "breach").collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0]["person"], "max");
    assert!(t.outbox().iter().any(|f| f.ends_with("-breach-email.eml")));
}

#[tokio::test]
async fn a_missed_update_reminds_the_assignee_then_escalates() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    t.post(&format!("/api/v1/cases/{n}/ack"), &tok, json!({})).await;
    // A note at 40 minutes moves the update deadline to 11:40.
    t.advance(mins(40)).await;
    let (s, case) = t.post(&format!("/api/v1/cases/{n}/notes"), &tok, json!({"text": "restarting the primary"})).await;
    assert_eq!(s, 200, "{case}");
    assert_eq!(case["deadlines"]["update"], "2026-11-24T11:40:00Z");
    t.advance(mins(59)).await;
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    assert!(!case["pages"].as_array().unwrap().iter().any(|p| p["kind"] == "reminder"));
    t.advance(mins(1)).await;
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let reminder: Vec<_> = case["pages"].as_array().unwrap().iter().filter(|p| p["kind"] == "reminder").collect();
    assert_eq!(reminder.len(), 1);
    assert_eq!(reminder[0]["person"], "ana");
    assert_eq!(case["status"], "acknowledged");
    // No update within the first step's wait: the policy runs again.
    t.advance(mins(5)).await;
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    assert_eq!(case["status"], "open");
    assert_eq!(t.step_pages(n, &tok).await.len(), 2);
}

#[tokio::test]
async fn resolve_stops_everything_and_reopen_pages_again() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    let (s, case) = t.post(&format!("/api/v1/cases/{n}/resolve"), &tok, json!({"text": "fixed"})).await;
    assert_eq!(s, 200, "{case}");
    assert_eq!(case["status"], "resolved");
    assert_eq!(t.post(&format!("/api/v1/cases/{n}/resolve"), &tok, json!({})).await.0, 409);
    assert_eq!(t.advance(TimeDelta::hours(6)).await, 0, "no timer outlives a resolve");
    let (s, case) = t.post(&format!("/api/v1/cases/{n}/reopen"), &tok, json!({"text": "back again"})).await;
    assert_eq!(s, 200, "{case}");
    assert_eq!(case["status"], "open");
    assert_eq!(t.step_pages(n, &tok).await.len(), 2);
}

#[tokio::test]
async fn the_background_scheduler_wakes_for_a_timer_without_polling() {
    let mut t = TestApp::spawn(Workers::Background).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    let mut fired = t.app().fired.clone();
    t.clock.advance(mins(5));
    tokio::time::timeout(std::time::Duration::from_secs(20), fired.wait_for(|n| *n >= 1)).await.unwrap().unwrap();
    assert_eq!(t.step_pages(n, &tok).await.len(), 3);
    t.stop().await;
}

#[tokio::test]
async fn sms_to_one_person_are_rate_limited_and_bundled() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let first = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    // Two more cases page Ana inside the minute after her first SMS.
    t.advance(TimeDelta::seconds(20)).await;
    let second = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    t.advance(TimeDelta::seconds(20)).await;
    let third = t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    let sms_files = || t.outbox().into_iter().filter(|f| f.ends_with("-sms.json")).collect::<Vec<_>>();
    assert_eq!(sms_files().len(), 1, "held back by [sms] min_interval");
    let (_, case) = t.get(&format!("/api/v1/cases/{second}"), &tok).await;
    let held = case["pages"].as_array().unwrap().iter().find(|p| p["channel"] == "sms").unwrap().clone();
    assert_eq!(
        (held["status"].as_str(), held["attempts"].as_i64()),
        (Some("queued"), Some(0)),
        "deferring is not an attempt"
    );
    // A minute after the first, one SMS carries both.
    t.advance(TimeDelta::seconds(20)).await;
    let files = sms_files();
    assert_eq!(files.len(), 2, "{files:?}");
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.dir.path().join("outbox").join(&files[1])).unwrap()).unwrap();
    let body = bundle["body"].as_str().unwrap();
    assert!(
        body.starts_with("2 cases: ") && body.contains(&format!("#{second}")) && body.contains(&format!("#{third}")),
        "{body}"
    );
    for n in [second, third] {
        let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
        let sms = case["pages"].as_array().unwrap().iter().find(|p| p["channel"] == "sms").unwrap().clone();
        assert_eq!((sms["status"].as_str(), sms["provider_id"].as_str()), (Some("sent"), Some(files[1].as_str())));
    }
    assert_ne!(first, second);
}

/// The dispatcher died after writing a page's outbox file and before
/// recording it: the page is taken "in doubt" when its lease runs out, and
/// the file's presence says it went out, whether the case still wants it
/// or has moved on meanwhile. Nothing is written twice.
#[tokio::test]
async fn an_interrupted_outbox_send_is_recorded_sent_never_written_again() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let wanted = t.open_outage(&tok).await;
    let dropped = t.open_outage(&tok).await;
    let claimed = t.store().claim_pages(t.clock_now(), "dead-worker", TimeDelta::seconds(30), 10).await.unwrap();
    let sms_of = |n: i64| claimed.iter().find(|p| p.case.map(|c| c.0) == Some(n) && p.kind.as_str() == "page").unwrap();
    // The dead worker's sends of the two step-1 SMS had gone out; its
    // receipts had not.
    let outbox = t.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    for n in [wanted, dropped] {
        let name = format!("{:08}-case{n}-page-sms.json", sms_of(n).id);
        std::fs::write(outbox.join(name), "{\"sent by\": \"the dead worker\"}").unwrap();
    }
    // Meanwhile ana acknowledges the second case: its page is superseded.
    let (s, _) = t.post(&format!("/api/v1/cases/{dropped}/ack"), &tok, json!({})).await;
    assert_eq!(s, 200);
    t.app().tick().await.unwrap();
    // Only the customer's notice of the acknowledgement (a new row) went out.
    let others: Vec<String> = t.outbox().into_iter().filter(|f| !f.contains("-customer_ack-")).collect();
    assert_eq!(others.len(), 2, "the lease is still held: nothing sent yet");
    t.advance(TimeDelta::seconds(31)).await;
    for n in [wanted, dropped] {
        let sms = t.store().page(sms_of(n).id).await.unwrap().unwrap();
        assert_eq!(sms.status.as_str(), "sent", "case {n}: what ana received is on record");
        let file = format!("{:08}-case{n}-page-sms.json", sms.id);
        assert_eq!(std::fs::read_to_string(outbox.join(file)).unwrap(), "{\"sent by\": \"the dead worker\"}");
    }
    // The receipts, never written, went out now, once each.
    let receipts = t.outbox().iter().filter(|f| f.contains("receipt")).count();
    assert_eq!(receipts, 2);
}

/// A daemon that was down for an hour meets every timer of its cases due
/// at once. Fired as one batch (several timers of one case among them, so
/// some lose their race and are decided again) they must end exactly where
/// firing them one at a time (`[scheduler] batch = 1`) ends.
#[tokio::test]
async fn an_hour_of_timers_fired_in_one_batch_ends_as_one_at_a_time() {
    let rules = repo().join("rules");
    let batched = TestApp::spawn(Workers::Manual).await;
    let single = TestApp::spawn_configured(Workers::Manual, START, &rules, |c| c.scheduler.batch = 1).await;
    let mut seen = Vec::new();
    for t in [&batched, &single] {
        let tok = t.token("ops", TokenRole::Admin, None).await;
        let cases = [t.open_outage(&tok).await, t.open_outage(&tok).await];
        let (_, ack) = t.post(&format!("/api/v1/cases/{}/ack", cases[1]), &tok, json!({"by": "ana"})).await;
        assert_eq!(ack["status"], "acknowledged");
        let fired = t.advance(mins(60)).await;
        let mut state = vec![json!(fired)];
        for n in cases {
            let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
            let timeline: Vec<Value> =
                case["timeline"].as_array().unwrap().iter().map(|e| json!([e["at"], e["kind"], e["text"]])).collect();
            let pages: Vec<Value> = case["pages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| json!([p["person"], p["channel"], p["kind"], p["step"], p["round"], p["at"]]))
                .collect();
            state.push(json!([case["status"], case["deadlines"], timeline, pages]));
        }
        seen.push(state);
    }
    let kinds = seen[0][1][2].to_string();
    assert!(kinds.contains("warning") && kinds.contains("breach"), "{kinds}");
    assert!(seen[0][0].as_u64().unwrap() >= 6, "several timers fired: {}", seen[0][0]);
    assert_eq!(seen[0], seen[1]);
}

/// Two SMS to one person, both held by a dispatcher that died after the
/// first went out alone: they come back "in doubt" together and would be
/// bundled. The first is found sent; the second must still go out, never be
/// taken for sent because the bundle shares the first one's row.
#[tokio::test]
async fn an_in_doubt_page_found_sent_does_not_carry_its_bundle_mates_with_it() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let (first, second) = (t.open_outage(&tok).await, t.open_outage(&tok).await);
    let claimed = t.store().claim_pages(t.clock_now(), "dead-worker", TimeDelta::seconds(30), 10).await.unwrap();
    let sms_of = |n: i64| claimed.iter().find(|p| p.case.map(|c| c.0) == Some(n) && p.kind.as_str() == "page").unwrap();
    let outbox = t.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let sent_alone = format!("{:08}-case{first}-page-sms.json", sms_of(first).id);
    std::fs::write(outbox.join(&sent_alone), "{\"sent by\": \"the dead worker\"}").unwrap();
    t.advance(TimeDelta::seconds(31)).await;
    let p = t.store().page(sms_of(first).id).await.unwrap().unwrap();
    assert_eq!(p.status.as_str(), "sent");
    assert_eq!(std::fs::read_to_string(outbox.join(&sent_alone)).unwrap(), "{\"sent by\": \"the dead worker\"}");
    // The second goes out on its own (now, or after ana's SMS interval).
    t.advance(TimeDelta::minutes(2)).await;
    let q = t.store().page(sms_of(second).id).await.unwrap().unwrap();
    assert_eq!(q.status.as_str(), "sent");
    let files = t.outbox();
    assert!(
        files.iter().any(|f| f.starts_with(&format!("{:08}-case{second}-page-sms", q.id))),
        "the second page was written: {files:?}"
    );
}
