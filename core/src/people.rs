//! People who get paged, and the validated values that describe them.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The id of a person in `rules/people.toml` (`ana`): lower-case letters,
/// digits, `-`, `_` and `.`, so it fits in a reply address and a URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonId(String);

impl PersonId {
    /// The id as written in the rules.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PersonId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(Self(s))
        } else {
            Err(format!("person id {s:?} is not valid: use 1-64 lower-case letters, digits, '-', '_' or '.'"))
        }
    }
}

impl AsRef<str> for PersonId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for PersonId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_owned())
    }
}

impl From<PersonId> for String {
    fn from(id: PersonId) -> String {
        id.0
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+15550100001`), the only form Twilio
/// accepts without guessing a country.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// The number as `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PhoneNumber {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix('+').unwrap_or("");
        let ok =
            (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "phone {s:?} is not in E.164 form: write '+', the country code and the number, digits only (e.g. \"+15550100001\")"
            ))
        }
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a person may do. Managers also receive breach notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Engineer,
    Manager,
    Admin,
}

/// A way to reach a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Sms,
    Email,
}

impl ChannelKind {
    /// The name used in rules, the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Sms => "sms",
            ChannelKind::Email => "email",
        }
    }
}

impl FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sms" => Ok(Self::Sms),
            "email" => Ok(Self::Email),
            other => Err(format!("unknown channel {other:?}: use \"sms\" or \"email\"")),
        }
    }
}

/// A person from the rules, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: PersonId,
    pub name: String,
    pub email: String,
    pub phone: Option<PhoneNumber>,
    pub timezone: Tz,
    pub role: Role,
    /// Page on the first; fall back to the next only when a page on it fails.
    pub channels: Vec<ChannelKind>,
}

impl Person {
    /// The channel and address to reach this person on: the first of their
    /// channels (after `after`, for a fall-back) that they have an address
    /// for, skipping SMS when they replied STOP (`sms_off`).
    pub fn reach(&self, sms_off: bool, after: Option<ChannelKind>) -> Option<(ChannelKind, &str)> {
        let from = after.and_then(|a| self.channels.iter().position(|c| *c == a)).map_or(0, |i| i + 1);
        if after.is_some() && from == 0 {
            return None;
        }
        self.channels[from..]
            .iter()
            .filter(|&&c| !(sms_off && c == ChannelKind::Sms))
            .find_map(|&c| self.address(c).map(|a| (c, a)))
    }

    /// The address of this person on `channel`, if they have one.
    pub fn address(&self, channel: ChannelKind) -> Option<&str> {
        match channel {
            ChannelKind::Sms => self.phone.as_ref().map(PhoneNumber::as_str),
            ChannelKind::Email => Some(&self.email),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!("+15550100001".parse::<PhoneNumber>().is_ok());
        for bad in ["15550100001", "+1 555 0100", "+0123456789", "+1", "+1234567890123456"] {
            assert!(bad.parse::<PhoneNumber>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn reach_takes_the_next_channel_with_an_address_and_skips_sms_after_stop() {
        let ana = Person {
            id: "ana".parse().unwrap(),
            name: "Ana".into(),
            email: "ana@example.com".into(),
            phone: Some("+15550100001".parse().unwrap()),
            timezone: Tz::UTC,
            role: Role::Engineer,
            channels: vec![ChannelKind::Sms, ChannelKind::Email],
        };
        assert_eq!(ana.reach(false, None), Some((ChannelKind::Sms, "+15550100001")));
        assert_eq!(ana.reach(true, None), Some((ChannelKind::Email, "ana@example.com")));
        assert_eq!(ana.reach(false, Some(ChannelKind::Sms)), Some((ChannelKind::Email, "ana@example.com")));
        assert_eq!(ana.reach(false, Some(ChannelKind::Email)), None, "nothing after the last channel");
        let email_first = Person { channels: vec![ChannelKind::Email, ChannelKind::Sms], ..ana };
        assert_eq!(email_first.reach(false, Some(ChannelKind::Email)), Some((ChannelKind::Sms, "+15550100001")));
        assert_eq!(email_first.reach(true, Some(ChannelKind::Email)), None, "no SMS fall-back after STOP");
    }

    #[test]
    fn person_ids_are_lower_case_words() {
        assert!("ana".parse::<PersonId>().is_ok());
        assert!("ana.lima-2".parse::<PersonId>().is_ok());
        for bad in ["", "Ana", "ana lima", "ana@x"] {
            assert!(bad.parse::<PersonId>().is_err(), "{bad:?} accepted");
        }
    }
}
