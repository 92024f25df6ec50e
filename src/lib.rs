//! Tocsin: a self-hosted SLA support-case escalation daemon.
//!
//! The pure core lives in its own crate, `tocsin-core` (re-exported here:
//! [`calendar`], [`schedule`], [`escalation`], [`case`], [`routing`],
//! [`sla`], [`command`], [`mail`], [`reports`], [`people`]); it takes `now`
//! as an argument and does no I/O. This crate wraps it: [`rules`] reads the
//! rules folder, [`store`] carries out the transitions the core decides,
//! [`scheduler`] and [`notify`] move time and messages, and the doors
//! ([`api`], [`web`], [`inbound`]) translate requests into case actions.

pub use tocsin_core::{
    calendar, case, command, digest, escalation, limits, mail, overrides, people, reports, routing, schedule, sla,
};

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod notify;
pub mod rules;
pub mod scheduler;
pub mod service;
pub mod smtp;
pub mod store;
pub mod token;
