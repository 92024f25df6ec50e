//! From the raw files to [`Rules`]: every reference resolved, every value
//! parsed, every mistake reported with its place and its fix.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use chrono::{NaiveDateTime, TimeDelta, Weekday};
use chrono_tz::Tz;
use regex::Regex;

use super::raw::{self, S};
use super::{Diagnostic, Rules, Source};
use crate::calendar::{self, Calendar, Holiday};
use crate::escalation::{Policy, Step, Target};
use crate::people::{ChannelKind, Person, PersonId, PhoneNumber, Role};
use crate::routing::{Route, Urgency};
use crate::schedule::{Active, Layer, Schedule};
use crate::sla::{Customer, Plan, Priority, RespondMetBy, Targets, UpdateMetBy};

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// Collects diagnostics while the rules are built.
struct Check<'a> {
    sources: &'a [Source],
    read: &'a dyn Fn(&Path) -> Result<String, String>,
    errors: Vec<Diagnostic>,
}

impl Check<'_> {
    fn err(&mut self, file: usize, span: Range<usize>, message: impl Into<String>) {
        let src = &self.sources[file];
        self.errors.push(Diagnostic { file: src.path.clone(), line: src.line(span), message: message.into() });
    }
}

/// Parses a humantime duration such as `"15m"`.
pub(crate) fn duration(s: &str) -> Result<TimeDelta, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}): write it like \"90s\", \"15m\", \"2h\" or \"1d\""))?;
    TimeDelta::from_std(d).map_err(|_| format!("{s:?} is too long a duration"))
}

fn zone(s: &str) -> Result<Tz, String> {
    s.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {s:?}: use an IANA name such as \"Europe/London\" or \"America/New_York\"")
    })
}

fn list(names: impl Iterator<Item = impl AsRef<str>>) -> String {
    let all: Vec<String> = names.map(|n| n.as_ref().to_owned()).collect();
    if all.is_empty() { "(none defined)".into() } else { all.join(", ") }
}

pub(super) fn build(
    sources: &[Source],
    read: &dyn Fn(&Path) -> Result<String, String>,
) -> Result<Rules, Vec<Diagnostic>> {
    let mut c = Check { sources, read, errors: Vec::new() };
    let mut files = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        match toml::from_str::<raw::File>(&src.text) {
            Ok(f) => files.push((i, f)),
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let msg = e.message().trim().to_owned();
                let hint = if msg.contains("unknown field") {
                    "; see the shipped rules/ for the keys each table takes"
                } else {
                    ""
                };
                c.err(i, span, format!("{msg}{hint}"));
            }
        }
    }

    // A file that does not parse would make every name it defines look
    // unknown elsewhere; report the syntax first.
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    let people = people(&mut c, &files);
    let calendars = calendars(&mut c, &files);
    let schedules = schedules(&mut c, &files, &people);
    let plans = plans(&mut c, &files, &calendars);
    let default_plan = default_plan(&mut c, &files, &plans);
    let customers = customers(&mut c, &files, &plans);
    let policies = policies(&mut c, &files, &people, &schedules);
    let routes = routes(&mut c, &files, &plans, &customers, &policies);
    let warn_at = warn_at(&mut c, &files);

    if c.errors.is_empty() {
        Ok(Rules {
            people,
            calendars,
            schedules,
            plans,
            default_plan: default_plan.unwrap_or_default(),
            customers,
            policies,
            routes,
            warn_at,
        })
    } else {
        Err(c.errors)
    }
}

fn people(c: &mut Check<'_>, files: &[(usize, raw::File)]) -> BTreeMap<PersonId, Person> {
    let mut out = BTreeMap::new();
    for (f, file) in files {
        for entry in &file.person {
            let p = entry.get_ref();
            let id = match p.id.get_ref().parse::<PersonId>() {
                Ok(id) => id,
                Err(e) => {
                    c.err(*f, p.id.span(), e);
                    continue;
                }
            };
            if out.contains_key(&id) {
                c.err(
                    *f,
                    p.id.span(),
                    format!("person \"{id}\" is defined twice: give each person one [[person]] entry"),
                );
                continue;
            }
            let email = p.email.get_ref().trim().to_owned();
            if !email_address::EmailAddress::is_valid(&email) {
                c.err(
                    *f,
                    p.email.span(),
                    format!("person {id}: email {email:?} is not an address like \"ana@example.com\""),
                );
            }
            let phone = match &p.phone {
                Some(ph) => match ph.get_ref().parse::<PhoneNumber>() {
                    Ok(n) => Some(n),
                    Err(e) => {
                        c.err(*f, ph.span(), format!("person {id}: {e}"));
                        None
                    }
                },
                None => None,
            };
            let timezone = match &p.timezone {
                Some(tz) => zone(tz.get_ref()).unwrap_or_else(|e| {
                    c.err(*f, tz.span(), format!("person {id}: {e}"));
                    Tz::UTC
                }),
                None => Tz::UTC,
            };
            let role = match p.role.get_ref().as_str() {
                "engineer" => Role::Engineer,
                "manager" => Role::Manager,
                "admin" => Role::Admin,
                other => {
                    c.err(
                        *f,
                        p.role.span(),
                        format!("person {id}: unknown role {other:?}: use \"engineer\", \"manager\" or \"admin\""),
                    );
                    Role::Engineer
                }
            };
            let mut channels = Vec::new();
            match &p.channels {
                None => channels.push(if phone.is_some() { ChannelKind::Sms } else { ChannelKind::Email }),
                Some(list) => {
                    for ch in list.get_ref() {
                        match ch.get_ref().parse::<ChannelKind>() {
                            Ok(k) if channels.contains(&k) => {
                                c.err(*f, ch.span(), format!("person {id}: channel {:?} is listed twice", k.as_str()))
                            }
                            Ok(k) => channels.push(k),
                            Err(e) => c.err(*f, ch.span(), format!("person {id}: {e}")),
                        }
                    }
                    if list.get_ref().is_empty() {
                        c.err(
                            *f,
                            list.span(),
                            format!("person {id}: channels is empty: list at least one of \"sms\", \"email\""),
                        );
                    }
                }
            }
            if channels.contains(&ChannelKind::Sms) && phone.is_none() && p.phone.is_none() {
                c.err(
                    *f,
                    entry.span(),
                    format!(
                        "person {id}: pages by sms but has no phone: add phone = \"+…\" or remove \"sms\" from channels"
                    ),
                );
            }
            let name = p.name.get_ref().trim().to_owned();
            if name.is_empty() {
                c.err(*f, p.name.span(), format!("person {id}: name is empty"));
            }
            out.insert(id.clone(), Person { id, name, email, phone, timezone, role, channels });
        }
    }
    out
}

fn calendars(c: &mut Check<'_>, files: &[(usize, raw::File)]) -> BTreeMap<String, Calendar> {
    let mut out = BTreeMap::new();
    out.insert("24x7".to_owned(), Calendar::always());
    for (f, file) in files {
        for (name, entry) in &file.calendar {
            let cal = entry.get_ref();
            if out.contains_key(name) {
                let why = if name == "24x7" { "is built in" } else { "is defined twice" };
                c.err(*f, entry.span(), format!("calendar {name:?} {why}: choose another name"));
                continue;
            }
            let tz = zone(cal.timezone.get_ref()).unwrap_or_else(|e| {
                c.err(*f, cal.timezone.span(), format!("calendar {name}: {e}"));
                Tz::UTC
            });
            let mut week: [Vec<calendar::Range>; 7] = Default::default();
            for (day, ranges) in &cal.hours {
                let Some(idx) = WEEKDAYS.iter().position(|(d, _)| d == day) else {
                    c.err(
                        *f,
                        ranges.span(),
                        format!("calendar {name}: unknown weekday {day:?}: use mon, tue, wed, thu, fri, sat or sun"),
                    );
                    continue;
                };
                for r in ranges.get_ref() {
                    match calendar::Range::parse(r.get_ref()) {
                        Ok(range) => week[idx].push(range),
                        Err(e) => c.err(*f, r.span(), format!("calendar {name}: {e}")),
                    }
                }
            }
            let mut holidays = BTreeSet::new();
            for h in &cal.holidays {
                match Holiday::parse(h.get_ref()) {
                    Ok(day) => {
                        holidays.insert(day);
                    }
                    Err(e) => c.err(*f, h.span(), format!("calendar {name}: {e}")),
                }
            }
            for file in &cal.holidays_ics {
                let dir = c.sources[*f].path.parent().map(|p| p.to_owned()).unwrap_or_default();
                let path = dir.join(file.get_ref());
                let days =
                    (c.read)(&path).map_err(|e| format!("cannot read {} ({e})", path.display())).and_then(|text| {
                        calendar::holidays_from_ics(&text).map_err(|e| format!("{}: {e}", path.display()))
                    });
                match days {
                    Ok(days) => holidays.extend(days.into_iter().map(Holiday::Date)),
                    Err(e) => c.err(*f, file.span(), format!("calendar {name}: holidays_ics: {e}")),
                }
            }
            match Calendar::business(name, tz, week, holidays) {
                Ok(cal) => {
                    out.insert(name.clone(), cal);
                }
                Err(e) => c.err(*f, entry.span(), e),
            }
        }
    }
    out
}

fn schedules(
    c: &mut Check<'_>,
    files: &[(usize, raw::File)],
    people: &BTreeMap<PersonId, Person>,
) -> BTreeMap<String, Schedule> {
    let mut out = BTreeMap::new();
    for (f, file) in files {
        for (name, entry) in &file.schedule {
            let s = entry.get_ref();
            if out.contains_key(name) {
                c.err(*f, entry.span(), format!("schedule {name:?} is defined twice"));
                continue;
            }
            let tz = zone(s.timezone.get_ref()).unwrap_or_else(|e| {
                c.err(*f, s.timezone.span(), format!("schedule {name}: {e}"));
                Tz::UTC
            });
            if s.layer.is_empty() {
                c.err(
                    *f,
                    entry.span(),
                    format!(
                        "schedule {name} has no layers: add a [[schedule.{name}.layer]] with members, shift and start"
                    ),
                );
            }
            let mut layers = Vec::new();
            for (n, l) in s.layer.iter().enumerate() {
                let l = l.get_ref();
                let at = format!("schedule {name} layer {}", n + 1);
                let mut members = Vec::new();
                for m in l.members.get_ref() {
                    match m.get_ref().parse::<PersonId>() {
                        Ok(id) if people.contains_key(&id) => members.push(id),
                        Ok(id) => c.err(
                            *f,
                            m.span(),
                            format!(
                                "{at}: unknown person \"{id}\": add them to rules/people.toml or use one of: {}",
                                list(people.keys())
                            ),
                        ),
                        Err(e) => c.err(*f, m.span(), format!("{at}: {e}")),
                    }
                }
                if l.members.get_ref().is_empty() {
                    c.err(*f, l.members.span(), format!("{at}: members is empty: list at least one person"));
                }
                let shift = match duration(l.shift.get_ref()) {
                    Ok(d) if d >= TimeDelta::minutes(1) => d,
                    Ok(_) => {
                        c.err(*f, l.shift.span(), format!("{at}: shift must be at least 1m"));
                        TimeDelta::days(1)
                    }
                    Err(e) => {
                        c.err(*f, l.shift.span(), format!("{at}: shift {e}"));
                        TimeDelta::days(1)
                    }
                };
                let start = NaiveDateTime::parse_from_str(l.start.get_ref(), "%Y-%m-%dT%H:%M")
                    .or_else(|_| NaiveDateTime::parse_from_str(l.start.get_ref(), "%Y-%m-%dT%H:%M:%S"));
                let start = start.unwrap_or_else(|_| {
                    c.err(*f, l.start.span(), format!("{at}: start {:?} is not a local date and time: write it like \"2026-11-02T09:00\" (wall clock in {})", l.start.get_ref(), s.timezone.get_ref()));
                    NaiveDateTime::default()
                });
                let active = l.active.as_ref().and_then(|a| active(c, *f, &at, a));
                layers.push(Layer { members, shift, start, active });
            }
            out.insert(name.clone(), Schedule { name: name.clone(), tz, layers });
        }
    }
    out
}

fn active(c: &mut Check<'_>, f: usize, at: &str, a: &S<raw::Active>) -> Option<Active> {
    let raw = a.get_ref();
    let mut days = Vec::new();
    for d in &raw.days {
        match WEEKDAYS.iter().find(|(n, _)| *n == d.get_ref().as_str()) {
            Some((_, w)) => days.push(*w),
            None => c.err(
                f,
                d.span(),
                format!("{at}: active day {:?} is not one of mon, tue, wed, thu, fri, sat, sun", d.get_ref()),
            ),
        }
    }
    if raw.days.is_empty() {
        c.err(f, a.span(), format!("{at}: active.days is empty: list the days the window starts on"));
    }
    let mut clock = |v: &S<String>| {
        calendar::parse_clock(v.get_ref()).filter(|m| *m < 24 * 60).or_else(|| {
            c.err(
                f,
                v.span(),
                format!("{at}: {:?} is not a time of day: write \"HH:MM\" from 00:00 to 23:59", v.get_ref()),
            );
            None
        })
    };
    let (from, to) = (clock(&raw.from)?, clock(&raw.to)?);
    if from == to {
        c.err(
            f,
            a.span(),
            format!("{at}: active window is empty (from equals to): drop `active` for an all-day layer"),
        );
        return None;
    }
    Some(Active { days, from, to })
}

fn plans(
    c: &mut Check<'_>,
    files: &[(usize, raw::File)],
    calendars: &BTreeMap<String, Calendar>,
) -> BTreeMap<String, Plan> {
    let mut out = BTreeMap::new();
    for (f, file) in files {
        for (name, entry) in &file.plan {
            if out.contains_key(name) {
                c.err(*f, entry.span(), format!("plan {name:?} is defined twice"));
                continue;
            }
            let mut calendar = None;
            let mut priorities = BTreeMap::new();
            let (mut respond_met_by, mut update_met_by) = (RespondMetBy::default(), UpdateMetBy::default());
            let (mut tell_ack, mut tell_resolve) = (false, false);
            for (key, value) in entry.get_ref() {
                if key == "tell_customer" {
                    let events: Option<Vec<&str>> =
                        value.get_ref().as_array().and_then(|a| a.iter().map(toml::Value::as_str).collect());
                    match events {
                        Some(events) if events.iter().all(|e| matches!(*e, "ack" | "resolve")) => {
                            tell_ack = events.contains(&"ack");
                            tell_resolve = events.contains(&"resolve");
                        }
                        _ => c.err(
                            *f,
                            value.span(),
                            format!("plan {name}: tell_customer must be a list of \"ack\" and \"resolve\", e.g. tell_customer = [\"ack\", \"resolve\"]"),
                        ),
                    }
                    continue;
                }
                if key == "respond_met_by" {
                    match value.get_ref().as_str().and_then(RespondMetBy::parse) {
                        Some(by) => respond_met_by = by,
                        None => c.err(
                            *f,
                            value.span(),
                            format!("plan {name}: respond_met_by must be \"ack\" or \"reply\" (what stops the respond clock)"),
                        ),
                    }
                    continue;
                }
                if key == "update_met_by" {
                    match value.get_ref().as_str().and_then(UpdateMetBy::parse) {
                        Some(by) => update_met_by = by,
                        None => c.err(
                            *f,
                            value.span(),
                            format!(
                                "plan {name}: update_met_by must be \"note\" or \"reply\" (what meets the update clock)"
                            ),
                        ),
                    }
                    continue;
                }
                if key == "calendar" {
                    match value.get_ref().as_str() {
                        Some(cal) if calendars.contains_key(cal) => calendar = Some(cal.to_owned()),
                        Some(cal) => c.err(
                            *f,
                            value.span(),
                            format!(
                                "plan {name}: unknown calendar {cal:?}: define [calendar.{cal}] or use one of: {}",
                                list(calendars.keys())
                            ),
                        ),
                        None => c.err(*f, value.span(), format!("plan {name}: calendar must be a name in quotes")),
                    }
                    continue;
                }
                let priority = match key.parse::<Priority>() {
                    Ok(p) => p,
                    Err(e) => {
                        c.err(*f, value.span(), format!("plan {name}: {e}"));
                        continue;
                    }
                };
                let targets: Result<raw::Targets, _> = value.get_ref().clone().try_into();
                let targets = match targets {
                    Ok(t) => t,
                    Err(e) => {
                        c.err(*f, value.span(), format!("plan {name} {priority}: {} (write {{ respond = \"30m\", update = \"1h\", resolve = \"4h\" }})", e.message().trim()));
                        continue;
                    }
                };
                let mut get = |what: &str, s: &str| match duration(s) {
                    Ok(d) if d > TimeDelta::zero() => d,
                    Ok(_) => {
                        c.err(*f, value.span(), format!("plan {name} {priority}: {what} must be longer than zero"));
                        TimeDelta::hours(1)
                    }
                    Err(e) => {
                        c.err(*f, value.span(), format!("plan {name} {priority}: {what} {e}"));
                        TimeDelta::hours(1)
                    }
                };
                let t = Targets {
                    respond: get("respond", &targets.respond),
                    update: get("update", &targets.update),
                    resolve: get("resolve", &targets.resolve),
                };
                priorities.insert(priority, t);
            }
            if priorities.is_empty() {
                c.err(*f, entry.span(), format!("plan {name} defines no priorities: add P1 = {{ respond = \"30m\", update = \"1h\", resolve = \"4h\" }}"));
            }
            if !entry.get_ref().contains_key("calendar") {
                c.err(
                    *f,
                    entry.span(),
                    format!("plan {name} has no calendar: add calendar = \"24x7\" or the name of a [calendar.NAME]"),
                );
            }
            // Registered even when its calendar is wrong, so that customers
            // naming it do not report a second, misleading error.
            let calendar = calendar.unwrap_or_else(|| "24x7".to_owned());
            out.insert(
                name.clone(),
                Plan {
                    name: name.clone(),
                    calendar,
                    priorities,
                    respond_met_by,
                    update_met_by,
                    tell_ack,
                    tell_resolve,
                },
            );
        }
    }
    out
}

fn default_plan(c: &mut Check<'_>, files: &[(usize, raw::File)], plans: &BTreeMap<String, Plan>) -> Option<String> {
    let mut found: Option<String> = None;
    for (f, file) in files {
        if let Some(d) = &file.default_plan {
            if found.is_some() {
                c.err(*f, d.span(), "default_plan is set twice: keep one, in rules/sla.toml");
            } else if !plans.contains_key(d.get_ref()) {
                c.err(
                    *f,
                    d.span(),
                    format!("default_plan names unknown plan {:?}: use one of: {}", d.get_ref(), list(plans.keys())),
                );
            }
            found = Some(d.get_ref().clone());
        }
    }
    if found.is_none() {
        let file = files.first().map_or(0, |(f, _)| *f);
        if !c.sources.is_empty() {
            c.errors.push(Diagnostic {
                file: c.sources[file].path.clone(),
                line: 0,
                message:
                    "no default_plan: add default_plan = \"NAME\" (for senders no customer owns) to rules/sla.toml"
                        .into(),
            });
        }
    }
    found
}

fn customers(c: &mut Check<'_>, files: &[(usize, raw::File)], plans: &BTreeMap<String, Plan>) -> Vec<Customer> {
    let mut out: Vec<Customer> = Vec::new();
    for (f, file) in files {
        for entry in &file.customer {
            let cu = entry.get_ref();
            let name = cu.name.get_ref().trim().to_owned();
            if name.is_empty() {
                c.err(*f, cu.name.span(), "customer name is empty");
            }
            if out.iter().any(|o| o.name == name) {
                c.err(*f, cu.name.span(), format!("customer {name:?} is defined twice"));
            }
            if !plans.contains_key(cu.plan.get_ref()) {
                c.err(
                    *f,
                    cu.plan.span(),
                    format!(
                        "customer {name}: unknown plan {:?}: use one of: {}",
                        cu.plan.get_ref(),
                        list(plans.keys())
                    ),
                );
            }
            let mut domains = Vec::new();
            for d in cu.domains.get_ref() {
                let domain = d.get_ref().trim().to_ascii_lowercase();
                let valid = domain.contains('.') && !domain.contains('@') && !domain.contains(char::is_whitespace);
                if !valid {
                    c.err(
                        *f,
                        d.span(),
                        format!("customer {name}: {:?} is not a mail domain like \"acme.com\"", d.get_ref()),
                    );
                } else if let Some(other) = out.iter().find(|o| o.domains.contains(&domain)) {
                    c.err(
                        *f,
                        d.span(),
                        format!("customer {name}: domain {domain} already belongs to customer {}", other.name),
                    );
                } else {
                    domains.push(domain);
                }
            }
            if cu.domains.get_ref().is_empty() {
                c.err(
                    *f,
                    cu.domains.span(),
                    format!("customer {name}: domains is empty: list the mail domains it writes from"),
                );
            }
            out.push(Customer { name, domains, plan: cu.plan.get_ref().clone() });
        }
    }
    out
}

fn policies(
    c: &mut Check<'_>,
    files: &[(usize, raw::File)],
    people: &BTreeMap<PersonId, Person>,
    schedules: &BTreeMap<String, Schedule>,
) -> BTreeMap<String, Policy> {
    let mut out = BTreeMap::new();
    for (f, file) in files {
        for (name, entry) in &file.policy {
            let p = entry.get_ref();
            if out.contains_key(name) {
                c.err(*f, entry.span(), format!("policy {name:?} is defined twice"));
                continue;
            }
            if p.step.is_empty() {
                c.err(
                    *f,
                    entry.span(),
                    format!("policy {name} has no steps: add [[policy.{name}.step]] with notify and wait"),
                );
            }
            if p.repeat > 100 {
                c.err(*f, entry.span(), format!("policy {name}: repeat = {} is too many: use at most 100", p.repeat));
            }
            let mut steps = Vec::new();
            for (n, s) in p.step.iter().enumerate() {
                let s = s.get_ref();
                let mut targets = Vec::new();
                for t in s.notify.get_ref() {
                    match t.get_ref().parse::<Target>() {
                        Ok(Target::Schedule(sch)) if !schedules.contains_key(&sch) => c.err(
                            *f,
                            t.span(),
                            format!("step {} notifies unknown schedule {sch:?}: define [schedule.{sch}] in rules/schedules.toml or use one of: {}", n + 1, list(schedules.keys())),
                        ),
                        Ok(Target::Person(id)) if !people.contains_key(&id) => c.err(
                            *f,
                            t.span(),
                            format!("step {} notifies unknown person \"{id}\": add them to rules/people.toml or use one of: {}", n + 1, list(people.keys())),
                        ),
                        Ok(target) => targets.push(target),
                        Err(e) => c.err(*f, t.span(), format!("step {}: {e}", n + 1)),
                    }
                }
                if s.notify.get_ref().is_empty() {
                    c.err(*f, s.notify.span(), format!("policy {name} step {}: notify is empty", n + 1));
                }
                let wait = match duration(s.wait.get_ref()) {
                    Ok(d) if d >= TimeDelta::seconds(1) => d,
                    Ok(_) => {
                        c.err(*f, s.wait.span(), format!("policy {name} step {}: wait must be at least 1s", n + 1));
                        TimeDelta::minutes(5)
                    }
                    Err(e) => {
                        c.err(*f, s.wait.span(), format!("policy {name} step {}: wait {e}", n + 1));
                        TimeDelta::minutes(5)
                    }
                };
                steps.push(Step { targets, wait });
            }
            out.insert(name.clone(), Policy { name: name.clone(), steps, repeat: p.repeat });
        }
    }
    out
}

fn routes(
    c: &mut Check<'_>,
    files: &[(usize, raw::File)],
    plans: &BTreeMap<String, Plan>,
    customers: &[Customer],
    policies: &BTreeMap<String, Policy>,
) -> Vec<Route> {
    let mut out = Vec::new();
    let mut last: Option<(usize, Range<usize>)> = None;
    for (f, file) in files {
        for (n, entry) in file.route.iter().enumerate() {
            let r = entry.get_ref();
            let at = format!("route {}", n + 1);
            let mut regex = |v: &Option<S<String>>, what: &str| {
                v.as_ref().and_then(|s| {
                    Regex::new(s.get_ref())
                        .map_err(|e| {
                            c.err(*f, s.span(), format!("{at}: {what} is not a valid regular expression: {e}"))
                        })
                        .ok()
                })
            };
            let subject = regex(&r.subject, "subject");
            let body = regex(&r.body, "body");
            if let Some(cu) = &r.customer
                && !customers.iter().any(|x| x.name == *cu.get_ref())
            {
                c.err(
                    *f,
                    cu.span(),
                    format!(
                        "{at}: unknown customer {:?}: use one of: {}",
                        cu.get_ref(),
                        list(customers.iter().map(|x| &x.name))
                    ),
                );
            }
            let mut priority_of = |s: &S<String>| match s.get_ref().parse::<Priority>() {
                Ok(p) => {
                    let missing: Vec<&str> = plans
                        .values()
                        .filter(|pl| !pl.priorities.contains_key(&p))
                        .map(|pl| pl.name.as_str())
                        .collect();
                    if !missing.is_empty() {
                        c.err(*f, s.span(), format!("{at}: priority {p} is not defined in plan {}: add {p} to every plan, or route to a priority they all have", missing.join(", ")));
                    }
                    Some(p)
                }
                Err(e) => {
                    c.err(*f, s.span(), format!("{at}: {e}"));
                    None
                }
            };
            let priority = priority_of(&r.priority);
            let when_priority: Vec<Priority> = r.when_priority.iter().filter_map(&mut priority_of).collect();
            if !policies.contains_key(r.policy.get_ref()) {
                c.err(
                    *f,
                    r.policy.span(),
                    format!(
                        "{at}: unknown policy {:?}: define [policy.{}] or use one of: {}",
                        r.policy.get_ref(),
                        r.policy.get_ref(),
                        list(policies.keys())
                    ),
                );
            }
            let urgency = match &r.urgency {
                None => Some(Urgency::High),
                Some(u) => u.get_ref().parse::<Urgency>().map_err(|e| c.err(*f, u.span(), format!("{at}: {e}"))).ok(),
            };
            let (Some(priority), Some(urgency)) = (priority, urgency) else { continue };
            let route = Route {
                subject,
                body,
                customer: r.customer.as_ref().map(|c| c.get_ref().clone()),
                when_priority,
                priority,
                policy: r.policy.get_ref().clone(),
                urgency,
            };
            last = Some((*f, entry.span()));
            out.push(route);
        }
    }
    match (out.last(), last) {
        (Some(r), Some((f, span))) if !r.matches_all() => {
            c.err(f, span, "the last route has conditions, so some cases would match no route: end with a [[route]] that has only priority and policy");
        }
        (None, _) if c.errors.is_empty() => {
            c.errors.push(Diagnostic {
                file: c.sources.first().map(|s| s.path.clone()).unwrap_or_default(),
                line: 0,
                message: "no [[route]] is defined: add one to rules/routing.toml with priority and policy".into(),
            });
        }
        _ => {}
    }
    out
}

fn warn_at(c: &mut Check<'_>, files: &[(usize, raw::File)]) -> Vec<f64> {
    let mut found = None;
    for (f, file) in files {
        let Some(w) = &file.warn_at else { continue };
        if found.is_some() {
            c.err(*f, w.span(), "warn_at is set twice: keep one, in rules/sla.toml");
            continue;
        }
        let list = w.get_ref();
        let ascending = list.windows(2).all(|p| p[0] < p[1]);
        if list.iter().any(|x| !(*x > 0.0 && *x < 1.0)) || !ascending || list.len() > 9 {
            c.err(*f, w.span(), "warn_at must list at most 9 ascending fractions between 0 and 1, e.g. [0.5, 0.8]");
        }
        found = Some(list.clone());
    }
    found.unwrap_or_default()
}
