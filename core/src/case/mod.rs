//! Cases: what they are, what happens to them, and the effects each change
//! has, as plain data.
//!
//! Every change to a case is decided by a pure function in [`decide`]: it
//! takes the case, the rules and `now`, and returns a [`Transition`]: the new
//! case, the timeline events, the pages to send and the timers to set or
//! cancel. The store then commits a transition atomically, so a page exists
//! if and only if the change that caused it does.

pub mod clocks;
pub mod decide;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::escalation::Position;
use crate::people::{ChannelKind, PersonId};
use crate::routing::Urgency;
use crate::sla::{Deadlines, Pause, Priority, SlaClock};

pub use decide::{ActionError, Facts};

/// A case number, shown as `#1042`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseNumber(pub i64);

impl FromStr for CaseNumber {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.trim().trim_start_matches('#');
        match digits.parse::<i64>() {
            Ok(n) if n > 0 && !digits.starts_with('+') => Ok(Self(n)),
            _ => Err(format!("{s:?} is not a case number: write digits such as 1042")),
        }
    }
}

impl fmt::Display for CaseNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nobody has acknowledged it; the escalation policy runs.
    Open,
    Acknowledged,
    /// Waiting on the customer.
    Waiting,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 5] =
        [Status::Open, Status::Acknowledged, Status::Waiting, Status::Resolved, Status::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Waiting => "waiting",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Resolved or closed: the work is done.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Resolved | Status::Closed)
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}: use open, acknowledged, waiting, resolved or closed"))
    }
}

/// Where a case's escalation stands: the step that ran last, and whether
/// the policy is still running (not acknowledged, not exhausted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    pub at: Position,
    pub running: bool,
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub number: CaseNumber,
    pub subject: String,
    pub body: String,
    pub customer: Option<String>,
    pub requester: String,
    pub priority: Priority,
    pub plan: String,
    pub policy: String,
    pub status: Status,
    pub assignee: Option<PersonId>,
    pub opened_at: DateTime<Utc>,
    pub acked_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub deadlines: Deadlines,
    /// When the current respond window began: the open, or the last reopen.
    pub respond_from: DateTime<Utc>,
    /// When the current update window began: the last acknowledgement,
    /// update or resume; `None` while the update clock is stopped.
    pub update_from: Option<DateTime<Utc>>,
    /// When the resolve clock stood still (waiting on the customer, or
    /// resolved before a reopen). Kept as history, so a change of plan or
    /// priority recomputes every deadline from the original start.
    pub pauses: Vec<Pause>,
    /// Warnings and breaches already announced in the current windows, as
    /// `clock:index` and `clock:breach`; each fires once per window.
    pub warned: BTreeSet<String>,
    /// Warnings to the assignee are held until then (SNOOZE).
    pub snoozed_until: Option<DateTime<Utc>>,
    pub escalation: Escalation,
    /// Opened by mail whose From could not be verified (`[email] verify`):
    /// the sender may not be who they say. Set at opening, never changed.
    pub unverified: bool,
    /// When the respond clock of the current window was met: the first
    /// acknowledgement, or on a plan with `respond_met_by = "reply"` the
    /// first reply to the customer. `None` while it runs.
    pub respond_met_at: Option<DateTime<Utc>>,
    /// When the update clock was last met (a note or reply, as the plan's
    /// `update_met_by` says); `None` until then in the current window.
    pub update_met_at: Option<DateTime<Utc>>,
    /// Its route's urgency: set at opening, worked out again when its
    /// priority changes.
    pub urgency: Urgency,
    /// A `working-hours` case that came up outside working time: nobody is
    /// paged until then, when its policy runs from step 1 (a
    /// [`TimerKind::Hold`] timer). `None` when not held.
    pub held_until: Option<DateTime<Utc>>,
    /// Bumped by every committed change; a commit names the version it was
    /// decided on, so two racing changes cannot both apply.
    pub version: i64,
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Person(PersonId),
    /// An API token that belongs to no person, by its name.
    Token(String),
    /// A customer, by mail address.
    Customer(String),
    /// Tocsin itself (timers).
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Person(p) => write!(f, "{p}"),
            Actor::Token(t) => write!(f, "token:{t}"),
            Actor::Customer(a) => f.write_str(a),
            Actor::System => f.write_str("tocsin"),
        }
    }
}

/// The door an action came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Sms,
    Email,
    Dashboard,
    Scheduler,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Sms => "sms",
            Via::Email => "email",
            Via::Dashboard => "dashboard",
            Via::Scheduler => "scheduler",
        }
    }
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Opened,
    Paged,
    Acknowledged,
    Note,
    Resolved,
    Reopened,
    Escalated,
    Breach,
    Warning,
    Exhausted,
    Waiting,
    Resumed,
    Changed,
    Snoozed,
    /// Mail from the customer (or an automatic message) joined the case.
    Mail,
    /// A page did not reach its person ([`crate::delivery`]).
    PageFailed,
    /// The mail that opened the case could not be verified: why, and what
    /// it was therefore not allowed to do.
    Unverified,
    /// An engineer answered the customer in the case's thread (a note, by
    /// contrast, stays inside the team).
    Reply,
    /// A message to the customer (a reply) left Tocsin: its delivery
    /// status, as a failed page's is.
    Sent,
    /// A `working-hours` case came up outside working time: nobody is
    /// paged until it begins.
    Held,
    /// The case was given to someone (assignment, TAKE, ASSIGN).
    Assigned,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Paged => "paged",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Note => "note",
            EventKind::Resolved => "resolved",
            EventKind::Reopened => "reopened",
            EventKind::Escalated => "escalated",
            EventKind::Breach => "breach",
            EventKind::Warning => "warning",
            EventKind::Exhausted => "exhausted",
            EventKind::Waiting => "waiting",
            EventKind::Resumed => "resumed",
            EventKind::Changed => "changed",
            EventKind::Snoozed => "snoozed",
            EventKind::Mail => "mail",
            EventKind::PageFailed => "page_failed",
            EventKind::Unverified => "unverified",
            EventKind::Reply => "reply",
            EventKind::Sent => "sent",
            EventKind::Held => "held",
            EventKind::Assigned => "assigned",
        }
    }
}

/// A timeline entry to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub actor: String,
    pub channel: Option<Via>,
    pub text: String,
}

/// Why a message goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// An escalation step pages someone.
    Page,
    /// The assignee missed an update.
    Reminder,
    /// A deadline passed: managers are told.
    Breach,
    /// Part of an SLA window is used up: the assignee is told.
    Warning,
    /// The requester learns the case number.
    Receipt,
    /// The answer to an engineer's emailed command.
    Confirmation,
    /// News for managers that belongs to no case (a rotation lost a
    /// channel).
    Notice,
    /// The managers' daily summary.
    Digest,
    /// The customer wrote on a case: its assignee is told.
    Reply,
    /// An engineer's reply, mailed to the customer in the case's thread.
    CustomerReply,
    /// The customer is told someone is on their case (`tell_customer`).
    CustomerAck,
    /// The customer is told their case was resolved, and how to reopen it.
    CustomerResolved,
    /// A case was given to someone: the new assignee is told.
    Assigned,
}

impl PageKind {
    pub const ALL: [PageKind; 13] = [
        PageKind::Page,
        PageKind::Reminder,
        PageKind::Breach,
        PageKind::Warning,
        PageKind::Receipt,
        PageKind::Confirmation,
        PageKind::Notice,
        PageKind::Digest,
        PageKind::Reply,
        PageKind::CustomerReply,
        PageKind::CustomerAck,
        PageKind::CustomerResolved,
        PageKind::Assigned,
    ];

    /// Position in [`PageKind::ALL`]. The match is exhaustive, so a new kind
    /// cannot compile until it is given a place; a test checks `ALL` agrees.
    pub const fn index(self) -> usize {
        match self {
            PageKind::Page => 0,
            PageKind::Reminder => 1,
            PageKind::Breach => 2,
            PageKind::Warning => 3,
            PageKind::Receipt => 4,
            PageKind::Confirmation => 5,
            PageKind::Notice => 6,
            PageKind::Digest => 7,
            PageKind::Reply => 8,
            PageKind::CustomerReply => 9,
            PageKind::CustomerAck => 10,
            PageKind::CustomerResolved => 11,
            PageKind::Assigned => 12,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Page => "page",
            PageKind::Reminder => "reminder",
            PageKind::Breach => "breach",
            PageKind::Warning => "warning",
            PageKind::Receipt => "receipt",
            PageKind::Confirmation => "confirmation",
            PageKind::Notice => "notice",
            PageKind::Digest => "digest",
            PageKind::Reply => "reply",
            PageKind::CustomerReply => "customer_reply",
            PageKind::CustomerAck => "customer_ack",
            PageKind::CustomerResolved => "customer_resolved",
            PageKind::Assigned => "assigned",
        }
    }

    /// Messages to the customer rather than to the team: they go to the
    /// requester's address, never fall back to a person's other channel,
    /// and a mail answering one is the customer's, never an engineer's
    /// command.
    pub fn to_customer(self) -> bool {
        matches!(self, PageKind::Receipt | PageKind::CustomerReply | PageKind::CustomerAck | PageKind::CustomerResolved)
    }

    /// Mail in the customer's thread: it answers their latest message and
    /// its `Reply-To` threads their answer back into the case.
    pub fn in_customer_thread(self) -> bool {
        matches!(self, PageKind::CustomerReply | PageKind::CustomerAck | PageKind::CustomerResolved)
    }

    /// Whether the email is written by a person (a reply), so it carries
    /// no `Auto-Submitted` header (RFC 3834 §5) and the customer's
    /// autoresponder may answer it.
    pub fn written_by_a_person(self) -> bool {
        matches!(self, PageKind::CustomerReply)
    }
}

#[cfg(test)]
#[test]
fn every_page_kind_is_listed_once_and_parses_back() {
    for (i, kind) in PageKind::ALL.iter().enumerate() {
        assert_eq!(kind.index(), i);
        assert_eq!(kind.as_str().parse::<PageKind>(), Ok(*kind));
    }
    assert_eq!(PageKind::ALL.len(), PageKind::Assigned.index() + 1, "a kind is missing from ALL");
}

impl FromStr for PageKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PageKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown page kind {s:?}"))
    }
}

/// A message to queue in the outbox, written with the change that causes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPage {
    /// `None` for messages to customers.
    pub person: Option<PersonId>,
    pub address: String,
    pub channel: ChannelKind,
    pub kind: PageKind,
    /// The escalation step that sent it, for step pages.
    pub position: Option<Position>,
    /// Why, in words (the breached deadline, …); for a reply to the
    /// customer, its text.
    pub detail: String,
    /// Who wrote it, for a reply to the customer (the mail names them);
    /// `None` for every other message.
    pub author: Option<PersonId>,
}

/// The durable timers a case can have; at most one of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// The wait after an escalation step ends.
    Step,
    /// An SLA clock reaches its target: a breach unless its event came.
    Deadline(SlaClock),
    /// An SLA clock used up the n-th configured fraction of its window.
    Warn(SlaClock, u8),
    /// The assignee was reminded of a missed update; escalate if still silent.
    UpdateGrace,
    /// A held `working-hours` case: working time begins, the policy runs
    /// from step 1.
    Hold,
}

impl fmt::Display for TimerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerKind::Step => f.write_str("step"),
            TimerKind::Deadline(c) => f.write_str(c.as_str()),
            TimerKind::Warn(c, i) => write!(f, "warn:{}:{i}", c.as_str()),
            TimerKind::UpdateGrace => f.write_str("update_grace"),
            TimerKind::Hold => f.write_str("hold"),
        }
    }
}

impl FromStr for TimerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown timer kind {s:?}");
        match s {
            "step" => Ok(TimerKind::Step),
            "update_grace" => Ok(TimerKind::UpdateGrace),
            "hold" => Ok(TimerKind::Hold),
            _ => match s.split(':').collect::<Vec<_>>()[..] {
                ["warn", clock, i] => {
                    Ok(TimerKind::Warn(SlaClock::parse(clock).ok_or_else(bad)?, i.parse().map_err(|_| bad())?))
                }
                [clock] => SlaClock::parse(clock).map(TimerKind::Deadline).ok_or_else(bad),
                _ => Err(bad()),
            },
        }
    }
}

/// A timer to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTimer {
    pub kind: TimerKind,
    pub due: DateTime<Utc>,
    /// For step timers: the step whose wait this is.
    pub position: Position,
}

/// A stored timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub id: i64,
    pub case: CaseNumber,
    pub kind: TimerKind,
    pub due: DateTime<Utc>,
    pub position: Position,
}

/// The inbound message a change files, marked in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    /// The inbox row.
    pub inbox_id: i64,
    /// Its Message-ID, recorded for threading.
    pub message_id: Option<String>,
    /// What the row becomes: filed, automatic (an auto-reply joined the
    /// case) or command (an engineer's reply), with `note` (why).
    pub status: crate::mail::InboxStatus,
    pub note: String,
    /// The attachments it carries, listed on the case with it.
    pub attachments: Vec<crate::mail::attachments::Attachment>,
}

/// Everything one change does, committed as one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// When the change was decided: the instant its rows are stamped with.
    pub at: DateTime<Utc>,
    /// The case after the change.
    pub case: Case,
    pub events: Vec<NewEvent>,
    pub pages: Vec<NewPage>,
    /// Timer kinds of this case to delete (before `timers` are set).
    pub cancel: Vec<TimerKind>,
    pub timers: Vec<NewTimer>,
    /// The inbound mail this change files, if any.
    pub filing: Option<Filing>,
    /// The client's idempotency key, for a case opened over the API: kept
    /// with the case, so a retried request finds it instead of opening a
    /// second one.
    pub request: Option<RequestKey>,
}

/// An `Idempotency-Key` a client sent with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// Whose key: the token's name, so two clients never share keys.
    pub scope: String,
    pub key: String,
    /// A digest of what was asked, to tell a retry from a new request that
    /// reuses the key by mistake.
    pub fingerprint: String,
}

impl Transition {
    /// A transition decided at `at` that starts from `case` and changes
    /// nothing yet.
    pub fn new(case: &Case, at: DateTime<Utc>) -> Self {
        Self {
            at,
            case: case.clone(),
            events: Vec::new(),
            pages: Vec::new(),
            cancel: Vec::new(),
            timers: Vec::new(),
            filing: None,
            request: None,
        }
    }

    /// Replaces the timer of `kind` (cancelling any earlier one).
    pub fn set_timer(&mut self, kind: TimerKind, due: DateTime<Utc>, position: Position) {
        self.cancel_timer(kind);
        self.timers.retain(|t| t.kind != kind);
        self.timers.push(NewTimer { kind, due, position });
    }

    pub fn cancel_timer(&mut self, kind: TimerKind) {
        if !self.cancel.contains(&kind) {
            self.cancel.push(kind);
        }
        self.timers.retain(|t| t.kind != kind);
    }
}

/// A timeline entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor: String,
    pub channel: Option<String>,
    pub text: String,
}
