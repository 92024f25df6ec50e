//! Crash test (not a test of the suite): the real release binary `tocsin
//! serve` is killed with SIGKILL at random moments and restarted, while
//! clients keep sending mail over SMTP and `POST /api/v1/cases`. Afterwards
//! it checks the promises "durability" and "exactly once":
//!
//! - every mail answered 250 is a case;
//! - every case answered 201 exists;
//! - every page that fell due was sent: a file in the outbox folder for
//!   each page the store calls sent, a sent page for each file, and no page
//!   left queued;
//! - none twice: no outbox file written twice (a watcher notes each file's
//!   inode and sees a rewrite), and no escalation step paging one person on
//!   one channel twice (a timer that fired twice);
//! - no timer left due.
//!
//! Run it with:
//!
//!     cargo run --release --example crash_test -- \
//!         [--database URL] [--cases 2000] [--kills 20] [--seconds 120] [--seed N]
//!
//! The rules are the shipped ones with escalation waits cut to seconds
//! (and no repeats), so pages fall due all through the run. Exit status 1
//! on any violation.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tocsin::case::PageKind;
use tocsin::store::PageStatus;

/// The shipped rules, with escalation that runs in seconds.
fn fast_rules(dir: &Path) -> anyhow::Result<PathBuf> {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules)?;
    for f in std::fs::read_dir(harness::repo().join("rules"))? {
        let f = f?;
        let mut text = std::fs::read_to_string(f.path())?;
        if f.file_name() == "policies.toml" {
            for (from, to) in [
                ("wait = \"5m\"", "wait = \"3s\""),
                ("wait = \"10m\"", "wait = \"4s\""),
                ("wait = \"15m\"", "wait = \"5s\""),
                ("wait = \"30m\"", "wait = \"3s\""),
                ("wait = \"1h\"", "wait = \"5s\""),
                ("repeat = 2", "repeat = 0"),
                ("repeat = 1", "repeat = 0"),
            ] {
                text = text.replace(from, to);
            }
        }
        std::fs::write(rules.join(f.file_name()), text)?;
    }
    Ok(rules)
}

struct Daemon {
    bin: PathBuf,
    config: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    async fn start(&mut self) -> anyhow::Result<Duration> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let started = Instant::now();
        self.child = Some(
            Command::new(&self.bin)
                .args(["serve", "--config"])
                .arg(&self.config)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?,
        );
        let http = reqwest::Client::new();
        match harness::wait_healthy(&http, self.port, Duration::from_secs(60)).await {
            Some(_) => Ok(started.elapsed()),
            None => anyhow::bail!("tocsin serve did not become healthy; see {}", self.log.display()),
        }
    }

    fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?; // SIGKILL
            child.wait()?;
        }
        Ok(())
    }

    fn term(&mut self) -> anyhow::Result<Option<i32>> {
        let Some(mut child) = self.child.take() else { return Ok(None) };
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        Ok(child.wait()?.code())
    }
}

/// A plain connection to the test's database, to see what a killed
/// process held (the store has no call for that, nor should it).
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    async fn open(url: &str) -> anyhow::Result<Db> {
        Ok(if url.starts_with("sqlite:") {
            Db::Sqlite(sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(url).await?)
        } else {
            Db::Postgres(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?)
        })
    }

    async fn ids(&self, query: &str) -> anyhow::Result<Vec<i64>> {
        Ok(match self {
            Db::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_all(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_all(p).await?,
        })
    }

    async fn count(&self, query: &str) -> anyhow::Result<i64> {
        Ok(match self {
            Db::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(p).await?,
        })
    }
}

/// Notes every outbox file's inode; a name whose inode changes was written
/// twice (the outbox writes a temporary file and renames it over).
fn watch_outbox(dir: PathBuf, stop: Arc<Mutex<bool>>) -> std::thread::JoinHandle<BTreeSet<String>> {
    std::thread::spawn(move || {
        use std::os::unix::fs::MetadataExt;
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        let mut rewritten = BTreeSet::new();
        loop {
            let done = stop.lock().map(|s| *s).unwrap_or(true);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue;
                    }
                    let Ok(meta) = e.metadata() else { continue };
                    if let Some(old) = seen.insert(name.clone(), meta.ino())
                        && old != meta.ino()
                    {
                        rewritten.insert(name);
                    }
                }
            }
            if done {
                return rewritten;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cases = args.num("cases", 2_000)?;
    let kills = args.num("kills", 20)?;
    let seconds = args.num("seconds", 120)? as f64;
    let seed = args.num("seed", rand::rng().random_range(0..1_000_000))? as u64;
    let dir = tempfile::tempdir()?;
    let config = harness::config(&args, dir.path());
    let rules = fast_rules(dir.path())?;
    let bin = harness::release_binary()?;
    let (http_port, smtp_port) = (harness::free_port()?, harness::free_port()?);
    // A thousand mails from forty senders of one domain is what the
    // new-case limits hold back; off here, where every mail must open a
    // case to be counted.
    let extra = "[scheduler]\nlease = \"5s\"\n[sms]\nmin_interval = \"0s\"\n\
                 [email]\nnew_cases_per_sender_per_hour = 0\nnew_cases_per_domain_per_hour = 0\n";
    let file = harness::write_config(dir.path(), &config.database.url, http_port, smtp_port, &rules, extra)?;
    let token = Command::new(&bin)
        .args(["token", "create", "--name", &format!("crash-{seed}"), "--role", "admin", "--config"])
        .arg(&file)
        .output()?;
    anyhow::ensure!(token.status.success(), "token create: {}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    println!(
        "crash test: {cases} cases ({} by SMTP, {} by API) over about {seconds}s, {kills} SIGKILLs; {}; seed {seed}",
        cases / 2,
        cases - cases / 2,
        config.database.url
    );
    let outbox = dir.path().join("outbox");
    let stop_watch = Arc::new(Mutex::new(false));
    let watcher = watch_outbox(outbox.clone(), stop_watch.clone());
    let mut daemon = Daemon { bin, config: file, port: http_port, log: dir.path().join("serve.log"), child: None };
    daemon.start().await?;
    let begun = Instant::now();

    // Mail: each message is retried, as an MTA would, until it gets 250.
    let run = seed;
    let mails = cases / 2;
    let pace = Duration::from_secs_f64(seconds / mails.max(1) as f64);
    let mail_task = tokio::spawn(async move {
        let mut accepted = Vec::new();
        let mut refused = 0usize;
        for i in 0..mails {
            let id = format!("crash{i}.{run}@acme.example");
            let subject =
                if i % 2 == 0 { format!("Crash mail {i}: site down") } else { format!("Crash mail {i}: slow") };
            let from = format!("ops{}@acme.com", i % 40);
            loop {
                match harness::send_mail(smtp_port, &from, &subject, &id).await {
                    Ok(a) if a.starts_with("250") => {
                        accepted.push(id.clone());
                        break;
                    }
                    _ => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            tokio::time::sleep(pace).await;
        }
        (accepted, refused)
    });
    // API: each case is retried, the same request with the same
    // Idempotency-Key, until it gets 201: a retry whose first try was
    // committed just before a kill finds that case instead of opening another.
    let posts = cases - mails;
    let pace = Duration::from_secs_f64(seconds / posts.max(1) as f64);
    let api_token = token.clone();
    let api_task = tokio::spawn(async move {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        let mut created: Vec<(i64, String)> = Vec::new();
        let mut failed = 0usize;
        for i in 0..posts {
            let subject = format!("Crash api {i}: {}", if i % 2 == 0 { "outage" } else { "question" });
            let body = serde_json::json!({"subject": subject, "body": "x", "requester": format!("it{}@globex.example", i % 40)});
            loop {
                let sent = http
                    .post(format!("http://127.0.0.1:{http_port}/api/v1/cases"))
                    .bearer_auth(&api_token)
                    .header("idempotency-key", format!("crash-{i}"))
                    .json(&body)
                    .send()
                    .await;
                if let Ok(r) = sent
                    && r.status().as_u16() == 201
                    && let Ok(v) = r.json::<serde_json::Value>().await
                    && let Some(n) = v["number"].as_i64()
                {
                    created.push((n, subject));
                    break;
                }
                failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep(pace).await;
        }
        (created, failed)
    });
    // The killer.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut restarts = Vec::new();
    let db = Db::open(&config.database.url).await?;
    let mut recoveries: Vec<(Duration, usize, usize)> = Vec::new();
    for _ in 0..kills {
        let gap = rng.random_range(0.2..(2.0 * seconds / kills.max(1) as f64).max(0.4));
        tokio::time::sleep(Duration::from_secs_f64(gap)).await;
        daemon.kill9()?;
        // What the dead process held: pages it was sending, timers it had
        // claimed. How long after the restart they went out is the cost of
        // the crash.
        let pages = db.ids("SELECT id FROM pages WHERE status = 'sending'").await?;
        let timers = db.ids("SELECT id FROM timers WHERE owner IS NOT NULL").await?;
        let spawned = Instant::now();
        restarts.push(daemon.start().await?);
        if pages.is_empty() && timers.is_empty() {
            continue;
        }
        let list = |ids: &[i64]| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let waiting_pages = format!(
            "SELECT COUNT(*) FROM pages WHERE id IN ({}) AND status IN ('queued', 'sending')",
            if pages.is_empty() { "0".into() } else { list(&pages) }
        );
        let waiting_timers = format!(
            "SELECT COUNT(*) FROM timers WHERE id IN ({})",
            if timers.is_empty() { "0".into() } else { list(&timers) }
        );
        loop {
            if db.count(&waiting_pages).await? + db.count(&waiting_timers).await? == 0
                || spawned.elapsed() > Duration::from_secs(60)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        recoveries.push((spawned.elapsed(), pages.len(), timers.len()));
    }
    let (accepted, refused) = mail_task.await?;
    let (created, failed) = api_task.await?;
    println!(
        "  sent in {:.0?}: {} mails answered 250 ({refused} attempts refused or cut), {} cases answered 201 ({failed} attempts failed)",
        begun.elapsed(),
        accepted.len(),
        created.len()
    );
    let slowest = restarts.iter().max().copied().unwrap_or_default();
    println!("  {} SIGKILLs and restarts; slowest restart to /healthz {slowest:.0?}", restarts.len());
    let mut times: Vec<Duration> = recoveries.iter().map(|r| r.0).collect();
    times.sort();
    let (held_pages, held_timers) = recoveries.iter().fold((0, 0), |(p, t), r| (p + r.1, t + r.2));
    if let (Some(median), Some(worst)) = (times.get(times.len() / 2), times.last()) {
        println!(
            "  in flight at {} of the kills: {held_pages} pages sending, {held_timers} timers claimed; out after the \
             restart (from its spawn): median {median:.2?}, slowest {worst:.2?} [{}]",
            recoveries.len(),
            if *worst < Duration::from_secs(2) { "under the 2 s target" } else { "OVER the 2 s target" }
        );
    } else {
        println!("  nothing was in flight at any kill");
    }

    // Let every escalation run its course (3 + 4 + 5 s) and the outbox drain.
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let settle = Instant::now();
    let mut quiet = 0;
    while quiet < 3 && settle.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let counts = store.counts(chrono::Utc::now()).await?;
        let busy: i64 =
            counts.pages.iter().filter(|(_, s, _)| s == "queued" || s == "sending").map(|(_, _, n)| n).sum();
        let pending = store.pending_mail(1).await?.len();
        let settled = counts.timers_due == 0 && busy == 0 && pending == 0 && settle.elapsed() > Duration::from_secs(15);
        quiet = if settled { quiet + 1 } else { 0 };
    }
    let code = daemon.term()?;
    println!("  settled in {:.0?}; SIGTERM: exit status {code:?}", settle.elapsed());
    *stop_watch.lock().map_err(|_| anyhow::anyhow!("watcher lock"))? = true;
    let rewritten = watcher.join().map_err(|_| anyhow::anyhow!("the outbox watcher panicked"))?;

    // The checks.
    let mut violations = 0usize;
    let mut check = |name: &str, bad: usize, total: usize, sample: &dyn std::fmt::Debug| {
        let ok = bad == 0;
        println!("  [{}] {name}: {} of {total}", if ok { "ok" } else { "FAIL" }, total - bad);
        if !ok {
            println!("         e.g. {sample:?}");
            violations += bad;
        }
    };
    let mut lost_mail = Vec::new();
    for id in &accepted {
        if store.case_by_message_id(std::slice::from_ref(id)).await?.is_none() {
            lost_mail.push(id.clone());
        }
    }
    check(
        "mails answered 250 that are cases",
        lost_mail.len(),
        accepted.len(),
        &lost_mail.iter().take(3).collect::<Vec<_>>(),
    );
    let mut lost_cases = Vec::new();
    for (n, subject) in &created {
        match store.case(tocsin::case::CaseNumber(*n)).await? {
            Some(c) if c.subject == *subject => {}
            _ => lost_cases.push(*n),
        }
    }
    check(
        "cases answered 201 that exist",
        lost_cases.len(),
        created.len(),
        &lost_cases.iter().take(3).collect::<Vec<_>>(),
    );

    let all_cases = store.cases(None, u32::MAX).await?;
    let mut api_cases: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &all_cases {
        if case.subject.starts_with("Crash api ") {
            *api_cases.entry(case.subject.as_str()).or_default() += 1;
        }
    }
    let twice: Vec<(&str, usize)> = api_cases.iter().filter(|(_, n)| **n > 1).map(|(s, n)| (*s, *n)).collect();
    check(
        "API requests (retried with one Idempotency-Key) that opened one case, not two",
        twice.len(),
        api_cases.len(),
        &twice.iter().take(3).collect::<Vec<_>>(),
    );

    let files: BTreeMap<i64, String> = harness_files(&outbox);
    let mut pages = Vec::new();
    for case in &all_cases {
        pages.extend(store.pages_of(case.number).await?);
    }
    let sent = |s: PageStatus| matches!(s, PageStatus::Sent | PageStatus::Delivered);
    let by_id: BTreeMap<i64, &tocsin::store::PageRecord> = pages.iter().map(|p| (p.id, p)).collect();
    let no_file: Vec<i64> =
        pages.iter().filter(|p| sent(p.status) && !files.contains_key(&p.id)).map(|p| p.id).collect();
    let sent_count = pages.iter().filter(|p| sent(p.status)).count();
    check(
        "pages recorded sent that have their outbox file",
        no_file.len(),
        sent_count,
        &no_file.iter().take(3).collect::<Vec<_>>(),
    );
    let stray: Vec<&String> =
        files.iter().filter(|(id, _)| !by_id.get(id).is_some_and(|p| sent(p.status))).map(|(_, f)| f).collect();
    check(
        "outbox files whose page is recorded sent",
        stray.len(),
        files.len(),
        &stray.iter().take(3).collect::<Vec<_>>(),
    );
    let unsent: Vec<i64> =
        pages.iter().filter(|p| matches!(p.status, PageStatus::Queued | PageStatus::Sending)).map(|p| p.id).collect();
    check(
        "pages that fell due and went out (none left queued)",
        unsent.len(),
        pages.len(),
        &unsent.iter().take(3).collect::<Vec<_>>(),
    );
    check("outbox files written once", rewritten.len(), files.len(), &rewritten.iter().take(3).collect::<Vec<_>>());
    let mut steps: BTreeMap<(i64, u32, u32, String, &str), usize> = BTreeMap::new();
    for p in pages.iter().filter(|p| p.kind == PageKind::Page) {
        if let (Some(case), Some(pos)) = (p.case, p.position) {
            let who = p.person.as_ref().map_or_else(String::new, |x| x.to_string());
            *steps.entry((case.0, pos.round, pos.step, who, p.channel.as_str())).or_default() += 1;
        }
    }
    let doubled: Vec<_> = steps.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k.clone()).collect();
    check(
        "escalation step pages, one per person and channel",
        doubled.len(),
        steps.len(),
        &doubled.iter().take(3).collect::<Vec<_>>(),
    );
    let due = store.counts(chrono::Utc::now()).await?.timers_due;
    check("timers left due", due as usize, 1, &due);
    let failed_pages = pages.iter().filter(|p| p.status == PageStatus::Failed).count();
    let by_status = |s: PageStatus| pages.iter().filter(|p| p.status == s).count();
    println!(
        "  pages: {} in all; {} sent, {} cancelled (superseded), {failed_pages} failed; {} outbox files",
        pages.len(),
        sent_count,
        by_status(PageStatus::Cancelled),
        files.len()
    );
    if violations > 0 {
        println!("results: {violations} violation(s); the daemon's log: {}", daemon.log.display());
        // Keep the evidence.
        let kept = dir.keep();
        println!("  kept {}", kept.display());
        std::process::exit(1);
    }
    println!("results: every check passed");
    Ok(())
}

/// Outbox files by page id (their names start with the zero-padded id).
fn harness_files(dir: &Path) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Notices belong to no case (a digest); they are not pages of a case.
        if let Some(id) = name.split('-').next().and_then(|n| n.parse().ok())
            && !name.starts_with('.')
            && !name.contains("-notice-")
        {
            out.insert(id, name);
        }
    }
    out
}
