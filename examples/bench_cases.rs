//! Finding cases benchmark (not a test): seeds a store with a year of
//! cases (default 100,000), then pages through `GET /api/v1/cases` over
//! real HTTP the way a client does, following each answer's
//! `Link: rel="next"`, and times every page.
//!
//!     cargo run --release --example bench_cases -- [CASES] [--database URL]
//!
//! Seeding goes through the same pure decisions and store calls the daemon
//! uses (open; one case in ten acknowledged, one in three resolved), so the
//! rows are the real shape.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tocsin::app::{App, Listeners, Workers};
use tocsin::case::decide::NewCase;
use tocsin::case::{Actor, Facts, Via};
use tocsin::clock::{Clock, SystemClock};
use tocsin::config::Config;
use tocsin::escalation::Overrides;
use tocsin::notify::Templates;
use tocsin::people::PersonId;
use tocsin::rules::Rules;
use tocsin::store::Store;
use tocsin::token::{self, TokenInfo, TokenRole};

const REQUESTERS: [&str; 6] = [
    "ops@acme.com",
    "it@globex.example",
    "cto@acme.com",
    "help@initech.example",
    "admin@globex.example",
    "x@y.example",
];
const PEOPLE: [&str; 4] = ["ana", "ben", "chen", "dana"];

async fn seed(store: &dyn Store, rules: &Rules, n: usize, now: DateTime<Utc>) -> anyhow::Result<()> {
    let (overrides, sms_off) = (Overrides::new(), BTreeSet::new());
    let facts = |at| Facts { rules, overrides: &overrides, sms_off: &sms_off, now: at };
    let span = TimeDelta::days(365);
    let started = Instant::now();
    for i in 0..n {
        let t = now - span + span * (i as i32) / (n as i32);
        let new = NewCase {
            subject: format!(
                "Problem number {i} {}{}",
                if i % 7 == 0 { "down" } else { "slow" },
                // One case in a thousand mentions a rare word.
                if i % 1000 == 0 { " kerberos" } else { "" }
            ),
            body: format!("Customer report {i}: something is wrong."),
            requester: REQUESTERS[i % REQUESTERS.len()].to_owned(),
            priority: None,
            actor: Actor::Token("bench".into()),
            via: Via::Api,
            receipt: false,
            unverified: None,
        };
        let tr = facts(t).open(new).map_err(|e| anyhow::anyhow!("{e}"))?;
        let case = store.create_case(&tr).await?;
        if i % 10 == 0 {
            let who: PersonId = PEOPLE[i / 10 % PEOPLE.len()].parse().map_err(anyhow::Error::msg)?;
            let tr = facts(t + TimeDelta::minutes(5)).ack(&case, &who, Via::Sms, None)?;
            let acked = store.commit(&tr, case.version, None).await?;
            if i % 30 == 0 {
                let tr = facts(t + TimeDelta::hours(1)).resolve(&acked, &Actor::Person(who), Via::Sms, None)?;
                store.commit(&tr, acked.version, None).await?;
            }
        }
        if (i + 1) % 20_000 == 0 {
            println!("  seeded {} cases in {:.0?}", i + 1, started.elapsed());
        }
    }
    println!("seeded {n} cases in {:.1?}", started.elapsed());
    Ok(())
}

fn stats(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    format!("p50 {:7.1} ms   p95 {:7.1} ms   max {:7.1} ms", p(0.5), p(0.95), p(1.0))
}

/// Follows `Link: rel="next"` from `first` for at most `max_pages`:
/// each page's time, and how many cases came back in all.
async fn walk(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    first: &str,
    max_pages: usize,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut url = Some(format!("{base}{first}"));
    let (mut times, mut cases) = (Vec::new(), 0);
    while let Some(u) = url.take() {
        if times.len() == max_pages {
            break;
        }
        let start = Instant::now();
        let r = http.get(&u).bearer_auth(token).send().await?;
        anyhow::ensure!(r.status().is_success(), "{u}: {}", r.status());
        url = r
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once('>'))
            .map(|(target, _)| format!("{base}{target}"));
        let body: serde_json::Value = r.json().await?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        cases += body["cases"].as_array().map_or(0, Vec::len);
    }
    Ok((times, cases))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let database = args.iter().position(|a| a == "--database").and_then(|i| args.get(i + 1)).cloned();
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database.url = database.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("tocsin.db").display()));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    config.paths.rules = root.join("rules");
    config.paths.templates = root.join("templates");
    config.paths.outbox = dir.path().join("outbox");
    config.secrets.reply_key_file = Some(dir.path().join("reply-key"));
    let rules = tocsin::rules::load(&config.paths.rules).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let now = SystemClock.now();
    println!("database: {}", config.database.url);
    let existing: i64 = store.counts(now).await?.cases_by_status.iter().map(|(_, k)| k).sum();
    if existing >= n as i64 {
        println!("{existing} cases already in the store; not seeding");
    } else {
        seed(store.as_ref(), &rules, n, now).await?;
    }

    let templates = Templates::load(&config.paths.templates).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let listeners = Listeners { http: tokio::net::TcpListener::bind("127.0.0.1:0").await?, smtp: None };
    let app =
        App::start(&config, rules, templates, store.clone(), Arc::new(SystemClock), listeners, Workers::Manual).await?;
    let token_of = async |role: TokenRole, person: Option<&str>| -> anyhow::Result<String> {
        let secret = token::generate();
        let person = person.map(str::parse::<PersonId>).transpose().map_err(anyhow::Error::msg)?;
        let info = TokenInfo::new(format!("bench-{}", &token::hash(&secret)[..8]), role, person);
        store.insert_token(&info, &token::hash(&secret), now).await?;
        Ok(secret)
    };
    let admin = token_of(TokenRole::Admin, None).await?;
    let ana = token_of(TokenRole::Engineer, Some("ana")).await?;
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.addr);
    // Case numbers start at 1001: the oldest 1% lie below this.
    let deep = 1001 + n as i64 / 100;
    let searches = [
        ("everything, newest first", "/api/v1/cases?limit=100".to_owned(), 200, &admin),
        ("everything, deep (the oldest 1%)", format!("/api/v1/cases?limit=100&before={deep}"), 200, &admin),
        ("customer=Acme", "/api/v1/cases?customer=Acme&limit=100".to_owned(), 200, &admin),
        ("status=resolved", "/api/v1/cases?status=resolved&limit=100".to_owned(), 200, &admin),
        (
            "assignee=ana&status=acknowledged",
            "/api/v1/cases?assignee=ana&status=acknowledged&limit=100".to_owned(),
            200,
            &admin,
        ),
        ("requester=cto@acme.com", "/api/v1/cases?requester=cto@acme.com&limit=100".to_owned(), 200, &admin),
        ("q=slow (6 cases in 7)", "/api/v1/cases?q=slow&limit=100".to_owned(), 200, &admin),
        ("q=kerberos (1 in 1,000), to the end", "/api/v1/cases?q=kerberos&limit=20".to_owned(), 1000, &admin),
        ("q=nowhere (no match: a full scan)", "/api/v1/cases?q=nowhere&limit=100".to_owned(), 1, &admin),
        ("an engineer's own (assigned or paged)", "/api/v1/cases?limit=100".to_owned(), 200, &ana),
    ];
    println!("{n} cases in the store; each search followed by its Link headers, one page warmed up first:");
    for (name, first, pages, token) in searches {
        walk(&http, &base, token, &first, 1).await?;
        let mut times = Vec::new();
        let mut cases = 0;
        // Short walks are repeated until there are 20 timings.
        while times.len() < 20 {
            let (t, c) = walk(&http, &base, token, &first, pages).await?;
            times.extend(t);
            cases = c;
        }
        println!("  {name:<40} {:>5} pages {cases:>6} cases   {}", times.len(), stats(times));
    }
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
