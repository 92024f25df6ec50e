//! `tocsin token create|list|revoke` and `tocsin audit`: the token service
//! and the audit log from a shell. A secret is printed once, at creation;
//! the list shows no secret and no hash.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Format, load_rules, parse_instant};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::service::audit::{Audit, AuditError};
use crate::service::tokens::{NewToken, TokenService, stamp};

/// Who the CLI acts as in the audit log: the operator.
const CLI: &str = "cli";

async fn service(config: &Config) -> anyhow::Result<TokenService> {
    let store = crate::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    Ok(TokenService::new(store, Arc::new(SystemClock), &config.dashboard)?)
}

pub async fn create(config: &Config, new: NewToken) -> anyhow::Result<()> {
    let rules = load_rules(config)?;
    let (secret, _) = service(config).await?.create(new, &rules, CLI).await?;
    println!("{secret}");
    Ok(())
}

/// One token as `tocsin token list --format json` prints it.
#[derive(Debug, Serialize)]
struct TokenLine {
    name: String,
    role: String,
    person: Option<String>,
    schedule: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

pub async fn list(config: &Config, format: Format) -> anyhow::Result<()> {
    let tokens = service(config).await?.list().await?;
    match format {
        Format::Json => {
            let lines: Vec<TokenLine> = tokens
                .into_iter()
                .map(|t| TokenLine {
                    name: t.info.name,
                    role: t.info.role.to_string(),
                    person: t.info.person.map(String::from),
                    schedule: t.info.schedule,
                    created_at: t.created_at,
                    expires_at: t.info.expires_at,
                    revoked_at: t.revoked_at,
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&lines)?);
        }
        Format::Text => {
            println!("name\trole\tscope\tcreated\texpires\trevoked");
            for t in tokens {
                let or_dash = |t: Option<DateTime<Utc>>| t.map_or_else(|| "-".to_owned(), stamp);
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.info.name,
                    t.info.role,
                    t.info.scope(),
                    stamp(t.created_at),
                    or_dash(t.info.expires_at),
                    or_dash(t.revoked_at)
                );
            }
        }
    }
    Ok(())
}

pub async fn revoke(config: &Config, name: &str) -> anyhow::Result<()> {
    service(config).await?.revoke(name, CLI).await?;
    println!("revoked token {name:?}; it is refused from now on and its dashboard sessions have ended");
    Ok(())
}

pub async fn audit(config: &Config, from: Option<&str>, to: Option<&str>, format: Format) -> anyhow::Result<()> {
    let from = from.map(|f| parse_instant(f, "--from")).transpose()?;
    let to = to.map(|t| parse_instant(t, "--to")).transpose()?;
    let store = crate::store::open(&config.database).await.map_err(anyhow::Error::msg)?;
    let audit = Audit { store, clock: Arc::new(SystemClock) };
    let (_, _, entries) = audit.between(from, to).await.map_err(|e| match e {
        AuditError::Window(m) => anyhow::anyhow!("--from/--to: {m}"),
        AuditError::Store(e) => e.into(),
    })?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        Format::Text => {
            println!("at\tactor\taction\tsubject\tclient\tdetail");
            for e in entries {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    stamp(e.at),
                    e.actor,
                    e.action,
                    e.subject,
                    e.client.as_deref().unwrap_or("-"),
                    e.detail
                );
            }
        }
    }
    Ok(())
}
