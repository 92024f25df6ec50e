//! The PostgreSQL dialect: for teams that run several `tocsin serve`
//! instances on one database.
//!
//! Owns how a PostgreSQL pool is set up and what its SQL needs that
//! SQLite's does not; the store itself is the shared body
//! ([`super::SqlStore`]). Must hold no row mapping, no domain rule and no
//! text a person reads.
//!
//! The schema mirrors SQLite's (instants as BIGINT milliseconds), so the two
//! backends convert the same way and agree to the millisecond. What differs
//! is how instances share work: due timers and queued pages are claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease (owner, lease_until), so two
//! instances never take the same row and a crashed instance's rows come
//! back when its lease runs out. A commit locks its case row first, then
//! consumes its timer, then checks the case's version: every writer takes
//! the case before the timers of that case, so they cannot deadlock.

use std::borrow::Cow;
use std::{str::FromStr, time::Duration};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{Dialect, SqlStore, StoreError};

/// PostgreSQL's SQL.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

/// PostgreSQL behind the [`super::Store`] trait.
pub type PostgresStore = SqlStore<Postgres>;

impl Dialect for Postgres {
    type DB = sqlx::Postgres;
    /// sqlx's PostgreSQL migrator (0.9) takes `pg_advisory_lock` on one
    /// connection, keyed by the database's name, before it even creates
    /// `_sqlx_migrations`, and holds it until every migration ran: so
    /// instances starting together wait for each other instead of racing
    /// (tests/store_conformance.rs runs three at once).
    const MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    const BEGIN_WRITE: &'static str = "BEGIN";
    const BEGIN_SNAPSHOT: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    // Rows another instance is claiming or firing right now are passed
    // over, not waited for; in READ COMMITTED a row claimed and committed
    // meanwhile is re-checked and drops out.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    // NO KEY UPDATE (the number never changes) leaves the key-share locks
    // of foreign-key checks free, so a batch holding several cases never
    // waits on a transaction that merely inserts pages or events.
    const LOCK_ROW: &'static str = " FOR NO KEY UPDATE";
    // A transaction-scoped advisory lock keeps numbers gapless (`MAX + 1`,
    // as on SQLite) across instances. Its key is 0x746f_6373_696e_0001,
    // "tocsin" and 1.
    const LOCK_NUMBERING: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(8390033978155728897)");
    const LEAST: &'static str = "LEAST";
    const UNINDEXED: &'static str = "";

    /// `?N` becomes `$N`; a bare `?` the next number.
    fn placeholders(sql: Cow<'static, str>) -> Cow<'static, str> {
        if !sql.contains('?') {
            return sql;
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let (mut next, mut quoted) = (0, false);
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\'' => quoted = !quoted,
                '?' if !quoted => {
                    let mut digits = String::new();
                    while let Some(d) = chars.next_if(char::is_ascii_digit) {
                        digits.push(d);
                    }
                    if digits.is_empty() {
                        next += 1;
                        digits = next.to_string();
                    }
                    out.push('$');
                    out.push_str(&digits);
                    continue;
                }
                _ => {}
            }
            out.push(c);
        }
        Cow::Owned(out)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` and applies migrations.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let pool = Self::pool(url, busy_timeout).await?;
        Postgres::MIGRATIONS.run(&pool).await?;
        Ok(Self::new(pool.clone(), pool))
    }

    /// Connects without migrating: for a read replica, where the schema
    /// arrives by replication and DDL is refused.
    pub async fn connect(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let pool = Self::pool(url, busy_timeout).await?;
        Ok(Self::new(pool.clone(), pool))
    }

    async fn pool(url: &str, busy_timeout: Duration) -> Result<PgPool, StoreError> {
        // `busy_timeout` means what it means on SQLite: how long a write
        // waits for a lock another instance holds before it fails.
        let wait = format!("{}ms", busy_timeout.as_millis());
        // Notices ("relation already exists, skipping" on every migrate)
        // are not worth a log line.
        let options = PgConnectOptions::from_str(url)?
            .options([("lock_timeout", wait.as_str()), ("client_min_messages", "warning")]);
        Ok(PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(busy_timeout.max(Duration::from_secs(1)))
            .connect_with(options)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::{Dialect, Postgres};

    #[test]
    fn placeholders_are_numbered_in_order_or_as_written() {
        let sql = |s: &'static str| Postgres::placeholders(s.into()).into_owned();
        assert_eq!(sql("SELECT 1"), "SELECT 1");
        assert_eq!(sql("WHERE a = ? AND b = ?"), "WHERE a = $1 AND b = $2");
        assert_eq!(
            sql("SET o = ?1 WHERE d <= ?3 AND l <= ?3 LIMIT ?4"),
            "SET o = $1 WHERE d <= $3 AND l <= $3 LIMIT $4"
        );
        assert_eq!(sql("WHERE s = 'why?' AND a = ?"), "WHERE s = 'why?' AND a = $1");
    }
}
