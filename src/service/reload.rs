//! Rules reload without a restart: on SIGHUP, and when a file in the rules
//! folder changes (watched the way templates are). The folder is read and
//! checked as `tocsin check` checks it; a valid one replaces the rules in
//! force at once, for everything decided from then on (open cases keep
//! their plan and policy names); a broken one is logged with file and
//! line, counted in `/metrics` (`tocsin_rules_reloads_total{outcome}`),
//! and the running rules stay.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::audit::AuditAction;
use crate::rules::{Diagnostic, LiveRules};
use crate::service::audit::Audit;

/// How often the folder is looked at for changes.
const POLL: Duration = Duration::from_secs(2);

/// Reloads the rules folder `dir` into `rules`.
pub struct RulesReload {
    dir: PathBuf,
    rules: LiveRules,
    audit: Arc<Audit>,
    /// The folder as it was when the rules in force were read, so a change
    /// made before the watcher starts is seen too.
    seen: Vec<(String, u64, Option<SystemTime>)>,
    /// SIGHUP, listened for from the start: its default action would end
    /// the process.
    hangup: std::sync::Mutex<Option<tokio::signal::unix::Signal>>,
}

/// What identifies the folder's contents: names, sizes, change times.
fn fingerprint(dir: &std::path::Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut all: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((e.file_name().to_string_lossy().into_owned(), m.len(), m.modified().ok()))
                })
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

impl RulesReload {
    /// Call it right after reading the rules in force from `dir`.
    pub fn new(dir: PathBuf, rules: LiveRules, audit: Arc<Audit>) -> Self {
        let seen = fingerprint(&dir);
        let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; rules reload only when a file changes");
                None
            }
        };
        Self { dir, rules, audit, seen, hangup: std::sync::Mutex::new(hangup) }
    }

    /// Reads and checks the folder; puts it in force if it is valid.
    /// `why` says what asked ("SIGHUP", "a file changed"). Answers the
    /// new rules' summary, or every problem found.
    pub async fn reload(&self, why: &str) -> Result<String, Vec<Diagnostic>> {
        let started = Instant::now();
        let dir = self.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::rules::load(&dir)).await.unwrap_or_else(|e| {
            Err(vec![Diagnostic { file: self.dir.clone(), line: 0, message: format!("the reload failed: {e}") }])
        });
        match loaded {
            Ok(rules) => {
                let summary = rules.summary();
                self.rules.replace(rules);
                metrics::counter!("tocsin_rules_reloads_total", "outcome" => "applied").increment(1);
                let took = started.elapsed();
                tracing::info!(dir = %self.dir.display(), why, %summary, ?took, "rules reloaded");
                let detail = format!("{why}: {summary}");
                self.audit
                    .record("tocsin", AuditAction::RulesReloaded, &self.dir.display().to_string(), &detail, None)
                    .await;
                Ok(summary)
            }
            Err(problems) => {
                metrics::counter!("tocsin_rules_reloads_total", "outcome" => "refused").increment(1);
                for p in &problems {
                    tracing::error!(file = %p.file.display(), line = p.line, problem = %p.message, why,
                        "rules change refused; the rules in force stay: {p}");
                }
                Err(problems)
            }
        }
    }

    /// Reloads on SIGHUP and when the folder changes, until `shutdown`.
    pub async fn watch(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut hangup = self.hangup.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut seen = self.seen.clone();
        loop {
            let hup = async {
                match hangup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            let why = tokio::select! {
                _ = tokio::time::sleep(POLL) => "a file changed",
                _ = hup => "SIGHUP",
                _ = shutdown.changed() => return,
            };
            let now = fingerprint(&self.dir);
            if why == "a file changed" && now == seen {
                continue;
            }
            seen = now;
            let _ = self.reload(why).await;
        }
    }
}
