//! A lone SQLite daemon knows it is alone: it locks its database, a second
//! daemon on the same database is refused, and what an earlier process
//! left in flight is taken over at start instead of when its leases run
//! out (issue 16).

use std::sync::Arc;

use chrono::TimeDelta;
use tocsin::app::{App, Listeners, Workers};
use tocsin::notify::Templates;
use tocsin::store::PageStatus;
use tocsin::token::TokenRole;

use crate::harness::*;

async fn second_daemon(t: &TestApp) -> anyhow::Result<App> {
    let rules = tocsin::rules::load(&t.config.paths.rules).unwrap();
    let templates = Templates::load(&t.config.paths.templates).unwrap();
    let store = tocsin::store::open(&t.config.database).await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    App::start(
        &t.config,
        rules,
        templates,
        store,
        Arc::new(t.clock.clone()),
        Listeners { http, smtp: None },
        Workers::Manual,
    )
    .await
}

#[tokio::test]
async fn a_second_daemon_on_the_same_sqlite_database_is_refused() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let Err(e) = second_daemon(&t).await else { panic!("a second daemon started on the same database") };
    let e = e.to_string();
    assert!(e.contains("another tocsin daemon is serving") && e.contains("tocsin.db.lock"), "{e}");
    // Stopped, the first lets go: the next start (a restart) takes the lock.
    t.stop().await;
    let again = second_daemon(&t).await.expect("the lock is free once the daemon stops");
    again.stop().await;
}

#[tokio::test]
async fn work_left_in_flight_by_a_dead_process_goes_out_at_the_restart() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&admin).await;
    // A process claims the case's first pages and dies mid-send (its
    // lease would hold them for [scheduler] lease, 30 s).
    let store = t.store();
    let now = t.clock_now();
    let held = store.claim_pages(now, "dead-process", TimeDelta::seconds(30), 10).await.unwrap();
    assert!(!held.is_empty());
    t.stop().await;
    // The restart, at the same instant: the page goes out now.
    t.start(Workers::Manual).await;
    t.app().tick().await.unwrap();
    for p in &held {
        let page = t.store().page(p.id).await.unwrap().unwrap();
        assert_eq!(page.status, PageStatus::Sent, "{page:?}");
        assert_eq!(page.attempts, 2, "claimed again, in doubt, and sent once more: {page:?}");
    }
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &admin).await;
    assert_eq!(case["pages"][0]["status"], "sent", "{case}");
}
