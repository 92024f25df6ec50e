//! What a delivery outcome does to a page: the page's new status, the
//! timeline entry a failure leaves on its case, whether another channel takes
//! over, and whether the person's count of error replies starts again.
//!
//! Decided here, as plain functions of the outcome, the page and `now`; the
//! store only writes what they return (STYLE.md: storage carries out, it does
//! not decide). Like the rest of the core, nothing here does I/O.
//!
//! An outcome is decided in two parts. [`Delivery::settlement`] is what the
//! page's own row becomes, decided from the outcome alone, so the store can
//! write it in the one statement that also checks the sender still holds the
//! page. [`after_attempt`] and [`after_report`] are everything else, decided
//! once the store knows whose page it was ([`PageFacts`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::case::{Actor, CaseNumber, EventKind, NewEvent, NewPage, PageKind, Via};
use crate::people::{ChannelKind, PersonId};

/// A page's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageStatus {
    Queued,
    Sending,
    /// Handed to the provider.
    Sent,
    /// The provider reports it reached the phone.
    Delivered,
    /// The provider could not deliver it.
    Undelivered,
    Failed,
    /// Superseded before it could go out (the case was acknowledged or
    /// escalated past its step).
    Cancelled,
}

impl PageStatus {
    pub const ALL: [PageStatus; 7] = [
        PageStatus::Queued,
        PageStatus::Sending,
        PageStatus::Sent,
        PageStatus::Delivered,
        PageStatus::Undelivered,
        PageStatus::Failed,
        PageStatus::Cancelled,
    ];

    /// The states a provider's delivery report may move a page out of: out
    /// of our hands and not yet settled. Reports never move a page
    /// backwards, so a late "sent" never undoes "delivered".
    pub const REPORTABLE: [PageStatus; 2] = [PageStatus::Sending, PageStatus::Sent];

    pub fn as_str(self) -> &'static str {
        match self {
            PageStatus::Queued => "queued",
            PageStatus::Sending => "sending",
            PageStatus::Sent => "sent",
            PageStatus::Delivered => "delivered",
            PageStatus::Undelivered => "undelivered",
            PageStatus::Failed => "failed",
            PageStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// `message_id` is the email's Message-ID, recorded for threading.
    Sent { provider_id: Option<String>, message_id: Option<String> },
    /// A temporary failure: queue it again for `at`.
    Retry { at: DateTime<Utc>, error: String },
    /// Held back by a rate limit until `at`; not counted as an attempt.
    Deferred { at: DateTime<Utc> },
    /// It will not go out on this channel; `fallback` pages the same person
    /// on their next channel.
    Failed { error: String, fallback: Option<NewPage> },
    /// Superseded before it went out.
    Cancelled { reason: String },
}

/// What an ended attempt writes on its own page row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement<'a> {
    pub status: PageStatus,
    /// The provider's id for the message; `None` keeps the one recorded.
    pub provider_id: Option<&'a str>,
    pub error: Option<&'a str>,
    /// When the page may be tried again.
    pub retry_at: Option<DateTime<Utc>>,
    /// False for a rate-limit hold: the attempt its claim counted is given
    /// back.
    pub counts: bool,
}

impl Delivery {
    /// What this outcome makes of its page's row.
    pub fn settlement(&self) -> Settlement<'_> {
        let (status, provider_id, error, retry_at) = match self {
            Delivery::Sent { provider_id, .. } => (PageStatus::Sent, provider_id.as_deref(), None, None),
            Delivery::Retry { at, error } => (PageStatus::Queued, None, Some(error.as_str()), Some(*at)),
            Delivery::Deferred { at } => (PageStatus::Queued, None, None, Some(*at)),
            Delivery::Failed { error, .. } => (PageStatus::Failed, None, Some(error.as_str()), None),
            Delivery::Cancelled { reason } => (PageStatus::Cancelled, None, Some(reason.as_str()), None),
        };
        Settlement { status, provider_id, error, retry_at, counts: !matches!(self, Delivery::Deferred { .. }) }
    }
}

/// The page an outcome is about, as stored: what the decision and its
/// wording need.
#[derive(Debug, Clone, PartialEq)]
pub struct PageFacts {
    /// `None` for notices, which have no timeline.
    pub case: Option<CaseNumber>,
    pub person: Option<PersonId>,
    pub address: String,
    pub channel: ChannelKind,
    pub kind: PageKind,
}

/// What an outcome does beyond its page's row. The store writes all of it
/// in the transaction that records the outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aftermath {
    /// An SMS reached this person's phone: error replies to it may start
    /// again.
    pub reset_phone_errors: Option<PersonId>,
    /// An email's Message-ID, kept with its case so replies thread into it.
    pub thread: Option<(CaseNumber, String)>,
    /// The timeline entry the outcome leaves on the page's case.
    pub event: Option<(CaseNumber, NewEvent)>,
    /// The page that takes over on the person's next channel, queued on the
    /// failed page's case (`None` for a notice).
    pub fallback: Option<(Option<CaseNumber>, NewPage)>,
}

/// What an ended attempt (the dispatcher's own outcome) does beyond its row.
pub fn after_attempt(outcome: &Delivery, page: &PageFacts, now: DateTime<Utc>) -> Aftermath {
    match outcome {
        Delivery::Sent { message_id, .. } => Aftermath {
            reset_phone_errors: page.person.clone().filter(|_| page.channel == ChannelKind::Sms),
            thread: page.case.zip(message_id.clone()),
            // Mail in the customer's thread shows on the timeline when it
            // leaves, as a failure would: the engineer sees the customer
            // was mailed, not only that someone wrote.
            event: page.case.filter(|_| page.kind.in_customer_thread()).map(|case| {
                let event = NewEvent {
                    at: now,
                    kind: EventKind::Sent,
                    actor: Actor::System.to_string(),
                    channel: Some(Via::Email),
                    text: format!("{} to {} sent by {}", page.kind.as_str(), page.address, page.channel.as_str()),
                };
                (case, event)
            }),
            ..Aftermath::default()
        },
        Delivery::Failed { error, fallback } => {
            let who = page.person.as_ref().map_or(page.address.as_str(), PersonId::as_str);
            let text = format!("{} to {who} by {} failed: {error}", page.kind.as_str(), page.channel.as_str());
            failure(page, text, fallback.as_ref(), now)
        }
        Delivery::Retry { .. } | Delivery::Deferred { .. } | Delivery::Cancelled { .. } => Aftermath::default(),
    }
}

/// What a provider's delivery report of `status` does beyond its row, for
/// a report that moved its page (one from a state in
/// [`PageStatus::REPORTABLE`]). `fallback` is the page the person's next
/// channel would get.
pub fn after_report(
    status: PageStatus,
    error: Option<&str>,
    fallback: Option<&NewPage>,
    page: &PageFacts,
    now: DateTime<Utc>,
) -> Aftermath {
    if status == PageStatus::Delivered {
        return Aftermath::default();
    }
    let who = page.person.as_ref().map_or("", PersonId::as_str);
    let text = format!(
        "{} to {who} by {} {}: {}",
        page.kind.as_str(),
        page.channel.as_str(),
        status.as_str(),
        error.unwrap_or("no reason given")
    );
    failure(page, text, fallback, now)
}

/// A page that did not arrive: its timeline entry, and the fallback if the
/// person has another channel.
fn failure(page: &PageFacts, mut text: String, fallback: Option<&NewPage>, now: DateTime<Utc>) -> Aftermath {
    if let Some(next) = fallback {
        text += &format!("; falling back to {}", next.channel.as_str());
    }
    let via = match page.channel {
        ChannelKind::Sms => Via::Sms,
        ChannelKind::Email => Via::Email,
    };
    Aftermath {
        event: page.case.map(|case| {
            let event = NewEvent {
                at: now,
                kind: EventKind::PageFailed,
                actor: Actor::System.to_string(),
                channel: Some(via),
                text,
            };
            (case, event)
        }),
        fallback: fallback.map(|next| (page.case, next.clone())),
        ..Aftermath::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    fn person(id: &str) -> PersonId {
        id.parse().expect("a valid person id")
    }

    fn sms_page(case: Option<i64>) -> PageFacts {
        PageFacts {
            case: case.map(CaseNumber),
            person: Some(person("alice")),
            address: "+15550100".into(),
            channel: ChannelKind::Sms,
            kind: PageKind::Page,
        }
    }

    fn by_email() -> NewPage {
        NewPage {
            person: Some(person("alice")),
            address: "alice@example.com".into(),
            channel: ChannelKind::Email,
            kind: PageKind::Page,
            position: None,
            detail: String::new(),
            author: None,
        }
    }

    #[test]
    fn a_sent_reply_to_the_customer_is_on_the_timeline() {
        let sent = Delivery::Sent { provider_id: None, message_id: Some("m1@x".into()) };
        let reply = PageFacts {
            case: Some(CaseNumber(1042)),
            person: None,
            address: "ops@acme.com".into(),
            channel: ChannelKind::Email,
            kind: PageKind::CustomerReply,
        };
        let after = after_attempt(&sent, &reply, now());
        let (case, event) = after.event.expect("a timeline entry");
        assert_eq!((case, event.kind), (CaseNumber(1042), EventKind::Sent));
        assert_eq!(event.text, "customer_reply to ops@acme.com sent by email");
        assert_eq!(after.thread, Some((CaseNumber(1042), "m1@x".to_owned())));
        let receipt = PageFacts { kind: PageKind::Receipt, ..reply };
        assert_eq!(after_attempt(&sent, &receipt, now()).event, None, "a receipt is not a person's message");
    }

    #[test]
    fn a_sent_sms_lets_error_replies_start_again() {
        let sent = Delivery::Sent { provider_id: Some("SM1".into()), message_id: None };
        let after = after_attempt(&sent, &sms_page(Some(1042)), now());
        assert_eq!(after.reset_phone_errors, Some(person("alice")));
        assert_eq!((after.event, after.fallback, after.thread), (None, None, None));
    }

    #[test]
    fn a_sent_email_is_threaded_only_when_it_has_a_case() {
        let sent = Delivery::Sent { provider_id: None, message_id: Some("<m1@x>".into()) };
        let email = PageFacts { channel: ChannelKind::Email, ..sms_page(Some(1042)) };
        let after = after_attempt(&sent, &email, now());
        assert_eq!(after.thread, Some((CaseNumber(1042), "<m1@x>".to_owned())));
        assert_eq!(after.reset_phone_errors, None);
        let notice = PageFacts { case: None, ..email };
        assert_eq!(after_attempt(&sent, &notice, now()).thread, None);
    }

    #[test]
    fn a_failed_page_says_so_on_the_timeline_and_falls_back() {
        let failed = Delivery::Failed { error: "no such phone".into(), fallback: Some(by_email()) };
        let after = after_attempt(&failed, &sms_page(Some(1042)), now());
        let (case, event) = after.event.expect("an event");
        assert_eq!(case, CaseNumber(1042));
        assert_eq!(event.text, "page to alice by sms failed: no such phone; falling back to email");
        assert_eq!(
            (event.kind.as_str(), event.actor.as_str(), event.channel),
            ("page_failed", "tocsin", Some(Via::Sms))
        );
        assert_eq!(after.fallback, Some((Some(CaseNumber(1042)), by_email())));
        assert_eq!(after.reset_phone_errors, None);
    }

    #[test]
    fn a_failed_page_of_nobody_names_its_address() {
        let failed = Delivery::Failed { error: "bounced".into(), fallback: None };
        let page = PageFacts { person: None, ..sms_page(Some(7)) };
        let (_, event) = after_attempt(&failed, &page, now()).event.expect("an event");
        assert_eq!(event.text, "page to +15550100 by sms failed: bounced");
    }

    #[test]
    fn a_failed_notice_falls_back_without_a_timeline() {
        let failed = Delivery::Failed { error: "x".into(), fallback: Some(by_email()) };
        let after = after_attempt(&failed, &sms_page(None), now());
        assert_eq!((after.event, after.fallback), (None, Some((None, by_email()))));
    }

    #[test]
    fn reports_of_trouble_are_worded_with_their_status() {
        let after = after_report(PageStatus::Undelivered, None, Some(&by_email()), &sms_page(Some(3)), now());
        let (_, event) = after.event.expect("an event");
        assert_eq!(event.text, "page to alice by sms undelivered: no reason given; falling back to email");
        assert_eq!(after.fallback, Some((Some(CaseNumber(3)), by_email())));
        let failed = after_report(PageStatus::Failed, Some("Twilio error 30003"), None, &sms_page(Some(3)), now());
        assert_eq!(
            failed.event.map(|(_, e)| e.text).as_deref(),
            Some("page to alice by sms failed: Twilio error 30003")
        );
    }

    #[test]
    fn a_delivered_report_changes_nothing_else() {
        let after = after_report(PageStatus::Delivered, None, Some(&by_email()), &sms_page(Some(3)), now());
        assert_eq!(after, Aftermath::default());
    }

    #[test]
    fn reports_never_move_a_page_backwards() {
        for settled in [PageStatus::Queued, PageStatus::Delivered, PageStatus::Undelivered, PageStatus::Failed] {
            assert!(!PageStatus::REPORTABLE.contains(&settled), "{settled:?}");
        }
    }

    #[test]
    fn settlements_follow_the_outcome() {
        let at = now();
        let deferred = Delivery::Deferred { at };
        assert_eq!(
            deferred.settlement(),
            Settlement {
                status: PageStatus::Queued,
                provider_id: None,
                error: None,
                retry_at: Some(at),
                counts: false
            }
        );
        let retry = Delivery::Retry { at, error: "busy".into() };
        assert_eq!((retry.settlement().error, retry.settlement().counts), (Some("busy"), true));
        let sent = Delivery::Sent { provider_id: Some("SM1".into()), message_id: None };
        assert_eq!((sent.settlement().status, sent.settlement().provider_id), (PageStatus::Sent, Some("SM1")));
    }

    #[test]
    fn every_status_parses_back() {
        for s in PageStatus::ALL {
            assert_eq!(PageStatus::parse(s.as_str()), Some(s));
        }
    }
}
