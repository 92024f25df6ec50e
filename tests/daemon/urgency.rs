//! Urgency per route, end to end on the fake clock: a `working-hours` case
//! outside office hours pages nobody until they begin; a `low` case is
//! paged by email only; a held case raised to a high-urgency priority is
//! paged at once. (The decisions themselves: `core/src/case/decide/urgency`.)

use serde_json::json;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::web::{page, sign_in};
use crate::harness::*;

/// The shipped rules with the catch-all route (P3, policy standard) given
/// `urgency`.
fn rules_with(urgency: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        let mut text = std::fs::read_to_string(f.path()).unwrap();
        if f.file_name() == "routing.toml" {
            let last = "priority = \"P3\"\npolicy = \"standard\"\n";
            assert!(text.ends_with(last), "the shipped catch-all route moved");
            text.push_str(&format!("urgency = \"{urgency}\"\n"));
        }
        std::fs::write(dir.path().join(f.file_name()), text).unwrap();
    }
    dir
}

async fn open_slow_dashboard(t: &TestApp, tok: &str) -> serde_json::Value {
    let (s, case) = t
        .post("/api/v1/cases", tok, json!({"subject": "Slow dashboard loading", "requester": "it@globex.example"}))
        .await;
    assert_eq!(s, 201, "{case}");
    case
}

#[tokio::test]
async fn a_working_hours_case_opened_at_two_pages_nobody_until_nine_then_step_one_exactly() {
    let rules = rules_with("working-hours");
    // Tuesday 24 November 2026, 02:00 in London (UTC in winter).
    let t = TestApp::spawn_with(Workers::Manual, "2026-11-24T02:00:00Z", rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let case = open_slow_dashboard(&t, &tok).await;
    let n = case["number"].as_i64().unwrap();
    assert_eq!((case["priority"].as_str(), case["urgency"].as_str()), (Some("P3"), Some("working-hours")));
    assert_eq!(case["held_until"], "2026-11-24T09:00:00Z");
    assert!(t.step_pages(n, &tok).await.is_empty());
    assert_eq!(t.events(n, &tok, "held").await.len(), 1);

    // The Now page says so, in the viewer's zone.
    let manager = t.token("max", TokenRole::Manager, Some("max")).await;
    let (s, _) = sign_in(&t, &manager).await;
    let (status, html) = page(&t, &s, "/now/live").await;
    assert_eq!(status, 200);
    assert!(html.contains("held until Tue 09:00"), "{html}");

    // Nothing fires before 09:00; at 09:00 exactly step 1 pages.
    assert_eq!(t.advance_to("2026-11-24T08:59:59Z").await, 0);
    assert!(t.step_pages(n, &tok).await.is_empty());
    assert_eq!(t.advance_to("2026-11-24T09:00:00Z").await, 1);
    let pages = t.step_pages(n, &tok).await;
    assert_eq!(pages.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>(), [(1, 0)], "{pages:?}");
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    assert!(case.get("held_until").is_none(), "{case}");
    let paged = t.events(n, &tok, "paged").await;
    assert_eq!(paged.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["2026-11-24T09:00:00Z"]);
    // And the policy goes on from there: step 2 after step 1's 30 minutes.
    assert_eq!(t.advance_to("2026-11-24T09:30:00Z").await, 1);
    assert_eq!(t.step_pages(n, &tok).await.len(), 2);
}

#[tokio::test]
async fn a_held_case_survives_a_restart_and_pages_after_the_weekend() {
    let rules = rules_with("working-hours");
    // Friday 27 November, 19:00: held until Monday 09:00.
    let mut t = TestApp::spawn_with(Workers::Manual, "2026-11-27T19:00:00Z", rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = open_slow_dashboard(&t, &tok).await["number"].as_i64().unwrap();
    t.stop().await;
    t.start(Workers::Manual).await;
    assert_eq!(t.advance_to("2026-11-30T08:59:59Z").await, 0);
    assert!(t.step_pages(n, &tok).await.is_empty());
    assert_eq!(t.advance_to("2026-11-30T09:00:00Z").await, 1);
    assert_eq!(t.step_pages(n, &tok).await.len(), 1);
}

#[tokio::test]
async fn a_held_case_raised_to_p1_is_paged_at_once() {
    let rules = rules_with("working-hours");
    let t = TestApp::spawn_with(Workers::Manual, "2026-11-24T02:00:00Z", rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = open_slow_dashboard(&t, &tok).await["number"].as_i64().unwrap();
    t.advance_to("2026-11-24T02:20:00Z").await;
    let (s, case) = t.patch(&format!("/api/v1/cases/{n}"), &tok, json!({"priority": "P1"})).await;
    assert_eq!(s, 200, "{case}");
    assert_eq!(case["urgency"], "high");
    assert!(case.get("held_until").is_none(), "{case}");
    let paged = t.events(n, &tok, "paged").await;
    assert_eq!(paged.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["2026-11-24T02:20:00Z"]);
    // The hold timer is gone: nothing more happens at 09:00 than step
    // timers would do anyway.
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    assert_eq!(case["escalation"]["running"], true);
}

#[tokio::test]
async fn a_low_case_is_paged_by_email_only_even_to_people_who_put_sms_first() {
    let rules = rules_with("low");
    let t = TestApp::spawn_with(Workers::Manual, "2026-11-24T02:00:00Z", rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let n = open_slow_dashboard(&t, &tok).await["number"].as_i64().unwrap();
    // The whole policy (two steps, run twice: three hours), then the
    // respond breach at 17:00 (eight office hours from 09:00).
    let start = t.clock_now();
    for _ in 1..=8 {
        t.advance(chrono::TimeDelta::minutes(30)).await;
    }
    assert_eq!(t.clock_now() - start, chrono::TimeDelta::hours(4));
    t.advance_to("2026-11-24T17:00:00Z").await;
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &tok).await;
    let to_people: Vec<_> = case["pages"].as_array().unwrap().iter().filter(|p| !p["person"].is_null()).collect();
    assert!(to_people.iter().filter(|p| p["kind"] == "page").count() >= 4, "{case}");
    assert!(to_people.iter().any(|p| p["kind"] == "breach"), "{case}");
    for p in &to_people {
        assert_eq!(p["channel"], "email", "{p}");
    }
}
