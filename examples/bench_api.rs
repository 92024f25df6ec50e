//! HTTP API benchmark (not a test): requests per second and latency of
//! `POST /api/v1/cases` and `GET /api/v1/cases/{n}` with several concurrent
//! clients against the whole daemon (in-process, scheduler and dispatcher
//! running, pages delivered into the outbox folder meanwhile).
//!
//!     cargo run --release --example bench_api -- [--database URL] [--clients 16] [--seconds 10]
//!
//! Each phase runs for `--seconds`; every client sends its next request as
//! soon as the last one is answered (keep-alive connections). The GETs read
//! the cases the POSTs created, chosen at random.

mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Args, spread};
use rand::Rng;
use tocsin::app::{App, Listeners, Workers};
use tocsin::clock::SystemClock;
use tocsin::notify::Templates;
use tocsin::token::{self, TokenInfo, TokenRole};

/// What one phase measured.
struct Phase {
    ok: usize,
    errors: usize,
    secs: f64,
    /// Latency of each successful request, in milliseconds.
    ms: Vec<f64>,
    /// Case numbers created (POST).
    created: Vec<i64>,
}

async fn phase(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    clients: usize,
    length: Duration,
    gets: Option<Arc<Vec<i64>>>,
) -> Phase {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base, token, gets) = (http.clone(), base.to_owned(), token.to_owned(), gets.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Phase { ok: 0, errors: 0, secs: 0.0, ms: Vec::new(), created: Vec::new() };
            let mut i = 0usize;
            while start.elapsed() < length {
                i += 1;
                let sent = Instant::now();
                let request = match &gets {
                    Some(numbers) => {
                        let n = numbers[rand::rng().random_range(0..numbers.len())];
                        http.get(format!("{base}/api/v1/cases/{n}"))
                    }
                    None => http.post(format!("{base}/api/v1/cases")).json(&serde_json::json!({
                        "subject": format!("Checkout is slow for client {c} ({i})"),
                        "body": "Pages take ten seconds to load since this morning.",
                        "requester": format!("ops{}@acme.com", i % 20),
                    })),
                };
                let answer = request.bearer_auth(&token).send().await;
                let Ok(r) = answer else {
                    out.errors += 1;
                    continue;
                };
                let status = r.status().as_u16();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                let good = if gets.is_some() { status == 200 } else { status == 201 };
                if good {
                    out.ok += 1;
                    out.ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                    if let Some(n) = body["number"].as_i64().filter(|_| gets.is_none()) {
                        out.created.push(n);
                    }
                } else {
                    out.errors += 1;
                }
            }
            out
        }));
    }
    let mut all = Phase { ok: 0, errors: 0, secs: 0.0, ms: Vec::new(), created: Vec::new() };
    for t in tasks {
        if let Ok(p) = t.await {
            all.ok += p.ok;
            all.errors += p.errors;
            all.ms.extend(p.ms);
            all.created.extend(p.created);
        }
    }
    all.secs = start.elapsed().as_secs_f64();
    all
}

fn report(name: &str, p: &Phase) {
    let s = spread(p.ms.clone());
    println!(
        "  {name:<24} {:>7} ok {:>4} errors in {:.1}s = {:>6.0} req/s   p50 {:6.1} ms   p99 {:6.1} ms   max {:6.1} ms",
        p.ok,
        p.errors,
        p.secs,
        p.ok as f64 / p.secs,
        s.p50,
        s.p99,
        s.max
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let clients = args.num("clients", 16)?;
    let length = Duration::from_secs(args.num("seconds", 10)? as u64);
    let dir = tempfile::tempdir()?;
    let config = harness::config(&args, dir.path());
    let rules = harness::rules(&config)?;
    let templates = Templates::load(&config.paths.templates).map_err(|d| anyhow::anyhow!("{d:?}"))?;
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "api: {clients} concurrent clients, {}s per phase; {}; {cores} cores",
        length.as_secs(),
        config.database.url
    );
    let listeners = Listeners { http: tokio::net::TcpListener::bind("127.0.0.1:0").await?, smtp: None };
    let app =
        App::start(&config, rules, templates, store.clone(), Arc::new(SystemClock), listeners, Workers::Background)
            .await?;
    let secret = token::generate();
    let name = format!("bench-api-{}", &token::hash(&secret)[..8]);
    store
        .insert_token(&TokenInfo::new(name, TokenRole::Admin, None), &token::hash(&secret), chrono::Utc::now())
        .await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let base = format!("http://{}", app.addr);

    let post = phase(&http, &base, &secret, clients, length, None).await;
    report("POST /api/v1/cases", &post);
    anyhow::ensure!(!post.created.is_empty(), "no case was created; nothing to read");
    let numbers = Arc::new(post.created.clone());
    let get = phase(&http, &base, &secret, clients, length, Some(numbers)).await;
    report("GET /api/v1/cases/{n}", &get);
    println!("  (each POST opens a case: routing, deadlines, timers, a receipt and a page in one transaction)");
    app.drain().await;
    Ok(())
}
