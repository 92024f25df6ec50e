//! `tocsin ingest`: one message from an MTA pipe, with sysexits statuses
//! the MTA understands.

use std::process::ExitCode;
use std::sync::Arc;

use crate::app::Services;
use crate::clock::SystemClock;
use crate::config::Config;

/// sysexits.h: the message is unusable.
const EX_DATAERR: u8 = 65;
/// sysexits.h: try again later.
const EX_TEMPFAIL: u8 = 75;

pub async fn run(config: Option<&std::path::Path>, sender: Option<String>, recipient: Vec<String>) -> ExitCode {
    use tokio::io::AsyncReadExt;
    let temporary = |what: String| {
        eprintln!("tocsin ingest: {what}; the MTA should try again later");
        ExitCode::from(EX_TEMPFAIL)
    };
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return temporary(e),
    };
    let Ok(max) = crate::config::parse_size(&config.email.max_size) else {
        return temporary("bad [email] max_size".into());
    };
    let mut raw = Vec::new();
    let read = tokio::io::stdin().take(max as u64 + 1).read_to_end(&mut raw).await;
    if let Err(e) = read {
        return temporary(format!("cannot read standard input ({e})"));
    }
    if raw.len() > max {
        eprintln!("tocsin ingest: the message is larger than [email] max_size ({max} bytes)");
        return ExitCode::from(EX_DATAERR);
    }
    let rules = match crate::rules::load(&config.paths.rules) {
        Ok(r) => r,
        Err(errors) => return temporary(format!("{} error(s) in the rules (see `tocsin check`)", errors.len())),
    };
    let inbox = match Services::open(&config, rules, Arc::new(SystemClock)).await {
        Ok(services) => services.inbox,
        Err(e) => return temporary(format!("{e:#}")),
    };
    let envelope = crate::mail::Envelope { from: sender, to: recipient };
    let id = match inbox.receive(&raw, &envelope, "pipe").await {
        Ok(id) => id,
        Err(e) => return temporary(format!("cannot store the message ({e})")),
    };
    // From here on the message is safe: if filing fails now, the daemon's
    // inbox worker files the row, and the MTA must not send a second copy.
    match inbox.file(id).await {
        Ok(crate::service::inbox::Outcome::Unusable(why)) => {
            eprintln!("tocsin ingest: unusable message, kept raw as inbox {id}: {why}");
            ExitCode::from(EX_DATAERR)
        }
        Ok(outcome) => {
            let case = outcome.case().map_or_else(String::new, |n| format!(" {n}"));
            println!("{} inbox {id}{case}", outcome.status());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tocsin ingest: stored as inbox {id}; the daemon will file it ({e})");
            ExitCode::SUCCESS
        }
    }
}
