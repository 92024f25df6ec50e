//! Rows in and out, for both backends: reading a row into a domain value,
//! and a case's columns as the one list every write of a case binds.
//!
//! The two schemas hold the same columns in the same shapes (instants as
//! milliseconds, JSON as text, flags as booleans), so one decoder serves
//! both: it reads through [`Columns`], which either backend's rows provide.
//! Nothing here knows a dialect, and nothing here decides anything.

use std::borrow::Cow;
use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    EventRecord, InboxRecord, OverrideRecord, PageRecord, PageStatus, ReportCase, ReportPage, StoreError, role,
};
use crate::audit::AuditEntry;
use crate::case::{Case, CaseNumber, Escalation, Timer};
use crate::escalation::Position;
use crate::mail::Envelope;
use crate::sla::Deadlines;
use crate::token::{TokenInfo, TokenRecord};
use tocsin_core::delivery::PageFacts;

/// The columns [`case`] reads.
pub const CASE_COLUMNS: &str = "number, subject, body, customer, requester, priority, plan, policy, status, assignee, opened_at, acked_at, resolved_at, respond_due, update_due, resolve_due, esc_round, esc_step, esc_running, version, respond_from, update_from, pauses, warned, snoozed_until, unverified, respond_met_at, update_met_at, urgency, held_until";
/// The columns [`page`] reads.
pub const PAGE_COLUMNS: &str = "id, case_number, person, address, channel, kind, round, step, detail, status, created_at, updated_at, attempts, provider_id, error, in_doubt, prev_claimed_at, author";
/// The columns [`page_facts`] reads.
pub const PAGE_FACT_COLUMNS: &str = "case_number, person, address, channel, kind";

/// An instant as stored: milliseconds since the Unix epoch.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A value bound into a statement: the column types of Tocsin's schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Int(Option<i64>),
    Flag(bool),
    Text(Option<Cow<'a, str>>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(s)))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Value::Text(s.map(Cow::Borrowed))
    }
}

impl From<Option<DateTime<Utc>>> for Value<'_> {
    fn from(t: Option<DateTime<Utc>>) -> Self {
        Value::Int(t.map(ms))
    }
}

impl From<DateTime<Utc>> for Value<'_> {
    fn from(t: DateTime<Utc>) -> Self {
        Value::Int(Some(ms(t)))
    }
}

impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

/// A value kept as JSON text.
pub fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The columns a case is opened with and that no change rewrites.
pub fn case_opening(c: &Case) -> [(&'static str, Value<'_>); 6] {
    [
        ("subject", c.subject.as_str().into()),
        ("body", c.body.as_str().into()),
        ("customer", c.customer.as_deref().into()),
        ("requester", c.requester.as_str().into()),
        ("opened_at", c.opened_at.into()),
        ("unverified", Value::Flag(c.unverified)),
    ]
}

/// The columns every change of a case writes: the one list that opening a
/// case and committing a change both bind. A new case column goes here, in
/// [`CASE_COLUMNS`] and in [`case`].
pub fn case_state(c: &Case) -> Result<[(&'static str, Value<'_>); 22], StoreError> {
    Ok([
        ("status", c.status.as_str().into()),
        ("assignee", c.assignee.as_ref().map(|p| p.as_str()).into()),
        ("priority", c.priority.as_str().into()),
        ("plan", c.plan.as_str().into()),
        ("policy", c.policy.as_str().into()),
        ("acked_at", c.acked_at.into()),
        ("resolved_at", c.resolved_at.into()),
        ("respond_due", c.deadlines.respond.into()),
        ("update_due", c.deadlines.update.into()),
        ("resolve_due", c.deadlines.resolve.into()),
        ("esc_round", c.escalation.at.round.into()),
        ("esc_step", c.escalation.at.step.into()),
        ("esc_running", Value::Flag(c.escalation.running)),
        ("respond_from", c.respond_from.into()),
        ("update_from", c.update_from.into()),
        ("pauses", Value::Text(Some(Cow::Owned(json(&c.pauses)?)))),
        ("warned", Value::Text(Some(Cow::Owned(json(&c.warned)?)))),
        ("snoozed_until", c.snoozed_until.into()),
        ("respond_met_at", c.respond_met_at.into()),
        ("update_met_at", c.update_met_at.into()),
        ("urgency", c.urgency.as_str().into()),
        ("held_until", c.held_until.into()),
    ])
}

fn corrupt<E: Display>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn instant(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt(format!("instant {v} out of range")))
}

/// Typed reads of a row's columns by name: all the decoders need of either
/// backend's rows. The first six are the schema's types; the rest read
/// Tocsin's types out of them.
pub trait Columns {
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, name: &str) -> Result<bool, StoreError>;
    fn bytes(&self, name: &str) -> Result<Vec<u8>, StoreError>;

    fn instant(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        instant(self.int(name)?)
    }

    fn opt_instant(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_int(name)?.map(instant).transpose()
    }

    /// Text that must parse as `T` (a status, a person, a kind…).
    fn parsed<T: FromStr>(&self, name: &str) -> Result<T, StoreError>
    where
        T::Err: Display,
    {
        self.text(name)?.parse().map_err(corrupt(name))
    }

    fn opt_parsed<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError>
    where
        T::Err: Display,
    {
        self.opt_text(name)?.map(|s| s.parse()).transpose().map_err(corrupt(name))
    }

    /// Text kept as JSON.
    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.text(name)?).map_err(corrupt(name))
    }

    /// An escalation round or step: `u32` in Rust, a 64-bit integer stored.
    fn small(&self, name: &str) -> Result<u32, StoreError> {
        u32::try_from(self.int(name)?).map_err(corrupt(name))
    }
}

impl<R: Row> Columns for R
where
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(name)?)
    }

    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(name)?)
    }

    fn text(&self, name: &str) -> Result<String, StoreError> {
        Ok(self.try_get(name)?)
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(name)?)
    }

    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.try_get(name)?)
    }

    fn bytes(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get(name)?)
    }
}

/// A case, from the [`CASE_COLUMNS`].
pub fn case(r: &impl Columns) -> Result<Case, StoreError> {
    let opened_at = r.instant("opened_at")?;
    Ok(Case {
        number: CaseNumber(r.int("number")?),
        subject: r.text("subject")?,
        body: r.text("body")?,
        customer: r.opt_text("customer")?,
        requester: r.text("requester")?,
        priority: r.parsed("priority")?,
        plan: r.text("plan")?,
        policy: r.text("policy")?,
        status: r.parsed("status")?,
        assignee: r.opt_parsed("assignee")?,
        opened_at,
        acked_at: r.opt_instant("acked_at")?,
        resolved_at: r.opt_instant("resolved_at")?,
        deadlines: Deadlines {
            respond: r.opt_instant("respond_due")?,
            update: r.opt_instant("update_due")?,
            resolve: r.opt_instant("resolve_due")?,
        },
        // Cases stored before the SLA clocks were kept began at opening.
        respond_from: r.opt_instant("respond_from")?.unwrap_or(opened_at),
        update_from: r.opt_instant("update_from")?,
        pauses: r.json("pauses")?,
        warned: r.json("warned")?,
        snoozed_until: r.opt_instant("snoozed_until")?,
        escalation: Escalation {
            at: Position { round: r.small("esc_round")?, step: r.small("esc_step")? },
            running: r.flag("esc_running")?,
        },
        unverified: r.flag("unverified")?,
        respond_met_at: r.opt_instant("respond_met_at")?,
        update_met_at: r.opt_instant("update_met_at")?,
        urgency: r.parsed("urgency")?,
        held_until: r.opt_instant("held_until")?,
        version: r.int("version")?,
    })
}

/// A case as the reports read it.
pub fn report_case(r: &impl Columns) -> Result<ReportCase, StoreError> {
    let opened_at = r.instant("opened_at")?;
    Ok(ReportCase {
        number: CaseNumber(r.int("number")?),
        subject: r.text("subject")?,
        customer: r.opt_text("customer")?,
        priority: r.parsed("priority")?,
        plan: r.text("plan")?,
        status: r.parsed("status")?,
        assignee: r.opt_parsed("assignee")?,
        opened_at,
        acked_at: r.opt_instant("acked_at")?,
        resolved_at: r.opt_instant("resolved_at")?,
        respond_from: r.opt_instant("respond_from")?.unwrap_or(opened_at),
        pauses: r.json("pauses")?,
        first_reply_at: r.opt_instant("first_reply_at")?,
    })
}

/// A page that reached someone, as the reports read it.
pub fn report_page(r: &impl Columns) -> Result<ReportPage, StoreError> {
    Ok(ReportPage { person: r.parsed("person")?, channel: r.parsed("channel")?, at: r.instant("created_at")? })
}

pub fn event(r: &impl Columns) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        at: r.instant("at")?,
        kind: r.text("kind")?,
        actor: r.text("actor")?,
        channel: r.opt_text("channel")?,
        text: r.text("text")?,
    })
}

/// The columns [`token`] reads, of table `tokens` as `t`.
pub const TOKEN_COLUMNS: &str = "t.name, t.role, t.person, t.schedule, t.expires_at, t.created_at, t.revoked_at";

pub fn token(r: &impl Columns) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        info: TokenInfo {
            name: r.text("name")?,
            role: role(&r.text("role")?)?,
            person: r.opt_parsed("person")?,
            schedule: r.opt_text("schedule")?,
            expires_at: r.opt_instant("expires_at")?,
        },
        created_at: r.instant("created_at")?,
        revoked_at: r.opt_instant("revoked_at")?,
    })
}

pub fn audit(r: &impl Columns) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: r.instant("at")?,
        actor: r.text("actor")?,
        action: r.parsed("action")?,
        subject: r.text("subject")?,
        detail: r.text("detail")?,
        client: r.opt_text("client")?,
    })
}

pub fn override_record(r: &impl Columns) -> Result<OverrideRecord, StoreError> {
    Ok(OverrideRecord {
        id: r.int("id")?,
        schedule: r.text("schedule")?,
        person: r.parsed("person")?,
        start: r.instant("starts_at")?,
        end: r.instant("ends_at")?,
        reason: r.text("reason")?,
        created_by: r.text("created_by")?,
        created_at: r.instant("created_at")?,
    })
}

/// A page, from the [`PAGE_COLUMNS`].
pub fn page(r: &impl Columns) -> Result<PageRecord, StoreError> {
    let position = match (r.opt_int("round")?, r.opt_int("step")?) {
        (Some(_), Some(_)) => Some(Position { round: r.small("round")?, step: r.small("step")? }),
        _ => None,
    };
    let status = r.text("status")?;
    Ok(PageRecord {
        id: r.int("id")?,
        case: r.opt_int("case_number")?.map(CaseNumber),
        person: r.opt_parsed("person")?,
        address: r.text("address")?,
        channel: r.parsed("channel")?,
        kind: r.parsed("kind")?,
        position,
        detail: r.text("detail")?,
        status: PageStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("page status {status:?}")))?,
        created_at: r.instant("created_at")?,
        updated_at: r.instant("updated_at")?,
        attempts: r.int("attempts")?,
        provider_id: r.opt_text("provider_id")?,
        error: r.opt_text("error")?,
        in_doubt: r.flag("in_doubt")?,
        prev_claimed_at: r.opt_instant("prev_claimed_at")?,
        author: r.opt_parsed("author")?,
    })
}

/// Whose page an outcome is about, from the [`PAGE_FACT_COLUMNS`].
pub fn page_facts(r: &impl Columns) -> Result<PageFacts, StoreError> {
    Ok(PageFacts {
        case: r.opt_int("case_number")?.map(CaseNumber),
        person: r.opt_parsed("person")?,
        address: r.text("address")?,
        channel: r.parsed("channel")?,
        kind: r.parsed("kind")?,
    })
}

pub fn timer(r: &impl Columns) -> Result<Timer, StoreError> {
    Ok(Timer {
        id: r.int("id")?,
        case: CaseNumber(r.int("case_number")?),
        kind: r.parsed("kind")?,
        due: r.instant("due_at")?,
        position: Position { round: r.small("round")?, step: r.small("step")? },
    })
}

pub fn inbox(r: &impl Columns) -> Result<InboxRecord, StoreError> {
    Ok(InboxRecord {
        id: r.int("id")?,
        received_at: r.instant("received_at")?,
        source: r.text("source")?,
        envelope: Envelope { from: r.opt_text("envelope_from")?, to: r.json("envelope_to")? },
        raw: r.bytes("raw")?,
        status: r.parsed("status")?,
        case: r.opt_int("case_number")?.map(CaseNumber),
        note: r.text("note")?,
    })
}

/// An attachment listed on a case (issue 14).
pub fn attachment(r: &impl Columns) -> Result<super::AttachmentRecord, StoreError> {
    Ok(super::AttachmentRecord {
        id: r.int("id")?,
        case: CaseNumber(r.int("case_number")?),
        inbox_id: r.int("inbox_id")?,
        part: u32::try_from(r.int("part")?).map_err(|_| StoreError::Corrupt("attachment part".into()))?,
        name: r.text("name")?,
        content_type: r.text("content_type")?,
        size: u64::try_from(r.int("size")?).map_err(|_| StoreError::Corrupt("attachment size".into()))?,
        at: r.instant("created_at")?,
    })
}
