//! PostgreSQL for tests: a fresh database per test, made through the admin
//! URL in `TOCSIN_TEST_POSTGRES_URL` and dropped afterwards.

use sqlx::Connection;

use super::skip::{Outcome, say, tally};

/// The admin URL, or `None` after a loud note that `test` is skipped
/// (`bash .ci/run` sets it). Either way `test` is counted as ran or
/// skipped (`skip::tally`); `test` is its full name, module path included.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var("TOCSIN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            tally("postgres", test, Outcome::Ran);
            Some(url)
        }
        _ => {
            say(
                test,
                "needs PostgreSQL: TOCSIN_TEST_POSTGRES_URL is not set \
                 (e.g. postgres://postgres@127.0.0.1:5432/postgres; `bash .ci/run` sets it)",
            );
            tally("postgres", test, Outcome::Skipped);
            None
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let host = rest.split_once('/').map_or(rest, |(h, _)| h);
    match query {
        Some(q) => format!("{scheme}://{host}/{name}?{q}"),
        None => format!("{scheme}://{host}/{name}"),
    }
}

/// A database of its own, dropped (with any connections left) on drop.
pub struct FreshDb {
    pub url: String,
    admin: String,
    name: String,
}

impl FreshDb {
    pub async fn create(admin: &str) -> FreshDb {
        let name = format!("tocsin_test_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect to TOCSIN_TEST_POSTGRES_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        conn.close().await.ok();
        FreshDb { url: with_database(admin, &name), admin: admin.to_owned(), name }
    }

    /// The admin URL it was made through, for another database beside it.
    pub fn admin(&self) -> &str {
        &self.admin
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a
        // thread with a runtime of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await {
                        eprintln!("could not drop test database {name}: {e}");
                    }
                    conn.close().await.ok();
                }
            });
        });
        let _ = done.join();
    }
}
