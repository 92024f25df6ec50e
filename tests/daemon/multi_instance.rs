//! Three real `tocsin serve` processes on one PostgreSQL database, sharing
//! one outbox folder: every page that falls due goes out exactly once, also
//! while instances are killed with SIGKILL and restarted, and through a
//! rolling restart (SIGTERM, start again, one instance at a time).
//!
//! The rules escalate in seconds (three steps two seconds apart, a respond
//! deadline after four), and the lease is two seconds, so a killed
//! instance's timers and pages come back to the others quickly.
//!
//! Needs `TOCSIN_TEST_POSTGRES_URL`; skipped loudly without it. Each
//! scenario submits 1,000 cases (about 40 s each on 2 cores);
//! `TOCSIN_TEST_CASES=200` makes a quicker run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tocsin::config::Database;
use tocsin::store::{PageStatus, Store};
use tocsin::token::{self, TokenInfo, TokenRole};

use crate::harness::pg::{FreshDb, admin_url};
use crate::harness::{outbox_files, repo};

/// Cases per scenario: 1,000, or `TOCSIN_TEST_CASES` for a quicker run.
fn cases() -> usize {
    std::env::var("TOCSIN_TEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000)
}

/// How long a SIGTERM may take. Under steady load a stop waits until the
/// scheduler and dispatcher find nothing due (see the report in the commit
/// log), so this is generous.
const STOP_WITHIN: Duration = Duration::from_secs(120);

/// One scenario at a time: each runs three daemons on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const POLICIES: &str = r#"
[policy.fast]
repeat = 0

[[policy.fast.step]]
notify = ["schedule:primary"]
wait = "2s"

[[policy.fast.step]]
notify = ["person:dana"]
wait = "2s"

[[policy.fast.step]]
notify = ["role:manager"]
wait = "2s"
"#;

const ROUTING: &str = r#"
[[route]]
priority = "P1"
policy = "fast"
"#;

const SLA: &str = r#"
default_plan = "fast"
warn_at = [0.5]

[plan.fast]
calendar = "24x7"
P1 = { respond = "4s", update = "1h", resolve = "1h" }
P2 = { respond = "1h", update = "1h", resolve = "1d" }
P3 = { respond = "1h", update = "1h", resolve = "1d" }

[[customer]]
name = "Acme"
domains = ["acme.com"]
plan = "fast"
"#;

/// The shipped people, schedules and calendars; fast policies and plans.
fn fast_rules(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    for f in ["people.toml", "schedules.toml", "calendars.toml", "england-2027.ics"] {
        std::fs::copy(repo().join("rules").join(f), rules.join(f)).unwrap();
    }
    std::fs::write(rules.join("policies.toml"), POLICIES).unwrap();
    std::fs::write(rules.join("routing.toml"), ROUTING).unwrap();
    std::fs::write(rules.join("sla.toml"), SLA).unwrap();
    rules
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `tocsin serve` process and its config.
struct Instance {
    name: String,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn new(dir: &Path, name: &str, db_url: &str, rules: &Path, outbox: &Path) -> Instance {
        let port = free_port();
        let config = dir.join(format!("{name}.toml"));
        let text = format!(
            r#"[server]
http = "127.0.0.1:{port}"
smtp = ""
public_url = "http://127.0.0.1:{port}"

[database]
url = "{db_url}"

[paths]
rules = "{rules}"
templates = "{templates}"
outbox = "{outbox}"

[sms]
min_interval = "0s"

[scheduler]
lease = "2s"
batch = 16

[digest]
at = ""
"#,
            rules = rules.display(),
            templates = repo().join("templates").display(),
            outbox = outbox.display(),
        );
        std::fs::write(&config, text).unwrap();
        Instance { name: name.into(), port, config, log: dir.join(format!("{name}.log")), child: None }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env("TOCSIN_REPLY_KEY", "multi-instance-test-key")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL: the process gets no chance to tidy up.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, and wait for the process to stop on its own; returns how
    /// long it took.
    fn terminate(&mut self) -> Duration {
        let Some(mut child) = self.child.take() else { return Duration::ZERO };
        let asked = Instant::now();
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "{} stopped with {status} on SIGTERM", self.name);
                return asked.elapsed();
            }
            if asked.elapsed() > STOP_WITHIN {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                panic!(
                    "{} did not stop within {STOP_WITHIN:?} of SIGTERM; log tail (newest first): {tail:#?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(self.url("/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().unwrap()
            {
                panic!(
                    "{} exited with {status}: {}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{} not ready in 30s", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three instances on one fresh database and one outbox.
struct Cluster {
    // Fields drop in this order: the processes first, then their folder,
    // then the database.
    instances: Vec<Instance>,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    outbox: PathBuf,
    token: String,
    http: reqwest::Client,
    _db: FreshDb,
}

impl Cluster {
    async fn start(test: &str) -> Option<Cluster> {
        let admin = admin_url(test)?;
        let db = FreshDb::create(&admin).await;
        let dir = tempfile::tempdir().unwrap();
        let rules = fast_rules(dir.path());
        let outbox = dir.path().join("outbox");
        let mut instances: Vec<Instance> =
            (0..3).map(|i| Instance::new(dir.path(), &format!("tocsin{i}"), &db.url, &rules, &outbox)).collect();
        // All three at once on an empty database: they migrate together.
        for i in instances.iter_mut() {
            i.start();
        }
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        for i in instances.iter_mut() {
            i.wait_ready(&http).await;
        }
        let store = tocsin::store::open(&Database { url: db.url.clone(), ..Database::default() }).await.unwrap();
        let token = token::generate();
        let info = TokenInfo::new("load", TokenRole::Admin, None);
        store.insert_token(&info, &token::hash(&token), Utc::now()).await.unwrap();
        Some(Cluster { instances, store, dir, outbox, token, http, _db: db })
    }

    /// Submits cases through these instances' ports (whichever are up).
    fn submitter(&self) -> Submitter {
        Submitter {
            urls: self.instances.iter().map(|i| i.url("/api/v1/cases")).collect(),
            http: self.http.clone(),
            token: self.token.clone(),
        }
    }

    /// Waits until no escalation timer is left and no page is queued or being sent.
    async fn drain(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            // The escalation's timers fall due within seconds; what is left
            // (resolve clocks, an hour out) is not due in the test.
            let counts = self.store.counts(Utc::now() + chrono::TimeDelta::minutes(10)).await.unwrap();
            let busy: i64 = counts
                .pages
                .iter()
                .filter(|(_, status, _)| status == "queued" || status == "sending")
                .map(|p| p.2)
                .sum();
            if counts.timers_due == 0 && busy == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not drained in {within:?}: {} timers, {busy} pages in flight; logs in {}",
                counts.timers_due,
                self.dir.path().display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Every page sent exactly once, none missing: the store's pages and
    /// the outbox's files match one to one, no escalation step or breach
    /// notice was queued twice, and every case ran its whole policy.
    async fn check_exactly_once(&self, submitted: usize) -> Report {
        let cases = self.store.cases(None, 100_000).await.unwrap();
        assert!(cases.len() >= submitted, "{} cases stored, {submitted} answered 201", cases.len());
        let files = outbox_files(&self.outbox);
        let mut file_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for f in &files {
            let id: i64 = f.split('-').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("odd file {f}"));
            file_of.entry(id).or_default().push(f.clone());
        }
        let mut pages = 0;
        let mut resent = 0;
        let mut cancelled = 0;
        let mut sent_then_cancelled = 0;
        let mut logical = BTreeSet::new();
        for case in &cases {
            let rows = self.store.pages_of(case.number).await.unwrap();
            let steps: BTreeSet<u32> = rows.iter().filter_map(|p| p.position.map(|x| x.step)).collect();
            assert_eq!(steps, BTreeSet::from([0, 1, 2]), "case {}: every step paged", case.number);
            for p in &rows {
                pages += 1;
                let f = file_of.remove(&p.id);
                match p.status {
                    PageStatus::Sent => {
                        assert_eq!(f.as_ref().map(Vec::len), Some(1), "page {} went out once: {f:?}", p.id)
                    }
                    // Held up by a dead instance until the case escalated
                    // past its step: superseded, as the product says. Its
                    // file exists only if the dead instance had sent it.
                    PageStatus::Cancelled => {
                        let why = p.error.as_deref().unwrap_or_default();
                        assert!(why.starts_with("superseded"), "page {} cancelled: {why}", p.id);
                        cancelled += 1;
                        sent_then_cancelled += usize::from(f.is_some());
                    }
                    other => panic!("page {} of case {}: {other:?} {:?}", p.id, case.number, p.error),
                }
                if p.attempts > 1 {
                    resent += 1;
                }
                let key = (
                    case.number,
                    p.kind.as_str(),
                    p.position.map(|x| (x.round, x.step)),
                    p.person.as_ref().map(ToString::to_string),
                    p.channel.as_str(),
                    p.detail.clone(),
                );
                assert!(logical.insert(key.clone()), "queued twice: {key:?}");
            }
            let timeline = self.store.timeline(case.number).await.unwrap();
            let breaches = timeline.iter().filter(|e| e.kind == "breach").count();
            assert_eq!(breaches, 1, "case {}: one respond breach", case.number);
        }
        // Pages of no case (notices, digests) would be files too.
        assert!(file_of.is_empty(), "files without a page row: {:?}", file_of.values().take(5).collect::<Vec<_>>());
        let counts = self.store.counts(Utc::now() + chrono::TimeDelta::minutes(10)).await.unwrap();
        assert_eq!(counts.timers_due, 0, "every escalation timer fired");
        assert!(pages >= 3 * cases.len(), "{pages} pages for {} cases", cases.len());
        Report { cases: cases.len(), pages, resent, cancelled, sent_then_cancelled }
    }

    fn stop_all(&mut self) {
        for i in self.instances.iter_mut() {
            i.terminate();
        }
    }
}

/// What a scenario did, printed with its timing.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Report {
    cases: usize,
    pages: usize,
    /// Pages claimed again after a lease ran out mid-send (the outbox
    /// rewrites the same file, so they are no visible duplicate).
    resent: usize,
    /// Superseded before they went out (held up by a killed instance).
    cancelled: usize,
    /// Of those, sent by the killed instance before it died.
    sent_then_cancelled: usize,
}

async fn steady(n: usize, test: &str) {
    let Some(mut cluster) = Cluster::start(test).await else { return };
    let started = Instant::now();
    let created = cluster.submitter().submit(n).await;
    assert_eq!(created, n);
    cluster.drain(Duration::from_secs(120)).await;
    let report = cluster.check_exactly_once(n).await;
    eprintln!("{test}: {report:?} in {:?}", started.elapsed());
    assert_eq!(report.cases, n);
    assert_eq!(report.resent, 0, "nobody died, so no lease ran out mid-send");
    assert_eq!(report.cancelled, 0, "nobody died, so no page was held up");
    cluster.stop_all();
}

async fn with_sigkills(n: usize, test: &str) {
    let Some(mut cluster) = Cluster::start(test).await else { return };
    let started = Instant::now();
    let submitter = cluster.submitter();
    let instances = std::mem::take(&mut cluster.instances);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let http = cluster.http.clone();
    let chaos = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut instances = instances;
            let mut kills = 0;
            let mut k = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(2500)).await;
                let victim = &mut instances[k % 3];
                victim.kill();
                kills += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
                victim.start();
                victim.wait_ready(&http).await;
                k += 1;
            }
            (instances, kills)
        })
    };
    // Submissions go through whoever is up.
    let created = submitter.submit(n).await;
    // Keep killing while the escalations run.
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (instances, kills) = chaos.await.unwrap();
    cluster.instances = instances;
    assert!(cluster.instances.iter().all(Instance::running));
    cluster.drain(Duration::from_secs(120)).await;
    let report = cluster.check_exactly_once(created).await;
    eprintln!("{test}: {report:?}, {kills} SIGKILLs, {created} cases answered 201, in {:?}", started.elapsed());
    assert!(kills >= 3, "every instance was killed at least once");
    cluster.stop_all();
}

async fn rolling_restart(n: usize, test: &str) {
    let Some(mut cluster) = Cluster::start(test).await else { return };
    let started = Instant::now();
    // Submit from a task of its own while instances restart.
    let submitter = cluster.submitter();
    let submitting = tokio::spawn(async move { submitter.submit(n).await });
    let mut stops = Vec::new();
    for k in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let http = cluster.http.clone();
        let i = &mut cluster.instances[k];
        stops.push(i.terminate());
        i.start();
        i.wait_ready(&http).await;
    }
    let created = submitting.await.unwrap();
    cluster.drain(Duration::from_secs(120)).await;
    let report = cluster.check_exactly_once(created).await;
    eprintln!(
        "{test}: {report:?}, {created} cases answered 201, SIGTERM stops took {stops:?}, in {:?}",
        started.elapsed()
    );
    assert_eq!(created, n, "SIGTERM drains HTTP requests in flight");
    // A plain stop finishes the batch in hand before it exits: nothing was
    // left in doubt, nothing held up.
    assert_eq!((report.resent, report.cancelled), (0, 0));
    cluster.stop_all();
}

/// Submits cases over HTTP, spread over the instances; a refused or
/// broken connection (an instance being killed) moves on to the next one.
struct Submitter {
    urls: Vec<String>,
    http: reqwest::Client,
    token: String,
}

impl Submitter {
    /// Returns how many answered 201. A case whose request broke may be
    /// stored or not; the checks hold either way.
    async fn submit(&self, n: usize) -> usize {
        let mut created = 0;
        let mut jobs = tokio::task::JoinSet::new();
        let gate = Arc::new(tokio::sync::Semaphore::new(12));
        for k in 0..n {
            let permit = gate.clone().acquire_owned().await.unwrap();
            let (urls, http, token) = (self.urls.clone(), self.http.clone(), self.token.clone());
            jobs.spawn(async move {
                let _permit = permit;
                let body = serde_json::json!({
                    "subject": format!("Outage {k}"),
                    "body": "All 500s",
                    "requester": format!("ops{k}@acme.com"),
                });
                for attempt in 0..60 {
                    let url = &urls[(k + attempt) % urls.len()];
                    if let Ok(r) = http.post(url).bearer_auth(&token).json(&body).send().await
                        && r.status().as_u16() == 201
                    {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                false
            });
        }
        while let Some(ok) = jobs.join_next().await {
            created += usize::from(ok.unwrap());
        }
        created
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_send_every_due_page_exactly_once() {
    let _one = SERIAL.lock().await;
    steady(cases(), concat!(module_path!(), "::three_instances_send_every_due_page_exactly_once")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_instances_lose_and_repeat_no_page() {
    let _one = SERIAL.lock().await;
    with_sigkills(cases(), concat!(module_path!(), "::sigkilled_instances_lose_and_repeat_no_page")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_and_repeats_no_page() {
    let _one = SERIAL.lock().await;
    rolling_restart(cases(), concat!(module_path!(), "::a_rolling_restart_loses_and_repeats_no_page")).await;
}
