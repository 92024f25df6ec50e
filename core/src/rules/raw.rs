//! The shapes of `rules/*.toml` as written, with the source span of every
//! value that can be wrong, so an error can name its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

/// One rules file. Any file may hold any section; the folder is one set.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub person: Vec<S<Person>>,
    #[serde(default)]
    pub calendar: BTreeMap<String, S<Calendar>>,
    #[serde(default)]
    pub schedule: BTreeMap<String, S<Schedule>>,
    pub default_plan: Option<S<String>>,
    /// Fractions of each SLA window at which to warn, e.g. `[0.5, 0.8]`.
    pub warn_at: Option<S<Vec<f64>>>,
    /// Each plan is `calendar = "…"` plus one table per priority, so it is
    /// read as a map and sorted out in validation.
    #[serde(default)]
    pub plan: BTreeMap<String, S<BTreeMap<String, S<toml::Value>>>>,
    #[serde(default)]
    pub customer: Vec<S<Customer>>,
    #[serde(default)]
    pub policy: BTreeMap<String, S<Policy>>,
    #[serde(default)]
    pub route: Vec<S<Route>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub id: S<String>,
    pub name: S<String>,
    pub email: S<String>,
    pub phone: Option<S<String>>,
    pub timezone: Option<S<String>>,
    pub role: S<String>,
    pub channels: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    pub timezone: S<String>,
    #[serde(default)]
    pub holidays: Vec<S<String>>,
    /// iCalendar files (paths relative to this rules file) whose all-day
    /// events are holidays too.
    #[serde(default)]
    pub holidays_ics: Vec<S<String>>,
    #[serde(default)]
    pub hours: BTreeMap<String, S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub timezone: S<String>,
    #[serde(default)]
    pub layer: Vec<S<Layer>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub members: S<Vec<S<String>>>,
    pub shift: S<String>,
    pub start: S<String>,
    pub active: Option<S<Active>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Active {
    pub days: Vec<S<String>>,
    pub from: S<String>,
    pub to: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub respond: String,
    pub update: String,
    pub resolve: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub name: S<String>,
    pub domains: S<Vec<S<String>>>,
    pub plan: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub step: Vec<S<Step>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub notify: S<Vec<S<String>>>,
    pub wait: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub subject: Option<S<String>>,
    pub body: Option<S<String>>,
    pub customer: Option<S<String>>,
    #[serde(default)]
    pub when_priority: Vec<S<String>>,
    pub priority: S<String>,
    pub policy: S<String>,
    pub urgency: Option<S<String>>,
}
