//! Tokens that expire and can be revoked, feed-only tokens, the sign-in
//! limit and the audit log, attacked through the real daemon (issue 13).

use std::net::IpAddr;

use chrono::TimeDelta;
use reqwest::header;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::service::tokens::NewToken;
use tocsin::token::{TokenInfo, TokenRole};

use crate::harness::web::{Signed, browser, hidden, page, set_cookie, sign_in};
use crate::harness::{TestApp, at};

/// The audit log as an admin reads it: (actor, action, subject, client).
async fn audit(t: &TestApp, admin: &str) -> Vec<(String, String, String, Option<String>)> {
    let (status, body) = t.get("/api/v1/audit", admin).await;
    assert_eq!(status, 200, "{body}");
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("actor"), s("action"), s("subject"), e["client"].as_str().map(str::to_owned))
        })
        .collect()
}

#[tokio::test]
async fn a_revoked_token_gets_401_at_once_and_its_dashboard_session_ends() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let (s, _) = sign_in(&t, &max).await;
    assert_eq!(t.get("/api/v1/cases", &max).await.0, 200);
    assert_eq!(page(&t, &s, "/now").await.0, 200);

    // A lost phone: the operator revokes its token.
    t.app().state.tokens.revoke("max", "cli").await.unwrap();
    let (status, body) = t.get("/api/v1/cases", &max).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("revoked"), "{body}");
    assert_eq!(page(&t, &s, "/now").await.0, 303, "the dashboard session ended with its token");
    assert_eq!(t.get("/api/v1/cases", &admin).await.0, 200, "other tokens still work");
    // Signing in again with it is refused, and counted as a failure.
    let r = try_sign_in(&t, &browser(), &max).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("revoked"));
    assert!(matches!(
        t.app().state.tokens.revoke("nobody", "cli").await,
        Err(tocsin::service::tokens::TokenError::Unknown(_))
    ));
}

#[tokio::test]
async fn an_expired_token_gets_401_once_the_clock_passes_its_expiry() {
    let t = TestApp::spawn(Workers::Manual).await;
    let expires = t.clock_now() + TimeDelta::hours(1);
    let info = TokenInfo { expires_at: Some(expires), ..TokenInfo::new("max", TokenRole::Manager, None) };
    let max = t.token_of(info).await;
    let (s, _) = sign_in(&t, &max).await;
    assert_eq!(t.get("/api/v1/cases", &max).await.0, 200);
    t.clock.advance(TimeDelta::hours(1) - TimeDelta::milliseconds(1));
    assert_eq!(t.get("/api/v1/cases", &max).await.0, 200, "still valid just before");
    t.clock.advance(TimeDelta::milliseconds(1));
    let (status, body) = t.get("/api/v1/cases", &max).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("expired"), "{body}");
    assert_eq!(page(&t, &s, "/now").await.0, 303, "its dashboard session ended too");
}

#[tokio::test]
async fn a_full_token_in_a_feed_url_gets_401_and_a_feed_token_opens_only_its_own_feed() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let cal = t.token("ana-cal", TokenRole::Feed, Some("ana")).await;
    let primary = t
        .token_of(TokenInfo {
            schedule: Some("primary".into()),
            ..TokenInfo::new("primary-cal", TokenRole::Feed, None)
        })
        .await;
    let by_url = |path: &str, token: &str| {
        let url = t.url(&format!("{path}?token={token}"));
        let http = t.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let by_header = |path: &str, token: &str| {
        let r = t.http.get(t.url(path)).bearer_auth(token);
        async move { r.send().await.unwrap().status().as_u16() }
    };

    // Calendar services store URLs: a full API token there is refused.
    for full in [&admin, &ana] {
        let (status, body) = by_url("/api/v1/people/ana.ics", full).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("feed token") && body.contains("--role feed"), "{body}");
    }
    // A feed token opens its own feed, and nothing else.
    let (status, body) = by_url("/api/v1/people/ana.ics", &cal).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("BEGIN:VCALENDAR"), "{body}");
    assert_eq!(by_url("/api/v1/people/ben.ics", &cal).await.0, 403, "another person's feed");
    assert_eq!(by_url("/api/v1/schedules/primary.ics", &cal).await.0, 403, "a schedule's feed");
    assert_eq!(by_url("/api/v1/schedules/primary.ics", &primary).await.0, 200);
    assert_eq!(by_url("/api/v1/schedules/secondary.ics", &primary).await.0, 403);
    assert_eq!(by_header("/api/v1/people/ana.ics", &cal).await, 200, "also as a bearer token");
    // Read-only, one feed: every other route is 403, with a reason.
    let (status, body) = t.get("/api/v1/cases", &cal).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("feed token"), "{body}");
    assert_eq!(t.post("/api/v1/cases", &cal, json!({"subject": "x", "body": "", "requester": "a@b.c"})).await.0, 403);
    assert_eq!(t.get("/api/v1/oncall", &cal).await.0, 403);
    let r = t.http.post(t.url("/hooks/email")).bearer_auth(&cal).body("Subject: x\r\n\r\nx").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = try_sign_in(&t, &browser(), &cal).await;
    assert_eq!(r.status(), 403, "feed tokens cannot sign in to the dashboard");

    // Full tokens as bearer: engineers their own feed and the schedules'.
    assert_eq!(by_header("/api/v1/people/ana.ics", &ana).await, 200);
    assert_eq!(by_header("/api/v1/people/ben.ics", &ana).await, 403);
    assert_eq!(by_header("/api/v1/schedules/primary.ics", &ana).await, 200);
    assert_eq!(by_header("/api/v1/people/ben.ics", &max).await, 200, "managers read every feed");
    assert_eq!(by_header("/api/v1/people/ben.ics", &admin).await, 200);

    // A revoked feed token is refused at once.
    t.app().state.tokens.revoke("ana-cal", "cli").await.unwrap();
    assert_eq!(by_url("/api/v1/people/ana.ics", &cal).await.0, 401);
}

#[tokio::test]
async fn only_admin_tokens_read_the_audit_log_and_bad_bounds_get_422() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    for (name, role, person) in [
        ("ana-phone", TokenRole::Engineer, Some("ana")),
        ("max", TokenRole::Manager, Some("max")),
        ("monitoring", TokenRole::Integration, None),
    ] {
        let tok = t.token(name, role, person).await;
        let (status, body) = t.get("/api/v1/audit", &tok).await;
        assert_eq!(status, 403, "{name}: {body}");
        assert!(body["error"].as_str().unwrap().contains("admin"), "{body}");
    }
    assert_eq!(t.http.get(t.url("/api/v1/audit")).send().await.unwrap().status(), 401);
    let (status, body) = t.get("/api/v1/audit", &admin).await;
    assert_eq!(status, 200, "{body}");
    let to = at(body["to"].as_str().unwrap());
    assert_eq!((to, at(body["from"].as_str().unwrap())), (t.clock_now(), t.clock_now() - TimeDelta::days(7)));
    let (status, body) = t.get("/api/v1/audit?from=yesterday", &admin).await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().starts_with("from:"), "{body}");
    let (status, body) = t.get("/api/v1/audit?from=2026-11-25T00:00:00Z&to=2026-11-24T00:00:00Z", &admin).await;
    assert_eq!(status, 422, "{body}");
    let openapi: Value = t.http.get(t.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(openapi["paths"]["/api/v1/audit"]["get"].is_object(), "the route is described");
}

/// Fetches the sign-in form and posts `token` through it with `b`.
async fn try_sign_in(t: &TestApp, b: &reqwest::Client, token: &str) -> reqwest::Response {
    let r = b.get(t.url("/login")).send().await.unwrap();
    let (login, _) = set_cookie(&r, "tocsin_login").unwrap();
    let csrf = hidden(&r.text().await.unwrap(), "csrf");
    b.post(t.url("/login"))
        .header(header::COOKIE, format!("tocsin_login={login}"))
        .form(&[("token", token), ("csrf", &csrf), ("next", "/now")])
        .send()
        .await
        .unwrap()
}

/// A browser whose connections come from `address` (any of 127.0.0.0/8
/// reaches the daemon's 127.0.0.1 listener on Linux).
fn browser_from(address: &str) -> reqwest::Client {
    let ip: IpAddr = address.parse().unwrap();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).local_address(ip).build().unwrap()
}

#[tokio::test]
async fn the_eleventh_failed_sign_in_from_one_address_gets_429_while_another_address_may_try() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let (attacker, neighbour) = (browser_from("127.0.0.1"), browser_from("127.0.0.2"));
    for i in 0..10 {
        let r = try_sign_in(&t, &attacker, &format!("tocsin_guess{i}")).await;
        assert_eq!(r.status(), 401, "failure {}", i + 1);
        t.clock.advance(TimeDelta::seconds(10));
    }
    let r = try_sign_in(&t, &attacker, "tocsin_guess10").await;
    assert_eq!(r.status(), 429);
    let wait: i64 = r.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert_eq!(wait, 15 * 60 - 100, "until the first failure leaves the 15-minute window");
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    let r = try_sign_in(&t, &attacker, &max).await;
    assert_eq!(r.status(), 429, "even the right token waits: guessing stays slow");

    // Another address is not held back by the attacker's failures.
    let r = try_sign_in(&t, &neighbour, "tocsin_typo").await;
    assert_eq!(r.status(), 401);
    let r = try_sign_in(&t, &neighbour, &max).await;
    assert_eq!(r.status(), 303);

    // Once the first failure leaves the window, the address may try again.
    t.clock.advance(TimeDelta::seconds(wait));
    let r = try_sign_in(&t, &attacker, &max).await;
    assert_eq!(r.status(), 303);

    let log = audit(&t, &admin).await;
    let failed =
        |client: &str| log.iter().filter(|e| e.1 == "sign_in_failed" && e.3.as_deref() == Some(client)).count();
    assert_eq!((failed("127.0.0.1"), failed("127.0.0.2")), (10, 1), "refused attempts are not failures: {log:?}");
    assert!(log.iter().any(|e| e == &("token:max".into(), "sign_in".into(), "max".into(), Some("127.0.0.2".into()))));
}

#[tokio::test]
async fn audit_records_tokens_sign_ins_overrides_and_actions_taken_for_someone_else() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let state = &t.app().state;
    let rules = state.rules.clone();
    let new = NewToken {
        name: "max-web".into(),
        role: "manager".into(),
        person: Some("max".into()),
        expires: Some("90d".into()),
        ..NewToken::default()
    };
    let (max, info) = state.tokens.create(new.clone(), &rules.get(), "cli").await.unwrap();
    assert_eq!(info.expires_at, Some(t.clock_now() + TimeDelta::days(90)));
    assert!(matches!(
        state.tokens.create(new, &rules.get(), "cli").await,
        Err(tocsin::service::tokens::TokenError::Duplicate(_))
    ));
    let (_s, _): (Signed, String) = sign_in(&t, &max).await;
    assert_eq!(try_sign_in(&t, &browser(), "tocsin_wrong").await.status(), 401);

    let (status, o) = t
        .post(
            "/api/v1/overrides",
            &max,
            json!({"schedule": "primary", "person": "ben", "start": "2026-11-24T12:00:00Z", "end": "2026-11-24T18:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    let id = o["id"].as_i64().unwrap();
    let r = t.http.delete(t.url(&format!("/api/v1/overrides/{id}"))).bearer_auth(&max).send().await.unwrap();
    assert_eq!(r.status(), 204);

    let n = t.open_outage(&admin).await;
    let (status, body) = t.post(&format!("/api/v1/cases/{n}/ack"), &admin, json!({"by": "ana"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = t.post(&format!("/api/v1/cases/{n}/notes"), &admin, json!({"text": "as ops"})).await;
    assert_eq!(status, 200);
    state.tokens.revoke("max-web", "cli").await.unwrap();

    let log = audit(&t, &admin).await;
    let has =
        |actor: &str, action: &str, subject: &str| log.iter().any(|e| e.0 == actor && e.1 == action && e.2 == subject);
    assert!(has("cli", "token_created", "max-web"), "{log:?}");
    assert!(has("token:max-web", "sign_in", "max-web"), "{log:?}");
    assert!(log.iter().any(|e| e.1 == "sign_in_failed" && e.3.as_deref() == Some("127.0.0.1")), "{log:?}");
    assert!(has("max", "override_added", &format!("override {id}")), "{log:?}");
    assert!(has("max", "override_removed", &format!("override {id}")), "{log:?}");
    assert!(has("token:ops", "acted_for", &format!("case {n}")), "{log:?}");
    assert_eq!(
        log.iter().filter(|e| e.1 == "acted_for").count(),
        1,
        "a note under its own name is not acting for anyone"
    );
    assert!(has("cli", "token_revoked", "max-web"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_sign_ins_sent_at_once_gets_no_more_guesses_than_the_limit() {
    let t = TestApp::spawn(Workers::Manual).await;
    let attacker = browser_from("127.0.0.1");
    // Each attempt fetches its form first, then all twenty posts go at once.
    let mut forms = Vec::new();
    for _ in 0..20 {
        let r = attacker.get(t.url("/login")).send().await.unwrap();
        let (login, _) = set_cookie(&r, "tocsin_login").unwrap();
        forms.push((login, hidden(&r.text().await.unwrap(), "csrf")));
    }
    let mut burst = tokio::task::JoinSet::new();
    for (i, (login, csrf)) in forms.into_iter().enumerate() {
        let (b, url) = (attacker.clone(), t.url("/login"));
        burst.spawn(async move {
            let guess = format!("tocsin_guess{i}");
            let form = [("token", guess.as_str()), ("csrf", &csrf), ("next", "/now")];
            let r = b.post(url).header(header::COOKIE, format!("tocsin_login={login}")).form(&form).send().await;
            r.unwrap().status().as_u16()
        });
    }
    let mut statuses = burst.join_all().await;
    statuses.sort_unstable();
    assert_eq!(statuses, [[401; 10], [429; 10]].concat(), "ten guesses, however they are sent");
}
