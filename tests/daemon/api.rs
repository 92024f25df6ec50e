//! The HTTP contract: authentication, roles, and bad input answered with a
//! 4xx and a reason, never a 500.

use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

#[tokio::test]
async fn no_token_or_an_unknown_token_is_401_with_a_challenge() {
    let t = TestApp::spawn(Workers::Manual).await;
    let r = t.http.get(t.url("/api/v1/cases")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"tocsin\"");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("tocsin token create"));
    assert_eq!(t.get("/api/v1/cases", "tocsin_forged").await.0, 401);
}

#[tokio::test]
async fn acting_for_someone_else_needs_an_admin_or_integration_token() {
    let t = TestApp::spawn(Workers::Manual).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let n = t.open_outage(&ana).await;
    let (s, e) = t.post(&format!("/api/v1/cases/{n}/ack"), &ana, json!({"by": "ben"})).await;
    assert_eq!(s, 403, "{e}");
    assert!(e["error"].as_str().unwrap().contains("may not act for someone else"));

    let admin = t.token("ops", TokenRole::Admin, None).await;
    let (s, e) = t.post(&format!("/api/v1/cases/{n}/ack"), &admin, json!({})).await;
    assert_eq!(s, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("acknowledging needs a person"));
    let (s, e) = t.post(&format!("/api/v1/cases/{n}/ack"), &admin, json!({"by": "nobody"})).await;
    assert_eq!(s, 422, "{e}");

    let hook = t.token("monitoring", TokenRole::Integration, None).await;
    let (s, case) = t.post(&format!("/api/v1/cases/{n}/ack"), &hook, json!({"by": "ben"})).await;
    assert_eq!(s, 200, "{case}");
    assert_eq!(case["assignee"], "ben");
    let ack = case["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "acknowledged").unwrap().clone();
    assert_eq!(ack["actor"], "ben");
    assert_eq!(ack["channel"], "api");
    // A token without a person acts under its own name.
    let (_, case) = t.post(&format!("/api/v1/cases/{n}/notes"), &hook, json!({"text": "alert cleared"})).await;
    assert_eq!(case["timeline"].as_array().unwrap().last().unwrap()["actor"], "token:monitoring");
}

#[tokio::test]
async fn an_engineer_sees_and_changes_only_cases_that_paged_them_or_are_theirs() {
    let t = TestApp::spawn(Workers::Manual).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let ana = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let ben = t.token("ben-phone", TokenRole::Engineer, Some("ben")).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    // Ana is on call: the case pages her, not Ben.
    let n = t.open_outage(&admin).await;
    let path = format!("/api/v1/cases/{n}");
    assert_eq!(t.get(&path, &ana).await.0, 200);
    assert_eq!(t.get(&path, &max).await.0, 200);
    // To Ben it does not exist: the same 404 as for a case that does not.
    let (s, e) = t.get(&path, &ben).await;
    assert_eq!((s, e["error"].as_str()), (404, Some(format!("no case #{n}").as_str())));
    for action in ["ack", "notes", "resolve", "escalate", "wait"] {
        let body = if action == "escalate" { json!({}) } else { json!({"text": "mine now"}) };
        let (s, e) = t.post(&format!("{path}/{action}"), &ben, body).await;
        assert_eq!(s, 404, "{action}: {e}");
    }
    let r = t.http.patch(t.url(&path)).bearer_auth(&ben).json(&json!({"priority": "P3"})).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let (_, list) = t.get("/api/v1/cases", &ben).await;
    assert_eq!(list["cases"].as_array().map(Vec::len), Some(0), "{list}");
    let (_, list) = t.get("/api/v1/cases", &ana).await;
    assert_eq!(list["cases"].as_array().map(Vec::len), Some(1), "{list}");
    // Nothing Ben tried changed the case.
    let (_, case) = t.get(&path, &admin).await;
    assert_eq!((case["status"].as_str(), case["priority"].as_str()), (Some("open"), Some("P1")), "{case}");
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_with_a_reason() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut r = t.http.post(t.url("/api/v1/cases")).bearer_auth(&tok).body(body);
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.send()
    };
    let cases: [(&str, Option<&str>, u16); 5] = [
        ("{\"subject\": ", Some("application/json"), 400),
        ("{\"subject\": 5, \"requester\": \"a@b.com\"}", Some("application/json"), 422),
        ("{\"subject\": \"x\"}", Some("application/json"), 422),
        ("{\"subject\": \"x\", \"requester\": \"a@b.com\", \"colour\": \"red\"}", Some("application/json"), 422),
        ("{\"subject\": \"x\", \"requester\": \"a@b.com\"}", None, 415),
    ];
    for (body, ct, want) in cases {
        let r = raw(body, ct).await.unwrap();
        assert_eq!(r.status().as_u16(), want, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(!v["error"].as_str().unwrap().is_empty(), "{body}: {v}");
    }
    let bad_fields = [
        json!({"subject": "", "requester": "ops@acme.com"}),
        json!({"subject": "x".repeat(501), "requester": "ops@acme.com"}),
        json!({"subject": "two\nlines", "requester": "ops@acme.com"}),
        json!({"subject": "x", "requester": "not an address"}),
        json!({"subject": "x", "requester": "ops@acme.com", "priority": "P9"}),
        json!({"subject": "x", "requester": "ops@acme.com", "priority": "P 1"}),
        json!({"subject": "x", "requester": "ops@acme.com", "body": "y".repeat(100_001)}),
    ];
    for body in bad_fields {
        let (s, e) = t.post("/api/v1/cases", &tok, body.clone()).await;
        assert_eq!(s, 422, "{body}: {e}");
        assert!(e["error"].is_string());
    }
    let (s, e) =
        t.post("/api/v1/cases", &tok, json!({"subject": "x", "requester": "ops@acme.com", "priority": "P9"})).await;
    assert_eq!(s, 422);
    assert!(e["error"].as_str().unwrap().contains("use one of P1, P2, P3"), "{e}");
    let huge = "x".repeat(tocsin::http::BODY_LIMIT + 1);
    let r = t
        .http
        .post(t.url("/api/v1/cases"))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn unknown_cases_routes_and_statuses_are_4xx() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    assert_eq!(t.get("/api/v1/cases/9999", &tok).await.0, 404);
    assert_eq!(t.post("/api/v1/cases/9999/ack", &tok, json!({})).await.0, 404);
    assert_eq!(t.get("/api/v1/cases/abc", &tok).await.0, 400);
    assert_eq!(t.get("/api/v1/cases/99999999999999999999", &tok).await.0, 400);
    assert_eq!(t.get("/api/v1/cases?status=sleeping", &tok).await.0, 400);
    let (s, e) = t.get("/api/v1/nothing", &tok).await;
    assert_eq!(s, 404);
    assert!(e["error"].is_string());
    let n = t.open_outage(&tok).await;
    let (s, e) = t.post(&format!("/api/v1/cases/{n}/notes"), &tok, json!({"text": "   "})).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(t.post(&format!("/api/v1/cases/{n}/reopen"), &tok, json!({})).await.0, 409);
    assert_eq!(t.post(&format!("/api/v1/cases/{n}/escalate"), &tok, json!({"step": 0})).await.0, 422);
}

#[tokio::test]
async fn cases_are_listed_newest_first_and_filtered_by_status() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    let a = t.open_outage(&tok).await;
    let b = t.open_outage(&tok).await;
    t.post(&format!("/api/v1/cases/{a}/ack"), &tok, json!({})).await;
    let (s, all) = t.get("/api/v1/cases", &tok).await;
    assert_eq!(s, 200);
    let numbers: Vec<i64> = all["cases"].as_array().unwrap().iter().map(|c| c["number"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [b, a]);
    let (_, open) = t.get("/api/v1/cases?status=open", &tok).await;
    assert_eq!(open["cases"].as_array().unwrap().len(), 1);
    assert_eq!(open["cases"][0]["number"], b);
    // A case from a sender no customer owns gets the default plan.
    let (_, c) =
        t.post("/api/v1/cases", &tok, json!({"subject": "question", "requester": "someone@elsewhere.org"})).await;
    assert_eq!(c["plan"], "standard");
    assert_eq!(c["customer"], Value::Null);
    assert_eq!(c["priority"], "P3");
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_opens_one_case() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("monitoring", TokenRole::Integration, None).await;
    let outage = json!({"subject": "Site down", "body": "All 500s", "requester": "ops@acme.com"});
    let send = |key: &'static str, token: &str, body: &Value| {
        t.http.post(t.url("/api/v1/cases")).bearer_auth(token).header("idempotency-key", key).json(body).send()
    };
    let first = send("alert-7f3a", &tok, &outage).await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = first.json().await.unwrap();
    // The answer was lost; the client sends the same request again.
    let again = send("alert-7f3a", &tok, &outage).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"].to_str().unwrap(), location);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["number"], first["number"]);
    let (_, all) = t.get("/api/v1/cases", &tok).await;
    assert_eq!(all["cases"].as_array().unwrap().len(), 1, "one case: {all}");
    let opened = again["timeline"].as_array().unwrap().iter().filter(|e| e["kind"] == "opened").count();
    assert_eq!(opened, 1);
    // The same key for a different request is a mistake, said so.
    let other = json!({"subject": "Disk full", "requester": "ops@acme.com"});
    let (s, e) = {
        let r = send("alert-7f3a", &tok, &other).await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, 422, "{e}");
    let said = e["error"].as_str().unwrap();
    assert!(
        said.contains("already used for a different request") && said.contains(&first["number"].to_string()),
        "{said}"
    );
    // Keys belong to one token: another client's key of the same text is its own.
    let other_client = t.token("web-form", TokenRole::Integration, None).await;
    let r = send("alert-7f3a", &other_client, &outage).await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_ne!(r.json::<Value>().await.unwrap()["number"], first["number"]);
    // A malformed key is refused before anything is opened.
    for bad in ["", "with space", &"k".repeat(256)] {
        let r = t
            .http
            .post(t.url("/api/v1/cases"))
            .bearer_auth(&tok)
            .header("idempotency-key", bad)
            .json(&outage)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad:?}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains("Idempotency-Key must be"), "{e}");
    }
    let (_, all) = t.get("/api/v1/cases", &tok).await;
    assert_eq!(all["cases"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn racing_retries_with_one_idempotency_key_open_one_case() {
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("monitoring", TokenRole::Integration, None).await;
    let outage = json!({"subject": "Site down", "requester": "ops@acme.com"});
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let send =
            t.http.post(t.url("/api/v1/cases")).bearer_auth(&tok).header("idempotency-key", "same").json(&outage);
        tries.spawn(send.send());
    }
    let mut numbers = std::collections::BTreeSet::new();
    while let Some(r) = tries.join_next().await {
        let r = r.unwrap().unwrap();
        assert_eq!(r.status(), 201);
        numbers.insert(r.json::<Value>().await.unwrap()["number"].as_i64().unwrap());
    }
    assert_eq!(numbers.len(), 1, "{numbers:?}");
}

#[tokio::test]
async fn health_metrics_and_openapi_are_served() {
    // The metrics recorder is process-wide: other daemons in this binary
    // would add to the counts checked here.
    if !in_own_process("api::health_metrics_and_openapi_are_served") {
        return;
    }
    let t = TestApp::spawn(Workers::Manual).await;
    let tok = t.token("ana-phone", TokenRole::Engineer, Some("ana")).await;
    t.open_outage(&tok).await;
    t.app().tick().await.unwrap();
    t.advance(chrono::TimeDelta::minutes(5)).await;
    for path in ["/healthz", "/readyz"] {
        assert_eq!(t.http.get(t.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
    let metrics = t.http.get(t.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for want in [
        "tocsin_cases{status=\"open\"} 1",
        "tocsin_pages{channel=\"sms\",status=\"sent\"} 3",
        "tocsin_scheduler_timers{state=\"pending\"}",
        "tocsin_timer_lateness_seconds_bucket{le=\"1\"} 1",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
    let spec: Value = t.http.get(t.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    for path in
        ["/api/v1/cases", "/api/v1/cases/{number}", "/api/v1/cases/{number}/ack", "/api/v1/cases/{number}/escalate"]
    {
        assert!(spec["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
}

#[tokio::test]
async fn with_a_metrics_token_configured_metrics_need_that_bearer_token() {
    let t = TestApp::spawn_configured(Workers::Manual, START, &repo().join("rules"), |c| {
        c.server.metrics_token_env = Some(METRICS_TOKEN_ENV.into());
    })
    .await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    let scrape = |bearer: Option<String>| {
        let mut r = t.http.get(t.url("/metrics"));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        async move { r.send().await.unwrap() }
    };
    // No token, a wrong one, one a byte short, and an API token: all 401.
    let r = scrape(None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"tocsin\"");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("metrics_token_env"), "{body}");
    let short = METRICS_TOKEN[..METRICS_TOKEN.len() - 1].to_owned();
    for wrong in ["guess".to_owned(), short, admin] {
        assert_eq!(scrape(Some(wrong.clone())).await.status(), 401, "{wrong}");
    }
    let r = scrape(Some(METRICS_TOKEN.into())).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("tocsin_cases"));
    // The rest of the health routes stay open for probes.
    assert_eq!(t.http.get(t.url("/healthz")).send().await.unwrap().status(), 200);

    // Without the setting, /metrics is open as before.
    let open = TestApp::spawn(Workers::Manual).await;
    assert_eq!(open.http.get(open.url("/metrics")).send().await.unwrap().status(), 200);
}
