//! The one place Tocsin reads the time.
//!
//! Everything else takes `now` as an argument or asks a [`Clock`]. The daemon
//! uses [`SystemClock`]; tests use [`FakeClock`] and move time by hand, so a
//! test of a ten-minute escalation runs in milliseconds and never sleeps.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// A boxed future that a clock returns from `sleep_until`.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Source of the current instant, and a way to wait for a later one.
///
/// The scheduler sleeps through this trait rather than through
/// `tokio::time`, so a fake clock can wake it: paused tokio time would also
/// fire sqlx's pool time-outs at once.
pub trait Clock: Send + Sync + 'static {
    /// The current instant, in UTC.
    fn now(&self) -> DateTime<Utc>;
    /// A future that completes once `now() >= at`.
    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep;
}

/// The wall clock of the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        let wait = (at - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to. Sleepers wake as soon as the time
/// they wait for has been reached.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl FakeClock {
    /// A fake clock standing still at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        let (tx, _rx) = watch::channel(start);
        Self { now: Arc::new(tx) }
    }

    /// Moves the clock forward by `by` (never backwards).
    pub fn advance(&self, by: TimeDelta) {
        self.now.send_modify(|now| *now += by.max(TimeDelta::zero()));
    }

    /// Sets the clock to `at`, if that is not in its past.
    pub fn set(&self, at: DateTime<Utc>) {
        self.now.send_modify(|now| *now = (*now).max(at));
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; if it is gone, nobody can
            // move time any more and the sleeper must not wake spuriously.
            if rx.wait_for(|now| *now >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fake_sleeper_wakes_when_time_reaches_its_instant() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let clock = FakeClock::new(start);
        let mut sleeper = clock.sleep_until(start + TimeDelta::seconds(60));
        clock.advance(TimeDelta::seconds(59));
        // A zero time-out polls the sleeper exactly once.
        let early = tokio::time::timeout(std::time::Duration::ZERO, &mut sleeper).await;
        assert!(early.is_err(), "woke a second early");
        clock.advance(TimeDelta::seconds(1));
        let on_time = tokio::time::timeout(std::time::Duration::ZERO, &mut sleeper).await;
        assert!(on_time.is_ok(), "did not wake at its instant");
        assert_eq!(clock.now(), start + TimeDelta::seconds(60));
    }
}
