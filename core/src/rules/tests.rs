//! Each kind of mistake in the rules gives its file, its line and a fix.

use super::testing::{from_sources, shipped};
use super::*;

const PEOPLE: &str = r#"
[[person]]
id = "ana"
name = "Ana"
email = "ana@example.com"
phone = "+15550100001"
role = "engineer"
channels = ["sms", "email"]

[[person]]
id = "max"
name = "Max"
email = "max@example.com"
role = "manager"
channels = ["email"]
"#;

const SCHEDULES: &str = r#"
[schedule.primary]
timezone = "Europe/London"
[[schedule.primary.layer]]
members = ["ana"]
shift = "1w"
start = "2026-11-02T09:00"
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
wait = "5m"
"#;

const ROUTING: &str = r#"
[[route]]
priority = "P3"
policy = "urgent"
"#;

fn with(file: &str, text: &str) -> Vec<String> {
    let mut files = vec![
        ("rules/people.toml", PEOPLE),
        ("rules/schedules.toml", SCHEDULES),
        ("rules/sla.toml", SLA),
        ("rules/policies.toml", POLICIES),
        ("rules/routing.toml", ROUTING),
    ];
    match files.iter_mut().find(|(name, _)| *name == file) {
        Some(entry) => entry.1 = text,
        None => files.push((file, text)),
    }
    match from_sources(&files) {
        Ok(_) => vec![],
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn one_error(file: &str, text: &str) -> String {
    let errors = with(file, text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.into_iter().next().unwrap_or_default()
}

#[test]
fn the_shipped_rules_folder_is_valid() {
    let rules = shipped();
    assert!(rules.people.len() >= 4);
    assert!(rules.routes.last().is_some_and(Route::matches_all));
}

#[test]
fn the_minimal_set_used_here_is_valid() {
    assert_eq!(with("rules/extra.toml", ""), Vec::<String>::new());
}

#[test]
fn a_step_naming_an_unknown_schedule_names_file_line_and_choices() {
    let text = "[policy.urgent]\n[[policy.urgent.step]]\nnotify = [\"schedule:primary\"]\nwait = \"5m\"\n[[policy.urgent.step]]\nnotify = [\"schedule:dba\"]\nwait = \"5m\"\n";
    assert_eq!(
        one_error("rules/policies.toml", text),
        "rules/policies.toml:6: step 2 notifies unknown schedule \"dba\": define [schedule.dba] in rules/schedules.toml or use one of: primary"
    );
}

#[test]
fn a_step_naming_an_unknown_person_is_refused() {
    let text = "[policy.urgent]\n[[policy.urgent.step]]\nnotify = [\"person:zoe\"]\nwait = \"5m\"\n";
    let e = one_error("rules/policies.toml", text);
    assert!(e.starts_with("rules/policies.toml:3: step 1 notifies unknown person \"zoe\""), "{e}");
}

#[test]
fn a_toml_syntax_error_names_its_line() {
    let e = one_error("rules/sla.toml", "default_plan = \"standard\"\n[plan.standard\n");
    assert!(e.starts_with("rules/sla.toml:2:"), "{e}");
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let text = format!(
        "{PEOPLE}\n[[person]]\nid = \"zed\"\nname = \"Zed\"\nemail = \"z@example.com\"\nrole = \"engineer\"\npager = \"yes\"\n"
    );
    let e = one_error("rules/people.toml", &text);
    assert!(e.starts_with("rules/people.toml:") && e.contains("unknown field `pager`"), "{e}");
}

#[test]
fn bad_people_values_are_each_reported() {
    let text = "[[person]]\nid = \"Ana Lima\"\nname = \"A\"\nemail = \"a@example.com\"\nrole = \"engineer\"\n\n[[person]]\nid = \"ana\"\nname = \"Ana\"\nemail = \"not-an-address\"\nphone = \"555-0100\"\ntimezone = \"Europe/Londn\"\nrole = \"boss\"\nchannels = [\"pager\"]\n[[person]]\nid = \"max\"\nname = \"Max\"\nemail = \"max@example.com\"\nrole = \"manager\"\n";
    let errors = with("rules/people.toml", text);
    let expect = [
        "rules/people.toml:2: person id \"Ana Lima\"",
        "rules/people.toml:10: person ana: email \"not-an-address\"",
        "rules/people.toml:11: person ana: phone \"555-0100\" is not in E.164 form",
        "rules/people.toml:12: person ana: unknown time zone \"Europe/Londn\"",
        "rules/people.toml:13: person ana: unknown role \"boss\"",
        "rules/people.toml:14: person ana: unknown channel \"pager\"",
    ];
    for want in expect {
        assert!(errors.iter().any(|e| e.starts_with(want)), "missing {want:?} in {errors:#?}");
    }
}

#[test]
fn sms_without_a_phone_is_refused() {
    let text = "[[person]]\nid = \"ana\"\nname = \"Ana\"\nemail = \"a@example.com\"\nrole = \"engineer\"\nchannels = [\"sms\"]\n[[person]]\nid = \"max\"\nname = \"Max\"\nemail = \"max@example.com\"\nrole = \"manager\"\n";
    let e = one_error("rules/people.toml", text);
    assert!(e.contains("pages by sms but has no phone"), "{e}");
}

#[test]
fn a_plan_on_an_unknown_calendar_is_refused() {
    let text = "default_plan = \"standard\"\n[plan.standard]\ncalendar = \"office\"\nP3 = { respond = \"4h\", update = \"1d\", resolve = \"3d\" }\nP1 = { respond = \"4h\", update = \"1d\", resolve = \"3d\" }\n";
    let e = one_error("rules/sla.toml", text);
    assert!(e.starts_with("rules/sla.toml:3: plan standard: unknown calendar \"office\""), "{e}");
}

#[test]
fn a_bad_duration_names_the_plan_and_priority() {
    let text = "default_plan = \"standard\"\n[plan.standard]\ncalendar = \"24x7\"\nP3 = { respond = \"four hours\", update = \"1d\", resolve = \"3d\" }\nP1 = { respond = \"4h\", update = \"1d\", resolve = \"3d\" }\n";
    let e = one_error("rules/sla.toml", text);
    assert!(e.starts_with("rules/sla.toml:4: plan standard P3: respond \"four hours\" is not a duration"), "{e}");
}

#[test]
fn a_customer_on_an_unknown_plan_is_refused() {
    let text = format!("{SLA}\n[[customer]]\nname = \"Acme\"\ndomains = [\"acme.com\"]\nplan = \"platinum\"\n");
    let e = one_error("rules/sla.toml", &text);
    assert!(e.contains(":11: customer Acme: unknown plan \"platinum\""), "{e}");
}

#[test]
fn a_domain_owned_twice_is_refused() {
    let text = format!(
        "{SLA}\n[[customer]]\nname = \"Acme\"\ndomains = [\"acme.com\"]\nplan = \"standard\"\n[[customer]]\nname = \"Acme2\"\ndomains = [\"ACME.com\"]\nplan = \"standard\"\n"
    );
    let e = one_error("rules/sla.toml", &text);
    assert!(e.contains("domain acme.com already belongs to customer Acme"), "{e}");
}

#[test]
fn a_route_to_an_unknown_policy_or_priority_is_refused() {
    let e = one_error("rules/routing.toml", "[[route]]\npriority = \"P3\"\npolicy = \"nope\"\n");
    assert!(e.starts_with("rules/routing.toml:3: route 1: unknown policy \"nope\""), "{e}");
    let e = one_error("rules/routing.toml", "[[route]]\npriority = \"P2\"\npolicy = \"urgent\"\n");
    assert!(e.starts_with("rules/routing.toml:2: route 1: priority P2 is not defined in plan standard"), "{e}");
}

#[test]
fn a_bad_subject_pattern_is_refused() {
    let e = one_error(
        "rules/routing.toml",
        "[[route]]\nsubject = \"(unclosed\"\npriority = \"P1\"\npolicy = \"urgent\"\n[[route]]\npriority = \"P3\"\npolicy = \"urgent\"\n",
    );
    assert!(e.starts_with("rules/routing.toml:2: route 1: subject is not a valid regular expression"), "{e}");
}

#[test]
fn routing_must_end_with_a_catch_all() {
    let e = one_error("rules/routing.toml", "[[route]]\nsubject = \"down\"\npriority = \"P1\"\npolicy = \"urgent\"\n");
    assert!(e.contains("the last route has conditions"), "{e}");
}

#[test]
fn schedule_mistakes_are_each_reported() {
    let text = "[schedule.primary]\ntimezone = \"Mars/Olympus\"\n[[schedule.primary.layer]]\nmembers = []\nshift = \"0s\"\nstart = \"next monday\"\n";
    let errors = with("rules/schedules.toml", text);
    for want in [
        "rules/schedules.toml:2: schedule primary: unknown time zone",
        "rules/schedules.toml:4: schedule primary layer 1: members is empty",
        "rules/schedules.toml:5: schedule primary layer 1: shift must be at least 1m",
        "rules/schedules.toml:6: schedule primary layer 1: start \"next monday\"",
    ] {
        assert!(errors.iter().any(|e| e.starts_with(want)), "missing {want:?} in {errors:#?}");
    }
}

#[test]
fn calendar_mistakes_are_each_reported() {
    let text = "[calendar.office]\ntimezone = \"Europe/London\"\nholidays = [\"25/12\"]\n[calendar.office.hours]\nmon = [\"09:00-17:30\", \"17:00-18:00\"]\ntue = [\"9-5\"]\n";
    let errors = with("rules/calendars.toml", text);
    for want in [
        "rules/calendars.toml:3: calendar office: holiday \"25/12\"",
        "rules/calendars.toml:6: calendar office: range \"9-5\"",
        "rules/calendars.toml:1: calendar \"office\" has overlapping ranges around mon 17:00",
    ] {
        assert!(errors.iter().any(|e| e.starts_with(want)), "missing {want:?} in {errors:#?}");
    }
}

#[test]
fn warning_fractions_must_ascend_within_zero_and_one() {
    let e = one_error("rules/extra.toml", "warn_at = [0.8, 0.5]\n");
    assert!(e.starts_with("rules/extra.toml:1: warn_at must list"), "{e}");
    let e = one_error("rules/extra.toml", "warn_at = [0.5, 1.0]\n");
    assert!(e.starts_with("rules/extra.toml:1: warn_at must list"), "{e}");
    assert_eq!(with("rules/extra.toml", "warn_at = [0.5, 0.8]\n"), Vec::<String>::new());
}

#[test]
fn a_holiday_feed_that_cannot_be_read_names_its_line() {
    let text = "[calendar.office]\ntimezone = \"Europe/London\"\nholidays_ics = [\"nope.ics\"]\n[calendar.office.hours]\nmon = [\"09:00-17:00\"]\n";
    let e = one_error("rules/calendars.toml", text);
    assert!(e.starts_with("rules/calendars.toml:3: calendar office: holidays_ics: cannot read rules/nope.ics"), "{e}");
}

#[test]
fn the_shipped_holiday_feed_closes_the_office_on_2027_bank_holidays() {
    let rules = shipped();
    let office = &rules.calendars["office"];
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    // Thursday 25 March 2027 17:00; Good Friday and Easter Monday are off.
    let due = office.deadline(at("2027-03-25T17:00:00Z"), chrono::TimeDelta::hours(1)).unwrap();
    assert_eq!(due, at("2027-03-30T09:30:00+01:00"));
}

// --- issue 14: what meets the clocks ---

use crate::sla::{RespondMetBy, UpdateMetBy};

#[test]
fn what_meets_the_clocks_is_read_per_plan_and_bad_values_name_their_line() {
    let text = "default_plan = \"standard\"\n[plan.standard]\ncalendar = \"24x7\"\nrespond_met_by = \"reply\"\nupdate_met_by = \"reply\"\nP3 = { respond = \"4h\", update = \"1d\", resolve = \"3d\" }\nP1 = { respond = \"4h\", update = \"1d\", resolve = \"3d\" }\n";
    let rules = from_sources(&[
        ("rules/people.toml", PEOPLE),
        ("rules/schedules.toml", SCHEDULES),
        ("rules/sla.toml", text),
        ("rules/policies.toml", POLICIES),
        ("rules/routing.toml", ROUTING),
    ])
    .unwrap_or_else(|e| panic!("{e:?}"));
    let plan = &rules.plans["standard"];
    assert_eq!((plan.respond_met_by, plan.update_met_by), (RespondMetBy::Reply, UpdateMetBy::Reply));
    let defaults = shipped();
    assert!(defaults.plans.values().any(|p| p.respond_met_by == RespondMetBy::Ack));

    let bad = text
        .replace("respond_met_by = \"reply\"", "respond_met_by = \"answer\"")
        .replace("update_met_by = \"reply\"", "update_met_by = 3");
    let errors = with("rules/sla.toml", &bad);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("rules/sla.toml:4: plan standard: respond_met_by must be \"ack\" or \"reply\"")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("rules/sla.toml:5: plan standard: update_met_by must be \"note\" or \"reply\"")),
        "{errors:?}"
    );

    let told = text.replace("update_met_by = \"reply\"", "tell_customer = [\"resolve\"]");
    let rules = from_sources(&[
        ("rules/people.toml", PEOPLE),
        ("rules/schedules.toml", SCHEDULES),
        ("rules/sla.toml", &told),
        ("rules/policies.toml", POLICIES),
        ("rules/routing.toml", ROUTING),
    ])
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!((rules.plans["standard"].tell_ack, rules.plans["standard"].tell_resolve), (false, true));
    let bad = text.replace("update_met_by = \"reply\"", "tell_customer = [\"ack\", \"close\"]");
    let errors = with("rules/sla.toml", &bad);
    let want = "rules/sla.toml:5: plan standard: tell_customer must be a list of \"ack\" and \"resolve\"";
    assert!(errors.iter().any(|e| e.starts_with(want)), "{errors:?}");
}

#[test]
fn a_route_urgency_is_read_and_a_bad_one_names_file_and_line() {
    let e = one_error("rules/routing.toml", "[[route]]\npriority = \"P1\"\npolicy = \"urgent\"\nurgency = \"night\"\n");
    assert!(e.starts_with("rules/routing.toml:4: route 1: unknown urgency \"night\""), "{e}");
    assert!(e.contains("\"working-hours\""), "{e}");
}

#[test]
fn a_route_urgency_defaults_to_high() {
    let routing = "[[route]]\nwhen_priority = [\"P1\"]\npriority = \"P1\"\npolicy = \"urgent\"\n\n[[route]]\npriority = \"P3\"\npolicy = \"urgent\"\nurgency = \"working-hours\"\n";
    let files = [
        ("rules/people.toml", PEOPLE),
        ("rules/schedules.toml", SCHEDULES),
        ("rules/sla.toml", SLA),
        ("rules/policies.toml", POLICIES),
        ("rules/routing.toml", routing),
    ];
    let rules = from_sources(&files).unwrap();
    let urgencies: Vec<_> = rules.routes.iter().map(|r| r.urgency).collect();
    assert_eq!(urgencies, [crate::routing::Urgency::High, crate::routing::Urgency::WorkingHours]);
}
