//! API tokens: 32 random bytes shown once, stored only as a SHA-256 hash.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
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
}

impl TokenRole {
    pub const ALL: [TokenRole; 4] = [TokenRole::Engineer, TokenRole::Manager, TokenRole::Admin, TokenRole::Integration];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Engineer => "engineer",
            TokenRole::Manager => "manager",
            TokenRole::Admin => "admin",
            TokenRole::Integration => "integration",
        }
    }
}

impl FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TokenRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use engineer, manager, admin or integration"))
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
    pub person: Option<PersonId>,
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
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with("tocsin_") && a.len() == 7 + 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }
}
