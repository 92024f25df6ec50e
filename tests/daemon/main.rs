//! End-to-end tests: each starts the daemon, in this process on port 0
//! (`harness::TestApp`) or as the real `tocsin` binary, and talks to it
//! over real HTTP, SMTP and signals.
//!
//! One binary for all of them, so the suite links once instead of once per
//! file; each file is a module. Tests here share a process: one that reads
//! process-wide state (the metrics recorder) runs itself in a process of
//! its own (`harness::in_own_process`), and environment variables are set
//! only by the harness, once, before the first daemon starts.

#[path = "../harness/mod.rs"]
mod harness;

mod api;
mod assignment;
mod attachments;
mod browser;
mod browser_assign;
mod cli;
mod clocks_met_by;
mod dashboard;
mod dedup_and_sender_limits;
mod deploy;
mod digest;
mod drain;
mod email;
mod escalation;
mod feeds;
mod find_cases;
mod limits;
mod mail;
mod multi_instance;
mod phone;
mod providers;
mod recovery;
mod rehearse;
mod reload;
mod replies;
mod replies_e2e;
mod request_id;
mod sms;
mod smtp;
mod time;
mod tokens;
mod upgrade;
mod urgency;
mod verify;
