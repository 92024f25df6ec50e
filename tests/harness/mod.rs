//! What the test binaries share. Spawns the whole daemon in-process per
//! test: a temporary SQLite file and outbox, the shipped rules and
//! templates, a fake clock, HTTP on port 0. Also: running a test in a
//! process of its own, and saying loudly (and counting) what was skipped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use tocsin::app::{App, Listeners, Workers};
use tocsin::clock::FakeClock;
use tocsin::config::Config;
use tocsin::notify::Templates;
use tocsin::store::Store;
use tocsin::token::{self, TokenInfo, TokenRole};

pub mod pg;
pub mod skip;
pub mod web;

/// The Twilio auth token the SMS tests sign with, and the environment
/// variable the daemon reads it from (`[sms] twilio_auth_token_env`).
pub const TWILIO_TOKEN_ENV: &str = "TOCSIN_TEST_TWILIO_TOKEN";
pub const TWILIO_TOKEN: &str = "twilio-test-token";

/// The token `/metrics` needs in tests that set `[server]
/// metrics_token_env` to this variable.
pub const METRICS_TOKEN_ENV: &str = "TOCSIN_TEST_METRICS_TOKEN";
pub const METRICS_TOKEN: &str = "metrics-test-token";

/// Mailgun's HTTP webhook signing key in tests that set `[email]
/// mailgun_signing_key_env` to this variable.
pub const MAILGUN_KEY_ENV: &str = "TOCSIN_TEST_MAILGUN_KEY";
pub const MAILGUN_KEY: &str = "mailgun-test-signing-key";

/// Sets the environment the in-process daemons read, once per process and
/// before the first of them starts. Tests share a process, and changing the
/// environment while other threads read it is unsound (`std::env::set_var`
/// is `unsafe` for that reason), so no test sets a variable itself.
fn environment() {
    static SET: std::sync::Once = std::sync::Once::new();
    // SAFETY: every daemon in this process starts after this call returns
    // (`Once` makes the other callers wait), and the tests running beside
    // it read the environment only through `std::env`, which locks.
    SET.call_once(|| unsafe {
        std::env::set_var(TWILIO_TOKEN_ENV, TWILIO_TOKEN);
        std::env::set_var(METRICS_TOKEN_ENV, METRICS_TOKEN);
        std::env::set_var(MAILGUN_KEY_ENV, MAILGUN_KEY);
    });
}

/// Whether the calling test should go on here. A test that reads
/// process-wide state (the global metrics recorder counts every daemon in
/// the process) runs alone in a fresh process of this test binary: in the
/// test run this starts that process, asserts that the test passed there,
/// and returns `false`; in that process it returns `true`. `test` is the
/// name libtest lists, such as `api::health_metrics_and_openapi_are_served`.
pub fn in_own_process(test: &str) -> bool {
    const MARK: &str = "TOCSIN_TEST_OWN_PROCESS";
    if std::env::var(MARK).is_ok_and(|t| t == test) {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(MARK, test)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{test} failed in its own process:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{test} did not run in its own process (is the name right?):\n{stdout}");
    false
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A Tuesday, 10:00 London: ana is on call on primary, ben on secondary.
pub const START: &str = "2026-11-24T10:00:00Z";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct TestApp {
    pub app: Option<App>,
    pub clock: FakeClock,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub http: reqwest::Client,
    /// Answers the daemon's DNS lookups of DKIM keys, when set.
    pub dns: Option<Arc<dyn tocsin::service::verify::TxtLookup>>,
}

impl TestApp {
    pub async fn spawn(workers: Workers) -> TestApp {
        Self::spawn_with(workers, START, &repo().join("rules")).await
    }

    /// Starts at `start` with the rules in `rules`.
    pub async fn spawn_with(workers: Workers, start: &str, rules: &Path) -> TestApp {
        Self::spawn_configured(workers, start, rules, |_| {}).await
    }

    /// As `spawn_with`, after `tweak` adjusted the config.
    pub async fn spawn_configured(
        workers: Workers,
        start: &str,
        rules: &Path,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        Self::spawn_with_dns(workers, start, rules, tweak, None).await
    }

    /// As `spawn_configured`, with `dns` answering the lookups of DKIM keys.
    pub async fn spawn_with_dns(
        workers: Workers,
        start: &str,
        rules: &Path,
        tweak: impl FnOnce(&mut Config),
        dns: Option<Arc<dyn tocsin::service::verify::TxtLookup>>,
    ) -> TestApp {
        environment();
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::new(at(start));
        let mut config = Config::default();
        config.database.url = format!("sqlite://{}", dir.path().join("tocsin.db").display());
        config.paths.rules = rules.to_owned();
        config.paths.templates = repo().join("templates");
        config.paths.outbox = dir.path().join("outbox");
        config.email.domains = vec!["support.example.com".into()];
        tweak(&mut config);
        let mut t = TestApp { app: None, clock, dir, config, http: reqwest::Client::new(), dns };
        t.start(workers).await;
        t
    }

    /// Starts (again) on the same database, outbox and clock.
    pub async fn start(&mut self, workers: Workers) {
        let rules = tocsin::rules::load(&self.config.paths.rules).unwrap();
        let templates = Templates::load(&self.config.paths.templates).unwrap();
        let store = tocsin::store::open(&self.config.database).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        let app = App::start_with(
            &self.config,
            rules,
            templates,
            store,
            Arc::new(self.clock.clone()),
            Listeners { http: listener, smtp },
            workers,
            self.dns.clone(),
        )
        .await
        .unwrap();
        self.app = Some(app);
    }

    /// Stops the daemon, as a crash between two instants would.
    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    pub fn app(&self) -> &App {
        self.app.as_ref().expect("app is running")
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.app().state.store.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.app().addr)
    }

    pub async fn token(&self, name: &str, role: TokenRole, person: Option<&str>) -> String {
        self.token_of(TokenInfo::new(name, role, person.map(|p| p.parse().unwrap()))).await
    }

    /// Stores a token as `info` says (expiry, schedule) and returns it.
    pub async fn token_of(&self, info: TokenInfo) -> String {
        let secret = token::generate();
        self.store().insert_token(&info, &token::hash(&secret), self.clock_now()).await.unwrap();
        secret
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use tocsin::clock::Clock;
        self.clock.now()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Opens a P1 case for Acme and returns its number.
    pub async fn open_outage(&self, token: &str) -> i64 {
        let (status, case) = self
            .post(
                "/api/v1/cases",
                token,
                serde_json::json!({"subject": "Site down", "body": "All 500s", "requester": "ops@acme.com"}),
            )
            .await;
        assert_eq!(status, 201, "{case}");
        case["number"].as_i64().unwrap()
    }

    pub async fn advance(&self, by: TimeDelta) -> usize {
        self.clock.advance(by);
        self.app().tick().await.unwrap()
    }

    /// Moves the clock to `instant` (RFC 3339) and fires what is due.
    pub async fn advance_to(&self, instant: &str) -> usize {
        self.clock.set(at(instant));
        self.app().tick().await.unwrap()
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self.http.patch(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Timeline entries of a case of `kind`, as (at, text).
    pub async fn events(&self, n: i64, token: &str, kind: &str) -> Vec<(String, String)> {
        let (_, case) = self.get(&format!("/api/v1/cases/{n}"), token).await;
        case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| (e["at"].as_str().unwrap().to_owned(), e["text"].as_str().unwrap().to_owned()))
            .collect()
    }

    /// Step pages of a case as (person, 1-based step, round).
    pub async fn step_pages(&self, n: i64, token: &str) -> Vec<(String, i64, i64)> {
        let (_, case) = self.get(&format!("/api/v1/cases/{n}"), token).await;
        case["pages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["kind"] == "page")
            .map(|p| {
                (p["person"].as_str().unwrap().to_owned(), p["step"].as_i64().unwrap(), p["round"].as_i64().unwrap())
            })
            .collect()
    }

    /// The SMTP listener's address.
    pub fn smtp(&self) -> std::net::SocketAddr {
        self.app().smtp_addr.expect("SMTP listener")
    }

    /// Posts a raw message to the mail webhook.
    pub async fn hook(&self, token: &str, raw: &str) -> (u16, Value) {
        let r = self.http.post(self.url("/hooks/email")).bearer_auth(token).body(raw.to_owned()).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The text of outbox files whose names contain `part`.
    pub fn outbox_texts(&self, part: &str) -> Vec<String> {
        self.outbox()
            .into_iter()
            .filter(|f| f.contains(part))
            .map(|f| std::fs::read_to_string(self.dir.path().join("outbox").join(f)).unwrap())
            .collect()
    }

    pub fn outbox(&self) -> Vec<String> {
        outbox_files(&self.dir.path().join("outbox"))
    }
}

/// The shipped rules with Ana paged by email first, at `address`.
pub fn rules_with_ana_email(address: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        let mut text = std::fs::read_to_string(f.path()).unwrap();
        if f.file_name() == "people.toml" {
            text = text.replacen("email = \"ana@example.com\"", &format!("email = \"{address}\""), 1).replacen(
                "channels = [\"sms\", \"email\"]",
                "channels = [\"email\", \"sms\"]",
                1,
            );
        }
        std::fs::write(dir.path().join(f.file_name()), text).unwrap();
    }
    dir
}

/// The Python with the test peers (aiosmtpd, twilio), or `None` and a loud
/// note without it.
pub fn python() -> Option<PathBuf> {
    match std::env::var("TOCSIN_TEST_PYTHON") {
        Ok(p) if Path::new(&p).exists() => Some(PathBuf::from(p)),
        _ => {
            skip::say(
                &skip::current_test(),
                "TOCSIN_TEST_PYTHON is not set; `bash .ci/run` installs the test peers and sets it",
            );
            None
        }
    }
}

pub fn outbox_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
