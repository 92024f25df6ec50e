//! The one store body: every [`Store`] operation, written once for SQLite
//! and PostgreSQL over a [`Dialect`].
//!
//! It carries out what the core decided: a case's [`Transition`], and what a
//! delivery outcome does to a page ([`tocsin_core::delivery`]). It maps rows
//! through [`rows`] and asks the dialect wherever the two databases differ.
//! It must not decide: no domain rule and no text a person reads belong
//! here. A commit takes the case row (its version) first and its timers
//! after, the order every writer follows, so two writers never deadlock.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::marker::PhantomData;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{AssertSqlSafe, Database, Encode, Executor, Pool, QueryBuilder, Transaction, Type};

use super::dialect::{Affected, Dialect};
use super::rows::{self, CASE_COLUMNS, Columns, PAGE_COLUMNS, PAGE_FACT_COLUMNS, TOKEN_COLUMNS, Value, ms};
use super::{
    AttachmentRecord, CaseQuery, Counts, Delivery, DigestData, EventRecord, InboxRecord, MessageRecord, OverrideRecord,
    PageRecord, PageStatus, ReportData, SessionRecord, Store, StoreError,
};
use crate::audit::{AuditAction, AuditEntry};
use crate::case::{Case, CaseNumber, NewEvent, NewPage, Status, Timer, Transition};
use crate::escalation::Position;
use crate::mail::{Envelope, InboxStatus};
use crate::people::{ChannelKind, PersonId};
use crate::token::{TokenInfo, TokenRecord};
use tocsin_core::delivery::{self, Aftermath};
use tocsin_core::mail::intake::{Recent, domain_of};

type Conn<D> = <<D as Dialect>::DB as Database>::Connection;
type Query<D> = sqlx::query::Query<'static, <D as Dialect>::DB, <<D as Dialect>::DB as Database>::Arguments>;

/// A case's next deadline never comes: sorts after every real one.
const NEVER: i64 = 9_000_000_000_000_000_000;

/// A Tocsin store on the database of dialect `D`.
#[derive(Debug, Clone)]
pub struct SqlStore<D: Dialect> {
    writer: Pool<D::DB>,
    reader: Pool<D::DB>,
    dialect: PhantomData<D>,
}

/// A statement, its placeholders in `D`'s form. Only Tocsin's own SQL
/// reaches here: every value is bound, none is spliced in.
fn sql<D: Dialect>(text: impl Into<Cow<'static, str>>) -> Query<D> {
    sqlx::query(AssertSqlSafe(D::placeholders(text.into())))
}

/// `IN (…)` over `n` placeholders.
fn one_of(n: usize) -> String {
    format!("IN ({})", vec!["?"; n].join(", "))
}

impl<D: Dialect> SqlStore<D> {
    /// A store that writes through `writer` and reads through `reader`
    /// (which may be the same pool).
    pub(super) fn new(writer: Pool<D::DB>, reader: Pool<D::DB>) -> Self {
        Self { writer, reader, dialect: PhantomData }
    }

    async fn begin_write(&self) -> Result<Transaction<'static, D::DB>, StoreError> {
        Ok(self.writer.begin_with(D::BEGIN_WRITE).await?)
    }
}

// sqlx's driver traits: running a statement on a connection, and the Rust
// types the body binds. Rust carries such bounds over from no trait, so
// the two generic `impl`s below (these helpers, and the `Store` that calls
// them) each name them.
impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
{
    fn push_value(q: &mut QueryBuilder<D::DB>, value: Value<'_>) {
        match value {
            Value::Int(v) => q.push_bind(v),
            Value::Flag(v) => q.push_bind(v),
            Value::Text(v) => q.push_bind(v.as_deref()),
        };
    }

    /// Queues `pages` of case `number` in one statement.
    async fn insert_pages(
        conn: &mut Conn<D>,
        number: Option<CaseNumber>,
        pages: &[NewPage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if pages.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<D::DB>::new(
            "INSERT INTO pages (case_number, person, address, channel, kind, round, step, detail, status, created_at, updated_at, author) ",
        );
        q.push_values(pages, |mut b, p| {
            b.push_bind(number.map(|n| n.0))
                .push_bind(p.person.as_ref().map(PersonId::as_str))
                .push_bind(p.address.as_str())
                .push_bind(p.channel.as_str())
                .push_bind(p.kind.as_str())
                .push_bind(p.position.map(|x| i64::from(x.round)))
                .push_bind(p.position.map(|x| i64::from(x.step)))
                .push_bind(p.detail.as_str())
                .push_bind(PageStatus::Queued.as_str())
                .push_bind(ms(now))
                .push_bind(ms(now))
                .push_bind(p.author.as_ref().map(PersonId::as_str));
        });
        q.build().execute(&mut *conn).await?;
        Ok(())
    }

    /// Records `events` on the timeline of case `number`, in one statement.
    async fn insert_events(conn: &mut Conn<D>, number: CaseNumber, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<D::DB>::new("INSERT INTO events (case_number, at, kind, actor, channel, text) ");
        q.push_values(events, |mut b, e| {
            b.push_bind(number.0)
                .push_bind(ms(e.at))
                .push_bind(e.kind.as_str())
                .push_bind(e.actor.as_str())
                .push_bind(e.channel.map(|c| c.as_str()))
                .push_bind(e.text.as_str());
        });
        q.build().execute(&mut *conn).await?;
        Ok(())
    }

    /// [`Store::commit`]'s work inside a transaction the caller holds.
    async fn apply(
        conn: &mut Conn<D>,
        tr: &Transition,
        version: i64,
        consume: Option<(i64, &str)>,
    ) -> Result<Case, StoreError> {
        let c = &tr.case;
        // The case row first (a missing case is a conflict too).
        let locked = sql::<D>(format!("SELECT version FROM cases WHERE number = ?{}", D::LOCK_ROW))
            .bind(c.number.0)
            .fetch_optional(&mut *conn)
            .await?;
        let locked = locked.map(|r| r.int("version")).transpose()?;
        if let Some((id, owner)) = consume {
            let gone = sql::<D>("DELETE FROM timers WHERE id = ? AND owner = ?")
                .bind(id)
                .bind(owner)
                .execute(&mut *conn)
                .await?;
            if gone.rows() == 0 {
                return Err(StoreError::LostLease);
            }
        }
        if locked != Some(version) {
            return Err(StoreError::Conflict);
        }
        let mut q = QueryBuilder::<D::DB>::new("UPDATE cases SET version = version + 1");
        for (column, value) in rows::case_state(c)? {
            q.push(", ").push(column).push(" = ");
            Self::push_value(&mut q, value);
        }
        q.push(" WHERE number = ").push_bind(c.number.0);
        q.build().execute(&mut *conn).await?;
        Self::insert_effects(conn, c.number, tr, false).await?;
        Ok(Case { version: version + 1, ..c.clone() })
    }

    /// Writes a transition's timers, events, pages and filing. Rows of one
    /// table go in one multi-row statement: a new case has a dozen rows,
    /// and statements, not rows, are what cost. `fresh` skips the timer
    /// deletes a brand-new case cannot need.
    async fn insert_effects(
        conn: &mut Conn<D>,
        number: CaseNumber,
        tr: &Transition,
        fresh: bool,
    ) -> Result<(), StoreError> {
        if !fresh && !tr.cancel.is_empty() {
            let mut q = QueryBuilder::<D::DB>::new("DELETE FROM timers WHERE case_number = ");
            q.push_bind(number.0).push(" AND kind IN (");
            let mut kinds = q.separated(", ");
            for kind in &tr.cancel {
                kinds.push_bind(kind.to_string());
            }
            q.push(")").build().execute(&mut *conn).await?;
        }
        if !tr.timers.is_empty() {
            let mut q = QueryBuilder::<D::DB>::new("INSERT INTO timers (case_number, kind, due_at, round, step) ");
            q.push_values(&tr.timers, |mut b, t| {
                b.push_bind(number.0)
                    .push_bind(t.kind.to_string())
                    .push_bind(ms(t.due))
                    .push_bind(i64::from(t.position.round))
                    .push_bind(i64::from(t.position.step));
            });
            q.build().execute(&mut *conn).await?;
        }
        Self::insert_events(conn, number, &tr.events).await?;
        if let Some(filing) = &tr.filing {
            let filed = sql::<D>(
                "UPDATE inbox SET status = ?, note = ?, case_number = ?, message_id = ?, filed_at = ? WHERE id = ? AND status = 'pending'",
            )
            .bind(filing.status.as_str())
            .bind(filing.note.as_str())
            .bind(number.0)
            .bind(filing.message_id.as_deref())
            .bind(ms(tr.at))
            .bind(filing.inbox_id)
            .execute(&mut *conn)
            .await?;
            if filed.rows() == 0 {
                return Err(StoreError::AlreadyFiled);
            }
            if !filing.attachments.is_empty() {
                let mut q = QueryBuilder::<D::DB>::new(
                    "INSERT INTO attachments (case_number, inbox_id, part, name, content_type, size, created_at) ",
                );
                q.push_values(&filing.attachments, |mut b, a| {
                    b.push_bind(number.0)
                        .push_bind(filing.inbox_id)
                        .push_bind(i64::from(a.part))
                        .push_bind(a.name.as_str())
                        .push_bind(a.content_type.as_str())
                        .push_bind(i64::try_from(a.size).unwrap_or(i64::MAX))
                        .push_bind(ms(tr.at));
                });
                q.build().execute(&mut *conn).await?;
            }
            if let Some(id) = &filing.message_id {
                // ON CONFLICT rather than catching the violation: an error
                // would abort the whole PostgreSQL transaction.
                let recorded = sql::<D>(
                    "INSERT INTO message_ids (message_id, case_number, direction, created_at) VALUES (?, ?, 'in', ?)
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(id.as_str())
                .bind(number.0)
                .bind(ms(tr.at))
                .execute(&mut *conn)
                .await?;
                if recorded.rows() == 0 {
                    return Err(StoreError::Duplicate(format!("message {id}")));
                }
            }
        }
        Self::insert_pages(conn, Some(number), &tr.pages, tr.at).await
    }

    /// Runs `claim`, which leases rows to `?1` (the owner) until `?2` (the
    /// lease's end) from what is free at `?3` (now), at most `?4`, in a
    /// write transaction of its own.
    async fn claim(
        &self,
        claim: String,
        owner: &str,
        now: DateTime<Utc>,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<<D::DB as Database>::Row>, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sql::<D>(claim)
            .bind(owner)
            .bind(ms(now + lease))
            .bind(ms(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Pages that meet `condition` on two instants, newest first, at most
    /// `limit`.
    async fn newest_pages(
        &self,
        condition: &str,
        (a, b): (DateTime<Utc>, DateTime<Utc>),
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let rows = sql::<D>(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE {condition} ORDER BY id DESC LIMIT ?"))
            .bind(ms(a))
            .bind(ms(b))
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::page).collect()
    }

    /// Writes what the core decided a delivery outcome does beyond its
    /// page's row.
    async fn carry_out(conn: &mut Conn<D>, after: &Aftermath, now: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(person) = &after.reset_phone_errors {
            sql::<D>("DELETE FROM phone_errors WHERE person = ?").bind(person.as_str()).execute(&mut *conn).await?;
        }
        if let Some((case, message_id)) = &after.thread {
            sql::<D>(
                "INSERT INTO message_ids (message_id, case_number, direction, created_at) VALUES (?, ?, 'out', ?)
                 ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(message_id.as_str())
            .bind(case.0)
            .bind(ms(now))
            .execute(&mut *conn)
            .await?;
        }
        if let Some((case, next)) = &after.fallback {
            Self::insert_pages(conn, *case, std::slice::from_ref(next), now).await?;
        }
        if let Some((case, event)) = &after.event {
            Self::insert_events(conn, *case, std::slice::from_ref(event)).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> bool: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q [u8]: Encode<'q, D::DB> + Type<D::DB>,
{
    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(D::MIGRATIONS.run(&self.writer).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sql::<D>("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn create_case(&self, tr: &Transition) -> Result<Case, StoreError> {
        let c = &tr.case;
        let mut tx = self.begin_write().await?;
        if let Some(lock) = D::LOCK_NUMBERING {
            sql::<D>(lock).execute(&mut *tx).await?;
        }
        if let Some(r) = &tr.request {
            let before = sql::<D>("SELECT case_number, fingerprint FROM request_keys WHERE scope = ? AND key = ?")
                .bind(r.scope.as_str())
                .bind(r.key.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(before) = before {
                let (case, fingerprint) = (CaseNumber(before.int("case_number")?), before.text("fingerprint")?);
                return Err(StoreError::Repeated { case, fingerprint });
            }
        }
        let number = sql::<D>("SELECT COALESCE(MAX(number), 1000) + 1 AS number FROM cases")
            .fetch_one(&mut *tx)
            .await?
            .int("number")?;
        let opening = rows::case_opening(c);
        let state = rows::case_state(c)?;
        let mut q = QueryBuilder::<D::DB>::new("INSERT INTO cases (number, version");
        for (column, _) in opening.iter().chain(&state) {
            q.push(", ").push(column);
        }
        q.push(") VALUES (").push_bind(number).push(", 1");
        for (_, value) in opening.into_iter().chain(state) {
            q.push(", ");
            Self::push_value(&mut q, value);
        }
        q.push(")").build().execute(&mut *tx).await?;
        Self::insert_effects(&mut tx, CaseNumber(number), tr, true).await?;
        if tr.filing.is_some() {
            // A case opened from mail: what the new-case limits count.
            sql::<D>("INSERT INTO mail_openings (case_number, sender, domain, opened_at) VALUES (?, ?, ?, ?)")
                .bind(number)
                .bind(c.requester.as_str())
                .bind(domain_of(&c.requester))
                .bind(ms(tr.at))
                .execute(&mut *tx)
                .await?;
        }
        if let Some(r) = &tr.request {
            sql::<D>(
                "INSERT INTO request_keys (scope, key, fingerprint, case_number, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(r.scope.as_str())
            .bind(r.key.as_str())
            .bind(r.fingerprint.as_str())
            .bind(number)
            .bind(ms(tr.at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Case { number: CaseNumber(number), version: 1, ..c.clone() })
    }

    async fn case(&self, number: CaseNumber) -> Result<Option<Case>, StoreError> {
        let row = sql::<D>(format!("SELECT {CASE_COLUMNS} FROM cases WHERE number = ?"))
            .bind(number.0)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rows::case).transpose()
    }

    async fn cases(&self, status: Option<Status>, limit: u32) -> Result<Vec<Case>, StoreError> {
        let rows = sql::<D>(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1) ORDER BY number DESC LIMIT ?2"
        ))
        .bind(status.map(Status::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::case).collect()
    }

    async fn timeline(&self, number: CaseNumber) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sql::<D>("SELECT at, kind, actor, channel, text FROM events WHERE case_number = ? ORDER BY id")
            .bind(number.0)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::event).collect()
    }

    async fn pages_of(&self, number: CaseNumber) -> Result<Vec<PageRecord>, StoreError> {
        let rows = sql::<D>(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE case_number = ? ORDER BY id"))
            .bind(number.0)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::page).collect()
    }

    async fn last_step_paging(&self, number: CaseNumber, person: &PersonId) -> Result<Option<Position>, StoreError> {
        let row = sql::<D>(
            "SELECT round, step FROM pages WHERE case_number = ? AND person = ? AND kind = 'page' AND round IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(number.0)
        .bind(person.as_str())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| Ok(Position { round: r.small("round")?, step: r.small("step")? })).transpose()
    }

    async fn commit(&self, tr: &Transition, version: i64, consume: Option<(i64, &str)>) -> Result<Case, StoreError> {
        let mut tx = self.begin_write().await?;
        let case = Self::apply(&mut tx, tr, version, consume).await?;
        tx.commit().await?;
        Ok(case)
    }

    async fn commit_fired(
        &self,
        fired: &[(Transition, i64, i64)],
        owner: &str,
    ) -> Result<Vec<Result<Case, StoreError>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut out: Vec<Option<Result<Case, StoreError>>> = fired.iter().map(|_| None).collect();
        // Case rows are taken in number order, so two instances firing
        // batches that share cases queue instead of deadlocking.
        let mut order: Vec<usize> = (0..fired.len()).collect();
        order.sort_by_key(|&i| fired[i].0.case.number.0);
        for i in order {
            let (tr, version, timer) = &fired[i];
            // A savepoint per timer: one that lost its race is undone alone.
            sql::<D>("SAVEPOINT fire").execute(&mut *tx).await?;
            out[i] = Some(match Self::apply(&mut tx, tr, *version, Some((*timer, owner))).await {
                Ok(case) => {
                    sql::<D>("RELEASE fire").execute(&mut *tx).await?;
                    Ok(case)
                }
                Err(e @ (StoreError::Conflict | StoreError::LostLease)) => {
                    sql::<D>("ROLLBACK TO fire").execute(&mut *tx).await?;
                    sql::<D>("RELEASE fire").execute(&mut *tx).await?;
                    Err(e)
                }
                Err(e) => return Err(e),
            });
        }
        tx.commit().await?;
        Ok(out.into_iter().flatten().collect())
    }

    async fn claim_timers(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<Timer>, StoreError> {
        let claim = format!(
            "UPDATE timers SET owner = ?1, lease_until = ?2
             WHERE id IN (SELECT id FROM timers WHERE due_at <= ?3 AND (owner IS NULL OR lease_until <= ?3)
                          ORDER BY due_at, id LIMIT ?4{})
             RETURNING id, case_number, kind, due_at, round, step",
            D::SKIP_LOCKED
        );
        let rows = self.claim(claim, owner, now, lease, limit).await?;
        let mut timers = rows.iter().map(rows::timer).collect::<Result<Vec<_>, _>>()?;
        timers.sort_by_key(|t| (t.due, t.id));
        Ok(timers)
    }

    async fn drop_timer(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        sql::<D>("DELETE FROM timers WHERE id = ? AND owner = ?").bind(id).bind(owner).execute(&self.writer).await?;
        Ok(())
    }

    async fn release_timers(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sql::<D>("UPDATE timers SET owner = NULL, lease_until = NULL WHERE owner = ?")
            .bind(owner)
            .execute(&self.writer)
            .await?;
        Ok(done.rows())
    }

    async fn next_timer_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // Two index look-ups, not a scan: an unleased timer is claimable at
        // its due time; a leased one (already due) when its lease runs out.
        let row = sql::<D>(
            "SELECT MIN(at) AS at FROM (
                 SELECT (SELECT due_at FROM timers WHERE owner IS NULL ORDER BY due_at LIMIT 1) AS at
                 UNION ALL SELECT (SELECT MIN(lease_until) FROM timers WHERE owner IS NOT NULL)) AS next",
        )
        .fetch_one(&self.reader)
        .await?;
        row.opt_instant("at")
    }

    async fn claim_pages(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        // SET reads the row as it was: a page still `sending` is one whose
        // earlier lease ran out mid-send, hence in doubt.
        let claim = format!(
            "UPDATE pages SET status = 'sending', owner = ?1, lease_until = ?2, attempts = attempts + 1, updated_at = ?3,
                 in_doubt = (status = 'sending'), prev_claimed_at = updated_at
             WHERE id IN (SELECT id FROM pages
                          WHERE (status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?3))
                             OR (status = 'sending' AND lease_until <= ?3)
                          ORDER BY id LIMIT ?4{})
             RETURNING {PAGE_COLUMNS}",
            D::SKIP_LOCKED
        );
        let rows = self.claim(claim, owner, now, lease, limit).await?;
        let mut pages = rows.iter().map(rows::page).collect::<Result<Vec<_>, _>>()?;
        pages.sort_by_key(|p| p.id);
        Ok(pages)
    }

    async fn finish_pages(
        &self,
        owner: &str,
        outcomes: &[(i64, Delivery)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let settle = format!(
            "UPDATE pages SET status = ?, provider_id = COALESCE(?, provider_id), error = ?, next_attempt_at = ?,
                 owner = NULL, lease_until = NULL, updated_at = ?, attempts = attempts - ?
             WHERE id = ? AND owner = ? RETURNING {PAGE_FACT_COLUMNS}"
        );
        let mut tx = self.begin_write().await?;
        let mut recorded = 0;
        for (id, outcome) in outcomes {
            let s = outcome.settlement();
            let row = sql::<D>(settle.clone())
                .bind(s.status.as_str())
                .bind(s.provider_id)
                .bind(s.error)
                .bind(s.retry_at.map(ms))
                .bind(ms(now))
                .bind(i64::from(!s.counts))
                .bind(*id)
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await?;
            // Another worker took the page over after our lease ran out.
            let Some(row) = row else { continue };
            recorded += 1;
            let after = delivery::after_attempt(outcome, &rows::page_facts(&row)?, now);
            Self::carry_out(&mut tx, &after, now).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn cases_paging(&self, person: &PersonId) -> Result<Vec<CaseNumber>, StoreError> {
        let rows = sql::<D>(
            "SELECT DISTINCT c.number FROM cases c JOIN pages p ON p.case_number = c.number
             WHERE c.status = 'open' AND c.esc_running AND p.person = ? AND p.kind = 'page'
               AND p.round = c.esc_round AND p.step = c.esc_step
             ORDER BY c.number",
        )
        .bind(person.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|r| Ok(CaseNumber(r.int("number")?))).collect()
    }

    async fn cases_assigned(&self, person: &PersonId) -> Result<Vec<Case>, StoreError> {
        let rows = sql::<D>(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE assignee = ? AND status IN ('open', 'acknowledged', 'waiting') ORDER BY number"
        ))
        .bind(person.as_str())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::case).collect()
    }

    async fn page(&self, id: i64) -> Result<Option<PageRecord>, StoreError> {
        let row = sql::<D>(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rows::page).transpose()
    }

    async fn queue_pages(
        &self,
        case: Option<CaseNumber>,
        pages: &[NewPage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        Self::insert_pages(&mut tx, case, pages, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_sms_opt_out(&self, person: &PersonId, out: bool, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = if out {
            sql::<D>("INSERT INTO sms_opt_outs (person, since) VALUES (?, ?) ON CONFLICT (person) DO NOTHING")
                .bind(person.as_str())
                .bind(ms(now))
                .execute(&self.writer)
                .await?
        } else {
            sql::<D>("DELETE FROM sms_opt_outs WHERE person = ?").bind(person.as_str()).execute(&self.writer).await?
        };
        Ok(done.rows() > 0)
    }

    async fn sms_opt_outs(&self) -> Result<BTreeSet<PersonId>, StoreError> {
        let rows = sql::<D>("SELECT person FROM sms_opt_outs").fetch_all(&self.reader).await?;
        rows.iter().map(|r| r.parsed("person")).collect()
    }

    async fn phone_errors(&self, person: &PersonId, ok: bool, now: DateTime<Utc>) -> Result<i64, StoreError> {
        if ok {
            sql::<D>("DELETE FROM phone_errors WHERE person = ?").bind(person.as_str()).execute(&self.writer).await?;
            return Ok(0);
        }
        sql::<D>(
            "INSERT INTO phone_errors (person, errors, updated_at) VALUES (?, 1, ?)
             ON CONFLICT (person) DO UPDATE SET errors = phone_errors.errors + 1, updated_at = excluded.updated_at
             RETURNING errors",
        )
        .bind(person.as_str())
        .bind(ms(now))
        .fetch_one(&self.writer)
        .await?
        .int("errors")
    }

    async fn pages_by_provider_id(&self, provider_id: &str) -> Result<Vec<PageRecord>, StoreError> {
        let rows = sql::<D>(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE provider_id = ? ORDER BY id"))
            .bind(provider_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::page).collect()
    }

    async fn last_sent(&self, person: &PersonId, channel: ChannelKind) -> Result<Option<DateTime<Utc>>, StoreError> {
        sql::<D>(
            "SELECT MAX(updated_at) AS at FROM pages WHERE person = ? AND channel = ? AND status IN ('sent', 'delivered')",
        )
        .bind(person.as_str())
        .bind(channel.as_str())
        .fetch_one(&self.reader)
        .await?
        .opt_instant("at")
    }

    async fn report_delivery(
        &self,
        id: i64,
        status: PageStatus,
        error: Option<&str>,
        fallback: Option<&NewPage>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let from = PageStatus::REPORTABLE;
        let mut q = sql::<D>(format!(
            "UPDATE pages SET status = ?, error = COALESCE(?, error), updated_at = ?
             WHERE id = ? AND status {} RETURNING {PAGE_FACT_COLUMNS}",
            one_of(from.len())
        ))
        .bind(status.as_str())
        .bind(error)
        .bind(ms(now))
        .bind(id);
        for s in from {
            q = q.bind(s.as_str());
        }
        let mut tx = self.begin_write().await?;
        let Some(row) = q.fetch_optional(&mut *tx).await? else { return Ok(false) };
        let after = delivery::after_report(status, error, fallback, &rows::page_facts(&row)?, now);
        Self::carry_out(&mut tx, &after, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_override(&self, o: &OverrideRecord) -> Result<OverrideRecord, StoreError> {
        let id = sql::<D>(
            "INSERT INTO overrides (schedule, person, starts_at, ends_at, reason, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(o.schedule.as_str())
        .bind(o.person.as_str())
        .bind(ms(o.start))
        .bind(ms(o.end))
        .bind(o.reason.as_str())
        .bind(o.created_by.as_str())
        .bind(ms(o.created_at))
        .fetch_one(&self.writer)
        .await?
        .int("id")?;
        Ok(OverrideRecord { id, ..o.clone() })
    }

    async fn overrides(&self, after: DateTime<Utc>) -> Result<Vec<OverrideRecord>, StoreError> {
        let rows = sql::<D>(
            "SELECT id, schedule, person, starts_at, ends_at, reason, created_by, created_at FROM overrides WHERE ends_at > ? ORDER BY id",
        )
        .bind(ms(after))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::override_record).collect()
    }

    async fn delete_override(&self, id: i64) -> Result<bool, StoreError> {
        let done = sql::<D>("DELETE FROM overrides WHERE id = ?").bind(id).execute(&self.writer).await?;
        Ok(done.rows() > 0)
    }

    async fn receive_mail(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        sql::<D>(
            "INSERT INTO inbox (received_at, source, envelope_from, envelope_to, raw, status) VALUES (?, ?, ?, ?, ?, 'pending') RETURNING id",
        )
        .bind(ms(now))
        .bind(source)
        .bind(envelope.from.as_deref())
        .bind(rows::json(&envelope.to)?.as_str())
        .bind(raw)
        .fetch_one(&self.writer)
        .await?
        .int("id")
    }

    async fn pending_mail(&self, limit: u32) -> Result<Vec<i64>, StoreError> {
        let rows = sql::<D>("SELECT id FROM inbox WHERE status = 'pending' ORDER BY id LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(|r| r.int("id")).collect()
    }

    async fn inbox(&self, id: i64) -> Result<Option<InboxRecord>, StoreError> {
        let row = sql::<D>(
            "SELECT id, received_at, source, envelope_from, envelope_to, raw, status, case_number, note FROM inbox WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(rows::inbox).transpose()
    }

    async fn settle_mail(
        &self,
        id: i64,
        status: InboxStatus,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sql::<D>("UPDATE inbox SET status = ?, note = ?, filed_at = ? WHERE id = ? AND status = 'pending'")
            .bind(status.as_str())
            .bind(note)
            .bind(ms(now))
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(done.rows() > 0)
    }

    async fn case_by_message_id(&self, ids: &[String]) -> Result<Option<CaseNumber>, StoreError> {
        for id in ids {
            let found = sql::<D>("SELECT case_number FROM message_ids WHERE message_id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.reader)
                .await?;
            if let Some(row) = found {
                return Ok(Some(CaseNumber(row.int("case_number")?)));
            }
        }
        Ok(None)
    }

    async fn received_before(&self, message_id: &str) -> Result<bool, StoreError> {
        let n = sql::<D>("SELECT COUNT(*) AS n FROM message_ids WHERE message_id = ? AND direction = 'in'")
            .bind(message_id)
            .fetch_one(&self.reader)
            .await?
            .int("n")?;
        Ok(n > 0)
    }

    async fn receipts_since(&self, address: &str, since: DateTime<Utc>) -> Result<i64, StoreError> {
        sql::<D>("SELECT COUNT(*) AS n FROM pages WHERE kind = 'receipt' AND address = ? AND created_at > ?")
            .bind(address)
            .bind(ms(since))
            .fetch_one(&self.reader)
            .await?
            .int("n")
    }

    async fn setting(&self, name: &str, default: &str) -> Result<String, StoreError> {
        // Instances starting together race here; the first insert wins and
        // everyone reads the winner.
        sql::<D>("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(default)
            .execute(&self.writer)
            .await?;
        sql::<D>("SELECT value FROM settings WHERE name = ?").bind(name).fetch_one(&self.writer).await?.text("value")
    }

    async fn digest_data(&self, since: DateTime<Utc>) -> Result<DigestData, StoreError> {
        let by_status = sql::<D>("SELECT status, COUNT(*) AS n FROM cases GROUP BY status ORDER BY status")
            .fetch_all(&self.reader)
            .await?;
        let breaches =
            sql::<D>("SELECT case_number, text FROM events WHERE kind = 'breach' AND at >= ? ORDER BY id LIMIT 20")
                .bind(ms(since))
                .fetch_all(&self.reader)
                .await?;
        let least = D::LEAST;
        let due = sql::<D>(format!(
            "SELECT number, priority, subject, next FROM (
                 SELECT number, priority, subject,
                        CASE WHEN status = 'open' THEN {least}(COALESCE(respond_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                             ELSE {least}(COALESCE(update_due, {NEVER}), COALESCE(resolve_due, {NEVER})) END AS next
                 FROM cases WHERE status IN ('open', 'acknowledged', 'waiting')) AS d
             WHERE next < {NEVER} ORDER BY next LIMIT 10"
        ))
        .fetch_all(&self.reader)
        .await?;
        Ok(DigestData {
            by_status: by_status
                .iter()
                .map(|r| Ok((r.text("status")?, r.int("n")?)))
                .collect::<Result<_, StoreError>>()?,
            breaches: breaches
                .iter()
                .map(|r| Ok((CaseNumber(r.int("case_number")?), r.text("text")?)))
                .collect::<Result<_, StoreError>>()?,
            due: due
                .iter()
                .map(|r| {
                    Ok((CaseNumber(r.int("number")?), r.text("priority")?, r.text("subject")?, r.instant("next")?))
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }

    async fn queue_digest(
        &self,
        person: &PersonId,
        day: &str,
        page: &NewPage,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // A second instance's insert waits for the first to commit, then
        // finds the row: one digest per manager and day.
        let first = sql::<D>("INSERT INTO digests (person, day) VALUES (?, ?) ON CONFLICT (person, day) DO NOTHING")
            .bind(person.as_str())
            .bind(day)
            .execute(&mut *tx)
            .await?;
        if first.rows() == 0 {
            return Ok(false);
        }
        Self::insert_pages(&mut tx, None, std::slice::from_ref(page), now).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_token(&self, info: &TokenInfo, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let result = sql::<D>(
            "INSERT INTO tokens (name, hash, role, person, schedule, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(info.name.as_str())
        .bind(hash)
        .bind(info.role.as_str())
        .bind(info.person.as_ref().map(PersonId::as_str))
        .bind(info.schedule.as_deref())
        .bind(info.expires_at.map(ms))
        .bind(ms(now))
            .execute(&self.writer)
            .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Duplicate(format!("a token named {:?}", info.name)))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sql::<D>(format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.hash = ?"))
            .bind(hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rows::token).transpose()
    }

    async fn counts(&self, now: DateTime<Utc>) -> Result<Counts, StoreError> {
        let cases = sql::<D>("SELECT status, COUNT(*) AS n FROM cases GROUP BY status").fetch_all(&self.reader).await?;
        let pages = sql::<D>("SELECT channel, status, COUNT(*) AS n FROM pages GROUP BY channel, status")
            .fetch_all(&self.reader)
            .await?;
        let timers = sql::<D>("SELECT COUNT(*) AS pending, COUNT(*) FILTER (WHERE due_at <= ?) AS due FROM timers")
            .bind(ms(now))
            .fetch_one(&self.reader)
            .await?;
        Ok(Counts {
            cases_by_status: cases
                .iter()
                .map(|r| Ok((r.text("status")?, r.int("n")?)))
                .collect::<Result<_, StoreError>>()?,
            pages: pages
                .iter()
                .map(|r| Ok((r.text("channel")?, r.text("status")?, r.int("n")?)))
                .collect::<Result<_, StoreError>>()?,
            timers_pending: timers.int("pending")?,
            timers_due: timers.int("due")?,
        })
    }

    async fn active_cases(&self, limit: u32) -> Result<Vec<Case>, StoreError> {
        let least = D::LEAST;
        let rows = sql::<D>(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE status IN ('open', 'acknowledged', 'waiting')
             ORDER BY CASE status
                 WHEN 'open' THEN {least}(COALESCE(respond_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                 WHEN 'acknowledged' THEN {least}(COALESCE(update_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                 ELSE {NEVER} END, number
             LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::case).collect()
    }

    async fn troubled_pages(
        &self,
        since: DateTime<Utc>,
        stuck_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let condition = "(status IN ('failed', 'undelivered') AND updated_at >= ?)
                         OR (status IN ('queued', 'sending') AND created_at < ?)";
        self.newest_pages(condition, (since, stuck_before), limit).await
    }

    async fn unconfirmed_sms(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let condition = "channel = 'sms' AND status = 'sent' AND updated_at >= ? AND updated_at < ?";
        self.newest_pages(condition, (from, to), limit).await
    }

    async fn report_data(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ReportData, StoreError> {
        // One snapshot, so the three lists agree with each other.
        let mut tx = self.reader.begin_with(D::BEGIN_SNAPSHOT).await?;
        let cases = sql::<D>(
            "SELECT number, subject, customer, priority, plan, status, assignee, opened_at, acked_at, resolved_at,
                    respond_from, pauses,
                    (SELECT MIN(e.at) FROM events e
                      WHERE e.case_number = cases.number AND e.kind = 'reply'
                        AND e.at >= COALESCE(cases.respond_from, cases.opened_at)) AS first_reply_at
             FROM cases WHERE opened_at >= ? AND opened_at < ? ORDER BY opened_at, number",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        let breaches = sql::<D>(
            "SELECT e.case_number, e.at, e.kind, e.actor, e.channel, e.text FROM cases c
             JOIN events e ON e.case_number = c.number
             WHERE c.opened_at >= ? AND c.opened_at < ? AND e.kind = 'breach' ORDER BY e.at, e.id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        // The range on created_at is what narrows the search: status and
        // kind are filters, not indexes to walk.
        let u = D::UNINDEXED;
        let pages = sql::<D>(format!(
            "SELECT person, channel, created_at FROM pages
             WHERE created_at >= ? AND created_at < ? AND person IS NOT NULL
               AND {u}status IN ('sent', 'delivered') AND {u}kind IN ('page', 'reminder', 'warning', 'breach')
             ORDER BY created_at, id"
        ))
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ReportData {
            cases: cases.iter().map(rows::report_case).collect::<Result<_, _>>()?,
            breaches: breaches
                .iter()
                .map(|r| Ok((CaseNumber(r.int("case_number")?), rows::event(r)?)))
                .collect::<Result<_, StoreError>>()?,
            pages: pages.iter().map(rows::report_page).collect::<Result<_, _>>()?,
        })
    }

    async fn create_session(
        &self,
        hash: &str,
        token_hash: &str,
        csrf: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sql::<D>("INSERT INTO sessions (hash, token_hash, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(hash)
            .bind(token_hash)
            .bind(csrf)
            .bind(ms(now))
            .bind(ms(expires_at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn session(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>, StoreError> {
        let row = sql::<D>(format!(
            "SELECT {TOKEN_COLUMNS}, s.csrf, s.expires_at AS session_expires_at FROM sessions s
             JOIN tokens t ON t.hash = s.token_hash WHERE s.hash = ? AND s.expires_at > ?"
        ))
        .bind(hash)
        .bind(ms(now))
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            token: rows::token(&r)?,
            csrf: r.text("csrf")?,
            expires_at: r.instant("session_expires_at")?,
        }))
    }

    async fn delete_session(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sql::<D>("DELETE FROM sessions WHERE hash = ? OR expires_at <= ?")
            .bind(hash)
            .bind(ms(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // --- tokens and audit (issue 13) ---

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sql::<D>(format!("SELECT {TOKEN_COLUMNS} FROM tokens t ORDER BY t.created_at, t.id"))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::token).collect()
    }

    async fn revoke_token(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let found = sql::<D>("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE name = ?")
            .bind(ms(now))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if found.rows() == 0 {
            return Ok(false);
        }
        sql::<D>("DELETE FROM sessions WHERE token_hash IN (SELECT hash FROM tokens WHERE name = ?)")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sql::<D>("INSERT INTO audit (at, actor, action, subject, detail, client) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(ms(entry.at))
            .bind(entry.actor.as_str())
            .bind(entry.action.as_str())
            .bind(entry.subject.as_str())
            .bind(entry.detail.as_str())
            .bind(entry.client.as_deref())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn audit(&self, from: DateTime<Utc>, to: DateTime<Utc>, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sql::<D>(
            "SELECT at, actor, action, subject, detail, client FROM audit WHERE at >= ? AND at <= ? ORDER BY at, id LIMIT ?",
        )
        .bind(ms(from))
        .bind(ms(to))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::audit).collect()
    }

    async fn audit_times(
        &self,
        action: AuditAction,
        client: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        // Read from the writer: a limit must see the failure just recorded,
        // which a replica or a lagging reader might not yet.
        let rows = sql::<D>("SELECT at FROM audit WHERE action = ? AND client = ? AND at > ? ORDER BY at, id")
            .bind(action.as_str())
            .bind(client)
            .bind(ms(since))
            .fetch_all(&self.writer)
            .await?;
        rows.iter().map(|r| r.instant("at")).collect()
    }

    // --- mail verification (issue 13) ---
    async fn read_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sql::<D>("SELECT value FROM settings WHERE name = ?").bind(name).fetch_optional(&self.writer).await?;
        row.map(|r| r.text("value")).transpose()
    }

    async fn delete_setting(&self, name: &str) -> Result<(), StoreError> {
        sql::<D>("DELETE FROM settings WHERE name = ?").bind(name).execute(&self.writer).await?;
        Ok(())
    }

    // --- Twilio replays and new-case limits (issue 13) ---
    async fn claim_twilio(
        &self,
        sid: &str,
        event: &str,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sql::<D>("DELETE FROM twilio_seen WHERE seen_at < ?").bind(ms(forget_before)).execute(&mut *tx).await?;
        // ON CONFLICT rather than catching the violation: an error would
        // abort the whole PostgreSQL transaction. A second instance's
        // insert of the same key waits for the first to commit, then
        // inserts nothing.
        let claimed = sql::<D>(
            "INSERT INTO twilio_seen (sid, event, seen_at) VALUES (?, ?, ?) ON CONFLICT (sid, event) DO NOTHING",
        )
        .bind(sid)
        .bind(event)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimed.rows() > 0)
    }

    async fn release_twilio(&self, sid: &str, event: &str) -> Result<(), StoreError> {
        sql::<D>("DELETE FROM twilio_seen WHERE sid = ? AND event = ?")
            .bind(sid)
            .bind(event)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn mail_openings_since(
        &self,
        sender: &str,
        domain: &str,
        since: DateTime<Utc>,
    ) -> Result<Recent, StoreError> {
        // Two index range scans (by sender, by domain), not one scan of
        // the domain's rows filtered by sender.
        let row = sql::<D>(
            "SELECT (SELECT COUNT(*) FROM mail_openings WHERE sender = ? AND opened_at > ?) AS sender,
                    (SELECT COUNT(*) FROM mail_openings WHERE domain = ? AND opened_at > ?) AS domain",
        )
        .bind(sender)
        .bind(ms(since))
        .bind(domain)
        .bind(ms(since))
        .fetch_one(&self.reader)
        .await?;
        Ok(Recent { sender: row.int("sender")?, domain: row.int("domain")? })
    }

    async fn open_case_of(&self, requester: &str) -> Result<Option<CaseNumber>, StoreError> {
        let row = sql::<D>(
            "SELECT number FROM cases WHERE requester = ? AND status NOT IN (?, ?) ORDER BY number DESC LIMIT 1",
        )
        .bind(requester)
        .bind(Status::Resolved.as_str())
        .bind(Status::Closed.as_str())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| r.int("number").map(CaseNumber)).transpose()
    }

    async fn inbox_in(&self, status: InboxStatus, limit: u32) -> Result<Vec<InboxRecord>, StoreError> {
        let rows = sql::<D>(
            "SELECT id, received_at, source, envelope_from, envelope_to, raw, status, case_number, note FROM inbox
             WHERE status = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(status.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::inbox).collect()
    }

    async fn inbox_count(&self, status: InboxStatus) -> Result<i64, StoreError> {
        sql::<D>("SELECT COUNT(*) AS n FROM inbox WHERE status = ?")
            .bind(status.as_str())
            .fetch_one(&self.reader)
            .await?
            .int("n")
    }

    // --- issue 16: recovery ---
    async fn take_over_leases(&self, owner: &str, now: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
        let timers =
            sql::<D>("UPDATE timers SET lease_until = ? WHERE owner IS NOT NULL AND owner <> ? AND lease_until > ?")
                .bind(ms(now))
                .bind(owner)
                .bind(ms(now))
                .execute(&self.writer)
                .await?;
        let pages = sql::<D>(
            "UPDATE pages SET lease_until = ? WHERE status = 'sending' AND owner IS NOT NULL AND owner <> ? AND lease_until > ?",
        )
        .bind(ms(now))
        .bind(owner)
        .bind(ms(now))
        .execute(&self.writer)
        .await?;
        Ok((timers.rows(), pages.rows()))
    }

    // --- issue 14: replies ---
    async fn customer_messages(&self, number: CaseNumber) -> Result<Vec<String>, StoreError> {
        let rows = sql::<D>(
            "SELECT message_id FROM inbox WHERE case_number = ? AND status = ? AND message_id IS NOT NULL ORDER BY id",
        )
        .bind(number.0)
        .bind(InboxStatus::Filed.as_str())
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(|r| r.text("message_id")).collect()
    }

    async fn attachments_of(&self, number: CaseNumber) -> Result<Vec<AttachmentRecord>, StoreError> {
        let rows = sql::<D>(
            "SELECT id, case_number, inbox_id, part, name, content_type, size, created_at FROM attachments
             WHERE case_number = ? ORDER BY id",
        )
        .bind(number.0)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::attachment).collect()
    }

    async fn attachment(&self, number: CaseNumber, id: i64) -> Result<Option<AttachmentRecord>, StoreError> {
        let row = sql::<D>(
            "SELECT id, case_number, inbox_id, part, name, content_type, size, created_at FROM attachments
             WHERE case_number = ? AND id = ?",
        )
        .bind(number.0)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(rows::attachment).transpose()
    }

    async fn case_messages(&self, number: CaseNumber) -> Result<Vec<MessageRecord>, StoreError> {
        let rows = sql::<D>("SELECT id, received_at, status FROM inbox WHERE case_number = ? ORDER BY id")
            .bind(number.0)
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MessageRecord {
                    id: r.int("id")?,
                    received_at: r.instant("received_at")?,
                    status: r.parsed("status")?,
                })
            })
            .collect()
    }

    // --- issue 15: finding cases ---
    async fn find_cases(&self, f: &CaseQuery) -> Result<Vec<Case>, StoreError> {
        let mut q = QueryBuilder::<D::DB>::new(format!("SELECT {CASE_COLUMNS} FROM cases WHERE 1 = 1"));
        let text = |v: Option<&str>| Value::Text(v.map(|s| Cow::Owned(s.to_owned())));
        let exact = [
            ("status", f.status.map(Status::as_str)),
            ("customer", f.customer.as_deref()),
            ("assignee", f.assignee.as_ref().map(PersonId::as_str)),
            ("requester", f.requester.as_deref()),
            ("priority", f.priority.as_ref().map(|p| p.as_str())),
        ];
        for (column, value) in exact {
            if value.is_some() {
                q.push(" AND ").push(column).push(" = ");
                Self::push_value(&mut q, text(value));
            }
        }
        if let Some(words) = &f.text {
            // LIKE with the wildcards in the words escaped: a substring,
            // lower-cased on both sides (both databases lower ASCII alike).
            let escaped = words.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            q.push(" AND (lower(subject) LIKE ");
            Self::push_value(&mut q, text(Some(&pattern)));
            q.push(" ESCAPE '\\' OR lower(body) LIKE ");
            Self::push_value(&mut q, text(Some(&pattern)));
            q.push(" ESCAPE '\\')");
        }
        if let Some(before) = f.before {
            q.push(" AND number < ").push_bind(before.0);
        }
        if let Some(me) = &f.seen_by {
            q.push(" AND (assignee = ");
            Self::push_value(&mut q, text(Some(me.as_str())));
            q.push(" OR EXISTS (SELECT 1 FROM pages WHERE pages.case_number = cases.number AND pages.person = ");
            Self::push_value(&mut q, text(Some(me.as_str())));
            q.push("))");
        }
        q.push(" ORDER BY number DESC LIMIT ").push_bind(i64::from(f.limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(rows::case).collect()
    }

    // --- issue 15: calendar feed versions ---
    async fn feed_versions(
        &self,
        shifts: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(shifts.len());
        for (uid, fingerprint) in shifts {
            sql::<D>(
                "INSERT INTO feed_shifts (uid, fingerprint, sequence, stamp) VALUES (?, ?, 0, ?) ON CONFLICT (uid) DO NOTHING",
            )
            .bind(uid.as_str())
            .bind(fingerprint.as_str())
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            sql::<D>(
                "UPDATE feed_shifts SET sequence = sequence + 1, fingerprint = ?, stamp = ? WHERE uid = ? AND fingerprint <> ?",
            )
            .bind(fingerprint.as_str())
            .bind(ms(now))
            .bind(uid.as_str())
            .bind(fingerprint.as_str())
            .execute(&mut *tx)
            .await?;
            let row = sql::<D>("SELECT sequence, stamp FROM feed_shifts WHERE uid = ?")
                .bind(uid.as_str())
                .fetch_one(&mut *tx)
                .await?;
            out.push((row.int("sequence")?, row.instant("stamp")?));
        }
        tx.commit().await?;
        Ok(out)
    }

    // --- issue 18: rehearsing rules ---
    async fn next_page_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sql::<D>(
            "SELECT MIN(at) AS at FROM (
                 SELECT MIN(COALESCE(next_attempt_at, created_at)) AS at FROM pages WHERE status = 'queued'
                 UNION ALL SELECT MIN(lease_until) FROM pages WHERE status = 'sending') AS next",
        )
        .fetch_one(&self.reader)
        .await?;
        row.opt_instant("at")
    }
}
