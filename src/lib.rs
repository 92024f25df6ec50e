//! Tocsin: a self-hosted SLA support-case escalation daemon.
//!
//! The pure core ([`calendar`], [`schedule`], [`escalation`], [`case`],
//! [`routing`], [`sla`], [`rules`]) takes `now` as an argument and does no
//! I/O. The adapters around it ([`store`], [`scheduler`], [`notify`],
//! [`api`]) move data between that core and the world.

pub mod api;
pub mod app;
pub mod calendar;
pub mod case;
pub mod clock;
pub mod command;
pub mod config;
pub mod desk;
pub mod escalation;
pub mod inbound;
pub mod notify;
pub mod people;
pub mod replies;
pub mod reports;
pub mod routing;
pub mod rules;
pub mod schedule;
pub mod scheduler;
pub mod sla;
pub mod store;
pub mod token;
pub mod web;
