//! Tocsin: a self-hosted SLA support-case escalation daemon.
//!
//! Three layers (docs/architecture.md). The pure core lives in its own
//! crate, `tocsin-core`, re-exported here ([`calendar`], [`sla`],
//! [`schedule`], [`escalation`], [`case`], [`command`], [`mail`], …): it
//! takes `now` as an argument and does no I/O. The [`service`] layer does
//! what Tocsin does whichever door asked, with the workers beside it
//! ([`scheduler`], [`notify`]). The adapters only translate: [`http`] (the
//! API, the dashboard, the webhooks), [`smtp`], [`cli`] and [`store`].
//! [`app`] wires them together; [`rehearse`] runs that wiring on a fake
//! clock to show what rules would do.

pub use tocsin_core::{
    audit, calendar, case, command, coverage, digest, escalation, limits, mail, overrides, people, reports, routing,
    schedule, sla,
};

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod notify;
pub mod rehearse;
pub mod rules;
pub mod scheduler;
pub mod service;
pub mod smtp;
pub mod store;
pub mod token;
