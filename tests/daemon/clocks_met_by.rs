//! Clocks on what the customer saw (issue 14): on a plan with
//! `respond_met_by = "reply"` an acknowledgement stops the escalation but
//! not the respond clock; only a reply to the customer meets it. Driven by
//! the fake clock.

use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

/// The shipped rules with plan gold (Acme's) measured by replies.
fn reply_measured_rules() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        let mut text = std::fs::read_to_string(f.path()).unwrap();
        if f.file_name() == "sla.toml" {
            text = text
                .replacen("respond_met_by = \"ack\"             #", "respond_met_by = \"reply\"           #", 1)
                .replacen("update_met_by = \"note\"", "update_met_by = \"reply\"", 1);
            assert!(text.contains("respond_met_by = \"reply\""));
        }
        std::fs::write(dir.path().join(f.file_name()), text).unwrap();
    }
    dir
}

fn breaches(case: &Value) -> Vec<String> {
    case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "breach")
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn on_a_reply_measured_plan_an_acknowledged_case_without_a_reply_breaches_respond_and_one_with_a_reply_does_not()
{
    let rules = reply_measured_rules();
    let t = TestApp::spawn_with(Workers::Manual, START, rules.path()).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let ops = t.token("ops", TokenRole::Admin, None).await;
    // Two P1 cases of Acme (gold: respond within 30 minutes).
    let silent = t.open_outage(&ops).await;
    let answered = t.open_outage(&ops).await;
    for n in [silent, answered] {
        let (s, c) = t.post(&format!("/api/v1/cases/{n}/ack"), &ana, json!({})).await;
        assert_eq!(s, 200, "{c}");
        assert_eq!(c["escalation"]["running"], false, "the acknowledgement stops the escalation");
        assert_eq!(c["sla"]["respond"]["met_at"], Value::Null, "but not the respond clock");
        assert_eq!(c["sla"]["respond"]["due"], "2026-11-24T10:30:00Z");
    }
    t.advance(TimeDelta::minutes(10)).await;
    let (s, c) = t.post(&format!("/api/v1/cases/{answered}/replies"), &ana, json!({"text": "On it."})).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["sla"]["respond"]["met_at"], "2026-11-24T10:10:00Z");

    // Past the deadline.
    t.advance(TimeDelta::minutes(21)).await;
    let c = t.get(&format!("/api/v1/cases/{silent}"), &ops).await.1;
    let b = breaches(&c);
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(b[0].starts_with("respond deadline 2026-11-24T10:30:00Z passed: no reply to the customer"), "{b:?}");
    assert_eq!(c["sla"]["respond"]["breached_at"], "2026-11-24T10:30:00Z");
    assert_eq!(c["sla"]["respond"]["met_at"], Value::Null);
    assert_eq!(c["status"], "acknowledged");

    let c = t.get(&format!("/api/v1/cases/{answered}"), &ops).await.1;
    assert!(breaches(&c).is_empty(), "{:?}", breaches(&c));
    assert_eq!(c["sla"]["respond"]["breached_at"], Value::Null);
    assert_eq!(c["sla"]["respond"]["met_at"], "2026-11-24T10:10:00Z");
}

#[tokio::test]
async fn on_the_shipped_plans_the_acknowledgement_meets_the_respond_clock_as_before() {
    let t = TestApp::spawn(Workers::Manual).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let ops = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&ops).await;
    t.advance(TimeDelta::minutes(3)).await;
    let (_, c) = t.post(&format!("/api/v1/cases/{n}/ack"), &ana, json!({})).await;
    assert_eq!(c["sla"]["respond"]["met_at"], "2026-11-24T10:03:00Z");
    assert_eq!(c["sla"]["resolve"]["due"], "2026-11-24T14:00:00Z");
    // A note meets the update clock on a "note" plan.
    t.advance(TimeDelta::minutes(7)).await;
    let (_, c) = t.post(&format!("/api/v1/cases/{n}/notes"), &ana, json!({"text": "db restarting"})).await;
    assert_eq!(c["sla"]["update"]["met_at"], "2026-11-24T10:10:00Z");
    assert_eq!(c["sla"]["update"]["due"], "2026-11-24T11:10:00Z");
    t.advance(TimeDelta::minutes(59)).await;
    let c = t.get(&format!("/api/v1/cases/{n}"), &ops).await.1;
    assert!(breaches(&c).is_empty(), "{:?}", breaches(&c));
}
