//! Timeliness benchmark (not a test): with 100,000 open cases in the store,
//! 10,000 escalation timers fall due within one minute; the real scheduler
//! and dispatcher run on the real store with the system clock, and each
//! timer's lateness is measured against the bar "p99 ≤ 1 s".
//!
//!     cargo run --release --example bench_timeliness -- \
//!         [--database URL] [--cases 100000] [--timers 10000] [--window 60s] [--lead 45s]
//!
//! The open cases are seeded once (reused with `--database`), a year ahead
//! so none of their own timers falls due during the run. The due timers are
//! step 2 of policy "urgent" (5 minutes after a P1 opens): 10,000 P1 cases
//! are opened "five minutes ago, staggered across the window", before the
//! daemon starts, so the scheduler meets them as a real backlog of cases.
//!
//! A timer's lateness is the instant its effects were decided and written
//! (the `created_at` of the step-2 page it queued, taken just before the
//! commit) minus its due instant. The scheduler's own histogram
//! `tocsin_timer_lateness_seconds` (claim to fire) is printed beside it.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, TimeDelta, Utc};
use harness::{Args, spread};
use tocsin::app::{App, Listeners, Workers};
use tocsin::case::decide::NewCase;
use tocsin::case::{Actor, Facts, PageKind, Via};
use tocsin::clock::SystemClock;
use tocsin::escalation::Overrides;
use tocsin::notify::Templates;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cases = args.num("cases", 100_000)?;
    let timers = args.num("timers", 10_000)?;
    let window = TimeDelta::from_std(args.duration("window", Duration::from_secs(60))?)?;
    let lead = TimeDelta::from_std(args.duration("lead", Duration::from_secs(45))?)?;
    let dir = tempfile::tempdir()?;
    let config = harness::config(&args, dir.path());
    let rules = harness::rules(&config)?;
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "timeliness: {cases} open cases, {timers} timers due within {}s; {}; {cores} cores",
        window.num_seconds(),
        config.database.url
    );
    harness::ensure_open_cases(&store, &rules, cases.saturating_sub(timers)).await?;

    // The due timers: P1 cases whose step 2 falls due at T + window·i/timers.
    let wait = TimeDelta::minutes(5);
    let t0 = Utc::now() + lead;
    let (overrides, sms_off) = (Overrides::new(), Default::default());
    let started = std::time::Instant::now();
    let mut due = Vec::with_capacity(timers);
    for i in 0..timers {
        // To the millisecond, as the store keeps instants.
        let at = (t0 + window * (i as i32) / (timers as i32)).trunc_subsecs(3);
        let facts = Facts { rules: &rules, overrides: &overrides, sms_off: &sms_off, now: at - wait };
        let tr = facts
            .open(NewCase {
                subject: format!("Site down {i}"),
                body: "Everything answers 500.".into(),
                requester: format!("ops@hot{}.example", i % 50),
                priority: None,
                actor: Actor::Token("harness".into()),
                via: Via::Api,
                receipt: false,
                unverified: None,
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let case = store.create_case(&tr).await?;
        due.push((case.number, at));
    }
    // Step 1 went out "five minutes ago".
    harness::mark_pages_sent(store.as_ref(), Utc::now()).await?;
    let open = harness::open_cases(store.as_ref()).await?;
    println!("  opened {timers} P1 cases in {:.1?}; {open} open cases in the store", started.elapsed());
    anyhow::ensure!(
        Utc::now() + TimeDelta::seconds(2) < t0,
        "seeding the due timers took longer than --lead {}s; run again with a longer --lead",
        lead.num_seconds()
    );

    let templates = Templates::load(&config.paths.templates).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let listeners = Listeners { http: tokio::net::TcpListener::bind("127.0.0.1:0").await?, smtp: None };
    let app =
        App::start(&config, rules, templates, store.clone(), Arc::new(SystemClock), listeners, Workers::Background)
            .await?;
    println!("  daemon started; first timer due in {:.1}s", (t0 - Utc::now()).num_milliseconds() as f64 / 1000.0);
    let end = t0 + window;
    let give_up = end + TimeDelta::seconds(120);
    let mut fired = app.fired.clone();
    loop {
        let now = Utc::now();
        if (now > end && *fired.borrow() as usize >= timers) || now > give_up {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), fired.changed()).await;
    }
    // Let the dispatcher finish the last pages before reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = app.state.metrics.render();
    app.drain().await;

    let mut late = Vec::with_capacity(timers);
    let mut missing = 0;
    for (number, at) in &due {
        let first = store
            .pages_of(*number)
            .await?
            .into_iter()
            .filter(|p| p.kind == PageKind::Page && p.position.is_some_and(|pos| pos.step == 1 && pos.round == 0))
            .map(|p| p.created_at)
            .min();
        match first {
            Some(fired_at) => late.push((fired_at - *at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6),
            None => missing += 1,
        }
    }
    let s = spread(late.iter().map(|l| l.max(0.0)).collect());
    let early = late.iter().filter(|l| **l < 0.0).count();
    println!("results: {} of {timers} timers fired ({missing} did not, {early} early)", s.n);
    println!(
        "  lateness (page written - due):  p50 {:.3}s   p99 {:.3}s   max {:.3}s   bar: p99 <= 1s -> {}",
        s.p50,
        s.p99,
        s.max,
        if s.p99 <= 1.0 && missing == 0 { "MET" } else { "MISSED" }
    );
    let bucket = |le: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("tocsin_timer_lateness_seconds_bucket") && l.contains(&format!("le=\"{le}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    println!(
        "  scheduler histogram (claim to fire): {} fired, {} within 0.1s, {} within 0.5s, {} within 1s",
        bucket("+Inf"),
        bucket("0.1"),
        bucket("0.5"),
        bucket("1")
    );
    let pages = harness_outbox_files(&config.paths.outbox);
    println!("  outbox files written by the dispatcher meanwhile: {pages}");
    if s.p99 > 1.0 || missing > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn harness_outbox_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}
