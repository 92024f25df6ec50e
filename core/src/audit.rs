//! The audit log's vocabulary, and the sign-in limit read from it.
//!
//! What Tocsin appends to its audit table (who did what to what, and from
//! which client address) is named here once, so every door writes the same
//! action names and `GET /api/v1/audit` and `tocsin audit` read them back.
//! The sign-in limit counts a client's recorded failed sign-ins, so it
//! holds across restarts and across instances sharing one database.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditAction {
    /// `tocsin token create`; the subject is the token's name.
    TokenCreated,
    /// `tocsin token revoke`; the subject is the token's name.
    TokenRevoked,
    /// A dashboard sign-in; the actor is the token's name.
    SignIn,
    /// A refused dashboard sign-in (unknown, revoked or expired token, or
    /// a role that may not sign in); never the token itself.
    SignInFailed,
    /// An on-call override stored; the subject is its id.
    OverrideAdded,
    /// An on-call override removed; the subject is its id.
    OverrideRemoved,
    /// An admin or integration token acted for a person (`"by"`); the
    /// actor is the token, the subject the case, the detail who and what.
    ActedFor,
    /// The rules were reloaded. Nothing reloads them yet (issue 15 adds
    /// it); the name is reserved so the log's vocabulary is settled.
    RulesReloaded,
}

impl AuditAction {
    pub const ALL: [AuditAction; 8] = [
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::OverrideAdded,
        AuditAction::OverrideRemoved,
        AuditAction::ActedFor,
        AuditAction::RulesReloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::SignIn => "sign_in",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::OverrideAdded => "override_added",
            AuditAction::OverrideRemoved => "override_removed",
            AuditAction::ActedFor => "acted_for",
            AuditAction::RulesReloaded => "rules_reloaded",
        }
    }
}

impl FromStr for AuditAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| format!("unknown audit action {s:?}"))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// Who: a person id, `token:NAME`, or `cli`.
    pub actor: String,
    pub action: AuditAction,
    /// What it was done to: a token's name, an override's id, a case.
    pub subject: String,
    /// Anything else worth knowing (a role, why a sign-in failed).
    pub detail: String,
    /// The client address, where the door knows it ([`client_key`]).
    pub client: Option<String>,
}

/// The address a client is counted by: an IPv4 address as it is, an IPv6
/// client by its /64 (the block one host or site is usually given, so it
/// cannot dodge a limit by walking its own addresses), an IPv4-mapped IPv6
/// address as the IPv4 address.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("{}/64", std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// A limit of `max` failures per `window` for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub max: u32,
    pub window: TimeDelta,
}

impl Throttle {
    /// How long a client whose recorded failures since `now - window` are
    /// `failures` (oldest first) must wait before trying again; `None`
    /// when it may try now. It may again once the failure that put it at
    /// the limit leaves the window.
    pub fn wait(&self, failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<TimeDelta> {
        let max = usize::try_from(self.max).unwrap_or(usize::MAX);
        let since = now - self.window;
        let recent: Vec<_> = failures.iter().filter(|t| **t > since).collect();
        if recent.len() < max {
            return None;
        }
        let freeing = *recent[recent.len() - max];
        Some((freeing + self.window - now).max(TimeDelta::seconds(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn action_names_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(a));
        }
        assert!("token_stolen".parse::<AuditAction>().is_err());
    }

    #[test]
    fn the_tenth_failure_locks_out_until_the_first_leaves_the_window() {
        let limit = Throttle { max: 10, window: TimeDelta::minutes(15) };
        let now = t("2026-11-24T10:10:00Z");
        let nine: Vec<_> = (0..9).map(|i| t("2026-11-24T10:00:00Z") + TimeDelta::minutes(i)).collect();
        assert_eq!(limit.wait(&nine, now), None);
        let mut ten = nine.clone();
        ten.push(now);
        assert_eq!(limit.wait(&ten, now), Some(TimeDelta::minutes(5)), "10:00 leaves the window at 10:15");
        assert_eq!(limit.wait(&ten, t("2026-11-24T10:15:00Z")), None);
        // Old failures do not count.
        let old: Vec<_> = (0..20).map(|i| t("2026-11-24T09:00:00Z") + TimeDelta::seconds(i)).collect();
        assert_eq!(limit.wait(&old, now), None);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_eq!(client_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
    }
}
