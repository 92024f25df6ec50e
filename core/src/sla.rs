//! SLA plans: what a customer was promised, per priority, and the deadlines
//! those promises give a case.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;

/// A case priority: `P1`–`P4` or a name a plan defines (`critical`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Priority(String);

impl Priority {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Priority {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = (1..=16).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(Self(s))
        } else {
            Err(format!("priority {s:?} is not valid: use 1-16 letters, digits, '-' or '_' (e.g. \"P1\")"))
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_owned())
    }
}

impl From<Priority> for String {
    fn from(p: Priority) -> String {
        p.0
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three promises of one priority, in working time of the plan's calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    /// Until the first acknowledgement (or reply: `respond_met_by`).
    pub respond: TimeDelta,
    /// Between updates once acknowledged.
    pub update: TimeDelta,
    /// Until resolved.
    pub resolve: TimeDelta,
}

/// What meets a plan's respond clock (`respond_met_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RespondMetBy {
    /// The first acknowledgement (the team heard).
    #[default]
    Ack,
    /// The first reply to the customer (the customer heard).
    Reply,
}

/// What meets a plan's update clock (`update_met_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateMetBy {
    /// A note or a reply.
    #[default]
    Note,
    /// Only a reply to the customer.
    Reply,
}

impl RespondMetBy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ack" => Some(Self::Ack),
            "reply" => Some(Self::Reply),
            _ => None,
        }
    }
}

impl UpdateMetBy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "note" => Some(Self::Note),
            "reply" => Some(Self::Reply),
            _ => None,
        }
    }
}

/// An SLA plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub calendar: String,
    /// What meets the respond clock; the escalation stops at the
    /// acknowledgement either way.
    pub respond_met_by: RespondMetBy,
    /// What meets the update clock.
    pub update_met_by: UpdateMetBy,
    /// Tell the customer, in their thread, when the case is acknowledged
    /// (`tell_customer = ["ack"]`).
    pub tell_ack: bool,
    /// … and when it is resolved, with how to reopen it (`"resolve"`).
    pub tell_resolve: bool,
    pub priorities: BTreeMap<Priority, Targets>,
}

/// A customer organisation, recognised by its mail domains.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub name: String,
    /// Lower-case domains.
    pub domains: Vec<String>,
    pub plan: String,
}

impl Customer {
    /// Whether `address` (`ops@acme.com`) belongs to this customer. A
    /// subdomain of a customer's domain belongs to it too.
    pub fn owns(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else { return false };
        let domain = domain.trim_end_matches('>').to_ascii_lowercase();
        self.domains
            .iter()
            .any(|d| domain == *d || domain.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.')))
    }
}

/// The deadlines of a case; `None` where a clock is not running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    pub respond: Option<DateTime<Utc>>,
    pub update: Option<DateTime<Utc>>,
    pub resolve: Option<DateTime<Utc>>,
}

/// Deadline of a clock started at `from` with `target` of working time,
/// falling back to a 24x7 reading if the calendar cannot place it.
pub fn due(calendar: &Calendar, from: DateTime<Utc>, target: TimeDelta) -> DateTime<Utc> {
    calendar.deadline(from, target).unwrap_or(from + target)
}

/// The three SLA clocks of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlaClock {
    Respond,
    Update,
    Resolve,
}

impl SlaClock {
    pub const ALL: [SlaClock; 3] = [SlaClock::Respond, SlaClock::Update, SlaClock::Resolve];

    pub fn as_str(self) -> &'static str {
        match self {
            SlaClock::Respond => "respond",
            SlaClock::Update => "update",
            SlaClock::Resolve => "resolve",
        }
    }

    pub fn parse(s: &str) -> Option<SlaClock> {
        SlaClock::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The target of this clock in `targets`.
    pub fn target(self, targets: &Targets) -> TimeDelta {
        match self {
            SlaClock::Respond => targets.respond,
            SlaClock::Update => targets.update,
            SlaClock::Resolve => targets.resolve,
        }
    }
}

/// An interval during which a clock stood still; `to` is `None` while it
/// still does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
}

/// The instant a clock started at `start` reaches `target` of working time,
/// not counting `pauses` (sorted, non-overlapping). `None` while the clock
/// is paused and has not yet reached its target.
pub fn due_with_pauses(
    calendar: &Calendar,
    start: DateTime<Utc>,
    target: TimeDelta,
    pauses: &[Pause],
) -> Option<DateTime<Utc>> {
    let mut left = target;
    let mut from = start;
    for p in pauses {
        if p.from > from {
            let run = calendar.working_time(from, p.from);
            if run >= left {
                return Some(due(calendar, from, left));
            }
            left -= run;
        }
        from = from.max(p.to?);
    }
    Some(due(calendar, from, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn pauses_push_a_deadline_back_by_their_working_time() {
        let c = Calendar::always();
        let start = at("2026-01-05T10:00:00Z");
        let four = TimeDelta::hours(4);
        assert_eq!(due_with_pauses(&c, start, four, &[]), Some(at("2026-01-05T14:00:00Z")));
        let p = [Pause { from: at("2026-01-05T11:00:00Z"), to: Some(at("2026-01-05T12:30:00Z")) }];
        assert_eq!(due_with_pauses(&c, start, four, &p), Some(at("2026-01-05T15:30:00Z")));
        let open = [Pause { from: at("2026-01-05T11:00:00Z"), to: None }];
        assert_eq!(due_with_pauses(&c, start, four, &open), None);
        // A deadline reached before a pause began stays where it was.
        let late = [Pause { from: at("2026-01-05T16:00:00Z"), to: None }];
        assert_eq!(due_with_pauses(&c, start, four, &late), Some(at("2026-01-05T14:00:00Z")));
    }

    #[test]
    fn customers_own_their_domains_and_subdomains_only() {
        let acme = Customer { name: "Acme".into(), domains: vec!["acme.com".into()], plan: "gold".into() };
        assert!(acme.owns("ops@acme.com"));
        assert!(acme.owns("ops@EU.Acme.com"));
        assert!(!acme.owns("ops@notacme.com"));
        assert!(!acme.owns("acme.com"));
    }
}
