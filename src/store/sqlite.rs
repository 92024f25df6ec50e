//! The SQLite dialect: the embedded default, nothing to install.
//!
//! Owns how a SQLite database is opened and what its SQL needs that
//! PostgreSQL's does not; the store itself is the shared body
//! ([`super::SqlStore`]). Must hold no row mapping, no domain rule and no
//! text a person reads.
//!
//! Writes go through a pool of one connection and start with
//! `BEGIN IMMEDIATE`, so a transaction takes the write lock before it reads
//! and never fails half-way on a lock upgrade; reads use a separate pool.
//! WAL lets readers run beside the writer; `synchronous = FULL` makes every
//! commit durable before Tocsin answers 201 or 250.

use std::{str::FromStr, time::Duration};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Dialect, SqlStore, StoreError};

/// SQLite's SQL.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

/// SQLite behind the [`super::Store`] trait.
pub type SqliteStore = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    type DB = sqlx::Sqlite;
    const MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const BEGIN_SNAPSHOT: &'static str = "BEGIN";
    // The write lock is the whole database's: there is never a locked row
    // to pass over, and a case row needs no lock of its own.
    const SKIP_LOCKED: &'static str = "";
    const LOCK_ROW: &'static str = "";
    const LOCK_NUMBERING: Option<&'static str> = None;
    const LEAST: &'static str = "MIN";
    // A unary `+` hides a column from SQLite's planner, which would
    // otherwise walk every sent page by status for a report.
    const UNINDEXED: &'static str = "+";
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
        Sqlite::MIGRATIONS.run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self::new(writer, reader))
    }
}
