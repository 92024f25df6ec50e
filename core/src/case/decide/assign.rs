//! Assignment (PRODUCT.md, "Support hours and the team's day"): a case
//! given to a person, by a manager, by its assignee, or taken by an
//! engineer (`TAKE`). Who may assign whom is the case service's rule; what
//! an assignment does to the case is decided here.

use super::{ActionError, Facts};
use crate::case::{Actor, Case, EventKind, PageKind, Status, TimerKind, Transition, Via};
use crate::people::PersonId;
use crate::sla::SlaClock;

impl Facts<'_> {
    /// Gives the case to `to`. An open case is acknowledged by that (its
    /// escalation stops and the update clock starts); on an acknowledged or
    /// waiting case the update clock carries on where it was. The new
    /// assignee is told on their first channel; reminders and warnings go
    /// to them from now on, and a snooze, the previous assignee's, ends.
    pub fn assign(&self, case: &Case, to: &PersonId, actor: &Actor, via: Via) -> Result<Transition, ActionError> {
        Self::refuse_done(case)?;
        if !self.rules.people.contains_key(to) {
            return Err(ActionError::UnknownPerson(to.to_string()));
        }
        if case.assignee.as_ref() == Some(to) {
            return Err(ActionError::AlreadyAssigned { number: case.number, to: to.to_string() });
        }
        let mut tr = Transition::new(case, self.now);
        let before = case.assignee.as_ref().map(|p| format!(" (was {p})")).unwrap_or_default();
        tr.case.assignee = Some(to.clone());
        tr.case.snoozed_until = None;
        if case.status == Status::Open {
            tr.case.status = Status::Acknowledged;
            tr.case.acked_at.get_or_insert(self.now);
            tr.case.escalation.running = false;
            tr.case.update_from = Some(self.now);
            Self::new_window(&mut tr.case, SlaClock::Update);
            Self::release(&mut tr);
            tr.cancel_timer(TimerKind::Step);
            tr.cancel_timer(TimerKind::UpdateGrace);
            self.clocks(&mut tr);
            let text = format!("acknowledged by assignment to {to}");
            tr.events.push(self.event(EventKind::Acknowledged, actor, via, text));
        }
        tr.events.push(self.event(EventKind::Assigned, actor, via, format!("assigned to {to}{before}")));
        let taken = *actor == Actor::Person(to.clone());
        if !taken {
            let by = match actor {
                Actor::Person(p) => self.rules.people.get(p).map_or_else(|| p.to_string(), |x| x.name.clone()),
                other => other.to_string(),
            };
            let detail = format!("{} is yours now, assigned by {by}", case.number);
            self.page_person(&mut tr, to, PageKind::Assigned, None, &detail);
        }
        Ok(tr)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{DateTime, Utc};

    use crate::case::decide::{Facts, NewCase};
    use crate::case::{Actor, CaseNumber, EventKind, PageKind, Status, TimerKind, Via};
    use crate::escalation::Overrides;
    use crate::people::PersonId;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn id(s: &str) -> PersonId {
        s.parse().unwrap()
    }

    #[test]
    fn assigning_an_open_case_acknowledges_it_and_tells_the_new_assignee() {
        let rules = crate::rules::testing::shipped();
        let (o, off) = (Overrides::new(), BTreeSet::new());
        let f = Facts { rules: &rules, overrides: &o, sms_off: &off, now: at("2026-11-24T10:00:00Z") };
        let new = NewCase {
            subject: "db down".into(),
            body: String::new(),
            requester: "ops@acme.com".into(),
            priority: None,
            actor: Actor::System,
            via: Via::Api,
            receipt: false,
            unverified: None,
        };
        let mut case = f.open(new).unwrap().case;
        case.number = CaseNumber(7);
        let f = Facts { now: at("2026-11-24T10:02:00Z"), ..f };
        let tr = f.assign(&case, &id("ben"), &Actor::Person(id("max")), Via::Api).unwrap();
        assert_eq!((tr.case.status, tr.case.assignee.clone()), (Status::Acknowledged, Some(id("ben"))));
        assert!(!tr.case.escalation.running && tr.cancel.contains(&TimerKind::Step));
        assert_eq!(tr.case.update_from, Some(f.now));
        let told: Vec<_> = tr.pages.iter().map(|p| (p.kind, p.person.clone())).collect();
        assert_eq!(told, [(PageKind::Assigned, Some(id("ben")))]);
        assert!(tr.pages[0].detail.contains("assigned by Max"), "{:?}", tr.pages[0]);
        assert!(tr.events.iter().any(|e| e.kind == EventKind::Assigned && e.text == "assigned to ben"));

        // Handed on an hour later: the update clock carries on.
        let acked = tr.case;
        let f = Facts { now: at("2026-11-24T11:02:00Z"), ..f };
        let tr = f.assign(&acked, &id("chen"), &Actor::Person(id("ben")), Via::Sms).unwrap();
        assert_eq!(tr.case.update_from, acked.update_from);
        assert_eq!(tr.case.deadlines.update, acked.deadlines.update);
        assert_eq!(tr.case.status, Status::Acknowledged);
        assert!(tr.events.iter().any(|e| e.text == "assigned to chen (was ben)"));
        // Taking a case oneself tells nobody.
        let tr = f.assign(&acked, &id("ana"), &Actor::Person(id("ana")), Via::Sms).unwrap();
        assert!(tr.pages.is_empty());
        // Again to the same person, or to a stranger: refused.
        assert!(f.assign(&acked, &id("ben"), &Actor::System, Via::Api).is_err());
        assert!(f.assign(&acked, &id("nobody"), &Actor::System, Via::Api).is_err());
    }
}
