//! `tocsin serve`: binds the listeners, starts the daemon and drains it on
//! SIGTERM or Ctrl-C.

use std::sync::Arc;

use anyhow::Context;

use super::{load_rules, load_templates};
use crate::app::{App, Listeners, Workers};
use crate::clock::SystemClock;
use crate::config::Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    // Listen for signals before anything else: one that arrives while the
    // daemon is starting waits here and starts the drain once it is up,
    // instead of killing the process with its ports already open.
    let mut signals = Signals::new()?;
    let rules = load_rules(&config)?;
    let templates = load_templates(&config)?;
    let store = crate::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.server.http)
        .await
        .with_context(|| format!("cannot listen on {} ([server] http)", config.server.http))?;
    let smtp = match config.server.smtp.as_str() {
        "" => None,
        addr => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} ([server] smtp)"))?,
        ),
    };
    let clock = Arc::new(SystemClock);
    let listeners = Listeners { http: listener, smtp };
    let app = App::start(&config, rules, templates, store, clock, listeners, Workers::Background).await?;
    tracing::info!(http = %app.addr, smtp = ?app.smtp_addr, database = %crate::store::redacted(&config.database.url), outbox = %config.paths.outbox.display(), "tocsin is running");
    let first = signals.next().await;
    tracing::info!(signal = first, "drain: signal received; send it again to exit at once");
    tokio::select! {
        drained = app.drain() => {
            tracing::info!(finished = drained.finished, released_timers = drained.released, "stopped");
            Ok(())
        }
        second = signals.next() => {
            tracing::warn!(signal = second, "second signal: exiting now, without finishing the drain");
            std::process::exit(EX_INTERRUPTED.into());
        }
    }
}

/// Exit status when a second signal cuts the drain short (128 + SIGTERM,
/// as a shell reports a process killed by it).
const EX_INTERRUPTED: u8 = 143;

/// SIGTERM and Ctrl-C (SIGINT), registered once so a second signal during
/// the drain is not missed.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    /// Waits for the next signal; returns its name.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
