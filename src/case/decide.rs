//! The pure decisions: given a case, the rules and `now`, what changes.
//! Nothing here reads a clock, a database or a socket.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    Actor, Case, CaseNumber, Escalation, EventKind, NewEvent, NewPage, PageKind, Status, Timer, TimerKind, Transition,
    Via,
};
use crate::calendar::Calendar;
use crate::escalation::{Overrides, Position, resolve_targets};
use crate::people::{ChannelKind, PersonId};
use crate::routing::{self, Incoming};
use crate::rules::Rules;
use crate::sla::{self, Deadlines, Priority, Targets};

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
    #[error("acknowledging needs a person: use a person's token, or name one with {{\"by\": \"ana\"}}")]
    NeedsPerson,
    #[error("unknown person {0:?}: use an id from rules/people.toml")]
    UnknownPerson(String),
    #[error("priority {priority} is not in plan {plan}: use one of {known}")]
    UnknownPriority { priority: String, plan: String, known: String },
    #[error("policy {0:?} is not in the rules any more: fix rules/routing.toml")]
    UnknownPolicy(String),
    #[error("a note needs text: send {{\"text\": \"what changed\"}}")]
    EmptyText,
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
}

/// What the decisions read: the rules, the overrides and the time.
#[derive(Debug, Clone, Copy)]
pub struct World<'a> {
    pub rules: &'a Rules,
    pub overrides: &'a Overrides,
    pub now: DateTime<Utc>,
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl World<'_> {
    fn event(&self, kind: EventKind, actor: &Actor, via: Via, text: impl Into<String>) -> NewEvent {
        NewEvent { at: self.now, kind, actor: actor.to_string(), channel: Some(via), text: text.into() }
    }

    /// The case's SLA targets and calendar, if its plan still defines them.
    fn sla(&self, case: &Case) -> Option<(Targets, &Calendar)> {
        let plan = self.rules.plans.get(&case.plan)?;
        let targets = plan.priorities.get(&case.priority)?;
        Some((*targets, self.rules.calendars.get(&plan.calendar)?))
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
        let targets = plan.priorities[&priority];
        let calendar = self.rules.calendar_of(plan);
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
            deadlines: Deadlines {
                respond: Some(sla::due(calendar, self.now, targets.respond)),
                update: None,
                resolve: Some(sla::due(calendar, self.now, targets.resolve)),
            },
            escalation: Escalation { at: Position::FIRST, running: true },
            version: 0,
        };
        let mut tr = Transition::new(&case, self.now);
        tr.events.push(self.event(EventKind::Opened, &new.actor, new.via, new.subject));
        tr.pages.push(NewPage {
            person: None,
            address: new.requester,
            channel: ChannelKind::Email,
            kind: PageKind::Receipt,
            position: None,
            detail: String::new(),
        });
        if let Some(due) = case.deadlines.respond {
            tr.set_timer(TimerKind::Respond, due, Position::FIRST);
        }
        if let Some(due) = case.deadlines.resolve {
            tr.set_timer(TimerKind::Resolve, due, Position::FIRST);
        }
        self.run_step(&mut tr, Position::FIRST)?;
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
        let (people, misses) = resolve_targets(step, self.rules, self.overrides, self.now);
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
        tr.events.push(NewEvent {
            at: self.now,
            kind: EventKind::Paged,
            actor: Actor::System.to_string(),
            channel: Some(Via::Scheduler),
            text,
        });
        tr.case.escalation = Escalation { at, running: true };
        tr.set_timer(TimerKind::Step, self.now + step.wait, at);
        Ok(())
    }

    /// Queues a message to `id` on their first channel; the channel's name,
    /// or `None` if the person is gone from the rules.
    fn page_person(
        &self,
        tr: &mut Transition,
        id: &PersonId,
        kind: PageKind,
        at: Option<Position>,
        detail: &str,
    ) -> Option<&'static str> {
        let person = self.rules.people.get(id)?;
        let (channel, address) =
            person.channels.iter().find_map(|&ch| person.address(ch).map(|a| (ch, a.to_owned())))?;
        tr.pages.push(NewPage {
            person: Some(id.clone()),
            address,
            channel,
            kind,
            position: at,
            detail: detail.to_owned(),
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
        if case.status == Status::Acknowledged {
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
        tr.case.acked_at = Some(self.now);
        tr.case.escalation.running = false;
        tr.cancel_timer(TimerKind::Step);
        tr.cancel_timer(TimerKind::Respond);
        tr.cancel_timer(TimerKind::UpdateGrace);
        self.restart_update_clock(&mut tr);
        let text = text.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("acknowledged");
        tr.events.push(self.event(EventKind::Acknowledged, &Actor::Person(by.clone()), via, text));
        Ok(tr)
    }

    fn restart_update_clock(&self, tr: &mut Transition) {
        match self.sla(&tr.case) {
            Some((targets, calendar)) => {
                let due = sla::due(calendar, self.now, targets.update);
                tr.case.deadlines.update = Some(due);
                tr.set_timer(TimerKind::Update, due, Position::FIRST);
            }
            None => tr.cancel_timer(TimerKind::Update),
        }
        tr.cancel_timer(TimerKind::UpdateGrace);
    }

    /// A note on the timeline; on an acknowledged case it counts as the
    /// update the update clock waits for.
    pub fn note(&self, case: &Case, actor: &Actor, via: Via, text: &str) -> Result<Transition, ActionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ActionError::EmptyText);
        }
        let mut tr = Transition::new(case, self.now);
        if case.status == Status::Acknowledged {
            self.restart_update_clock(&mut tr);
        }
        tr.events.push(self.event(EventKind::Note, actor, via, text));
        Ok(tr)
    }

    /// Resolves the case: every clock and the escalation stop.
    pub fn resolve(&self, case: &Case, actor: &Actor, via: Via, text: Option<&str>) -> Result<Transition, ActionError> {
        Self::refuse_done(case)?;
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Resolved;
        tr.case.resolved_at = Some(self.now);
        tr.case.escalation.running = false;
        tr.case.deadlines.update = None;
        if tr.case.assignee.is_none()
            && let Actor::Person(p) = actor
        {
            tr.case.assignee = Some(p.clone());
        }
        for kind in TimerKind::ALL {
            tr.cancel_timer(kind);
        }
        tr.events.push(self.event(EventKind::Resolved, actor, via, text.map(str::trim).unwrap_or("")));
        Ok(tr)
    }

    /// Reopens a resolved case: the respond clock starts again, the
    /// resolve clock resumes where it stopped, and the policy runs from its
    /// first step.
    pub fn reopen(&self, case: &Case, actor: &Actor, via: Via, text: Option<&str>) -> Result<Transition, ActionError> {
        if !case.status.is_done() {
            return Err(ActionError::NotDone { number: case.number, status: case.status.as_str() });
        }
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Open;
        tr.case.acked_at = None;
        tr.case.deadlines.update = None;
        if let Some((targets, calendar)) = self.sla(case) {
            let respond = sla::due(calendar, self.now, targets.respond);
            let spent = calendar.working_time(case.opened_at, case.resolved_at.unwrap_or(self.now));
            let resolve = sla::due(calendar, self.now, (targets.resolve - spent).max(chrono::TimeDelta::zero()));
            tr.case.deadlines.respond = Some(respond);
            tr.case.deadlines.resolve = Some(resolve);
            tr.set_timer(TimerKind::Respond, respond, Position::FIRST);
            tr.set_timer(TimerKind::Resolve, resolve, Position::FIRST);
        }
        tr.case.resolved_at = None;
        tr.events.push(self.event(EventKind::Reopened, actor, via, text.map(str::trim).unwrap_or("")));
        self.run_step(&mut tr, Position::FIRST)?;
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
        let next = if exhausted { Some(Position::FIRST) } else { policy.after(current) };
        let Some(next) = next else {
            return Err(ActionError::NoNextStep { number: case.number, policy: policy.name.clone() });
        };
        let mut tr = Transition::new(case, self.now);
        tr.case.status = Status::Open;
        tr.cancel_timer(TimerKind::Update);
        tr.cancel_timer(TimerKind::UpdateGrace);
        tr.case.deadlines.update = None;
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
            TimerKind::Respond => {
                if case.status == Status::Open && case.acked_at.is_none() {
                    self.breach(&mut tr, "respond", "no acknowledgement");
                }
                Ok(())
            }
            TimerKind::Resolve => {
                if !case.status.is_done() {
                    self.breach(&mut tr, "resolve", "not resolved");
                }
                Ok(())
            }
            TimerKind::Update => self.update_missed(&mut tr),
            TimerKind::UpdateGrace => {
                if case.status == Status::Acknowledged {
                    tr.case.status = Status::Open;
                    tr.events.push(NewEvent {
                        at: self.now,
                        kind: EventKind::Escalated,
                        actor: Actor::System.to_string(),
                        channel: Some(Via::Scheduler),
                        text: "no update after the reminder: escalating from the first step".into(),
                    });
                    self.run_step(&mut tr, Position::FIRST)
                } else {
                    Ok(())
                }
            }
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
            Some(next) => self.run_step(tr, next),
            None => {
                tr.case.escalation.running = false;
                let text = format!(
                    "policy {} ran {} time(s) through without an acknowledgement",
                    policy.name,
                    policy.repeat + 1
                );
                tr.events.push(NewEvent {
                    at: self.now,
                    kind: EventKind::Exhausted,
                    actor: Actor::System.to_string(),
                    channel: Some(Via::Scheduler),
                    text,
                });
                Ok(())
            }
        }
    }

    fn update_missed(&self, tr: &mut Transition) -> Result<(), ActionError> {
        if tr.case.status != Status::Acknowledged {
            return Ok(());
        }
        self.breach(tr, "update", "no update");
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
        Ok(())
    }

    /// Records a breach of `clock` and tells the managers.
    fn breach(&self, tr: &mut Transition, clock: &str, missing: &str) {
        let due = match clock {
            "respond" => tr.case.deadlines.respond,
            "update" => tr.case.deadlines.update,
            _ => tr.case.deadlines.resolve,
        };
        let text = format!("{clock} deadline {} passed: {missing}", due.map(stamp).unwrap_or_default());
        tr.events.push(NewEvent {
            at: self.now,
            kind: EventKind::Breach,
            actor: Actor::System.to_string(),
            channel: Some(Via::Scheduler),
            text: text.clone(),
        });
        let managers: Vec<PersonId> = self.rules.managers().map(|p| p.id.clone()).collect();
        for m in managers {
            self.page_person(tr, &m, PageKind::Breach, None, &text);
        }
    }
}

#[cfg(test)]
mod tests;
