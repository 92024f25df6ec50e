//! Calendar feeds that calendar apps can follow: a shift's UID is the same
//! on every fetch, and its DTSTAMP and SEQUENCE move only when the shift
//! itself changes.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde_json::json;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

/// The feed's events as UID → (DTSTART, DTEND, SEQUENCE, DTSTAMP).
fn events(ics: &str) -> BTreeMap<String, (String, String, String, String)> {
    let mut out = BTreeMap::new();
    for block in ics.split("BEGIN:VEVENT").skip(1) {
        let field = |name: &str| {
            block.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).unwrap_or_default().trim().to_owned()
        };
        out.insert(field("UID"), (field("DTSTART"), field("DTEND"), field("SEQUENCE"), field("DTSTAMP")));
    }
    out
}

async fn feed(t: &TestApp, tok: &str, path: &str) -> String {
    let r = t.http.get(t.url(path)).bearer_auth(tok).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_shift_keeps_its_uid_across_fetches_and_its_sequence_moves_only_when_it_changes() {
    let t = TestApp::spawn(Workers::Manual).await; // Tuesday 24 November, 10:00
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let first = events(&feed(&t, &max, "/api/v1/schedules/primary.ics").await);
    // The shift running when the window opens is served whole, from its
    // true start, not cut at the window's edge.
    let (uid, (start, ..)) = first.iter().min_by_key(|(_, v)| v.0.clone()).unwrap();
    assert!(uid.starts_with("primary-") && uid.ends_with("@tocsin"), "{uid}");
    assert!(start.as_str() < "20261117T100000Z", "the first shift starts before the window: {start}");

    // A day later, the window has moved: the shifts still in it are the
    // same events, unchanged.
    t.advance(TimeDelta::days(1)).await;
    let later = events(&feed(&t, &max, "/api/v1/schedules/primary.ics").await);
    let common: Vec<&String> = first.keys().filter(|k| later.contains_key(*k)).collect();
    assert!(common.len() >= 10, "{first:?}\n{later:?}");
    for uid in &common {
        assert_eq!(first[*uid], later[*uid], "{uid} is the same event");
        assert_eq!(later[*uid].2, "0");
    }
    let person = events(&feed(&t, &max, "/api/v1/people/ana.ics").await);
    assert!(person.keys().all(|uid| later.contains_key(uid) || !uid.starts_with("primary-")), "{person:?}");

    // An override cuts Ana's shift short: that shift changes (same UID, a
    // new end, SEQUENCE 1, a new DTSTAMP); the others do not.
    let ana_now = later
        .iter()
        .find(|(uid, (s, e, ..))| {
            uid.contains("-ana-") && s.as_str() <= "20261125T100000Z" && e.as_str() > "20261125T100000Z"
        })
        .map(|(uid, v)| (uid.clone(), v.clone()))
        .expect("ana is on call now");
    let (s, o) = t
        .post(
            "/api/v1/overrides",
            &max,
            json!({"schedule": "primary", "person": "ben", "start": "2026-11-25T15:00:00Z", "end": "2026-11-25T17:00:00Z"}),
        )
        .await;
    assert_eq!(s, 201, "{o}");
    t.advance(TimeDelta::hours(1)).await;
    let after = events(&feed(&t, &max, "/api/v1/schedules/primary.ics").await);
    let (uid, before) = ana_now;
    let now = &after[&uid];
    assert_eq!(now.0, before.0, "the same start and UID");
    assert_eq!(now.1, "20261125T150000Z", "cut short by the override");
    assert_eq!(now.2, "1");
    assert_eq!(now.3, "20261125T110000Z", "stamped when it changed");
    for (other, v) in &after {
        if other != &uid && later.get(other).is_some_and(|l| l.1 == v.1) {
            assert_eq!(v.2, "0", "{other} did not change");
        }
    }
    // Fetched again, nothing moves.
    t.advance(TimeDelta::hours(1)).await;
    assert_eq!(events(&feed(&t, &max, "/api/v1/schedules/primary.ics").await)[&uid], *now);
}
