//! On-call overrides as people ask for them: the one check every door (the
//! API, the dashboard's form, the CLI) runs before one is stored, so each
//! refuses the same requests with the same words.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::limits::MAX_REASON;
use crate::people::PersonId;
use crate::rules::Rules;

/// A requested override, as typed: the person is still a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRequest {
    pub schedule: String,
    pub person: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: String,
}

/// What is wrong with a request, and which field to fix. Each door names
/// the field its own way (`schedule` in JSON, `--schedule` on the CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

fn refuse(field: &'static str, message: String) -> FieldError {
    FieldError { field, message }
}

impl OverrideRequest {
    /// Checks the request against the rules; answers the person it puts on
    /// call.
    pub fn check(&self, rules: &Rules) -> Result<PersonId, FieldError> {
        if !rules.schedules.contains_key(&self.schedule) {
            let known = rules.schedules.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(refuse("schedule", format!("unknown schedule {:?}; use one of {known}", self.schedule)));
        }
        let id: PersonId = self.person.parse().map_err(|e: String| refuse("person", e))?;
        if !rules.people.contains_key(&id) {
            return Err(refuse(
                "person",
                format!("unknown person {:?}; use an id from rules/people.toml", self.person),
            ));
        }
        if self.end <= self.start {
            return Err(refuse("end", "must be after start".into()));
        }
        if self.reason.chars().count() > MAX_REASON {
            return Err(refuse("reason", format!("at most {MAX_REASON} characters")));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::rules::testing::shipped;

    fn request(rules: &Rules) -> OverrideRequest {
        let schedule = rules.schedules.keys().next().cloned().unwrap_or_default();
        let person = rules.people.keys().next().map(|p| p.as_str().to_owned()).unwrap_or_default();
        let start = DateTime::from_timestamp(1_767_600_000, 0).unwrap_or_default();
        OverrideRequest { schedule, person, start, end: start + TimeDelta::hours(8), reason: "swap".into() }
    }

    #[test]
    fn a_good_request_names_its_person_and_each_bad_field_is_named() {
        let rules = shipped();
        let good = request(&rules);
        assert_eq!(good.check(&rules).map(|p| p.as_str().to_owned()), Ok(good.person.clone()));
        let field = |r: OverrideRequest| r.check(&rules).map_err(|e| e.field);
        assert_eq!(field(OverrideRequest { schedule: "nope".into(), ..good.clone() }), Err("schedule"));
        assert_eq!(field(OverrideRequest { person: "nobody".into(), ..good.clone() }), Err("person"));
        assert_eq!(field(OverrideRequest { end: good.start, ..good.clone() }), Err("end"));
        assert!(field(OverrideRequest { reason: "x".repeat(MAX_REASON), ..good.clone() }).is_ok());
        assert_eq!(field(OverrideRequest { reason: "x".repeat(MAX_REASON + 1), ..good }), Err("reason"));
    }
}
