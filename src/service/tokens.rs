//! Tokens: making, listing and revoking them, and the one answer to "may
//! this token be used now?" that the API, the calendar feeds, the dashboard
//! and the CLI all ask here.
//!
//! A token is refused once it is revoked or its expiry has come, on the
//! injected clock: at once, on every door, since every lookup goes through
//! [`TokenService::authenticate`] or [`TokenService::session`]. Revoking also
//! deletes the token's dashboard sessions. Dashboard sign-ins are limited
//! per client address by the failures the audit log holds, so the limit
//! holds across restarts and across instances on one database.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::audit;
use crate::audit::{AuditAction, AuditEntry, Throttle};
use crate::clock::Clock;
use crate::people::PersonId;
use crate::rules::Rules;
use crate::store::{SessionRecord, Store, StoreError};
use crate::token::{self, Refusal, TokenInfo, TokenRecord, TokenRole};

/// A token to make, as an operator asked for it.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub name: String,
    pub role: String,
    pub person: Option<String>,
    pub schedule: Option<String>,
    /// A duration, an RFC 3339 instant or a date ([`token::expiry`]).
    pub expires: Option<String>,
}

/// Why a token was not made or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A field is wrong; `field` is the flag's name.
    #[error("--{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("a token named {0:?} already exists; pick another --name, or revoke it first (`tocsin token revoke`)")]
    Duplicate(String),
    #[error("no token named {0:?}; see `tocsin token list`")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a dashboard sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many failures from this client lately: try after this long.
    #[error("too many failed sign-ins from this address; try again in {}s", .0.num_seconds())]
    Limited(TimeDelta),
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The token is good, but its role may not sign in.
    #[error("{0}")]
    Role(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tokens and their use.
pub struct TokenService {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Failed dashboard sign-ins one client address may make in a window.
    pub sign_in_limit: Throttle,
    /// Held from counting a client's failures to recording this attempt's
    /// outcome, so a burst of attempts sent at once cannot all pass the
    /// count before the first failure is recorded. Sign-ins are rare; one
    /// at a time per instance costs nothing. (Instances sharing a database
    /// each hold their own: a burst spread over n instances may get n - 1
    /// attempts past the limit.)
    pub sign_ins: tokio::sync::Mutex<()>,
}

impl TokenService {
    /// The service over `store`, with the sign-in limit of `[dashboard]`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        dashboard: &crate::config::Dashboard,
    ) -> Result<TokenService, chrono::OutOfRangeError> {
        Ok(TokenService {
            store,
            clock,
            sign_in_limit: Throttle {
                max: dashboard.sign_in_failures,
                window: TimeDelta::from_std(dashboard.sign_in_window)?,
            },
            sign_ins: tokio::sync::Mutex::new(()),
        })
    }

    /// Checks `new` against `rules`, stores it, and returns the secret (to
    /// be shown once) and what was stored. `by` is who asked (`cli`).
    pub async fn create(&self, new: NewToken, rules: &Rules, by: &str) -> Result<(String, TokenInfo), TokenError> {
        let invalid = |field, message: String| TokenError::Invalid { field, message };
        let role: TokenRole = new.role.parse().map_err(|e| invalid("role", e))?;
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "must be 1 to 100 characters, none of them control characters".into()));
        }
        let person = match new.person.as_deref() {
            Some(p) => {
                let id: PersonId = p.parse().map_err(|e| invalid("person", e))?;
                if !rules.people.contains_key(&id) {
                    return Err(invalid("person", format!("unknown person {p:?}: use an id from rules/people.toml")));
                }
                Some(id)
            }
            None => None,
        };
        let schedule = match new.schedule.as_deref() {
            Some(s) if role != TokenRole::Feed => {
                return Err(invalid(
                    "schedule",
                    format!("only feed tokens name a schedule (got {s:?} for --role {role})"),
                ));
            }
            Some(s) if !rules.schedules.contains_key(s) => {
                let known = rules.schedules.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(invalid("schedule", format!("unknown schedule {s:?}: use one of {known}")));
            }
            s => s.map(str::to_owned),
        };
        if role == TokenRole::Feed && person.is_some() == schedule.is_some() {
            return Err(invalid(
                "role",
                "a feed token opens one feed: give exactly one of --person or --schedule".into(),
            ));
        }
        let now = self.clock.now();
        let expires_at = match new.expires.as_deref() {
            Some(raw) => Some(token::expiry(raw, now).map_err(|e| invalid("expires", e))?),
            None => None,
        };
        let info = TokenInfo { name, role, person, schedule, expires_at };
        let secret = token::generate();
        match self.store.insert_token(&info, &token::hash(&secret), now).await {
            Err(StoreError::Duplicate(_)) => return Err(TokenError::Duplicate(info.name)),
            other => other?,
        }
        let expires = expires_at.map_or_else(|| "never expires".to_owned(), |t| format!("expires {}", stamp(t)));
        let detail = format!("role {role}, {}, {expires}", info.scope());
        tracing::info!(token = %info.name, %role, by, "token created");
        self.record(by, AuditAction::TokenCreated, &info.name, &detail, None).await;
        Ok((secret, info))
    }

    /// Every token, oldest first.
    pub async fn list(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.store.tokens().await
    }

    /// Revokes the token `name`: refused from now on, its sessions ended.
    pub async fn revoke(&self, name: &str, by: &str) -> Result<(), TokenError> {
        if !self.store.revoke_token(name, self.clock.now()).await? {
            return Err(TokenError::Unknown(name.to_owned()));
        }
        tracing::info!(token = %name, by, "token revoked");
        self.record(by, AuditAction::TokenRevoked, name, "its dashboard sessions ended", None).await;
        Ok(())
    }

    /// The token `secret` is, if it may be used now.
    pub async fn authenticate(&self, secret: &str) -> Result<TokenInfo, AuthError> {
        let record = self.store.token(&token::hash(secret)).await?.ok_or(Refusal::Unknown)?;
        Ok(record.usable(self.clock.now())?)
    }

    /// The dashboard session whose cookie hashes to `hash`, while both it
    /// and its token may be used.
    pub async fn session(&self, hash: &str) -> Result<Option<(TokenInfo, SessionRecord)>, StoreError> {
        let now = self.clock.now();
        let Some(session) = self.store.session(hash, now).await? else { return Ok(None) };
        Ok(session.token.clone().usable(now).ok().map(|info| (info, session)))
    }

    /// A dashboard sign-in with `secret` from client `client` (an address
    /// key, [`crate::audit::client_key`]): refused while the client is over
    /// the limit; every outcome logged and audited, never the secret.
    pub async fn sign_in(&self, secret: &str, client: Option<&str>) -> Result<TokenInfo, SignInError> {
        let _one_at_a_time = self.sign_ins.lock().await;
        let now = self.clock.now();
        if let Some(client) = client {
            let failures =
                self.store.audit_times(AuditAction::SignInFailed, client, now - self.sign_in_limit.window).await?;
            if let Some(wait) = self.sign_in_limit.wait(&failures, now) {
                tracing::warn!(
                    client,
                    retry_after = wait.num_seconds(),
                    "dashboard sign-in refused: too many failures"
                );
                return Err(SignInError::Limited(wait));
            }
        }
        let stored = self.store.token(&token::hash(secret)).await?;
        let known = stored.as_ref().map(|r| format!("token:{}", r.info.name));
        let found = match stored {
            Some(record) => record.usable(now).map_err(SignInError::from).and_then(|info| match info.role {
                TokenRole::Integration => Err(SignInError::Role(
                    "Integration tokens are for machines and cannot sign in; use a manager, admin or engineer token.",
                )),
                TokenRole::Feed => Err(SignInError::Role(
                    "Feed tokens open one calendar feed and cannot sign in; use a manager, admin or engineer token.",
                )),
                _ => Ok(info),
            }),
            None => Err(SignInError::Refused(Refusal::Unknown)),
        };
        match &found {
            Ok(info) => {
                tracing::info!(token = %info.name, role = %info.role, client, "dashboard sign-in");
                let detail = format!("role {}", info.role);
                self.record(&format!("token:{}", info.name), AuditAction::SignIn, &info.name, &detail, client).await;
            }
            Err(e) => {
                tracing::warn!(client, reason = %e, "dashboard sign-in failed");
                let actor = known.as_deref().unwrap_or("unknown");
                self.record(actor, AuditAction::SignInFailed, "dashboard", &e.to_string(), client).await;
            }
        }
        found
    }

    async fn record(&self, actor: &str, action: AuditAction, subject: &str, detail: &str, client: Option<&str>) {
        let entry = AuditEntry {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action,
            subject: subject.to_owned(),
            detail: detail.to_owned(),
            client: client.map(str::to_owned),
        };
        audit::append(self.store.as_ref(), entry).await;
    }
}

/// An instant as the CLI and the audit log show it.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
