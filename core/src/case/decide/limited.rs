//! Mail past a new-case limit ([`crate::mail::intake`]), filed into its
//! sender's open case instead of opening one.

use super::{Actor, Case, EventKind, Facts, Transition, Via};

impl Facts<'_> {
    /// Mail from `from` that would have opened a case, over a new-case
    /// limit (`why`), goes on the timeline of `case`, the sender's most
    /// recent open case, saying why it is there. Nothing else changes: no
    /// page, no receipt, no status or clock change, so a flood of forged
    /// mail cannot page the team again through an existing case either.
    pub fn limited_mail(&self, case: &Case, from: &str, subject: &str, text: &str, why: &str) -> Transition {
        let actor = Actor::Customer(from.to_owned());
        let shown = if text.trim().is_empty() { "(no text)" } else { text.trim() };
        let mut tr = Transition::new(case, self.now);
        tr.events.push(self.event(
            EventKind::Mail,
            &actor,
            Via::Email,
            format!("[filed here, not opened as a new case: {why}] {subject}\n\n{shown}"),
        ));
        tr
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::super::NewCase;
    use super::*;
    use crate::case::CaseNumber;
    use crate::escalation::Overrides;

    #[test]
    fn limited_mail_only_joins_the_timeline_and_pages_nobody() {
        let rules = crate::rules::testing::shipped();
        let overrides = Overrides::new();
        let now = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().with_timezone(&Utc);
        let sms_off = std::collections::BTreeSet::new();
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now };
        let new = NewCase {
            subject: "db down".into(),
            body: String::new(),
            requester: "ops@acme.com".into(),
            priority: None,
            actor: Actor::System,
            via: Via::Email,
            receipt: true,
            unverified: None,
        };
        let mut case = facts.open(new).unwrap().case;
        case.number = CaseNumber(1042);
        let tr = facts.limited_mail(&case, "ops@acme.com", "still down", "help", "ops@acme.com reached the limit");
        assert!(tr.pages.is_empty() && tr.timers.is_empty() && tr.cancel.is_empty());
        assert_eq!(tr.case.status, case.status);
        assert_eq!(tr.events.len(), 1);
        let text = &tr.events[0].text;
        assert_eq!(tr.events[0].kind, EventKind::Mail);
        assert!(text.starts_with("[filed here, not opened as a new case: ops@acme.com reached the limit] still down"));
        assert!(text.ends_with("help"), "{text}");
    }
}
