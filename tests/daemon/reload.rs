//! Rules reload: a valid change goes in force at once, a broken one is
//! refused with its file and line while the running rules keep paging.
//! In process through `App::reload`, and with the real binary on SIGHUP
//! and on a file edit.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::*;

/// A copy of the shipped rules folder, to edit.
fn rules_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    dir
}

const ZOE: &str = "\n[[person]]\nid = \"zoe\"\nname = \"Zoe Park\"\nemail = \"zoe@example.com\"\ntimezone = \"Europe/London\"\nrole = \"engineer\"\nchannels = [\"email\"]\n";

fn add_zoe(rules: &Path) {
    let people = rules.join("people.toml");
    let mut text = std::fs::read_to_string(&people).unwrap();
    text.push_str(ZOE);
    std::fs::write(people, text).unwrap();
}

/// Breaks routing.toml at its line 9 (a `policy` line of the shipped file).
fn break_routing(rules: &Path) -> usize {
    let routing = rules.join("routing.toml");
    let text = std::fs::read_to_string(&routing).unwrap();
    let broken = text.replacen("policy = \"urgent\"", "policy = \"urgnet\"", 1);
    let line = broken.lines().position(|l| l.contains("urgnet")).unwrap() + 1;
    std::fs::write(routing, broken).unwrap();
    line
}

#[tokio::test]
async fn a_valid_change_goes_in_force_and_a_broken_one_is_refused_while_paging_goes_on() {
    let rules = rules_copy();
    let t = TestApp::spawn_with(Workers::Manual, START, rules.path()).await;
    let admin = t.token("ops", TokenRole::Admin, None).await;
    assert_eq!(t.get("/api/v1/people/zoe.ics", &admin).await.0, 404);
    add_zoe(rules.path());
    let summary = t.app().reload.reload("test").await.unwrap();
    assert!(summary.starts_with("6 people"), "{summary}");
    assert_eq!(t.get("/api/v1/people/zoe.ics", &admin).await.0, 200, "Zoe is known at once");
    let (_, audit) = t.get("/api/v1/audit", &admin).await;
    let reloads: Vec<_> =
        audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "rules_reloaded").collect();
    assert_eq!(reloads.len(), 1, "{audit}");
    assert!(reloads[0]["detail"].as_str().unwrap().starts_with("test: 6 people"), "{audit}");

    // A typo: refused with file and line; the rules in force stay.
    let line = break_routing(rules.path());
    let problems = t.app().reload.reload("test").await.unwrap_err();
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().any(|p| p.contains(&format!("routing.toml:{line}:")) && p.contains("unknown policy \"urgnet\"")),
        "{shown:?}"
    );
    assert_eq!(t.get("/api/v1/people/zoe.ics", &admin).await.0, 200);
    // Paging goes on under the rules in force: a new outage pages step 1.
    let n = t.open_outage(&admin).await;
    assert_eq!(t.step_pages(n, &admin).await, [("ana".to_owned(), 1, 0)]);
    let (_, audit) = t.get("/api/v1/audit", &admin).await;
    assert_eq!(audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "rules_reloaded").count(), 1);
}

// --- the real binary: SIGHUP and a file edit ---

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Daemon {
    child: Child,
    http: SocketAddr,
    dir: tempfile::TempDir,
    rules: tempfile::TempDir,
    token: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_copy();
    let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = format!(
        "[server]\nhttp = \"{http}\"\nsmtp = \"\"\n\
         [database]\nurl = \"sqlite://{db}\"\n\
         [paths]\nrules = \"{rules}\"\ntemplates = \"{repo}/templates\"\noutbox = \"{outbox}\"\n",
        db = dir.path().join("tocsin.db").display(),
        rules = rules.path().display(),
        repo = repo().display(),
        outbox = dir.path().join("outbox").display(),
    );
    let conf = dir.path().join("tocsin.toml");
    std::fs::write(&conf, config).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["token", "create", "--name", "ops", "--role", "admin", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let child = Command::new(env!("CARGO_BIN_EXE_tocsin"))
        .args(["serve", "--config"])
        .arg(&conf)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(http).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, http, dir, rules, token }
}

impl Daemon {
    async fn status(&self, path: &str) -> u16 {
        let r = reqwest::Client::new().get(format!("http://{}{path}", self.http)).bearer_auth(&self.token).send();
        r.await.unwrap().status().as_u16()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http)).await.unwrap().text().await.unwrap()
    }

    /// Polls (bounded) until `path` answers `want`: the reload happens in
    /// the daemon's own time, on its own clock.
    async fn until_status(&self, path: &str, want: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.status(path).await != want {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "{path} never answered {want}; the daemon's log:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn sighup_reloads_the_rules_folder() {
    let d = daemon();
    // Answered: the daemon is up, its workers with it.
    d.until_status("/api/v1/people/zoe.ics", 404).await;
    add_zoe(d.rules.path());
    let ok = Command::new("kill").args(["-HUP", &d.child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    d.until_status("/api/v1/people/zoe.ics", 200).await;
    assert!(d.metrics().await.contains("tocsin_rules_reloads_total{outcome=\"applied\"}"));
}

#[tokio::test]
async fn an_edited_file_is_reloaded_and_a_broken_edit_is_refused_while_paging_goes_on() {
    let d = daemon();
    d.until_status("/api/v1/people/zoe.ics", 404).await;
    add_zoe(d.rules.path());
    d.until_status("/api/v1/people/zoe.ics", 200).await;
    // A broken edit: counted, and the rules in force stay.
    break_routing(d.rules.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.metrics().await.contains("tocsin_rules_reloads_total{outcome=\"refused\"}") {
        assert!(Instant::now() < deadline, "the broken change was never counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(d.status("/api/v1/people/zoe.ics").await, 200);
    // And the daemon still pages: a new outage goes out to the outbox.
    let (s, case) = {
        let r = reqwest::Client::new()
            .post(format!("http://{}/api/v1/cases", d.http))
            .bearer_auth(&d.token)
            .json(&json!({"subject": "Site down", "requester": "ops@acme.com"}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(s, 201, "{case}");
    let n = case["number"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !outbox_files(&d.dir.path().join("outbox")).iter().any(|f| f.contains(&format!("case{n}-page"))) {
        assert!(Instant::now() < deadline, "the page never went out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
