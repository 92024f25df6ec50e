//! The PostgreSQL store: for teams that run several `tocsin serve`
//! instances on one database.
//!
//! The schema mirrors SQLite's (instants as BIGINT milliseconds), so the two
//! backends convert the same way and agree to the millisecond. What differs
//! is how instances share work: due timers and queued pages are claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease (owner, lease_until), so two
//! instances never take the same row and a crashed instance's rows come
//! back when its lease runs out. A commit locks its case row first, then
//! consumes its timer, then checks the case's version: every writer takes
//! the case before the timers of that case, so they cannot deadlock.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

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

/// The transaction-scoped advisory lock that serialises case numbering, so
/// numbers stay gapless (`MAX + 1`, as on SQLite) across instances.
const CASE_NUMBER_LOCK: i64 = 0x746f_6373_696e_0001;

/// A case's next deadline never comes: sorts after every real one.
const NEVER: i64 = 9_000_000_000_000_000_000;

/// PostgreSQL behind the [`Store`] trait.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
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

/// Escalation rounds and steps are `u32` in Rust and BIGINT here.
fn small(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(corrupt(what))
}

fn position(r: &PgRow) -> Result<Position, StoreError> {
    Ok(Position {
        round: small(r.try_get("round")?, "escalation round")?,
        step: small(r.try_get("step")?, "escalation step")?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn case_from_row(r: &PgRow) -> Result<Case, StoreError> {
    let assignee: Option<String> = r.try_get("assignee")?;
    let opened_at = instant(r.try_get("opened_at")?)?;
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
        opened_at,
        acked_at: opt_instant(r.try_get("acked_at")?)?,
        resolved_at: opt_instant(r.try_get("resolved_at")?)?,
        deadlines: Deadlines {
            respond: opt_instant(r.try_get("respond_due")?)?,
            update: opt_instant(r.try_get("update_due")?)?,
            resolve: opt_instant(r.try_get("resolve_due")?)?,
        },
        respond_from: opt_instant(r.try_get("respond_from")?)?.unwrap_or(opened_at),
        update_from: opt_instant(r.try_get("update_from")?)?,
        pauses: serde_json::from_str(&r.try_get::<String, _>("pauses")?).map_err(corrupt("pauses"))?,
        warned: serde_json::from_str(&r.try_get::<String, _>("warned")?).map_err(corrupt("warned"))?,
        snoozed_until: opt_instant(r.try_get("snoozed_until")?)?,
        escalation: Escalation {
            at: Position {
                round: small(r.try_get("esc_round")?, "escalation round")?,
                step: small(r.try_get("esc_step")?, "escalation step")?,
            },
            running: r.try_get("esc_running")?,
        },
        version: r.try_get("version")?,
    })
}

fn event_from_row(r: &PgRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        at: instant(r.try_get("at")?)?,
        kind: r.try_get("kind")?,
        actor: r.try_get("actor")?,
        channel: r.try_get("channel")?,
        text: r.try_get("text")?,
    })
}

fn token_from_row(r: &PgRow) -> Result<TokenInfo, StoreError> {
    let person: Option<String> = r.try_get("person")?;
    Ok(TokenInfo {
        name: r.try_get("name")?,
        role: role(&r.try_get::<String, _>("role")?)?,
        person: person.map(|p| p.parse::<PersonId>()).transpose().map_err(StoreError::Corrupt)?,
    })
}

fn override_from_row(r: &PgRow) -> Result<OverrideRecord, StoreError> {
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

fn page_from_row(r: &PgRow) -> Result<PageRecord, StoreError> {
    let person: Option<String> = r.try_get("person")?;
    let round: Option<i64> = r.try_get("round")?;
    let step: Option<i64> = r.try_get("step")?;
    let position = match (round, step) {
        (Some(round), Some(step)) => {
            Some(Position { round: small(round, "page round")?, step: small(step, "page step")? })
        }
        _ => None,
    };
    let status: String = r.try_get("status")?;
    Ok(PageRecord {
        id: r.try_get("id")?,
        case: r.try_get::<Option<i64>, _>("case_number")?.map(CaseNumber),
        person: person.map(|p| p.parse::<PersonId>()).transpose().map_err(corrupt("page person"))?,
        address: r.try_get("address")?,
        channel: r.try_get::<String, _>("channel")?.parse().map_err(corrupt("page channel"))?,
        kind: r.try_get::<String, _>("kind")?.parse().map_err(corrupt("page kind"))?,
        position,
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

impl PostgresStore {
    /// Connects to the database at `url` and applies migrations.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let store = Self::connect(url, busy_timeout).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating: for a read replica, where the schema
    /// arrives by replication and DDL is refused.
    pub async fn connect(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        // `busy_timeout` means what it means on SQLite: how long a write
        // waits for a lock another instance holds before it fails.
        let wait = format!("{}ms", busy_timeout.as_millis());
        // Notices ("relation already exists, skipping" on every migrate)
        // are not worth a log line.
        let options = PgConnectOptions::from_str(url)?
            .options([("lock_timeout", wait.as_str()), ("client_min_messages", "warning")]);
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(busy_timeout.max(Duration::from_secs(1)))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// Queues `pages` of case `number` in one statement.
    async fn insert_pages(
        tx: &mut sqlx::PgConnection,
        number: Option<CaseNumber>,
        pages: &[NewPage],
        now: i64,
    ) -> Result<(), StoreError> {
        if pages.is_empty() {
            return Ok(());
        }
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO pages (case_number, person, address, channel, kind, round, step, detail, status, created_at, updated_at) ",
        );
        q.push_values(pages, |mut b, p| {
            b.push_bind(number.map(|n| n.0))
                .push_bind(p.person.as_ref().map(|x| x.as_str().to_owned()))
                .push_bind(p.address.clone())
                .push_bind(p.channel.as_str())
                .push_bind(p.kind.as_str())
                .push_bind(p.position.map(|x| i64::from(x.round)))
                .push_bind(p.position.map(|x| i64::from(x.step)))
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
        tx: &mut sqlx::PgConnection,
        case: Option<i64>,
        kind: &str,
        channel: &str,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // A notice has no case, so no timeline to record on.
        let Some(case) = case else { return Ok(()) };
        sqlx::query(
            "INSERT INTO events (case_number, at, kind, actor, channel, text) VALUES ($1, $2, $3, 'tocsin', $4, $5)",
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
        conn: &mut sqlx::PgConnection,
        tr: &Transition,
        version: i64,
        consume: Option<(i64, &str)>,
    ) -> Result<Case, StoreError> {
        let c = &tr.case;
        // The case row first, then its timers: the order every writer of a
        // case follows, so two commits on one case queue instead of
        // deadlocking. A missing case is a conflict, as on SQLite. NO KEY
        // UPDATE (the number never changes) leaves the key-share locks of
        // foreign-key checks free, so a batch holding several cases never
        // waits on a transaction that merely inserts pages or events.
        let locked: Option<i64> = sqlx::query_scalar("SELECT version FROM cases WHERE number = $1 FOR NO KEY UPDATE")
            .bind(c.number.0)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some((id, owner)) = consume {
            let gone = sqlx::query("DELETE FROM timers WHERE id = $1 AND owner = $2")
                .bind(id)
                .bind(owner)
                .execute(&mut *conn)
                .await?;
            if gone.rows_affected() == 0 {
                return Err(StoreError::LostLease);
            }
        }
        if locked != Some(version) {
            return Err(StoreError::Conflict);
        }
        sqlx::query(
            "UPDATE cases SET status = $1, assignee = $2, priority = $3, plan = $4, policy = $5, acked_at = $6, resolved_at = $7,
                 respond_due = $8, update_due = $9, resolve_due = $10, esc_round = $11, esc_step = $12, esc_running = $13,
                 respond_from = $14, update_from = $15, pauses = $16, warned = $17, snoozed_until = $18, version = version + 1
             WHERE number = $19",
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
        .bind(i64::from(c.escalation.at.round))
        .bind(i64::from(c.escalation.at.step))
        .bind(c.escalation.running)
        .bind(ms(c.respond_from))
        .bind(c.update_from.map(ms))
        .bind(json(&c.pauses)?)
        .bind(json(&c.warned)?)
        .bind(c.snoozed_until.map(ms))
        .bind(c.number.0)
        .execute(&mut *conn)
        .await?;
        Self::insert_effects(conn, c.number, tr, ms(tr.at), false).await?;
        Ok(Case { version: version + 1, ..c.clone() })
    }

    /// Writes a transition's timers, events, pages and filing, one
    /// multi-row statement per table. `fresh` skips the timer deletes a
    /// brand-new case cannot need.
    async fn insert_effects(
        tx: &mut sqlx::PgConnection,
        number: CaseNumber,
        tr: &Transition,
        now: i64,
        fresh: bool,
    ) -> Result<(), StoreError> {
        if !fresh && !tr.cancel.is_empty() {
            let kinds: Vec<String> = tr.cancel.iter().map(ToString::to_string).collect();
            sqlx::query("DELETE FROM timers WHERE case_number = $1 AND kind = ANY($2)")
                .bind(number.0)
                .bind(kinds)
                .execute(&mut *tx)
                .await?;
        }
        if !tr.timers.is_empty() {
            let mut q = QueryBuilder::<Postgres>::new("INSERT INTO timers (case_number, kind, due_at, round, step) ");
            q.push_values(&tr.timers, |mut b, t| {
                b.push_bind(number.0)
                    .push_bind(t.kind.to_string())
                    .push_bind(ms(t.due))
                    .push_bind(i64::from(t.position.round))
                    .push_bind(i64::from(t.position.step));
            });
            q.build().execute(&mut *tx).await?;
        }
        if !tr.events.is_empty() {
            let mut q =
                QueryBuilder::<Postgres>::new("INSERT INTO events (case_number, at, kind, actor, channel, text) ");
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
                "UPDATE inbox SET status = $5, note = $6, case_number = $1, message_id = $2, filed_at = $3 WHERE id = $4 AND status = 'pending'",
            )
            .bind(number.0)
            .bind(&filing.message_id)
            .bind(now)
            .bind(filing.inbox_id)
            .bind(filing.status)
            .bind(&filing.note)
            .execute(&mut *tx)
            .await?;
            if filed.rows_affected() == 0 {
                return Err(StoreError::AlreadyFiled);
            }
            if let Some(id) = &filing.message_id {
                // ON CONFLICT rather than catching the violation: an error
                // would abort the whole PostgreSQL transaction.
                let recorded = sqlx::query(
                    "INSERT INTO message_ids (message_id, case_number, direction, created_at) VALUES ($1, $2, 'in', $3)
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(id)
                .bind(number.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if recorded.rows_affected() == 0 {
                    return Err(StoreError::Duplicate(format!("message {id}")));
                }
            }
        }
        Self::insert_pages(tx, Some(number), &tr.pages, now).await?;
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx's PostgreSQL migrator (0.9) takes `pg_advisory_lock` on one
        // connection, keyed by the database's name, before it even creates
        // `_sqlx_migrations`, and holds it until every migration ran: so
        // instances starting together wait for each other instead of racing
        // (tests/store_conformance.rs runs three at once).
        sqlx::migrate!("./migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_case(&self, tr: &Transition) -> Result<Case, StoreError> {
        let c = &tr.case;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CASE_NUMBER_LOCK).execute(&mut *tx).await?;
        if let Some(r) = &tr.request {
            let before: Option<(i64, String)> =
                sqlx::query_as("SELECT case_number, fingerprint FROM request_keys WHERE scope = $1 AND key = $2")
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 1, $20, $21, $22, $23)",
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
        .bind(i64::from(c.escalation.at.round))
        .bind(i64::from(c.escalation.at.step))
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
                "INSERT INTO request_keys (scope, key, fingerprint, case_number, created_at) VALUES ($1, $2, $3, $4, $5)",
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
        let sql = sqlx::AssertSqlSafe(format!("SELECT {CASE_COLUMNS} FROM cases WHERE number = $1"));
        let row = sqlx::query(sql).bind(number.0).fetch_optional(&self.pool).await?;
        row.as_ref().map(case_from_row).transpose()
    }

    async fn cases(&self, status: Option<Status>, limit: u32) -> Result<Vec<Case>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE ($1::TEXT IS NULL OR status = $1) ORDER BY number DESC LIMIT $2"
        ));
        let rows =
            sqlx::query(sql).bind(status.map(Status::as_str)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(case_from_row).collect()
    }

    async fn timeline(&self, number: CaseNumber) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query("SELECT at, kind, actor, channel, text FROM events WHERE case_number = $1 ORDER BY id")
            .bind(number.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn pages_of(&self, number: CaseNumber) -> Result<Vec<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE case_number = $1 ORDER BY id"));
        let rows = sqlx::query(sql).bind(number.0).fetch_all(&self.pool).await?;
        rows.iter().map(page_from_row).collect()
    }

    async fn last_step_paging(&self, number: CaseNumber, person: &PersonId) -> Result<Option<Position>, StoreError> {
        let row = sqlx::query(
            "SELECT round, step FROM pages WHERE case_number = $1 AND person = $2 AND kind = 'page' AND round IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(number.0)
        .bind(person.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(position).transpose()
    }

    async fn commit(&self, tr: &Transition, version: i64, consume: Option<(i64, &str)>) -> Result<Case, StoreError> {
        let mut tx = self.pool.begin().await?;
        let case = Self::apply(&mut tx, tr, version, consume).await?;
        tx.commit().await?;
        Ok(case)
    }

    async fn commit_fired(
        &self,
        fired: &[(Transition, i64, i64)],
        owner: &str,
    ) -> Result<Vec<Result<Case, StoreError>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut out: Vec<Option<Result<Case, StoreError>>> = fired.iter().map(|_| None).collect();
        // Case rows are locked in number order, so two instances firing
        // batches that share cases queue instead of deadlocking.
        let mut order: Vec<usize> = (0..fired.len()).collect();
        order.sort_by_key(|&i| fired[i].0.case.number.0);
        for i in order {
            let (tr, version, timer) = &fired[i];
            let slot = &mut out[i];
            // A savepoint per timer: one that lost its race is undone alone.
            sqlx::query("SAVEPOINT fire").execute(&mut *tx).await?;
            match Self::apply(&mut tx, tr, *version, Some((*timer, owner))).await {
                Ok(case) => {
                    sqlx::query("RELEASE fire").execute(&mut *tx).await?;
                    *slot = Some(Ok(case));
                }
                Err(e @ (StoreError::Conflict | StoreError::LostLease)) => {
                    sqlx::query("ROLLBACK TO fire").execute(&mut *tx).await?;
                    sqlx::query("RELEASE fire").execute(&mut *tx).await?;
                    *slot = Some(Err(e));
                }
                Err(e) => return Err(e),
            }
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
        // SKIP LOCKED: rows another instance is claiming or firing right now
        // are passed over, not waited for; in READ COMMITTED a row claimed
        // and committed meanwhile is re-checked and drops out.
        let rows = sqlx::query(
            "UPDATE timers SET owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM timers WHERE due_at <= $3 AND (owner IS NULL OR lease_until <= $3)
                          ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, case_number, kind, due_at, round, step",
        )
        .bind(owner)
        .bind(ms(now + lease))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut timers = rows
            .iter()
            .map(|r| {
                Ok(Timer {
                    id: r.try_get("id")?,
                    case: CaseNumber(r.try_get("case_number")?),
                    kind: r.try_get::<String, _>("kind")?.parse::<TimerKind>().map_err(StoreError::Corrupt)?,
                    due: instant(r.try_get("due_at")?)?,
                    position: position(r)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        timers.sort_by_key(|t| (t.due, t.id));
        Ok(timers)
    }

    async fn release_timers(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE timers SET owner = NULL, lease_until = NULL WHERE owner = $1")
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn drop_timer(&self, id: i64, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM timers WHERE id = $1 AND owner = $2").bind(id).bind(owner).execute(&self.pool).await?;
        Ok(())
    }

    async fn next_timer_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT LEAST((SELECT due_at FROM timers WHERE owner IS NULL ORDER BY due_at LIMIT 1),
                          (SELECT MIN(lease_until) FROM timers WHERE owner IS NOT NULL))",
        )
        .fetch_one(&self.pool)
        .await?;
        opt_instant(at)
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
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE pages SET status = 'sending', owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3,
                 in_doubt = (status = 'sending'), prev_claimed_at = updated_at
             WHERE id IN (SELECT id FROM pages
                          WHERE (status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= $3))
                             OR (status = 'sending' AND lease_until <= $3)
                          ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING {PAGE_COLUMNS}"
        ));
        let rows = sqlx::query(sql)
            .bind(owner)
            .bind(ms(now + lease))
            .bind(ms(now))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
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
        let mut tx = self.pool.begin().await?;
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
                "UPDATE pages SET status = $1, provider_id = COALESCE($2, provider_id), error = $3, next_attempt_at = $4,
                     owner = NULL, lease_until = NULL, updated_at = $5, attempts = attempts - $6
                 WHERE id = $7 AND owner = $8 RETURNING case_number, person, address, channel, kind",
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
                    sqlx::query("DELETE FROM phone_errors WHERE person = $1").bind(who).execute(&mut *tx).await?;
                }
            }
            match outcome {
                Delivery::Sent { message_id: Some(message_id), .. } => {
                    // A notice has no case to thread replies into (the
                    // column is NOT NULL; SQLite's INSERT OR IGNORE skips it
                    // the same way).
                    if let Some(case) = case {
                        sqlx::query(
                            "INSERT INTO message_ids (message_id, case_number, direction, created_at) VALUES ($1, $2, 'out', $3)
                             ON CONFLICT (message_id) DO NOTHING",
                        )
                        .bind(message_id)
                        .bind(case)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
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
             WHERE c.status = 'open' AND c.esc_running AND p.person = $1 AND p.kind = 'page'
               AND p.round = c.esc_round AND p.step = c.esc_step
             ORDER BY c.number",
        )
        .bind(person.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(numbers.into_iter().map(CaseNumber).collect())
    }

    async fn cases_assigned(&self, person: &PersonId) -> Result<Vec<Case>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE assignee = $1 AND status IN ('open', 'acknowledged', 'waiting') ORDER BY number"
        ));
        let rows = sqlx::query(sql).bind(person.as_str()).fetch_all(&self.pool).await?;
        rows.iter().map(case_from_row).collect()
    }

    async fn page(&self, id: i64) -> Result<Option<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE id = $1"));
        let row = sqlx::query(sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(page_from_row).transpose()
    }

    async fn queue_pages(
        &self,
        case: Option<CaseNumber>,
        pages: &[NewPage],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::insert_pages(&mut conn, case, pages, ms(now)).await
    }

    async fn set_sms_opt_out(&self, person: &PersonId, out: bool, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = if out {
            sqlx::query("INSERT INTO sms_opt_outs (person, since) VALUES ($1, $2) ON CONFLICT (person) DO NOTHING")
                .bind(person.as_str())
                .bind(ms(now))
                .execute(&self.pool)
                .await?
        } else {
            sqlx::query("DELETE FROM sms_opt_outs WHERE person = $1").bind(person.as_str()).execute(&self.pool).await?
        };
        Ok(done.rows_affected() > 0)
    }

    async fn sms_opt_outs(&self) -> Result<std::collections::BTreeSet<PersonId>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT person FROM sms_opt_outs").fetch_all(&self.pool).await?;
        rows.into_iter().map(|p| p.parse::<PersonId>().map_err(StoreError::Corrupt)).collect()
    }

    async fn phone_errors(&self, person: &PersonId, ok: bool, now: DateTime<Utc>) -> Result<i64, StoreError> {
        if ok {
            sqlx::query("DELETE FROM phone_errors WHERE person = $1").bind(person.as_str()).execute(&self.pool).await?;
            return Ok(0);
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO phone_errors (person, errors, updated_at) VALUES ($1, 1, $2)
             ON CONFLICT (person) DO UPDATE SET errors = phone_errors.errors + 1, updated_at = excluded.updated_at
             RETURNING errors",
        )
        .bind(person.as_str())
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn pages_by_provider_id(&self, provider_id: &str) -> Result<Vec<PageRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {PAGE_COLUMNS} FROM pages WHERE provider_id = $1 ORDER BY id"));
        let rows = sqlx::query(sql).bind(provider_id).fetch_all(&self.pool).await?;
        rows.iter().map(page_from_row).collect()
    }

    async fn last_sent(&self, person: &PersonId, channel: ChannelKind) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(updated_at) FROM pages WHERE person = $1 AND channel = $2 AND status IN ('sent', 'delivered')",
        )
        .bind(person.as_str())
        .bind(channel.as_str())
        .fetch_one(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // Only from sending or sent: a late "sent" never undoes "delivered".
        let row = sqlx::query(
            "UPDATE pages SET status = $1, error = COALESCE($2, error), updated_at = $3
             WHERE id = $4 AND status IN ('sending', 'sent') RETURNING case_number, person, channel, kind",
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
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&o.schedule)
        .bind(o.person.as_str())
        .bind(ms(o.start))
        .bind(ms(o.end))
        .bind(&o.reason)
        .bind(&o.created_by)
        .bind(ms(o.created_at))
        .fetch_one(&self.pool)
        .await?;
        Ok(OverrideRecord { id, ..o.clone() })
    }

    async fn overrides(&self, after: DateTime<Utc>) -> Result<Vec<OverrideRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, schedule, person, starts_at, ends_at, reason, created_by, created_at FROM overrides WHERE ends_at > $1 ORDER BY id",
        )
        .bind(ms(after))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(override_from_row).collect()
    }

    async fn delete_override(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM overrides WHERE id = $1").bind(id).execute(&self.pool).await?;
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
            "INSERT INTO inbox (received_at, source, envelope_from, envelope_to, raw, status) VALUES ($1, $2, $3, $4, $5, 'pending') RETURNING id",
        )
        .bind(ms(now))
        .bind(source)
        .bind(&envelope.from)
        .bind(json(&envelope.to)?)
        .bind(raw)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn pending_mail(&self, limit: u32) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM inbox WHERE status = 'pending' ORDER BY id LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn inbox(&self, id: i64) -> Result<Option<InboxRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, received_at, source, envelope_from, envelope_to, raw, status, case_number, note FROM inbox WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
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
            sqlx::query("UPDATE inbox SET status = $1, note = $2, filed_at = $3 WHERE id = $4 AND status = 'pending'")
                .bind(status)
                .bind(note)
                .bind(ms(now))
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn case_by_message_id(&self, ids: &[String]) -> Result<Option<CaseNumber>, StoreError> {
        for id in ids {
            let found: Option<i64> = sqlx::query_scalar("SELECT case_number FROM message_ids WHERE message_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            if let Some(n) = found {
                return Ok(Some(CaseNumber(n)));
            }
        }
        Ok(None)
    }

    async fn received_before(&self, message_id: &str) -> Result<bool, StoreError> {
        let found: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM message_ids WHERE message_id = $1 AND direction = 'in')")
                .bind(message_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(found)
    }

    async fn receipts_since(&self, address: &str, since: DateTime<Utc>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM pages WHERE kind = 'receipt' AND address = $1 AND created_at > $2")
            .bind(address)
            .bind(ms(since))
            .fetch_one(&self.pool)
            .await?)
    }

    async fn setting(&self, name: &str, default: &str) -> Result<String, StoreError> {
        // Instances starting together race here; the first insert wins and
        // everyone reads the winner.
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(default)
            .execute(&self.pool)
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1").bind(name).fetch_one(&self.pool).await?)
    }

    async fn digest_data(&self, since: DateTime<Utc>) -> Result<DigestData, StoreError> {
        let by_status = sqlx::query("SELECT status, COUNT(*) AS n FROM cases GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await?;
        let breaches =
            sqlx::query("SELECT case_number, text FROM events WHERE kind = 'breach' AND at >= $1 ORDER BY id LIMIT 20")
                .bind(ms(since))
                .fetch_all(&self.pool)
                .await?;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT number, priority, subject, next FROM (
                 SELECT number, priority, subject,
                        CASE WHEN status = 'open' THEN LEAST(COALESCE(respond_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                             ELSE LEAST(COALESCE(update_due, {NEVER}), COALESCE(resolve_due, {NEVER})) END AS next
                 FROM cases WHERE status IN ('open', 'acknowledged', 'waiting')) AS d
             WHERE next < {NEVER} ORDER BY next LIMIT 10"
        ));
        let due = sqlx::query(sql).fetch_all(&self.pool).await?;
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
        let mut tx = self.pool.begin().await?;
        // A second instance's insert waits for the first to commit, then
        // finds the row: one digest per manager and day.
        let first =
            sqlx::query("INSERT INTO digests (person, day) VALUES ($1, $2) ON CONFLICT (person, day) DO NOTHING")
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
        let result =
            sqlx::query("INSERT INTO tokens (name, hash, role, person, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&info.name)
                .bind(hash)
                .bind(info.role.as_str())
                .bind(info.person.as_ref().map(PersonId::as_str))
                .bind(ms(now))
                .execute(&self.pool)
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
        let row = sqlx::query("SELECT name, role, person FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn counts(&self, now: DateTime<Utc>) -> Result<Counts, StoreError> {
        let cases =
            sqlx::query("SELECT status, COUNT(*) AS n FROM cases GROUP BY status").fetch_all(&self.pool).await?;
        let pages = sqlx::query("SELECT channel, status, COUNT(*) AS n FROM pages GROUP BY channel, status")
            .fetch_all(&self.pool)
            .await?;
        let timers = sqlx::query("SELECT COUNT(*) AS pending, COUNT(*) FILTER (WHERE due_at <= $1) AS due FROM timers")
            .bind(ms(now))
            .fetch_one(&self.pool)
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
                 WHEN 'open' THEN LEAST(COALESCE(respond_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                 WHEN 'acknowledged' THEN LEAST(COALESCE(update_due, {NEVER}), COALESCE(resolve_due, {NEVER}))
                 ELSE {NEVER} END, number
             LIMIT $1"
        ));
        let rows = sqlx::query(sql).bind(i64::from(limit)).fetch_all(&self.pool).await?;
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
             WHERE (status IN ('failed', 'undelivered') AND updated_at >= $1)
                OR (status IN ('queued', 'sending') AND created_at < $2)
             ORDER BY id DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql)
            .bind(ms(since))
            .bind(ms(stuck_before))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
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
             WHERE channel = 'sms' AND status = 'sent' AND updated_at >= $1 AND updated_at < $2
             ORDER BY id DESC LIMIT $3"
        ));
        let rows = sqlx::query(sql).bind(ms(from)).bind(ms(to)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(page_from_row).collect()
    }

    async fn report_data(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ReportData, StoreError> {
        // One snapshot, so the three lists agree with each other.
        let mut tx = self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
        let cases = sqlx::query(
            "SELECT number, subject, customer, priority, plan, status, assignee, opened_at, acked_at, resolved_at,
                    respond_from, pauses
             FROM cases WHERE opened_at >= $1 AND opened_at < $2 ORDER BY opened_at, number",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        let breaches = sqlx::query(
            "SELECT e.case_number, e.at, e.kind, e.actor, e.channel, e.text FROM cases c
             JOIN events e ON e.case_number = c.number
             WHERE c.opened_at >= $1 AND c.opened_at < $2 AND e.kind = 'breach' ORDER BY e.at, e.id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(&mut *tx)
        .await?;
        let pages = sqlx::query(
            "SELECT person, channel, created_at FROM pages
             WHERE created_at >= $1 AND created_at < $2 AND person IS NOT NULL
               AND status IN ('sent', 'delivered') AND kind IN ('page', 'reminder', 'warning', 'breach')
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
        sqlx::query(
            "INSERT INTO sessions (hash, token_hash, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(token_hash)
        .bind(csrf)
        .bind(ms(now))
        .bind(ms(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT t.name, t.role, t.person, s.csrf, s.expires_at FROM sessions s
             JOIN tokens t ON t.hash = s.token_hash WHERE s.hash = $1 AND s.expires_at > $2",
        )
        .bind(hash)
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            token: token_from_row(&r)?,
            csrf: r.try_get("csrf")?,
            expires_at: instant(r.try_get("expires_at")?)?,
        }))
    }

    async fn delete_session(&self, hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE hash = $1 OR expires_at <= $2")
            .bind(hash)
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
