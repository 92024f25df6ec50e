//! The `tocsin` binary: the daemon and its operator commands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use tocsin::app::{App, Listeners, Workers};
use tocsin::clock::{Clock, SystemClock};
use tocsin::config::Config;
use tocsin::notify::Templates;
use tocsin::people::PersonId;
use tocsin::rules::Rules;
use tocsin::schedule::Override;
use tocsin::store::OverrideRecord;
use tocsin::token::{self, TokenInfo, TokenRole};

/// Tocsin: SLA support-case escalation. Mail in, pages out, timers exact to
/// the second.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version, about, long_about = None)]
struct Cli {
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
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: HTTP API, scheduler and notification dispatcher.
    /// Refuses to start on invalid config, rules or templates.
    Serve,
    /// Validate config, rules and templates; print a summary, or every
    /// error with its file and line. Exit status 1 on errors.
    Check,
    /// Read one RFC 5322 message on standard input and file it, for an MTA
    /// pipe (Postfix: `argv=tocsin ingest --sender ${sender} --recipient
    /// ${recipient}`). Exit status after sysexits: 0 filed (or a duplicate
    /// or automatic message, which opens nothing), 65 unusable (kept raw and
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
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
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
enum OverrideCommand {
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

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it once; only its hash is stored.
    Create {
        /// A unique name for the token (who or what uses it).
        #[arg(long)]
        name: String,
        /// engineer, manager, admin or integration.
        #[arg(long)]
        role: String,
        /// The person (id from rules/people.toml) the token acts as.
        #[arg(long)]
        person: Option<String>,
    },
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn load_rules(config: &Config) -> anyhow::Result<Rules> {
    tocsin::rules::load(&config.paths.rules).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} error(s) in the rules; fix them and run `tocsin check`", errors.len())
    })
}

fn load_templates(config: &Config) -> anyhow::Result<Templates> {
    Templates::load(&config.paths.templates).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} error(s) in the templates", errors.len())
    })
}

fn parse_instant(s: &str, what: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{what} {s:?} is not an RFC 3339 instant like 2026-12-24T16:45:00+00:00"))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Listen for signals before anything else: one that arrives while the
    // daemon is starting waits here and starts the drain once it is up,
    // instead of killing the process with its ports already open.
    let mut signals = Signals::new()?;
    let rules = load_rules(&config)?;
    let templates = load_templates(&config)?;
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.server.http)
        .await
        .with_context(|| format!("cannot listen on {} ([server] http)", config.server.http))?;
    let smtp = match config.server.smtp.as_str() {
        "" => None,
        addr => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} ([server] smtp)"))?,
        ),
    };
    let clock = Arc::new(SystemClock);
    let listeners = Listeners { http: listener, smtp };
    let app = App::start(&config, rules, templates, store, clock, listeners, Workers::Background).await?;
    tracing::info!(http = %app.addr, smtp = ?app.smtp_addr, database = %tocsin::store::redacted(&config.database.url), outbox = %config.paths.outbox.display(), "tocsin is running");
    let first = signals.next().await;
    tracing::info!(signal = first, "drain: signal received; send it again to exit at once");
    tokio::select! {
        drained = app.drain() => {
            tracing::info!(finished = drained.finished, released_timers = drained.released, "stopped");
            Ok(())
        }
        second = signals.next() => {
            tracing::warn!(signal = second, "second signal: exiting now, without finishing the drain");
            std::process::exit(EX_INTERRUPTED.into());
        }
    }
}

/// Exit status when a second signal cuts the drain short (128 + SIGTERM,
/// as a shell reports a process killed by it).
const EX_INTERRUPTED: u8 = 143;

/// SIGTERM and Ctrl-C (SIGINT), registered once so a second signal during
/// the drain is not missed.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    /// Waits for the next signal; returns its name.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

fn check(config: &Config) -> anyhow::Result<()> {
    let source = config.source.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
    let rules = tocsin::rules::load(&config.paths.rules);
    let templates = Templates::load(&config.paths.templates);
    let mut errors = 0;
    match &rules {
        Ok(r) => println!("rules ({}): {}", config.paths.rules.display(), r.summary()),
        Err(e) => {
            errors += e.len();
            e.iter().for_each(|d| println!("{d}"));
        }
    }
    match &templates {
        Ok(t) => println!("templates ({}): {} templates", config.paths.templates.display(), t.len()),
        Err(e) => {
            errors += e.len();
            e.iter().for_each(|d| println!("{d}"));
        }
    }
    println!("config: {source}");
    if errors > 0 {
        bail!("{errors} error(s)");
    }
    println!("ok");
    Ok(())
}

async fn overrides(config: &Config, command: OverrideCommand) -> anyhow::Result<()> {
    let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    match command {
        OverrideCommand::Add { schedule, person, start, end, reason } => {
            let rules = load_rules(config)?;
            if !rules.schedules.contains_key(&schedule) {
                bail!(
                    "--schedule: unknown schedule {schedule:?}; use one of {}",
                    rules.schedules.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            let id: PersonId = person.parse().map_err(anyhow::Error::msg)?;
            if !rules.people.contains_key(&id) {
                bail!("--person: unknown person {person:?}; use an id from {}", config.paths.rules.display());
            }
            let (start, end) = (parse_instant(&start, "--start")?, parse_instant(&end, "--end")?);
            if end <= start {
                bail!("--end must be after --start");
            }
            let record = OverrideRecord {
                id: 0,
                schedule,
                person: id,
                start,
                end,
                reason,
                created_by: "cli".into(),
                created_at: SystemClock.now(),
            };
            println!("{}", store.insert_override(&record).await?.id);
        }
        OverrideCommand::List { schedule } => {
            for o in store.overrides(SystemClock.now()).await? {
                if schedule.as_ref().is_none_or(|s| *s == o.schedule) {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        o.id,
                        o.schedule,
                        o.person,
                        stamp(o.start),
                        stamp(o.end),
                        o.reason
                    );
                }
            }
        }
        OverrideCommand::Remove { id } => {
            if !store.delete_override(id).await? {
                bail!("no override {id}; see `tocsin override list`");
            }
            println!("removed override {id}");
        }
    }
    Ok(())
}

/// sysexits.h: the message is unusable.
const EX_DATAERR: u8 = 65;
/// sysexits.h: try again later.
const EX_TEMPFAIL: u8 = 75;

async fn ingest(config: Option<&std::path::Path>, sender: Option<String>, recipient: Vec<String>) -> ExitCode {
    use tokio::io::AsyncReadExt;
    let temporary = |what: String| {
        eprintln!("tocsin ingest: {what}; the MTA should try again later");
        ExitCode::from(EX_TEMPFAIL)
    };
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return temporary(e),
    };
    let Ok(max) = tocsin::config::parse_size(&config.email.max_size) else {
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
    let rules = match tocsin::rules::load(&config.paths.rules) {
        Ok(r) => Arc::new(r),
        Err(errors) => return temporary(format!("{} error(s) in the rules (see `tocsin check`)", errors.len())),
    };
    let store = match tocsin::store::open(&config.database).await {
        Ok(s) => s,
        Err(e) => return temporary(e),
    };
    let key = match tocsin::app::reply_key(&config, store.as_ref()).await {
        Ok(k) => k,
        Err(e) => return temporary(e.to_string()),
    };
    let cases = Arc::new(tocsin::service::cases::CaseService {
        store,
        rules,
        clock: Arc::new(SystemClock),
        wake: Default::default(),
    });
    let inbox = match tocsin::app::inbox(&config, cases, key) {
        Ok(i) => i,
        Err(e) => return temporary(e.to_string()),
    };
    let envelope = tocsin::mail::Envelope { from: sender, to: recipient };
    let id = match inbox.receive(&raw, &envelope, "pipe").await {
        Ok(id) => id,
        Err(e) => return temporary(format!("cannot store the message ({e})")),
    };
    // From here on the message is safe: if filing fails now, the daemon's
    // inbox worker files the row, and the MTA must not send a second copy.
    match inbox.file(id).await {
        Ok(tocsin::service::inbox::Outcome::Unusable(why)) => {
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref()).map_err(anyhow::Error::msg)?;
    match cli.command {
        // Handled before: it has exit codes of its own.
        Command::Ingest { .. } => Ok(()),
        Command::Serve => serve(config).await,
        Command::Check => check(&config),
        Command::Migrate => {
            tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
            println!("migrations applied to {}", tocsin::store::redacted(&config.database.url));
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { name, role, person } } => {
            let role: TokenRole = role.parse().map_err(anyhow::Error::msg)?;
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 100 {
                bail!("--name must be 1 to 100 characters");
            }
            let person = match person {
                Some(p) => {
                    let rules = load_rules(&config)?;
                    let id: PersonId = p.parse().map_err(anyhow::Error::msg)?;
                    if !rules.people.contains_key(&id) {
                        bail!("unknown person {p:?}: use an id from {}", config.paths.rules.display());
                    }
                    Some(id)
                }
                None => None,
            };
            let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
            let secret = token::generate();
            store.insert_token(&TokenInfo { name, role, person }, &token::hash(&secret), SystemClock.now()).await?;
            println!("{secret}");
            Ok(())
        }
        Command::Deadline { calendar, from, within } => {
            let rules = load_rules(&config)?;
            let cal = rules.calendars.get(&calendar).with_context(|| {
                format!(
                    "unknown calendar {calendar:?}: use one of {}",
                    rules.calendars.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            let from = parse_instant(&from, "--from")?;
            let within = humantime::parse_duration(&within)
                .with_context(|| format!("--within {within:?} is not a duration like 2h or 1h 30m"))?;
            let within = TimeDelta::from_std(within).context("--within is too long")?;
            let due = cal.deadline(from, within).context("no deadline within twenty years")?;
            println!("{}", due.with_timezone(&cal.tz).to_rfc3339_opts(SecondsFormat::AutoSi, false));
            Ok(())
        }
        Command::Override { command } => overrides(&config, command).await,
        Command::Oncall { schedule, at } => {
            let rules = load_rules(&config)?;
            let store = tocsin::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
            let at = at.as_deref().map(|a| parse_instant(a, "--at")).transpose()?.unwrap_or_else(|| SystemClock.now());
            let names: Vec<&String> = match &schedule {
                Some(s) if rules.schedules.contains_key(s) => vec![s],
                Some(s) => bail!(
                    "unknown schedule {s:?}: use one of {}",
                    rules.schedules.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                None => rules.schedules.keys().collect(),
            };
            let stored = store.overrides(at).await?;
            for name in names {
                let o: Vec<Override> = stored
                    .iter()
                    .filter(|o| o.schedule == *name)
                    .map(|o| Override { person: o.person.clone(), start: o.start, end: o.end })
                    .collect();
                let who = rules.schedules[name].on_call(&o, at);
                println!("{name}\t{}", who.as_ref().map_or("-", |p| p.as_str()));
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Ingest { sender, recipient } = cli.command {
        return runtime.block_on(ingest(cli.config.as_deref(), sender, recipient));
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
