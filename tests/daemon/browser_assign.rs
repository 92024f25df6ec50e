//! Assigning a case from the dashboard in real headless Chromium (driven
//! by playwright-core, `tests/browser/assign.mjs`): find it on the Cases
//! page, assign it to Ben, wait on the customer, resume. Skipped loudly
//! without Chromium and playwright-core, as `browser.rs` is.

use std::path::Path;
use std::process::Stdio;

use tocsin::app::Workers;
use tocsin::token::TokenRole;

use crate::harness::{TestApp, repo, skip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_assigns_a_case_from_the_dashboard_in_chromium() {
    let chromium = std::env::var("TOCSIN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script = repo().join("tests/browser/assign.mjs");
    let modules = repo().join("tests/browser/node_modules/playwright-core");
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(node && Path::new(&chromium).exists() && modules.exists()) {
        let required = std::env::var("TOCSIN_TEST_BROWSER").is_ok_and(|v| v == "required");
        assert!(!required, "browser test required but Chromium, node or playwright-core is missing");
        skip::say(&skip::current_test(), "needs Chromium and playwright-core; `bash .ci/run` installs them");
        return;
    }
    let t = TestApp::spawn(Workers::Manual).await;
    let api = t.token("ops", TokenRole::Admin, None).await;
    let n = t.open_outage(&api).await;
    let max = t.token("max", TokenRole::Manager, Some("max")).await;
    let artifacts = repo().join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let child = tokio::process::Command::new("node")
        .arg(&script)
        .args([t.url("").as_str(), max.as_str(), &n.to_string()])
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
    println!("{stdout}");
    assert!(out.status.success(), "browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // What the browser did is real.
    let (_, case) = t.get(&format!("/api/v1/cases/{n}"), &api).await;
    assert_eq!((case["status"].as_str(), case["assignee"].as_str()), (Some("acknowledged"), Some("ben")), "{case}");
    let kinds: Vec<_> = case["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"assigned") && kinds.contains(&"waiting") && kinds.contains(&"resumed"), "{kinds:?}");
}
