//! Finding cases: `GET /api/v1/cases` filters, cursor paging by `Link`
//! headers, an engineer's view, and the dashboard's Cases page.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::case::decide::NewCase;
use tocsin::case::{Actor, Facts, Via};
use tocsin::escalation::Overrides;
use tocsin::token::TokenRole;

use crate::harness::web::{page, sign_in};
use crate::harness::*;

const REQUESTERS: [&str; 3] = ["ops@acme.com", "it@globex.example", "x@y.example"];

/// Opens `n` cases straight through the store (the same decisions the
/// daemon makes), one a minute, so the test does not wait on HTTP.
async fn seed(t: &TestApp, n: usize) -> Vec<i64> {
    let rules = tocsin::rules::load(&repo().join("rules")).unwrap();
    let (overrides, sms_off) = (Overrides::new(), BTreeSet::new());
    let store = t.store();
    let start = t.clock_now() - TimeDelta::minutes(n as i64);
    let mut numbers = Vec::with_capacity(n);
    for i in 0..n {
        let facts = Facts {
            rules: &rules,
            overrides: &overrides,
            sms_off: &sms_off,
            now: start + TimeDelta::minutes(i as i64),
        };
        let new = NewCase {
            subject: format!("Case {i} {}", if i % 10 == 0 { "Printer ON FIRE" } else { "slow" }),
            body: format!("report {i}{}", if i % 25 == 0 { " with 100% of disks full" } else { "" }),
            requester: REQUESTERS[i % REQUESTERS.len()].to_owned(),
            priority: None,
            actor: Actor::Token("seed".into()),
            via: Via::Api,
            receipt: false,
            unverified: None,
        };
        let tr = facts.open(new).unwrap();
        numbers.push(store.create_case(&tr).await.unwrap().number.0);
    }
    numbers
}

/// Follows `Link: rel="next"` from `first` to the end: every case number
/// seen, page by page.
async fn walk(t: &TestApp, token: &str, first: &str) -> Vec<Vec<i64>> {
    let http = reqwest::Client::new();
    let mut url = Some(t.url(first));
    let mut pages = Vec::new();
    while let Some(u) = url.take() {
        let r = http.get(&u).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200, "{u}");
        url = r.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with(">; rel=\"next\""), "{l}");
            let target = &l[1..l.find('>').unwrap()];
            assert!(target.starts_with("/api/v1/cases?") && target.contains("before="), "{l}");
            t.url(target)
        });
        let body: Value = r.json().await.unwrap();
        pages.push(body["cases"].as_array().unwrap().iter().map(|c| c["number"].as_i64().unwrap()).collect());
    }
    pages
}

#[tokio::test]
async fn paging_through_five_thousand_cases_by_link_headers_returns_each_exactly_once() {
    let t = TestApp::spawn_with(Workers::Manual, "2026-11-24T10:00:00Z", &repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let mut numbers = seed(&t, 5000).await;
    let pages = walk(&t, &tok, "/api/v1/cases?limit=333").await;
    assert_eq!(pages.len(), 16, "15 full pages of 333 and the rest");
    assert!(pages[..15].iter().all(|p| p.len() == 333));
    let seen: Vec<i64> = pages.concat();
    numbers.reverse();
    assert_eq!(seen, numbers, "each case once, newest first");

    // A filter is carried into the next link, and the last page has none.
    let acme = walk(&t, &tok, "/api/v1/cases?customer=Acme&limit=500").await.concat();
    assert_eq!(acme.len(), 1667);
    assert_eq!(acme.iter().collect::<BTreeSet<_>>().len(), acme.len());
    // A case opened while someone pages does not shift later pages.
    let http = reqwest::Client::new();
    let r = http.get(t.url("/api/v1/cases?limit=2")).bearer_auth(&tok).send().await.unwrap();
    let next = r.headers()["link"].to_str().unwrap().to_owned();
    t.open_outage(&tok).await;
    let target = &next[1..next.find('>').unwrap()];
    let (_, later) = t.get(target, &tok).await;
    assert_eq!(later["cases"][0]["number"].as_i64(), Some(numbers[2]));
}

#[tokio::test]
async fn filters_combine_and_a_bad_one_is_refused_with_its_reason() {
    let t = TestApp::spawn_with(Workers::Manual, "2026-11-24T10:00:00Z", &repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let numbers = seed(&t, 300).await;
    let find = |query: &str| {
        let (t, tok, query) = (&t, &tok, query.to_owned());
        async move {
            let (s, body) = t.get(&format!("/api/v1/cases?limit=1000&{query}"), tok).await;
            assert_eq!(s, 200, "{query}: {body}");
            body["cases"].as_array().unwrap().iter().map(|c| c["number"].as_i64().unwrap()).collect::<Vec<_>>()
        }
    };
    let expect = |pred: &dyn Fn(usize) -> bool| -> Vec<i64> {
        (0..numbers.len()).rev().filter(|i| pred(*i)).map(|i| numbers[i]).collect()
    };
    // Text: subject or body, any case, % taken literally.
    assert_eq!(find("q=printer%20on%20fire").await, expect(&|i| i % 10 == 0));
    assert_eq!(find("q=100%25").await, expect(&|i| i % 25 == 0));
    assert_eq!(find("q=_").await, vec![0i64; 0], "an underscore is no wildcard");
    assert_eq!(find("requester=it@globex.example").await, expect(&|i| i % 3 == 1));
    assert_eq!(find("customer=Acme&q=fire").await, expect(&|i| i % 3 == 0 && i % 10 == 0));
    // "fire" cases route to… the catch-all: P2 for Acme, P3 for the rest.
    assert_eq!(find("priority=P2").await, expect(&|i| i % 3 == 0));
    assert_eq!(find("status=open&priority=P3&customer=Acme").await, Vec::<i64>::new());

    // Acknowledged by Ana: assignee and status filters.
    let ana = t.token("ana", TokenRole::Engineer, Some("ana")).await;
    for n in [numbers[5], numbers[7]] {
        let (s, b) = t.post(&format!("/api/v1/cases/{n}/ack"), &tok, json!({"by": "ana"})).await;
        assert_eq!(s, 200, "{b}");
    }
    assert_eq!(find("assignee=ana").await, [numbers[7], numbers[5]]);
    assert_eq!(find("status=acknowledged").await, [numbers[7], numbers[5]]);

    // An engineer sees the cases assigned to them or that paged them, in
    // the one query: full pages, no gaps.
    let (_, mine) = t.get("/api/v1/cases?limit=1000", &ana).await;
    let mine: Vec<i64> = mine["cases"].as_array().unwrap().iter().map(|c| c["number"].as_i64().unwrap()).collect();
    assert!(mine.contains(&numbers[5]) && mine.contains(&numbers[7]));
    let (_, all_pages) = t.get("/api/v1/cases?limit=1000", &tok).await;
    assert!(mine.len() <= all_pages["cases"].as_array().unwrap().len());
    let paged_ana = walk(&t, &ana, "/api/v1/cases?limit=7").await.concat();
    assert_eq!(paged_ana, mine);

    for (query, says) in [
        ("status=sleeping", "unknown status"),
        ("before=abc", "before:"),
        ("assignee=Not%20An%20Id", "assignee:"),
        ("priority=", ""),
    ] {
        let (s, body) = t.get(&format!("/api/v1/cases?{query}"), &tok).await;
        if says.is_empty() {
            assert_eq!(s, 200, "a blank filter is no filter: {body}");
        } else {
            assert_eq!(s, 400, "{query}: {body}");
            assert!(body.to_string().contains(says), "{query}: {body}");
        }
    }
}

#[tokio::test]
async fn the_cases_page_finds_resolved_cases_by_customer_and_text_and_links_each() {
    let t = TestApp::spawn_with(Workers::Manual, "2026-11-24T10:00:00Z", &repo().join("rules")).await;
    let tok = t.token("ops", TokenRole::Admin, None).await;
    let numbers = seed(&t, 60).await;
    let (s, b) = t.post(&format!("/api/v1/cases/{}/resolve", numbers[30]), &tok, json!({"by": "ana"})).await;
    assert_eq!(s, 200, "{b}");
    let manager = t.token("max", TokenRole::Manager, Some("max")).await;
    let (s, _) = sign_in(&t, &manager).await;
    let (status, html) = page(&t, &s, "/cases?customer=Acme&q=fire&status=resolved").await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("href=\"/cases/{}\"", numbers[30])), "{html}");
    assert_eq!(html.matches("href=\"/cases/").count(), 1, "only the one resolved Acme fire: {html}");
    // Without filters: newest first, a page of 50 and a link to the next.
    let (_, html) = page(&t, &s, "/cases").await;
    assert!(html.contains(&format!("href=\"/cases/{}\"", numbers[59])));
    assert!(!html.contains(&format!("href=\"/cases/{}\"", numbers[9])), "past the first page");
    assert!(html.contains(&format!("before={}", numbers[10])), "{html}");
    let (_, next) = page(&t, &s, &format!("/cases?before={}", numbers[10])).await;
    assert!(next.contains(&format!("href=\"/cases/{}\"", numbers[0])));
    // A bad filter is a message on the page, not an error page.
    let (status, html) = page(&t, &s, "/cases?status=sleeping").await;
    assert_eq!(status, 400);
    assert!(html.contains("unknown status"), "{html}");
}
