//! Two rule sets side by side (`tocsin simulate --compare`): the same
//! scenario rehearsed on both, and only what differs printed; with
//! `--matrix`, every customer × priority × hour of a week, summarised.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{Bench, Happening, Rehearsal, Scenario, Stage, rehearse, rehearse_on};
use crate::schedule::to_utc;
use crate::sla::Priority;

/// What one side has that the other has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// True: only the other rules (`+`); false: only the base rules (`-`).
    pub added: bool,
    pub happening: Happening,
}

/// Happenings of `a` and `b` that the other lacks (as multisets), in time
/// order, the base's before the other's at one instant.
pub fn differences(a: &[Happening], b: &[Happening]) -> Vec<Difference> {
    let mut left: Vec<Option<&Happening>> = a.iter().map(Some).collect();
    let mut out = Vec::new();
    for h in b {
        match left.iter().position(|x| *x == Some(h)) {
            Some(i) => left[i] = None,
            None => out.push(Difference { added: true, happening: h.clone() }),
        }
    }
    out.extend(left.into_iter().flatten().map(|h| Difference { added: false, happening: h.clone() }));
    out.sort_by_key(|d| (d.happening.at, d.added));
    out
}

/// `--compare` for one scenario: `-`/`+` lines, or a line saying none.
pub async fn compare(base: &Stage, other: &Stage, scenario: &Scenario) -> anyhow::Result<(Rehearsal, Vec<Difference>)> {
    let a = rehearse(base, scenario).await?;
    let b = rehearse(other, scenario).await?;
    let diff = differences(&a.happenings, &b.happenings);
    Ok((a, diff))
}

/// The text of `--compare`'s differences.
pub fn text(rehearsal: &Rehearsal, diff: &[Difference]) -> String {
    if diff.is_empty() {
        return format!("{}\nno difference\n", rehearsal.summary);
    }
    let mut out = format!("{}\n", rehearsal.summary);
    for d in diff {
        out += if d.added { "+ " } else { "- " };
        out += &d.happening.line(rehearsal.tz);
        out.push('\n');
    }
    out
}

/// One cell of the matrix: what a case does, relative to its opening, with
/// the words that hold instants left out (they move with the hour).
type Outcome = Vec<(i64, &'static str, Option<String>, Option<&'static str>, Option<u32>, Option<u32>)>;

fn outcome(r: &Rehearsal, opened: DateTime<Utc>) -> Outcome {
    r.happenings
        .iter()
        .filter(|h| matches!(h.kind, "page" | "breach" | "deadline" | "unreached" | "exhausted"))
        .map(|h| ((h.at - opened).num_seconds(), h.kind, h.person.clone(), h.channel, h.step, h.round))
        .collect()
}

fn offset(secs: i64) -> String {
    let m = secs / 60;
    match (m / 60, m % 60, secs % 60) {
        (0, m, 0) => format!("+{m}m"),
        (h, 0, 0) => format!("+{h}h"),
        (h, m, 0) => format!("+{h}h{m:02}m"),
        (h, m, s) => format!("+{h}h{m:02}m{s:02}s"),
    }
}

/// The difference of two outcomes in words, kept short enough to read in
/// a review: per step, whom it reaches (over every repeat); per deadline,
/// breach or miss, when; and only where that is the same, when the pages
/// go out.
fn describe(a: &Outcome, b: &Outcome) -> Option<String> {
    let (mut x, mut y) = (a.clone(), b.clone());
    x.sort();
    y.sort();
    if x == y {
        return None;
    }
    type Steps = BTreeMap<u32, std::collections::BTreeSet<String>>;
    let reached = |o: &Outcome| -> Steps {
        let mut m = Steps::new();
        for (_, kind, person, channel, step, _) in o {
            if let (&"page", Some(step)) = (kind, step) {
                let who = format!("{} by {}", person.as_deref().unwrap_or("?"), channel.unwrap_or("?"));
                m.entry(*step).or_default().insert(who);
            }
        }
        m
    };
    let (ra, rb) = (reached(a), reached(b));
    let mut parts = Vec::new();
    let list = |s: Option<&std::collections::BTreeSet<String>>| {
        s.filter(|s| !s.is_empty())
            .map_or_else(|| "nobody".to_owned(), |s| s.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    let empty = std::collections::BTreeSet::new();
    for step in ra.keys().chain(rb.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (was, now) = (ra.get(step).unwrap_or(&empty), rb.get(step).unwrap_or(&empty));
        if was == now {
            continue;
        }
        // Only who is no longer reached, and who is reached instead.
        let gone: std::collections::BTreeSet<String> = was.difference(now).cloned().collect();
        let new: std::collections::BTreeSet<String> = now.difference(was).cloned().collect();
        parts.push(match (gone.is_empty(), new.is_empty()) {
            (false, false) => format!("step {step}: {} → {}", list(Some(&gone)), list(Some(&new))),
            (false, true) => format!("step {step}: no longer {}", list(Some(&gone))),
            _ => format!("step {step}: also {}", list(Some(&new))),
        });
    }
    let when = |o: &Outcome, kind: &str| -> Vec<i64> {
        let mut v: Vec<i64> = o.iter().filter(|e| e.1 == kind).map(|e| e.0).collect();
        v.sort();
        v.dedup();
        v
    };
    let offsets = |v: &[i64]| {
        if v.is_empty() { "none".to_owned() } else { v.iter().map(|s| offset(*s)).collect::<Vec<_>>().join(", ") }
    };
    for kind in ["deadline", "breach", "unreached", "exhausted"] {
        let (was, now) = (when(a, kind), when(b, kind));
        if was != now {
            parts.push(format!("{kind} {} → {}", offsets(&was), offsets(&now)));
        }
    }
    if parts.is_empty() {
        // The same people, at other times.
        for step in ra.keys() {
            let at = |o: &Outcome| -> Vec<i64> {
                let mut v: Vec<i64> = o.iter().filter(|e| e.1 == "page" && e.4 == Some(*step)).map(|e| e.0).collect();
                v.sort();
                v.dedup();
                v
            };
            let (was, now) = (at(a), at(b));
            if was != now {
                parts.push(format!("step {step} pages at {} → {}", offsets(&was), offsets(&now)));
            }
        }
    }
    if parts.is_empty() {
        parts.push("the same pages, on other channels or rounds".into());
    }
    Some(parts.join("; "))
}

/// One row of the matrix: a customer (or the default plan) and a priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The customer's name, or `None` for senders no customer owns.
    pub customer: Option<String>,
    pub requester: String,
    pub priority: Priority,
    pub tz: Tz,
}

/// What changes in one row: hours of the week (on the row's plan calendar
/// clock) grouped into runs with the same change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    pub row: Row,
    /// (first hour's local start, number of hours, what changes)
    pub runs: Vec<(DateTime<Tz>, u32, String)>,
    /// How many hours change, of `of` rehearsed (a week has 167 or 169
    /// wall-clock hours when DST changes in it).
    pub hours: u32,
    pub of: u32,
}

/// The rows of the matrix of `stage`'s rules: every customer with every
/// priority of its plan, and senders no customer owns with the default
/// plan's.
pub fn rows(stage: &Stage) -> Vec<Row> {
    let rules = &stage.rules;
    let mut out = Vec::new();
    let mut add = |customer: Option<String>, requester: String, plan: &str| {
        let Some(plan) = rules.plans.get(plan) else { return };
        let tz = rules.calendars.get(&plan.calendar).map_or(Tz::UTC, |c| c.tz);
        for p in plan.priorities.keys() {
            out.push(Row { customer: customer.clone(), requester: requester.clone(), priority: p.clone(), tz });
        }
    };
    for c in &rules.customers {
        let Some(domain) = c.domains.first() else { continue };
        add(Some(c.name.clone()), format!("rehearsal@{domain}"), &c.plan);
    }
    // An address in a reserved domain (RFC 2606) that no customer owns.
    let nobody = (0..)
        .map(|i| format!("rehearsal@sender{i}.example"))
        .find(|a| rules.customer_for(a).is_none())
        .unwrap_or_default();
    add(None, nobody, &rules.default_plan);
    out
}

/// The 168 hours of the week that starts on the Monday on or before
/// `from`, on `tz`'s wall clock (an hour DST skips is skipped).
pub fn week(from: DateTime<Utc>, tz: Tz) -> Vec<DateTime<Utc>> {
    let local = from.with_timezone(&tz).date_naive();
    let monday = local - chrono::Days::new(u64::from(local.weekday().num_days_from_monday()));
    let mut out = Vec::new();
    for h in 0..168u32 {
        let day = monday + chrono::Days::new(u64::from(h / 24));
        let Some(time) = NaiveTime::from_hms_opt(h % 24, 0, 0) else { continue };
        let wall = day.and_time(time);
        // A skipped hour names the instant the gap ends: the next hour's.
        if let Some(at) = to_utc(tz, wall).filter(|at| at.with_timezone(&tz).naive_local() == wall) {
            out.push(at);
        }
    }
    out
}

/// Runs the matrix on both stages; `scenario` gives the subject, body,
/// answers and length, and `--at` the week. Uses `workers` tasks at once.
pub async fn matrix(
    base: &Stage,
    other: &Stage,
    scenario: &Scenario,
    workers: usize,
) -> anyhow::Result<Vec<RowChange>> {
    let rows = rows(base);
    let mut cells = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for at in week(scenario.at, row.tz) {
            let s = Scenario {
                at,
                requester: row.requester.clone(),
                priority: Some(row.priority.clone()),
                ..scenario.clone()
            };
            cells.push((r, at, s));
        }
    }
    // Rows that route alike on both rule sets (same plan, priority and
    // policy) rehearse alike: each such class is run once.
    let class = |row: &Row| -> (String, String, String, String) {
        let routed = |stage: &Stage| {
            let rules = &stage.rules;
            let customer = rules.customer_for(&row.requester);
            let plan = rules.plan_for(customer).name.clone();
            let incoming = crate::routing::Incoming {
                subject: &scenario.subject,
                body: &scenario.body,
                customer: customer.map(|c| c.name.as_str()),
                priority: Some(&row.priority),
            };
            let policy = crate::routing::route(&rules.routes, &incoming).map(|r| r.policy.clone()).unwrap_or_default();
            (plan, policy)
        };
        let (a, b) = (routed(base), routed(other));
        (a.0, format!("{}/{}", a.1, row.priority), b.0, b.1)
    };
    let mut first_of: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    let same_as: Vec<usize> =
        rows.iter().enumerate().map(|(r, row)| *first_of.entry(class(row)).or_insert(r)).collect();
    cells.retain(|(r, _, _)| same_as[*r] == *r);
    let mut outcomes = run_all(base, other, cells, workers.max(1)).await?;
    for (r, first) in same_as.iter().enumerate() {
        if *first != r
            && let Some(v) = outcomes.get(first).cloned()
        {
            outcomes.insert(r, v);
        }
    }
    let mut changes = Vec::new();
    for (r, row) in rows.into_iter().enumerate() {
        let mut runs: Vec<(DateTime<Tz>, u32, String)> = Vec::new();
        let mut hours = 0;
        let of = outcomes.get(&r).map_or(0, |v| v.len() as u32);
        let mut last: Option<DateTime<Utc>> = None;
        for (at, change) in outcomes.get(&r).into_iter().flatten() {
            let Some(change) = change else {
                last = None;
                continue;
            };
            hours += 1;
            match runs.last_mut() {
                Some((_, n, what)) if what == change && last.is_some_and(|l| *at - l <= TimeDelta::hours(2)) => *n += 1,
                _ => runs.push((at.with_timezone(&row.tz), 1, change.clone())),
            }
            last = Some(*at);
        }
        if hours > 0 {
            changes.push(RowChange { row, runs, hours, of });
        }
    }
    Ok(changes)
}

type Cells = BTreeMap<usize, Vec<(DateTime<Utc>, Option<String>)>>;

async fn run_all(
    base: &Stage,
    other: &Stage,
    cells: Vec<(usize, DateTime<Utc>, Scenario)>,
    workers: usize,
) -> anyhow::Result<Cells> {
    let chunk = cells.len().div_ceil(workers).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for part in cells.chunks(chunk) {
        let (base, other, part) = (base.clone(), other.clone(), part.to_vec());
        tasks.spawn(async move {
            let bench = Bench::new().await?;
            let mut out = Vec::new();
            for (r, at, s) in part {
                let a = rehearse_on(&bench, &base, &s).await?;
                let b = rehearse_on(&bench, &other, &s).await?;
                out.push((r, at, describe(&outcome(&a, at), &outcome(&b, at))));
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Cells::new();
    while let Some(done) = tasks.join_next().await {
        for (r, at, change) in done?? {
            all.entry(r).or_default().push((at, change));
        }
    }
    for v in all.values_mut() {
        v.sort_by_key(|(at, _)| *at);
    }
    Ok(all)
}

/// The matrix's summary, ready to paste into a review: rows that change
/// alike are listed together, hours that change alike as one run.
pub fn matrix_text(changes: &[RowChange], cells: usize) -> String {
    if changes.is_empty() {
        return format!("no change in any of {cells} rehearsals (customer × priority × hour of the week)\n");
    }
    let mut groups: Vec<(Vec<String>, &RowChange)> = Vec::new();
    for c in changes {
        let name = format!("{} {}", c.row.customer.as_deref().unwrap_or("(no customer)"), c.row.priority);
        match groups.iter_mut().find(|(_, g)| g.runs == c.runs && g.hours == c.hours && g.of == c.of) {
            Some((names, _)) => names.push(name),
            None => groups.push((vec![name], c)),
        }
    }
    let mut out = String::new();
    for (names, c) in groups {
        out += &format!("{}: {} of {} hours change\n", names.join(", "), c.hours, c.of);
        for (start, n, what) in &c.runs {
            let end = *start + TimeDelta::hours(i64::from(*n) - 1);
            let when = if *n == 1 {
                start.format("%a %H:00 %Z").to_string()
            } else {
                format!("{}–{}", start.format("%a %H:00"), end.format("%a %H:00 %Z"))
            };
            out += &format!("  {when}: {what}\n");
        }
    }
    out
}

/// `--compare --format json`: the differences, each a happening with
/// `"side": "-"` (only the first rules) or `"+"` (only the other).
pub fn json(diff: &[Difference]) -> serde_json::Value {
    diff.iter()
        .map(|d| {
            let mut v = serde_json::to_value(&d.happening).unwrap_or_default();
            v["side"] = serde_json::Value::from(if d.added { "+" } else { "-" });
            v
        })
        .collect()
}

/// `--matrix --format json`: per row that changes, its runs of hours.
pub fn matrix_json(changes: &[RowChange]) -> serde_json::Value {
    changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "customer": c.row.customer,
                "priority": c.row.priority.as_str(),
                "hours": c.hours,
                "of": c.of,
                "runs": c.runs.iter().map(|(start, n, what)| serde_json::json!({
                    "from": start.to_rfc3339(),
                    "hours": n,
                    "change": what,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}
