//! `tocsin override add|list|remove`: the override service from a shell.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{OverrideCommand, load_rules, parse_instant};
use crate::app::Services;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::overrides::OverrideRequest;
use crate::service::overrides::OverrideError;

pub async fn run(config: &Config, command: OverrideCommand) -> anyhow::Result<()> {
    let rules = load_rules(config)?;
    let services = Services::open(config, rules, Arc::new(SystemClock)).await?;
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    match command {
        OverrideCommand::Add { schedule, person, start, end, reason } => {
            let (start, end) = (parse_instant(&start, "--start")?, parse_instant(&end, "--end")?);
            let request = OverrideRequest { schedule, person, start, end, reason };
            let stored = services.overrides.add(request, "cli").await.map_err(|e| match e {
                // The fields are the flags of the same name.
                OverrideError::Invalid(field) => anyhow::anyhow!("--{field}"),
                OverrideError::Store(e) => e.into(),
            })?;
            println!("{}", stored.id);
        }
        OverrideCommand::List { schedule } => {
            for o in services.overrides.list(schedule.as_deref()).await? {
                let (start, end) = (stamp(o.start), stamp(o.end));
                println!("{}\t{}\t{}\t{start}\t{end}\t{}", o.id, o.schedule, o.person, o.reason);
            }
        }
        OverrideCommand::Remove { id } => {
            if !services.overrides.remove(id).await? {
                anyhow::bail!("no override {id}; see `tocsin override list`");
            }
            println!("removed override {id}");
        }
    }
    Ok(())
}
