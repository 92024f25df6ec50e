//! The services: what Tocsin does, whichever door asked. Every door (the
//! HTTP API, the dashboard, the SMS and mail webhooks, the SMTP listener,
//! the CLI) translates its request into a call here; none calls another
//! door.
//!
//! - [`cases`]: the case service, the one way a case changes.
//! - [`commands`]: the command executor for engineers' phone commands.
//! - [`inbox`]: mail in, from receipt to a filed case.
//! - [`intake`]: the inbox's limits on new cases per sender and domain.
//! - [`overrides`]: on-call overrides and who is on call.
//! - [`phone`]: SMS from engineers' phones and Twilio's delivery reports.
//! - [`digest`]: the managers' daily digest.
//! - [`reload`]: reloading the rules folder on SIGHUP or a changed file.
//! - [`search`]: finding cases: the filters both the API and the dashboard read.
//! - [`tokens`]: API tokens, whether one may be used now, sign-in limits.
//! - [`audit`]: the audit log.
//! - [`attachments`]: attachments and raw messages of a case, as downloads.
//!
//! Services may use the core, the store, `notify` and `clock`; they never
//! import `http`, `smtp` or `cli`.

pub mod attachments;
pub mod audit;
pub mod cases;
pub mod commands;
pub mod digest;
pub mod inbox;
pub mod intake;
pub mod overrides;
pub mod phone;
pub mod reload;
pub mod search;
pub mod tokens;
pub mod verify;
