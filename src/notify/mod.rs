//! Notifications out: the outbox rows that case changes queue, rendered from
//! templates and handed to a [`Channel`] by the [`dispatcher`].

pub mod dispatcher;
pub mod outbox;
pub mod templates;

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
    pub case: CaseNumber,
    pub kind: PageKind,
    pub channel: ChannelKind,
    pub to: String,
    pub body: Rendered,
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
    /// Delivers `msg`; returns the provider's id for it, if any. Sending the
    /// same `page_id` twice must not deliver twice where the provider allows
    /// that to be prevented.
    async fn send(&self, msg: &Message) -> Result<Option<String>, SendError>;
}

/// What templates see.
#[derive(Debug, Serialize)]
pub struct Context<'a> {
    pub case: CaseView<'a>,
    pub person: Option<PersonView<'a>>,
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
    let tz = person.map_or(Tz::UTC, |p| p.timezone);
    Context {
        case: CaseView {
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
        },
        person: person.map(|p| PersonView { id: p.id.as_str(), name: &p.name }),
        page: PageView {
            kind: page.kind.as_str(),
            step_label: page.position.map(|p| p.to_string()).unwrap_or_default(),
            detail: page.detail.clone(),
        },
        public_url,
    }
}
