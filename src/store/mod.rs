//! Storage: one [`Store`] trait of domain-level operations, implemented
//! once ([`SqlStore`], in `body`) over two dialects, SQLite ([`sqlite`]) and
//! PostgreSQL ([`postgres`]); the backend is chosen once at start-up from
//! the URL. The store carries out what the core decided; it holds no domain
//! rule and no text a user reads, and imports no service or door.
//!
//! The trait holds no SQL dialect: instants are `DateTime<Utc>` from the
//! injected clock, changes arrive as whole [`Transition`]s (and delivery
//! outcomes as [`tocsin_core::delivery`] decides them), and claims are
//! "take what is due, with a lease". `rows` maps rows for both backends;
//! `dialect` is the seam where they differ (how transactions start and rows
//! are locked, a few SQL words, placeholders, migrations); the backend
//! modules set up their pools and fill that seam.

mod body;
mod dialect;
pub mod postgres;
mod rows;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::audit::{AuditAction, AuditEntry};
use crate::case::{Case, CaseNumber, PageKind, Status, Timer, Transition};
use crate::escalation::Position;
use crate::mail::{Envelope, InboxStatus};
use crate::people::{ChannelKind, PersonId};
use crate::token::{TokenInfo, TokenRecord, TokenRole};
pub use body::SqlStore;
use dialect::Dialect;
pub use tocsin_core::case::EventRecord;
pub use tocsin_core::delivery::{Delivery, PageStatus};
pub use tocsin_core::digest::DigestData;
pub use tocsin_core::reports::{ReportCase, ReportData, ReportPage};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The case changed since the transition was decided on it.
    #[error("the case changed meanwhile; decide again on its new state")]
    Conflict,
    /// Another worker owns the timer or page now.
    #[error("the lease on this work was lost to another worker")]
    LostLease,
    #[error("{0} already exists")]
    Duplicate(String),
    /// The idempotency key of a new case was used before, for `case`.
    #[error("this request key was used before, for case {case}")]
    Repeated { case: CaseNumber, fingerprint: String },
    /// The inbound message was filed meanwhile (by another worker).
    #[error("the message was filed meanwhile")]
    AlreadyFiled,
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRecord {
    pub id: i64,
    /// `None` for notices that belong to no case.
    pub case: Option<CaseNumber>,
    pub person: Option<PersonId>,
    pub address: String,
    pub channel: ChannelKind,
    pub kind: PageKind,
    pub position: Option<Position>,
    pub detail: String,
    pub status: PageStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempts: i64,
    pub provider_id: Option<String>,
    pub error: Option<String>,
    /// Claimed again after a lease ran out mid-send: the earlier attempt
    /// may have gone out.
    pub in_doubt: bool,
    /// When the earlier attempt was claimed.
    pub prev_claimed_at: Option<DateTime<Utc>>,
    /// Who wrote it, for a reply to the customer; `None` otherwise.
    pub author: Option<PersonId>,
}

/// An on-call override as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverrideRecord {
    pub id: i64,
    pub schedule: String,
    pub person: PersonId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// An inbound message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRecord {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub envelope: Envelope,
    pub raw: Vec<u8>,
    pub status: InboxStatus,
    pub case: Option<CaseNumber>,
    pub note: String,
}

/// A signed-in dashboard session: whose token it stands for, and the
/// secret every form must echo.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// Its token as stored: the session lasts only while the token may be
    /// used (`TokenService` checks).
    pub token: TokenRecord,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub cases_by_status: Vec<(String, i64)>,
    /// (channel, status, count)
    pub pages: Vec<(String, String, i64)>,
    pub timers_pending: i64,
    pub timers_due: i64,
}

/// Everything Tocsin keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a new case with the effects of opening it; assigns its number.
    async fn create_case(&self, tr: &Transition) -> Result<Case, StoreError>;
    async fn case(&self, number: CaseNumber) -> Result<Option<Case>, StoreError>;
    /// Cases, newest first, optionally of one status.
    async fn cases(&self, status: Option<Status>, limit: u32) -> Result<Vec<Case>, StoreError>;
    async fn timeline(&self, number: CaseNumber) -> Result<Vec<EventRecord>, StoreError>;
    async fn pages_of(&self, number: CaseNumber) -> Result<Vec<PageRecord>, StoreError>;
    /// The escalation step of the latest page that reached `person` on
    /// this case.
    async fn last_step_paging(&self, number: CaseNumber, person: &PersonId) -> Result<Option<Position>, StoreError>;

    /// Applies `tr` if the case is still at `version`; with `consume`, also
    /// deletes that timer, which `owner` must still hold. All or nothing.
    async fn commit(&self, tr: &Transition, version: i64, consume: Option<(i64, &str)>) -> Result<Case, StoreError>;
    /// Commits a batch of fired timers, each `(transition, version, timer
    /// id)` as [`Store::commit`] with `consume = (timer id, owner)` would,
    /// answering for each in order. An item whose case moved on
    /// (`Conflict`) or whose timer `owner` no longer holds (`LostLease`)
    /// is skipped alone (a savepoint each); any other error fails the call.
    /// All in one transaction: one disk flush per batch, not per timer.
    async fn commit_fired(
        &self,
        fired: &[(Transition, i64, i64)],
        owner: &str,
    ) -> Result<Vec<Result<Case, StoreError>>, StoreError>;

    /// Leases up to `limit` timers due at `now` that nobody holds (or whose
    /// lease ran out), oldest first.
    async fn claim_timers(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<Timer>, StoreError>;
    /// Deletes a held timer without effects (its case is gone).
    async fn drop_timer(&self, id: i64, owner: &str) -> Result<(), StoreError>;
    /// Hands back every timer `owner` still holds, so another instance can
    /// take them at once instead of waiting for the leases to run out (a
    /// draining instance's unfinished work). Returns how many.
    async fn release_timers(&self, owner: &str) -> Result<u64, StoreError>;
    /// The earliest instant at which some timer can be claimed.
    async fn next_timer_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Leases up to `limit` queued pages (and pages whose sending lease ran
    /// out), oldest first, marking them `sending`.
    async fn claim_pages(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError>;
    /// Records how deliveries ended, in one transaction; a failure also goes
    /// on the timeline. Pages whose lease this owner lost are skipped; returns
    /// how many were recorded.
    async fn finish_pages(
        &self,
        owner: &str,
        outcomes: &[(i64, Delivery)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

    /// Stores an override; returns it with its id.
    /// Open cases whose current escalation step paged `person`.
    async fn cases_paging(&self, person: &PersonId) -> Result<Vec<CaseNumber>, StoreError>;
    /// Cases assigned to `person` that are not resolved.
    async fn cases_assigned(&self, person: &PersonId) -> Result<Vec<Case>, StoreError>;
    async fn page(&self, id: i64) -> Result<Option<PageRecord>, StoreError>;
    /// Queues pages outside a transition (answers to commands, notices);
    /// `case` is `None` for notices that belong to no case.
    async fn queue_pages(
        &self,
        case: Option<CaseNumber>,
        pages: &[crate::case::NewPage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records that `person` replied STOP (`out`) or START; true if that
    /// changed anything.
    async fn set_sms_opt_out(&self, person: &PersonId, out: bool, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Everybody who replied STOP and not START since.
    async fn sms_opt_outs(&self) -> Result<std::collections::BTreeSet<PersonId>, StoreError>;
    /// Counts one more error reply to `person`'s phone; returns how many in
    /// a row. `ok` resets the count instead and returns 0.
    async fn phone_errors(&self, person: &PersonId, ok: bool, now: DateTime<Utc>) -> Result<i64, StoreError>;

    /// The pages a provider knows by `provider_id` (several when one
    /// message bundled them).
    async fn pages_by_provider_id(&self, provider_id: &str) -> Result<Vec<PageRecord>, StoreError>;
    /// When `person` was last reached on `channel`.
    async fn last_sent(&self, person: &PersonId, channel: ChannelKind) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// A provider's delivery report: `status` (delivered, undelivered or
    /// failed) for page `id`, and a fallback page if it did not arrive.
    /// Reports never move a page backwards; false if this one would.
    async fn report_delivery(
        &self,
        id: i64,
        status: PageStatus,
        error: Option<&str>,
        fallback: Option<&crate::case::NewPage>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn insert_override(&self, o: &OverrideRecord) -> Result<OverrideRecord, StoreError>;
    /// Overrides that end after `after`, oldest first (so later ones win).
    async fn overrides(&self, after: DateTime<Utc>) -> Result<Vec<OverrideRecord>, StoreError>;
    /// Deletes an override; false if there was none with that id.
    async fn delete_override(&self, id: i64) -> Result<bool, StoreError>;

    /// Commits a raw inbound message as `pending`; returns its row id.
    async fn receive_mail(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// Pending inbox rows, oldest first.
    async fn pending_mail(&self, limit: u32) -> Result<Vec<i64>, StoreError>;
    async fn inbox(&self, id: i64) -> Result<Option<InboxRecord>, StoreError>;
    /// Settles a pending row without a case change (duplicate, automatic,
    /// unusable). False if it was no longer pending.
    async fn settle_mail(
        &self,
        id: i64,
        status: InboxStatus,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The case of the first of `ids` Tocsin sent or received.
    async fn case_by_message_id(&self, ids: &[String]) -> Result<Option<CaseNumber>, StoreError>;
    /// Whether Tocsin received a message with this Message-ID before.
    async fn received_before(&self, message_id: &str) -> Result<bool, StoreError>;
    /// How many receipts went to `address` since `since`.
    async fn receipts_since(&self, address: &str, since: DateTime<Utc>) -> Result<i64, StoreError>;
    /// A setting Tocsin keeps for itself; `default` is stored if absent.
    async fn setting(&self, name: &str, default: &str) -> Result<String, StoreError>;

    /// The figures of a digest covering `since` until now.
    async fn digest_data(&self, since: DateTime<Utc>) -> Result<DigestData, StoreError>;
    /// Queues `page` (a digest for `person`) unless one was queued for
    /// `day` already; true if it was queued now.
    async fn queue_digest(
        &self,
        person: &PersonId,
        day: &str,
        page: &crate::case::NewPage,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Stores a new token (its expiry and scope in `info`); `Duplicate`
    /// when its name is taken.
    async fn insert_token(&self, info: &TokenInfo, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// The token stored under `hash`, revoked or expired ones included.
    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;

    async fn counts(&self, now: DateTime<Utc>) -> Result<Counts, StoreError>;

    /// Cases not yet resolved, those whose next deadline comes first first
    /// (cases with no running deadline last); at most `limit`.
    async fn active_cases(&self, limit: u32) -> Result<Vec<Case>, StoreError>;
    /// Pages that failed or were not delivered since `since`, and pages
    /// still queued or sending that were created before `stuck_before`;
    /// newest first, at most `limit`.
    async fn troubled_pages(
        &self,
        since: DateTime<Utc>,
        stuck_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError>;
    /// SMS pages handed to the provider in `[from, to)` that no delivery
    /// report has confirmed or failed since; newest first, at most `limit`.
    async fn unconfirmed_sms(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError>;
    /// The raw material of the reports for cases opened in `[from, to)`.
    async fn report_data(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ReportData, StoreError>;

    /// Stores a dashboard session for the token whose hash is `token_hash`;
    /// `hash` is the hash of the session's cookie value.
    async fn create_session(
        &self,
        hash: &str,
        token_hash: &str,
        csrf: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The session whose cookie hashes to `hash`, unless it expired by `now`
    /// or its token is gone. Its token comes as stored, revoked or expired.
    async fn session(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>, StoreError>;
    /// Ends a session (sign-out), and forgets every session expired by `now`.
    async fn delete_session(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    // --- tokens and audit (issue 13) ---

    /// Every token, oldest first, revoked and expired ones included.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Marks the token named `name` revoked at `now` (a second revocation
    /// keeps the first instant) and deletes its dashboard sessions, in one
    /// transaction. False when no token has that name.
    async fn revoke_token(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Appends an entry to the audit log.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Audit entries in `[from, to]`, oldest first, at most `limit`.
    async fn audit(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// When `action` was recorded for client `client` since `since`,
    /// oldest first (what the sign-in limit counts).
    async fn audit_times(
        &self,
        action: AuditAction,
        client: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError>;

    // --- mail verification (issue 13) ---
    /// A setting Tocsin kept for itself, if it is there (none is stored).
    async fn read_setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Deletes a setting: the reply key once it has moved out of the
    /// database into its file.
    async fn delete_setting(&self, name: &str) -> Result<(), StoreError>;

    // --- Twilio replays and new-case limits (issue 13) ---
    /// Claims the Twilio webhook key (`sid`, `event`): true the first time,
    /// false for a replay. One `INSERT … ON CONFLICT DO NOTHING` on the key,
    /// so of two instances receiving the same request at once exactly one
    /// gets true. Keys claimed before `forget_before` are pruned in the same
    /// call.
    async fn claim_twilio(
        &self,
        sid: &str,
        event: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Hands a claimed key back: the action it guarded failed, so a retry
    /// of the webhook should act.
    async fn release_twilio(&self, sid: &str, event: &str) -> Result<(), StoreError>;
    /// Cases opened from mail since `since`: by `sender`, and by anyone of
    /// `domain`.
    async fn mail_openings_since(
        &self,
        sender: &str,
        domain: &str,
        since: DateTime<Utc>,
    ) -> Result<tocsin_core::mail::intake::Recent, StoreError>;
    /// The newest case of `requester` that is neither resolved nor closed.
    async fn open_case_of(&self, requester: &str) -> Result<Option<CaseNumber>, StoreError>;
    /// Inbox rows in `status`, newest first, at most `limit`.
    async fn inbox_in(&self, status: InboxStatus, limit: u32) -> Result<Vec<InboxRecord>, StoreError>;
    /// How many inbox rows are in `status`.
    async fn inbox_count(&self, status: InboxStatus) -> Result<i64, StoreError>;

    // --- issue 16: recovery ---
    /// Ends at `now` every lease on a timer or a sending page not held by
    /// `owner`, so the work an earlier process left in flight is taken at
    /// once instead of when its lease runs out (a page so taken is in
    /// doubt and looked up before it is sent again, as always). Only for an
    /// instance that knows no other is alive (a SQLite daemon holding the
    /// database's lock). Returns (timers, pages) taken over.
    async fn take_over_leases(&self, owner: &str, now: DateTime<Utc>) -> Result<(u64, u64), StoreError>;
    // --- issue 14: replies ---
    /// The Message-IDs of the customer's mail filed on case `number`,
    /// oldest first: a reply answers the last and references them all.
    async fn customer_messages(&self, number: CaseNumber) -> Result<Vec<String>, StoreError>;
    /// The attachments listed on case `number`, oldest first.
    async fn attachments_of(&self, number: CaseNumber) -> Result<Vec<AttachmentRecord>, StoreError>;
    /// Attachment `id` of case `number`, if it is one of that case's.
    async fn attachment(&self, number: CaseNumber, id: i64) -> Result<Option<AttachmentRecord>, StoreError>;
    /// The inbox rows filed on case `number` (its messages), oldest first,
    /// without their raw bytes.
    async fn case_messages(&self, number: CaseNumber) -> Result<Vec<MessageRecord>, StoreError>;

    // --- issue 15: finding cases ---
    /// Cases that meet every condition of `q`, newest (highest number)
    /// first, at most `q.limit`. Each filter walks an index ending in
    /// `number`, so a page costs the same deep in the list as at its top.
    async fn find_cases(&self, q: &CaseQuery) -> Result<Vec<Case>, StoreError>;

    // --- issue 15: calendar feed versions ---
    /// Records the shifts a feed serves, `(uid, fingerprint)`, and answers
    /// for each its `(sequence, stamp)`: a new shift gets sequence 0 and
    /// `now`; one whose fingerprint changed since it was last served gets
    /// its sequence raised by one and `now`; an unchanged one keeps both.
    /// Each row changes in one statement, so two fetches at once raise a
    /// sequence once.
    async fn feed_versions(
        &self,
        shifts: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError>;

    // --- issue 18: rehearsing rules ---
    /// When the dispatcher next has a page to claim: the earliest queued
    /// page's next attempt (a page held back by `[sms] min_interval` or a
    /// retry), or an expired lease. `tocsin simulate` moves its clock here
    /// as it does to [`Store::next_timer_at`].
    async fn next_page_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// An attachment listed on a case; its bytes are in the raw message of
/// inbox row `inbox_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    pub id: i64,
    pub case: CaseNumber,
    pub inbox_id: i64,
    pub part: u32,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub at: DateTime<Utc>,
}

/// A message filed on a case, as listed (the raw bytes are read apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub status: InboxStatus,
}

/// What a search for cases asks (`GET /api/v1/cases`, the dashboard's
/// Cases page). Every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    pub status: Option<Status>,
    /// A customer's name, as in the rules.
    pub customer: Option<String>,
    pub assignee: Option<PersonId>,
    /// The requester's mail address, exactly.
    pub requester: Option<String>,
    pub priority: Option<crate::sla::Priority>,
    /// Text the subject or the body contains (ASCII letters in any case).
    pub text: Option<String>,
    /// The cursor: only cases numbered below it.
    pub before: Option<CaseNumber>,
    /// Only cases this person may see as an engineer: assigned to them, or
    /// that paged them.
    pub seen_by: Option<PersonId>,
    pub limit: u32,
}

/// Opens the store `[database]` names: `sqlite://PATH` (created if missing)
/// or `postgres://…` / `postgresql://…` (the database must exist), and
/// applies pending migrations.
pub async fn open(db: &crate::config::Database) -> Result<Arc<dyn Store>, String> {
    open_with(db, true).await
}

/// Opens `[database] reports_url`: like [`open`], but a PostgreSQL replica
/// is not migrated (it refuses DDL; its schema arrives by replication).
pub async fn open_reports(db: &crate::config::Database) -> Result<Arc<dyn Store>, String> {
    open_with(db, false).await
}

async fn open_with(db: &crate::config::Database, migrate: bool) -> Result<Arc<dyn Store>, String> {
    let url = db.url.as_str();
    if url.starts_with("sqlite:") {
        let store =
            sqlite::SqliteStore::open(url, db.busy_timeout).await.map_err(|e| format!("cannot open {url}: {e}"))?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = if migrate {
            postgres::PostgresStore::open(url, db.busy_timeout).await
        } else {
            postgres::PostgresStore::connect(url, db.busy_timeout).await
        };
        // Never echo a PostgreSQL URL: it may carry a password.
        let store = store.map_err(|e| format!("cannot open the PostgreSQL database: {e}"))?;
        Ok(Arc::new(store))
    } else {
        Err(format!("database url {url:?} is not understood: use sqlite://PATH or postgres://USER@HOST/DB"))
    }
}

/// The configured database, opened to read only (no migration, nothing
/// written): `tocsin simulate` and `tocsin check --coverage` read the SMS
/// opt-outs and overrides this way. `None` for an SQLite file that does not
/// exist yet, or an in-memory one: nothing to read.
pub async fn open_read_only(db: &crate::config::Database) -> Result<Option<Arc<dyn Store>>, String> {
    let url = db.url.as_str();
    if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        let file = rest.split('?').next().unwrap_or_default();
        if file.is_empty() || file.contains(":memory:") || !std::path::Path::new(file).exists() {
            return Ok(None);
        }
        let store = sqlite::SqliteStore::open_read_only(url, db.busy_timeout)
            .await
            .map_err(|e| format!("cannot read {url}: {e}"))?;
        return Ok(Some(Arc::new(store)));
    }
    // PostgreSQL: connected without migrating, as a reports replica is.
    open_reports(db).await.map(Some)
}

/// `url` fit for logs and messages: a password in it becomes `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Parses a stored role.
pub(crate) fn role(s: &str) -> Result<TokenRole, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(redacted("postgres://tocsin:s3cr%40t@db:5432/tocsin"), "postgres://tocsin:***@db:5432/tocsin");
        assert_eq!(redacted("postgres://tocsin@db/tocsin"), "postgres://tocsin@db/tocsin");
        assert_eq!(redacted("sqlite://tocsin.db"), "sqlite://tocsin.db");
    }
}
