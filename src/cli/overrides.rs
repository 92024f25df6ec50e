//! `tocsin override add|list|remove`: the override service from a shell.

use chrono::{DateTime, SecondsFormat, Utc};

use super::{OverrideCommand, flag_error, override_service, parse_instant};
use crate::config::Config;
use crate::overrides::OverrideRequest;

pub async fn run(config: &Config, command: OverrideCommand) -> anyhow::Result<()> {
    let overrides = override_service(config).await?;
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    match command {
        OverrideCommand::Add { schedule, person, start, end, reason } => {
            let (start, end) = (parse_instant(&start, "--start")?, parse_instant(&end, "--end")?);
            let request = OverrideRequest { schedule, person, start, end, reason };
            let stored = overrides.add(request, "cli").await.map_err(flag_error)?;
            println!("{}", stored.id);
        }
        OverrideCommand::List { schedule } => {
            for o in overrides.list(schedule.as_deref()).await? {
                let (start, end) = (stamp(o.start), stamp(o.end));
                println!("{}\t{}\t{}\t{start}\t{end}\t{}", o.id, o.schedule, o.person, o.reason);
            }
        }
        OverrideCommand::Remove { id } => {
            if !overrides.remove(id, "cli").await? {
                anyhow::bail!("no override {id}; see `tocsin override list`");
            }
            println!("removed override {id}");
        }
    }
    Ok(())
}
