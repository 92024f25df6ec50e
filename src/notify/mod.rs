//! Notifications out: the outbox rows that case changes queue, rendered from
//! templates and handed to a [`Channel`] by the [`dispatcher`]. A worker
//! beside the services: it may use the core and the store, never a door.

pub mod dispatcher;
pub mod email;
pub mod ids;
pub mod outbox;
pub mod sms;
pub mod templates;
pub mod twilio;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::case::{Case, CaseNumber, PageKind};
use crate::people::{ChannelKind, Person};
use crate::store::PageRecord;

pub use templates::{Rendered, Templates};

/// One message ready for a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The outbox row; channels use it to make delivery idempotent.
    pub page_id: i64,
    /// `None` for notices.
    pub case: Option<CaseNumber>,
    pub kind: PageKind,
    pub channel: ChannelKind,
    pub to: String,
    pub body: Rendered,
    /// For email: the Message-ID to send it with (no angle brackets).
    pub message_id: Option<String>,
    /// For email to a person: the signed address their reply goes to.
    pub reply_to: Option<String>,
    /// The other outbox rows an SMS bundle carries besides `page_id`;
    /// empty for a message of one page.
    pub bundled: Vec<i64>,
    /// For email in the customer's thread: the Message-IDs (no angle
    /// brackets) it answers, oldest first; the last is `In-Reply-To`, all
    /// are `References` (RFC 5322 §3.6.4).
    pub answers: Vec<String>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (a network error, a 4xx SMTP reply).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Will never work (an invalid number, a 5xx SMTP reply).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// A way to deliver messages.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// Delivers `msg`; returns the provider's id for it, if any.
    async fn send(&self, msg: &Message) -> Result<Option<String>, SendError>;

    /// For a send that was interrupted (the process died between the
    /// provider call and recording its outcome): the provider's id of `msg`
    /// if it went out after all. `None` means "not sent, or cannot tell":
    /// the dispatcher then sends it. Channels whose repeat is harmless need
    /// not look.
    async fn find_sent(&self, _msg: &Message, _since: DateTime<Utc>) -> Result<Option<String>, SendError> {
        Ok(None)
    }
}

/// What templates see.
#[derive(Debug, Serialize)]
pub struct Context<'a> {
    /// `None` for notices that belong to no case.
    pub case: Option<CaseView<'a>>,
    pub person: Option<PersonView<'a>>,
    /// Who wrote a reply to the customer; `None` for every other message.
    pub author: Option<PersonView<'a>>,
    pub page: PageView,
    pub public_url: &'a str,
}

#[derive(Debug, Serialize)]
pub struct CaseView<'a> {
    pub number: i64,
    pub tag: String,
    pub subject: &'a str,
    pub body: &'a str,
    pub priority: &'a str,
    pub customer: Option<&'a str>,
    pub requester: &'a str,
    pub status: &'static str,
    pub assignee: Option<&'a str>,
    pub respond_due: String,
    pub respond_due_short: String,
    pub resolve_due: String,
}

#[derive(Debug, Serialize)]
pub struct PersonView<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[derive(Debug, Serialize)]
pub struct PageView {
    pub kind: &'static str,
    /// "step 2", "step 1 (repeat 1)", or empty.
    pub step_label: String,
    pub detail: String,
}

fn when(at: Option<DateTime<Utc>>, tz: Tz, format: &str) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.with_timezone(&tz).format(format).to_string())
}

/// The template context for `page` of `case`, with times in the
/// recipient's zone (UTC for customers).
pub fn context<'a>(case: &'a Case, page: &PageRecord, person: Option<&'a Person>, public_url: &'a str) -> Context<'a> {
    context_by(case, page, person, None, public_url)
}

/// As [`context`], for a message `author` wrote (a reply to the customer).
pub fn context_by<'a>(
    case: &'a Case,
    page: &PageRecord,
    person: Option<&'a Person>,
    author: Option<&'a Person>,
    public_url: &'a str,
) -> Context<'a> {
    let tz = person.map_or(Tz::UTC, |p| p.timezone);
    Context {
        case: Some(CaseView {
            number: case.number.0,
            tag: case.number.to_string(),
            subject: &case.subject,
            body: &case.body,
            priority: case.priority.as_str(),
            customer: case.customer.as_deref(),
            requester: &case.requester,
            status: case.status.as_str(),
            assignee: case.assignee.as_ref().map(|a| a.as_str()),
            respond_due: when(case.deadlines.respond, tz, "%Y-%m-%d %H:%M %Z"),
            respond_due_short: when(case.deadlines.respond, tz, "%H:%M %Z"),
            resolve_due: when(case.deadlines.resolve, tz, "%Y-%m-%d %H:%M %Z"),
        }),
        person: person.map(|p| PersonView { id: p.id.as_str(), name: &p.name }),
        author: author.map(|p| PersonView { id: p.id.as_str(), name: &p.name }),
        page: PageView {
            kind: page.kind.as_str(),
            step_label: page.position.map(|p| p.to_string()).unwrap_or_default(),
            detail: page.detail.clone(),
        },
        public_url,
    }
}

/// The template context for a notice, which belongs to no case.
pub fn notice_context<'a>(page: &PageRecord, person: Option<&'a Person>, public_url: &'a str) -> Context<'a> {
    Context {
        case: None,
        person: person.map(|p| PersonView { id: p.id.as_str(), name: &p.name }),
        author: None,
        page: PageView { kind: page.kind.as_str(), step_label: String::new(), detail: page.detail.clone() },
        public_url,
    }
}

/// Renders every kind of message on every channel for a sample case: the
/// check `Templates::load` runs, and a preview for tests.
pub fn sample_renders(templates: &Templates) -> Vec<Result<(PageKind, ChannelKind, Rendered), String>> {
    use crate::case::{Escalation, Status};
    use crate::escalation::Position;
    use crate::sla::Deadlines;
    use crate::store::PageStatus;

    let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default();
    let case = Case {
        number: CaseNumber(1042),
        subject: "Database <b>down</b> in eu-west & every checkout times out after thirty seconds".into(),
        body: "Since 03:00 every request times out.".into(),
        customer: Some("Acme".into()),
        requester: "ops@acme.com".into(),
        priority: "P1".parse().unwrap_or_else(|_| unreachable!()),
        plan: "gold".into(),
        policy: "urgent".into(),
        status: Status::Open,
        assignee: None,
        opened_at: at,
        acked_at: None,
        resolved_at: None,
        deadlines: Deadlines { respond: Some(at), update: None, resolve: Some(at) },
        respond_from: at,
        update_from: None,
        pauses: Vec::new(),
        warned: Default::default(),
        snoozed_until: None,
        escalation: Escalation { at: Position::FIRST, running: true },
        unverified: false,
        respond_met_at: None,
        update_met_at: None,
        urgency: crate::routing::Urgency::High,
        held_until: None,
        version: 1,
    };
    let person = Person {
        id: "ana".parse().unwrap_or_else(|_| unreachable!()),
        name: "Ana Lima".into(),
        email: "ana@example.com".into(),
        phone: None,
        timezone: Tz::Europe__London,
        role: crate::people::Role::Engineer,
        channels: vec![ChannelKind::Sms],
    };
    let mut out = Vec::new();
    for kind in PageKind::ALL {
        let channels: &[ChannelKind] =
            if kind.to_customer() || matches!(kind, PageKind::Confirmation | PageKind::Digest) {
                &[ChannelKind::Email]
            } else {
                &[ChannelKind::Sms, ChannelKind::Email]
            };
        for &channel in channels {
            let page = PageRecord {
                id: 7,
                case: Some(case.number),
                person: (!kind.to_customer()).then(|| person.id.clone()),
                address: "x".into(),
                channel,
                kind,
                position: (kind == PageKind::Page).then_some(Position { round: 0, step: 1 }),
                detail: if kind.in_customer_thread() {
                    "We restarted the primary <db> & checkout works again.\n\nWe will watch it for an hour.".into()
                } else {
                    "respond deadline 2026-11-20T03:30:00Z passed: no acknowledgement".into()
                },
                status: PageStatus::Queued,
                created_at: at,
                updated_at: at,
                attempts: 0,
                provider_id: None,
                error: None,
                in_doubt: false,
                prev_claimed_at: None,
                author: kind.in_customer_thread().then(|| person.id.clone()),
            };
            let who = (!kind.to_customer()).then_some(&person);
            let author = kind.in_customer_thread().then_some(&person);
            let ctx = if matches!(kind, PageKind::Notice | PageKind::Digest) {
                notice_context(&page, who, "https://support.example.com")
            } else {
                context_by(&case, &page, who, author, "https://support.example.com")
            };
            out.push(templates.render(kind, channel, &ctx).map(|r| (kind, channel, r)));
        }
    }
    out
}
