//! The rules folder: people, customers, SLA plans, calendars, schedules,
//! escalation policies and routing, read from `rules/*.toml` and checked as
//! one set.
//!
//! Reading the folder from disk is the daemon's job (`tocsin::rules::load`);
//! this module checks files it is given, and asks its caller for the other
//! files they name (holiday feeds).
//!
//! Checking never stops at the first mistake: it collects every problem as a
//! [`Diagnostic`] naming the file, the line and the fix, so `tocsin check`
//! shows them all at once, and the daemon refuses to start on any of them.

mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::calendar::Calendar;
use crate::escalation::Policy;
use crate::people::{Person, PersonId, Role};
use crate::routing::Route;
use crate::schedule::Schedule;
use crate::sla::{Customer, Plan};

/// One problem in the rules, where it is, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file itself.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A checked, consistent set of rules. Every name one part uses is defined
/// by another.
#[derive(Debug, Clone)]
pub struct Rules {
    pub people: BTreeMap<PersonId, Person>,
    /// Includes the built-in `24x7`.
    pub calendars: BTreeMap<String, Calendar>,
    pub schedules: BTreeMap<String, Schedule>,
    pub plans: BTreeMap<String, Plan>,
    /// Plan for senders whose domain no customer owns.
    pub default_plan: String,
    pub customers: Vec<Customer>,
    pub policies: BTreeMap<String, Policy>,
    /// First match wins; the last matches every case.
    pub routes: Vec<Route>,
    /// Fractions of each SLA window (ascending, each in (0, 1)) at which the
    /// assignee is warned.
    pub warn_at: Vec<f64>,
}

impl Rules {
    /// Checks the rules files in `sources` as one set. `read` fetches a
    /// file they name (a calendar's `holidays_ics`, by its path beside the
    /// file naming it), or says why it cannot.
    pub fn build(sources: &[Source], read: &dyn Fn(&Path) -> Result<String, String>) -> Result<Rules, Vec<Diagnostic>> {
        validate::build(sources, read)
    }

    /// The customer that owns the domain of `address`.
    pub fn customer_for(&self, address: &str) -> Option<&Customer> {
        self.customers.iter().find(|c| c.owns(address))
    }

    /// The plan of a customer, or the default plan.
    pub fn plan_for(&self, customer: Option<&Customer>) -> &Plan {
        let name = customer.map_or(self.default_plan.as_str(), |c| c.plan.as_str());
        // Validation guarantees every plan a customer or the default names.
        &self.plans[name]
    }

    /// The calendar a plan runs in.
    pub fn calendar_of(&self, plan: &Plan) -> &Calendar {
        &self.calendars[&plan.calendar]
    }

    /// Everybody with the manager role.
    pub fn managers(&self) -> impl Iterator<Item = &Person> {
        self.people.values().filter(|p| p.role == Role::Manager)
    }

    /// One line for `tocsin check`.
    pub fn summary(&self) -> String {
        format!(
            "{} people, {} customers, {} plans, {} calendars, {} schedules, {} policies, {} routes",
            self.people.len(),
            self.customers.len(),
            self.plans.len(),
            self.calendars.len(),
            self.schedules.len(),
            self.policies.len(),
            self.routes.len()
        )
    }
}

/// One rules file and its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// The 1-based line on which `span` starts.
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }
}

/// Rules for the core's own tests, read with `std::fs` (test code may; the
/// core itself never touches the disk).
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use super::{Diagnostic, Rules, Source};

    fn read(path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    /// Checks `(file name, text)` pairs; named files are read from disk.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Rules, Vec<Diagnostic>> {
        let sources: Vec<Source> =
            files.iter().map(|(p, t)| Source { path: PathBuf::from(p), text: (*t).to_owned() }).collect();
        Rules::build(&sources, &read)
    }

    /// The shipped rules folder, `rules/` at the repository's root.
    pub fn shipped() -> Rules {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the shipped rules folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let sources: Vec<Source> = paths
            .into_iter()
            .map(|path| Source { text: std::fs::read_to_string(&path).expect("a rules file"), path })
            .collect();
        Rules::build(&sources, &read).unwrap_or_else(|e| panic!("{e:#?}"))
    }
}

#[cfg(test)]
mod tests;
