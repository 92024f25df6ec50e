//! API tokens: 32 random bytes shown once, stored only as a SHA-256 hash.
//!
//! The pure rules about tokens live here, so every door applies them the
//! same way through [`crate::service::tokens::TokenService`]: whether a
//! stored token may be used at an instant ([`TokenRecord::usable`]), what
//! `--expires` means ([`expiry`]), and which calendar feeds a token opens
//! ([`TokenInfo::may_read_feed`]).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::people::PersonId;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    /// Reads cases and acts on them as its person.
    Engineer,
    /// As engineer, plus overrides and reports.
    Manager,
    /// Everything, and may act for any person.
    Admin,
    /// A machine (mail provider, monitoring): opens cases, and acts only for
    /// a person it names.
    Integration,
    /// Reads one calendar feed (one person's or one schedule's) and nothing
    /// else: the only kind a feed URL's `?token=` takes, since calendar
    /// services store the URLs they subscribe to.
    Feed,
}

impl TokenRole {
    pub const ALL: [TokenRole; 5] =
        [TokenRole::Engineer, TokenRole::Manager, TokenRole::Admin, TokenRole::Integration, TokenRole::Feed];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Engineer => "engineer",
            TokenRole::Manager => "manager",
            TokenRole::Admin => "admin",
            TokenRole::Integration => "integration",
            TokenRole::Feed => "feed",
        }
    }
}

impl FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TokenRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use engineer, manager, admin, integration or feed"))
    }
}

impl fmt::Display for TokenRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub name: String,
    pub role: TokenRole,
    /// The person it acts as; for a feed token, the person whose feed it
    /// opens.
    pub person: Option<PersonId>,
    /// Feed tokens only: the schedule whose feed it opens.
    pub schedule: Option<String>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    /// A token that never expires, of no schedule.
    pub fn new(name: impl Into<String>, role: TokenRole, person: Option<PersonId>) -> TokenInfo {
        TokenInfo { name: name.into(), role, person, schedule: None, expires_at: None }
    }

    /// Whether this token opens `feed`. A feed token opens its own feed
    /// only; managers and admins every feed; engineers the schedules' feeds
    /// and their own person's; integrations the schedules' feeds.
    pub fn may_read_feed(&self, feed: &Feed) -> Result<(), String> {
        let allowed = match (self.role, feed) {
            (TokenRole::Feed, Feed::Person(p)) => self.person.as_ref() == Some(p),
            (TokenRole::Feed, Feed::Schedule(s)) => self.schedule.as_deref() == Some(s.as_str()),
            (TokenRole::Manager | TokenRole::Admin, _) => true,
            (TokenRole::Engineer | TokenRole::Integration, Feed::Schedule(_)) => true,
            (TokenRole::Engineer, Feed::Person(p)) => self.person.as_ref() == Some(p),
            (TokenRole::Integration, Feed::Person(_)) => false,
        };
        if allowed {
            return Ok(());
        }
        Err(match self.role {
            TokenRole::Feed => format!("this feed token opens only {}", self.scope()),
            role => format!("a {role} token may not read {feed}: only a manager or admin token reads anyone's feed"),
        })
    }

    /// What a token is limited to, for people: `person ana`,
    /// `schedule primary`, or `-`.
    pub fn scope(&self) -> String {
        match (&self.schedule, &self.person) {
            (Some(s), _) => format!("schedule {s}"),
            (None, Some(p)) => format!("person {p}"),
            (None, None) => "-".to_owned(),
        }
    }
}

/// A calendar feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    Person(PersonId),
    Schedule(String),
}

impl fmt::Display for Feed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Feed::Person(p) => write!(f, "the feed of person {p}"),
            Feed::Schedule(s) => write!(f, "the feed of schedule {s}"),
        }
    }
}

/// A stored token with its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub info: TokenInfo,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this token is not known; make one with `tocsin token create`")]
    Unknown,
    #[error("this token was revoked; ask for a new one (`tocsin token create`)")]
    Revoked,
    #[error("this token expired at {0}; ask for a new one (`tocsin token create --expires`)")]
    Expired(String),
}

impl TokenRecord {
    /// The token's meaning, if it may be used at `now`: not revoked, and
    /// not expired (a token expiring at `t` works until just before `t`).
    pub fn usable(self, now: DateTime<Utc>) -> Result<TokenInfo, Refusal> {
        if self.revoked_at.is_some() {
            return Err(Refusal::Revoked);
        }
        match self.info.expires_at {
            Some(at) if at <= now => Err(Refusal::Expired(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
            _ => Ok(self.info),
        }
    }
}

/// The instant `--expires RAW` names at `now`: a duration from now
/// (`90d`, `12h`, `1h 30m`), an RFC 3339 instant, or a date (that day's
/// start, UTC). It must lie in the future.
pub fn expiry(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    let at = if let Ok(d) = humantime::parse_duration(raw) {
        chrono::TimeDelta::from_std(d).ok().and_then(|d| now.checked_add_signed(d))
    } else if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        Some(t.with_timezone(&Utc))
    } else if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        day.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
    } else {
        return Err(format!(
            "{raw:?} is neither a duration (90d, 12h), an RFC 3339 instant (2027-01-31T18:00:00Z) nor a date (2027-01-31)"
        ));
    };
    match at {
        Some(at) if at > now => Ok(at),
        Some(at) => Err(format!("{raw:?} is {}, which is not in the future", at.to_rfc3339())),
        None => Err(format!("{raw:?} is too far away")),
    }
}

/// A new secret token, `tocsin_` and 43 URL-safe characters.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("tocsin_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The hash under which a token is stored and looked up. A plain SHA-256
/// suffices: tokens carry 256 random bits, so there is nothing to brute-force.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("tocsin_") && a.len() == 7 + 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn expires_takes_a_duration_an_instant_or_a_date_in_the_future() {
        let now = t("2026-11-24T10:00:00Z");
        assert_eq!(expiry("90d", now), Ok(now + TimeDelta::days(90)));
        assert_eq!(expiry("1h 30m", now), Ok(now + TimeDelta::minutes(90)));
        assert_eq!(expiry("2027-01-31T18:00:00+01:00", now), Ok(t("2027-01-31T17:00:00Z")));
        assert_eq!(expiry("2027-01-31", now), Ok(t("2027-01-31T00:00:00Z")));
        for bad in ["yesterday", "2026-11-24", "2020-01-01T00:00:00Z", "0s", "", "-5d"] {
            assert!(expiry(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn revoked_and_expired_tokens_are_unusable() {
        let now = t("2026-11-24T10:00:00Z");
        let mut info = TokenInfo::new("ana-phone", TokenRole::Engineer, None);
        info.expires_at = Some(now);
        let rec = TokenRecord { info: info.clone(), created_at: now, revoked_at: None };
        assert!(rec.clone().usable(now - TimeDelta::milliseconds(1)).is_ok());
        assert!(matches!(rec.clone().usable(now), Err(Refusal::Expired(_))));
        let revoked = TokenRecord { revoked_at: Some(now), info: TokenInfo { expires_at: None, ..info }, ..rec };
        assert_eq!(revoked.usable(now - TimeDelta::days(1)), Err(Refusal::Revoked));
    }

    #[test]
    fn feeds_open_by_role_and_scope() {
        let (ana, ben): (PersonId, PersonId) = ("ana".parse().unwrap(), "ben".parse().unwrap());
        let primary = Feed::Schedule("primary".into());
        let feed_ana = TokenInfo::new("cal", TokenRole::Feed, Some(ana.clone()));
        assert!(feed_ana.may_read_feed(&Feed::Person(ana.clone())).is_ok());
        assert!(feed_ana.may_read_feed(&Feed::Person(ben.clone())).is_err());
        assert!(feed_ana.may_read_feed(&primary).is_err());
        let feed_primary =
            TokenInfo { schedule: Some("primary".into()), ..TokenInfo::new("cal", TokenRole::Feed, None) };
        assert!(feed_primary.may_read_feed(&primary).is_ok());
        assert!(feed_primary.may_read_feed(&Feed::Schedule("secondary".into())).is_err());
        let engineer = TokenInfo::new("ana-phone", TokenRole::Engineer, Some(ana.clone()));
        assert!(engineer.may_read_feed(&Feed::Person(ana.clone())).is_ok());
        assert!(engineer.may_read_feed(&primary).is_ok());
        assert!(engineer.may_read_feed(&Feed::Person(ben.clone())).is_err());
        assert!(TokenInfo::new("m", TokenRole::Manager, None).may_read_feed(&Feed::Person(ben.clone())).is_ok());
        assert!(TokenInfo::new("i", TokenRole::Integration, None).may_read_feed(&Feed::Person(ben)).is_err());
    }
}
