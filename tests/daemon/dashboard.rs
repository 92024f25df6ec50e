//! The dashboard over real HTTP: sign-in, sessions, CSRF, who sees what,
//! escaping, acting from a case page, and report figures checked against
//! a seeded history computed by hand.

use chrono::TimeDelta;
use reqwest::header;
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::web::{self, Signed, browser, hidden, page, set_cookie};
use crate::harness::{START, TestApp, at};

/// Signs in through the form and checks the session cookie's attributes.
async fn sign_in(t: &TestApp, token: &str) -> Signed {
    let (signed, attrs) = web::sign_in(t, token).await;
    for a in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(a), "session cookie lacks {a}: {attrs}");
    }
    assert!(!attrs.contains("Secure"), "public_url is http here");
    signed
}

async fn form(t: &TestApp, s: &Signed, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    browser().post(t.url(path)).header(header::COOKIE, &s.cookie).form(fields).send().await.unwrap()
}

#[tokio::test]
async fn without_a_session_every_page_and_action_goes_to_sign_in() {
    let t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&api).await;
    let b = browser();
    for path in ["/", "/now", "/now/live", &format!("/cases/{n}"), "/reports", "/reports/compliance.csv", "/schedules"]
    {
        let r = b.get(t.url(path)).send().await.unwrap();
        assert!(r.status().is_redirection(), "GET {path}: {}", r.status());
        let to = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert!(to.starts_with("/login") || (path == "/" && to == "/now"), "GET {path} went to {to}");
    }
    for path in [format!("/cases/{n}/ack"), "/schedules/overrides".into(), "/logout".into()] {
        let r = b.post(t.url(&path)).form(&[("csrf", "x")]).send().await.unwrap();
        assert_eq!(r.status(), 303, "POST {path}");
        assert!(r.headers()[header::LOCATION].to_str().unwrap().starts_with("/login"));
    }
    // A made-up cookie is no session either.
    let r = b.get(t.url("/now")).header(header::COOKIE, "tocsin_session=forged").send().await.unwrap();
    assert_eq!(r.status(), 303);
    // htmx's refresh is told where to go rather than redirected.
    let r = b.get(t.url("/now/live")).header("HX-Request", "true").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["hx-redirect"].to_str().unwrap().starts_with("/login"));
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &api).await;
    assert_eq!(case["status"], "open", "nothing changed");
}

#[tokio::test]
async fn sign_in_needs_the_form_secret_and_a_person_token_and_sessions_end() {
    let t = TestApp::spawn(Workers::Manual).await;
    let b = browser();
    let manager = t.token("max", TokenRole::Manager, Some("max")).await;
    // No form cookie: a cross-site sign-in attempt.
    let r = b.post(t.url("/login")).form(&[("token", manager.as_str()), ("csrf", "guess")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "tocsin_session").is_none());
    // Unknown and machine tokens.
    let r = b.get(t.url("/login")).send().await.unwrap();
    let (login, _) = set_cookie(&r, "tocsin_login").unwrap();
    let csrf = hidden(&r.text().await.unwrap(), "csrf");
    let try_token = |token: String| {
        let (b, url, login, csrf) = (b.clone(), t.url("/login"), login.clone(), csrf.clone());
        async move {
            b.post(url)
                .header(header::COOKIE, format!("tocsin_login={login}"))
                .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let r = try_token("not-a-token".into()).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("not known"));
    let machine = t.token("mailgun", TokenRole::Integration, None).await;
    assert_eq!(try_token(machine).await.status(), 403);

    let s = sign_in(&t, &manager).await;
    let (status, html) = page(&t, &s, "/now").await;
    assert_eq!(status, 200);
    assert!(html.contains("Max") && html.contains("Sign out"));
    // Sign-out needs the form secret too.
    assert_eq!(form(&t, &s, "/logout", &[("csrf", "wrong")]).await.status(), 403);
    let r = form(&t, &s, "/logout", &[("csrf", &s.csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(page(&t, &s, "/now").await.0, 303, "the session ended");

    // Sessions expire on their own.
    let s = sign_in(&t, &manager).await;
    t.clock.advance(TimeDelta::hours(12) + TimeDelta::seconds(1));
    assert_eq!(page(&t, &s, "/now").await.0, 303, "expired after session_ttl");
}

/// Posts the sign-in form with `next`, as a phishing link that carries its
/// own `next` would have the browser do.
async fn sign_in_with_next(t: &TestApp, token: &str, next: &str) -> reqwest::Response {
    let b = browser();
    let r = b.get(t.url("/login")).send().await.unwrap();
    let (login, _) = set_cookie(&r, "tocsin_login").unwrap();
    let csrf = hidden(&r.text().await.unwrap(), "csrf");
    b.post(t.url("/login"))
        .header(header::COOKIE, format!("tocsin_login={login}"))
        .form(&[("token", token), ("csrf", &csrf), ("next", next)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn after_sign_in_next_never_leads_off_site_and_odd_bytes_are_no_error() {
    let t = TestApp::spawn(Workers::Manual).await;
    let manager = t.token("max", TokenRole::Manager, Some("max")).await;
    // Each of these reads as another site (or a header injection) to a
    // browser that follows the Location.
    let attacks = [
        "/\t/evil.example/phish",
        "//evil.example",
        "/\\evil",
        "https://evil",
        "/\r\nSet-Cookie:x",
        "/%0d%0aSet-Cookie:x",
    ];
    for next in attacks {
        let r = sign_in_with_next(&t, &manager, next).await;
        assert_eq!(r.status(), 303, "POST /login next={next:?}");
        assert_eq!(r.headers()[header::LOCATION], "/now", "POST /login next={next:?}");
    }
    // A same-site path is kept.
    let r = sign_in_with_next(&t, &manager, "/cases?status=open").await;
    assert_eq!(r.headers()[header::LOCATION], "/cases?status=open");

    // GET /login with a live session redirects at once: the same rule.
    let s = sign_in(&t, &manager).await;
    let encoded = [
        "/%09/evil.example/phish",
        "//evil.example",
        "/%5Cevil",
        "https://evil",
        "/%0d%0aSet-Cookie:x",
        "/%250d%250aSet-Cookie:x",
    ];
    for next in encoded {
        let r = browser().get(t.url(&format!("/login?next={next}"))).header(header::COOKIE, &s.cookie).send().await;
        let r = r.unwrap();
        assert_eq!(r.status(), 303, "GET /login?next={next}");
        assert_eq!(r.headers()[header::LOCATION], "/now", "GET /login?next={next}");
    }
    // Without a session the form is shown (never a 500), and it carries the
    // safe fallback rather than the attacker's target.
    let r = browser().get(t.url("/login?next=/%0d%0aSet-Cookie:x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hidden(&r.text().await.unwrap(), "next").replace("&#x2f;", "/"), "/now");
}

#[tokio::test]
async fn engineers_see_their_own_cases_and_no_reports() {
    let t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let mine = t.open_outage(&api).await; // pages ana, on call on primary
    let ben = t.token("ben", TokenRole::Engineer, Some("ben")).await;
    let s = sign_in(&t, &ben).await;
    assert_eq!(page(&t, &s, "/reports").await.0, 403);
    assert_eq!(page(&t, &s, "/reports/compliance.csv").await.0, 403);
    let (status, html) = page(&t, &s, "/now").await;
    assert_eq!(status, 200);
    assert!(!html.contains(&format!("/cases/{mine}\"")), "ben was not paged for #{mine}");
    assert!(!html.contains("href=\"/reports\""), "no Reports link for engineers");
    assert_eq!(page(&t, &s, &format!("/cases/{mine}")).await.0, 404);
    // Once ben is paged (step 2), the case is his to see and act on.
    t.advance(TimeDelta::minutes(5)).await;
    let (_, html) = page(&t, &s, "/now").await;
    assert!(html.contains(&format!("/cases/{mine}\"")), "{html}");
    let (status, html) = page(&t, &s, &format!("/cases/{mine}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Acknowledge"));
    // Overrides are for managers.
    let r = form(
        &t,
        &s,
        "/schedules/overrides",
        &[
            ("csrf", &s.csrf),
            ("schedule", "primary"),
            ("person", "ben"),
            ("start", "2026-11-24T12:00"),
            ("end", "2026-11-24T13:00"),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn acting_from_the_case_page_needs_the_csrf_secret_and_records_the_dashboard() {
    let t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&api).await;
    let ana = t.token("ana", TokenRole::Engineer, Some("ana")).await;
    let s = sign_in(&t, &ana).await;
    let r = form(&t, &s, &format!("/cases/{n}/ack"), &[("text", "on it")]).await;
    assert_eq!(r.status(), 422, "no csrf field at all is a malformed form");
    let r = form(&t, &s, &format!("/cases/{n}/ack"), &[("csrf", "forged"), ("text", "on it")]).await;
    assert_eq!(r.status(), 403);
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &api).await;
    assert_eq!(case["status"], "open", "a forged form changes nothing");

    let r = form(&t, &s, &format!("/cases/{n}/ack"), &[("csrf", &s.csrf), ("text", "on it")]).await;
    assert_eq!(r.status(), 303);
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &api).await;
    assert_eq!(case["status"], "acknowledged");
    assert_eq!(case["assignee"], "ana");
    let ack = case["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "acknowledged").unwrap().clone();
    assert_eq!(ack["channel"], "dashboard");
    // Acknowledging again is refused with the reason, on the page.
    let r = form(&t, &s, &format!("/cases/{n}/ack"), &[("csrf", &s.csrf)]).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("already acknowledged"));
    let r = form(&t, &s, &format!("/cases/{n}/note"), &[("csrf", &s.csrf), ("text", "rebooting db-2")]).await;
    assert_eq!(r.status(), 303);
    let (_, html) = page(&t, &s, &format!("/cases/{n}")).await;
    assert!(html.contains("rebooting db-2") && html.contains("ACKNOWLEDGED"));
}

#[tokio::test]
async fn html_from_customers_is_shown_escaped() {
    let t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let evil = "<script>alert(1)</script> <img src=x onerror=alert(2)> down";
    let (status, case) = t
        .post("/api/v1/cases", &api, json!({"subject": evil, "body": "<b>bold</b>", "requester": "ops@acme.com"}))
        .await;
    assert_eq!(status, 201);
    let n = case["number"].as_i64().unwrap();
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let s = sign_in(&t, &max).await;
    for path in ["/now".to_owned(), format!("/cases/{n}")] {
        let r = browser().get(t.url(&path)).header(header::COOKIE, &s.cookie).send().await.unwrap();
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script>alert") && !html.contains("<img src=x"), "{path} runs customer HTML");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{path} does not show the subject");
    }
    let (_, html) = page(&t, &s, &format!("/cases/{n}")).await;
    assert!(html.contains("&lt;b&gt;bold&lt;"));
}

#[tokio::test]
async fn the_now_page_puts_the_breached_case_first_and_lists_failed_pages() {
    let t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let (_, later) =
        t.post("/api/v1/cases", &api, json!({"subject": "Invoice question", "requester": "ops@acme.com"})).await;
    let urgent = t.open_outage(&api).await;
    t.advance(TimeDelta::minutes(31)).await; // the P1's 30m respond window is gone
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let s = sign_in(&t, &max).await;
    let (_, html) = page(&t, &s, "/now").await;
    let first = html.find(&format!("/cases/{urgent}\"")).unwrap();
    let second = html.find(&format!("/cases/{}\"", later["number"])).unwrap();
    assert!(first < second, "the breached case comes first");
    assert!(html[first..second].contains("BREACHED"), "shown in words, not only colour");
    assert!(!html.contains("UNCONFIRMED"), "the outbox transport gives no delivery reports to wait for");
    assert!(html.contains("On call") && html.contains("primary"));
}

/// Cases of one week on the 24x7 gold plan, by hand:
///
/// | case | opened | acknowledged | waited | resolved | TTA | TTR | breach |
/// | A P1 | Tue 10:00 | 10:04 | – | 11:00 | 240 s | 3600 s | – |
/// | B P2 | Tue 10:00 | 10:10 | 10:10–12:10 | 13:10 | 600 s | 4200 s (3h10m − 2h) | – |
/// | C P1 | Tue 10:00 | 10:40 | – | 12:00 | 2400 s | 7200 s | respond, 10:30 |
/// | D P1 | Tue 23:30 | 23:32 | – | 23:50 | 120 s | 1200 s | – |
///
/// 3 of 4 met (75.0%); P1 2 of 3 (66.7%), P2 1 of 1. MTTA (120+240+600+
/// 2400)/4 = 840 s, p90 (nearest rank 4 of 4) 2400 s; MTTR (1200+3600+4200+
/// 7200)/4 = 4050 s, p90 7200 s. Night-time is on the paged person's clock:
/// C's step 2 paged Dana (New York) at 10:05 and, in round 2, 10:35 UTC —
/// 05:05 and 05:35 for her, two night pages — while D at 23:30 London
/// reached her, on the evening layer, at 18:30 her time: not night.
#[tokio::test]
async fn report_figures_match_a_history_computed_by_hand() {
    let t = TestApp::spawn(Workers::Manual).await;
    assert_eq!(START, "2026-11-24T10:00:00Z");
    let api = t.token("ops", TokenRole::Admin, None).await;
    let open = |subject: &'static str| {
        let t = &t;
        let api = api.clone();
        async move {
            let (status, c) =
                t.post("/api/v1/cases", &api, json!({"subject": subject, "requester": "ops@acme.com"})).await;
            assert_eq!(status, 201, "{c}");
            c["number"].as_i64().unwrap()
        }
    };
    let act = |n: i64, what: &'static str, by: &'static str| {
        let t = &t;
        let api = api.clone();
        async move {
            let (status, c) = t.post(&format!("/api/v1/cases/{n}/{what}"), &api, json!({"by": by})).await;
            assert_eq!(status, 200, "{what} #{n}: {c}");
        }
    };
    let a = open("Site down").await;
    let b = open("Invoice question").await;
    let c = open("Database outage").await;
    t.advance_to("2026-11-24T10:04:00Z").await;
    act(a, "ack", "ana").await;
    t.advance_to("2026-11-24T10:10:00Z").await;
    act(b, "ack", "ben").await;
    act(b, "wait", "ben").await;
    for minute in [15, 20, 30, 35, 40] {
        // Step by step, so each timer fires on its minute (C's respond
        // deadline at 10:30).
        t.advance_to(&format!("2026-11-24T10:{minute}:00Z")).await;
    }
    act(c, "ack", "chen").await;
    t.advance_to("2026-11-24T11:00:00Z").await;
    act(a, "resolve", "ana").await;
    t.advance_to("2026-11-24T11:30:00Z").await;
    let (status, _) =
        t.post(&format!("/api/v1/cases/{c}/notes"), &api, json!({"text": "restoring", "by": "chen"})).await;
    assert_eq!(status, 200);
    t.advance_to("2026-11-24T12:00:00Z").await;
    act(c, "resolve", "chen").await;
    t.advance_to("2026-11-24T12:10:00Z").await;
    act(b, "resume", "ben").await;
    t.advance_to("2026-11-24T13:10:00Z").await;
    act(b, "resolve", "ben").await;
    t.advance_to("2026-11-24T23:30:00Z").await;
    let d = open("Server down").await;
    t.advance_to("2026-11-24T23:32:00Z").await;
    act(d, "ack", "ana").await;
    t.advance_to("2026-11-24T23:50:00Z").await;
    act(d, "resolve", "ana").await;
    t.advance(TimeDelta::minutes(5)).await;

    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let (status, r) = t.get("/api/v1/reports/sla?from=2026-11-23&to=2026-11-29", &max).await;
    assert_eq!(status, 200, "{r}");
    let totals = &r["totals"];
    assert_eq!(totals["opened"], 4);
    assert_eq!((totals["met"].as_i64(), totals["breached"].as_i64()), (Some(3), Some(1)));
    assert_eq!(totals["percent"], 75.0);
    assert_eq!((totals["mtta"].as_i64(), totals["tta_p90"].as_i64()), (Some(840), Some(2400)));
    assert_eq!((totals["mttr"].as_i64(), totals["ttr_p90"].as_i64()), (Some(4050), Some(7200)));
    assert_eq!(totals["night"], 2, "{}", r["pages"]);
    let dana = r["pages"].as_array().unwrap().iter().find(|p| p["person"] == "dana").unwrap().clone();
    assert_eq!((dana["pages"].as_i64(), dana["night"].as_i64()), (Some(3), Some(2)), "{dana}");
    let row = |by: &str, value: &str| -> Value {
        r["compliance"].as_array().unwrap().iter().find(|x| x["by"] == by && x["value"] == value).unwrap().clone()
    };
    assert_eq!((row("priority", "P1")["met"].as_i64(), row("priority", "P1")["breached"].as_i64()), (Some(2), Some(1)));
    assert_eq!(row("priority", "P1")["percent"], 66.7);
    assert_eq!(row("priority", "P2")["percent"], 100.0);
    assert_eq!(row("customer", "Acme")["opened"], 4);
    assert_eq!(row("plan", "gold")["week"], "2026-11-23");
    let breaches = r["breaches"].as_array().unwrap();
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0]["case"], c);
    assert_eq!(breaches[0]["clock"], "respond");
    assert_eq!(breaches[0]["at"], "2026-11-24T10:30:00Z");
    assert!(breaches[0]["cause"].as_str().unwrap().contains("nobody had acknowledged it"));
    let times = r["times"].as_array().unwrap();
    assert_eq!(times.len(), 1, "one week");
    assert_eq!(times[0]["mttr"], 4050);

    // The same figures as CSV, from the API and from the dashboard.
    let csv = t
        .http
        .get(t.url("/api/v1/reports/sla?from=2026-11-23&to=2026-11-29&format=csv&table=times"))
        .bearer_auth(&max)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert_eq!(
        text,
        "week,acknowledged,mtta_seconds,tta_p90_seconds,resolved,mttr_seconds,ttr_p90_seconds,replied,mttfr_seconds,ttfr_p90_seconds\n\
         2026-11-23,4,840,2400,4,4050,7200,0,,\n"
    );
    let s = sign_in(&t, &max).await;
    let (status, html) = page(&t, &s, "/reports?from=2026-11-23&to=2026-11-29").await;
    assert_eq!(status, 200);
    assert!(html.contains("75.0% (3 of 4)") && html.contains("<svg"), "{html}");
    let (status, breaches_csv) = page(&t, &s, "/reports/breaches.csv?from=2026-11-23&to=2026-11-29").await;
    assert_eq!(status, 200);
    assert!(breaches_csv.starts_with("case,subject,customer,priority,plan,clock,at,cause\n"));
    assert!(breaches_csv.contains(&format!("{c},Database outage,Acme,P1,gold,respond,2026-11-24T10:30:00Z,")));

    // Engineers and bad input.
    let ana = t.token("ana", TokenRole::Engineer, Some("ana")).await;
    assert_eq!(t.get("/api/v1/reports/sla", &ana).await.0, 403);
    assert_eq!(t.get("/api/v1/reports/sla?from=yesterday", &max).await.0, 400);
    assert_eq!(t.get("/api/v1/reports/sla?format=xml", &max).await.0, 400);
    let _ = at(START);
}

#[tokio::test]
async fn managers_add_overrides_from_the_schedules_page() {
    let t = TestApp::spawn(Workers::Manual).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let s = sign_in(&t, &max).await;
    let (status, html) = page(&t, &s, "/schedules").await;
    assert_eq!(status, 200);
    assert!(html.contains("primary") && html.contains("Add an override"));
    // A bad form keeps what was typed and says what is wrong.
    let r = form(
        &t,
        &s,
        "/schedules/overrides",
        &[
            ("csrf", &s.csrf),
            ("schedule", "primary"),
            ("person", "ben"),
            ("start", "2026-11-24T14:00"),
            ("end", "2026-11-24T12:00"),
            ("reason", "dentist"),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("end: must be after start") && html.contains("value=\"dentist\""));
    let r = form(
        &t,
        &s,
        "/schedules/overrides",
        &[
            ("csrf", &s.csrf),
            ("schedule", "primary"),
            ("person", "ben"),
            ("start", "2026-11-24T12:00"),
            ("end", "2026-11-24T14:00"),
            ("reason", "dentist"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let (_, list) = t.get("/api/v1/overrides", &max).await;
    assert_eq!(list[0]["person"], "ben");
    assert_eq!(list[0]["start"], "2026-11-24T12:00:00Z", "London wall clock, GMT in November");
    assert_eq!(list[0]["created_by"], "max");
    let (_, html) = page(&t, &s, "/schedules").await;
    assert!(html.contains("dentist") && html.contains("(override)"));
}

#[tokio::test]
async fn reports_read_from_reports_url_when_it_is_set() {
    let mut t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    t.open_outage(&api).await;
    t.stop().await;
    // A replica: a copy of the database as it was then.
    let replica = tempfile::tempdir().unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let from = t.dir.path().join(format!("tocsin.db{suffix}"));
        if from.exists() {
            std::fs::copy(&from, replica.path().join(format!("replica.db{suffix}"))).unwrap();
        }
    }
    t.config.database.reports_url = Some(format!("sqlite://{}", replica.path().join("replica.db").display()));
    t.start(Workers::Manual).await;
    t.open_outage(&api).await;
    let (_, list) = t.get("/api/v1/cases", &api).await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 2, "the main database has both");
    let (status, r) = t.get("/api/v1/reports/sla", &max).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["totals"]["opened"], 1, "reports read the replica, which has one");
}
