//! Urgency (PRODUCT.md, "Support hours and the team's day"): a
//! `working-hours` case outside its plan calendar's working time pages
//! nobody; it is held, and its policy starts from step 1 when working time
//! begins, by a durable timer like every other. (`low` is one line in
//! `page_person`: email only.)

use chrono::{DateTime, Utc};

use super::Facts;
use super::{ActionError, stamp};
use crate::case::{Case, Escalation, EventKind, TimerKind, Transition};
use crate::escalation::Position;
use crate::routing::Urgency;

impl Facts<'_> {
    /// When a `working-hours` case may next be paged, if not now: the next
    /// working instant of its plan's calendar. `None` for other urgencies,
    /// inside working time, and when the plan is gone from the rules (so a
    /// rules change never silences a case for good).
    pub fn hold_until(&self, case: &Case) -> Option<DateTime<Utc>> {
        if case.urgency != Urgency::WorkingHours {
            return None;
        }
        let (_, calendar) = self.sla(case)?;
        calendar.next_working(self.now).filter(|at| *at > self.now)
    }

    /// Runs the policy from step 1, unless the case's urgency holds it
    /// until working time begins: then nobody is paged, and a durable
    /// [`TimerKind::Hold`] starts the policy at that instant.
    pub(super) fn start_policy(&self, tr: &mut Transition) -> Result<(), ActionError> {
        let Some(until) = self.hold_until(&tr.case) else {
            return self.run_step(tr, Position::FIRST);
        };
        let policy = &tr.case.policy;
        if !self.rules.policies.contains_key(policy) {
            return Err(ActionError::UnknownPolicy(policy.clone()));
        }
        let calendar = self.sla(&tr.case).map(|(_, c)| c.name.clone()).unwrap_or_default();
        let text = format!(
            "urgency working-hours: calendar {calendar} has no working time now, so nobody is paged until {}, when step 1 of policy {policy} runs",
            stamp(until)
        );
        tr.case.held_until = Some(until);
        tr.case.escalation = Escalation { at: Position::FIRST, running: true };
        tr.cancel_timer(TimerKind::Step);
        tr.set_timer(TimerKind::Hold, until, Position::FIRST);
        tr.events.push(self.system_event(EventKind::Held, text));
        Ok(())
    }

    /// The case is no longer held (it is paged, acknowledged or resolved).
    pub(super) fn release(tr: &mut Transition) {
        if tr.case.held_until.take().is_some() {
            tr.cancel_timer(TimerKind::Hold);
        }
    }
}

#[cfg(test)]
mod tests;
