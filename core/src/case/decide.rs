//! The pure decisions: given a case, the rules and `now`, what changes.
//! Nothing here reads a clock, a database or a socket.
//!
//! Every decision ends by calling [`Facts::clocks`], which derives the
//! deadlines and the SLA timers from the case's history (window starts,
//! pauses, warnings already given). So no action computes a deadline of its
//! own, and a change of priority or plan is just "recompute".

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::{
    Actor, Case, CaseNumber, Escalation, EventKind, NewEvent, NewPage, PageKind, Status, Timer, TimerKind, Transition,
    Via,
};
use crate::calendar::Calendar;
use crate::escalation::{Overrides, Position, resolve_targets};
use crate::people::{ChannelKind, PersonId};
use crate::routing::{self, Incoming, Urgency};
use crate::rules::Rules;
use crate::sla::{self, Deadlines, Pause, Plan, Priority, RespondMetBy, SlaClock, Targets, UpdateMetBy};

/// Why an action was refused. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    #[error("case {number} was already acknowledged by {by} at {at}")]
    AlreadyAcknowledged { number: CaseNumber, by: String, at: String },
    #[error("case {number} is {status}; reopen it first")]
    Done { number: CaseNumber, status: &'static str },
    #[error("case {number} is {status}, not resolved; only a resolved or closed case can be reopened")]
    NotDone { number: CaseNumber, status: &'static str },
    #[error("case {number} was already escalated past {from}; it is at {now}")]
    AlreadyEscalated { number: CaseNumber, from: Position, now: Position },
    #[error("case {number} is at the last step of policy {policy}; there is no next step to escalate to")]
    NoNextStep { number: CaseNumber, policy: String },
    #[error("case {number} is {status}; {what}")]
    WrongStatus { number: CaseNumber, status: &'static str, what: &'static str },
    #[error("acknowledging needs a person: use a person's token, or name one with {{\"by\": \"ana\"}}")]
    NeedsPerson,
    #[error("unknown person {0:?}: use an id from rules/people.toml")]
    UnknownPerson(String),
    #[error("priority {priority} is not in plan {plan}: use one of {known}")]
    UnknownPriority { priority: String, plan: String, known: String },
    #[error("unknown plan {0:?}: use a plan from rules/sla.toml")]
    UnknownPlan(String),
    #[error("policy {0:?} is not in the rules any more: fix rules/routing.toml")]
    UnknownPolicy(String),
    #[error("a note needs text: send {{\"text\": \"what changed\"}}")]
    EmptyText,
    #[error("nothing to change: send a new \"priority\" or \"plan\"")]
    NothingToChange,
    #[error("case {number} is already assigned to {to}")]
    AlreadyAssigned { number: CaseNumber, to: String },
    #[error("case {0} was resolved too long ago to reopen")]
    TooOldToReopen(CaseNumber),
    #[error("a reply needs text: send {{\"text\": \"what to tell the customer\"}}")]
    EmptyReply,
    #[error(
        "a reply to the customer is signed by a person: use a person's token, or name one with {{\"by\": \"ana\"}}"
    )]
    ReplyNeedsPerson,
}

/// A new case, as a door hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub subject: String,
    pub body: String,
    /// The customer's mail address.
    pub requester: String,
    pub priority: Option<Priority>,
    pub actor: Actor,
    pub via: Via,
    /// Whether the requester gets a receipt (not when rate-limited).
    pub receipt: bool,
    /// Why the mail that opens it could not be verified, if it could not
    /// (`[email] verify`): the case is marked unverified and the timeline
    /// says why.
    pub unverified: Option<String>,
}

/// What the decisions read: the rules, the overrides and the time.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub rules: &'a Rules,
    pub overrides: &'a Overrides,
    /// People who replied STOP: not paged by SMS.
    pub sms_off: &'a BTreeSet<PersonId>,
    pub now: DateTime<Utc>,
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `target * fraction`, to the second.
fn part(target: TimeDelta, fraction: f64) -> TimeDelta {
    TimeDelta::seconds((target.num_seconds() as f64 * fraction).round() as i64)
}

/// Whether `clock` runs for `case` now.
pub fn running(case: &Case, clock: SlaClock) -> bool {
    match clock {
        // Met by what the plan says (the acknowledgement, or the first reply
        // to the customer); an acknowledged case on a reply-measured plan
        // still counts down.
        SlaClock::Respond => {
            case.respond_met_at.is_none() && matches!(case.status, Status::Open | Status::Acknowledged)
        }
        SlaClock::Update => case.status == Status::Acknowledged && case.update_from.is_some(),
        SlaClock::Resolve => !case.status.is_done() && case.pauses.last().is_none_or(|p| p.to.is_some()),
    }
}

/// The deadline a case must meet next, and when its first warning falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextDue {
    pub clock: SlaClock,
    pub at: DateTime<Utc>,
    /// When the first `warn_at` fraction of that window is used up.
    pub warn: Option<DateTime<Utc>>,
}

/// The earliest deadline among the clocks running for `case` (none while
/// it waits on the customer or once resolved), with its first warning,
/// computed by the same calendar arithmetic that sets the timers.
pub fn next_due(rules: &Rules, case: &Case) -> Option<NextDue> {
    let (clock, at) = SlaClock::ALL
        .into_iter()
        .filter(|c| running(case, *c))
        .filter_map(|clock| {
            let at = match clock {
                SlaClock::Respond => case.deadlines.respond,
                SlaClock::Update => case.deadlines.update,
                SlaClock::Resolve => case.deadlines.resolve,
            }?;
            Some((clock, at))
        })
        .min_by_key(|(_, at)| *at)?;
    let warn = (|| {
        let plan = rules.plans.get(&case.plan)?;
        let targets = plan.priorities.get(&case.priority)?;
        let calendar = rules.calendars.get(&plan.calendar)?;
        let fraction = rules.warn_at.first()?;
        let (from, pauses) = Facts::window(case, clock)?;
        sla::due_with_pauses(calendar, from, part(clock.target(targets), *fraction), pauses)
    })();
    Some(NextDue { clock, at, warn })
}

impl Facts<'_> {
    fn event(&self, kind: EventKind, actor: &Actor, via: Via, text: impl Into<String>) -> NewEvent {
        NewEvent { at: self.now, kind, actor: actor.to_string(), channel: Some(via), text: text.into() }
    }

    fn system_event(&self, kind: EventKind, text: impl Into<String>) -> NewEvent {
        NewEvent {
            at: self.now,
            kind,
            actor: Actor::System.to_string(),
            channel: Some(Via::Scheduler),
            text: text.into(),
        }
    }

    /// The case's SLA targets and calendar, if its plan still defines them.
    fn sla(&self, case: &Case) -> Option<(Targets, &Calendar)> {
        let plan = self.rules.plans.get(&case.plan)?;
        let targets = plan.priorities.get(&case.priority)?;
        Some((*targets, self.rules.calendars.get(&plan.calendar)?))
    }

    /// Where each running clock's window starts, and its pauses.
    fn window(case: &Case, clock: SlaClock) -> Option<(DateTime<Utc>, &[Pause])> {
        match clock {
            SlaClock::Respond => Some((case.respond_from, &[])),
            SlaClock::Update => case.update_from.map(|f| (f, &[][..])),
            SlaClock::Resolve => Some((case.opened_at, &case.pauses[..])),
        }
    }

    /// Derives the deadlines and the SLA timers of `tr.case` from its
    /// history. Warnings and breaches already given in the current window
    /// are not set again.
    pub fn clocks(&self, tr: &mut Transition) {
        let warnings = self.rules.warn_at.len() as u8;
        let Some((targets, calendar)) = self.sla(&tr.case) else {
            for clock in SlaClock::ALL {
                tr.cancel_timer(TimerKind::Deadline(clock));
                (0..warnings).for_each(|i| tr.cancel_timer(TimerKind::Warn(clock, i)));
            }
            return;
        };
        for clock in SlaClock::ALL {
            let target = clock.target(&targets);
            let due = Self::window(&tr.case, clock)
                .and_then(|(from, pauses)| sla::due_with_pauses(calendar, from, target, pauses));
            let on = running(&tr.case, clock);
            match clock {
                // The respond deadline stays visible once met.
                SlaClock::Respond => tr.case.deadlines.respond = due,
                SlaClock::Update => tr.case.deadlines.update = due.filter(|_| on),
                // Unknown while waiting; the last one stays once resolved.
                SlaClock::Resolve if !tr.case.status.is_done() => tr.case.deadlines.resolve = due,
                SlaClock::Resolve => {}
            }
            let armed = |key: String, tr: &Transition| on && !tr.case.warned.contains(&key);
            match due {
                Some(due) if armed(format!("{}:breach", clock.as_str()), tr) => {
                    tr.set_timer(TimerKind::Deadline(clock), due, Position::FIRST)
                }
                _ => tr.cancel_timer(TimerKind::Deadline(clock)),
            }
            for (i, fraction) in self.rules.warn_at.iter().enumerate() {
                let kind = TimerKind::Warn(clock, i as u8);
                let at = Self::window(&tr.case, clock)
                    .and_then(|(from, pauses)| sla::due_with_pauses(calendar, from, part(target, *fraction), pauses));
                match at {
                    Some(at) if armed(format!("{}:{i}", clock.as_str()), tr) => tr.set_timer(kind, at, Position::FIRST),
                    _ => tr.cancel_timer(kind),
                }
            }
        }
    }

    /// Queues a templated mail in the customer's thread (`tell_customer`).
    /// Never for a case whose sender could not be verified: the requester
    /// may be forged, and Tocsin must not mail a stranger.
    fn tell_customer(tr: &mut Transition, kind: PageKind, detail: &str, by: Option<&PersonId>) {
        if tr.case.unverified {
            return;
        }
        tr.pages.push(NewPage {
            person: None,
            address: tr.case.requester.clone(),
            channel: ChannelKind::Email,
            kind,
            position: None,
            detail: detail.to_owned(),
            author: by.cloned(),
        });
    }

    /// The case's plan, if the rules still have it.
    fn plan_of(&self, case: &Case) -> Option<&Plan> {
        self.rules.plans.get(&case.plan)
    }

    /// An update met the update clock now: a new window starts.
    fn updated(&self, tr: &mut Transition) {
        tr.case.update_from = Some(self.now);
        tr.case.update_met_at = Some(self.now);
        Self::new_window(&mut tr.case, SlaClock::Update);
        tr.cancel_timer(TimerKind::UpdateGrace);
        self.clocks(tr);
    }

    /// Starts a new window of `clock`: its warnings may fire again.
    fn new_window(case: &mut Case, clock: SlaClock) {
        let prefix = format!("{}:", clock.as_str());
        case.warned.retain(|k| !k.starts_with(&prefix));
    }

    /// Opens a case: picks customer, plan, priority and policy, sets the
    /// deadlines, sends the receipt and runs the first escalation step. The
    /// returned case has number 0; the store assigns the real one.
    pub fn open(&self, new: NewCase) -> Result<Transition, ActionError> {
        let customer = self.rules.customer_for(&new.requester);
        let plan = self.rules.plan_for(customer);
        let incoming = Incoming {
            subject: &new.subject,
            body: &new.body,
            customer: customer.map(|c| c.name.as_str()),
            priority: new.priority.as_ref(),
        };
        let route = routing::route(&self.rules.routes, &incoming);
        let priority = new.priority.clone().or_else(|| route.map(|r| r.priority.clone()));
        let Some(priority) = priority.filter(|p| plan.priorities.contains_key(p)) else {
            let known = plan.priorities.keys().map(Priority::as_str).collect::<Vec<_>>().join(", ");
            let priority = new.priority.as_ref().map_or("(routed)".to_owned(), Priority::to_string);
            return Err(ActionError::UnknownPriority { priority, plan: plan.name.clone(), known });
        };
        let policy = route.map(|r| r.policy.clone()).ok_or_else(|| ActionError::UnknownPolicy("(no route)".into()))?;
        if !self.rules.policies.contains_key(&policy) {
            return Err(ActionError::UnknownPolicy(policy));
        }
        let case = Case {
            number: CaseNumber(0),
            subject: new.subject.clone(),
            body: new.body,
            customer: customer.map(|c| c.name.clone()),
            requester: new.requester.clone(),
            priority,
            plan: plan.name.clone(),
            policy,
            status: Status::Open,
            assignee: None,
            opened_at: self.now,
            acked_at: None,
            resolved_at: None,
            deadlines: Deadlines::default(),
            respond_from: self.now,
            update_from: None,
            pauses: Vec::new(),
            warned: BTreeSet::new(),
            snoozed_until: None,
            escalation: Escalation { at: Position::FIRST, running: true },
            unverified: new.unverified.is_some(),
            respond_met_at: None,
            update_met_at: None,
            urgency: route.map_or(Urgency::High, |r| r.urgency),
            held_until: None,
            version: 0,
        };
        let mut tr = Transition::new(&case, self.now);
        tr.events.push(self.event(EventKind::Opened, &new.actor, new.via, new.subject));
        if let Some(why) = &new.unverified {
            tr.events.push(self.system_event(
                EventKind::Unverified,
                format!("Unverified sender {}: {why}. It may not be who it says.", new.requester),
            ));
        }
        if new.receipt {
            tr.pages.push(NewPage {
                person: None,
                address: new.requester,
                channel: ChannelKind::Email,
                kind: PageKind::Receipt,
                position: None,
                detail: String::new(),
                author: None,
            });
        }
        self.clocks(&mut tr);
        self.start_policy(&mut tr)?;
        Ok(tr)
    }

    /// Runs the escalation step at `at`: pages whoever it reaches now and
    /// sets the timer for the end of its wait.
    fn run_step(&self, tr: &mut Transition, at: Position) -> Result<(), ActionError> {
        let policy = self
            .rules
            .policies
            .get(&tr.case.policy)
            .ok_or_else(|| ActionError::UnknownPolicy(tr.case.policy.clone()))?;
        let Some(step) = policy.step(at) else {
            return Err(ActionError::NoNextStep { number: tr.case.number, policy: policy.name.clone() });
        };
        let (people, misses) =
            resolve_targets(step, &self.rules.schedules, &self.rules.people, self.overrides, self.now);
        let mut reached = Vec::new();
        for id in &people {
            if let Some(how) = self.page_person(tr, id, PageKind::Page, Some(at), "") {
                reached.push(format!("{id} by {how}"));
            }
        }
        let mut text = format!("{at} of policy {}: ", policy.name);
        text += &if reached.is_empty() { "paged nobody".to_owned() } else { format!("paged {}", reached.join(", ")) };
        for miss in misses {
            text += &format!("; {miss}");
        }
        tr.events.push(self.system_event(EventKind::Paged, text));
        Self::release(tr);
        tr.case.escalation = Escalation { at, running: true };
        tr.set_timer(TimerKind::Step, self.now + step.wait, at);
        Ok(())
    }

    /// Queues a message to `id` on their first channel (by email alone for
    /// a `low` case, whatever their channel order); the channel's name, or
    /// `None` if the person is gone from the rules.
    fn page_person(
        &self,
        tr: &mut Transition,
        id: &PersonId,
        kind: PageKind,
        at: Option<Position>,
        detail: &str,
    ) -> Option<&'static str> {
        let person = self.rules.people.get(id)?;
        let (channel, address) = match tr.case.urgency {
            Urgency::Low => (ChannelKind::Email, person.email.as_str()),
            Urgency::High | Urgency::WorkingHours => person.reach(self.sms_off.contains(id), None)?,
        };
        let address = address.to_owned();
        tr.pages.push(NewPage {
            person: Some(id.clone()),
            address,
            channel,
            kind,
            position: at,
            detail: detail.to_owned(),
            author: None,
        });
        Some(channel.as_str())
    }

    fn refuse_done(case: &Case) -> Result<(), ActionError> {
        if case.status.is_done() {
            return Err(ActionError::Done { number: case.number, status: case.status.as_str() });
        }
        Ok(())
    }

    /// `by` acknowledges: the escalation stops, `by` becomes the assignee
    /// and the update clock starts.
    pub fn ack(&self, case: &Case, by: &PersonId, via: Via, text: Option<&str>) -> Result<Transition, ActionError> {
        Self::refuse_done(case)?;
        if !self.rules.people.contains_key(by) {
            return Err(ActionError::UnknownPerson(by.to_string()));
        }
        if matches!(case.status, Status::Acknowledged | Status::Waiting) {
            let by = case.assignee.as_ref().map_or_else(|| "someone".to_owned(), PersonId::to_string);
            return Err(ActionError::AlreadyAcknowledged {
                number: case.number,
                by,
                at: case.acked_at.map(stamp).unwrap_or_default(),
            });
        }
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Acknowledged;
        tr.case.assignee = Some(by.clone());
        tr.case.acked_at.get_or_insert(self.now);
        if self.plan_of(case).is_none_or(|p| p.respond_met_by == RespondMetBy::Ack) {
            tr.case.respond_met_at.get_or_insert(self.now);
        }
        tr.case.escalation.running = false;
        tr.case.update_from = Some(self.now);
        Self::new_window(&mut tr.case, SlaClock::Update);
        Self::release(&mut tr);
        tr.cancel_timer(TimerKind::Step);
        tr.cancel_timer(TimerKind::UpdateGrace);
        self.clocks(&mut tr);
        let text = text.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("acknowledged");
        tr.events.push(self.event(EventKind::Acknowledged, &Actor::Person(by.clone()), via, text));
        if self.plan_of(case).is_some_and(|p| p.tell_ack) {
            Self::tell_customer(&mut tr, PageKind::CustomerAck, "", Some(by));
        }
        Ok(tr)
    }

    /// A note on the timeline; on an acknowledged case it counts as the
    /// update the update clock waits for.
    pub fn note(&self, case: &Case, actor: &Actor, via: Via, text: &str) -> Result<Transition, ActionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ActionError::EmptyText);
        }
        let mut tr = Transition::new(case, self.now);
        // On a plan whose update clock is met only by a reply, a note
        // stays a note: the customer saw nothing.
        let counts = self.plan_of(case).is_none_or(|p| p.update_met_by == UpdateMetBy::Note);
        if case.status == Status::Acknowledged && counts {
            self.updated(&mut tr);
        }
        tr.events.push(self.event(EventKind::Note, actor, via, text));
        Ok(tr)
    }

    /// The case waits on the customer: the resolve clock pauses and the
    /// update clock stops until the customer answers or someone resumes.
    pub fn wait(&self, case: &Case, actor: &Actor, via: Via, text: Option<&str>) -> Result<Transition, ActionError> {
        if case.status != Status::Acknowledged {
            let what = "only an acknowledged case can wait on the customer";
            return Err(ActionError::WrongStatus { number: case.number, status: case.status.as_str(), what });
        }
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Waiting;
        tr.case.update_from = None;
        tr.case.pauses.push(Pause { from: self.now, to: None });
        tr.cancel_timer(TimerKind::UpdateGrace);
        self.clocks(&mut tr);
        tr.events.push(self.event(
            EventKind::Waiting,
            actor,
            via,
            text.map(str::trim).unwrap_or("waiting on the customer"),
        ));
        Ok(tr)
    }

    /// The wait is over (the customer answered, or someone resumes): the
    /// resolve clock runs on and a new update window starts.
    pub fn resume(&self, case: &Case, actor: &Actor, via: Via, text: Option<&str>) -> Result<Transition, ActionError> {
        if case.status != Status::Waiting {
            let what = "only a waiting case can be resumed";
            return Err(ActionError::WrongStatus { number: case.number, status: case.status.as_str(), what });
        }
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Acknowledged;
        if let Some(p) = tr.case.pauses.last_mut().filter(|p| p.to.is_none()) {
            p.to = Some(self.now);
        }
        tr.case.update_from = Some(self.now);
        Self::new_window(&mut tr.case, SlaClock::Update);
        self.clocks(&mut tr);
        tr.events.push(self.event(EventKind::Resumed, actor, via, text.map(str::trim).unwrap_or("no longer waiting")));
        Ok(tr)
    }

    /// Resolves the case: every clock and the escalation stop.
    pub fn resolve(&self, case: &Case, actor: &Actor, via: Via, text: Option<&str>) -> Result<Transition, ActionError> {
        Self::refuse_done(case)?;
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Resolved;
        tr.case.resolved_at = Some(self.now);
        tr.case.escalation.running = false;
        tr.case.update_from = None;
        if let Some(p) = tr.case.pauses.last_mut().filter(|p| p.to.is_none()) {
            p.to = Some(self.now);
        }
        if tr.case.assignee.is_none()
            && let Actor::Person(p) = actor
        {
            tr.case.assignee = Some(p.clone());
        }
        Self::release(&mut tr);
        tr.cancel_timer(TimerKind::Step);
        tr.cancel_timer(TimerKind::UpdateGrace);
        self.clocks(&mut tr);
        tr.events.push(self.event(EventKind::Resolved, actor, via, text.map(str::trim).unwrap_or("")));
        if self.plan_of(case).is_some_and(|p| p.tell_resolve) {
            let by = match actor {
                Actor::Person(p) => Some(p),
                _ => None,
            };
            Self::tell_customer(&mut tr, PageKind::CustomerResolved, text.map(str::trim).unwrap_or(""), by);
        }
        Ok(tr)
    }

    /// Reopens a resolved case: the time it spent resolved becomes a pause
    /// of the resolve clock, a new respond window starts, and the policy
    /// runs from its first step.
    pub fn reopen(&self, case: &Case, actor: &Actor, via: Via, text: Option<&str>) -> Result<Transition, ActionError> {
        if !case.status.is_done() {
            return Err(ActionError::NotDone { number: case.number, status: case.status.as_str() });
        }
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Open;
        tr.case.acked_at = None;
        tr.case.update_from = None;
        if let Some(resolved) = case.resolved_at {
            tr.case.pauses.push(Pause { from: resolved, to: Some(self.now) });
        }
        tr.case.resolved_at = None;
        tr.case.respond_from = self.now;
        tr.case.respond_met_at = None;
        tr.case.update_met_at = None;
        Self::new_window(&mut tr.case, SlaClock::Respond);
        Self::new_window(&mut tr.case, SlaClock::Update);
        self.clocks(&mut tr);
        tr.events.push(self.event(EventKind::Reopened, actor, via, text.map(str::trim).unwrap_or("")));
        self.start_policy(&mut tr)?;
        Ok(tr)
    }

    /// Mail from `from` joins the case. A customer's mail resumes a waiting
    /// case and reopens a resolved one (if resolved within `reopen_within`;
    /// else [`ActionError::TooOldToReopen`], and the mail opens a new
    /// case). Automatic mail only joins the timeline.
    pub fn mail(
        &self,
        case: &Case,
        from: &str,
        text: &str,
        automatic: Option<&str>,
        reopen_within: TimeDelta,
    ) -> Result<Transition, ActionError> {
        let actor = Actor::Customer(from.to_owned());
        let shown = if text.trim().is_empty() { "(no text)" } else { text.trim() };
        let event = |w: &Facts<'_>| match automatic {
            Some(why) => w.event(EventKind::Mail, &actor, Via::Email, format!("[automatic: {why}] {shown}")),
            None => w.event(EventKind::Mail, &actor, Via::Email, shown),
        };
        if automatic.is_some() {
            let mut tr = Transition::new(case, self.now);
            tr.events.push(event(self));
            return Ok(tr);
        }
        let mut tr = match case.status {
            Status::Waiting => self.resume(case, &actor, Via::Email, Some("the customer wrote"))?,
            Status::Resolved | Status::Closed => {
                let recent = case.resolved_at.is_some_and(|r| self.now - r <= reopen_within);
                if !recent {
                    return Err(ActionError::TooOldToReopen(case.number));
                }
                self.reopen(case, &actor, Via::Email, Some("the customer wrote"))?
            }
            _ => Transition::new(case, self.now),
        };
        tr.events.push(event(self));
        // The person working on the case hears that the customer wrote.
        if let Some(assignee) = tr.case.assignee.clone() {
            let said: String = shown.chars().take(500).collect();
            self.page_person(&mut tr, &assignee, PageKind::Reply, None, &format!("{from} wrote: {said}"));
        }
        Ok(tr)
    }

    /// SNOOZE by the assignee: warnings to them are held for `d`, but never
    /// past the next deadline of a running clock.
    pub fn snooze(&self, case: &Case, by: &PersonId, via: Via, d: TimeDelta) -> Result<Transition, ActionError> {
        Self::refuse_done(case)?;
        if case.status != Status::Acknowledged || case.assignee.as_ref() != Some(by) {
            let what = "SNOOZE holds reminders to the assignee of an acknowledged case";
            return Err(ActionError::WrongStatus { number: case.number, status: case.status.as_str(), what });
        }
        let deadline =
            [case.deadlines.update, case.deadlines.resolve].into_iter().flatten().filter(|d| *d > self.now).min();
        let until = deadline.map_or(self.now + d, |dl| dl.min(self.now + d));
        let mut tr = Transition::new(case, self.now);
        tr.case.snoozed_until = Some(until);
        tr.events.push(self.event(
            EventKind::Snoozed,
            &Actor::Person(by.clone()),
            via,
            format!("reminders held until {}", stamp(until)),
        ));
        Ok(tr)
    }

    /// Changes the priority and/or plan: every deadline is recomputed from
    /// the case's own history.
    pub fn change(
        &self,
        case: &Case,
        actor: &Actor,
        via: Via,
        priority: Option<Priority>,
        plan: Option<String>,
    ) -> Result<Transition, ActionError> {
        Self::refuse_done(case)?;
        let plan_name = plan.unwrap_or_else(|| case.plan.clone());
        let new_plan = self.rules.plans.get(&plan_name).ok_or_else(|| ActionError::UnknownPlan(plan_name.clone()))?;
        let priority = priority.unwrap_or_else(|| case.priority.clone());
        if !new_plan.priorities.contains_key(&priority) {
            let known = new_plan.priorities.keys().map(Priority::as_str).collect::<Vec<_>>().join(", ");
            return Err(ActionError::UnknownPriority { priority: priority.to_string(), plan: plan_name, known });
        }
        if priority == case.priority && plan_name == case.plan {
            return Err(ActionError::NothingToChange);
        }
        let mut tr = Transition::new(case, self.now);
        let mut text = format!("{} {} → {} {}", case.plan, case.priority, plan_name, priority);
        // The urgency follows the route the new priority takes.
        let incoming = Incoming {
            subject: &case.subject,
            body: &case.body,
            customer: case.customer.as_deref(),
            priority: Some(&priority),
        };
        let urgency = routing::route(&self.rules.routes, &incoming).map_or(case.urgency, |r| r.urgency);
        if urgency != case.urgency {
            text += &format!(" (urgency {} → {urgency})", case.urgency);
        }
        tr.case.priority = priority;
        tr.case.plan = plan_name;
        tr.case.urgency = urgency;
        self.clocks(&mut tr);
        // A held case whose new urgency (or plan calendar) pages now is
        // paged at once, from step 1.
        let release =
            tr.case.status == Status::Open && tr.case.held_until.is_some() && self.hold_until(&tr.case).is_none();
        if release {
            text += "; no longer held";
        }
        tr.events.push(self.event(EventKind::Changed, actor, via, text));
        if release {
            self.run_step(&mut tr, Position::FIRST)?;
        }
        Ok(tr)
    }

    /// Escalates past the step at `from` (by default the current one) to the
    /// next step now. Asking twice for the same step escalates once: the
    /// second request finds the case already past `from`.
    pub fn escalate(
        &self,
        case: &Case,
        actor: &Actor,
        via: Via,
        from: Option<Position>,
    ) -> Result<Transition, ActionError> {
        Self::refuse_done(case)?;
        let current = case.escalation.at;
        let from = from.unwrap_or(current);
        if from != current {
            return Err(ActionError::AlreadyEscalated { number: case.number, from, now: current });
        }
        let policy =
            self.rules.policies.get(&case.policy).ok_or_else(|| ActionError::UnknownPolicy(case.policy.clone()))?;
        let exhausted = case.status == Status::Open && !case.escalation.running;
        // A held case has paged nobody yet: escalating pages step 1 now.
        let held = case.status == Status::Open && case.held_until.is_some();
        let next = if exhausted || held { Some(Position::FIRST) } else { policy.after(current) };
        let Some(next) = next else {
            return Err(ActionError::NoNextStep { number: case.number, policy: policy.name.clone() });
        };
        let mut tr = Transition::new(case, self.now);
        if tr.case.status == Status::Waiting
            && let Some(p) = tr.case.pauses.last_mut().filter(|p| p.to.is_none())
        {
            p.to = Some(self.now);
        }
        tr.case.status = Status::Open;
        tr.case.update_from = None;
        tr.cancel_timer(TimerKind::UpdateGrace);
        self.clocks(&mut tr);
        tr.events.push(self.event(EventKind::Escalated, actor, via, format!("escalated past {current} to {next}")));
        self.run_step(&mut tr, next)?;
        Ok(tr)
    }

    /// What a due timer does. A timer that no longer applies (its step has
    /// passed, its deadline was met) changes nothing.
    pub fn fire(&self, case: &Case, timer: &Timer) -> Transition {
        let mut tr = Transition::new(case, self.now);
        let result = match timer.kind {
            TimerKind::Step => self.step_elapsed(&mut tr, timer.position),
            TimerKind::Deadline(clock) => self.deadline_passed(&mut tr, clock),
            TimerKind::Warn(clock, i) => {
                self.warn(&mut tr, clock, i);
                Ok(())
            }
            TimerKind::UpdateGrace => {
                if case.status == Status::Acknowledged {
                    tr.case.status = Status::Open;
                    tr.case.update_from = None;
                    tr.events.push(self.system_event(
                        EventKind::Escalated,
                        "no update after the reminder: escalating from the first step",
                    ));
                    self.clocks(&mut tr);
                    self.start_policy(&mut tr)
                } else {
                    Ok(())
                }
            }
            TimerKind::Hold if case.status == Status::Open && case.held_until.is_some() => {
                tr.case.held_until = None;
                self.start_policy(&mut tr)
            }
            TimerKind::Hold => Ok(()),
        };
        // A timer whose policy vanished from the rules cannot page; it is
        // consumed all the same, and the case keeps its state.
        result.map_or_else(|_| Transition::new(case, self.now), |()| tr)
    }

    fn step_elapsed(&self, tr: &mut Transition, of: Position) -> Result<(), ActionError> {
        let case = &tr.case;
        if case.status != Status::Open || !case.escalation.running || case.escalation.at != of {
            return Ok(());
        }
        let policy =
            self.rules.policies.get(&case.policy).ok_or_else(|| ActionError::UnknownPolicy(case.policy.clone()))?;
        match policy.after(of) {
            // Working time ended while the policy ran: it starts over from
            // step 1 when working time begins again.
            Some(_) if self.hold_until(&tr.case).is_some() => self.start_policy(tr),
            Some(next) => self.run_step(tr, next),
            None => {
                tr.case.escalation.running = false;
                let text = format!(
                    "policy {} ran {} time(s) through without an acknowledgement",
                    policy.name,
                    policy.repeat + 1
                );
                tr.events.push(self.system_event(EventKind::Exhausted, text));
                Ok(())
            }
        }
    }

    /// A clock reached its target without its event: a breach, once per
    /// window. A missed update also reminds the assignee and escalates if
    /// the reminder goes unanswered.
    fn deadline_passed(&self, tr: &mut Transition, clock: SlaClock) -> Result<(), ActionError> {
        let key = format!("{}:breach", clock.as_str());
        if !running(&tr.case, clock) || !tr.case.warned.insert(key) {
            return Ok(());
        }
        let (due, missing) = match clock {
            SlaClock::Respond => (
                tr.case.deadlines.respond,
                match self.plan_of(&tr.case).map(|p| p.respond_met_by) {
                    Some(RespondMetBy::Reply) => "no reply to the customer",
                    _ => "no acknowledgement",
                },
            ),
            SlaClock::Update => (
                tr.case.deadlines.update,
                match self.plan_of(&tr.case).map(|p| p.update_met_by) {
                    Some(UpdateMetBy::Reply) => "no reply to the customer",
                    _ => "no update",
                },
            ),
            SlaClock::Resolve => (tr.case.deadlines.resolve, "not resolved"),
        };
        let text = format!("{} deadline {} passed: {missing}", clock.as_str(), due.map(stamp).unwrap_or_default());
        tr.events.push(self.system_event(EventKind::Breach, text.clone()));
        let managers: Vec<PersonId> = self.rules.managers().map(|p| p.id.clone()).collect();
        for m in managers {
            self.page_person(tr, &m, PageKind::Breach, None, &text);
        }
        if clock == SlaClock::Update {
            if let Some(assignee) = tr.case.assignee.clone() {
                self.page_person(tr, &assignee, PageKind::Reminder, None, "update overdue");
            }
            let policy = self
                .rules
                .policies
                .get(&tr.case.policy)
                .ok_or_else(|| ActionError::UnknownPolicy(tr.case.policy.clone()))?;
            let grace = policy.steps.first().map(|s| s.wait).unwrap_or_default();
            tr.set_timer(TimerKind::UpdateGrace, self.now + grace, Position::FIRST);
        }
        Ok(())
    }

    /// Part of a window is used up: the timeline records it and the
    /// assignee, if there is one, is told. Once per window.
    fn warn(&self, tr: &mut Transition, clock: SlaClock, index: u8) {
        let Some(fraction) = self.rules.warn_at.get(index as usize) else { return };
        if !running(&tr.case, clock) || !tr.case.warned.insert(format!("{}:{index}", clock.as_str())) {
            return;
        }
        let due = match clock {
            SlaClock::Respond => tr.case.deadlines.respond,
            SlaClock::Update => tr.case.deadlines.update,
            SlaClock::Resolve => tr.case.deadlines.resolve,
        };
        let text = format!(
            "{}% of the {} window used; due {}",
            (fraction * 100.0).round(),
            clock.as_str(),
            due.map(stamp).unwrap_or_default()
        );
        tr.events.push(self.system_event(EventKind::Warning, text.clone()));
        let snoozed = tr.case.snoozed_until.is_some_and(|until| until > self.now);
        if let Some(assignee) = tr.case.assignee.clone().filter(|_| !snoozed) {
            self.page_person(tr, &assignee, PageKind::Warning, None, &text);
        }
    }
}

mod assign;
mod limited;
mod reply;
mod urgency;

#[cfg(test)]
mod tests;
