//! Holes in coverage (`tocsin check --coverage`): what in the rules would
//! leave a case unanswered in a stretch of time ahead, found before a
//! missed SLA finds it.
//!
//! Pure: the rules, the stored overrides and SMS opt-outs, and `now` come
//! in; the holes come out, each worded for the person who must fix it.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::escalation::{Overrides, Policy, Target};
use crate::people::{ChannelKind, PersonId};
use crate::rules::Rules;
use crate::schedule::{Override, Schedule};

/// One hole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hole {
    /// A schedule some policy pages has nobody on call from `from` to `to`.
    NobodyOnCall {
        schedule: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        /// The policies that page it.
        policies: Vec<String>,
        /// Why: what each layer and the overrides do at `from`.
        why: Vec<String>,
    },
    /// A person no channel reaches.
    Unreachable { person: PersonId, why: String },
    /// A policy step that reaches nobody at any time in the window.
    EmptyStep { policy: String, step: u32, why: String },
    /// A plan whose respond target ends before the policy a route gives its
    /// cases has paged a second person (or the policy never does).
    SlowPolicy {
        plan: String,
        priority: String,
        policy: String,
        respond: TimeDelta,
        /// When the policy pages a second person, if it ever does.
        second: Option<TimeDelta>,
    },
    /// A calendar with no working time in the window.
    ClosedCalendar { calendar: String, plans: Vec<String> },
}

impl Hole {
    /// A short name for the kind of hole, as JSON and the dashboard use it.
    pub fn kind(&self) -> &'static str {
        match self {
            Hole::NobodyOnCall { .. } => "nobody-on-call",
            Hole::Unreachable { .. } => "unreachable",
            Hole::EmptyStep { .. } => "empty-step",
            Hole::SlowPolicy { .. } => "slow-policy",
            Hole::ClosedCalendar { .. } => "closed-calendar",
        }
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn span(d: TimeDelta) -> String {
    let secs = d.num_seconds().max(0);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (h, m, 0) if h > 0 && m == 0 => format!("{h}h"),
        (0, m, 0) => format!("{m}m"),
        (h, m, 0) => format!("{h}h {m}m"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

impl fmt::Display for Hole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hole::NobodyOnCall { schedule, from, to, policies, why } => write!(
                f,
                "schedule {schedule} has nobody on call from {} to {} ({}), yet policy {} pages it: {}; fix: extend \
                 a layer's active window or add an override (`tocsin override add --schedule {schedule} …`)",
                stamp(*from),
                stamp(*to),
                span(*to - *from),
                policies.join(", "),
                why.join("; ")
            ),
            Hole::Unreachable { person, why } => {
                write!(f, "person {person} cannot be paged: {why}")
            }
            Hole::EmptyStep { policy, step, why } => {
                write!(f, "step {step} of policy {policy} reaches nobody in the window: {why}")
            }
            Hole::SlowPolicy { plan, priority, policy, respond, second } => match second {
                Some(second) => write!(
                    f,
                    "plan {plan} {priority}: the respond target is {} but policy {policy} pages a second person only \
                     after {}; fix: shorten the policy's first waits or page two people in its first step",
                    span(*respond),
                    span(*second)
                ),
                None => write!(
                    f,
                    "plan {plan} {priority}: policy {policy} never pages a second person before the respond target \
                     of {} ends; fix: add a step with another target",
                    span(*respond)
                ),
            },
            Hole::ClosedCalendar { calendar, plans } => {
                write!(f, "calendar {calendar} has no working time in the window")?;
                if !plans.is_empty() {
                    write!(f, ", so the clocks of plan {} stand still", plans.join(", "))?;
                }
                write!(f, "; fix its hours or holidays in rules/calendars.toml")
            }
        }
    }
}

/// Every hole from `now` to `now + within`, schedules' holes in time order.
pub fn holes(
    rules: &Rules,
    overrides: &Overrides,
    sms_off: &BTreeSet<PersonId>,
    now: DateTime<Utc>,
    within: TimeDelta,
) -> Vec<Hole> {
    let to = now + within;
    let mut out = Vec::new();
    for (name, _) in rules.schedules.iter().filter(|(n, _)| !paging(rules, n).is_empty()) {
        out.extend(schedule_holes(rules, name, overrides, now, to));
    }
    for person in rules.people.values() {
        if person.reach(sms_off.contains(&person.id), None).is_none() {
            let why = if sms_off.contains(&person.id) && person.channels.contains(&ChannelKind::Sms) {
                "their only channel is SMS and they replied STOP; add \"email\" to their channels".to_owned()
            } else {
                "no channel of theirs has an address; give them a phone or add \"email\" to their channels".to_owned()
            };
            out.push(Hole::Unreachable { person: person.id.clone(), why });
        }
    }
    for policy in rules.policies.values() {
        for (i, step) in policy.steps.iter().enumerate() {
            let mut why = Vec::new();
            let reaches = step.targets.iter().any(|t| reaches(rules, t, overrides, sms_off, now, to, &mut why));
            if !reaches {
                out.push(Hole::EmptyStep { policy: policy.name.clone(), step: i as u32 + 1, why: why.join("; ") });
            }
        }
    }
    out.extend(slow_policies(rules));
    for cal in rules.calendars.values().filter(|c| !c.is_always()) {
        if cal.working_time(now, to) <= TimeDelta::zero() {
            let plans = rules.plans.values().filter(|p| p.calendar == cal.name).map(|p| p.name.clone()).collect();
            out.push(Hole::ClosedCalendar { calendar: cal.name.clone(), plans });
        }
    }
    out
}

/// The policies with a step that pages schedule `name`.
pub fn paging(rules: &Rules, name: &str) -> Vec<String> {
    rules
        .policies
        .values()
        .filter(|p| p.steps.iter().flat_map(|s| &s.targets).any(|t| matches!(t, Target::Schedule(s) if s == name)))
        .map(|p| p.name.clone())
        .collect()
}

/// The stretches from `from` to `to` in which schedule `name` has nobody
/// on call, each with what leaves it empty.
pub fn schedule_holes(
    rules: &Rules,
    name: &str,
    overrides: &Overrides,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Hole> {
    let Some(schedule) = rules.schedules.get(name) else { return Vec::new() };
    let none = Vec::new();
    let these = overrides.get(name).unwrap_or(&none);
    let policies = paging(rules, name);
    schedule
        .spans(these, from, to)
        .into_iter()
        .filter(|(_, _, who)| who.is_none())
        .map(|(start, end, _)| Hole::NobodyOnCall {
            schedule: name.to_owned(),
            from: start,
            to: end,
            policies: policies.clone(),
            why: why_empty(schedule, these, start),
        })
        .collect()
}

/// What each layer and the overrides do at `at`, when nobody is on call.
fn why_empty(schedule: &Schedule, overrides: &[Override], at: DateTime<Utc>) -> Vec<String> {
    let local = at.with_timezone(&schedule.tz);
    let mut why = Vec::new();
    for (i, layer) in schedule.layers.iter().enumerate() {
        let n = i + 1;
        let members: Vec<&str> = layer.members.iter().map(PersonId::as_str).collect();
        let first = schedule.handoff(layer, 0);
        if layer.members.is_empty() {
            why.push(format!("layer {n} has no members"));
        } else if first.is_none_or(|f| f > at) {
            why.push(format!(
                "layer {n} ({}) starts only at {}",
                members.join(", "),
                layer.start.format("%Y-%m-%dT%H:%M")
            ));
        } else if let Some(active) = &layer.active {
            let days: Vec<String> = active.days.iter().map(|d| d.to_string().to_lowercase()).collect();
            why.push(format!(
                "layer {n} ({}) is active only {} {:02}:{:02}-{:02}:{:02} and it is {} there",
                members.join(", "),
                days.join(","),
                active.from / 60,
                active.from % 60,
                active.to / 60,
                active.to % 60,
                local.format("%a %H:%M %Z")
            ));
        }
    }
    if schedule.layers.is_empty() {
        why.push("the schedule has no layers".into());
    }
    let ended: Vec<String> =
        overrides.iter().filter(|o| o.end <= at).map(|o| format!("{} until {}", o.person, stamp(o.end))).collect();
    let later: Vec<String> =
        overrides.iter().filter(|o| o.start > at).map(|o| format!("{} from {}", o.person, stamp(o.start))).collect();
    let mut o = "no override covers it".to_owned();
    if let Some(e) = ended.last() {
        o += &format!(" (the last ended: {e})");
    }
    if let Some(l) = later.first() {
        o += &format!(" (the next: {l})");
    }
    why.push(o);
    why
}

/// Whether `target` reaches a person who can be paged at some time from
/// `from` to `to`; if not, why, added to `why`.
fn reaches(
    rules: &Rules,
    target: &Target,
    overrides: &Overrides,
    sms_off: &BTreeSet<PersonId>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    why: &mut Vec<String>,
) -> bool {
    let can =
        |p: &PersonId| rules.people.get(p).is_some_and(|person| person.reach(sms_off.contains(p), None).is_some());
    match target {
        Target::Person(p) if can(p) => true,
        Target::Person(p) => {
            why.push(format!("person {p} cannot be paged"));
            false
        }
        Target::Managers => {
            let any = rules.managers().any(|m| can(&m.id));
            if !any {
                why.push("no manager can be paged".into());
            }
            any
        }
        Target::Schedule(name) => {
            let Some(schedule) = rules.schedules.get(name) else {
                why.push(format!("schedule {name} is not in the rules"));
                return false;
            };
            let none = Vec::new();
            let spans = schedule.spans(overrides.get(name).unwrap_or(&none), from, to);
            let any = spans.iter().any(|(_, _, who)| who.as_ref().is_some_and(can));
            if !any {
                why.push(format!("nobody who can be paged is on call on schedule {name}"));
            }
            any
        }
    }
}

/// When `policy` first pages a second person, counted from the case
/// opening; `None` if it never does.
pub fn second_person_after(rules: &Rules, policy: &Policy) -> Option<TimeDelta> {
    let mut elapsed = TimeDelta::zero();
    let mut seen_people = BTreeSet::new();
    let mut seen_schedules = BTreeSet::new();
    for step in &policy.steps {
        for t in &step.targets {
            match t {
                Target::Person(p) => {
                    seen_people.insert(p.clone());
                }
                Target::Managers => seen_people.extend(rules.managers().map(|m| m.id.clone())),
                Target::Schedule(s) => {
                    seen_schedules.insert(s.clone());
                }
            }
        }
        if seen_people.len() + seen_schedules.len() >= 2 {
            return Some(elapsed);
        }
        elapsed += step.wait;
    }
    None
}

/// Plans whose respond target ends before the policy a route gives their
/// cases pages a second person.
fn slow_policies(rules: &Rules) -> Vec<Hole> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for route in &rules.routes {
        let Some(policy) = rules.policies.get(&route.policy) else { continue };
        let second = second_person_after(rules, policy);
        let plans: Vec<&str> = match &route.customer {
            Some(c) => rules.customers.iter().filter(|x| &x.name == c).map(|x| x.plan.as_str()).collect(),
            None => rules.plans.keys().map(String::as_str).collect(),
        };
        for plan in plans {
            let Some(targets) = rules.plans.get(plan).and_then(|p| p.priorities.get(&route.priority)) else { continue };
            let key = (plan.to_owned(), route.priority.to_string(), policy.name.clone());
            if second.is_none_or(|s| s >= targets.respond) && seen.insert(key) {
                out.push(Hole::SlowPolicy {
                    plan: plan.to_owned(),
                    priority: route.priority.to_string(),
                    policy: policy.name.clone(),
                    respond: targets.respond,
                    second,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
