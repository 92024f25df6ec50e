//! Reports: how well the team kept its promises over a range of days.
//!
//! Pure: [`Report::compute`] takes what the store read ([`ReportData`]),
//! the rules (for people's names and time zones) and the zone weeks are
//! counted in, and does no I/O. The definitions, also in the README:
//!
//! - A case belongs to the week (Monday 00:00 in the report's zone) in which
//!   it was opened.
//! - A case **met** its SLA if no clock of it breached, ever; it **breached**
//!   if any did (respond, update or resolve). Cases still running without a
//!   breach are **pending** and left out of the compliance percentage.
//! - **Time to acknowledge** runs from the open (or the last reopen) to the
//!   acknowledgement; **time to resolve** from the open to the resolution,
//!   less the time the case waited on the customer. Both are wall-clock
//!   times; the 90th percentile is the nearest-rank one.
//! - A page is a page, reminder, warning or breach message that went out to
//!   a person; it is a **night-time** page when it was sent between 22:00
//!   and 07:00 on that person's own clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::case::{CaseNumber, EventRecord, Status};
use crate::people::{ChannelKind, PersonId};
use crate::rules::Rules;
use crate::sla::Pause;

/// What the reports need of a case: no body, no deadlines, no timers, so
/// a range of thousands reads quickly.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCase {
    pub number: CaseNumber,
    pub subject: String,
    pub customer: Option<String>,
    pub priority: crate::sla::Priority,
    pub plan: String,
    pub status: Status,
    pub assignee: Option<PersonId>,
    pub opened_at: DateTime<Utc>,
    pub acked_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The open, or the last reopen.
    pub respond_from: DateTime<Utc>,
    /// Time spent waiting on the customer (and resolved before a reopen).
    pub pauses: Vec<Pause>,
    /// The first reply to the customer since `respond_from` (issue 14).
    pub first_reply_at: Option<DateTime<Utc>>,
}

/// A message that reached a person, for the reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPage {
    pub person: PersonId,
    pub channel: ChannelKind,
    /// When it fell due (was queued).
    pub at: DateTime<Utc>,
}

/// What the reports of a range are computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportData {
    /// Cases opened in the range, oldest first.
    pub cases: Vec<ReportCase>,
    /// Every breach of those cases, whenever it happened: case and event.
    pub breaches: Vec<(CaseNumber, EventRecord)>,
    /// Pages, reminders, warnings and breaches that reached a person in
    /// the range (sent or delivered), oldest first.
    pub pages: Vec<ReportPage>,
}

/// Night-time, on the paged person's clock: from this hour…
pub const NIGHT_FROM: u32 = 22;
/// …until this one.
pub const NIGHT_UNTIL: u32 = 7;

/// The tables of a report, by the name the CSV export uses.
pub const TABLES: [&str; 4] = ["compliance", "times", "breaches", "pages"];

/// Compliance of one week for one plan, priority or customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplianceRow {
    /// Monday of the week.
    pub week: NaiveDate,
    /// `plan`, `priority` or `customer`.
    pub by: &'static str,
    pub value: String,
    pub opened: u32,
    pub met: u32,
    pub breached: u32,
    pub pending: u32,
    /// `met / (met + breached)` as a percentage; `None` when nothing is decided.
    pub percent: Option<f64>,
}

/// Acknowledgement and resolution times of one week, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimesRow {
    pub week: NaiveDate,
    pub acknowledged: u32,
    pub mtta: Option<i64>,
    pub tta_p90: Option<i64>,
    /// Cases whose customer got a first reply, and how long it took.
    pub replied: u32,
    pub mttfr: Option<i64>,
    pub ttfr_p90: Option<i64>,
    pub resolved: u32,
    pub mttr: Option<i64>,
    pub ttr_p90: Option<i64>,
}

/// One breach and its cause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreachRow {
    pub case: i64,
    pub subject: String,
    pub customer: Option<String>,
    pub priority: String,
    pub plan: String,
    /// respond, update or resolve.
    pub clock: String,
    pub at: DateTime<Utc>,
    /// Why, as the timeline says it, with who held the case then.
    pub cause: String,
}

/// Pages one person received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PagerRow {
    pub person: String,
    pub name: String,
    pub pages: u32,
    pub sms: u32,
    pub email: u32,
    pub night: u32,
}

/// Whole-range figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub opened: u32,
    pub met: u32,
    pub breached: u32,
    pub pending: u32,
    pub percent: Option<f64>,
    pub mtta: Option<i64>,
    pub tta_p90: Option<i64>,
    /// Mean time to the first reply to the customer, and its 90th percentile.
    pub mttfr: Option<i64>,
    pub ttfr_p90: Option<i64>,
    pub mttr: Option<i64>,
    pub ttr_p90: Option<i64>,
    pub pages: u32,
    pub night: u32,
}

/// Everything the reports page and the CSV export show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub zone: String,
    pub weeks: Vec<NaiveDate>,
    pub totals: Totals,
    pub compliance: Vec<ComplianceRow>,
    pub times: Vec<TimesRow>,
    pub breaches: Vec<BreachRow>,
    pub pages: Vec<PagerRow>,
}

/// The days a report covers, `first` to `last` inclusive, on some clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub from: DateTime<Utc>,
    /// Exclusive: the midnight after `last`.
    pub to: DateTime<Utc>,
}

/// Longest range a report covers, in days.
pub const MAX_DAYS: i64 = 400;

/// The range `from`..=`to` (dates, `YYYY-MM-DD`) on `tz`'s clock; by
/// default the last four weeks up to and including today.
pub fn range(from: Option<&str>, to: Option<&str>, tz: Tz, now: DateTime<Utc>) -> Result<Range, String> {
    let date = |raw: &str, field: &str| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| format!("{field}: {raw:?} is not a date like 2026-11-02"))
    };
    let today = now.with_timezone(&tz).date_naive();
    let last = match to.filter(|s| !s.trim().is_empty()) {
        Some(raw) => date(raw, "to")?,
        None => today,
    };
    let first = match from.filter(|s| !s.trim().is_empty()) {
        Some(raw) => date(raw, "from")?,
        None => last - TimeDelta::days(27),
    };
    if first > last {
        return Err(format!("from ({first}) is after to ({last})"));
    }
    if (last - first).num_days() >= MAX_DAYS {
        return Err(format!("a report covers at most {MAX_DAYS} days; narrow from/to"));
    }
    let midnight = |d: NaiveDate| {
        crate::schedule::to_utc(tz, d.and_time(chrono::NaiveTime::MIN))
            .ok_or_else(|| format!("midnight of {d} does not exist on the {tz} clock"))
    };
    let next = last.succ_opt().ok_or_else(|| format!("to: {last} is too far in the future"))?;
    Ok(Range { first, last, from: midnight(first)?, to: midnight(next)? })
}

/// The Monday that starts the week of `at` in `tz`.
pub fn week_of(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let day = at.with_timezone(&tz).date_naive();
    day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn mean(values: &[i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
    Some((sum as f64 / values.len() as f64).round() as i64)
}

/// Time waited on the customer within `[from, to]`.
fn paused_within(pauses: &[Pause], from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
    pauses
        .iter()
        .map(|p| {
            let start = p.from.max(from);
            let end = p.to.unwrap_or(to).min(to);
            if end > start { end - start } else { TimeDelta::zero() }
        })
        .sum()
}

/// Seconds from opening (or the last reopen) to acknowledgement.
pub fn time_to_ack(c: &ReportCase) -> Option<i64> {
    let acked = c.acked_at?;
    (acked >= c.respond_from).then(|| (acked - c.respond_from).num_seconds())
}

/// Seconds from opening (or the last reopen) to the first reply to the
/// customer: what the customer waited to hear from a person.
pub fn time_to_first_reply(c: &ReportCase) -> Option<i64> {
    let replied = c.first_reply_at?;
    (replied >= c.respond_from).then(|| (replied - c.respond_from).num_seconds())
}

/// Seconds from opening to resolution, less the time spent waiting.
pub fn time_to_resolve(c: &ReportCase) -> Option<i64> {
    let resolved = c.resolved_at.filter(|_| c.status.is_done())?;
    let wall = resolved - c.opened_at;
    Some((wall - paused_within(&c.pauses, c.opened_at, resolved)).num_seconds().max(0))
}

#[derive(Default)]
struct Tally {
    opened: u32,
    met: u32,
    breached: u32,
    pending: u32,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        self.opened += 1;
        match outcome {
            Outcome::Met => self.met += 1,
            Outcome::Breached => self.breached += 1,
            Outcome::Pending => self.pending += 1,
        }
    }
    fn percent(&self) -> Option<f64> {
        let decided = self.met + self.breached;
        (decided > 0).then(|| (f64::from(self.met) * 1000.0 / f64::from(decided)).round() / 10.0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Met,
    Breached,
    Pending,
}

impl Report {
    /// The report of cases opened in `[from, to)`, weeks counted in `zone`.
    pub fn compute(data: &ReportData, rules: &Rules, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Report {
        let breached: std::collections::HashSet<i64> = data.breaches.iter().map(|(n, _)| n.0).collect();
        let outcome = |c: &ReportCase| {
            if breached.contains(&c.number.0) {
                Outcome::Breached
            } else if c.status.is_done() {
                Outcome::Met
            } else {
                Outcome::Pending
            }
        };

        let mut weeks = Vec::new();
        if from < to {
            let mut w = week_of(from, zone);
            let last = week_of(to - TimeDelta::seconds(1), zone);
            while w <= last {
                weeks.push(w);
                w += TimeDelta::days(7);
            }
        }

        let mut totals = Tally::default();
        let mut by: BTreeMap<(&'static str, String, NaiveDate), Tally> = BTreeMap::new();
        let mut ttas: BTreeMap<NaiveDate, Vec<i64>> = BTreeMap::new();
        let mut ttrs: BTreeMap<NaiveDate, Vec<i64>> = BTreeMap::new();
        let mut ttfrs: BTreeMap<NaiveDate, Vec<i64>> = BTreeMap::new();
        for c in &data.cases {
            let week = week_of(c.opened_at, zone);
            let o = outcome(c);
            totals.add(o);
            let customer = c.customer.clone().unwrap_or_else(|| "(no customer)".to_owned());
            for (dim, value) in [("plan", c.plan.clone()), ("priority", c.priority.to_string()), ("customer", customer)]
            {
                by.entry((dim, value, week)).or_default().add(o);
            }
            if let Some(s) = time_to_ack(c) {
                ttas.entry(week).or_default().push(s);
            }
            if let Some(s) = time_to_resolve(c) {
                ttrs.entry(week).or_default().push(s);
            }
            if let Some(s) = time_to_first_reply(c) {
                ttfrs.entry(week).or_default().push(s);
            }
        }

        let order = |d: &str| ["plan", "priority", "customer"].iter().position(|x| *x == d).unwrap_or(3);
        let mut compliance: Vec<ComplianceRow> = by
            .into_iter()
            .map(|((dim, value, week), t)| ComplianceRow {
                week,
                by: dim,
                value,
                opened: t.opened,
                met: t.met,
                breached: t.breached,
                pending: t.pending,
                percent: t.percent(),
            })
            .collect();
        compliance.sort_by(|a, b| (order(a.by), &a.value, a.week).cmp(&(order(b.by), &b.value, b.week)));

        let empty = Vec::new();
        let times = weeks
            .iter()
            .map(|w| {
                let mut a = ttas.get(w).unwrap_or(&empty).clone();
                let mut r = ttrs.get(w).unwrap_or(&empty).clone();
                let mut f = ttfrs.get(w).unwrap_or(&empty).clone();
                a.sort_unstable();
                r.sort_unstable();
                f.sort_unstable();
                TimesRow {
                    week: *w,
                    acknowledged: a.len() as u32,
                    mtta: mean(&a),
                    tta_p90: percentile(&a, 0.9),
                    replied: f.len() as u32,
                    mttfr: mean(&f),
                    ttfr_p90: percentile(&f, 0.9),
                    resolved: r.len() as u32,
                    mttr: mean(&r),
                    ttr_p90: percentile(&r, 0.9),
                }
            })
            .collect();
        let mut all_a: Vec<i64> = ttas.into_values().flatten().collect();
        let mut all_r: Vec<i64> = ttrs.into_values().flatten().collect();
        let mut all_f: Vec<i64> = ttfrs.into_values().flatten().collect();
        all_f.sort_unstable();
        all_a.sort_unstable();
        all_r.sort_unstable();

        let cases: BTreeMap<i64, &ReportCase> = data.cases.iter().map(|c| (c.number.0, c)).collect();
        let breaches = data
            .breaches
            .iter()
            .filter_map(|(n, e)| {
                let c = cases.get(&n.0)?;
                let clock = e.text.split_whitespace().next().unwrap_or("").to_owned();
                let held = match (&c.assignee, c.acked_at) {
                    (Some(a), Some(acked)) if acked <= e.at => format!("assigned to {a}"),
                    _ => "nobody had acknowledged it".to_owned(),
                };
                Some(BreachRow {
                    case: n.0,
                    subject: c.subject.clone(),
                    customer: c.customer.clone(),
                    priority: c.priority.to_string(),
                    plan: c.plan.clone(),
                    clock,
                    at: e.at,
                    cause: format!("{}; {held}", e.text),
                })
            })
            .collect();

        let mut pagers: BTreeMap<String, PagerRow> = BTreeMap::new();
        let (mut pages_total, mut night_total) = (0, 0);
        for p in &data.pages {
            let person = &p.person;
            let known = rules.people.get(person);
            let row = pagers.entry(person.as_str().to_owned()).or_insert_with(|| PagerRow {
                person: person.as_str().to_owned(),
                name: known.map(|k| k.name.clone()).unwrap_or_else(|| person.as_str().to_owned()),
                pages: 0,
                sms: 0,
                email: 0,
                night: 0,
            });
            row.pages += 1;
            pages_total += 1;
            match p.channel {
                crate::people::ChannelKind::Sms => row.sms += 1,
                crate::people::ChannelKind::Email => row.email += 1,
            }
            let tz = known.map(|k| k.timezone).unwrap_or(zone);
            let hour = p.at.with_timezone(&tz).hour();
            if !(NIGHT_UNTIL..NIGHT_FROM).contains(&hour) {
                row.night += 1;
                night_total += 1;
            }
        }
        let mut pages: Vec<PagerRow> = pagers.into_values().collect();
        pages.sort_by(|a, b| b.pages.cmp(&a.pages).then_with(|| a.person.cmp(&b.person)));

        Report {
            from,
            to,
            zone: zone.name().to_owned(),
            weeks,
            totals: Totals {
                opened: totals.opened,
                met: totals.met,
                breached: totals.breached,
                pending: totals.pending,
                percent: totals.percent(),
                mtta: mean(&all_a),
                tta_p90: percentile(&all_a, 0.9),
                mttfr: mean(&all_f),
                ttfr_p90: percentile(&all_f, 0.9),
                mttr: mean(&all_r),
                ttr_p90: percentile(&all_r, 0.9),
                pages: pages_total,
                night: night_total,
            },
            compliance,
            times,
            breaches,
            pages,
        }
    }

    /// One table as CSV (RFC 4180), `None` for an unknown table name.
    /// Cells a spreadsheet would run as a formula are prefixed with `'`.
    pub fn csv(&self, table: &str) -> Option<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let pct = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
        let rows: Vec<Vec<String>> = match table {
            "compliance" => std::iter::once(
                ["week", "by", "value", "opened", "met", "breached", "pending", "percent_met"]
                    .map(String::from)
                    .to_vec(),
            )
            .chain(self.compliance.iter().map(|r| {
                vec![
                    r.week.to_string(),
                    r.by.to_owned(),
                    r.value.clone(),
                    r.opened.to_string(),
                    r.met.to_string(),
                    r.breached.to_string(),
                    r.pending.to_string(),
                    pct(r.percent),
                ]
            }))
            .collect(),
            "times" => std::iter::once(
                [
                    "week",
                    "acknowledged",
                    "mtta_seconds",
                    "tta_p90_seconds",
                    "resolved",
                    "mttr_seconds",
                    "ttr_p90_seconds",
                    "replied",
                    "mttfr_seconds",
                    "ttfr_p90_seconds",
                ]
                .map(String::from)
                .to_vec(),
            )
            .chain(self.times.iter().map(|r| {
                vec![
                    r.week.to_string(),
                    r.acknowledged.to_string(),
                    opt(r.mtta),
                    opt(r.tta_p90),
                    r.resolved.to_string(),
                    opt(r.mttr),
                    opt(r.ttr_p90),
                    r.replied.to_string(),
                    opt(r.mttfr),
                    opt(r.ttfr_p90),
                ]
            }))
            .collect(),
            "breaches" => std::iter::once(
                ["case", "subject", "customer", "priority", "plan", "clock", "at", "cause"].map(String::from).to_vec(),
            )
            .chain(self.breaches.iter().map(|r| {
                vec![
                    r.case.to_string(),
                    r.subject.clone(),
                    r.customer.clone().unwrap_or_default(),
                    r.priority.clone(),
                    r.plan.clone(),
                    r.clock.clone(),
                    r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    r.cause.clone(),
                ]
            }))
            .collect(),
            "pages" => std::iter::once(["person", "name", "pages", "sms", "email", "night"].map(String::from).to_vec())
                .chain(self.pages.iter().map(|r| {
                    vec![
                        r.person.clone(),
                        r.name.clone(),
                        r.pages.to_string(),
                        r.sms.to_string(),
                        r.email.to_string(),
                        r.night.to_string(),
                    ]
                }))
                .collect(),
            _ => return None,
        };
        for row in rows {
            let safe: Vec<String> = row.into_iter().map(defuse).collect();
            // Writing to a Vec cannot fail.
            w.write_record(&safe).ok()?;
        }
        w.into_inner().ok().and_then(|b| String::from_utf8(b).ok())
    }
}

/// Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, tab or CR
/// as a formula; customers write subjects, so such text gets a leading `'`.
/// Plain negative numbers never occur in our tables.
fn defuse(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentile() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.9), Some(9));
        assert_eq!(percentile(&[5], 0.9), Some(5));
        assert_eq!(percentile(&[], 0.9), None);
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 0.9), Some(18));
    }

    #[test]
    fn weeks_start_on_monday_in_the_zone() {
        let tz: Tz = "America/Chicago".parse().unwrap();
        // Monday 2026-11-23 03:00 UTC is still Sunday evening in Chicago.
        let at = DateTime::parse_from_rfc3339("2026-11-23T03:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(week_of(at, tz), NaiveDate::from_ymd_opt(2026, 11, 16).unwrap());
        assert_eq!(week_of(at, Tz::UTC), NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
    }

    #[test]
    fn the_default_range_is_the_last_four_weeks_including_today() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T23:30:00Z").unwrap().with_timezone(&Utc);
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let r = range(None, None, tz, now).unwrap();
        // 23:30 UTC is already Monday the 23rd in Berlin.
        assert_eq!(r.last, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        assert_eq!(r.first, NaiveDate::from_ymd_opt(2026, 10, 27).unwrap());
        assert_eq!(r.to.to_rfc3339(), "2026-11-23T23:00:00+00:00");
        assert!(range(Some("2026-11-05"), Some("2026-11-01"), tz, now).unwrap_err().contains("after"));
        assert!(range(Some("5 Nov"), None, tz, now).unwrap_err().starts_with("from:"));
    }

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(defuse("=HYPERLINK(\"x\")".into()), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("@SUM(A1)".into()), "'@SUM(A1)");
        assert_eq!(defuse("disk full".into()), "disk full");
    }

    #[test]
    fn waiting_time_is_not_resolution_time() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let pauses = [
            Pause { from: t("2026-11-02T10:00:00Z"), to: Some(t("2026-11-02T12:00:00Z")) },
            Pause { from: t("2026-11-02T13:00:00Z"), to: None },
        ];
        let within = paused_within(&pauses, t("2026-11-02T09:00:00Z"), t("2026-11-02T14:00:00Z"));
        assert_eq!(within, TimeDelta::hours(3));
    }
}
