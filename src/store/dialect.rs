//! The seam between the one store body ([`super::body`]) and its two
//! backends: what truly differs between SQLite and PostgreSQL, and nothing
//! else. A backend is a [`Dialect`]: its sqlx driver, how its transactions
//! start, how it locks and passes over locked rows, the few SQL words the two
//! spell differently, its placeholders, and its migrations.
//!
//! The body writes SQL with `?` placeholders (`?N` where one value is bound
//! once and used twice) and the dialect turns them into its own. A dialect
//! holds no domain rule, no row mapping and no text a person reads.

use std::borrow::Cow;

use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::PgQueryResult;
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Database, IntoArguments};

use super::rows::Columns;

/// One backend's SQL, as the store body needs it.
pub trait Dialect: Send + Sync + 'static {
    /// The sqlx driver; its rows are read through [`Columns`].
    type DB: Database<Row: Columns, Arguments: IntoArguments<Self::DB>, QueryResult: Affected, Connection: Migrate>;

    /// This backend's schema, as migrations from empty.
    const MIGRATIONS: Migrator;

    /// Starts a transaction that writes. It must exclude other writers of
    /// the rows it reads before it writes them, or lock those rows.
    const BEGIN_WRITE: &'static str;
    /// Starts a read-only transaction in which every statement sees the same
    /// snapshot.
    const BEGIN_SNAPSHOT: &'static str;
    /// Ends a `SELECT` that picks the rows a claim takes, so that claimers
    /// running at once pass over each other's rows instead of waiting.
    const SKIP_LOCKED: &'static str;
    /// Ends the `SELECT` of a case's version that precedes every commit on
    /// it: the case row is held until the commit ends, so two commits on one
    /// case queue.
    const LOCK_ROW: &'static str;
    /// A statement that serialises case numbering across writers, run first
    /// in the transaction that opens a case; `None` where the write
    /// transaction already excludes other writers.
    const LOCK_NUMBERING: Option<&'static str>;
    /// The function that takes the smaller of two values.
    const LEAST: &'static str;
    /// Put before a column in a condition to keep the planner from
    /// searching by it (where its own choice would be a poor one).
    const UNINDEXED: &'static str;

    /// `sql` with its `?` and `?N` placeholders in this backend's form;
    /// a backend that takes them as written keeps this default.
    fn placeholders(sql: Cow<'static, str>) -> Cow<'static, str> {
        sql
    }
}

/// How many rows a statement changed: each driver says so its own way.
pub trait Affected {
    fn rows(&self) -> u64;
}

impl Affected for SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for PgQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}
