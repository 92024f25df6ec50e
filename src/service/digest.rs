//! The managers' daily digest: once a day, at `[digest] at` on each
//! manager's own clock, an email with the cases by status, the breaches of
//! the last day, the deadlines coming next and who is on call.

use std::sync::Arc;

use chrono::{NaiveTime, TimeDelta};
use tokio::sync::watch;

use crate::case::{NewPage, PageKind};
use crate::people::ChannelKind;
use crate::service::cases::CaseService;
use crate::store::StoreError;
use tocsin_core::digest;

/// Sends the digests.
pub struct Digester {
    pub cases: Arc<CaseService>,
    /// Local time of day the digest goes out.
    pub at: NaiveTime,
}

impl Digester {
    /// Queues every digest due now that was not queued today; returns how
    /// many it queued.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.cases.clock.now();
        let mut queued = 0;
        let data = self.cases.store.digest_data(now - TimeDelta::hours(24)).await?;
        let overrides = super::overrides::by_schedule(self.cases.store.as_ref(), now).await?;
        let none = Vec::new();
        let on_call: Vec<(String, Option<String>)> = self
            .cases
            .rules
            .get()
            .schedules
            .values()
            .map(|s| {
                let who = s.on_call(overrides.get(&s.name).unwrap_or(&none), now);
                let rules = self.cases.rules.get();
                (s.name.clone(), who.and_then(|p| rules.people.get(&p)).map(|p| p.name.clone()))
            })
            .collect();
        for manager in self.cases.rules.get().managers() {
            let local = now.with_timezone(&manager.timezone);
            if local.time() < self.at {
                continue;
            }
            let page = NewPage {
                person: Some(manager.id.clone()),
                address: manager.email.clone(),
                channel: ChannelKind::Email,
                kind: PageKind::Digest,
                position: None,
                detail: digest::text(manager, &data, &on_call, now),
                author: None,
            };
            let day = local.date_naive().to_string();
            if self.cases.store.queue_digest(&manager.id, &day, &page, now).await? {
                queued += 1;
            }
        }
        if queued > 0 {
            self.cases.wake.dispatcher.notify_one();
        }
        Ok(queued)
    }

    /// Runs until `shutdown`: sends what is due (also at start-up, for a day
    /// whose hour passed while the daemon was down), then sleeps until the
    /// next digest hour.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "cannot queue the daily digest; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            let until = digest::next_due(self.cases.rules.get().managers(), self.at, self.cases.clock.now());
            tokio::select! {
                _ = self.cases.clock.sleep_until(until) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
