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

use sqlx::{Database, IntoArguments, Pool};

use super::StoreError;
use super::rows::Columns;

/// One backend's SQL, as the store body needs it.
pub trait Dialect: Send + Sync + 'static {
    /// The sqlx driver; its rows are read through [`Columns`].
    type DB: Database<Row: Columns, Arguments: IntoArguments<Self::DB>>;

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

    /// `sql` with its `?` and `?N` placeholders in this backend's form.
    fn placeholders(sql: Cow<'static, str>) -> Cow<'static, str>;

    /// How many rows a statement changed.
    fn rows_affected(done: &<Self::DB as Database>::QueryResult) -> u64;

    /// Applies this backend's pending migrations.
    fn migrate(pool: &Pool<Self::DB>) -> impl Future<Output = Result<(), StoreError>> + Send;
}
