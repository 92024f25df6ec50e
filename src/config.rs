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
}

impl Default for Server {
    fn default() -> Self {
        Self {
            http: ([127, 0, 0, 1], 8080).into(),
            smtp: "127.0.0.1:2525".into(),
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    pub url: String,
    /// Where the dashboard and reports read; the main database if unset.
    pub reports_url: Option<String>,
}

impl Default for Database {
    fn default() -> Self {
        Self { url: "sqlite://tocsin.db".into(), reports_url: None }
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
    pub max_size: String,
}

impl Default for Email {
    fn default() -> Self {
        Self {
            from: "Support <support@example.com>".into(),
            domains: vec!["support.example.com".into()],
            reply_domain: "support.example.com".into(),
            transport: "outbox".into(),
            max_size: "25MiB".into(),
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
}

impl Default for Sms {
    fn default() -> Self {
        Self {
            provider: "outbox".into(),
            twilio_account_sid: String::new(),
            twilio_auth_token_env: "TWILIO_AUTH_TOKEN".into(),
            twilio_from: "+15550000000".into(),
            twilio_api_base: "https://api.twilio.com".into(),
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
}

impl Default for Secrets {
    fn default() -> Self {
        Self { reply_key_env: "TOCSIN_REPLY_KEY".into() }
    }
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
        Self { lease: std::time::Duration::from_secs(30), batch: 256 }
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
            format!("{}:{line}: {}", path.display(), e.message().trim())
        })?;
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        for p in [&mut config.paths.rules, &mut config.paths.templates, &mut config.paths.outbox] {
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
        if self.email.transport != "outbox" {
            return Err(format!(
                "{at}: [email] transport {:?}: only \"outbox\" is available in this build",
                self.email.transport
            ));
        }
        if self.sms.provider != "outbox" {
            return Err(format!(
                "{at}: [sms] provider {:?}: only \"outbox\" is available in this build",
                self.sms.provider
            ));
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
    fn a_missing_file_named_on_the_command_line_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/tocsin.toml"))).is_err());
    }
}
