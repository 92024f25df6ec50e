//! The decisions alone: no clock, no store, no sockets.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use super::*;
use crate::case::TimerKind;

fn rules() -> Rules {
    crate::rules::testing::shipped()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn outage(facts: &Facts<'_>) -> Case {
    let new = NewCase {
        subject: "db down".into(),
        body: String::new(),
        requester: "ops@acme.com".into(),
        priority: None,
        actor: Actor::System,
        via: Via::Api,
        receipt: true,
        unverified: None,
    };
    let mut case = facts.open(new).unwrap().case;
    case.number = CaseNumber(1042);
    case
}

fn timer(case: &Case, kind: TimerKind, position: Position, due: DateTime<Utc>) -> Timer {
    Timer { id: 1, case: case.number, kind, due, position }
}

#[test]
fn opening_routes_sets_deadlines_and_pages_step_one() {
    let rules = rules();
    let o = Overrides::new();
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now: at("2026-11-24T10:00:00Z") };
    let new = NewCase {
        subject: "db down".into(),
        body: String::new(),
        requester: "ops@acme.com".into(),
        priority: None,
        actor: Actor::System,
        via: Via::Api,
        receipt: true,
        unverified: None,
    };
    let tr = facts.open(new).unwrap();
    assert_eq!(tr.case.priority.as_str(), "P1");
    assert_eq!(tr.case.policy, "urgent");
    assert_eq!(tr.case.deadlines.respond, Some(at("2026-11-24T10:30:00Z")));
    let pages: Vec<_> = tr.pages.iter().map(|p| (p.kind, p.person.as_ref().map(|x| x.to_string()))).collect();
    assert_eq!(pages, [(PageKind::Receipt, None), (PageKind::Page, Some("ana".into()))]);
    let step = tr.timers.iter().find(|t| t.kind == TimerKind::Step).unwrap();
    assert_eq!((step.due, step.position), (at("2026-11-24T10:05:00Z"), Position::FIRST));
}

#[test]
fn a_step_timer_for_a_step_already_left_changes_nothing() {
    let rules = rules();
    let o = Overrides::new();
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now: at("2026-11-24T10:00:00Z") };
    let case = outage(&facts);
    let escalated = facts.escalate(&case, &Actor::System, Via::Api, None).unwrap().case;
    let later = Facts { now: at("2026-11-24T10:05:00Z"), ..facts };
    let tr = later.fire(&escalated, &timer(&case, TimerKind::Step, Position::FIRST, at("2026-11-24T10:05:00Z")));
    assert!(tr.pages.is_empty() && tr.events.is_empty() && tr.timers.is_empty());
    assert_eq!(tr.case, escalated);
}

#[test]
fn escalating_past_a_step_twice_is_refused_the_second_time() {
    let rules = rules();
    let o = Overrides::new();
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now: at("2026-11-24T10:00:00Z") };
    let case = outage(&facts);
    let once = facts.escalate(&case, &Actor::System, Via::Api, Some(Position::FIRST)).unwrap().case;
    assert_eq!(once.escalation.at, Position { round: 0, step: 1 });
    let again = facts.escalate(&once, &Actor::System, Via::Api, Some(Position::FIRST));
    assert!(matches!(again, Err(ActionError::AlreadyEscalated { .. })), "{again:?}");
}

#[test]
fn the_policy_stops_after_its_last_repeat() {
    let rules = rules();
    let o = Overrides::new();
    let mut now = at("2026-11-24T10:00:00Z");
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now };
    let mut case = outage(&facts);
    let mut steps = 1;
    loop {
        let step = rules.policies["urgent"].step(case.escalation.at).unwrap();
        now += step.wait;
        let w = Facts { now, ..facts };
        let tr = w.fire(&case, &timer(&case, TimerKind::Step, case.escalation.at, now));
        if tr.events.iter().any(|e| e.kind == EventKind::Exhausted) {
            assert!(!tr.case.escalation.running);
            assert!(tr.timers.iter().all(|t| t.kind != TimerKind::Step));
            break;
        }
        case = tr.case;
        steps += 1;
    }
    assert_eq!(steps, 3 * 3, "three steps, run 1 + repeat 2 times");
}

#[test]
fn a_met_deadline_does_not_breach() {
    let rules = rules();
    let o = Overrides::new();
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now: at("2026-11-24T10:00:00Z") };
    let case = outage(&facts);
    let ana: PersonId = "ana".parse().unwrap();
    let acked = facts.ack(&case, &ana, Via::Sms, None).unwrap();
    assert!(
        acked.cancel.contains(&TimerKind::Deadline(crate::sla::SlaClock::Respond))
            && acked.cancel.contains(&TimerKind::Step)
    );
    let later = Facts { now: at("2026-11-24T10:30:00Z"), ..facts };
    let tr = later.fire(
        &acked.case,
        &timer(&case, TimerKind::Deadline(crate::sla::SlaClock::Respond), Position::FIRST, later.now),
    );
    assert!(tr.events.is_empty() && tr.pages.is_empty());
}

#[test]
fn acknowledging_twice_names_who_was_first() {
    let rules = rules();
    let o = Overrides::new();
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now: at("2026-11-24T10:00:00Z") };
    let case = outage(&facts);
    let acked = facts.ack(&case, &"ana".parse().unwrap(), Via::Sms, None).unwrap().case;
    let err = facts.ack(&acked, &"ben".parse().unwrap(), Via::Sms, None).unwrap_err();
    assert_eq!(err.to_string(), "case #1042 was already acknowledged by ana at 2026-11-24T10:00:00Z");
}

#[test]
fn reopening_resumes_the_resolve_clock_where_it_stopped() {
    let rules = rules();
    let o = Overrides::new();
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now: at("2026-11-24T10:00:00Z") };
    let case = outage(&facts);
    let resolved =
        Facts { now: at("2026-11-24T11:00:00Z"), ..facts }.resolve(&case, &Actor::System, Via::Api, None).unwrap().case;
    let reopened = Facts { now: at("2026-11-25T09:00:00Z"), ..facts }
        .reopen(&resolved, &Actor::System, Via::Email, None)
        .unwrap()
        .case;
    // Gold P1 resolves in 4h; one hour was spent before the resolve.
    assert_eq!(reopened.deadlines.resolve, Some(at("2026-11-25T09:00:00Z") + TimeDelta::hours(3)));
    assert_eq!(reopened.status, Status::Open);
}

#[test]
fn a_warning_fires_once_per_window_even_when_deadlines_are_recomputed() {
    let rules = rules();
    let o = Overrides::new();
    let facts = Facts { rules: &rules, overrides: &o, sms_off: &BTreeSet::new(), now: at("2026-11-24T10:00:00Z") };
    let case = outage(&facts);
    // Gold P1 respond 30m: 50% at 10:15.
    let warn = TimerKind::Warn(crate::sla::SlaClock::Respond, 0);
    let later = Facts { now: at("2026-11-24T10:15:00Z"), ..facts };
    let warned = later.fire(&case, &timer(&case, warn, Position::FIRST, later.now));
    assert_eq!(warned.events.iter().filter(|e| e.kind == EventKind::Warning).count(), 1);
    assert!(warned.case.warned.contains("respond:0"));
    // Raising the window to P2 (2h) moves 50% to 11:00, but this window
    // has had its 50% warning: no timer is set for it again, while 80% is.
    let changed = later.change(&warned.case, &Actor::System, Via::Api, Some("P2".parse().unwrap()), None).unwrap();
    assert!(changed.timers.iter().all(|t| t.kind != warn), "{:?}", changed.timers);
    assert!(changed.timers.iter().any(|t| t.kind == TimerKind::Warn(crate::sla::SlaClock::Respond, 1)));
    let again = later.fire(&changed.case, &timer(&case, warn, Position::FIRST, later.now));
    assert!(again.events.is_empty());
    // A new window (reopen) may warn again.
    let resolved = later.resolve(&changed.case, &Actor::System, Via::Api, None).unwrap().case;
    let reopened = later.reopen(&resolved, &Actor::System, Via::Api, None).unwrap();
    assert!(reopened.timers.iter().any(|t| t.kind == warn));
}
