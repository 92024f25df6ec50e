//! `tocsin.toml`: typed settings, every key with a default, secrets only by
//! the name of the environment variable that holds them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub email: Email,
    pub sms: Sms,
    pub paths: Paths,
    pub secrets: Secrets,
    pub scheduler: Scheduler,
    pub smtp: Smtp,
    pub digest: Digest,
    pub dashboard: Dashboard,
    /// Where the file was read from; `None` for built-in defaults.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// HTTP API, webhooks and dashboard.
    pub http: SocketAddr,
    /// Inbound SMTP listener; empty turns it off.
    pub smtp: String,
    /// The URL the outside world reaches this daemon at: links in pages,
    /// and what Twilio signs.
    pub public_url: String,
    /// On SIGTERM, how long in-flight SMTP sessions, HTTP requests and the
    /// workers' batches get to finish before the daemon exits anyway.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: std::time::Duration,
    /// An HTTP connection that has not sent a request's full headers in
    /// this time is closed (slowloris); idle kept-alive connections too.
    #[serde(with = "humantime_serde")]
    pub header_timeout: std::time::Duration,
    /// The longest an HTTP request may take, its body's upload included;
    /// past it the client gets 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: std::time::Duration,
    /// `request_timeout` for the raw-mail webhook (`POST /hooks/email`),
    /// whose bodies may be as large as `[email] max_size`.
    #[serde(with = "humantime_serde")]
    pub mail_hook_timeout: std::time::Duration,
    /// HTTP connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The environment variable holding the token `GET /metrics` then
    /// needs (`Authorization: Bearer …`); unset leaves `/metrics` open.
    pub metrics_token_env: Option<String>,
}

/// The longest `[server] drain_timeout` accepted: past it, a stopping
/// daemon outlives what service managers wait (systemd: 90 s by default).
pub const MAX_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl Default for Server {
    fn default() -> Self {
        Self {
            http: ([127, 0, 0, 1], 8080).into(),
            smtp: "127.0.0.1:2525".into(),
            public_url: "http://127.0.0.1:8080".into(),
            drain_timeout: std::time::Duration::from_secs(10),
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
            mail_hook_timeout: std::time::Duration::from_secs(300),
            max_connections: 1024,
            metrics_token_env: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    pub url: String,
    /// Where the dashboard and reports read; the main database if unset.
    pub reports_url: Option<String>,
    /// How long a write waits for a lock held by another process before it
    /// fails (and the door answers "try again later").
    #[serde(with = "humantime_serde")]
    pub busy_timeout: std::time::Duration,
}

impl Default for Database {
    fn default() -> Self {
        Self { url: "sqlite://tocsin.db".into(), reports_url: None, busy_timeout: std::time::Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Email {
    pub from: String,
    /// Inbound recipient domains accepted; all others are refused.
    pub domains: Vec<String>,
    pub reply_domain: String,
    /// `outbox`, or `smtp://host:port` / `smtps://host:port`.
    pub transport: String,
    /// Largest inbound message, e.g. "25MiB".
    pub max_size: String,
    /// A customer's mail reopens a case resolved at most this long ago;
    /// after that it opens a new case that names the old one.
    #[serde(with = "humantime_serde")]
    pub reopen_within: std::time::Duration,
    /// Receipts to one address per hour, at most.
    pub receipts_per_hour: u32,
    /// Environment variables holding the SMTP user and password, if the
    /// server wants them.
    pub smtp_user_env: Option<String>,
    pub smtp_password_env: Option<String>,
    // --- mail verification (issue 13) ---
    /// Whether inbound mail's From is checked before it may give an
    /// engineer's command or join a case by its `[#n]` subject tag:
    /// `"none"`, `"dkim"` (Tocsin checks DKIM itself) or
    /// `"authentication-results"` (an MTA in front checked).
    pub verify: crate::mail::auth::VerifyMode,
    /// The authserv-id of the MTA whose `Authentication-Results` headers
    /// are trusted (`verify = "authentication-results"`).
    pub trusted_authserv_id: Option<String>,
    /// How long the DNS lookups of one DKIM check may take; past it the
    /// mail counts as unverified (a temporary error), and is still filed.
    #[serde(with = "humantime_serde")]
    pub dns_timeout: std::time::Duration,
    /// New cases one sender address may open by mail per hour; 0 = no
    /// limit. Past it, their mail joins their open case or is held.
    pub new_cases_per_sender_per_hour: u32,
    /// New cases all senders of one domain may open by mail per hour; 0 =
    /// no limit.
    pub new_cases_per_domain_per_hour: u32,
    // --- providers' inbound webhooks (issue 17) ---
    /// The environment variable holding Mailgun's HTTP webhook signing key;
    /// set, `POST /hooks/email/mailgun` takes Mailgun's signed posts.
    pub mailgun_signing_key_env: Option<String>,
    /// How far a Mailgun post's `timestamp` may be from now before it is
    /// refused as stale (a replay).
    #[serde(with = "humantime_serde")]
    pub mailgun_max_age: std::time::Duration,
}

impl Email {
    /// Refuses SMTP credentials that would cross an unencrypted connection:
    /// with plain `smtp://` lettre sends `AUTH PLAIN` in the clear, and
    /// `?tls=opportunistic` falls back to plain text when an attacker in
    /// the path strips STARTTLS from the server's EHLO answer.
    pub fn check_credentials(&self) -> Result<(), String> {
        let transport = &self.transport;
        let credentials = self.smtp_user_env.is_some() || self.smtp_password_env.is_some();
        if transport == "outbox" || !credentials {
            return Ok(());
        }
        // Read as lettre reads it (`AsyncSmtpTransport::from_url`): smtps
        // is implicit TLS whatever the query; smtp is STARTTLS only with
        // the first `tls` parameter `required`.
        let url = url::Url::parse(transport).ok();
        let encrypted = url.as_ref().is_some_and(|u| match u.scheme() {
            "smtps" => true,
            "smtp" => u.query_pairs().find(|(k, _)| k == "tls").is_some_and(|(_, v)| v == "required"),
            _ => false,
        });
        if encrypted {
            return Ok(());
        }
        let host = url.as_ref().and_then(|u| u.host_str()).unwrap_or("host").to_owned();
        let port = url.as_ref().and_then(|u| u.port()).map_or_else(String::new, |p| format!(":{p}"));
        Err(format!(
            "[email] transport {transport:?} would send the SMTP password of smtp_user_env/smtp_password_env \
             unencrypted: use \"smtp://{host}{port}?tls=required\" (STARTTLS) or \"smtps://{host}\" (implicit TLS, port 465)"
        ))
    }
}

impl Default for Email {
    fn default() -> Self {
        Self {
            from: "Support <support@example.com>".into(),
            domains: vec!["support.example.com".into()],
            reply_domain: "support.example.com".into(),
            transport: "outbox".into(),
            max_size: "25MiB".into(),
            reopen_within: std::time::Duration::from_secs(14 * 86_400),
            receipts_per_hour: 5,
            smtp_user_env: None,
            smtp_password_env: None,
            verify: crate::mail::auth::VerifyMode::None,
            trusted_authserv_id: None,
            dns_timeout: std::time::Duration::from_secs(5),
            new_cases_per_sender_per_hour: tocsin_core::mail::intake::NewCaseLimits::default().per_sender,
            new_cases_per_domain_per_hour: tocsin_core::mail::intake::NewCaseLimits::default().per_domain,
            mailgun_signing_key_env: None,
            mailgun_max_age: std::time::Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sms {
    /// `outbox` or `twilio`.
    pub provider: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token_env: String,
    pub twilio_from: String,
    pub twilio_api_base: String,
    /// At most one SMS per person in this time; pages due meanwhile are
    /// bundled into one message. "0s" turns the limit off.
    #[serde(with = "humantime_serde")]
    pub min_interval: std::time::Duration,
}

impl Default for Sms {
    fn default() -> Self {
        Self {
            provider: "outbox".into(),
            twilio_account_sid: String::new(),
            twilio_auth_token_env: "TWILIO_AUTH_TOKEN".into(),
            twilio_from: "+15550000000".into(),
            twilio_api_base: "https://api.twilio.com".into(),
            min_interval: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub rules: PathBuf,
    pub templates: PathBuf,
    /// The outbox transport writes one file per message here.
    pub outbox: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Self { rules: "rules".into(), templates: "templates".into(), outbox: "outbox".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Secrets {
    /// Signs reply addresses and Message-IDs.
    pub reply_key_env: String,
    // --- mail verification (issue 13) ---
    /// Where the reply key is kept when the environment variable is unset:
    /// generated once, mode 0600. Default: `tocsin.reply-key` beside the
    /// SQLite database. PostgreSQL (several instances) needs this or the
    /// variable, the same for every instance.
    pub reply_key_file: Option<PathBuf>,
}

impl Default for Secrets {
    fn default() -> Self {
        Self { reply_key_env: "TOCSIN_REPLY_KEY".into(), reply_key_file: None }
    }
}

/// The managers' daily digest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Digest {
    /// Local time (each manager's zone) it goes out; "" turns it off.
    pub at: String,
}

impl Default for Digest {
    fn default() -> Self {
        Self { at: "08:00".into() }
    }
}

impl Digest {
    /// The time of day, or `None` when the digest is off.
    pub fn time(&self) -> Result<Option<chrono::NaiveTime>, String> {
        if self.at.is_empty() {
            return Ok(None);
        }
        chrono::NaiveTime::parse_from_str(&self.at, "%H:%M")
            .map(Some)
            .map_err(|_| format!("[digest] at {:?} is not a time like \"08:00\" (or \"\" for no digest)", self.at))
    }
}

/// The web dashboard under `/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dashboard {
    /// A sign-in lasts this long.
    #[serde(with = "humantime_serde")]
    pub session_ttl: std::time::Duration,
    /// Times and report weeks for tokens that belong to no person (a
    /// person's session uses their own time zone).
    pub time_zone: String,
    // --- sign-in limits (issue 13) ---
    /// Failed sign-ins one client address (IPv6: one /64) may make within
    /// `sign_in_window`; the next attempt gets 429 until the oldest leaves
    /// the window.
    pub sign_in_failures: u32,
    #[serde(with = "humantime_serde")]
    pub sign_in_window: std::time::Duration,
}

impl Default for Dashboard {
    fn default() -> Self {
        Self {
            session_ttl: std::time::Duration::from_secs(12 * 3600),
            time_zone: "UTC".into(),
            sign_in_failures: 10,
            sign_in_window: std::time::Duration::from_secs(15 * 60),
        }
    }
}

impl Dashboard {
    pub fn zone(&self) -> Result<chrono_tz::Tz, String> {
        self.time_zone.parse().map_err(|_| {
            format!("[dashboard] time_zone {:?} is not an IANA zone like \"Europe/London\"", self.time_zone)
        })
    }
}

/// Tuning of the inbound SMTP listener (`[server] smtp` sets its address).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// Name in the greeting; default: `[email] reply_domain`.
    pub hostname: Option<String>,
    /// PEM certificate chain and key; both set turns STARTTLS on.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_connections: usize,
    /// Sessions one client address (IPv6: one /64) may hold at once.
    pub max_connections_per_ip: usize,
    /// Commands answered with an error in a row before the session is
    /// ended with 421.
    pub max_errors: usize,
    pub max_recipients: usize,
    /// Longest wait for the client's next command or data.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: std::time::Duration,
    /// Longest session.
    #[serde(with = "humantime_serde")]
    pub session_timeout: std::time::Duration,
}

impl Default for Smtp {
    fn default() -> Self {
        Self {
            hostname: None,
            tls_cert: None,
            tls_key: None,
            max_connections: 256,
            max_connections_per_ip: 8,
            max_errors: 10,
            max_recipients: 100,
            idle_timeout: std::time::Duration::from_secs(300),
            session_timeout: std::time::Duration::from_secs(1800),
        }
    }
}

/// Parses a size such as `"25MiB"`, `"10MB"`, `"512KiB"` or `"1048576"`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().map_err(|_| format!("{s:?} is not a size like \"25MiB\""))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        other => return Err(format!("{s:?}: unknown unit {other:?}; use B, KiB, MiB or GiB")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("{s:?} is too large"))
}

/// Tuning of the timer loop and the dispatcher.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scheduler {
    /// How long a claimed timer or page stays with one worker before
    /// another may take it over.
    #[serde(with = "humantime_serde")]
    pub lease: std::time::Duration,
    /// How many due timers one claim takes.
    pub batch: u32,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self { lease: std::time::Duration::from_secs(4), batch: 256 }
    }
}

impl Config {
    /// Reads `path`; with no path, `tocsin.toml` in the working directory
    /// if present, else the built-in defaults. Relative paths in a file
    /// are taken from the file's folder.
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let path = match path {
            Some(p) => p.to_owned(),
            None if Path::new("tocsin.toml").exists() => PathBuf::from("tocsin.toml"),
            None => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read ({e})", path.display()))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            let line = e.span().map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            // serde's message alone may not name the key ("expected number
            // at 0"), so the offending line is quoted after it.
            match text.lines().nth(line.saturating_sub(1)).map(str::trim).filter(|l| line > 0 && !l.is_empty()) {
                Some(source) => format!("{}:{line}: {} (in `{source}`)", path.display(), e.message().trim()),
                None => format!("{}:{line}: {}", path.display(), e.message().trim()),
            }
        })?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        for p in [&mut config.paths.rules, &mut config.paths.templates, &mut config.paths.outbox]
            .into_iter()
            .chain(config.smtp.tls_cert.as_mut())
            .chain(config.smtp.tls_key.as_mut())
            .chain(config.secrets.reply_key_file.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(rest) = config.database.url.strip_prefix("sqlite://")
            && !rest.starts_with('/')
            && !rest.starts_with(':')
            && !base.as_os_str().is_empty()
        {
            config.database.url = format!("sqlite://{}", base.join(rest).display());
        }
        config.source = Some(path);
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        let at = self.source.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string());
        if !self.server.public_url.starts_with("http://") && !self.server.public_url.starts_with("https://") {
            return Err(format!(
                "{at}: [server] public_url {:?} must start with http:// or https://",
                self.server.public_url
            ));
        }
        if self.email.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "{at}: [email] from {:?} is not a mailbox like \"Support <support@example.com>\"",
                self.email.from
            ));
        }
        let transport = &self.email.transport;
        if transport != "outbox" && !transport.starts_with("smtp://") && !transport.starts_with("smtps://") {
            return Err(format!(
                "{at}: [email] transport {transport:?}: use \"outbox\", \"smtp://host:port\" or \"smtps://host:port\""
            ));
        }
        self.email.check_credentials().map_err(|e| format!("{at}: {e}"))?;
        match self.sms.provider.as_str() {
            "outbox" => {}
            "twilio" if self.sms.twilio_account_sid.starts_with("AC") => {}
            "twilio" => {
                return Err(format!(
                    "{at}: [sms] provider \"twilio\" needs twilio_account_sid (the \"AC…\" id of your Twilio account)"
                ));
            }
            other => return Err(format!("{at}: [sms] provider {other:?}: use \"outbox\" or \"twilio\"")),
        }
        parse_size(&self.email.max_size).map_err(|e| format!("{at}: [email] max_size {e}"))?;
        if self.smtp.tls_cert.is_some() != self.smtp.tls_key.is_some() {
            return Err(format!("{at}: [smtp] STARTTLS needs both tls_cert and tls_key"));
        }
        if !self.server.smtp.is_empty() && self.server.smtp.parse::<SocketAddr>().is_err() {
            return Err(format!(
                "{at}: [server] smtp {:?} is not an address like \"127.0.0.1:2525\" (or \"\" for none)",
                self.server.smtp
            ));
        }
        self.digest.time().map_err(|e| format!("{at}: {e}"))?;
        self.dashboard.zone().map_err(|e| format!("{at}: {e}"))?;
        if self.dashboard.session_ttl.as_secs() < 60 {
            return Err(format!("{at}: [dashboard] session_ttl must be at least a minute"));
        }
        if self.dashboard.sign_in_failures == 0 {
            return Err(format!("{at}: [dashboard] sign_in_failures must be at least 1"));
        }
        if self.dashboard.sign_in_window.as_secs() < 1 || self.dashboard.sign_in_window.as_secs() > 86_400 {
            return Err(format!("{at}: [dashboard] sign_in_window must be between 1s and 24h"));
        }
        if self.server.drain_timeout > MAX_DRAIN_TIMEOUT {
            return Err(format!(
                "{at}: [server] drain_timeout {} is too long: use at most {} (and keep your service manager's stop timeout above it)",
                humantime::format_duration(self.server.drain_timeout),
                humantime::format_duration(MAX_DRAIN_TIMEOUT)
            ));
        }
        for (key, limit) in [
            ("header_timeout", self.server.header_timeout),
            ("request_timeout", self.server.request_timeout),
            ("mail_hook_timeout", self.server.mail_hook_timeout),
        ] {
            if limit.is_zero() {
                return Err(format!("{at}: [server] {key} must be longer than 0s"));
            }
        }
        if self.server.max_connections == 0 {
            return Err(format!("{at}: [server] max_connections must be at least 1"));
        }
        for (key, n) in [
            ("max_connections", self.smtp.max_connections),
            ("max_connections_per_ip", self.smtp.max_connections_per_ip),
            ("max_errors", self.smtp.max_errors),
        ] {
            if n == 0 {
                return Err(format!("{at}: [smtp] {key} must be at least 1"));
            }
        }
        if self.email.verify == crate::mail::auth::VerifyMode::AuthenticationResults
            && self.email.trusted_authserv_id.as_deref().is_none_or(|id| id.trim().is_empty())
        {
            return Err(format!(
                "{at}: [email] verify = \"authentication-results\" needs trusted_authserv_id: the authserv-id your MTA \
                 writes first in its Authentication-Results headers, e.g. trusted_authserv_id = \"mx.example.com\""
            ));
        }
        if self.email.dns_timeout.is_zero() {
            return Err(format!("{at}: [email] dns_timeout must be longer than 0s"));
        }
        if self.scheduler.batch == 0 {
            return Err(format!("{at}: [scheduler] batch must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_every_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tocsin.toml");
        std::fs::write(&path, "").unwrap();
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.server.http.port(), 8080);
        assert_eq!(c.paths.rules, dir.path().join("rules"));
        assert_eq!(c.database.url, format!("sqlite://{}", dir.path().join("tocsin.db").display()));
    }

    #[test]
    fn a_misspelt_key_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tocsin.toml");
        std::fs::write(&path, "[server]\nhttp = \"127.0.0.1:9000\"\npublic_ur = \"x\"\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err();
        assert!(e.contains("tocsin.toml:3: unknown field `public_ur`"), "{e}");
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("25MiB"), Ok(25 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn real_channels_are_accepted_and_unknown_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tocsin.toml");
        let write = |text: &str| std::fs::write(&path, text).unwrap();
        write(
            "[email]\ntransport = \"smtps://mail.example.com:465\"\n[sms]\nprovider = \"twilio\"\ntwilio_account_sid = \"AC123\"\n",
        );
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.sms.provider, "twilio");
        write("[email]\ntransport = \"sendmail\"\n");
        assert!(Config::load(Some(&path)).unwrap_err().contains("[email] transport \"sendmail\""));
        write("[sms]\nprovider = \"twilio\"\n");
        assert!(Config::load(Some(&path)).unwrap_err().contains("needs twilio_account_sid"));
        write("[sms]\nprovider = \"pager\"\n");
        assert!(Config::load(Some(&path)).unwrap_err().contains("use \"outbox\" or \"twilio\""));
    }

    #[test]
    fn drain_timeout_defaults_to_ten_seconds_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tocsin.toml");
        std::fs::write(&path, "").unwrap();
        assert_eq!(Config::load(Some(&path)).unwrap().server.drain_timeout.as_secs(), 10);
        std::fs::write(&path, "[server]\ndrain_timeout = \"30s\"\n").unwrap();
        assert_eq!(Config::load(Some(&path)).unwrap().server.drain_timeout.as_secs(), 30);
        std::fs::write(&path, "[server]\ndrain_timeout = \"2h\"\n").unwrap();
        assert!(Config::load(Some(&path)).unwrap_err().contains("[server] drain_timeout 2h is too long"));
        std::fs::write(&path, "[server]\ndrain_timeout = \"soon\"\n").unwrap();
        assert!(Config::load(Some(&path)).unwrap_err().contains("drain_timeout"));
    }

    #[test]
    fn the_sign_in_limit_defaults_to_ten_failures_in_fifteen_minutes_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tocsin.toml");
        std::fs::write(&path, "").unwrap();
        let d = Config::load(Some(&path)).unwrap().dashboard;
        assert_eq!((d.sign_in_failures, d.sign_in_window.as_secs()), (10, 900));
        std::fs::write(&path, "[dashboard]\nsign_in_failures = 3\nsign_in_window = \"1h\"\n").unwrap();
        let d = Config::load(Some(&path)).unwrap().dashboard;
        assert_eq!((d.sign_in_failures, d.sign_in_window.as_secs()), (3, 3600));
        std::fs::write(&path, "[dashboard]\nsign_in_failures = 0\n").unwrap();
        assert!(Config::load(Some(&path)).unwrap_err().contains("[dashboard] sign_in_failures must be at least 1"));
        std::fs::write(&path, "[dashboard]\nsign_in_window = \"2d\"\n").unwrap();
        assert!(Config::load(Some(&path)).unwrap_err().contains("[dashboard] sign_in_window must be between"));
    }

    #[test]
    fn smtp_credentials_need_a_transport_that_encrypts_as_lettre_reads_it() {
        let email = |transport: &str| Email {
            transport: transport.into(),
            smtp_user_env: Some("U".into()),
            smtp_password_env: Some("P".into()),
            ..Email::default()
        };
        for ok in
            ["smtp://mail.example.com:587?tls=required", "smtps://mail.example.com", "smtps://m:465?tls=none", "outbox"]
        {
            assert_eq!(email(ok).check_credentials(), Ok(()), "{ok}");
        }
        for plain in [
            "smtp://mail.example.com:25",
            "smtp://mail.example.com:587?tls=opportunistic",
            "smtp://mail.example.com?tls=opportunistic&tls=required",
            "smtp://mail.example.com#?tls=required",
            "smtp://mail.example.com?tls=REQUIRED",
        ] {
            let e = email(plain).check_credentials().unwrap_err();
            assert!(e.contains("?tls=required") && e.contains("smtps://mail.example.com"), "{plain}: {e}");
        }
        let without = Email { transport: "smtp://mail.example.com:25".into(), ..Email::default() };
        assert_eq!(without.check_credentials(), Ok(()), "no credentials, nothing to leak");
    }

    #[test]
    fn a_missing_file_named_on_the_command_line_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/tocsin.toml"))).is_err());
    }
}
