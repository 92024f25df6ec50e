//! The store on its own, without the daemon: one conformance suite run
//! against SQLite and PostgreSQL.
//!
//! One binary, so it links once; each file is a module.

#[path = "../harness/mod.rs"]
mod harness;

mod conformance;
