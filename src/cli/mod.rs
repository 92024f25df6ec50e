//! The command line: argument parsing and one dispatch per subcommand. Each
//! subcommand is a thin adapter over the services (`crate::service`) or the
//! daemon's start-up (`crate::app`); none holds a rule of its own.

mod check;
mod ingest;
mod overrides;
mod serve;
mod simulate;
mod time;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::notify::Templates;
use crate::rules::Rules;

/// Tocsin: SLA support-case escalation. Mail in, pages out, timers exact to
/// the second.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version, about, long_about = None)]
pub struct Cli {
    /// Config file. Default: ./tocsin.toml if it exists, else built-in
    /// defaults (SQLite file tocsin.db, ./rules, ./templates, ./outbox).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format on stderr. Filter with RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP API, scheduler and notification dispatcher.
    /// Refuses to start on invalid config, rules or templates. Reloads the
    /// rules folder on SIGHUP and when a file in it changes (a broken
    /// change is logged and refused; the running rules stay). SIGTERM or
    /// Ctrl-C drains and stops.
    Serve,
    /// Validate config, rules and templates; print a summary, or every
    /// error with its file and line. Also names where the reply key comes
    /// from and warns when it is weak, its file readable by others, or
    /// PostgreSQL has no shared key (serve then refuses a new database).
    /// Exit status 1 on errors.
    ///
    /// With --coverage [DURATION] (default 28d from now) also every hole
    /// in that stretch: times a schedule some policy pages has nobody on
    /// call (with the layers and overrides that leave it empty), people no
    /// channel reaches (SMS opted out counts, when a config file names a
    /// database), steps that reach nobody, plans whose respond target ends
    /// before their policy pages a second person, calendars with no working
    /// time. Exit status 1 when there is any, so it can gate a deploy.
    Check {
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "28d")]
        coverage: Option<String>,
    },
    /// Read one RFC 5322 message on standard input and file it, for an MTA
    /// pipe (Postfix: `argv=tocsin ingest --sender ${sender} --recipient
    /// ${recipient}`). Exit status after sysexits: 0 filed (or a duplicate
    /// or automatic message, which opens nothing, or one held by the
    /// new-case limits, kept for a manager), 65 unusable (kept raw and
    /// flagged) or too large, 75 try again later (store or config trouble).
    Ingest {
        /// The envelope sender; "" for a bounce's null return path.
        #[arg(long)]
        sender: Option<String>,
        /// The envelope recipient(s).
        #[arg(long)]
        recipient: Vec<String>,
    },
    /// Apply database migrations (serve also does this).
    Migrate,
    /// Manage API tokens: create (with an expiry, or feed-only), list,
    /// revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the audit log: token creation and revocation, dashboard
    /// sign-ins and failed sign-ins, overrides added and removed, actions
    /// an admin or integration token took for someone else, rules reloads.
    /// Oldest first;
    /// text is `at<TAB>actor<TAB>action<TAB>subject<TAB>client<TAB>detail`.
    Audit {
        /// RFC 3339 instant, inclusive; default a week before --to.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 instant, inclusive; default now.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the deadline a clock started at --from reaches after --within
    /// of working time in calendar --calendar (RFC 3339, calendar's offset).
    Deadline {
        /// A calendar from rules/ or the built-in 24x7.
        #[arg(long)]
        calendar: String,
        /// Start instant, RFC 3339 (2026-12-24T16:45:00+00:00).
        #[arg(long)]
        from: String,
        /// Working time, e.g. 2h, 1h 30m, 3d.
        #[arg(long)]
        within: String,
    },
    /// Rehearse a case: open it at --at on a fake clock with the real rules,
    /// templates and the engine the daemon runs, nobody answering unless
    /// --ack-after, and print every page (person, channel, step, SMS text),
    /// deadline, warning, breach and each hand-off that changed who a later
    /// step reached, in time order on the plan calendar's clock. Writes no
    /// database and sends nothing; with --config it reads the database's
    /// SMS opt-outs and overrides.
    Simulate(simulate::SimulateArgs),
    /// Manage on-call overrides (they win over every layer of a schedule).
    Override {
        #[command(subcommand)]
        command: OverrideCommand,
    },
    /// Print who is on call: one line per schedule, `schedule<TAB>person`
    /// (`-` when nobody). Honours overrides stored in the database.
    Oncall {
        /// Only this schedule.
        #[arg(long)]
        schedule: Option<String>,
        /// At this instant (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OverrideCommand {
    /// Put PERSON on call on SCHEDULE from --start to --end; prints its id.
    Add {
        #[arg(long)]
        schedule: String,
        #[arg(long)]
        person: String,
        /// RFC 3339 instant.
        #[arg(long)]
        start: String,
        /// RFC 3339 instant, after --start.
        #[arg(long)]
        end: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List overrides that have not ended:
    /// `id<TAB>schedule<TAB>person<TAB>start<TAB>end<TAB>reason`.
    List {
        #[arg(long)]
        schedule: Option<String>,
    },
    /// Remove an override by id.
    Remove { id: i64 },
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Tab-separated lines under a header line.
    Text,
    /// One JSON array.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once; only its hash is stored.
    Create {
        /// A unique name for the token (who or what uses it); revoke and
        /// list name it.
        #[arg(long)]
        name: String,
        /// engineer, manager, admin, integration, or feed (reads one
        /// calendar feed only: give --person or --schedule).
        #[arg(long)]
        role: String,
        /// The person (id from rules/people.toml) the token acts as; for a
        /// feed token, whose feed it opens.
        #[arg(long)]
        person: Option<String>,
        /// Feed tokens only: the schedule whose feed it opens.
        #[arg(long)]
        schedule: Option<String>,
        /// When the token stops working: a duration from now (90d, 12h), an
        /// RFC 3339 instant (2027-01-31T18:00:00Z) or a date (2027-01-31,
        /// that day's start, UTC). Default: never.
        #[arg(long, value_name = "DURATION|DATE")]
        expires: Option<String>,
    },
    /// List tokens: name, role, scope (person or schedule), created,
    /// expires, revoked. Never a secret or a hash.
    List {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Revoke a token by name: from now on every request with it gets 401,
    /// and its dashboard sessions end at once.
    Revoke { name: String },
}

/// `quiet`: warnings only unless RUST_LOG says otherwise (a rehearsal's
/// engine would log every case it opens and page it sends).
fn init_logs(format: LogFormat, quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

pub(crate) fn load_rules(config: &Config) -> anyhow::Result<Rules> {
    crate::rules::load(&config.paths.rules).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} error(s) in the rules; fix them and run `tocsin check`", errors.len())
    })
}

pub(crate) fn load_templates(config: &Config) -> anyhow::Result<Templates> {
    Templates::load(&config.paths.templates).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} error(s) in the templates", errors.len())
    })
}

/// The override service on the configured store: all `override` and
/// `oncall` need (no reply key, no inbox).
pub(crate) async fn override_service(config: &Config) -> anyhow::Result<crate::service::overrides::OverrideService> {
    let rules = crate::rules::LiveRules::new(load_rules(config)?);
    let store = crate::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let clock = std::sync::Arc::new(crate::clock::SystemClock);
    Ok(crate::service::overrides::OverrideService { store, rules, clock })
}

/// An override refused for a field is refused for the flag of that name.
pub(crate) fn flag_error(e: crate::service::overrides::OverrideError) -> anyhow::Error {
    match e {
        crate::service::overrides::OverrideError::Invalid(field) => anyhow::anyhow!("--{field}"),
        crate::service::overrides::OverrideError::Store(e) => e.into(),
    }
}

pub(crate) fn parse_instant(s: &str, what: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{what} {s:?} is not an RFC 3339 instant like 2026-12-24T16:45:00+00:00"))
}

/// Runs the `tocsin` binary: parses the arguments, starts the runtime and
/// dispatches.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format, matches!(cli.command, Command::Simulate(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Ingest { sender, recipient } = cli.command {
        // Its exit statuses are the MTA's (sysexits), not ours.
        return runtime.block_on(ingest::run(cli.config.as_deref(), sender, recipient));
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).map_err(anyhow::Error::msg)?;
    match cli.command {
        // Handled before: it has exit codes of its own.
        Command::Ingest { .. } => Ok(()),
        Command::Serve => serve::run(config).await,
        Command::Check { coverage: None } => check::run(&config),
        Command::Check { coverage: Some(within) } => {
            check::run(&config)?;
            check::coverage(&config, &within).await
        }
        Command::Migrate => {
            crate::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
            println!("migrations applied to {}", crate::store::redacted(&config.database.url));
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { name, role, person, schedule, expires } } => {
            token::create(&config, crate::service::tokens::NewToken { name, role, person, schedule, expires }).await
        }
        Command::Token { command: TokenCommand::List { format } } => token::list(&config, format).await,
        Command::Token { command: TokenCommand::Revoke { name } } => token::revoke(&config, &name).await,
        Command::Audit { from, to, format } => token::audit(&config, from.as_deref(), to.as_deref(), format).await,
        Command::Deadline { calendar, from, within } => time::deadline(&config, &calendar, &from, &within),
        Command::Override { command } => overrides::run(&config, command).await,
        Command::Simulate(args) => simulate::run(&config, args).await,
        Command::Oncall { schedule, at } => time::oncall(&config, schedule.as_deref(), at.as_deref()).await,
    }
}
