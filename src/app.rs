//! Start-up: builds the daemon from config, rules, templates and a clock,
//! on a listener the caller has already bound (tests bind port 0). The
//! one place services, workers and adapters are wired together.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use chrono::TimeDelta;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, parse_size};
use crate::http::hooks::TwilioHooks;
use crate::http::{self, AppState};
use crate::notify::Channel;
use crate::notify::Templates;
use crate::notify::dispatcher::{Channels, Dispatcher};
use crate::notify::email::SmtpEmail;
use crate::notify::ids::ReplyKey;
use crate::notify::outbox::Outbox;
use crate::notify::templates::Live;
use crate::notify::twilio::Twilio;
use crate::rules::{LiveRules, Rules};
use crate::scheduler::Scheduler;
use crate::service::audit::Audit;
use crate::service::cases::{CaseService, Wakers};
use crate::service::digest::Digester;
use crate::service::inbox::{Inbox, ReplyAddresses, Settings as InboxSettings};
use crate::service::overrides::OverrideService;
use crate::service::phone::Phone;
use crate::service::reload::RulesReload;
use crate::service::tokens::TokenService;
use crate::service::verify::{SystemDns, TxtLookup, Verifier};
use crate::smtp::{SmtpServer, tls_acceptor};
use crate::store::Store;

/// The process-wide Prometheus recorder (a recorder can be installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 60.0, 300.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("tocsin_timer_lateness_seconds".into()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then metrics go
            // there and this handle renders what it has.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

fn secret(name: &str, what: &str) -> anyhow::Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => anyhow::bail!("{what}: the environment variable {name} is not set"),
    }
}

/// The email and SMS channels `config` asks for.
pub fn channels(config: &Config, from: &lettre::message::Mailbox) -> anyhow::Result<Channels> {
    let outbox =
        Arc::new(Outbox::new(&config.paths.outbox, from.clone(), &config.sms.twilio_from, &config.email.reply_domain));
    let email: Arc<dyn Channel> = if config.email.transport == "outbox" {
        outbox.clone()
    } else {
        // Config::load checks this too; a config built in code is held to
        // the same rule here.
        config.email.check_credentials().map_err(anyhow::Error::msg)?;
        let credentials = match (&config.email.smtp_user_env, &config.email.smtp_password_env) {
            (Some(u), Some(p)) => Some((secret(u, "[email] smtp_user_env")?, secret(p, "[email] smtp_password_env")?)),
            _ => None,
        };
        Arc::new(
            SmtpEmail::new(&config.email.transport, credentials, from.clone(), &config.email.reply_domain)
                .map_err(anyhow::Error::msg)?,
        )
    };
    let sms: Arc<dyn Channel> = if config.sms.provider == "twilio" {
        let public = config.server.public_url.trim_end_matches('/');
        Arc::new(Twilio {
            http: reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?,
            base: config.sms.twilio_api_base.clone(),
            account_sid: config.sms.twilio_account_sid.clone(),
            auth_token: secret(&config.sms.twilio_auth_token_env, "[sms] twilio_auth_token_env")?,
            from: config.sms.twilio_from.clone(),
            status_callback: Some(format!("{public}/hooks/twilio/status")),
        })
    } else {
        outbox
    };
    Ok(Channels { sms, email })
}

/// The services every door calls, wired once: the daemon and `tocsin
/// ingest` build them the same way.
pub struct Services {
    pub cases: Arc<CaseService>,
    pub inbox: Arc<Inbox>,
    pub overrides: Arc<OverrideService>,
    pub phone: Arc<Phone>,
}

impl Services {
    /// Builds the services over `store` as `config` says.
    pub fn build(
        config: &Config,
        rules: LiveRules,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        key: ReplyKey,
        verifier: Arc<Verifier>,
    ) -> anyhow::Result<Services> {
        let wake = Wakers::default();
        let cases = Arc::new(CaseService { store: store.clone(), rules: rules.clone(), clock: clock.clone(), wake });
        let from: lettre::message::Mailbox = config.email.from.parse()?;
        let inbox = Arc::new(Inbox {
            replies: ReplyAddresses {
                key,
                local: from.email.user().to_owned(),
                domain: config.email.reply_domain.to_ascii_lowercase(),
                support: crate::service::inbox::SupportAddresses::new(
                    &config.email.domains,
                    &config.email.reply_domain,
                    from.email.as_ref(),
                ),
            },
            store: store.clone(),
            clock: clock.clone(),
            cases: cases.clone(),
            settings: InboxSettings {
                reopen_within: TimeDelta::from_std(config.email.reopen_within)?,
                receipts_per_hour: config.email.receipts_per_hour,
                max_size: parse_size(&config.email.max_size).map_err(anyhow::Error::msg)?,
                limits: crate::mail::intake::NewCaseLimits {
                    per_sender: config.email.new_cases_per_sender_per_hour,
                    per_domain: config.email.new_cases_per_domain_per_hour,
                },
            },
            wake: Arc::new(Notify::new()),
            verifier,
        });
        let overrides = Arc::new(OverrideService { store, rules, clock });
        let phone = Arc::new(Phone { cases: cases.clone() });
        Ok(Services { cases, inbox, overrides, phone })
    }

    /// Opens the configured store and builds the services on it, for a
    /// one-shot command.
    pub async fn open(config: &Config, rules: Rules, clock: Arc<dyn Clock>) -> anyhow::Result<Services> {
        let store = crate::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
        let key = reply_key(config, store.as_ref()).await?;
        Services::build(config, LiveRules::new(rules), store, clock, key, Arc::new(verifier(config, None)?))
    }
}

/// The mail checker `[email] verify` asks for; `dns` replaces the system
/// resolver (tests hand over DKIM keys this way).
pub fn verifier(config: &Config, dns: Option<Arc<dyn TxtLookup>>) -> anyhow::Result<Verifier> {
    let mode = config.email.verify;
    let dns: Arc<dyn TxtLookup> = match dns {
        Some(dns) => dns,
        None if mode == crate::mail::auth::VerifyMode::Dkim => Arc::new(SystemDns::new().map_err(anyhow::Error::msg)?),
        None => return Ok(Verifier { mode, authserv_id: trusted_id(config), ..Verifier::none() }),
    };
    Ok(Verifier { mode, authserv_id: trusted_id(config), dns, timeout: config.email.dns_timeout })
}

fn trusted_id(config: &Config) -> String {
    config.email.trusted_authserv_id.clone().unwrap_or_default()
}

/// The reply-signing key (issue 13): the environment variable `[secrets]
/// reply_key_env` names, else the key file ([`reply_key_path`]), generated
/// once with mode 0600. Never the database: a key an older Tocsin kept in
/// the `settings` table is moved into the file and the row deleted, so
/// reply addresses already sent keep working.
pub async fn reply_key(config: &Config, store: &dyn Store) -> anyhow::Result<ReplyKey> {
    if let Some(secret) = reply_key_from_env(config) {
        // Once the variable holds the key an earlier release kept in the
        // database, the copy there goes.
        if store.read_setting(OLD_KEY_SETTING).await?.is_some_and(|old| old == secret) {
            store.delete_setting(OLD_KEY_SETTING).await?;
            tracing::info!("the reply key is in the environment now: deleted its old copy from the database");
        }
        return Ok(ReplyKey::new(secret.as_bytes()));
    }
    let path = match reply_key_path(config) {
        Ok(path) => path,
        // A PostgreSQL database an earlier release kept the key in: a
        // rolling upgrade must not stop at it, so it is used as it is,
        // loudly, until the operator moves it out.
        Err(why) => match store.read_setting(OLD_KEY_SETTING).await? {
            Some(old) => {
                tracing::warn!(
                    "the reply key is still in the database, where an earlier release kept it: anyone who reads \
                     the database can forge reply addresses. Move it: set {} on every instance to the value of \
                     `SELECT value FROM settings WHERE name = 'reply_key'` (the row is then deleted), or write it \
                     to the file [secrets] reply_key_file names",
                    config.secrets.reply_key_env
                );
                return Ok(ReplyKey::new(old.as_bytes()));
            }
            None => anyhow::bail!(why),
        },
    };
    let Some(path) = path else {
        // An in-memory database: nothing outlives the process, the key
        // neither.
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        return Ok(ReplyKey::new(hex::encode(fresh).as_bytes()));
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim().to_owned();
            if key.is_empty() {
                anyhow::bail!(
                    "{}: the reply key file is empty: restore it from a backup, or delete it to have a new key \
                     generated (reply addresses already sent then stop working)",
                    path.display()
                );
            }
            // A crash between writing the file and deleting the row left it.
            if store.read_setting(OLD_KEY_SETTING).await?.is_some() {
                store.delete_setting(OLD_KEY_SETTING).await?;
            }
            return Ok(ReplyKey::new(key.as_bytes()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("{}: cannot read the reply key ({e})", path.display()),
    }
    let key = match store.read_setting(OLD_KEY_SETTING).await? {
        Some(old) => {
            tracing::info!(file = %path.display(), "moving the reply key out of the database into its file");
            old
        }
        None => {
            let mut fresh = [0u8; 32];
            rand::rng().fill_bytes(&mut fresh);
            hex::encode(fresh)
        }
    };
    let key = match write_key_file(&path, &key) {
        Ok(()) => key,
        // Another process starting beside this one wrote it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path)?.trim().to_owned(),
        Err(e) => anyhow::bail!(
            "{}: cannot write the reply key ({e}); set [secrets] reply_key_file to a writable path, or the \
             environment variable {}",
            path.display(),
            config.secrets.reply_key_env
        ),
    };
    store.delete_setting(OLD_KEY_SETTING).await?;
    Ok(ReplyKey::new(key.as_bytes()))
}

/// The `settings` row older versions kept the reply key in.
const OLD_KEY_SETTING: &str = "reply_key";

/// The reply key from the environment, if the variable is set.
pub fn reply_key_from_env(config: &Config) -> Option<String> {
    std::env::var(&config.secrets.reply_key_env).ok().filter(|s| !s.is_empty())
}

/// Where the reply key file is: `[secrets] reply_key_file`, else beside the
/// SQLite database (`tocsin.db` → `tocsin.db.reply-key`); `None` for an
/// in-memory database. PostgreSQL serves several instances, which must
/// all sign alike: it needs the variable or a file named in the config.
pub fn reply_key_path(config: &Config) -> Result<Option<std::path::PathBuf>, String> {
    if let Some(path) = &config.secrets.reply_key_file {
        return Ok(Some(path.clone()));
    }
    let url = &config.database.url;
    if !url.starts_with("sqlite:") {
        return Err(format!(
            "the reply key: with {} every instance must sign reply addresses with the same key; set the \
             environment variable {} (e.g. to the output of `openssl rand -hex 32`), or [secrets] reply_key_file \
             to a file all instances read",
            url.split(':').next().unwrap_or("this database"),
            config.secrets.reply_key_env
        ));
    }
    Ok(sqlite_file(url).map(|file| {
        let mut path = file.into_os_string();
        path.push(".reply-key");
        path.into()
    }))
}

/// The file of a SQLite database URL; `None` for PostgreSQL or an
/// in-memory database.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file.contains(":memory:") || file.starts_with("file::memory:") {
        return None;
    }
    Some(file.into())
}

/// The lock a daemon holds on its SQLite database for as long as it runs
/// (`tocsin.db` → `tocsin.db.lock`, an advisory `flock`, released by the
/// system however the process ends, `kill -9` included). Holding it, the
/// daemon knows it is the only one: whatever leases the database shows
/// were left by an earlier process and are taken over at once.
#[derive(Debug)]
pub struct InstanceLock {
    _file: std::fs::File,
}

impl InstanceLock {
    /// Takes the lock of the SQLite database `config` names; `Ok(None)`
    /// for PostgreSQL (several instances share it and tell a dead peer by
    /// its leases) or an in-memory database. Fails, naming the file, when
    /// another daemon holds it.
    pub fn take(config: &Config) -> anyhow::Result<Option<InstanceLock>> {
        let Some(db) = sqlite_file(&config.database.url) else { return Ok(None) };
        let mut path = db.into_os_string();
        path.push(".lock");
        let path = std::path::PathBuf::from(path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open the database's lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(InstanceLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another tocsin daemon is serving {} (it holds {}): stop it first; a SQLite database takes one \
                 daemon (use PostgreSQL for several instances)",
                config.database.url,
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                anyhow::bail!("cannot lock {}: {e}", path.display())
            }
        }
    }
}

/// Writes a new key file, readable by its owner only; fails if one exists.
fn write_key_file(path: &std::path::Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// What a dispatcher delivers with, besides what `config` says.
pub struct Delivering {
    pub store: Arc<dyn Store>,
    pub rules: LiveRules,
    pub templates: Live,
    pub channels: Channels,
    pub clock: Arc<dyn Clock>,
    /// Names the dispatcher in leases.
    pub owner: String,
    pub key: ReplyKey,
    pub wake: Arc<Notify>,
}

/// The dispatcher `config` describes: the daemon's, and the one `tocsin
/// simulate` runs into a recording channel, built alike so a rehearsal
/// renders, bundles and holds back SMS exactly as the daemon does.
pub fn dispatcher(config: &Config, with: Delivering) -> anyhow::Result<Dispatcher> {
    let from: lettre::message::Mailbox = config.email.from.parse()?;
    Ok(Dispatcher {
        store: with.store,
        rules: with.rules,
        templates: with.templates,
        channels: with.channels,
        clock: with.clock,
        public_url: config.server.public_url.trim_end_matches('/').to_owned(),
        owner: with.owner,
        lease: TimeDelta::from_std(config.scheduler.lease)?,
        key: with.key,
        id_domain: config.email.reply_domain.clone(),
        reply_local: from.email.user().to_owned(),
        sms_interval: TimeDelta::from_std(config.sms.min_interval)?,
        wake: with.wake,
    })
}

/// A name for this process in leases: unique across restarts and hosts.
fn worker_id() -> String {
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    format!("{}-{}", std::process::id(), hex::encode(b))
}

/// A running daemon.
pub struct App {
    pub addr: SocketAddr,
    pub state: AppState,
    pub scheduler: Arc<Scheduler>,
    pub dispatcher: Arc<Dispatcher>,
    pub inbox: Arc<Inbox>,
    /// The managers' daily digest, unless `[digest] at` is empty.
    pub digester: Option<Arc<Digester>>,
    /// Reloads the rules folder (on SIGHUP and changed files, with
    /// background workers; tests call [`RulesReload::reload`]).
    pub reload: Arc<RulesReload>,
    /// Where the SMTP listener listens, if it runs.
    pub smtp_addr: Option<SocketAddr>,
    /// Counts timers fired by this instance.
    pub fired: watch::Receiver<u64>,
    /// How long [`App::drain`] waits for work in flight.
    pub drain_timeout: std::time::Duration,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Held while this daemon runs on a SQLite database.
    _lock: Option<InstanceLock>,
}

/// What [`App::drain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Every SMTP session, HTTP request and worker batch in flight ended
    /// before `[server] drain_timeout`.
    pub finished: bool,
    /// Timers this instance still held and handed back.
    pub released: u64,
}

/// Sockets bound by the caller (tests bind port 0).
pub struct Listeners {
    pub http: TcpListener,
    /// The inbound SMTP listener, if it runs.
    pub smtp: Option<TcpListener>,
}

/// Whether the scheduler and dispatcher run in the background. Tests that
/// want to step time by hand turn them off and call [`App::tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Background,
    Manual,
}

impl App {
    /// Builds every part and starts serving HTTP on `listener`.
    pub async fn start(
        config: &Config,
        rules: Rules,
        templates: Templates,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        listeners: Listeners,
        workers: Workers,
    ) -> anyhow::Result<App> {
        Self::start_with(config, rules, templates, store, clock, listeners, workers, None).await
    }

    /// As [`App::start`], with `dns` in place of the system's resolver for
    /// DKIM keys (tests).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_with(
        config: &Config,
        rules: Rules,
        templates: Templates,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        listeners: Listeners,
        workers: Workers,
        dns: Option<Arc<dyn TxtLookup>>,
    ) -> anyhow::Result<App> {
        let Listeners { http: listener, smtp } = listeners;
        let lock = InstanceLock::take(config)?;
        let rules = LiveRules::new(rules);
        let key = reply_key(config, store.as_ref()).await?;
        let verifier = Arc::new(verifier(config, dns)?);
        let services = Services::build(config, rules.clone(), store.clone(), clock.clone(), key.clone(), verifier)?;
        let Services { cases, inbox, overrides, phone } = services;
        let wake = cases.wake.clone();
        let owner = worker_id();
        if lock.is_some() {
            // Alone on this database: every lease in it belongs to a process
            // that is gone. Its timers fire and its pages (in doubt) go out
            // now, not when the leases would have run out.
            let (timers, pages) = store.take_over_leases(&owner, clock.now()).await?;
            if timers + pages > 0 {
                tracing::info!(timers, pages, "took over the work an earlier process left in flight");
            }
        }
        let lease = TimeDelta::from_std(config.scheduler.lease)?;
        let (fired_tx, fired) = watch::channel(0);
        let scheduler = Arc::new(Scheduler {
            cases: cases.clone(),
            store: store.clone(),
            clock: clock.clone(),
            wake: wake.scheduler.clone(),
            owner: owner.clone(),
            lease,
            batch: config.scheduler.batch,
            fired: fired_tx,
        });
        let templates = Live::new(&config.paths.templates, templates);
        let from: lettre::message::Mailbox = config.email.from.parse()?;
        let channels = channels(config, &from)?;
        let dispatcher = Arc::new(dispatcher(
            config,
            Delivering {
                store: store.clone(),
                rules: rules.clone(),
                templates: templates.clone(),
                channels,
                clock: clock.clone(),
                owner,
                key: key.clone(),
                wake: wake.dispatcher.clone(),
            },
        )?);
        let max_size = parse_size(&config.email.max_size).map_err(anyhow::Error::msg)?;
        let (routes, openapi) = http::routes(max_size);
        let reports = match &config.database.reports_url {
            Some(url) => {
                let db = crate::config::Database { url: url.clone(), ..config.database.clone() };
                crate::store::open_reports(&db).await.map_err(|e| anyhow::anyhow!("[database] reports_url: {e}"))?
            }
            None => store.clone(),
        };
        let web = Arc::new(crate::http::web::Web::new(reports, config).map_err(anyhow::Error::msg)?);
        let tokens = Arc::new(TokenService::new(store.clone(), clock.clone(), &config.dashboard)?);
        let audit = Arc::new(Audit { store: store.clone(), clock: clock.clone() });
        let reload = Arc::new(RulesReload::new(config.paths.rules.clone(), rules.clone(), audit.clone()));
        let state = AppState {
            inbox: inbox.clone(),
            cases,
            overrides,
            phone,
            tokens,
            audit,
            store,
            rules,
            clock,
            metrics: metrics_handle(),
            metrics_token: match &config.server.metrics_token_env {
                Some(name) => Some(crate::token::hash(&secret(name, "[server] metrics_token_env")?)),
                None => None,
            },
            twilio: match config.sms.provider.as_str() {
                "twilio" => Some(TwilioHooks {
                    auth_token: secret(&config.sms.twilio_auth_token_env, "[sms] twilio_auth_token_env")?,
                    public_url: config.server.public_url.trim_end_matches('/').to_owned(),
                }),
                _ => None,
            },
            mailgun: match &config.email.mailgun_signing_key_env {
                Some(name) => Some(crate::http::hooks::MailgunHooks {
                    signing_key: secret(name, "[email] mailgun_signing_key_env")?,
                    max_age: config.email.mailgun_max_age,
                }),
                None => None,
            },
            openapi: Arc::new(openapi.to_pretty_json().unwrap_or_default()),
            web,
        };
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        let addr = listener.local_addr()?;
        let limits = http::Limits::of(&config.server);
        let router = http::app(state.clone(), routes, limits);
        tasks.push(tokio::spawn(http::serve(listener, router, limits, shutdown.subscribe())));
        let mut smtp_addr = None;
        if let Some(listener) = smtp {
            smtp_addr = Some(listener.local_addr()?);
            let tls = match (&config.smtp.tls_cert, &config.smtp.tls_key) {
                (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
                _ => None,
            };
            let server = Arc::new(SmtpServer {
                inbox: inbox.clone(),
                domains: config.email.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
                hostname: config.smtp.hostname.clone().unwrap_or_else(|| config.email.reply_domain.clone()),
                max_size,
                max_recipients: config.smtp.max_recipients,
                idle_timeout: config.smtp.idle_timeout,
                session_timeout: config.smtp.session_timeout,
                max_connections: config.smtp.max_connections,
                max_connections_per_ip: config.smtp.max_connections_per_ip,
                max_errors: config.smtp.max_errors,
                tls,
            });
            let stop = shutdown.subscribe();
            tasks.push(tokio::spawn(server.serve(listener, stop)));
        }
        let digester = config
            .digest
            .time()
            .map_err(anyhow::Error::msg)?
            .map(|at| Arc::new(Digester { cases: state.cases.clone(), at }));
        if workers == Workers::Background {
            if let Some(d) = digester.clone() {
                let stop = shutdown.subscribe();
                tasks.push(tokio::spawn(async move { d.run(stop).await }));
            }
            let stop = shutdown.subscribe();
            tasks.push(tokio::spawn(templates.watch(stop)));
            let stop = shutdown.subscribe();
            tasks.push(tokio::spawn(reload.clone().watch(stop)));
            let i = inbox.clone();
            let stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move { Inbox::run(&i, stop).await }));
            let s = scheduler.clone();
            let stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move { Scheduler::run(&s, stop).await }));
            let d = dispatcher.clone();
            let stop = shutdown.subscribe();
            tasks.push(tokio::spawn(async move { Dispatcher::run(&d, stop).await }));
        }
        Ok(App {
            addr,
            state,
            scheduler,
            dispatcher,
            inbox,
            digester,
            reload,
            smtp_addr,
            fired,
            drain_timeout: config.server.drain_timeout,
            shutdown,
            tasks,
            _lock: lock,
        })
    }

    /// Files pending mail, fires every due timer, then delivers every
    /// queued page. Returns how many timers fired.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        for id in self.state.store.pending_mail(1000).await? {
            self.inbox.file(id).await?;
        }
        let fired = self.scheduler.run_due().await?;
        self.dispatcher.run_once().await?;
        Ok(fired)
    }

    /// The graceful stop (SIGTERM): closes both listeners so new
    /// connections are refused, lets the SMTP sessions and HTTP requests in
    /// flight finish, lets the scheduler, dispatcher and inbox worker finish
    /// the batch they hold without claiming more, all for at most `[server]
    /// drain_timeout`; then hands back every timer this instance still
    /// holds, so another instance fires them at once instead of waiting for
    /// the leases to run out.
    ///
    /// Whatever is cut off by the time-out is safe: a mail not yet answered
    /// 250 is retried by its sender, a timer or page whose lease this
    /// instance loses is not committed by it (the store checks the owner).
    pub async fn drain(self) -> Drained {
        let timeout = self.drain_timeout;
        tracing::info!(
            timeout = %humantime::format_duration(timeout),
            "drain: listeners closed, no new work claimed; finishing what is in flight"
        );
        let _ = self.shutdown.send(true);
        let tasks = self.tasks;
        let wait = async move {
            for t in tasks {
                let _ = t.await;
            }
        };
        let finished = tokio::time::timeout(timeout, wait).await.is_ok();
        if finished {
            tracing::info!("drain: sessions, requests and batches in flight have finished");
        } else {
            tracing::warn!(
                timeout = %humantime::format_duration(timeout),
                "drain: [server] drain_timeout passed; abandoning what is still running"
            );
        }
        let released = match self.scheduler.store.release_timers(&self.scheduler.owner).await {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "drain: cannot hand back held timers; their leases will run out");
                0
            }
        };
        tracing::info!(released, "drain: held timers handed back; done");
        Drained { finished, released }
    }

    /// Stops serving and waits for the workers to finish what they hold.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}
