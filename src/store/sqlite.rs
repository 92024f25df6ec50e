//! The SQLite store: the embedded default, nothing to install.
//!
//! Writes go through a pool of one connection and start with
//! `BEGIN IMMEDIATE`, so a transaction takes the write lock before it reads
//! and never fails half-way on a lock upgrade; reads use a separate pool.
//! WAL lets readers run beside the writer; `synchronous = FULL` makes every
//! commit durable before Tocsin answers 201 or 250.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{
    Counts, Delivery, DigestData, EventRecord, InboxRecord, OverrideRecord, PageRecord, PageStatus, ReportCase,
    ReportData, ReportPage, SessionRecord, Store, StoreError, role,
};
use crate::case::{Case, CaseNumber, Escalation, NewPage, Status, Timer, TimerKind, Transition};
use crate::escalation::Position;
use crate::mail::Envelope;
use crate::people::{ChannelKind, PersonId};
use crate::sla::Deadlines;
use crate::token::TokenInfo;

const CASE_COLUMNS: &str = "number, subject, body, customer, requester, priority, plan, policy, status, assignee, opened_at, acked_at, resolved_at, respond_due, update_due, resolve_due, esc_round, esc_step, esc_running, version, respond_from, update_from, pauses, warned, snoozed_until";
const PAGE_COLUMNS: &str = "id, case_number, person, address, channel, kind, round, step, detail, status, created_at, updated_at, attempts, provider_id, error, in_doubt, prev_claimed_at";

/// SQLite behind the [`Store`] trait.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn instant(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(v).ok_or_else(|| StoreError::Corrupt(format!("instant {v} out of range")))
}

fn opt_instant(v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(instant).transpose()
}

fn corrupt<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn case_from_row(r: &SqliteRow) -> Result<Case, StoreError> {
    let assignee: Option<String> = r.try_get("assignee")?;
    Ok(Case {
        number: CaseNumber(r.try_get("number")?),
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        customer: r.try_get("customer")?,
        requester: r.try_get("requester")?,
        priority: r.try_get::<String, _>("priority")?.parse().map_err(corrupt("priority"))?,
        plan: r.try_get("plan")?,
        policy: r.try_get("policy")?,
        status: r.try_get::<String, _>("status")?.parse().map_err(corrupt("status"))?,
        assignee: assignee.map(|a| a.parse::<PersonId>()).transpose().map_err(corrupt("assignee"))?,
        opened_at: instant(r.try_get("opened_at")?)?,
        acked_at: opt_instant(r.try_get("acked_at")?)?,
        resolved_at: opt_instant(r.try_get("resolved_at")?)?,
        deadlines: Deadlines {
            respond: opt_instant(r.try_get("respond_due")?)?,
            update: opt_instant(r.try_get("update_due")?)?,
            resolve: opt_instant(r.try_get("resolve_due")?)?,
        },
        respond_from: opt_instant(r.try_get("respond_from")?)?.unwrap_or(instant(r.try_get("opened_at")?)?),
        update_from: opt_instant(r.try_get("update_from")?)?,
        pauses: serde_json::from_str(&r.try_get::<String, _>("pauses")?).map_err(corrupt("pauses"))?,
        warned: serde_json::from_str(&r.try_get::<String, _>("warned")?).map_err(corrupt("warned"))?,
        snoozed_until: opt_instant(r.try_get("snoozed_until")?)?,
        escalation: Escalation {
            at: Position { round: r.try_get("esc_round")?, step: r.try_get("esc_step")? },
            running: r.try_get("esc_running")?,
        },
        version: r.try_get("version")?,
    })
}

fn event_from_row(r: &SqliteRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        at: instant(r.try_get("at")?)?,
        kind: r.try_get("kind")?,
        actor: r.try_get("actor")?,
        channel: r.try_get("channel")?,
        text: r.try_get("text")?,
    })
}

fn token_from_row(r: &SqliteRow) -> Result<TokenInfo, StoreError> {
    let person: Option<String> = r.try_get("person")?;
    Ok(TokenInfo {
        name: r.try_get("name")?,
        role: role(&r.try_get::<String, _>("role")?)?,
        person: person.map(|p| p.parse::<PersonId>()).transpose().map_err(StoreError::Corrupt)?,
    })
}

/// A case's next deadline never comes: sorts after every real one.
const NEVER: i64 = 9_000_000_000_000_000_000;

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn override_from_row(r: &SqliteRow) -> Result<OverrideRecord, StoreError> {
    Ok(OverrideRecord {
        id: r.try_get("id")?,
        schedule: r.try_get("schedule")?,
        person: r.try_get::<String, _>("person")?.parse().map_err(StoreError::Corrupt)?,
        start: instant(r.try_get("starts_at")?)?,
        end: instant(r.try_get("ends_at")?)?,
        reason: r.try_get("reason")?,
        created_by: r.try_get("created_by")?,
        created_at: instant(r.try_get("created_at")?)?,
    })
}

fn page_from_row(r: &SqliteRow) -> Result<PageRecord, StoreError> {
    let person: Option<String> = r.try_get("person")?;
    let round: Option<u32> = r.try_get("round")?;
    let step: Option<u32> = r.try_get("step")?;
    let status: String = r.try_get("status")?;
    Ok(PageRecord {
        id: r.try_get("id")?,
        case: r.try_get::<Option<i64>, _>("case_number")?.map(CaseNumber),
        person: person.map(|p| p.parse::<PersonId>()).transpose().map_err(corrupt("page person"))?,
        address: r.try_get("address")?,
        channel: r.try_get::<String, _>("channel")?.parse().map_err(corrupt("page channel"))?,
        kind: r.try_get::<String, _>("kind")?.parse().map_err(corrupt("page kind"))?,
        position: round.zip(step).map(|(round, step)| Position { round, step }),
        detail: r.try_get("detail")?,
        status: PageStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("page status {status:?}")))?,
        created_at: instant(r.try_get("created_at")?)?,
        updated_at: instant(r.try_get("updated_at")?)?,
        attempts: r.try_get("attempts")?,
        provider_id: r.try_get("provider_id")?,
        error: r.try_get("error")?,
        in_doubt: r.try_get("in_doubt")?,
        prev_claimed_at: opt_instant(r.try_get("prev_claimed_at")?)?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies
    /// migrations.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        // Migrate before the readers connect: a read-only connection cannot
        // create the file or its WAL.
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        let store = Self { writer, reader };
        Ok(store)
    }

    /// Queues `pages` of case `number` in one statement.
    async fn insert_pages(
        tx: &mut sqlx::SqliteConnection,
        number: Option<CaseNumber>,
        pages: &[NewPage],
        now: i64,
    ) -> Result<(), StoreError> {
        if pages.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO pages (case_number, person, address, channel, kind, round, step, detail, status, created_at, updated_at) ",
        );
        q.push_values(pages, |mut b, p| {
            b.push_bind(number.map(|n| n.0))
                .push_bind(p.person.as_ref().map(|x| x.as_str().to_owned()))
                .push_bind(p.address.clone())
                .push_bind(p.channel.as_str())
                .push_bind(p.kind.as_str())
                .push_bind(p.position.map(|x| x.round))
                .push_bind(p.position.map(|x| x.step))
                .push_bind(p.detail.clone())
                .push_bind("queued")
                .push_bind(now)
                .push_bind(now);
        });
        q.build().execute(&mut *tx).await?;
        Ok(())
    }

    /// A timeline entry Tocsin itself records about a page.
    async fn page_event(
        tx: &mut sqlx::SqliteConnection,
        case: Option<i64>,
        kind: &str,
        channel: &str,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // A notice has no case, so no timeline to record on.
        let Some(case) = case else { return Ok(()) };
        sqlx::query(
            "INSERT INTO events (case_number, at, kind, actor, channel, text) VALUES (?, ?, ?, 'tocsin', ?, ?)",
        )
        .bind(case)
        .bind(now)
        .bind(kind)
        .bind(channel)
        .bind(text)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// [`Store::commit`]'s work inside a transaction the caller holds.
    async fn apply(
        conn: &mut sqlx::SqliteConnection,
        tr: &Transition,
        version: i64,
        consume: Option<(i64, &str)>,
    ) -> Result<Case, StoreError> {
        let c = &tr.case;
        if let Some((id, owner)) = consume {
            let gone = sqlx::query("DELETE FROM timers WHERE id = ? AND owner = ?")
                .bind(id)
                .bind(owner)
                .execute(&mut *conn)
                .await?;
            if gone.rows_affected() == 0 {
                return Err(StoreError::LostLease);
            }
        }
        let updated = sqlx::query(
            "UPDATE cases SET status = ?, assignee = ?, priority = ?, plan = ?, policy = ?, acked_at = ?, resolved_at = ?,
                 respond_due = ?, update_due = ?, resolve_due = ?, esc_round = ?, esc_step = ?, esc_running = ?,
                 respond_from = ?, update_from = ?, pauses = ?, warned = ?, snoozed_until = ?, version = version + 1
             WHERE number = ? AND version = ?",
        )
        .bind(c.status.as_str())
        .bind(c.assignee.as_ref().map(PersonId::as_str))
        .bind(c.priority.as_str())
        .bind(&c.plan)
        .bind(&c.policy)
        .bind(c.acked_at.map(ms))
        .bind(c.resolved_at.map(ms))
        .bind(c.deadlines.respond.map(ms))
        .bind(c.deadlines.update.map(ms))
        .bind(c.deadlines.resolve.map(ms))
        .bind(c.escalation.at.round)
        .bind(c.escalation.at.step)
        .bind(c.escalation.running)
        .bind(ms(c.respond_from))
        .bind(c.update_from.map(ms))
        .bind(json(&c.pauses)?)
        .bind(json(&c.warned)?)
        .bind(c.snoozed_until.map(ms))
        .bind(c.number.0)
        .bind(version)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict);
        }
        Self::insert_effects(conn, c.number, tr, ms(tr.at), false).await?;
        Ok(Case { version: version + 1, ..c.clone() })
    }

    /// Writes a transition's timers, events, pages and filing. Rows of one
    /// table go in one multi-row statement: a new case has a dozen rows,
    /// and statements, not rows, are what cost. `fresh` skips the timer
    /// deletes a brand-new case cannot need.
    async fn insert_effects(
        tx: &mut sqlx::SqliteConnection,
        number: CaseNumber,
        tr: &Transition,
        now: i64,
        fresh: bool,
    ) -> Result<(), StoreError> {
        if !fresh && !tr.cancel.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM timers WHERE case_number = ");
            q.push_bind(number.0).push(" AND kind IN (");
            let mut kinds = q.separated(", ");
            for kind in &tr.cancel {
                kinds.push_bind(kind.to_string());
            }
            q.push(")").build().execute(&mut *tx).await?;
        }
        if !tr.timers.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO timers (case_number, kind, due_at, round, step) ");
            q.push_values(&tr.timers, |mut b, t| {
                b.push_bind(number.0)
                    .push_bind(t.kind.to_string())
                    .push_bind(ms(t.due))
                    .push_bind(t.position.round)
                    .push_bind(t.position.step);
            });
            q.build().execute(&mut *tx).await?;
        }
        if !tr.events.is_empty() {
            let mut q =
                QueryBuilder::<Sqlite>::new("INSERT INTO events (case_number, at, kind, actor, channel, text) ");
            q.push_values(&tr.events, |mut b, e| {
                b.push_bind(number.0)
                    .push_bind(ms(e.at))
                    .push_bind(e.kind.as_str())
                    .push_bind(e.actor.clone())
                    .push_bind(e.channel.map(|c| c.as_str()))
                    .push_bind(e.text.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        if let Some(filing) = &tr.filing {
            let filed = sqlx::query(
                "UPDATE inbox SET status = ?, note = ?, case_number = ?, message_id = ?, filed_at = ? WHERE id = ? AND status = 'pending'",
            )
            .bind(filing.status)
            .bind(&filing.note)
            .bind(number.0)
            .bind(&filing.message_id)
            .bind(now)
            .bind(filing.inbox_id)
            .execute(&mut *tx)
            .await?;
            if filed.rows_affected() == 0 {
                return Err(StoreError::AlreadyFiled);
            }
            if let Some(id) = &filing.message_id {
                let recorded = sqlx::query(
                    "INSERT INTO message_ids (message_id, case_number, direction, created_at) VALUES (?, ?, 'in', ?)",
                )
                .bind(id)
                .bind(number.0)
                .bind(now)
                .execute(&mut *tx)
                .await;
                match recorded {
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        return Err(StoreError::Duplicate(format!("message {id}")));
                    }
                    other => {
                        other?;
                    }
                }
            }
        }
        Self::insert_pages(tx, Some(number), &tr.pages, now).await?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite").run(&self.writer).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn create_case(&self, tr: &Transition) -> Result<Case, StoreError> {
        let c = &tr.case;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(r) = &tr.request {
            let before: Option<(i64, String)> =
                sqlx::query_as("SELECT case_number, fingerprint FROM request_keys WHERE scope = ? AND key = ?")
                    .bind(&r.scope)
                    .bind(&r.key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((case, fingerprint)) = before {
                return Err(StoreError::Repeated { case: CaseNumber(case), fingerprint });
            }
        }
        let number: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(number), 1000) + 1 FROM cases").fetch_one(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO cases (number, subject, body, customer, requester, priority, plan, policy, status, assignee, opened_at, acked_at, resolved_at, respond_due, update_due, resolve_due, esc_round, esc_step, esc_running, version, respond_from, update_from, pauses, warned)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
        )
        .bind(number)
        .bind(&c.subject)
        .bind(&c.body)
        .bind(&c.customer)
        .bind(&c.requester)
        .bind(c.priority.as_str())
        .bind(&c.plan)
        .bind(&c.policy)
        .bind(c.status.as_str())
        .bind(c.assignee.as_ref().map(PersonId::as_str))
        .bind(ms(c.opened_at))
        .bind(c.acked_at.map(ms))
        .bind(c.resolved_at.map(ms))
        .bind(c.deadlines.respond.map(ms))
        .bind(c.deadlines.update.map(ms))
        .bind(c.deadlines.resolve.map(ms))
        .bind(c.escalation.at.round)
        .bind(c.escalation.at.step)
        .bind(c.escalation.running)
        .bind(ms(c.respond_from))
        .bind(c.update_from.map(ms))
        .bind(json(&c.pauses)?)
        .bind(json(&c.warned)?)
        .execute(&mut *tx)
        .await?;
        Self::insert_effects(&mut tx, CaseNumber(number), tr, ms(tr.at), true).await?;
        if let Some(r) = &tr.request {
            sqlx::query(
                "INSERT INTO request_keys (scope, key, fingerprint, case_number, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&r.scope)
            .bind(&r.key)
            .bind(&r.fingerprint)
            .bind(number)
            .bind(ms(tr.at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Case { number: CaseNumber(number), version: 1, ..c.clone() })
    }

    async fn case(&self, number: CaseNumber) -> Result<Option<Case>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {CASE_COLUMNS} FROM cases WHERE number = ?"));
        let row = sqlx::query(sql).bind(number.0).fetch_optional(&self.reader).await?;
        row.as_ref().map(case_from_row).transpose()
    }

    async fn cases(&self, status: Option<Status>, limit: u32) -> Result<Vec<Case>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE (?1 IS NULL OR status = ?1) ORDER BY number DESC LIMIT ?2"
        ));
        let rows = sqlx::query(sql).bind(status.map(Status::as_str)).bind(limit).fetch_all(&self.reader).await?;
        rows.iter().map(case_from_row).collect()
    }

    async fn timeline(&self, number: CaseNumber) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query("SELECT at, kind, actor, channel, text FROM events WHERE case_number = ? ORDER BY id")
            .bind(number.0)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn pages_of(&self, number: CaseNumber) -> Result<Vec<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE case_number = ? ORDER BY id"));
        let rows = sqlx::query(sql).bind(number.0).fetch_all(&self.reader).await?;
        rows.iter().map(page_from_row).collect()
    }

    async fn last_step_paging(&self, number: CaseNumber, person: &PersonId) -> Result<Option<Position>, StoreError> {
        let row = sqlx::query(
            "SELECT round, step FROM pages WHERE case_number = ? AND person = ? AND kind = 'page' AND round IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(number.0)
        .bind(person.as_str())
        .fetch_optional(&self.reader)
        .await?;
        Ok(match row {
            Some(r) => Some(Position { round: r.try_get("round")?, step: r.try_get("step")? }),
            None => None,
        })
    }

    async fn commit(&self, tr: &Transition, version: i64, consume: Option<(i64, &str)>) -> Result<Case, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let case = Self::apply(&mut tx, tr, version, consume).await?;
        tx.commit().await?;
        Ok(case)
    }

    async fn commit_fired(
        &self,
        fired: &[(Transition, i64, i64)],
        owner: &str,
    ) -> Result<Vec<Result<Case, StoreError>>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut out = Vec::with_capacity(fired.len());
        for (tr, version, timer) in fired {
            // A savepoint per timer: one that lost its race is undone alone.
            sqlx::query("SAVEPOINT fire").execute(&mut *tx).await?;
            match Self::apply(&mut tx, tr, *version, Some((*timer, owner))).await {
                Ok(case) => {
                    sqlx::query("RELEASE fire").execute(&mut *tx).await?;
                    out.push(Ok(case));
                }
                Err(e @ (StoreError::Conflict | StoreError::LostLease)) => {
                    sqlx::query("ROLLBACK TO fire").execute(&mut *tx).await?;
                    sqlx::query("RELEASE fire").execute(&mut *tx).await?;
                    out.push(Err(e));
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn claim_timers(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<Timer>, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "UPDATE timers SET owner = ?1, lease_until = ?2
             WHERE id IN (SELECT id FROM timers WHERE due_at <= ?3 AND (owner IS NULL OR lease_until <= ?3) ORDER BY due_at, id LIMIT ?4)
             RETURNING id, case_number, kind, due_at, round, step",
        )
        .bind(owner)
        .bind(ms(now + lease))
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut timers = rows
            .iter()
            .map(|r| {
                Ok(Timer {
                    id: r.try_get("id")?,
                    case: CaseNumber(r.try_get("case_number")?),
                    kind: r.try_get::<String, _>("kind")?.parse::<TimerKind>().map_err(StoreError::Corrupt)?,
                    due: instant(r.try_get("due_at")?)?,
                    position: Position { round: r.try_get("round")?, step: r.try_get("step")? },
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        timers.sort_by_key(|t| (t.due, t.id));
        Ok(timers)
    }

    async fn release_timers(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE timers SET owner = NULL, lease_until = NULL WHERE owner = ?")
            .bind(owner)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn drop_timer(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM timers WHERE id = ? AND owner = ?").bind(id).bind(owner).execute(&self.writer).await?;
        Ok(())
    }

    async fn next_timer_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // Two index look-ups, not a scan: an unleased timer is claimable at
        // its due time; a leased one (already due) when its lease runs out.
        let free: Option<i64> =
            sqlx::query_scalar("SELECT due_at FROM timers WHERE owner IS NULL ORDER BY due_at LIMIT 1")
                .fetch_optional(&self.reader)
                .await?;
        let leased: Option<i64> = sqlx::query_scalar("SELECT MIN(lease_until) FROM timers WHERE owner IS NOT NULL")
            .fetch_one(&self.reader)
            .await?;
        opt_instant(free.into_iter().chain(leased).min())
    }

    async fn claim_pages(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease: TimeDelta,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE pages SET status = 'sending', owner = ?1, lease_until = ?2, attempts = attempts + 1, updated_at = ?3,
                 in_doubt = (status = 'sending'), prev_claimed_at = updated_at
             WHERE id IN (SELECT id FROM pages
                          WHERE (status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= ?3))
                             OR (status = 'sending' AND lease_until <= ?3)
                          ORDER BY id LIMIT ?4)
             RETURNING {PAGE_COLUMNS}"
        ));
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let rows =
            sqlx::query(sql).bind(owner).bind(ms(now + lease)).bind(ms(now)).bind(limit).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut pages = rows.iter().map(page_from_row).collect::<Result<Vec<_>, _>>()?;
        pages.sort_by_key(|p| p.id);
        Ok(pages)
    }

    async fn finish_pages(
        &self,
        owner: &str,
        outcomes: &[(i64, Delivery)],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let now = ms(now);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut recorded = 0;
        for (id, outcome) in outcomes {
            let (status, provider_id, error, next) = match outcome {
                Delivery::Sent { provider_id, .. } => (PageStatus::Sent, provider_id.as_deref(), None, None),
                Delivery::Retry { at, error } => (PageStatus::Queued, None, Some(error.as_str()), Some(ms(*at))),
                Delivery::Deferred { at } => (PageStatus::Queued, None, None, Some(ms(*at))),
                Delivery::Failed { error, .. } => (PageStatus::Failed, None, Some(error.as_str()), None),
                Delivery::Cancelled { reason } => (PageStatus::Cancelled, None, Some(reason.as_str()), None),
            };
            let row = sqlx::query(
                "UPDATE pages SET status = ?, provider_id = COALESCE(?, provider_id), error = ?, next_attempt_at = ?,
                     owner = NULL, lease_until = NULL, updated_at = ?, attempts = attempts - ?
                 WHERE id = ? AND owner = ? RETURNING case_number, person, address, channel, kind",
            )
            .bind(status.as_str())
            .bind(provider_id)
            .bind(error)
            .bind(next)
            .bind(now)
            .bind(i64::from(matches!(outcome, Delivery::Deferred { .. })))
            .bind(id)
            .bind(owner)
            .fetch_optional(&mut *tx)
            .await?;
            // Another worker took the page over after our lease ran out.
            let Some(row) = row else { continue };
            recorded += 1;
            let case: Option<i64> = row.try_get("case_number")?;
            let channel: String = row.try_get("channel")?;
            if matches!(outcome, Delivery::Sent { .. }) && channel == "sms" {
                // A page reached the phone: error replies may start again.
                let who: Option<String> = row.try_get("person")?;
                if let Some(who) = who {
                    sqlx::query("DELETE FROM phone_errors WHERE person = ?").bind(who).execute(&mut *tx).await?;
                }
            }
            match outcome {
                Delivery::Sent { message_id: Some(message_id), .. } => {
                    sqlx::query(
                        "INSERT OR IGNORE INTO message_ids (message_id, case_number, direction, created_at) VALUES (?, ?, 'out', ?)",
                    )
                    .bind(message_id)
                    .bind(case)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Delivery::Failed { error, fallback } => {
                    let who: Option<String> = row.try_get("person")?;
                    let address: String = row.try_get("address")?;
                    let kind: String = row.try_get("kind")?;
                    let mut text = format!("{kind} to {} by {channel} failed: {error}", who.unwrap_or(address));
                    if let Some(next) = fallback {
                        text += &format!("; falling back to {}", next.channel.as_str());
                        Self::insert_pages(&mut tx, case.map(CaseNumber), std::slice::from_ref(next), now).await?;
                    }
                    Self::page_event(&mut tx, case, "page_failed", &channel, &text, now).await?;
                }
                _ => {}
            }
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn cases_paging(&self, person: &PersonId) -> Result<Vec<CaseNumber>, StoreError> {
        let numbers: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT c.number FROM cases c JOIN pages p ON p.case_number = c.number
             WHERE c.status = 'open' AND c.esc_running = 1 AND p.person = ? AND p.kind = 'page'
               AND p.round = c.esc_round AND p.step = c.esc_step
             ORDER BY c.number",
        )
        .bind(person.as_str())
        .fetch_all(&self.reader)
        .await?;
        Ok(numbers.into_iter().map(CaseNumber).collect())
    }

    async fn cases_assigned(&self, person: &PersonId) -> Result<Vec<Case>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE assignee = ? AND status IN ('open', 'acknowledged', 'waiting') ORDER BY number"
        ));
        let rows = sqlx::query(sql).bind(person.as_str()).fetch_all(&self.reader).await?;
        rows.iter().map(case_from_row).collect()
    }

    async fn page(&self, id: i64) -> Result<Option<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE id = ?"));
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.reader).await?;
        row.as_ref().map(page_from_row).transpose()
    }

    async fn queue_pages(
        &self,
        case: Option<CaseNumber>,
        pages: &[NewPage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        Self::insert_pages(&mut tx, case, pages, ms(now)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_sms_opt_out(&self, person: &PersonId, out: bool, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = if out {
            sqlx::query("INSERT OR IGNORE INTO sms_opt_outs (person, since) VALUES (?, ?)")
                .bind(person.as_str())
                .bind(ms(now))
                .execute(&self.writer)
                .await?
        } else {
            sqlx::query("DELETE FROM sms_opt_outs WHERE person = ?").bind(person.as_str()).execute(&self.writer).await?
        };
        Ok(done.rows_affected() > 0)
    }

    async fn sms_opt_outs(&self) -> Result<std::collections::BTreeSet<PersonId>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT person FROM sms_opt_outs").fetch_all(&self.reader).await?;
        rows.into_iter().map(|p| p.parse::<PersonId>().map_err(StoreError::Corrupt)).collect()
    }

    async fn phone_errors(&self, person: &PersonId, ok: bool, now: DateTime<Utc>) -> Result<i64, StoreError> {
        if ok {
            sqlx::query("DELETE FROM phone_errors WHERE person = ?")
                .bind(person.as_str())
                .execute(&self.writer)
                .await?;
            return Ok(0);
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO phone_errors (person, errors, updated_at) VALUES (?, 1, ?)
             ON CONFLICT (person) DO UPDATE SET errors = errors + 1, updated_at = excluded.updated_at
             RETURNING errors",
        )
        .bind(person.as_str())
        .bind(ms(now))
        .fetch_one(&self.writer)
        .await?)
    }

    async fn pages_by_provider_id(&self, provider_id: &str) -> Result<Vec<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE provider_id = ? ORDER BY id"));
        let rows = sqlx::query(sql).bind(provider_id).fetch_all(&self.reader).await?;
        rows.iter().map(page_from_row).collect()
    }

    async fn last_sent(&self, person: &PersonId, channel: ChannelKind) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(updated_at) FROM pages WHERE person = ? AND channel = ? AND status IN ('sent', 'delivered')",
        )
        .bind(person.as_str())
        .bind(channel.as_str())
        .fetch_one(&self.reader)
        .await?;
        opt_instant(at)
    }

    async fn report_delivery(
        &self,
        id: i64,
        status: PageStatus,
        error: Option<&str>,
        fallback: Option<&NewPage>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let now = ms(now);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        // Only from sending or sent: a late "sent" never undoes "delivered".
        let row = sqlx::query(
            "UPDATE pages SET status = ?, error = COALESCE(?, error), updated_at = ?
             WHERE id = ? AND status IN ('sending', 'sent') RETURNING case_number, person, channel, kind",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        if status != PageStatus::Delivered {
            let case: Option<i64> = row.try_get("case_number")?;
            let channel: String = row.try_get("channel")?;
            let who: Option<String> = row.try_get("person")?;
            let kind: String = row.try_get("kind")?;
            let mut text = format!(
                "{kind} to {} by {channel} {}: {}",
                who.unwrap_or_default(),
                status.as_str(),
                error.unwrap_or("no reason given")
            );
            if let Some(next) = fallback {
                text += &format!("; falling back to {}", next.channel.as_str());
                Self::insert_pages(&mut tx, case.map(CaseNumber), std::slice::from_ref(next), now).await?;
            }
            Self::page_event(&mut tx, case, "page_failed", &channel, &text, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_override(&self, o: &OverrideRecord) -> Result<OverrideRecord, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO overrides (schedule, person, starts_at, ends_at, reason, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&o.schedule)
        .bind(o.person.as_str())
        .bind(ms(o.start))
        .bind(ms(o.end))
        .bind(&o.reason)
        .bind(&o.created_by)
        .bind(ms(o.created_at))
        .fetch_one(&self.writer)
        .await?;
        Ok(OverrideRecord { id, ..o.clone() })
    }

    async fn overrides(&self, after: DateTime<Utc>) -> Result<Vec<OverrideRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, schedule, person, starts_at, ends_at, reason, created_by, created_at FROM overrides WHERE ends_at > ? ORDER BY id",
        )
        .bind(ms(after))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(override_from_row).collect()
    }

    async fn delete_override(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM overrides WHERE id = ?").bind(id).execute(&self.writer).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn receive_mail(
        &self,
        raw: &[u8],
        envelope: &Envelope,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let id = sqlx::query_scalar(
            "INSERT INTO inbox (received_at, source, envelope_from, envelope_to, raw, status) VALUES (?, ?, ?, ?, ?, 'pending') RETURNING id",
        )
        .bind(ms(now))
        .bind(source)
        .bind(&envelope.from)
        .bind(json(&envelope.to)?)
        .bind(raw)
        .fetch_one(&self.writer)
        .await?;
        Ok(id)
    }

    async fn pending_mail(&self, limit: u32) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM inbox WHERE status = 'pending' ORDER BY id LIMIT ?")
            .bind(limit)
            .fetch_all(&self.reader)
            .await?)
    }

    async fn inbox(&self, id: i64) -> Result<Option<InboxRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, received_at, source, envelope_from, envelope_to, raw, status, case_number, note FROM inbox WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let to: String = r.try_get("envelope_to")?;
        Ok(Some(InboxRecord {
            id: r.try_get("id")?,
            received_at: instant(r.try_get("received_at")?)?,
            source: r.try_get("source")?,
            envelope: Envelope {
                from: r.try_get("envelope_from")?,
                to: serde_json::from_str(&to).map_err(corrupt("envelope"))?,
            },
            raw: r.try_get("raw")?,
            status: r.try_get("status")?,
            case: r.try_get::<Option<i64>, _>("case_number")?.map(CaseNumber),
            note: r.try_get("note")?,
        }))
    }

    async fn settle_mail(&self, id: i64, status: &str, note: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE inbox SET status = ?, note = ?, filed_at = ? WHERE id = ? AND status = 'pending'")
                .bind(status)
                .bind(note)
                .bind(ms(now))
                .bind(id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn case_by_message_id(&self, ids: &[String]) -> Result<Option<CaseNumber>, StoreError> {
        for id in ids {
            let found: Option<i64> = sqlx::query_scalar("SELECT case_number FROM message_ids WHERE message_id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
            if let Some(n) = found {
                return Ok(Some(CaseNumber(n)));
            }
        }
        Ok(None)
    }

    async fn received_before(&self, message_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM message_ids WHERE message_id = ? AND direction = 'in'")
                .bind(message_id)
                .fetch_optional(&self.reader)
                .await?;
        Ok(found.is_some())
    }

    async fn receipts_since(&self, address: &str, since: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM pages WHERE kind = 'receipt' AND address = ? AND created_at > ?")
            .bind(address)
            .bind(ms(since))
            .fetch_one(&self.reader)
            .await?)
    }

    async fn setting(&self, name: &str, default: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)")
            .bind(name)
            .bind(default)
            .execute(&self.writer)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = ?").bind(name).fetch_one(&self.writer).await?)
    }

    async fn digest_data(&self, since: DateTime<Utc>) -> Result<DigestData, StoreError> {
        let by_status = sqlx::query("SELECT status, COUNT(*) AS n FROM cases GROUP BY status ORDER BY status")
            .fetch_all(&self.reader)
            .await?;
        let breaches =
            sqlx::query("SELECT case_number, text FROM events WHERE kind = 'breach' AND at >= ? ORDER BY id LIMIT 20")
                .bind(ms(since))
                .fetch_all(&self.reader)
                .await?;
        let due = sqlx::query(
            "SELECT number, priority, subject, next FROM (
                 SELECT number, priority, subject,
                        CASE WHEN status = 'open' THEN MIN(COALESCE(respond_due, 9000000000000000000), COALESCE(resolve_due, 9000000000000000000))
                             ELSE MIN(COALESCE(update_due, 9000000000000000000), COALESCE(resolve_due, 9000000000000000000)) END AS next
                 FROM cases WHERE status IN ('open', 'acknowledged', 'waiting'))
             WHERE next < 9000000000000000000 ORDER BY next LIMIT 10",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(DigestData {
            by_status: by_status
                .iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
                .collect::<Result<_, StoreError>>()?,
            breaches: breaches
                .iter()
                .map(|r| Ok((CaseNumber(r.try_get("case_number")?), r.try_get("text")?)))
                .collect::<Result<_, StoreError>>()?,
            due: due
                .iter()
                .map(|r| {
                    Ok((
                        CaseNumber(r.try_get("number")?),
                        r.try_get("priority")?,
                        r.try_get("subject")?,
                        instant(r.try_get("next")?)?,
                    ))
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let first = sqlx::query("INSERT OR IGNORE INTO digests (person, day) VALUES (?, ?)")
            .bind(person.as_str())
            .bind(day)
            .execute(&mut *tx)
            .await?;
        if first.rows_affected() == 0 {
            return Ok(false);
        }
        Self::insert_pages(&mut tx, None, std::slice::from_ref(page), ms(now)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_token(&self, info: &TokenInfo, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let result = sqlx::query("INSERT INTO tokens (name, hash, role, person, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&info.name)
            .bind(hash)
            .bind(info.role.as_str())
            .bind(info.person.as_ref().map(PersonId::as_str))
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

    async fn token(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let row = sqlx::query("SELECT name, role, person FROM tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn counts(&self, now: DateTime<Utc>) -> Result<Counts, StoreError> {
        let cases =
            sqlx::query("SELECT status, COUNT(*) AS n FROM cases GROUP BY status").fetch_all(&self.reader).await?;
        let pages = sqlx::query("SELECT channel, status, COUNT(*) AS n FROM pages GROUP BY channel, status")
            .fetch_all(&self.reader)
            .await?;
        let timers = sqlx::query("SELECT COUNT(*) AS pending, COALESCE(SUM(due_at <= ?), 0) AS due FROM timers")
            .bind(ms(now))
            .fetch_one(&self.reader)
            .await?;
        Ok(Counts {
            cases_by_status: cases
                .iter()
                .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
                .collect::<Result<_, StoreError>>()?,
            pages: pages
                .iter()
                .map(|r| Ok((r.try_get("channel")?, r.try_get("status")?, r.try_get("n")?)))
                .collect::<Result<_, StoreError>>()?,
            timers_pending: timers.try_get("pending")?,
            timers_due: timers.try_get("due")?,
        })
    }

    async fn active_cases(&self, limit: u32) -> Result<Vec<Case>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE status IN ('open', 'acknowledged', 'waiting')
             ORDER BY CASE status
                 WHEN 'open' THEN MIN(COALESCE(respond_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                 WHEN 'acknowledged' THEN MIN(COALESCE(update_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                 ELSE {NEVER} END, number
             LIMIT ?"
        ));
        let rows = sqlx::query(sql).bind(limit).fetch_all(&self.reader).await?;
        rows.iter().map(case_from_row).collect()
    }

    async fn troubled_pages(
        &self,
        since: DateTime<Utc>,
        stuck_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PAGE_COLUMNS} FROM pages
             WHERE (status IN ('failed', 'undelivered') AND updated_at >= ?1)
                OR (status IN ('queued', 'sending') AND created_at < ?2)
             ORDER BY id DESC LIMIT ?3"
        ));
        let rows = sqlx::query(sql).bind(ms(since)).bind(ms(stuck_before)).bind(limit).fetch_all(&self.reader).await?;
        rows.iter().map(page_from_row).collect()
    }

    async fn unconfirmed_sms(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PAGE_COLUMNS} FROM pages
             WHERE channel = 'sms' AND status = 'sent' AND updated_at >= ?1 AND updated_at < ?2
             ORDER BY id DESC LIMIT ?3"
        ));
        let rows = sqlx::query(sql).bind(ms(from)).bind(ms(to)).bind(limit).fetch_all(&self.reader).await?;
        rows.iter().map(page_from_row).collect()
    }

    async fn report_data(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ReportData, StoreError> {
        // One read transaction, so the three lists agree with each other.
        let mut tx = self.reader.begin().await?;
        let cases = sqlx::query(
            "SELECT number, subject, customer, priority, plan, status, assignee, opened_at, acked_at, resolved_at,
                    respond_from, pauses
             FROM cases WHERE opened_at >= ? AND opened_at < ? ORDER BY opened_at, number",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        let breaches = sqlx::query(
            "SELECT e.case_number, e.at, e.kind, e.actor, e.channel, e.text FROM cases c
             JOIN events e ON e.case_number = c.number
             WHERE c.opened_at >= ? AND c.opened_at < ? AND e.kind = 'breach' ORDER BY e.at, e.id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        // `+status`, `+kind`: the range on created_at is what narrows the
        // search; without them SQLite walks every sent page by status.
        let pages = sqlx::query(
            "SELECT person, channel, created_at FROM pages
             WHERE created_at >= ? AND created_at < ? AND person IS NOT NULL
               AND +status IN ('sent', 'delivered') AND +kind IN ('page', 'reminder', 'warning', 'breach')
             ORDER BY created_at, id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ReportData {
            cases: cases
                .iter()
                .map(|r| {
                    let assignee: Option<String> = r.try_get(6)?;
                    let opened_at = instant(r.try_get(7)?)?;
                    Ok(ReportCase {
                        number: CaseNumber(r.try_get(0)?),
                        subject: r.try_get(1)?,
                        customer: r.try_get(2)?,
                        priority: r.try_get::<String, _>(3)?.parse().map_err(corrupt("priority"))?,
                        plan: r.try_get(4)?,
                        status: r.try_get::<String, _>(5)?.parse().map_err(corrupt("status"))?,
                        assignee: assignee.map(|a| a.parse::<PersonId>()).transpose().map_err(corrupt("assignee"))?,
                        opened_at,
                        acked_at: opt_instant(r.try_get(8)?)?,
                        resolved_at: opt_instant(r.try_get(9)?)?,
                        respond_from: opt_instant(r.try_get(10)?)?.unwrap_or(opened_at),
                        pauses: serde_json::from_str(&r.try_get::<String, _>(11)?).map_err(corrupt("pauses"))?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            breaches: breaches
                .iter()
                .map(|r| Ok((CaseNumber(r.try_get("case_number")?), event_from_row(r)?)))
                .collect::<Result<_, StoreError>>()?,
            pages: pages
                .iter()
                .map(|r| {
                    Ok(ReportPage {
                        person: r.try_get::<String, _>(0)?.parse().map_err(corrupt("person"))?,
                        channel: r.try_get::<String, _>(1)?.parse().map_err(corrupt("channel"))?,
                        at: instant(r.try_get(2)?)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
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
        sqlx::query("INSERT INTO sessions (hash, token_hash, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
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
        let row = sqlx::query(
            "SELECT t.name, t.role, t.person, s.csrf, s.expires_at FROM sessions s
             JOIN tokens t ON t.hash = s.token_hash WHERE s.hash = ? AND s.expires_at > ?",
        )
        .bind(hash)
        .bind(ms(now))
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            token: token_from_row(&r)?,
            csrf: r.try_get("csrf")?,
            expires_at: instant(r.try_get("expires_at")?)?,
        }))
    }

    async fn delete_session(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE hash = ? OR expires_at <= ?")
            .bind(hash)
            .bind(ms(now))
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
