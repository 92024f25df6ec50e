//! Limits on new cases from mail (issue 13): how many cases one sender
//! address, and one sender domain, may open per hour.
//!
//! A From header is easy to forge, so a flood of mail with "down" in the
//! subject would otherwise open a P1 case, and page, for each message. Over
//! a limit, a mail that would open a case is filed into its sender's most
//! recent open case without paging, or, when the sender has none, held in
//! the inbox (no case, no receipt to a possibly forged sender). It is never
//! dropped: the raw message stays in the inbox either way.
//!
//! Nobody is exempt by address, not even the team's own people: an
//! engineer's reply is recognised by its signed reply address, never by
//! its From, so exempting a From would let a forger skip the limit.

use crate::case::CaseNumber;

/// `[email] new_cases_per_sender_per_hour` and
/// `[email] new_cases_per_domain_per_hour`; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCaseLimits {
    pub per_sender: u32,
    pub per_domain: u32,
}

impl Default for NewCaseLimits {
    /// Five cases an hour is more than a real customer opens in an outage
    /// (their follow-ups thread into the first case); thirty per domain
    /// leaves room for a big customer's many people.
    fn default() -> Self {
        Self { per_sender: 5, per_domain: 30 }
    }
}

/// Cases opened from mail in the last hour, by this sender and by anyone
/// of its domain (the sender's own included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    pub sender: i64,
    pub domain: i64,
}

/// Which limit a mail ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Sender,
    Domain,
}

impl Limit {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Sender => "sender",
            Limit::Domain => "domain",
        }
    }

    /// Why the mail did not open a case, for the timeline and the inbox
    /// note: who reached which limit, and the setting that sets it.
    pub fn why(self, limits: NewCaseLimits, from: &str) -> String {
        match self {
            Limit::Sender => format!(
                "{from} reached the limit of {} new cases per hour ([email] new_cases_per_sender_per_hour)",
                limits.per_sender
            ),
            Limit::Domain => format!(
                "senders of {} reached the limit of {} new cases per hour ([email] new_cases_per_domain_per_hour)",
                domain_of(from),
                limits.per_domain
            ),
        }
    }
}

/// What to do with a mail that would open a new case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Under both limits: open the case.
    Open,
    /// Over `limit`: add the mail to the timeline of the sender's most
    /// recent open case, without paging.
    FileInto { case: CaseNumber, limit: Limit },
    /// Over `limit`, and the sender has no open case: keep the mail in the
    /// inbox as held.
    Hold { limit: Limit },
}

/// Decides, from the cases opened in the last hour (`recent`), the
/// `limits`, and the sender's most recent open case (`open`), what a mail
/// that would open a case does. The sender's own limit is named first when
/// both are reached.
pub fn intake(limits: NewCaseLimits, recent: Recent, open: Option<CaseNumber>) -> Intake {
    let reached = |limit: u32, count: i64| limit > 0 && count >= i64::from(limit);
    let limit = if reached(limits.per_sender, recent.sender) {
        Limit::Sender
    } else if reached(limits.per_domain, recent.domain) {
        Limit::Domain
    } else {
        return Intake::Open;
    };
    match open {
        Some(case) => Intake::FileInto { case, limit },
        None => Intake::Hold { limit },
    }
}

/// The domain of a (lower-cased) address: what follows its last `@`, or the
/// whole address if it has none.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, domain)| domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: NewCaseLimits = NewCaseLimits { per_sender: 5, per_domain: 30 };

    fn recent(sender: i64, domain: i64) -> Recent {
        Recent { sender, domain }
    }

    #[test]
    fn under_both_limits_a_mail_opens_its_case() {
        assert_eq!(intake(LIMITS, recent(0, 0), None), Intake::Open);
        assert_eq!(intake(LIMITS, recent(4, 29), Some(CaseNumber(1001))), Intake::Open);
    }

    #[test]
    fn the_sixth_case_of_a_sender_in_an_hour_joins_their_open_case() {
        assert_eq!(
            intake(LIMITS, recent(5, 5), Some(CaseNumber(1005))),
            Intake::FileInto { case: CaseNumber(1005), limit: Limit::Sender }
        );
    }

    #[test]
    fn over_a_limit_with_no_open_case_the_mail_is_held() {
        assert_eq!(intake(LIMITS, recent(7, 7), None), Intake::Hold { limit: Limit::Sender });
        assert_eq!(intake(LIMITS, recent(0, 30), None), Intake::Hold { limit: Limit::Domain });
    }

    #[test]
    fn a_domain_full_of_new_senders_reaches_the_domain_limit() {
        assert_eq!(
            intake(LIMITS, recent(0, 30), Some(CaseNumber(1001))),
            Intake::FileInto { case: CaseNumber(1001), limit: Limit::Domain }
        );
    }

    #[test]
    fn the_sender_limit_is_named_when_both_are_reached() {
        assert_eq!(intake(LIMITS, recent(5, 30), None), Intake::Hold { limit: Limit::Sender });
    }

    #[test]
    fn zero_means_no_limit() {
        let off = NewCaseLimits { per_sender: 0, per_domain: 0 };
        assert_eq!(intake(off, recent(1_000, 1_000), None), Intake::Open);
        let sender_only = NewCaseLimits { per_sender: 2, per_domain: 0 };
        assert_eq!(intake(sender_only, recent(1, 1_000), None), Intake::Open);
        assert_eq!(intake(sender_only, recent(2, 2), None), Intake::Hold { limit: Limit::Sender });
    }

    #[test]
    fn the_reason_names_the_sender_or_domain_and_the_setting() {
        let why = Limit::Sender.why(LIMITS, "ops@acme.com");
        assert!(why.contains("ops@acme.com") && why.contains("5 new cases per hour"), "{why}");
        assert!(why.contains("new_cases_per_sender_per_hour"), "{why}");
        let why = Limit::Domain.why(LIMITS, "ops@acme.com");
        assert!(why.contains("senders of acme.com") && why.contains("30 new cases"), "{why}");
    }

    #[test]
    fn the_domain_is_what_follows_the_last_at() {
        assert_eq!(domain_of("ops@acme.com"), "acme.com");
        assert_eq!(domain_of("\"a@b\"@acme.com"), "acme.com");
        assert_eq!(domain_of("nodomain"), "nodomain");
    }
}
