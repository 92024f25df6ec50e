//! `tocsin simulate`: rehearses one case on the rules (`crate::rehearse`)
//! and prints what would happen.

use std::path::PathBuf;

use anyhow::Context;
use chrono::TimeDelta;

use super::{load_templates, parse_instant};
use crate::config::Config;
use crate::rehearse::{Scenario, Stage, compare, rehearse};

/// The flags of `tocsin simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// When the case opens (RFC 3339, e.g. 2026-12-24T02:00:00Z). With
    /// --matrix: a day of the week to rehearse (default now).
    #[arg(long, required_unless_present = "matrix")]
    pub at: Option<String>,
    /// The case's subject: routing reads it (e.g. "Site down" is P1).
    /// With --matrix default "Rehearsal" (each row names its priority).
    #[arg(long, required_unless_present = "matrix")]
    pub subject: Option<String>,
    /// The customer's address; its domain picks the customer and plan.
    /// Default: an address no customer owns (the default plan).
    #[arg(long, default_value = "someone@example.net")]
    pub requester: String,
    /// The case's body: routing may read it.
    #[arg(long, default_value = "")]
    pub body: String,
    /// The priority the sender asks for (routing may use it, as the API's
    /// "priority").
    #[arg(long)]
    pub priority: Option<String>,
    /// Whoever the latest step paged acknowledges this long after the case
    /// opens (e.g. 7m). Default: nobody answers.
    #[arg(long, value_name = "DURATION")]
    pub ack_after: Option<String>,
    /// The case is resolved this long after it opens.
    #[arg(long, value_name = "DURATION")]
    pub resolve_after: Option<String>,
    /// Its assignee (else whoever the latest step paged) replies to the
    /// customer this long after it opens: on a plan with
    /// `respond_met_by = "reply"` this is what meets the respond clock.
    #[arg(long, value_name = "DURATION")]
    pub reply_after: Option<String>,
    /// How long to run the case.
    #[arg(long = "for", value_name = "DURATION", default_value = "24h")]
    pub run_for: String,
    /// The rules folder to rehearse. Default: [paths] rules of the config.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Rehearse the same on this second rules folder too and print only
    /// what differs: `-` what only the first rules do, `+` what only these do.
    #[arg(long, value_name = "OTHER_RULES_DIR")]
    pub compare: Option<PathBuf>,
    /// With --compare: every customer (and a sender no customer owns) ×
    /// every priority of its plan × each hour of the week of --at on the
    /// plan calendar's clock; prints a summary of what changes.
    #[arg(long, requires = "compare")]
    pub matrix: bool,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub format: Output,
}

/// How a rehearsal is printed.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    /// A summary line, then one line per happening on the plan
    /// calendar's clock (with --compare: only differences, marked - and
    /// +; with --matrix: the hours that change, per row).
    Text,
    /// One JSON array: of {"at", "kind", "person", "channel", "step",
    /// "round", "text"} (with --compare also "side"; with --matrix one
    /// object per row that changes).
    Json,
}

/// A humantime duration from flag `flag`.
pub(crate) fn duration(s: &str, flag: &str) -> anyhow::Result<TimeDelta> {
    let d =
        humantime::parse_duration(s).with_context(|| format!("{flag} {s:?} is not a duration like 90s, 15m or 2h"))?;
    TimeDelta::from_std(d).with_context(|| format!("{flag} {s:?} is too long"))
}

/// The config with `rules` in place of its rules folder.
pub(crate) fn with_rules(config: &Config, rules: Option<&std::path::Path>) -> Config {
    let mut config = config.clone();
    if let Some(dir) = rules {
        config.paths.rules = dir.to_owned();
    }
    config
}

/// The stage `config` describes: its rules and templates, and the opt-outs
/// and overrides of its database when a config file names one.
pub(crate) async fn stage(config: &Config) -> anyhow::Result<Stage> {
    let rules = super::load_rules(config).with_context(|| format!("rules in {}", config.paths.rules.display()))?;
    let templates = load_templates(config)?;
    Stage::load(config, rules, templates, config.source.is_some()).await
}

impl SimulateArgs {
    /// The scenario the flags describe.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let subject = self.subject.as_deref().unwrap_or("Rehearsal").trim();
        if subject.is_empty() {
            anyhow::bail!("--subject is empty: give the subject the customer's mail would have");
        }
        if !self.requester.contains('@') {
            anyhow::bail!("--requester {:?} is not a mail address like ops@acme.com", self.requester);
        }
        let priority = match &self.priority {
            Some(p) => Some(p.parse().map_err(|e| anyhow::anyhow!("--priority {p:?}: {e}"))?),
            None => None,
        };
        let run_for = duration(&self.run_for, "--for")?;
        if run_for > TimeDelta::days(366) {
            anyhow::bail!("--for {} is longer than a year; rehearse a shorter stretch", self.run_for);
        }
        Ok(Scenario {
            at: match &self.at {
                Some(at) => parse_instant(at, "--at")?,
                None => crate::clock::Clock::now(&crate::clock::SystemClock),
            },
            subject: subject.to_owned(),
            body: self.body.clone(),
            requester: self.requester.clone(),
            priority,
            ack_after: self.ack_after.as_deref().map(|d| duration(d, "--ack-after")).transpose()?,
            resolve_after: self.resolve_after.as_deref().map(|d| duration(d, "--resolve-after")).transpose()?,
            reply_after: self.reply_after.as_deref().map(|d| duration(d, "--reply-after")).transpose()?,
            run_for,
        })
    }
}

pub async fn run(config: &Config, args: SimulateArgs) -> anyhow::Result<()> {
    let scenario = args.scenario()?;
    let config = with_rules(config, args.rules.as_deref());
    let stage = stage(&config).await?;
    let Some(other_dir) = &args.compare else {
        let rehearsal = rehearse(&stage, &scenario).await?;
        match args.format {
            Output::Text => print!("{}", rehearsal.text()),
            Output::Json => println!("{}", rehearsal.json()),
        }
        return Ok(());
    };
    let other = with_rules(&config, Some(other_dir));
    let other = self::stage(&other).await?;
    if args.matrix {
        let started = std::time::Instant::now();
        // Twice the cores: a rehearsal waits on its SQLite connection's thread
        // half the time, and another can use the core meanwhile.
        let workers = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
        let changes = compare::matrix(&stage, &other, &scenario, workers).await?;
        let cells: usize = compare::rows(&stage).iter().map(|r| compare::week(scenario.at, r.tz).len()).sum();
        match args.format {
            Output::Text => {
                print!("{}", compare::matrix_text(&changes, cells));
                eprintln!("{cells} rehearsals on each rule set in {:.1}s", started.elapsed().as_secs_f64());
            }
            Output::Json => println!("{}", serde_json::to_string_pretty(&compare::matrix_json(&changes))?),
        }
        return Ok(());
    }
    let (rehearsal, diff) = compare::compare(&stage, &other, &scenario).await?;
    match args.format {
        Output::Text => print!("{}", compare::text(&rehearsal, &diff)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&compare::json(&diff))?),
    }
    Ok(())
}
