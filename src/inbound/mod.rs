//! Mail in: one `ingest` path behind three doors (the SMTP listener,
//! `tocsin ingest` for an MTA pipe, and `POST /hooks/email`).

pub mod mail;
pub mod strip;
