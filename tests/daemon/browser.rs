//! The dashboard in real headless Chromium (Debian's `chromium`, driven by
//! playwright-core from `tests/browser`): sign in, see the breached case on
//! top, watch a countdown change state, acknowledge from the case page,
//! download a CSV, fit a phone screen. Screenshots land in
//! `target/browser-artifacts/`.
//!
//! `.ci/run` installs Chromium and playwright-core and sets
//! `TOCSIN_TEST_BROWSER=required`; without them this test says loudly that
//! it was skipped.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use chrono::TimeDelta;
use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::{TestApp, repo, skip};

fn tools() -> Option<(PathBuf, PathBuf)> {
    let chromium = PathBuf::from(std::env::var("TOCSIN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let script = repo().join("tests/browser/dashboard.mjs");
    let modules = repo().join("tests/browser/node_modules/playwright-core");
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let required = std::env::var("TOCSIN_TEST_BROWSER").is_ok_and(|v| v == "required");
    if node && chromium.exists() && modules.exists() {
        return Some((chromium, script));
    }
    let missing =
        format!("node: {node}, {}: {}, playwright-core: {}", chromium.display(), chromium.exists(), modules.exists());
    assert!(!required, "browser test required but its tools are missing ({missing}); run `bash .ci/run`");
    skip::say(
        &skip::current_test(),
        &format!("needs Chromium and playwright-core ({missing}); `bash .ci/run` installs them"),
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_works_the_dashboard_in_chromium() {
    let Some((chromium, script)) = tools() else { return };
    let t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let breached = t.open_outage(&api).await; // P1 at 10:00: respond by 10:30
    t.advance(TimeDelta::minutes(31)).await;
    let (status, c) = t
        .post("/api/v1/cases", &api, serde_json::json!({"subject": "Database outage", "requester": "ops@acme.com"}))
        .await;
    assert_eq!(status, 201);
    let warning = c["number"].as_i64().unwrap();
    // Its first warning (half of 30m) falls at 10:46:00; the page is drawn
    // at 10:45:57 and must change state on its own.
    t.advance_to("2026-11-24T10:45:57Z").await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;

    let artifacts = repo().join("target/browser-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let base = t.url("");
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .args([base.as_str(), max.as_str(), &breached.to_string(), &warning.to_string()])
        .arg(&artifacts)
        .env("TOCSIN_TEST_CHROMIUM", &chromium)
        .current_dir(script.parent().unwrap_or(Path::new(".")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the browser run finishes within two minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "browser run failed:\n{stdout}\n{stderr}");
    assert!(artifacts.join("result.txt").exists());
    for shot in ["1-now.png", "2-warning.png", "3-case.png", "4-reports.png", "5-phone.png"] {
        assert!(artifacts.join(shot).exists(), "screenshot {shot} missing");
    }
    // What the browser did is real: the case is acknowledged by Max.
    let (_, case) = t.get(&format!("/api/v1/cases/{breached}"), &api).await;
    assert_eq!(case["status"], "acknowledged");
    assert_eq!(case["assignee"], "max");
    println!("screenshots in {}", artifacts.display());
}
