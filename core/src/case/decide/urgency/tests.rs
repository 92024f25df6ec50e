//! Urgency decided on a fake clock: no store, no sockets.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use crate::case::decide::{Facts, NewCase};
use crate::case::{Actor, Case, CaseNumber, EventKind, PageKind, Status, Timer, TimerKind, Transition, Via};
use crate::escalation::{Overrides, Position};
use crate::people::{ChannelKind, PersonId};
use crate::routing::Urgency;
use crate::rules::Rules;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The shipped rules with the catch-all route (P3, policy standard) given
/// `urgency`. Globex is on the standard plan: the office calendar (London,
/// 09:00-17:30 on weekdays, bank holidays off).
fn rules_with(urgency: Urgency) -> Rules {
    let mut rules = crate::rules::testing::shipped();
    for r in rules.routes.iter_mut().filter(|r| r.matches_all()) {
        r.urgency = urgency;
    }
    rules
}

fn facts<'a>(rules: &'a Rules, o: &'a Overrides, sms_off: &'a BTreeSet<PersonId>, now: &str) -> Facts<'a> {
    Facts { rules, overrides: o, sms_off, now: at(now) }
}

fn slow_dashboard(f: &Facts<'_>) -> Transition {
    let new = NewCase {
        subject: "Slow dashboard loading".into(),
        body: String::new(),
        requester: "it@globex.example".into(),
        priority: None,
        actor: Actor::System,
        via: Via::Email,
        receipt: true,
        unverified: None,
    };
    let mut tr = f.open(new).unwrap();
    tr.case.number = CaseNumber(7);
    tr
}

fn fire(f: &Facts<'_>, case: &Case, kind: TimerKind) -> Transition {
    let timer = Timer { id: 1, case: case.number, kind, due: f.now, position: case.escalation.at };
    f.fire(case, &timer)
}

fn step_pages(tr: &Transition) -> Vec<(Option<Position>, ChannelKind)> {
    tr.pages.iter().filter(|p| p.kind == PageKind::Page).map(|p| (p.position, p.channel)).collect()
}

fn due(tr: &Transition, kind: TimerKind) -> Option<DateTime<Utc>> {
    tr.timers.iter().find(|t| t.kind == kind).map(|t| t.due)
}

/// Opens at `opened`, checks nobody is paged and the hold ends at
/// `working`, then fires the hold there: step 1 pages at once.
fn held_then_paged_at(opened: &str, working: &str) {
    let rules = rules_with(Urgency::WorkingHours);
    let (o, off) = (Overrides::new(), BTreeSet::new());
    let f = facts(&rules, &o, &off, opened);
    let tr = slow_dashboard(&f);
    assert_eq!(tr.case.priority.as_str(), "P3");
    assert!(step_pages(&tr).is_empty(), "nobody is paged at {opened}: {:?}", tr.pages);
    assert_eq!(tr.pages.iter().map(|p| p.kind).collect::<Vec<_>>(), [PageKind::Receipt], "the customer's receipt");
    assert_eq!(tr.case.held_until, Some(at(working)));
    assert_eq!(due(&tr, TimerKind::Hold), Some(at(working)));
    assert_eq!(due(&tr, TimerKind::Step), None);
    assert!(tr.events.iter().any(|e| e.kind == EventKind::Held));
    let f = facts(&rules, &o, &off, working);
    let fired = fire(&f, &tr.case, TimerKind::Hold);
    // Step 1 runs (it pages whoever is on call then; in March the shipped
    // rotations have not started, and it pages nobody).
    let paged: Vec<_> = fired.events.iter().filter(|e| e.kind == EventKind::Paged).map(|e| e.text.as_str()).collect();
    assert!(paged.len() == 1 && paged[0].starts_with("step 1 of policy standard"), "at {working}: {paged:?}");
    assert!(step_pages(&fired).iter().all(|p| p.0 == Some(Position::FIRST)));
    assert_eq!(fired.case.held_until, None);
    assert_eq!(due(&fired, TimerKind::Step), Some(at(working) + rules.policies["standard"].steps[0].wait));
}

#[test]
fn a_working_hours_case_opened_at_two_is_held_until_nine_and_pages_step_one_then() {
    held_then_paged_at("2026-11-24T02:00:00Z", "2026-11-24T09:00:00Z");
}

#[test]
fn a_working_hours_case_opened_on_friday_evening_waits_for_monday() {
    held_then_paged_at("2026-11-27T19:00:00Z", "2026-11-30T09:00:00Z");
}

#[test]
fn a_working_hours_case_waits_over_christmas_and_the_weekend_between() {
    // The 25th is a Friday, the 28th a bank holiday.
    held_then_paged_at("2026-12-24T20:00:00Z", "2026-12-29T09:00:00Z");
}

#[test]
fn a_working_hours_case_is_paged_at_nine_local_across_a_dst_change() {
    // The clocks go forward on Sunday 29 March: 09:00 BST is 08:00 UTC.
    held_then_paged_at("2026-03-29T00:30:00Z", "2026-03-30T08:00:00Z");
    // And back on Sunday 25 October: 09:00 GMT is 09:00 UTC.
    held_then_paged_at("2026-10-24T23:30:00Z", "2026-10-26T09:00:00Z");
}

#[test]
fn a_working_hours_case_inside_working_time_pages_at_once() {
    let rules = rules_with(Urgency::WorkingHours);
    let (o, off) = (Overrides::new(), BTreeSet::new());
    let tr = slow_dashboard(&facts(&rules, &o, &off, "2026-11-24T11:00:00Z"));
    assert_eq!(step_pages(&tr), [(Some(Position::FIRST), ChannelKind::Sms)]);
    assert_eq!(tr.case.held_until, None);
    assert_eq!(due(&tr, TimerKind::Hold), None);
}

#[test]
fn when_working_time_ends_mid_policy_the_next_step_waits_and_the_policy_starts_over() {
    let rules = rules_with(Urgency::WorkingHours);
    let (o, off) = (Overrides::new(), BTreeSet::new());
    let tr = slow_dashboard(&facts(&rules, &o, &off, "2026-11-24T17:10:00Z"));
    assert_eq!(step_pages(&tr).len(), 1);
    // Step 1 waits 30 minutes: 17:40 is after 17:30.
    let f = facts(&rules, &o, &off, "2026-11-24T17:40:00Z");
    let tr = fire(&f, &tr.case, TimerKind::Step);
    assert!(step_pages(&tr).is_empty(), "{:?}", tr.pages);
    assert_eq!(tr.case.held_until, Some(at("2026-11-25T09:00:00Z")));
    assert_eq!(tr.case.escalation.at, Position::FIRST);
    let f = facts(&rules, &o, &off, "2026-11-25T09:00:00Z");
    assert_eq!(step_pages(&fire(&f, &tr.case, TimerKind::Hold)), [(Some(Position::FIRST), ChannelKind::Sms)]);
}

#[test]
fn a_low_case_never_pages_by_sms_whatever_the_channel_order() {
    let rules = rules_with(Urgency::Low);
    let (o, off) = (Overrides::new(), BTreeSet::new());
    let f = facts(&rules, &o, &off, "2026-11-24T02:00:00Z");
    let mut tr = slow_dashboard(&f);
    assert_eq!(tr.case.urgency, Urgency::Low);
    let mut all = tr.pages.clone();
    // Run the whole policy, then let the respond deadline pass (managers).
    let mut now = f.now;
    while tr.case.escalation.running {
        let Some(step) = rules.policies["standard"].step(tr.case.escalation.at) else { break };
        now += step.wait;
        tr = fire(&Facts { now, ..f }, &tr.case, TimerKind::Step);
        all.extend(tr.pages.clone());
    }
    let breach = fire(
        &Facts { now: now + chrono::TimeDelta::days(2), ..f },
        &tr.case,
        TimerKind::Deadline(crate::sla::SlaClock::Respond),
    );
    all.extend(breach.pages);
    let to_people: Vec<_> = all.iter().filter(|p| p.person.is_some()).collect();
    assert!(to_people.iter().filter(|p| p.kind == PageKind::Page).count() >= 2, "{all:?}");
    assert!(to_people.iter().any(|p| p.kind == PageKind::Breach), "{all:?}");
    assert!(to_people.iter().all(|p| p.channel == ChannelKind::Email), "{all:?}");
    // The shipped people all put SMS first: a high case would have used it.
    let high = rules_with(Urgency::High);
    assert_eq!(step_pages(&slow_dashboard(&facts(&high, &o, &off, "2026-11-24T02:00:00Z")))[0].1, ChannelKind::Sms);
}

#[test]
fn a_held_case_raised_to_a_high_urgency_priority_is_paged_at_once() {
    let rules = rules_with(Urgency::WorkingHours);
    let (o, off) = (Overrides::new(), BTreeSet::new());
    let held = slow_dashboard(&facts(&rules, &o, &off, "2026-11-24T02:00:00Z")).case;
    let f = facts(&rules, &o, &off, "2026-11-24T02:20:00Z");
    // P1 routes (when_priority = ["P1"]) to policy urgent at high urgency.
    let tr = f.change(&held, &Actor::System, Via::Api, Some("P1".parse().unwrap()), None).unwrap();
    assert_eq!(tr.case.urgency, Urgency::High);
    assert_eq!(tr.case.held_until, None);
    assert!(tr.cancel.contains(&TimerKind::Hold));
    assert_eq!(step_pages(&tr), [(Some(Position::FIRST), ChannelKind::Sms)]);
    // A change that stays working-hours keeps it held.
    let tr = f.change(&held, &Actor::System, Via::Api, Some("P2".parse().unwrap()), None).unwrap();
    assert!(step_pages(&tr).is_empty());
    assert_eq!(tr.case.held_until, held.held_until);
}

#[test]
fn acknowledging_or_escalating_a_held_case_ends_the_hold() {
    let rules = rules_with(Urgency::WorkingHours);
    let (o, off) = (Overrides::new(), BTreeSet::new());
    let held = slow_dashboard(&facts(&rules, &o, &off, "2026-11-24T02:00:00Z")).case;
    let f = facts(&rules, &o, &off, "2026-11-24T03:00:00Z");
    let acked = f.ack(&held, &"ana".parse().unwrap(), Via::Sms, None).unwrap();
    assert_eq!((acked.case.status, acked.case.held_until), (Status::Acknowledged, None));
    assert!(acked.cancel.contains(&TimerKind::Hold));
    // The stale hold timer then does nothing.
    assert!(fire(&facts(&rules, &o, &off, "2026-11-24T09:00:00Z"), &acked.case, TimerKind::Hold).pages.is_empty());
    // Someone who escalates by hand wants people now: step 1 pages.
    let esc = f.escalate(&held, &Actor::System, Via::Api, None).unwrap();
    assert_eq!(step_pages(&esc), [(Some(Position::FIRST), ChannelKind::Sms)]);
    assert_eq!(esc.case.held_until, None);
}
