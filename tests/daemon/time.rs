//! SLA clocks, overrides, on-call answers and feeds, through the API.

use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::{TokenInfo, TokenRole};

use crate::harness::*;

fn mins(m: i64) -> TimeDelta {
    TimeDelta::minutes(m)
}

/// The shipped rules with the rotations starting in June 2026, so that the
/// summer has someone on call.
fn summer_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        let text = std::fs::read_to_string(f.path()).unwrap();
        let text = text.replace("2026-11-02T09:00", "2026-06-01T09:00").replace("2026-11-02T18:00", "2026-06-01T18:00");
        std::fs::write(dir.path().join(f.file_name()), text).unwrap();
    }
    dir
}

#[tokio::test]
async fn a_friday_evening_case_before_a_bank_holiday_breaches_on_tuesday_to_the_minute() {
    let rules = summer_rules();
    // Friday 28 August 2026, 17:00 in London; Monday 31 August is a bank holiday.
    let t = TestApp::spawn_with(Workers::Manual, "2026-08-28T16:00:00Z", rules.path()).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let (s, case) =
        t.post("/api/v1/cases", &tok, json!({"subject": "Server down", "requester": "it@globex.example"})).await;
    assert_eq!(s, 201, "{case}");
    let n = case["number"].as_i64().unwrap();
    assert_eq!((case["plan"].as_str(), case["priority"].as_str()), (Some("standard"), Some("P1")));
    // 2h of office time: 17:00-17:30 Friday, then Tuesday 09:00-10:30.
    assert_eq!(case["deadlines"]["respond"], "2026-09-01T09:30:00Z");

    // The escalation runs on the wall clock all evening; each step pages
    // whoever is on call at that moment: at 18:00 the evening layer (dana)
    // takes over the primary rotation from ana.
    for minute in [5, 15, 30, 35, 45, 60, 65, 75, 90] {
        t.advance_to(
            &(chrono::DateTime::parse_from_rfc3339("2026-08-28T16:00:00Z").unwrap() + mins(minute)).to_rfc3339(),
        )
        .await;
    }
    let expected = [
        ("ana", 1, 0),
        ("ben", 2, 0),
        ("dana", 2, 0),
        ("max", 3, 0),
        ("ana", 1, 1),
        ("ben", 2, 1),
        ("dana", 2, 1),
        ("max", 3, 1),
        ("dana", 1, 2),
        ("ben", 2, 2),
        ("dana", 2, 2),
        ("max", 3, 2),
    ];
    let want: Vec<(String, i64, i64)> = expected.iter().map(|(p, s, r)| (p.to_string(), *s, *r)).collect();
    assert_eq!(t.step_pages(n, &tok).await, want);
    assert_eq!(t.events(n, &tok, "exhausted").await.len(), 1);

    // Nothing over the weekend or the holiday. Tuesday (London): 50% of
    // the 2h at 09:30, 80% at 10:06, the breach at 10:30, each to the second.
    assert_eq!(t.advance_to("2026-09-01T08:29:59Z").await, 0);
    assert_eq!(t.advance_to("2026-09-01T08:30:00Z").await, 1);
    assert_eq!(t.advance_to("2026-09-01T09:05:59Z").await, 0);
    assert_eq!(t.advance_to("2026-09-01T09:06:00Z").await, 1);
    assert_eq!(t.advance_to("2026-09-01T09:29:59Z").await, 0);
    assert!(t.events(n, &tok, "breach").await.is_empty());
    assert_eq!(t.advance_to("2026-09-01T09:30:00Z").await, 1);
    let warnings: Vec<String> = t.events(n, &tok, "warning").await.into_iter().map(|e| e.0).collect();
    assert_eq!(warnings, ["2026-09-01T08:30:00Z", "2026-09-01T09:06:00Z"]);
    let breaches = t.events(n, &tok, "breach").await;
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].0, "2026-09-01T09:30:00Z");
    assert!(breaches[0].1.starts_with("respond deadline 2026-09-01T09:30:00Z passed"));
}

#[tokio::test]
async fn waiting_pauses_the_resolve_clock_and_stops_the_update_clock() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    t.post(&format!("/api/v1/cases/{n}/ack"), &tok, json!({})).await;
    t.advance(mins(60) - TimeDelta::seconds(1)).await;
    let (s, case) = t.post(&format!("/api/v1/cases/{n}/wait"), &tok, json!({"text": "asked for logs"})).await;
    assert_eq!(s, 200, "{case}");
    assert_eq!(case["status"], "waiting");
    assert_eq!(case["deadlines"]["resolve"], Value::Null);
    assert_eq!(case["deadlines"]["update"], Value::Null);
    // Two hours of waiting: neither the update nor the resolve deadline
    // (14:00, gold P1 4h) passes.
    t.advance(mins(120)).await;
    assert!(t.events(n, &tok, "breach").await.is_empty());
    let (s, case) = t.post(&format!("/api/v1/cases/{n}/resume"), &tok, json!({})).await;
    assert_eq!(s, 200, "{case}");
    assert_eq!(case["status"], "acknowledged");
    // 59m59s ran before the wait; 3h00m01s are left from 12:59:59.
    assert_eq!(case["deadlines"]["resolve"], "2026-11-24T16:00:00Z");
    assert_eq!(case["deadlines"]["update"], "2026-11-24T13:59:59Z");
    assert_eq!(t.post(&format!("/api/v1/cases/{n}/resume"), &tok, json!({})).await.0, 409);
    t.advance_to("2026-11-24T16:00:00Z").await;
    let breaches: Vec<String> = t.events(n, &tok, "breach").await.into_iter().map(|e| e.1).collect();
    assert!(breaches.iter().any(|b| b.starts_with("resolve deadline 2026-11-24T16:00:00Z")), "{breaches:?}");
}

#[tokio::test]
async fn changing_the_priority_recomputes_deadlines_from_the_original_start() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&tok).await;
    t.advance(mins(20)).await;
    let (s, case) = t.patch(&format!("/api/v1/cases/{n}"), &tok, json!({"priority": "P2"})).await;
    assert_eq!(s, 200, "{case}");
    // Gold P2: respond 2h, resolve 1d, both from 10:00.
    assert_eq!(case["deadlines"]["respond"], "2026-11-24T12:00:00Z");
    assert_eq!(case["deadlines"]["resolve"], "2026-11-25T10:00:00Z");
    assert_eq!(t.events(n, &tok, "changed").await[0].1, "gold P1 → gold P2");
    // The old 30-minute respond deadline no longer breaches.
    t.advance_to("2026-11-24T10:45:00Z").await;
    assert!(t.events(n, &tok, "breach").await.is_empty());
    // To the standard plan (office hours, London): 4h from Tuesday 10:00.
    let (_, case) = t.patch(&format!("/api/v1/cases/{n}"), &tok, json!({"plan": "standard"})).await;
    assert_eq!(case["deadlines"]["respond"], "2026-11-24T14:00:00Z");
    for bad in [json!({"priority": "P7"}), json!({"plan": "platinum"}), json!({}), json!({"priority": "P2"})] {
        let (s, e) = t.patch(&format!("/api/v1/cases/{n}"), &tok, bad.clone()).await;
        assert_eq!(s, 422, "{bad}: {e}");
    }
}

#[tokio::test]
async fn overrides_win_over_the_rotation_for_their_time_and_survive_a_restart() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let manager = t.token("max", TokenRole::Manager, Some("max")).await;
    let engineer = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let body = json!({"schedule": "primary", "person": "chen", "start": "2026-11-24T09:00:00Z", "end": "2026-11-24T12:00:00Z", "reason": "ana at the dentist"});
    assert_eq!(t.post("/api/v1/overrides", &engineer, body.clone()).await.0, 403);
    let (s, o) = t.post("/api/v1/overrides", &manager, body).await;
    assert_eq!(s, 201, "{o}");
    assert_eq!(o["created_by"], "max");
    for (bad, field) in [
        (
            json!({"schedule": "primary", "person": "chen", "start": "2026-11-24T12:00:00Z", "end": "2026-11-24T09:00:00Z"}),
            "end",
        ),
        (
            json!({"schedule": "tertiary", "person": "chen", "start": "2026-11-24T09:00:00Z", "end": "2026-11-24T12:00:00Z"}),
            "schedule",
        ),
        (
            json!({"schedule": "primary", "person": "zoe", "start": "2026-11-24T09:00:00Z", "end": "2026-11-24T12:00:00Z"}),
            "person",
        ),
        (json!({"schedule": "primary", "person": "chen", "start": "tomorrow", "end": "2026-11-24T12:00:00Z"}), "start"),
    ] {
        let (s, e) = t.post("/api/v1/overrides", &manager, bad).await;
        assert_eq!(s, 422, "{e}");
        assert!(e["error"].as_str().unwrap().starts_with(&format!("{field}:")), "{e}");
    }
    let (_, now) = t.get("/api/v1/oncall", &engineer).await;
    let primary = now["schedules"].as_array().unwrap().iter().find(|s| s["schedule"] == "primary").unwrap().clone();
    assert_eq!(
        (primary["person"].as_str(), primary["until"].as_str(), primary["next"].as_str()),
        (Some("chen"), Some("2026-11-24T12:00:00Z"), Some("ana"))
    );
    // A case paged now reaches chen, not ana.
    let n = t.open_outage(&engineer).await;
    assert_eq!(t.step_pages(n, &manager).await, [("chen".to_owned(), 1, 0)]);
    // Stored: still there after a restart.
    t.stop().await;
    t.start(Workers::Manual).await;
    let (_, list) = t.get("/api/v1/overrides", &engineer).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let id = list[0]["id"].as_i64().unwrap();
    let delete = |tok: String| t.http.delete(t.url(&format!("/api/v1/overrides/{id}"))).bearer_auth(tok).send();
    assert_eq!(delete(engineer.clone()).await.unwrap().status(), 403);
    assert_eq!(delete(manager.clone()).await.unwrap().status(), 204);
    assert_eq!(delete(manager.clone()).await.unwrap().status(), 404);
    let (_, now) = t.get("/api/v1/oncall", &engineer).await;
    assert_eq!(now["schedules"][0]["person"], "ana");
}

#[tokio::test]
async fn oncall_names_the_next_handoff() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let (s, body) = t.get("/api/v1/oncall?at=2026-11-24T10:00:00Z", &tok).await;
    assert_eq!(s, 200, "{body}");
    let view: Vec<(String, String, String, String)> = body["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["schedule"].as_str().unwrap().into(),
                s["person"].as_str().unwrap().into(),
                s["until"].as_str().unwrap().into(),
                s["next"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            ("primary".into(), "ana".into(), "2026-11-24T18:00:00Z".into(), "dana".into()),
            ("secondary".into(), "ben".into(), "2026-11-30T09:00:00Z".into(), "chen".into()),
        ]
    );
    assert_eq!(t.get("/api/v1/oncall?at=soon", &tok).await.0, 422);
}

#[tokio::test]
async fn schedule_and_person_feeds_are_icalendar() {
    let t = TestApp::spawn(Workers::Manual).await;
    // Calendar apps subscribe by URL, so feed URLs carry feed tokens.
    let tok = t
        .token_of(TokenInfo {
            schedule: Some("primary".into()),
            ..TokenInfo::new("primary-cal", TokenRole::Feed, None)
        })
        .await;
    let r = t.http.get(t.url(&format!("/api/v1/schedules/primary.ics?token={tok}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/calendar; charset=utf-8");
    let ics = r.text().await.unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.trim_end().ends_with("END:VCALENDAR"), "{ics}");
    assert!(ics.contains("SUMMARY:On call: Ana Lima (primary)\r\n"), "{ics}");
    assert!(ics.contains("DTSTART:20261123T090000Z\r\n"), "ana's week starts Monday 09:00 London:\n{ics}");
    assert!(ics.lines().all(|l| l.len() <= 75), "lines must be folded at 75 octets");
    let events = ics.matches("BEGIN:VEVENT").count();
    assert!(events > 50, "67 days of shifts with evening cover: {events}");
    let dana = t.token("dana-cal", TokenRole::Feed, Some("dana")).await;
    let person =
        t.http.get(t.url(&format!("/api/v1/people/dana.ics?token={dana}"))).send().await.unwrap().text().await.unwrap();
    assert!(person.contains("SUMMARY:On call: Dana Novak (primary)") && !person.contains("Ana Lima"), "{person}");
    assert_eq!(t.http.get(t.url("/api/v1/schedules/primary.ics")).send().await.unwrap().status(), 401);
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    assert_eq!(t.http.get(t.url("/api/v1/schedules/nope.ics")).bearer_auth(&max).send().await.unwrap().status(), 404);
    assert_eq!(t.http.get(t.url("/api/v1/schedules/primary")).bearer_auth(&max).send().await.unwrap().status(), 404);
}
