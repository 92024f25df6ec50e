//! Tocsin's pure core: what a support case is and what every change does to
//! it, with no I/O.
//!
//! Everything here is plain functions over plain data. Nothing reads the
//! clock (`now` is an argument), the disk, the network or a database; the
//! crate's dependencies hold that boundary, since none of tokio, sqlx, axum,
//! hyper, reqwest or lettre is among them. The daemon (`tocsin`) wraps this
//! core in services and adapters: the store carries out the transitions
//! decided here, the doors translate requests into calls on it.
//!
//! - [`audit`]: the audit log's action names, and the sign-in limit.
//! - [`calendar`]: working time, holidays, deadlines.
//! - [`sla`]: plans, priorities, customers, the SLA clocks of a case.
//! - [`schedule`]: on-call rotations, layers and overrides.
//! - [`people`]: people, their channels and phone numbers.
//! - [`routing`]: which priority, plan and policy a new case gets.
//! - [`escalation`]: policies, steps and who a step reaches.
//! - [`coverage`]: holes in the rules ahead: nobody on call, people or
//!   steps that reach nobody, policies slower than their SLA.
//! - [`overrides`]: the check every door runs on a requested override.
//! - [`limits`]: input sizes every door refuses alike.
//! - [`rules`]: the rules folder's types, checked as one set.
//! - [`case`]: cases and the decisions on them ([`case::decide`]).
//! - [`delivery`]: what a provider's outcome does to a page.
//! - [`command`]: the grammar of commands from phones.
//! - [`digest`]: the managers' daily digest text.
//! - [`mail`]: reading an inbound message, reply stripping, judging its
//!   sender (`mail::auth`).
//! - [`reports`]: report figures (compliance, MTTA/MTTR, breaches, pages).

pub mod audit;
pub mod calendar;
pub mod case;
pub mod command;
pub mod coverage;
pub mod delivery;
pub mod digest;
pub mod escalation;
pub mod limits;
pub mod mail;
pub mod overrides;
pub mod people;
pub mod reports;
pub mod routing;
pub mod rules;
pub mod schedule;
pub mod sla;
