//! Routing: which priority and escalation policy a new case gets.
//! Routes are tried in order; the first that matches wins.

use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::sla::Priority;

/// How hard a route's cases may interrupt people (PRODUCT.md, "Support
/// hours and the team's day"). Kept on the case when it is opened, like its
/// policy, and worked out again from the routes when its priority changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    /// Page at any hour, on each person's own channel order.
    #[default]
    High,
    /// Page by email only: never SMS (nor voice), whatever the person's
    /// channel order says.
    Low,
    /// As `High` while the case's plan calendar has working time; outside
    /// it nobody is paged and the policy starts when working time begins.
    WorkingHours,
}

impl Urgency {
    pub const ALL: [Urgency; 3] = [Urgency::High, Urgency::Low, Urgency::WorkingHours];

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::High => "high",
            Urgency::Low => "low",
            Urgency::WorkingHours => "working-hours",
        }
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Urgency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Urgency::ALL
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| format!("unknown urgency {s:?}: use \"high\", \"low\" or \"working-hours\""))
    }
}

/// One `[[route]]`. Every condition given must hold.
#[derive(Debug, Clone)]
pub struct Route {
    pub subject: Option<Regex>,
    pub body: Option<Regex>,
    /// Name of the customer the case must belong to.
    pub customer: Option<String>,
    /// Priorities, given by the caller, this route applies to.
    pub when_priority: Vec<Priority>,
    pub priority: Priority,
    pub policy: String,
    pub urgency: Urgency,
}

impl Route {
    /// True when the route has no condition, so it matches every case.
    pub fn matches_all(&self) -> bool {
        self.subject.is_none() && self.body.is_none() && self.customer.is_none() && self.when_priority.is_empty()
    }

    fn matches(&self, case: &Incoming<'_>) -> bool {
        self.subject.as_ref().is_none_or(|r| r.is_match(case.subject))
            && self.body.as_ref().is_none_or(|r| r.is_match(case.body))
            && self.customer.as_deref().is_none_or(|c| case.customer == Some(c))
            && (self.when_priority.is_empty() || case.priority.is_some_and(|p| self.when_priority.contains(p)))
    }
}

/// What routing looks at.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub subject: &'a str,
    pub body: &'a str,
    pub customer: Option<&'a str>,
    /// A priority the caller asked for, if any.
    pub priority: Option<&'a Priority>,
}

/// The first route that matches, if any.
pub fn route<'r>(routes: &'r [Route], case: &Incoming<'_>) -> Option<&'r Route> {
    routes.iter().find(|r| r.matches(case))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(subject: Option<&str>, customer: Option<&str>, priority: &str, policy: &str) -> Route {
        Route {
            subject: subject.map(|s| Regex::new(s).unwrap()),
            body: None,
            customer: customer.map(str::to_owned),
            when_priority: vec![],
            priority: priority.parse().unwrap(),
            policy: policy.into(),
            urgency: Urgency::High,
        }
    }

    #[test]
    fn first_matching_route_wins() {
        let routes = [
            r(Some(r"(?i)\bdown\b"), None, "P1", "urgent"),
            r(None, Some("Acme"), "P2", "gold"),
            r(None, None, "P3", "standard"),
        ];
        let case = |subject, customer| Incoming { subject, body: "", customer, priority: None };
        assert_eq!(route(&routes, &case("Site DOWN", Some("Acme"))).unwrap().policy, "urgent");
        assert_eq!(route(&routes, &case("slow", Some("Acme"))).unwrap().policy, "gold");
        assert_eq!(route(&routes, &case("slow", None)).unwrap().policy, "standard");
        assert_eq!(route(&routes, &case("breakdown", None)).unwrap().policy, "standard");
    }

    #[test]
    fn urgencies_parse_back_and_an_unknown_one_names_the_three() {
        for u in Urgency::ALL {
            assert_eq!(u.as_str().parse(), Ok(u));
        }
        let e = "night".parse::<Urgency>().unwrap_err();
        assert!(e.contains("\"working-hours\""), "{e}");
    }
}
