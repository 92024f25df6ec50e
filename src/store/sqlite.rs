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

    /// Opens an existing database at `url` to read only: no migration, no
    /// file created, no write (`tocsin simulate` reads opt-outs and
    /// overrides this way).
    pub async fn open_read_only(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?.read_only(true).busy_timeout(busy_timeout);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        Ok(Self::new(pool.clone(), pool))
    }

    /// A database of its own in memory, gone when the store is dropped:
    /// what `tocsin simulate` runs the engine on, so nothing of the user's
    /// is read or written by it. A named shared-cache database, so the
    /// reader pool sees the writer's tables (each plain `:memory:`
    /// connection would be a database of its own).
    ///
    /// The [`Scratch`] beside it empties the database for the next
    /// rehearsal, which costs far less than a new one (the migrations).
    pub async fn open_private() -> Result<(Self, Scratch), StoreError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = format!("sqlite:file:tocsin-rehearsal-{}-{n}?mode=memory&cache=shared", std::process::id());
        let options = SqliteConnectOptions::from_str(&url)?.shared_cache(true).foreign_keys(true);
        // The database lives while a connection holds it: the writer keeps
        // one open for the store's life.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        Sqlite::MIGRATIONS.run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(2).connect_with(options).await?;
        let scratch = Scratch::of(writer.clone()).await?;
        Ok((Self::new(writer, reader), scratch))
    }
}

/// A handle on a private in-memory database ([`SqliteStore::open_private`]).
#[derive(Debug, Clone)]
pub struct Scratch {
    writer: sqlx::SqlitePool,
    /// The statements that empty it, made once.
    empty: std::sync::Arc<str>,
}

impl Scratch {
    /// Reads the tables of the private database behind `writer`; refuses
    /// any database with a file.
    async fn of(writer: sqlx::SqlitePool) -> Result<Scratch, StoreError> {
        let files: Vec<String> =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'").fetch_all(&writer).await?;
        if files.iter().any(|f| !f.is_empty()) {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                "only an in-memory database may be cleared".into(),
            )));
        }
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'",
        )
        .fetch_all(&writer)
        .await?;
        let mut empty = "PRAGMA foreign_keys = OFF;".to_owned();
        for table in tables {
            empty += &format!("DELETE FROM \"{}\";", table.replace('"', "\"\""));
        }
        empty += "PRAGMA foreign_keys = ON;";
        Ok(Scratch { writer, empty: empty.into() })
    }

    /// Empties every table but the record of migrations, as if the
    /// database were new (no migration seeds rows; one that did would have
    /// to be run again here), in one round trip.
    pub async fn clear(&self) -> Result<(), StoreError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(self.empty.to_string())).execute(&self.writer).await?;
        Ok(())
    }
}
