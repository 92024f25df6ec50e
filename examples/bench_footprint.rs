//! Footprint benchmark (not a test): the real release binary `tocsin serve`
//! on a store holding 100,000 open cases. Reports start-up time (spawn to
//! `GET /healthz` answering 200) and resident memory (VmRSS, and the peak
//! VmHWM, from /proc/PID/status) after start and after some load, against
//! the bar "≤ 64 MiB resident, start-up ≤ 1 s".
//!
//!     cargo run --release --example bench_footprint -- [--database URL] [--cases 100000]
//!
//! The cases are seeded once in-process (reused with `--database`). The
//! daemon is started three times (start-up measured each time); the third
//! run is loaded with 1,000 `POST /api/v1/cases`, 2,000 `GET
//! /api/v1/cases/{n}`, 20 lists of open cases and 500 mails over SMTP
//! (8 clients each), then stopped with SIGTERM.

mod harness;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Args, proc_kib};
use rand::Rng;

const MIB: f64 = 1024.0;

fn memory(pid: u32) -> (f64, f64) {
    let kib = |f| proc_kib(pid, f).map_or(f64::NAN, |k| k as f64 / MIB);
    (kib("VmRSS"), kib("VmHWM"))
}

async fn smtp_mail(port: u16, i: usize) -> anyhow::Result<bool> {
    let from = format!("user{i}@customer{}.example", i % 50);
    let id = format!("fp{i}.{}@load.example", rand::rng().random::<u32>());
    Ok(harness::send_mail(port, &from, &format!("Footprint mail {i}"), &id).await?.starts_with("250"))
}

struct Run {
    child: Child,
    started: Duration,
}

async fn start(
    bin: &std::path::Path,
    config: &std::path::Path,
    port: u16,
    log: &std::path::Path,
) -> anyhow::Result<Run> {
    let http = reqwest::Client::new();
    let spawned = Instant::now();
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let Some(_) = harness::wait_healthy(&http, port, Duration::from_secs(60)).await else {
        anyhow::bail!("tocsin serve did not answer /healthz within 60s; see {}", log.display());
    };
    Ok(Run { child, started: spawned.elapsed() })
}

fn stop(run: &mut Run) -> anyhow::Result<(Option<i32>, Duration)> {
    let at = Instant::now();
    Command::new("kill").args(["-TERM", &run.child.id().to_string()]).status()?;
    let status = run.child.wait()?;
    Ok((status.code(), at.elapsed()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cases = args.num("cases", 100_000)?;
    let dir = tempfile::tempdir()?;
    let config = harness::config(&args, dir.path());
    let rules = harness::rules(&config)?;
    {
        let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
        println!("footprint: {}", config.database.url);
        let open = harness::ensure_open_cases(&store, &rules, cases).await?;
        println!("  {open} open cases in the store");
    }
    let bin = harness::release_binary()?;
    let (http_port, smtp_port) = (harness::free_port()?, harness::free_port()?);
    // Load from 50 domains would reach the new-case limits; off, so every
    // mail opens a case as before.
    let limits_off = "[email]\nnew_cases_per_sender_per_hour = 0\nnew_cases_per_domain_per_hour = 0\n";
    let file =
        harness::write_config(dir.path(), &config.database.url, http_port, smtp_port, &config.paths.rules, limits_off)?;
    let token = Command::new(&bin)
        .args(["token", "create", "--name", &format!("footprint-{}", rand::rng().random::<u32>()), "--role", "admin"])
        .arg("--config")
        .arg(&file)
        .output()?;
    anyhow::ensure!(token.status.success(), "token create: {}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let log = dir.path().join("serve.log");

    let mut starts = Vec::new();
    for _ in 0..2 {
        let mut run = start(&bin, &file, http_port, &log).await?;
        starts.push(run.started);
        stop(&mut run)?;
    }
    let mut run = start(&bin, &file, http_port, &log).await?;
    starts.push(run.started);
    let pid = run.child.id();
    let startup: Vec<String> = starts.iter().map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0)).collect();
    println!("  start-up (spawn to /healthz 200), three starts: {}", startup.join(", "));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss0, hwm0) = memory(pid);
    println!("  after start (1 s idle):   VmRSS {rss0:.1} MiB   VmHWM {hwm0:.1} MiB");

    // Load: POSTs, GETs, lists, mails; 8 clients each.
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http_port}");
    let load = Instant::now();
    let mut posts = Vec::new();
    for c in 0..8 {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        posts.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for i in 0..125 {
                let body = serde_json::json!({"subject": format!("Load {c}/{i}: checkout is slow"), "body": "Slow.", "requester": "ops@acme.com"});
                if let Ok(r) = http.post(format!("{base}/api/v1/cases")).bearer_auth(&token).json(&body).send().await
                    && let Ok(v) = r.json::<serde_json::Value>().await
                    && let Some(n) = v["number"].as_i64()
                {
                    numbers.push(n);
                }
            }
            numbers
        }));
    }
    let mut numbers = Vec::new();
    for p in posts {
        numbers.extend(p.await?);
    }
    anyhow::ensure!(!numbers.is_empty(), "no POST succeeded");
    let mut gets = Vec::new();
    for _ in 0..8 {
        let (http, base, token, numbers) = (http.clone(), base.clone(), token.clone(), numbers.clone());
        gets.push(tokio::spawn(async move {
            let mut ok = 0;
            for k in 0..250 {
                let n = numbers[rand::rng().random_range(0..numbers.len())];
                let path =
                    if k % 100 == 0 { "/api/v1/cases?status=open".to_owned() } else { format!("/api/v1/cases/{n}") };
                if let Ok(r) = http.get(format!("{base}{path}")).bearer_auth(&token).send().await
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut mails = Vec::new();
    for c in 0..8 {
        mails.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in 0..63 {
                if smtp_mail(smtp_port, c * 1000 + i).await.unwrap_or(false) {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let (mut got, mut mailed) = (0, 0);
    for g in gets {
        got += g.await?;
    }
    for m in mails {
        mailed += m.await?;
    }
    println!("  load: {} POST 201, {got} GET 200, {mailed} mails 250 in {:.1?}", numbers.len(), load.elapsed());
    let (rss1, hwm1) = memory(pid);
    println!("  after load:               VmRSS {rss1:.1} MiB   VmHWM {hwm1:.1} MiB");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss2, hwm2) = memory(pid);
    println!("  5 s later (dispatcher done): VmRSS {rss2:.1} MiB   VmHWM {hwm2:.1} MiB");
    let (code, took) = stop(&mut run)?;
    println!("  SIGTERM: exit status {code:?} after {took:.1?}");
    let worst = starts.iter().max().copied().unwrap_or_default();
    let memory_ok = hwm1.max(hwm2) <= 64.0;
    let start_ok = worst <= Duration::from_secs(1);
    println!(
        "results: peak resident {:.1} MiB (bar 64 MiB: {}); slowest start-up {:.0} ms (bar 1 s: {})",
        hwm1.max(hwm2),
        if memory_ok { "MET" } else { "MISSED" },
        worst.as_secs_f64() * 1000.0,
        if start_ok { "MET" } else { "MISSED" }
    );
    if !(memory_ok && start_ok) {
        std::process::exit(1);
    }
    Ok(())
}
