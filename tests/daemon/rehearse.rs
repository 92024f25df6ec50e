//! Rehearsing rules (issue 18): `tocsin simulate` agrees with the daemon,
//! page for page and instant for instant, and `check --coverage` finds the
//! holes an operator would otherwise learn of from a missed SLA.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::{Value, json};
use tocsin::app::Workers;
use tocsin::case::{CaseNumber, PageKind};
use tocsin::notify::Templates;
use tocsin::rehearse::{Scenario, Stage, rehearse};
use tocsin::store::PageStatus;
use tocsin::token::TokenRole;

use crate::harness::*;

/// A page as a person receives it: when, who, how, which step and round.
type Received = (DateTime<Utc>, String, String, u32, u32);

/// Runs `scenario` through the real daemon (HTTP API, SQLite file, the
/// scheduler and dispatcher ticked on the fake clock, instant by instant),
/// and returns every step page with the instant it was sent, and the SMS
/// texts the outbox holds.
async fn through_the_daemon(rules: &Path, scenario: &Scenario) -> (Vec<Received>, Vec<String>) {
    let start = scenario.at.to_rfc3339();
    let t = TestApp::spawn_with(Workers::Manual, &start, rules).await;
    let tok = t.token("sim", TokenRole::Admin, None).await;
    let mut body = json!({"subject": scenario.subject, "body": scenario.body, "requester": scenario.requester});
    if let Some(p) = &scenario.priority {
        body["priority"] = json!(p.as_str());
    }
    let (status, case) = t.post("/api/v1/cases", &tok, body).await;
    assert_eq!(status, 201, "{case}");
    let number = CaseNumber(case["number"].as_i64().unwrap());
    let store = t.store();
    let end = scenario.at + scenario.run_for;
    let mut ack = scenario.ack_after.map(|a| scenario.at + a);
    let mut sent: BTreeMap<i64, DateTime<Utc>> = BTreeMap::new();
    loop {
        t.app().tick().await.unwrap();
        let now = t.clock_now();
        for p in store.pages_of(number).await.unwrap() {
            if p.status == PageStatus::Sent && p.kind == PageKind::Page {
                sent.entry(p.id).or_insert(now);
            }
        }
        let timer = store.next_timer_at().await.unwrap();
        let page = store.next_page_at().await.unwrap();
        let Some(next) = [timer, page, ack].into_iter().flatten().min() else { break };
        if next > end {
            break;
        }
        t.clock.set(next);
        if ack.is_some_and(|a| a <= next) {
            ack = None;
            let pages = store.pages_of(number).await.unwrap();
            let latest = pages.iter().filter(|p| p.kind == PageKind::Page).max_by_key(|p| (p.position, p.id));
            if let Some(by) = latest.and_then(|p| p.person.clone()) {
                let (status, case) =
                    t.post(&format!("/api/v1/cases/{}/ack", number.0), &tok, json!({"by": by.as_str()})).await;
                assert_eq!(status, 200, "{case}");
            }
        }
    }
    let pages = store.pages_of(number).await.unwrap();
    let mut received: Vec<Received> = pages
        .iter()
        .filter_map(|p| {
            let at = *sent.get(&p.id)?;
            let pos = p.position?;
            Some((at, p.person.as_ref()?.to_string(), p.channel.as_str().to_owned(), pos.step + 1, pos.round))
        })
        .collect();
    received.sort();
    let mut sms: Vec<String> = t
        .outbox()
        .into_iter()
        .filter(|f| f.contains("-page-sms"))
        .map(|f| {
            let v: Value =
                serde_json::from_slice(&std::fs::read(t.dir.path().join("outbox").join(f)).unwrap()).unwrap();
            v["body"].as_str().unwrap().to_owned()
        })
        .collect();
    sms.sort();
    (received, sms)
}

/// The same through `simulate`'s engine.
async fn through_simulate(rules: &Path, scenario: &Scenario) -> (Vec<Received>, Vec<String>, String) {
    let mut config = tocsin::config::Config::default();
    config.paths.rules = rules.to_owned();
    config.paths.templates = repo().join("templates");
    let stage = Stage::load(
        &config,
        tocsin::rules::load(rules).unwrap(),
        Templates::load(&config.paths.templates).unwrap(),
        false,
    )
    .await
    .unwrap();
    let r = rehearse(&stage, scenario).await.unwrap();
    let pages: Vec<_> = r.happenings.iter().filter(|h| h.kind == "page").collect();
    let mut received: Vec<Received> = pages
        .iter()
        .map(|h| (h.at, h.person.clone().unwrap(), h.channel.unwrap().to_owned(), h.step.unwrap(), h.round.unwrap()))
        .collect();
    received.sort();
    // One SMS per message: a bundle pages several steps in one text.
    let mut sms: Vec<(DateTime<Utc>, String, String)> = pages
        .iter()
        .filter(|h| h.channel == Some("sms"))
        .map(|h| (h.at, h.person.clone().unwrap(), h.text.clone()))
        .collect();
    sms.dedup();
    let mut sms: Vec<String> = sms.into_iter().map(|(_, _, text)| text).collect();
    sms.sort();
    (received, sms, r.text())
}

fn scenario(at: DateTime<Utc>, subject: &str, requester: &str, ack_after: Option<TimeDelta>, hours: i64) -> Scenario {
    Scenario {
        at,
        subject: subject.into(),
        body: "All 500s".into(),
        requester: requester.into(),
        priority: None,
        ack_after,
        resolve_after: None,
        reply_after: None,
        run_for: TimeDelta::hours(hours),
    }
}

async fn agree(rules: &Path, s: &Scenario) {
    let (daemon, daemon_sms) = through_the_daemon(rules, s).await;
    let (sim, sim_sms, text) = through_simulate(rules, s).await;
    assert!(!daemon.is_empty(), "the daemon paged nobody for {s:?}");
    assert_eq!(sim, daemon, "pages differ for {s:?}\nsimulate printed:\n{text}");
    assert_eq!(sim_sms, daemon_sms, "SMS texts differ for {s:?}");
}

#[tokio::test]
async fn simulate_pages_whom_the_daemon_pages_at_the_same_instants() {
    let rules = repo().join("rules");
    // An Acme outage nobody answers for a day: every step, every repeat.
    agree(&rules, &scenario(at(START), "Site down", "ops@acme.com", None, 24)).await;
    // Acknowledged after seven minutes, in step 2.
    agree(&rules, &scenario(at(START), "Site down", "ops@acme.com", Some(TimeDelta::minutes(7)), 24)).await;
    // A P3 on the office calendar at 02:00 on Christmas Eve.
    agree(&rules, &scenario(at("2026-12-24T02:00:00Z"), "Invoice question", "bob@unknown.org", None, 72)).await;
}

/// The shipped rules with every schedule and calendar in `zone`.
fn rules_in(zone: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        let mut bytes = std::fs::read(f.path()).unwrap();
        if f.path().extension().is_some_and(|x| x == "toml") {
            let text = String::from_utf8(bytes).unwrap();
            bytes = text.replace("timezone = \"Europe/London\"", &format!("timezone = \"{zone}\"")).into_bytes();
        }
        std::fs::write(dir.path().join(f.file_name()), bytes).unwrap();
    }
    dir
}

/// Each zone with the DST changes of 2027 in it.
const ZONES: [(&str, [&str; 2]); 4] = [
    ("Europe/London", ["2027-03-28T01:00:00Z", "2027-10-31T01:00:00Z"]),
    ("America/New_York", ["2027-03-14T07:00:00Z", "2027-11-07T06:00:00Z"]),
    ("America/Chicago", ["2027-03-14T08:00:00Z", "2027-11-07T07:00:00Z"]),
    ("Australia/Sydney", ["2027-04-03T16:00:00Z", "2027-10-02T16:00:00Z"]),
];

#[test]
fn simulate_agrees_with_the_daemon_on_random_open_times_across_dst_changes() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let folders: Vec<_> = ZONES.iter().map(|(zone, _)| Arc::new(rules_in(zone))).collect();
    let cases = std::env::var("TOCSIN_REHEARSAL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(12);
    let mut runner = TestRunner::new(PropConfig { cases, max_shrink_iters: 8, ..PropConfig::default() });
    let input = (
        0..ZONES.len(),
        0..2usize,
        // From two days before the change to a day after it, to the second.
        -2 * 86_400i64..86_400,
        any::<bool>(),
        prop::option::of(1..40i64),
    );
    runner
        .run(&input, |(zone, change, offset, acme, ack)| {
            let at = at(ZONES[zone].1[change]) + TimeDelta::seconds(offset);
            let (subject, requester) =
                if acme { ("Site down", "ops@acme.com") } else { ("Printer question", "someone@example.net") };
            let s = scenario(at, subject, requester, ack.map(TimeDelta::minutes), 30);
            let rules = folders[zone].clone();
            runtime.block_on(agree(rules.path(), &s));
            Ok(())
        })
        .unwrap();
}

fn tocsin(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tocsin")).args(args).current_dir(dir).env("RUST_LOG", "warn").output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn simulate_prints_pages_deadlines_and_breaches_as_json_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rules = repo().join("rules");
    let templates = repo().join("templates");
    let args = [
        "simulate",
        "--rules",
        rules.to_str().unwrap(),
        "--at",
        "2026-11-24T10:00:00Z",
        "--subject",
        "Site down",
        "--requester",
        "ops@acme.com",
        "--for",
        "2h",
        "--format",
        "json",
    ];
    std::fs::write(
        dir.path().join("tocsin.toml"),
        format!("[paths]\ntemplates = {:?}\noutbox = \"outbox\"\n", templates.display().to_string()),
    )
    .unwrap();
    let o = tocsin(dir.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    let all: Value = serde_json::from_slice(&o.stdout).unwrap();
    let all = all.as_array().unwrap();
    let first = all.iter().find(|h| h["kind"] == "page").unwrap();
    assert_eq!(first["at"], "2026-11-24T10:00:00Z");
    assert_eq!(first["person"], "ana");
    assert_eq!(first["channel"], "sms");
    assert_eq!(first["step"], 1);
    assert!(first["text"].as_str().unwrap().contains("Site down"), "{first}");
    let kinds: Vec<&str> = all.iter().map(|h| h["kind"].as_str().unwrap()).collect();
    // Gold P1: respond in 30m, so a breach at 10:30; dana is paged at 10:05.
    assert!(kinds.contains(&"deadline") && kinds.contains(&"breach") && kinds.contains(&"warning"), "{kinds:?}");
    let breach = all.iter().find(|h| h["kind"] == "breach").unwrap();
    assert_eq!(breach["at"], "2026-11-24T10:30:00Z");
    assert!(all.iter().any(|h| h["kind"] == "page" && h["person"] == "dana" && h["at"] == "2026-11-24T10:05:00Z"));
    let mut ats: Vec<&str> = all.iter().map(|h| h["at"].as_str().unwrap()).collect();
    let sorted = {
        let mut s = ats.clone();
        s.sort();
        s
    };
    assert_eq!(ats, sorted, "in time order");
    ats.clear();
    // No database, no outbox: nothing written, nothing sent.
    let left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(left, ["tocsin.toml"]);

    let o = tocsin(dir.path(), &["simulate", "--at", "yesterday", "--subject", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--at \"yesterday\" is not an RFC 3339 instant"), "{}", text(&o));
}

/// The shipped rules, with the primary rotation's main layer active only on
/// weekdays 08:00-18:00: with Dana's weeknights that leaves the weekends
/// (Saturday 08:00 to Monday 08:00, London) with nobody on call.
fn rules_with_weekend_hole() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        let mut bytes = std::fs::read(f.path()).unwrap();
        if f.file_name() == "schedules.toml" {
            let text = String::from_utf8(bytes).unwrap();
            let planted = text.replacen(
                "members = [\"ana\", \"ben\", \"chen\"]\nshift = \"1w\"\nstart = \"2026-11-02T09:00\"\n",
                "members = [\"ana\", \"ben\", \"chen\"]\nshift = \"1w\"\nstart = \"2026-11-02T09:00\"\nactive = { days = \
                 [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"], from = \"08:00\", to = \"18:00\" }\n",
                1,
            );
            assert_ne!(planted, text, "the shipped primary layer changed; update this test");
            bytes = planted.into_bytes();
        }
        std::fs::write(dir.path().join(f.file_name()), bytes).unwrap();
    }
    dir
}

#[test]
fn check_coverage_exits_1_naming_a_planted_hole_and_0_on_the_shipped_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_with_weekend_hole();
    let templates = repo().join("templates");
    let config = format!(
        "[paths]\nrules = {:?}\ntemplates = {:?}\n",
        rules.path().display().to_string(),
        templates.display().to_string()
    );
    std::fs::write(dir.path().join("tocsin.toml"), config).unwrap();
    let o = tocsin(dir.path(), &["check", "--coverage", "14d"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("hole: schedule primary has nobody on call from "), "{out}");
    assert!(out.contains("(48h)"), "two days each weekend: {out}");
    assert!(out.contains("layer 1 (ana, ben, chen) is active only mon,tue,wed,thu,fri 08:00-18:00"), "{out}");
    assert!(out.contains("yet policy standard, urgent pages it"), "{out}");
    assert!(out.contains("hole(s) in coverage in the next 14days"), "{out}");
    // Plain check stays as it was: the systemd unit runs it.
    let o = tocsin(dir.path(), &["check"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tocsin(&repo(), &["check", "--coverage"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("coverage: no hole in the next 28days"), "{}", text(&o));
}

#[tokio::test]
async fn the_schedules_page_marks_holes_and_an_override_fills_one() {
    let rules = rules_with_weekend_hole();
    let t = TestApp::spawn_with(Workers::Manual, START, rules.path()).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let s = crate::harness::web::sign_in(&t, &max).await.0;
    let (status, html) = crate::harness::web::page(&t, &s, "/schedules").await;
    assert_eq!(status, 200);
    let first = "Hole:</strong> nobody on call Sat 28 Nov 08:00";
    assert!(html.contains(first), "{html}");
    assert!(html.contains("Hole:</strong> nobody on call Sat 05 Dec 08:00"), "{html}");
    assert!(html.contains("class=\"hole\""), "{html}");
    let (status, o) = t
        .post(
            "/api/v1/overrides",
            &max,
            json!({"schedule": "primary", "person": "ben", "start": "2026-11-28T08:00:00Z", "end": "2026-11-30T08:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    let (_, html) = crate::harness::web::page(&t, &s, "/schedules").await;
    assert!(!html.contains(first), "{html}");
    assert!(html.contains("Hole:</strong> nobody on call Sat 05 Dec 08:00"), "{html}");
}

/// A copy of the shipped rules with `file`'s text changed by `edit`.
fn rules_changed(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(repo().join("rules")).unwrap() {
        let f = f.unwrap();
        let mut bytes = std::fs::read(f.path()).unwrap();
        if f.file_name() == file {
            let text = String::from_utf8(bytes).unwrap();
            let changed = edit(&text);
            assert_ne!(changed, text, "the edit of {file} changed nothing");
            bytes = changed.into_bytes();
        }
        std::fs::write(dir.path().join(f.file_name()), bytes).unwrap();
    }
    dir
}

async fn stage_of(rules: &Path) -> Stage {
    let mut config = tocsin::config::Config::default();
    config.paths.rules = rules.to_owned();
    config.paths.templates = repo().join("templates");
    let templates = Templates::load(&config.paths.templates).unwrap();
    Stage::load(&config, tocsin::rules::load(rules).unwrap(), templates, false).await.unwrap()
}

#[tokio::test]
async fn compare_reports_exactly_the_differences_of_a_hand_made_change() {
    // Step 2 of "urgent" stops paging Dana beside the secondary rotation.
    let other_dir = rules_changed("policies.toml", |t| {
        t.replacen("notify = [\"schedule:secondary\", \"person:dana\"]", "notify = [\"schedule:secondary\"]", 1)
    });
    let base = stage_of(&repo().join("rules")).await;
    let other = stage_of(other_dir.path()).await;
    let s = scenario(at(START), "Site down", "ops@acme.com", None, 1);
    let (_, diff) = tocsin::rehearse::compare::compare(&base, &other, &s).await.unwrap();
    type Line<'a> = (bool, String, &'a str, Option<String>, Option<u32>, Option<u32>);
    let got: Vec<Line> = diff
        .iter()
        .map(|d| {
            let h = &d.happening;
            (d.added, h.at.to_rfc3339(), h.kind, h.person.clone(), h.step, h.round)
        })
        .collect();
    let dana = |at: &str, round| (false, at.to_owned(), "page", Some("dana".to_owned()), Some(2), Some(round));
    assert_eq!(got, [dana("2026-11-24T10:05:00+00:00", 0), dana("2026-11-24T10:35:00+00:00", 1)]);

    // The same rules on both sides: nothing to report.
    let same = stage_of(&repo().join("rules")).await;
    let (_, diff) = tocsin::rehearse::compare::compare(&base, &same, &s).await.unwrap();
    assert!(diff.is_empty(), "{diff:?}");

    // And from the command line: only the two lines, marked "-".
    let o = tocsin(
        &repo(),
        &[
            "simulate",
            "--compare",
            other_dir.path().to_str().unwrap(),
            "--at",
            START,
            "--subject",
            "Site down",
            "--requester",
            "ops@acme.com",
            "--for",
            "1h",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let marked: Vec<&str> = out.lines().filter(|l| l.starts_with("- ") || l.starts_with("+ ")).collect();
    assert_eq!(marked.len(), 2, "{out}");
    assert!(
        marked.iter().all(|l| l.starts_with("- 2026-11-24 10:") && l.contains("dana") && l.contains("step 2")),
        "{out}"
    );
}

#[test]
fn the_matrix_summarises_a_rotation_swap_hour_by_hour_on_the_plan_clock() {
    // One plan with one priority, so one row: 168 rehearsals a side.
    let sla = "default_plan = \"standard\"\nwarn_at = [0.5, 0.8]\n[plan.standard]\ncalendar = \"office\"\nP1 = { respond = \
               \"2h\", update = \"4h\", resolve = \"2d\" }\n";
    let routing = "[[route]]\npriority = \"P1\"\npolicy = \"urgent\"\n";
    let small = |swap: bool| {
        let dir = rules_changed("sla.toml", |_| sla.to_owned());
        std::fs::write(dir.path().join("routing.toml"), routing).unwrap();
        if swap {
            let path = dir.path().join("schedules.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, text.replacen("[\"ana\", \"ben\", \"chen\"]", "[\"ben\", \"ana\", \"chen\"]", 1))
                .unwrap();
        }
        dir
    };
    let (base, other) = (small(false), small(true));
    let args = [
        "simulate",
        "--rules",
        base.path().to_str().unwrap(),
        "--compare",
        other.path().to_str().unwrap(),
        "--matrix",
        "--at",
        START,
        "--for",
        "20m",
    ];
    let o = tocsin(&repo(), &args);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    // Week of Monday 23 November 2026: Ana's week on the primary rotation
    // (Ben's with the swap) from Monday 09:00; Dana has the weeknights;
    // Chen's week runs until Monday 09:00 on both sides.
    let expected = "(no customer) P1: 89 of 168 hours change
  Mon 09:00–Mon 17:00 GMT: step 1: ana by sms → ben by sms
  Tue 08:00–Tue 17:00 GMT: step 1: ana by sms → ben by sms
  Wed 08:00–Wed 17:00 GMT: step 1: ana by sms → ben by sms
  Thu 08:00–Thu 17:00 GMT: step 1: ana by sms → ben by sms
  Fri 08:00–Fri 17:00 GMT: step 1: ana by sms → ben by sms
  Sat 08:00–Sun 23:00 GMT: step 1: ana by sms → ben by sms
";
    assert_eq!(out, expected);
    // No change: said in one line.
    let o = tocsin(&repo(), &[&args[..3], &["--compare", base.path().to_str().unwrap()], &args[5..]].concat());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("no change in any of 168 rehearsals"), "{}", text(&o));
}

#[tokio::test]
async fn simulate_honours_the_databases_opt_outs_and_overrides_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tocsin.db");
    let mut config = tocsin::config::Config::default();
    config.database.url = format!("sqlite://{}", db.display());
    {
        let store = tocsin::store::open(&config.database).await.unwrap();
        // Ana replied STOP; Chen covers the primary rotation this morning.
        store.set_sms_opt_out(&"ana".parse().unwrap(), true, at(START)).await.unwrap();
        let cover = tocsin::store::OverrideRecord {
            id: 0,
            schedule: "primary".into(),
            person: "chen".parse().unwrap(),
            start: at("2026-11-24T10:30:00Z"),
            end: at("2026-11-24T12:00:00Z"),
            reason: "dentist".into(),
            created_by: "max".into(),
            created_at: at(START),
        };
        store.insert_override(&cover).await.unwrap();
    }
    // The database and its write-ahead log, byte for byte (SQLite's
    // shared-memory index, `-shm`, is made by any reader of a WAL database).
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| !e.as_ref().unwrap().file_name().to_string_lossy().ends_with("-shm"))
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let toml = format!(
        "[database]\nurl = {:?}\n[paths]\nrules = {:?}\ntemplates = {:?}\n",
        config.database.url,
        repo().join("rules").display().to_string(),
        repo().join("templates").display().to_string()
    );
    let cfg = dir.path().join("tocsin.toml");
    std::fs::write(&cfg, toml).unwrap();
    let before = snapshot(dir.path());
    let args = [
        "simulate",
        "--config",
        cfg.to_str().unwrap(),
        "--at",
        START,
        "--subject",
        "Site down",
        "--requester",
        "ops@acme.com",
        "--for",
        "40m",
        "--format",
        "json",
    ];
    let o = tocsin(dir.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    let all: Value = serde_json::from_slice(&o.stdout).unwrap();
    let pages: Vec<(&str, &str, &str)> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["kind"] == "page" && h["step"] == 1)
        .map(|h| (h["at"].as_str().unwrap(), h["person"].as_str().unwrap(), h["channel"].as_str().unwrap()))
        .collect();
    // Ana by email (she stopped SMS); at the repeat, Chen on the override.
    assert_eq!(pages, [("2026-11-24T10:00:00Z", "ana", "email"), ("2026-11-24T10:30:00Z", "chen", "email")]);
    let handoff = all.as_array().unwrap().iter().find(|h| h["kind"] == "handoff").unwrap();
    assert_eq!(handoff["at"], "2026-11-24T10:30:00Z");
    assert_eq!(handoff["text"], "schedule primary: ana hands over to chen");
    let after = snapshot(dir.path());
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before));
    assert!(after == before, "the database was written to");
}

#[tokio::test]
async fn on_a_reply_measured_plan_only_a_reply_meets_the_respond_clock() {
    let rules = rules_changed("sla.toml", |t| {
        t.replacen(
            "respond_met_by = \"ack\"             # 30 minutes",
            "respond_met_by = \"reply\"           # 30 minutes",
            1,
        )
    });
    let stage = stage_of(rules.path()).await;
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().with_timezone(&Utc);
    let mut s = scenario(at, "Checkout is down", "ops@acme.com", Some(TimeDelta::minutes(5)), 2);
    let breaches = |r: &tocsin::rehearse::Rehearsal| {
        r.happenings.iter().filter(|h| h.kind == "breach" && h.text.contains("respond")).count()
    };
    // Acknowledged at 10:05, never answered: the 30-minute respond clock
    // of gold breaches.
    let acked = rehearse(&stage, &s).await.unwrap();
    assert_eq!(breaches(&acked), 1, "{:#?}", acked.happenings);
    // Answered at 10:10: met.
    s.reply_after = Some(TimeDelta::minutes(10));
    let replied = rehearse(&stage, &s).await.unwrap();
    assert_eq!(breaches(&replied), 0, "{:#?}", replied.happenings);
    assert!(replied.happenings.iter().any(|h| h.kind == "replied" && h.text.contains("replies to the customer")));
}
