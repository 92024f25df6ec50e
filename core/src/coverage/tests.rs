//! Coverage finds the holes planted in small rule sets, and only those.

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::rules::testing::{from_sources, shipped};

const PEOPLE: &str = r#"
[[person]]
id = "ana"
name = "Ana"
email = "ana@example.com"
phone = "+15550100001"
role = "engineer"
channels = ["sms"]

[[person]]
id = "dana"
name = "Dana"
email = "dana@example.com"
phone = "+15550100004"
role = "engineer"
channels = ["sms", "email"]

[[person]]
id = "max"
name = "Max"
email = "max@example.com"
role = "manager"
channels = ["email"]
"#;

/// Days 08:00-20:00 and nights 20:00-07:00: nobody from 07:00 to 08:00.
const SCHEDULES: &str = r#"
[schedule.primary]
timezone = "Europe/London"
[[schedule.primary.layer]]
members = ["ana"]
shift = "1d"
start = "2026-11-02T08:00"
active = { days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], from = "08:00", to = "20:00" }
[[schedule.primary.layer]]
members = ["dana"]
shift = "1d"
start = "2026-11-02T20:00"
active = { days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], from = "20:00", to = "07:00" }
"#;

const SLA: &str = r#"
default_plan = "standard"
[plan.standard]
calendar = "24x7"
P1 = { respond = "30m", update = "1h", resolve = "4h" }
P3 = { respond = "4h", update = "1d", resolve = "3d" }
"#;

const POLICIES: &str = r#"
[policy.urgent]
repeat = 1
[[policy.urgent.step]]
notify = ["schedule:primary"]
wait = "10m"
[[policy.urgent.step]]
notify = ["role:manager"]
wait = "10m"
"#;

const ROUTING: &str = r#"
[[route]]
priority = "P3"
policy = "urgent"
"#;

fn rules(replace: &[(&str, &str)]) -> Rules {
    let mut files = vec![
        ("rules/people.toml", PEOPLE),
        ("rules/schedules.toml", SCHEDULES),
        ("rules/sla.toml", SLA),
        ("rules/policies.toml", POLICIES),
        ("rules/routing.toml", ROUTING),
    ];
    for (name, text) in replace {
        match files.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = text,
            None => files.push((name, text)),
        }
    }
    from_sources(&files).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn on_call_holes(holes: &[Hole]) -> Vec<(String, String, String)> {
    holes
        .iter()
        .filter_map(|h| match h {
            Hole::NobodyOnCall { schedule, from, to, .. } => Some((schedule.clone(), stamp(*from), stamp(*to))),
            _ => None,
        })
        .collect()
}

#[test]
fn a_gap_between_two_layers_active_windows_is_a_hole_with_its_reasons() {
    let r = rules(&[]);
    let found = holes(&r, &Overrides::new(), &BTreeSet::new(), at("2026-11-23T00:00:00Z"), TimeDelta::days(1));
    assert_eq!(
        on_call_holes(&found),
        [("primary".to_owned(), "2026-11-23T07:00:00Z".to_owned(), "2026-11-23T08:00:00Z".to_owned())]
    );
    let text = found[0].to_string();
    assert!(text.contains("policy urgent pages it"), "{text}");
    assert!(text.contains("layer 1 (ana) is active only"), "{text}");
    assert!(text.contains("layer 2 (dana) is active only"), "{text}");
    assert!(text.contains("no override covers it"), "{text}");
    // Nothing else is wrong with these rules.
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn an_override_that_fills_the_gap_removes_the_hole_and_a_short_one_leaves_the_rest() {
    let r = rules(&[]);
    let start = at("2026-11-23T00:00:00Z");
    let fill = |from: &str, to: &str| {
        let mut o = Overrides::new();
        o.insert("primary".into(), vec![Override { person: "dana".parse().unwrap(), start: at(from), end: at(to) }]);
        o
    };
    let full = fill("2026-11-23T06:30:00Z", "2026-11-23T08:00:00Z");
    assert!(on_call_holes(&holes(&r, &full, &BTreeSet::new(), start, TimeDelta::days(1))).is_empty());
    let part = fill("2026-11-23T07:00:00Z", "2026-11-23T07:40:00Z");
    let found = holes(&r, &part, &BTreeSet::new(), start, TimeDelta::days(1));
    assert_eq!(
        on_call_holes(&found),
        [("primary".to_owned(), "2026-11-23T07:40:00Z".to_owned(), "2026-11-23T08:00:00Z".to_owned())]
    );
    assert!(found[0].to_string().contains("the last ended: dana until 2026-11-23T07:40:00Z"), "{}", found[0]);
}

#[test]
fn a_person_whose_only_channel_is_sms_they_stopped_is_unreachable_and_so_is_the_step() {
    let r = rules(&[]);
    let off: BTreeSet<PersonId> = ["ana".parse().unwrap(), "dana".parse().unwrap()].into();
    let found = holes(&r, &Overrides::new(), &off, at("2026-11-23T00:00:00Z"), TimeDelta::days(1));
    let kinds: Vec<&str> = found.iter().map(Hole::kind).collect();
    // Dana falls back to email; Ana has nothing left, and while she is on
    // call the schedule still reaches Dana at night.
    assert_eq!(kinds, ["nobody-on-call", "unreachable"], "{found:#?}");
    assert!(found[1].to_string().contains("ana") && found[1].to_string().contains("STOP"));
    let ana_only = r#"
[schedule.primary]
timezone = "Europe/London"
[[schedule.primary.layer]]
members = ["ana"]
shift = "1d"
start = "2026-11-02T08:00"
"#;
    let r = rules(&[("rules/schedules.toml", ana_only)]);
    let found = holes(&r, &Overrides::new(), &off, at("2026-11-23T00:00:00Z"), TimeDelta::days(1));
    let steps: Vec<String> = found.iter().filter(|h| h.kind() == "empty-step").map(ToString::to_string).collect();
    assert_eq!(steps.len(), 1, "{found:#?}");
    assert!(steps[0].starts_with("step 1 of policy urgent reaches nobody"), "{}", steps[0]);
}

#[test]
fn a_respond_target_shorter_than_the_way_to_a_second_person_is_a_hole() {
    let sla = r#"
default_plan = "standard"
[plan.standard]
calendar = "24x7"
P3 = { respond = "10m", update = "1d", resolve = "3d" }
"#;
    let r = rules(&[("rules/sla.toml", sla)]);
    let found = holes(&r, &Overrides::new(), &BTreeSet::new(), at("2026-11-23T08:00:00Z"), TimeDelta::hours(1));
    assert_eq!(found.iter().map(Hole::kind).collect::<Vec<_>>(), ["slow-policy"], "{found:#?}");
    assert!(
        found[0].to_string().contains("respond target is 10m but policy urgent pages a second person only after 10m")
    );
    let policy = &r.policies["urgent"];
    assert_eq!(second_person_after(&r, policy), Some(TimeDelta::minutes(10)));
}

#[test]
fn a_calendar_with_no_working_time_in_the_window_is_a_hole() {
    let calendars = r#"
[calendar.office]
timezone = "Europe/London"
[calendar.office.hours]
mon = ["09:00-17:00"]
"#;
    let sla = r#"
default_plan = "standard"
[plan.standard]
calendar = "office"
P3 = { respond = "4h", update = "1d", resolve = "3d" }
"#;
    let r = rules(&[("rules/calendars.toml", calendars), ("rules/sla.toml", sla)]);
    let tuesday = at("2026-11-24T08:00:00Z");
    let found = holes(&r, &Overrides::new(), &BTreeSet::new(), tuesday, TimeDelta::days(3));
    let closed: Vec<String> = found.iter().filter(|h| h.kind() == "closed-calendar").map(ToString::to_string).collect();
    assert_eq!(closed.len(), 1, "{found:#?}");
    assert!(closed[0].starts_with("calendar office has no working time") && closed[0].contains("plan standard"));
    let found = holes(&r, &Overrides::new(), &BTreeSet::new(), tuesday, TimeDelta::days(7));
    assert!(!found.iter().any(|h| h.kind() == "closed-calendar"));
}

#[test]
fn the_shipped_rules_have_no_hole_in_their_first_four_weeks() {
    let r = shipped();
    let found = holes(&r, &Overrides::new(), &BTreeSet::new(), at("2026-11-02T09:00:00Z"), TimeDelta::days(28));
    assert!(found.is_empty(), "{}", found.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"));
}
