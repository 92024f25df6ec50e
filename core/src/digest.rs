//! The managers' daily digest: what it says, and when it falls due. Pure;
//! the daemon's digester reads the figures and queues the mail.

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

use crate::case::CaseNumber;
use crate::people::Person;

/// What the managers' daily digest reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DigestData {
    /// Cases by status (all of them).
    pub by_status: Vec<(String, i64)>,
    /// Breaches recorded since the digest's window began: case and text.
    pub breaches: Vec<(CaseNumber, String)>,
    /// The not-yet-resolved cases whose next deadline comes first: case,
    /// priority, subject, deadline.
    pub due: Vec<(CaseNumber, String, String, DateTime<Utc>)>,
}

/// The digest text for `manager` at `now`. Pure.
pub fn text(manager: &Person, data: &DigestData, on_call: &[(String, Option<String>)], now: DateTime<Utc>) -> String {
    let tz = manager.timezone;
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%a %d %b %H:%M").to_string();
    let mut out = format!("Tocsin, {}\n\nCases by status:", local(now));
    if data.by_status.is_empty() {
        out += " none yet";
    }
    for (status, n) in &data.by_status {
        out += &format!("\n  {status}: {n}");
    }
    out += "\n\nBreaches in the last 24 hours:";
    if data.breaches.is_empty() {
        out += " none";
    }
    for (case, what) in &data.breaches {
        out += &format!("\n  {case}: {what}");
    }
    out += "\n\nNext deadlines:";
    if data.due.is_empty() {
        out += " none";
    }
    for (case, priority, subject, at) in &data.due {
        let subject: String = subject.chars().take(60).collect();
        out += &format!("\n  {} {case} {priority} {subject}", local(*at));
    }
    out += "\n\nOn call now:";
    for (schedule, who) in on_call {
        out += &format!("\n  {schedule}: {}", who.as_deref().unwrap_or("nobody"));
    }
    out
}

/// The next instant after `now` at which one of `managers`' digests falls
/// due: `at` on that manager's own clock, today or tomorrow.
pub fn next_due<'a>(managers: impl Iterator<Item = &'a Person>, at: NaiveTime, now: DateTime<Utc>) -> DateTime<Utc> {
    let next = managers.filter_map(|m| {
        let local = now.with_timezone(&m.timezone).date_naive();
        [local, local.succ_opt()?]
            .into_iter()
            .filter_map(|d| crate::schedule::to_utc(m.timezone, d.and_time(at)))
            .find(|t| *t > now)
    });
    next.min().unwrap_or(now + TimeDelta::days(1))
}
