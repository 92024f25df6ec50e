//! `tocsin deadline` and `tocsin oncall`: the clock math and the on-call
//! answer the daemon uses, from the command line.

use anyhow::Context;
use chrono::{SecondsFormat, TimeDelta};

use super::{flag_error, load_rules, override_service, parse_instant};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;

/// Prints the deadline `within` of working time after `from` on `calendar`.
pub fn deadline(config: &Config, calendar: &str, from: &str, within: &str) -> anyhow::Result<()> {
    let rules = load_rules(config)?;
    let cal = rules.calendars.get(calendar).with_context(|| {
        format!(
            "unknown calendar {calendar:?}: use one of {}",
            rules.calendars.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let from = parse_instant(from, "--from")?;
    let within = humantime::parse_duration(within)
        .with_context(|| format!("--within {within:?} is not a duration like 2h or 1h 30m"))?;
    let within = TimeDelta::from_std(within).context("--within is too long")?;
    let due = cal.deadline(from, within).context("no deadline within twenty years")?;
    println!("{}", due.with_timezone(&cal.tz).to_rfc3339_opts(SecondsFormat::AutoSi, false));
    Ok(())
}

/// Prints `schedule<TAB>person` (`-` when nobody) for one or every schedule.
pub async fn oncall(config: &Config, schedule: Option<&str>, at: Option<&str>) -> anyhow::Result<()> {
    let overrides = override_service(config).await?;
    let at = at.map(|a| parse_instant(a, "--at")).transpose()?.unwrap_or_else(|| SystemClock.now());
    let answers = overrides.on_call(schedule, at).await.map_err(flag_error)?;
    for (name, who) in answers {
        println!("{name}\t{}", who.as_ref().map_or("-", |p| p.as_str()));
    }
    Ok(())
}
