//! The rules folder: people, customers, SLA plans, calendars, schedules,
//! escalation policies and routing, read from `rules/*.toml` and checked as
//! one set.
//!
//! Loading never stops at the first mistake: it collects every problem as a
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
    /// Reads and checks every `*.toml` file in `dir`.
    pub fn load(dir: &Path) -> Result<Rules, Vec<Diagnostic>> {
        let sources = read_dir(dir)?;
        validate::build(&sources)
    }

    /// Checks rules given as `(file name, text)` pairs; for tests and tools.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Rules, Vec<Diagnostic>> {
        let sources: Vec<Source> =
            files.iter().map(|(p, t)| Source { path: PathBuf::from(p), text: (*t).to_owned() }).collect();
        validate::build(&sources)
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
#[derive(Debug)]
struct Source {
    path: PathBuf,
    text: String,
}

impl Source {
    /// The 1-based line on which `span` starts.
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }
}

fn read_dir(dir: &Path) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let fail = |message: String| vec![Diagnostic { file: dir.to_owned(), line: 0, message }];
    let entries = std::fs::read_dir(dir).map_err(|e| {
        fail(format!("cannot read the rules folder ({e}): run from the folder that holds rules/, or set [paths] rules in tocsin.toml"))
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(fail("holds no *.toml files: copy the shipped rules/ folder as a start".into()));
    }
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push(Source { path, text }),
            Err(e) => errors.push(Diagnostic {
                file: path,
                line: 0,
                message: format!("cannot read ({e}); it must be UTF-8 text"),
            }),
        }
    }
    if errors.is_empty() { Ok(sources) } else { Err(errors) }
}

#[cfg(test)]
mod tests;
