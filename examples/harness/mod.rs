//! What the proof harness examples share: arguments, the store to run on,
//! fast seeding of open cases, percentiles, and the real release binary.
//! Each example pulls it in with `mod harness;`.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tocsin::case::decide::NewCase;
use tocsin::case::{Actor, Facts, Via};
use tocsin::config::Config;
use tocsin::escalation::Overrides;
use tocsin::rules::Rules;
use tocsin::store::{Delivery, Store};

/// Command-line arguments: `--name value` options and bare numbers.
pub struct Args {
    args: Vec<String>,
}

impl Args {
    pub fn parse() -> Args {
        Args { args: std::env::args().skip(1).collect() }
    }

    /// The value after `--name`.
    pub fn opt(&self, name: &str) -> Option<String> {
        let flag = format!("--{name}");
        self.args.iter().position(|a| *a == flag).and_then(|i| self.args.get(i + 1)).cloned()
    }

    /// Bare numbers (not the value of an option), in order.
    pub fn positional(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut skip = false;
        for a in &self.args {
            if std::mem::take(&mut skip) {
                continue;
            }
            if a.starts_with("--") {
                skip = true;
            } else if let Ok(n) = a.replace('_', "").parse() {
                out.push(n);
            }
        }
        out
    }

    /// `--name N`, else `default`.
    pub fn num(&self, name: &str, default: usize) -> anyhow::Result<usize> {
        match self.opt(name) {
            Some(v) => v.replace('_', "").parse().map_err(|_| anyhow::anyhow!("--{name} {v:?} is not a number")),
            None => Ok(default),
        }
    }

    /// `--name 90s`, else `default`.
    pub fn duration(&self, name: &str, default: Duration) -> anyhow::Result<Duration> {
        match self.opt(name) {
            Some(v) => humantime::parse_duration(&v).map_err(|e| anyhow::anyhow!("--{name} {v:?}: {e}")),
            None => Ok(default),
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A config on `--database URL` (default: a SQLite file in `dir`), the
/// shipped rules and templates, and the outbox in `dir`.
pub fn config(args: &Args, dir: &Path) -> Config {
    let mut config = Config::default();
    config.database.url =
        args.opt("database").unwrap_or_else(|| format!("sqlite://{}", dir.join("tocsin.db").display()));
    config.paths.rules = repo().join("rules");
    config.paths.templates = repo().join("templates");
    config.paths.outbox = dir.join("outbox");
    // The reply key is never in the database; PostgreSQL needs it named.
    config.secrets.reply_key_file = Some(dir.join("reply-key"));
    config
}

pub fn rules(config: &Config) -> anyhow::Result<Rules> {
    tocsin::rules::load(&config.paths.rules).map_err(|d| anyhow::anyhow!("{d:?}"))
}

/// Cases not yet resolved.
pub async fn open_cases(store: &dyn Store) -> anyhow::Result<i64> {
    let counts = store.counts(Utc::now()).await?;
    Ok(counts
        .cases_by_status
        .iter()
        .filter(|(s, _)| !matches!(s.as_str(), "resolved" | "closed"))
        .map(|(_, n)| n)
        .sum())
}

/// Opens `n` cases through the daemon's own decisions and store calls, as
/// if they arrived at `at`, then marks every page they queued as sent (so
/// a daemon started on the store has no backlog to deliver). Seeded a year
/// ahead, none of their timers falls due during a run.
pub async fn seed_open_cases(store: &dyn Store, rules: &Rules, n: usize, at: DateTime<Utc>) -> anyhow::Result<()> {
    let (overrides, sms_off) = (Overrides::new(), BTreeSet::new());
    let started = Instant::now();
    for i in 0..n {
        let facts = Facts { rules, overrides: &overrides, sms_off: &sms_off, now: at };
        let tr = facts.open(NewCase {
            subject: format!("Seeded problem {i}: the nightly export is slow"),
            body: format!("Customer report {i}."),
            requester: format!("user{}@customer{}.example", i % 1000, i % 50),
            priority: None,
            actor: Actor::Token("harness".into()),
            via: Via::Api,
            receipt: false,
            unverified: None,
        });
        store.create_case(&tr.map_err(|e| anyhow::anyhow!("{e}"))?).await?;
        if (i + 1) % 20_000 == 0 {
            println!("  seeded {} cases in {:.0?}", i + 1, started.elapsed());
        }
    }
    let sent = mark_pages_sent(store, at + TimeDelta::days(1)).await?;
    println!("  seeded {n} open cases ({sent} pages marked sent) in {:.1?}", started.elapsed());
    Ok(())
}

/// Marks every page queued up to `until` as sent, without sending it.
pub async fn mark_pages_sent(store: &dyn Store, until: DateTime<Utc>) -> anyhow::Result<usize> {
    let owner = "harness-seed";
    let mut sent = 0;
    loop {
        let batch = store.claim_pages(until, owner, TimeDelta::minutes(5), 5000).await?;
        if batch.is_empty() {
            return Ok(sent);
        }
        let outcomes: Vec<(i64, Delivery)> =
            batch.iter().map(|p| (p.id, Delivery::Sent { provider_id: None, message_id: None })).collect();
        sent += store.finish_pages(owner, &outcomes, until).await?;
    }
}

/// Makes sure the store holds at least `n` open cases (a store reused with
/// `--database` is seeded once).
pub async fn ensure_open_cases(store: &Arc<dyn Store>, rules: &Rules, n: usize) -> anyhow::Result<i64> {
    let open = open_cases(store.as_ref()).await?;
    if open >= n as i64 {
        println!("  {open} open cases already in the store; not seeding");
        return Ok(open);
    }
    seed_open_cases(store.as_ref(), rules, n - open as usize, Utc::now() + TimeDelta::days(365)).await?;
    open_cases(store.as_ref()).await
}

/// p50, p99 and max of `values`.
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub n: usize,
}

pub fn spread(mut values: Vec<f64>) -> Spread {
    if values.is_empty() {
        return Spread { p50: f64::NAN, p99: f64::NAN, max: f64::NAN, n: 0 };
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    Spread { p50: at(0.5), p99: at(0.99), max: at(1.0), n: values.len() }
}

/// Builds the release binary (a no-op when it is up to date) and returns
/// its path: the harness measures the real `tocsin serve`. Built together
/// with the examples, so the library is built once with one feature set.
pub fn release_binary() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "tocsin", "--examples"])
        .current_dir(repo())
        .status()?;
    anyhow::ensure!(status.success(), "cargo build --release --bin tocsin failed");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| repo().join("target"), PathBuf::from);
    Ok(target.join("release").join("tocsin"))
}

/// A port nobody listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Writes a `tocsin.toml` for the real binary in `dir`.
pub fn write_config(
    dir: &Path,
    database: &str,
    http: u16,
    smtp: u16,
    rules: &Path,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let text = format!(
        "[server]\nhttp = \"127.0.0.1:{http}\"\nsmtp = \"127.0.0.1:{smtp}\"\npublic_url = \"http://127.0.0.1:{http}\"\n\
         [database]\nurl = \"{database}\"\n\
         [paths]\nrules = \"{rules}\"\ntemplates = \"{templates}\"\noutbox = \"{outbox}\"\n\
         [secrets]\nreply_key_file = \"{key}\"\n{extra}",
        rules = rules.display(),
        templates = repo().join("templates").display(),
        outbox = dir.join("outbox").display(),
        key = dir.join("reply-key").display(),
    );
    let path = dir.join("tocsin.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Polls `GET /healthz` until it answers 200; how long that took, or
/// `None` if it did not within `limit`.
pub async fn wait_healthy(http: &reqwest::Client, port: u16, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let url = format!("http://127.0.0.1:{port}/healthz");
    while start.elapsed() < limit {
        if let Ok(r) = http.get(&url).timeout(Duration::from_millis(500)).send().await
            && r.status().is_success()
        {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// A field of `/proc/PID/status` in KiB (VmRSS, VmHWM).
pub fn proc_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Reads one SMTP reply; returns its last line.
pub async fn smtp_reply(r: &mut tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>) -> anyhow::Result<String> {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    loop {
        line.clear();
        anyhow::ensure!(r.read_line(&mut line).await? > 0, "connection closed");
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line);
        }
    }
}

/// Sends one mail over a fresh SMTP connection (pipelined); returns the
/// reply to the message's end of data (e.g. "250 2.0.0 Queued as 7").
pub async fn send_mail(port: u16, from: &str, subject: &str, message_id: &str) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt;
    let (r, mut w) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?.into_split();
    let mut r = tokio::io::BufReader::new(r);
    smtp_reply(&mut r).await?;
    let head = format!("EHLO harness\r\nMAIL FROM:<{from}>\r\nRCPT TO:<help@support.example.com>\r\nDATA\r\n");
    w.write_all(head.as_bytes()).await?;
    for want in ["250", "250", "250", "354"] {
        let got = smtp_reply(&mut r).await?;
        anyhow::ensure!(got.starts_with(want), "{got}");
    }
    let mail = format!(
        "From: <{from}>\r\nTo: help@support.example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\r\nSomething is wrong.\r\n.\r\n"
    );
    w.write_all(mail.as_bytes()).await?;
    let answer = smtp_reply(&mut r).await?;
    let _ = w.write_all(b"QUIT\r\n").await;
    Ok(answer)
}
