//! The durable scheduler: fires timers stored in the database.
//!
//! It sleeps until the earliest timer is due and wakes at once when an
//! earlier one is set, so there is no polling lag. Timers that fell due
//! while the daemon was down are due at start-up and fire at once, oldest
//! first. A timer is claimed with a lease and deleted in the transaction
//! that applies its effects, so it fires once even across crashes.

use std::sync::Arc;

use chrono::TimeDelta;
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::service::cases::{CaseError, CaseService};
use crate::store::Store;

/// The timer loop.
pub struct Scheduler {
    pub cases: Arc<CaseService>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
    /// Names this worker in leases.
    pub owner: String,
    pub lease: TimeDelta,
    pub batch: u32,
    /// Counts fired timers, for tests and metrics to watch.
    pub fired: watch::Sender<u64>,
}

impl Scheduler {
    /// Fires every timer due now; returns how many fired.
    pub async fn run_due(&self) -> Result<usize, CaseError> {
        self.run_due_while(|| true).await
    }

    /// Fires due timers batch by batch while `go` says so: a draining
    /// daemon finishes the batch it holds and claims no more.
    async fn run_due_while(&self, go: impl Fn() -> bool) -> Result<usize, CaseError> {
        let mut fired = 0;
        while go() {
            let now = self.clock.now();
            let timers = self.store.claim_timers(now, &self.owner, self.lease, self.batch).await?;
            if timers.is_empty() {
                return Ok(fired);
            }
            let done = self.cases.fire_all(&timers, &self.owner).await?;
            // Lateness counts until the batch's effects are committed.
            let at = self.clock.now();
            for (timer, done) in timers.iter().zip(done) {
                let late = (at - timer.due).num_milliseconds().max(0) as f64 / 1000.0;
                if done {
                    metrics::histogram!("tocsin_timer_lateness_seconds").record(late);
                    metrics::counter!("tocsin_timers_fired_total", "kind" => timer.kind.to_string()).increment(1);
                    tracing::debug!(case = timer.case.0, kind = %timer.kind, late, "timer fired");
                    fired += 1;
                    self.fired.send_modify(|n| *n += 1);
                }
            }
        }
        Ok(fired)
    }

    /// Runs until `shutdown` turns true; then finishes the batch in hand.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let stop = shutdown.clone();
            if let Err(e) = self.run_due_while(|| !*stop.borrow()).await {
                tracing::error!(error = %e, "scheduler cannot fire timers; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            // Look again within a second even without a signal: another
            // process (`tocsin ingest`) may have set an earlier timer.
            let next = match self.store.next_timer_at().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler cannot read the next timer");
                    None
                }
            };
            let soon = self.clock.now() + TimeDelta::seconds(1);
            let until = next.unwrap_or(soon).min(soon);
            tokio::select! {
                _ = self.clock.sleep_until(until) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
