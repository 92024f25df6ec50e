//! Replies: an engineer's answer to the customer, mailed in the case's
//! thread. A note stays inside the team; a reply is what the customer sees.

use super::{ActionError, Case, EventKind, Facts, SlaClock, Status, Transition, Via};
use crate::case::{Actor, NewPage, PageKind};
use crate::people::{ChannelKind, PersonId};
use crate::sla::RespondMetBy;

impl Facts<'_> {
    /// `by` answers the customer with `text`: the timeline records a
    /// `reply`, and the outbox queues the mail to the requester (written by
    /// a person, so it names them). On an acknowledged case it also counts
    /// as the update the update clock waits for, as a note does: the
    /// customer heard more than a note would tell them.
    ///
    /// A reply is allowed in every status: a resolved case may still owe
    /// the customer an answer to their thanks or a last question.
    pub fn reply(&self, case: &Case, by: &PersonId, via: Via, text: &str) -> Result<Transition, ActionError> {
        let mut tr = self.recorded(case, by, via, text, None)?;
        tr.pages.push(NewPage {
            person: None,
            address: case.requester.clone(),
            channel: ChannelKind::Email,
            kind: PageKind::CustomerReply,
            position: None,
            detail: text.trim().to_owned(),
            author: Some(by.clone()),
        });
        Ok(tr)
    }

    /// A reply `by` sent from their own mail program (a reply-all that
    /// copied support): recorded as their reply, with the same effect on
    /// the clocks, and nothing is sent: the customer already has it.
    pub fn replied_elsewhere(
        &self,
        case: &Case,
        by: &PersonId,
        via: Via,
        text: &str,
    ) -> Result<Transition, ActionError> {
        self.recorded(case, by, via, text, Some("[sent from their own mail] "))
    }

    fn recorded(
        &self,
        case: &Case,
        by: &PersonId,
        via: Via,
        text: &str,
        prefix: Option<&str>,
    ) -> Result<Transition, ActionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ActionError::EmptyReply);
        }
        if !self.rules.people.contains_key(by) {
            return Err(ActionError::UnknownPerson(by.to_string()));
        }
        let mut tr = Transition::new(case, self.now);
        // The customer heard: on a reply-measured plan the respond clock
        // is met (the escalation still waits for an acknowledgement).
        let plan = self.rules.plans.get(&case.plan);
        if plan.is_some_and(|p| p.respond_met_by == RespondMetBy::Reply) && super::running(case, SlaClock::Respond) {
            tr.case.respond_met_at = Some(self.now);
            self.clocks(&mut tr);
        }
        if case.status == Status::Acknowledged {
            self.updated(&mut tr);
        }
        let shown = format!("{}{text}", prefix.unwrap_or_default());
        tr.events.push(self.event(EventKind::Reply, &Actor::Person(by.clone()), via, shown));
        Ok(tr)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::super::NewCase;
    use super::*;
    use crate::case::CaseNumber;
    use crate::escalation::Overrides;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn opened(facts: &Facts<'_>) -> Case {
        let new = NewCase {
            subject: "db down".into(),
            body: String::new(),
            requester: "ops@acme.com".into(),
            priority: None,
            actor: Actor::Customer("ops@acme.com".into()),
            via: Via::Email,
            receipt: true,
            unverified: None,
        };
        let mut case = facts.open(new).unwrap().case;
        case.number = CaseNumber(1042);
        case
    }

    #[test]
    fn a_reply_mails_the_requester_and_records_who_wrote_it() {
        let rules = crate::rules::testing::shipped();
        let overrides = Overrides::new();
        let sms_off = Default::default();
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: at("2026-11-24T10:00:00Z") };
        let case = opened(&facts);
        let ana: PersonId = "ana".parse().unwrap();
        let tr = facts.reply(&case, &ana, Via::Sms, "  We are restoring the database now.  ").unwrap();
        assert_eq!(tr.events.len(), 1);
        assert_eq!((tr.events[0].kind, tr.events[0].actor.as_str()), (EventKind::Reply, "ana"));
        assert_eq!(tr.events[0].text, "We are restoring the database now.");
        let page = &tr.pages[..];
        assert_eq!(page.len(), 1);
        assert_eq!(
            (page[0].kind, page[0].channel, page[0].address.as_str()),
            (PageKind::CustomerReply, ChannelKind::Email, "ops@acme.com")
        );
        assert_eq!((page[0].person.as_ref(), page[0].author.as_ref()), (None, Some(&ana)));
        assert_eq!(page[0].detail, "We are restoring the database now.");
        // A reply is no acknowledgement: the escalation keeps running.
        assert_eq!(tr.case.status, Status::Open);
        assert!(tr.case.escalation.running && tr.cancel.is_empty());
    }

    #[test]
    fn a_reply_on_an_acknowledged_case_starts_a_new_update_window() {
        let rules = crate::rules::testing::shipped();
        let overrides = Overrides::new();
        let sms_off = Default::default();
        let start = at("2026-11-24T10:00:00Z");
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: start };
        let ana: PersonId = "ana".parse().unwrap();
        let acked = facts.ack(&opened(&facts), &ana, Via::Sms, None).unwrap().case;
        let later = Facts { now: start + TimeDelta::minutes(20), ..facts };
        let tr = later.reply(&acked, &ana, Via::Api, "Restored; watching it.").unwrap();
        assert_eq!(tr.case.update_from, Some(start + TimeDelta::minutes(20)));
        assert!(tr.case.deadlines.update > acked.deadlines.update);
    }

    #[test]
    fn a_reply_sent_from_the_engineers_own_mail_is_recorded_and_sends_nothing() {
        let rules = crate::rules::testing::shipped();
        let overrides = Overrides::new();
        let sms_off = Default::default();
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: at("2026-11-24T10:00:00Z") };
        let case = opened(&facts);
        let tr = facts.replied_elsewhere(&case, &"ana".parse().unwrap(), Via::Email, "Done, see above.").unwrap();
        assert!(tr.pages.is_empty());
        assert_eq!(tr.events[0].kind, EventKind::Reply);
        assert_eq!(tr.events[0].text, "[sent from their own mail] Done, see above.");
    }

    #[test]
    fn a_reply_needs_text_and_a_known_person() {
        let rules = crate::rules::testing::shipped();
        let overrides = Overrides::new();
        let sms_off = Default::default();
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: at("2026-11-24T10:00:00Z") };
        let case = opened(&facts);
        assert_eq!(facts.reply(&case, &"ana".parse().unwrap(), Via::Api, "  \n"), Err(ActionError::EmptyReply));
        assert!(matches!(
            facts.reply(&case, &"nobody".parse().unwrap(), Via::Api, "hi"),
            Err(ActionError::UnknownPerson(_))
        ));
    }
}

#[cfg(test)]
mod met_by {
    //! Clocks on what the customer saw (`respond_met_by`, `update_met_by`).

    use chrono::{DateTime, TimeDelta, Utc};

    use super::super::NewCase;
    use super::*;
    use crate::case::{CaseNumber, Timer, TimerKind};
    use crate::escalation::{Overrides, Position};
    use crate::rules::Rules;
    use crate::sla::{RespondMetBy, UpdateMetBy};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The shipped rules with every plan measured by replies.
    fn reply_measured() -> Rules {
        let mut rules = crate::rules::testing::shipped();
        for plan in rules.plans.values_mut() {
            plan.respond_met_by = RespondMetBy::Reply;
            plan.update_met_by = UpdateMetBy::Reply;
        }
        rules
    }

    fn opened(facts: &Facts<'_>) -> Case {
        let new = NewCase {
            subject: "db down".into(),
            body: String::new(),
            requester: "ops@acme.com".into(),
            priority: None,
            actor: Actor::Customer("ops@acme.com".into()),
            via: Via::Email,
            receipt: true,
            unverified: None,
        };
        let mut case = facts.open(new).unwrap().case;
        case.number = CaseNumber(1042);
        case
    }

    fn respond_timer(case: &Case) -> Timer {
        Timer {
            id: 1,
            case: case.number,
            kind: TimerKind::Deadline(SlaClock::Respond),
            due: case.deadlines.respond.unwrap(),
            position: Position::FIRST,
        }
    }

    #[test]
    fn on_a_reply_measured_plan_an_ack_stops_the_escalation_but_not_the_respond_clock() {
        let rules = reply_measured();
        let overrides = Overrides::new();
        let sms_off = Default::default();
        let start = at("2026-11-24T10:00:00Z");
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: start };
        let ana: PersonId = "ana".parse().unwrap();
        let case = opened(&facts);
        let tr = facts.ack(&case, &ana, Via::Sms, None).unwrap();
        assert!(!tr.case.escalation.running && tr.cancel.contains(&TimerKind::Step));
        assert_eq!(tr.case.respond_met_at, None);
        assert!(super::super::running(&tr.case, SlaClock::Respond));
        assert!(tr.timers.iter().any(|t| t.kind == TimerKind::Deadline(SlaClock::Respond)), "the respond timer stays");
        // Its deadline passes: a breach, worded for what was missing.
        let acked = tr.case;
        let late = Facts { now: acked.deadlines.respond.unwrap(), ..facts };
        let fired = late.fire(&acked, &respond_timer(&acked));
        let breach = fired.events.iter().find(|e| e.kind == EventKind::Breach).expect("a breach");
        assert!(breach.text.ends_with("no reply to the customer"), "{}", breach.text);
        // A reply in time meets it instead.
        let replied =
            Facts { now: start + TimeDelta::minutes(5), ..facts }.reply(&acked, &ana, Via::Sms, "On it.").unwrap();
        assert_eq!(replied.case.respond_met_at, Some(start + TimeDelta::minutes(5)));
        assert!(replied.cancel.contains(&TimerKind::Deadline(SlaClock::Respond)));
        let fired = late.fire(&replied.case, &respond_timer(&replied.case));
        assert!(fired.events.is_empty(), "met: no breach");
    }

    #[test]
    fn on_an_ack_measured_plan_the_ack_meets_the_respond_clock_as_before() {
        let rules = crate::rules::testing::shipped();
        let overrides = Overrides::new();
        let sms_off = Default::default();
        let start = at("2026-11-24T10:00:00Z");
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: start };
        let case = opened(&facts);
        assert_eq!(rules.plans[&case.plan].respond_met_by, RespondMetBy::Ack);
        let tr = facts.ack(&case, &"ana".parse().unwrap(), Via::Sms, None).unwrap();
        assert_eq!(tr.case.respond_met_at, Some(start));
        assert!(!super::super::running(&tr.case, SlaClock::Respond));
        // A reply before any acknowledgement meets nothing on such a plan.
        let tr = facts.reply(&case, &"ana".parse().unwrap(), Via::Sms, "Looking.").unwrap();
        assert_eq!(tr.case.respond_met_at, None);
    }

    #[test]
    fn on_a_reply_measured_plan_a_note_does_not_meet_the_update_clock() {
        let rules = reply_measured();
        let overrides = Overrides::new();
        let sms_off = Default::default();
        let start = at("2026-11-24T10:00:00Z");
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: start };
        let ana: PersonId = "ana".parse().unwrap();
        let acked = facts.ack(&opened(&facts), &ana, Via::Sms, None).unwrap().case;
        let later = Facts { now: start + TimeDelta::minutes(20), ..facts };
        let noted = later.note(&acked, &Actor::Person(ana.clone()), Via::Sms, "internal only").unwrap();
        assert_eq!((noted.case.update_from, noted.case.update_met_at), (acked.update_from, None));
        let replied = later.reply(&acked, &ana, Via::Sms, "Restored.").unwrap();
        assert_eq!(replied.case.update_met_at, Some(start + TimeDelta::minutes(20)));
        assert!(replied.case.deadlines.update > acked.deadlines.update);
    }
}
