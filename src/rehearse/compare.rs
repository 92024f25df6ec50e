//! Two rule sets side by side (`tocsin simulate --compare`): the same
//! scenario rehearsed on both, and only what differs printed; with
//! `--matrix`, every customer × priority × hour of a week, summarised.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::{Happening, Rehearsal, Scenario, Stage, rehearse};
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

/// The difference of two outcomes in words: what only the base does, then
/// what only the other does.
fn describe(a: &Outcome, b: &Outcome) -> Option<String> {
    let word = |(at, kind, person, channel, step, round): &(
        i64,
        &str,
        Option<String>,
        Option<&str>,
        Option<u32>,
        Option<u32>,
    )| {
        let mut s = format!("{} {kind}", offset(*at));
        if let Some(p) = person {
            s += &format!(" {p}");
        }
        if let Some(c) = channel {
            s += &format!(" by {c}");
        }
        match (step, round) {
            (Some(st), Some(0)) => s += &format!(" (step {st})"),
            (Some(st), Some(r)) => s += &format!(" (step {st}, repeat {r})"),
            _ => {}
        }
        s
    };
    let mut only_a = a.clone();
    let mut only_b = Vec::new();
    for x in b {
        match only_a.iter().position(|y| y == x) {
            Some(i) => {
                only_a.remove(i);
            }
            None => only_b.push(x.clone()),
        }
    }
    if only_a.is_empty() && only_b.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !only_a.is_empty() {
        parts.push(format!("was: {}", only_a.iter().map(word).collect::<Vec<_>>().join(", ")));
    }
    if !only_b.is_empty() {
        parts.push(format!("now: {}", only_b.iter().map(word).collect::<Vec<_>>().join(", ")));
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
    pub hours: u32,
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
pub async fn matrix(base: &Stage, other: &Stage, scenario: &Scenario, workers: usize) -> anyhow::Result<Vec<RowChange>> {
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
    let outcomes = run_all(base, other, cells, workers.max(1)).await?;
    let mut changes = Vec::new();
    for (r, row) in rows.into_iter().enumerate() {
        let mut runs: Vec<(DateTime<Tz>, u32, String)> = Vec::new();
        let mut hours = 0;
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
            changes.push(RowChange { row, runs, hours });
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
            let mut out = Vec::new();
            for (r, at, s) in part {
                let a = rehearse(&base, &s).await?;
                let b = rehearse(&other, &s).await?;
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

/// The matrix's summary, ready to paste into a review.
pub fn matrix_text(changes: &[RowChange], cells: usize) -> String {
    if changes.is_empty() {
        return format!("no change in any of {cells} rehearsals (customer × priority × hour of the week)\n");
    }
    let mut out = String::new();
    for c in changes {
        let who = c.row.customer.as_deref().unwrap_or("(no customer)");
        out += &format!("{who} {}: {} of 168 hours change\n", c.row.priority, c.hours);
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
                "runs": c.runs.iter().map(|(start, n, what)| serde_json::json!({
                    "from": start.to_rfc3339(),
                    "hours": n,
                    "change": what,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}
