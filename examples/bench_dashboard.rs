//! Dashboard render benchmark (not a test): seeds a store with a year of
//! cases (default 100,000; about 2,000 still open, one in twenty breached,
//! every page sent), then times each dashboard page over real HTTP with a
//! signed-in manager's cookie.
//!
//!     cargo run --release --example bench_dashboard -- [CASES] [--database URL]
//!
//! Seeding goes through the same pure decisions and store calls the daemon
//! uses (open, breach, acknowledge, resolve), so the rows are the real
//! shape; it takes a minute or two.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tocsin::app::{App, Listeners, Workers};
use tocsin::case::decide::NewCase;
use tocsin::case::{Actor, Case, Facts, Timer, TimerKind, Via};
use tocsin::clock::{Clock, SystemClock};
use tocsin::config::Config;
use tocsin::escalation::{Overrides, Position};
use tocsin::notify::Templates;
use tocsin::rules::Rules;
use tocsin::sla::SlaClock;
use tocsin::store::{Delivery, Store};
use tocsin::token::{self, TokenInfo, TokenRole};

const REQUESTERS: [&str; 6] = [
    "ops@acme.com",
    "it@globex.example",
    "cto@acme.com",
    "help@initech.example",
    "admin@globex.example",
    "x@y.example",
];

async fn seed(store: &dyn Store, rules: &Rules, n: usize, now: DateTime<Utc>) -> anyhow::Result<Vec<i64>> {
    let (overrides, sms_off) = (Overrides::new(), BTreeSet::new());
    let facts = |at| Facts { rules, overrides: &overrides, sms_off: &sms_off, now: at };
    let ana: tocsin::people::PersonId = "ana".parse().map_err(anyhow::Error::msg)?;
    let span = TimeDelta::days(365);
    let open_tail = n.saturating_sub(2000);
    let mut numbers = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = now - span + span * (i as i32) / (n as i32);
        let new = NewCase {
            subject: format!("Problem number {i} {}", if i % 7 == 0 { "down" } else { "slow" }),
            body: format!("Customer report {i}: something is wrong."),
            requester: REQUESTERS[i % REQUESTERS.len()].to_owned(),
            priority: None,
            actor: Actor::Token("bench".into()),
            via: Via::Api,
            receipt: true,
            unverified: None,
        };
        let tr = facts(t).open(new).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut case: Case = store.create_case(&tr).await?;
        numbers.push(case.number.0);
        if i >= open_tail && i % 3 == 0 {
            continue; // still open, nobody acknowledged
        }
        if i % 20 == 0
            && let Some(due) = case.deadlines.respond
        {
            // A breach: the respond deadline passes first.
            let timer = Timer {
                id: 0,
                case: case.number,
                kind: TimerKind::Deadline(SlaClock::Respond),
                due,
                position: Position::FIRST,
            };
            let tr = facts(due).fire(&case, &timer);
            case = store.commit(&tr, case.version, None).await?;
        }
        let ack_at = t + TimeDelta::minutes((i % 40) as i64 + 1);
        let ack_at =
            case.deadlines.respond.map_or(ack_at, |d| if i % 20 == 0 { d + TimeDelta::minutes(5) } else { ack_at });
        let tr = facts(ack_at).ack(&case, &ana, Via::Sms, None).map_err(|e| anyhow::anyhow!("{e}"))?;
        case = store.commit(&tr, case.version, None).await?;
        if i >= open_tail {
            continue; // acknowledged, still open
        }
        let tr = facts(ack_at + TimeDelta::minutes(90))
            .resolve(&case, &Actor::Person(ana.clone()), Via::Sms, None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        store.commit(&tr, case.version, None).await?;
        if i % 10_000 == 9_999 {
            println!("  seeded {} cases in {:.0?}", i + 1, started.elapsed());
        }
    }
    // Every message went out.
    let owner = "bench-seed";
    let mut sent = 0;
    loop {
        let batch = store.claim_pages(now, owner, TimeDelta::minutes(5), 2000).await?;
        if batch.is_empty() {
            break;
        }
        let outcomes: Vec<(i64, Delivery)> =
            batch.iter().map(|p| (p.id, Delivery::Sent { provider_id: None, message_id: None })).collect();
        sent += store.finish_pages(owner, &outcomes, now).await?;
    }
    println!("seeded {n} cases and {sent} sent pages in {:.1?}", started.elapsed());
    Ok(numbers)
}

fn stats(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let p = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    format!("p50 {:7.1} ms   p95 {:7.1} ms   max {:7.1} ms", p(0.5), p(0.95), p(1.0))
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
    let numbers = if existing >= n as i64 {
        // A database seeded by an earlier run (--database): measure it again.
        println!("{existing} cases already in the store; not seeding");
        let newest = store.cases(None, 1).await?.first().map_or(1, |c| c.number.0);
        vec![newest / 2 + 1, newest]
    } else {
        seed(store.as_ref(), &rules, n, now).await?
    };

    let templates = Templates::load(&config.paths.templates).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let listeners = Listeners { http: tokio::net::TcpListener::bind("127.0.0.1:0").await?, smtp: None };
    let app =
        App::start(&config, rules, templates, store.clone(), Arc::new(SystemClock), listeners, Workers::Manual).await?;
    let secret = token::generate();
    let info = TokenInfo::new(
        format!("bench-{}", &token::hash(&secret)[..8]),
        TokenRole::Manager,
        Some("max".parse().map_err(anyhow::Error::msg)?),
    );
    store.insert_token(&info, &token::hash(&secret), now).await?;
    let session = token::generate();
    store.create_session(&token::hash(&session), &token::hash(&secret), "csrf", now + TimeDelta::hours(1), now).await?;
    let cookie = format!("tocsin_session={session}");
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.addr);
    let year_ago = (now - TimeDelta::days(364)).date_naive();
    let pages = vec![
        ("/now".to_owned(), "Now (every open case)"),
        ("/now/live".to_owned(), "Now, live part"),
        (format!("/cases/{}", numbers[numbers.len() / 2]), "Case"),
        (format!("/cases/{}", numbers[numbers.len() - 1]), "Case (open)"),
        ("/reports".to_owned(), "Reports, last 4 weeks"),
        (format!("/reports?from={year_ago}"), "Reports, whole year"),
        ("/reports/compliance.csv".to_owned(), "CSV, last 4 weeks"),
        ("/schedules".to_owned(), "Schedules"),
    ];
    println!("{n} cases in the store; 20 sequential requests per page (after one warm-up):");
    for (path, name) in pages {
        let mut times = Vec::new();
        for k in 0..21 {
            let start = Instant::now();
            let r = http.get(format!("{base}{path}")).header("cookie", &cookie).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            anyhow::ensure!(status.is_success(), "{path}: {status}");
            if k > 0 {
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            } else if k == 0 {
                print!("  {name:<26} {:>8} bytes  ", body.len());
            }
        }
        println!("{}", stats(times));
    }
    app.stop().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
