//! Replies from phones: an engineer's command, from an SMS or the first line
//! of an email reply, carried out through the case service like any other action,
//! and answered with a confirmation or a precise error in the engineer's
//! own time zone.

use chrono::{DateTime, Utc};

use crate::case::{ActionError, Actor, Case, CaseNumber, Filing, Status, Via};
use crate::command::{Command, HELP, Verb};
use crate::people::{Person, PersonId};
use crate::service::cases::{Action, CaseError, CaseService};

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `None`: say nothing (carrier keywords, which the carrier answers).
    pub text: Option<String>,
    /// Whether the command did what was asked.
    pub ok: bool,
    /// The case it was about, if any.
    pub case: Option<CaseNumber>,
}

impl Answer {
    fn ok(case: CaseNumber, text: String) -> Self {
        Self { text: Some(text), ok: true, case: Some(case) }
    }
    fn error(case: Option<CaseNumber>, text: impl Into<String>) -> Self {
        Self { text: Some(text.into()), ok: false, case }
    }
}

fn hm(person: &Person, at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.with_timezone(&person.timezone).format("%H:%M").to_string())
}

fn name(service: &CaseService, id: Option<&crate::people::PersonId>) -> String {
    let rules = service.rules.get();
    id.and_then(|p| rules.people.get(p))
        .map_or_else(|| "someone".to_owned(), |p| p.name.split(' ').next().unwrap_or(&p.name).to_owned())
}

/// One line per case for LIST, as short as a phone wants it.
fn line(case: &Case) -> String {
    let state = match case.status {
        Status::Open => "paging",
        Status::Acknowledged => "ack'd",
        Status::Waiting => "waiting",
        _ => case.status.as_str(),
    };
    format!("{} {} {}", case.number, case.priority, state)
}

/// Carries out `cmd` for `person`. `implied` is the case an email reply
/// answers; `filing` marks that mail filed in the same transaction.
pub async fn execute(
    service: &CaseService,
    person: &Person,
    cmd: &Command,
    via: Via,
    implied: Option<CaseNumber>,
    filing: Option<Filing>,
) -> Result<Answer, CaseError> {
    let who = &person.id;
    match &cmd.verb {
        Verb::Help => return Ok(Answer { text: Some(HELP.into()), ok: true, case: None }),
        // STOP and START are the carrier's: it answers and blocks them.
        Verb::Stop | Verb::Start => return Ok(Answer { text: None, ok: true, case: None }),
        Verb::List => {
            let mut cases = service.store.cases_assigned(who).await?;
            for n in service.store.cases_paging(who).await? {
                if !cases.iter().any(|c| c.number == n)
                    && let Some(c) = service.store.case(n).await?
                {
                    cases.push(c);
                }
            }
            cases.sort_by_key(|c| c.number);
            let text = if cases.is_empty() {
                "No open cases for you.".to_owned()
            } else {
                format!("Your cases: {}", cases.iter().map(line).collect::<Vec<_>>().join("; "))
            };
            return Ok(Answer { text: Some(text), ok: true, case: None });
        }
        _ => {}
    }
    // WAIT, RESUME and ASSIGN are about the sender's own work: without a
    // number, the one case assigned to them.
    let own = matches!(cmd.verb, Verb::Wait(_) | Verb::Resume | Verb::Assign(_));
    let number = match cmd.case.or(implied) {
        Some(n) => n,
        None if own => {
            let mine = service.store.cases_assigned(who).await?;
            match mine.as_slice() {
                [one] => one.number,
                [] => return Ok(Answer::error(None, "No case is assigned to you. Name one, e.g. WAIT 1042.")),
                [first, ..] => {
                    let list = mine.iter().map(|c| c.number.to_string()).collect::<Vec<_>>().join(", ");
                    return Ok(Answer::error(
                        None,
                        format!("{} cases are yours: {list}. Name one, e.g. WAIT {}", mine.len(), first.number.0),
                    ));
                }
            }
        }
        None => {
            let paging = service.store.cases_paging(who).await?;
            match paging.as_slice() {
                [] => return Ok(Answer::error(None, "No case is paging you. Name one, e.g. ACK 1042, or reply LIST.")),
                [one] => *one,
                [first, ..] => {
                    let list = paging.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                    let verb = match cmd.verb {
                        Verb::Note(_) => "NOTE",
                        Verb::Reply(_) => "REPLY",
                        Verb::Resolve(_) => "RES",
                        Verb::Escalate => "ESC",
                        Verb::Snooze(_) => "SNOOZE",
                        Verb::Take => "TAKE",
                        _ => "ACK",
                    };
                    return Ok(Answer::error(
                        None,
                        format!("{} cases page you: {list}. Reply {verb} {}", paging.len(), first.0),
                    ));
                }
            }
        }
    };
    let action = match &cmd.verb {
        Verb::Ack => Action::Ack { by: who.clone(), text: None },
        Verb::Note(text) => Action::Note { text: text.clone() },
        Verb::Reply(text) => Action::Reply { by: who.clone(), text: text.clone() },
        Verb::Resolve(text) => Action::Resolve { text: text.clone() },
        Verb::Escalate => Action::Escalate { from: None },
        Verb::Snooze(hold) => Action::Snooze { by: who.clone(), hold: *hold },
        Verb::Take => Action::Assign { to: who.clone() },
        Verb::Assign(to) => match to.parse::<PersonId>() {
            Ok(to) if service.rules.get().people.contains_key(&to) => Action::Assign { to },
            _ => {
                let known = service.rules.get().people.keys().map(PersonId::as_str).collect::<Vec<_>>().join(", ");
                let to: String = to.chars().take(20).collect();
                return Ok(Answer::error(Some(number), format!("No person {to:?}. Use one of: {known}.")));
            }
        },
        Verb::Wait(text) => Action::Wait { text: text.clone() },
        Verb::Resume => Action::Resume { text: None },
        // Answered above, before a case was needed.
        Verb::Help | Verb::List | Verb::Stop | Verb::Start => return Ok(Answer::error(None, HELP)),
    };
    let actor = Actor::Person(who.clone());
    match service.act_filing(number, &action, &actor, via, filing).await {
        Ok(case) => {
            let first = name(service, Some(who));
            let text = match &cmd.verb {
                Verb::Ack => format!(
                    "Case {number} acknowledged by {first}. Next update due {}.",
                    hm(person, case.deadlines.update)
                ),
                Verb::Note(_) if case.status == Status::Acknowledged => {
                    format!("Note added to {number}. Next update due {}.", hm(person, case.deadlines.update))
                }
                Verb::Note(_) => format!("Note added to {number}."),
                Verb::Reply(_) => format!("Reply to {number} queued for {}.", case.requester),
                Verb::Resolve(_) => format!("Case {number} resolved by {first}."),
                Verb::Escalate => format!("Case {number} escalated to {}.", case.escalation.at),
                Verb::Snooze(_) => format!("Reminders for {number} held until {}.", hm(person, case.snoozed_until)),
                Verb::Take => {
                    format!("Case {number} is yours, {first}. Next update due {}.", hm(person, case.deadlines.update))
                }
                Verb::Assign(_) => format!("Case {number} assigned to {}.", name(service, case.assignee.as_ref())),
                Verb::Wait(_) => format!("Case {number} waits on the customer. Reply RESUME {} to go on.", number.0),
                Verb::Resume => {
                    format!("Case {number} resumed. Next update due {}.", hm(person, case.deadlines.update))
                }
                _ => format!("Done: {number}."),
            };
            Ok(Answer::ok(number, text))
        }
        Err(CaseError::NotFound(n)) => Ok(Answer::error(Some(n), format!("No case {n}. Reply HELP for commands."))),
        Err(CaseError::Refused(ActionError::AlreadyAcknowledged { .. })) => {
            let case = service.store.case(number).await?;
            let (by, at) = case.map_or((String::new(), None), |c| (name(service, c.assignee.as_ref()), c.acked_at));
            Ok(Answer::error(
                Some(number),
                format!("Case {number} was already acknowledged by {by} at {}.", hm(person, at)),
            ))
        }
        Err(CaseError::Refused(e)) => Ok(Answer::error(Some(number), e.to_string())),
        Err(CaseError::Forbidden(why)) => Ok(Answer::error(Some(number), why)),
        Err(e) => Err(e),
    }
}
