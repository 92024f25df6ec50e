//! Escalation policies and where a case stands in one.
//!
//! A policy is a list of steps, each naming targets and a wait, run
//! `1 + repeat` times. A case's [`Position`] says which step ran last; the
//! step timer carries the position it was set for, so a timer that outlived
//! its step (the case was acknowledged or escalated by hand) is recognised
//! as stale and does nothing. That is also what makes `ESC` idempotent: it
//! names the step it escalates past.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::people::{Person, PersonId, Role};
use crate::schedule::{Override, Schedule};

/// Whom a step pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Whoever is on call on the schedule when the step runs.
    Schedule(String),
    Person(PersonId),
    /// Every person whose role is manager.
    Managers,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let fix = "write \"schedule:NAME\", \"person:ID\" or \"role:manager\"";
        match s.split_once(':') {
            Some(("schedule", name)) if !name.is_empty() => Ok(Self::Schedule(name.to_owned())),
            Some(("person", id)) => id.parse().map(Self::Person).map_err(|e| format!("{e}; {fix}")),
            Some(("role", "manager")) => Ok(Self::Managers),
            Some(("role", other)) => {
                Err(format!("role {other:?} cannot be paged as a group: only \"role:manager\" can"))
            }
            _ => Err(format!("target {s:?} is not understood: {fix}")),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Schedule(s) => write!(f, "schedule:{s}"),
            Target::Person(p) => write!(f, "person:{p}"),
            Target::Managers => f.write_str("role:manager"),
        }
    }
}

/// One step of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub targets: Vec<Target>,
    /// How long to wait for an acknowledgement before the next step.
    pub wait: TimeDelta,
}

/// A named escalation policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub steps: Vec<Step>,
    /// How many more times the steps run after the first pass.
    pub repeat: u32,
}

/// Which step of which pass, both counted from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Position {
    pub round: u32,
    pub step: u32,
}

impl Position {
    pub const FIRST: Position = Position { round: 0, step: 0 };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.round == 0 {
            write!(f, "step {}", self.step + 1)
        } else {
            write!(f, "step {} (repeat {})", self.step + 1, self.round)
        }
    }
}

impl Policy {
    /// The step at `at`, if the policy has it.
    pub fn step(&self, at: Position) -> Option<&Step> {
        if at.round > self.repeat {
            return None;
        }
        self.steps.get(at.step as usize)
    }

    /// The position after `at`, or `None` when the policy is exhausted.
    pub fn after(&self, at: Position) -> Option<Position> {
        let next = if (at.step as usize) + 1 < self.steps.len() {
            Position { round: at.round, step: at.step + 1 }
        } else {
            Position { round: at.round + 1, step: 0 }
        };
        self.step(next).map(|_| next)
    }
}

/// Overrides per schedule name, as the store holds them.
pub type Overrides = BTreeMap<String, Vec<Override>>;

/// The people a step reaches at `now`, in target order without repeats, and
/// a note for each target that reached nobody.
pub fn resolve_targets(
    step: &Step,
    schedules: &BTreeMap<String, Schedule>,
    people: &BTreeMap<PersonId, Person>,
    overrides: &Overrides,
    now: DateTime<Utc>,
) -> (Vec<PersonId>, Vec<String>) {
    let everybody = people;
    let mut people: Vec<PersonId> = Vec::new();
    let mut misses = Vec::new();
    let add = |p: PersonId, people: &mut Vec<PersonId>| {
        if !people.contains(&p) {
            people.push(p);
        }
    };
    for target in &step.targets {
        match target {
            Target::Schedule(name) => {
                let none = Vec::new();
                let on_call = schedules.get(name).and_then(|s| s.on_call(overrides.get(name).unwrap_or(&none), now));
                match on_call {
                    Some(p) => add(p, &mut people),
                    None => misses.push(format!("nobody is on call on schedule {name}")),
                }
            }
            Target::Person(p) => add(p.clone(), &mut people),
            Target::Managers => {
                let managers: Vec<_> =
                    everybody.values().filter(|p| p.role == Role::Manager).map(|p| p.id.clone()).collect();
                if managers.is_empty() {
                    misses.push("no person has the role manager".into());
                }
                for m in managers {
                    add(m, &mut people);
                }
            }
        }
    }
    (people, misses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(steps: usize, repeat: u32) -> Policy {
        let step = Step { targets: vec![Target::Managers], wait: TimeDelta::minutes(5) };
        Policy { name: "p".into(), steps: vec![step; steps], repeat }
    }

    #[test]
    fn positions_walk_the_steps_then_the_repeats_then_stop() {
        let p = policy(2, 1);
        let mut at = Position::FIRST;
        let mut walked = vec![at];
        while let Some(next) = p.after(at) {
            walked.push(next);
            at = next;
        }
        let expect = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(round, step)| Position { round, step });
        assert_eq!(walked, expect);
    }

    #[test]
    fn targets_parse_in_the_three_documented_forms() {
        assert_eq!("schedule:primary".parse(), Ok(Target::Schedule("primary".into())));
        assert_eq!("person:dana".parse(), Ok(Target::Person("dana".parse().unwrap())));
        assert_eq!("role:manager".parse::<Target>(), Ok(Target::Managers));
        assert!("role:engineer".parse::<Target>().is_err());
        assert!("dana".parse::<Target>().is_err());
    }
}
