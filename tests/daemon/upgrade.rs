//! A database made by an earlier release upgrades in place: the daemon of
//! today starts on it (migrating it), and the cases, timelines, pages,
//! timers, overrides and tokens the earlier release left behave as if
//! nothing happened: timers still fire on time, an acknowledged case stays
//! quiet, a resolved case pages nobody, a token still signs in, and case
//! numbers go on from where they were.
//!
//! The starting databases are SQL dumps in tests/fixtures/upgrade, made by
//! `scripts/make-upgrade-fixture` from the binary of the commit whose
//! schema they hold (`v0012`: main at 74a7298, SQLite migrations
//! 0001–0012, PostgreSQL 0001–0003; see the script for the life they
//! record). When a release changes the schema, keep these and add the new
//! release's dumps beside them.

use sqlx::Connection;
use tocsin::app::Workers;

use crate::harness::pg::{FreshDb, admin_url};
use crate::harness::{TestApp, repo};

/// A minute after the fixtures' life: case 1001 was opened at
/// 2026-12-02T13:05:32Z (both dumps were made in the same minute).
const AFTER_FIXTURE: &str = "2026-12-02T13:06:00Z";

fn fixture(name: &str) -> String {
    let path = repo().join("tests/fixtures/upgrade").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_sqlite_database_of_schema_v0012_upgrades_in_place() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("old.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc")).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(fixture("v0012-sqlite.sql"))).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    upgraded(url, fixture("v0012-sqlite.token")).await;
}

#[tokio::test]
async fn a_postgres_database_of_schema_v0012_upgrades_in_place() {
    let Some(admin) = admin_url("upgrade::a_postgres_database_of_schema_v0012_upgrades_in_place") else { return };
    let db = FreshDb::create(&admin).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(fixture("v0012-postgres.sql"))).execute(&mut conn).await.unwrap();
    // The dump empties this connection's search_path; it goes with it.
    conn.close().await.unwrap();
    upgraded(db.url.clone(), fixture("v0012-postgres.token")).await;
}

/// Starts today's daemon on the old database at `url` and checks what the
/// old release left, with the admin token it made.
async fn upgraded(url: String, token: String) {
    let token = token.trim();
    let t = TestApp::spawn_configured(Workers::Manual, AFTER_FIXTURE, &repo().join("rules"), |c| {
        c.database.url = url;
    })
    .await;

    // The old token still opens the API, and the cases are as they were.
    let (status, ack) = t.get("/api/v1/cases/1001", token).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["status"], "acknowledged");
    assert_eq!(ack["assignee"], "ana");
    assert_eq!(ack["subject"], "Checkout is down");
    let notes: Vec<_> = ack["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "note").collect();
    assert_eq!(notes.len(), 1, "{ack}");
    assert_eq!(notes[0]["text"], "Failing over");
    let (_, resolved) = t.get("/api/v1/cases/1002", token).await;
    assert_eq!(resolved["status"], "resolved");
    let (_, open) = t.get("/api/v1/cases/1003", token).await;
    assert_eq!(open["status"], "open");
    assert_eq!(open["priority"], "P2");

    // Every page the old release sent is still there, sent.
    let mut pages = 0;
    for n in [1001, 1002, 1003] {
        let (_, case) = t.get(&format!("/api/v1/cases/{n}"), token).await;
        for p in case["pages"].as_array().unwrap() {
            assert_eq!(p["status"], "sent", "case {n}: {p}");
            pages += 1;
        }
    }
    assert_eq!(pages, 6, "three receipts and three first-step pages");
    let (p1001, p1002) = (t.step_pages(1001, token).await, t.step_pages(1002, token).await);
    let p1003 = t.step_pages(1003, token).await;
    assert_eq!(p1003.len(), 1, "{p1003:?}");

    // The override survives.
    let overrides = t.store().overrides(crate::harness::at("2029-01-01T00:00:00Z")).await.unwrap();
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].reason, "fixture");

    // The old timers fire on time: case 1003's second step 30 minutes
    // (policy "standard") after it opened, not a second before.
    let opened: chrono::DateTime<chrono::Utc> = open["opened_at"].as_str().unwrap().parse().unwrap();
    let step2 = opened + chrono::TimeDelta::minutes(30);
    t.advance_to(&(step2 - chrono::TimeDelta::seconds(1)).to_rfc3339()).await;
    assert_eq!(t.step_pages(1003, token).await, p1003, "a timer fired early");
    t.advance_to(&(step2 + chrono::TimeDelta::seconds(1)).to_rfc3339()).await;
    let after = t.step_pages(1003, token).await;
    assert_eq!(after.len(), p1003.len() + 1, "{after:?}");
    assert_eq!(after.last().unwrap().1, 2, "the second step: {after:?}");
    // ... and the acknowledged and resolved cases page nobody again.
    t.advance_to("2026-12-02T13:50:00Z").await;
    assert_eq!(t.step_pages(1001, token).await, p1001);
    assert_eq!(t.step_pages(1002, token).await, p1002);
    // Case 1001's update clock, started by the old release, still warns.
    t.advance_to("2026-12-02T14:06:00Z").await;
    let (_, ack) = t.get("/api/v1/cases/1001", token).await;
    assert!(
        ack["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "breach" && e["text"].as_str().unwrap_or_default().contains("update")),
        "no update breach after its deadline: {ack}"
    );

    // The reply key the old release kept in the database is out of it (on
    // SQLite moved into its file; PostgreSQL keeps using it, warning, until
    // the operator moves it, see README "The reply key").
    if t.config.database.url.starts_with("sqlite") {
        assert_eq!(t.store().read_setting("reply_key").await.unwrap(), None);
    }

    // Numbers go on from the old ones.
    assert_eq!(t.open_outage(token).await, 1004);
}
