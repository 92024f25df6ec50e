//! The inbox's new-case limits (issue 13): `[email]
//! new_cases_per_sender_per_hour` and `new_cases_per_domain_per_hour`.
//!
//! The core decides ([`crate::mail::intake`]); this asks the store for the
//! counts and carries the decision out. Called from one place, just before
//! the inbox opens a case from mail, so every way a mail can open a case
//! (no thread, or a follow-up to a case too old to reopen) is counted.
//!
//! Two instances filing mail of one sender at the same moment may each see
//! the count just under the limit and open one case each: the limit can be
//! overshot by one per instance, never more, which bounds a flood all the
//! same.

use chrono::TimeDelta;

use crate::case::{Actor, Filing, Via};
use crate::mail::intake::{Intake, domain_of, intake};
use crate::mail::{InboxStatus, Mail};
use crate::service::cases::{Action, CaseError};
use crate::service::inbox::{Inbox, Outcome};

impl Inbox {
    /// What becomes of `mail`, which would open a new case, when its sender
    /// or its domain is over a new-case limit: it joins the sender's most
    /// recent open case (on its timeline, without paging or a receipt), or
    /// is held in the inbox (no case, no receipt: the sender may be
    /// forged, so no backscatter). `None`: under the limits, open the case.
    /// Mail whose From verification failed (`unverified`, `[email] verify`)
    /// never joins the sender's case this way: it is held, as a forger
    /// must not write onto a real customer's case.
    pub(crate) async fn over_new_case_limit(
        &self,
        mail: &Mail,
        filing: &Filing,
        unverified: bool,
    ) -> Result<Option<Outcome>, CaseError> {
        let limits = self.settings.limits;
        if limits.per_sender == 0 && limits.per_domain == 0 {
            return Ok(None);
        }
        let since = self.clock.now() - TimeDelta::hours(1);
        let recent = self.store.mail_openings_since(&mail.from, domain_of(&mail.from), since).await?;
        // The sender's open case matters only past a limit: under both, the
        // hot path costs one read (two index range counts).
        let decision = match intake(limits, recent, None) {
            Intake::Open => return Ok(None),
            held if unverified => held,
            _ => intake(limits, recent, self.store.open_case_of(&mail.from).await?),
        };
        let id = filing.inbox_id;
        match decision {
            Intake::Open => Ok(None),
            Intake::FileInto { case, limit } => {
                let why = limit.why(limits, &mail.from);
                tracing::warn!(inbox = id, from = %mail.from, %case, %why, "new-case limit: mail filed into the sender's open case");
                let action = Action::LimitedMail {
                    from: mail.from.clone(),
                    subject: mail.subject.chars().take(crate::limits::MAX_SUBJECT).collect(),
                    text: mail.text.clone(),
                    why: why.clone(),
                };
                let filing = Filing { note: format!("new-case limit: {why}"), ..filing.clone() };
                let actor = Actor::Customer(mail.from.clone());
                self.cases.act_filing(case, &action, &actor, Via::Email, Some(filing)).await?;
                metrics::counter!("tocsin_mail_limited_total", "limit" => limit.as_str(), "action" => "filed")
                    .increment(1);
                metrics::counter!("tocsin_mail_filed_total", "outcome" => InboxStatus::Filed.as_str()).increment(1);
                Ok(Some(Outcome::Joined(case)))
            }
            Intake::Hold { limit } => {
                let why = limit.why(limits, &mail.from);
                tracing::warn!(inbox = id, from = %mail.from, %why, "new-case limit: mail held in the inbox (the sender has no open case)");
                let note = format!("held: {why}");
                if !self.store.settle_mail(id, InboxStatus::Held, &note, self.clock.now()).await? {
                    return Err(CaseError::Store(crate::store::StoreError::AlreadyFiled));
                }
                metrics::counter!("tocsin_mail_limited_total", "limit" => limit.as_str(), "action" => "held")
                    .increment(1);
                metrics::counter!("tocsin_mail_filed_total", "outcome" => InboxStatus::Held.as_str()).increment(1);
                Ok(Some(Outcome::Held(note)))
            }
        }
    }
}
